/**
 * Flow control from a congested outgoing link back to whoever feeds it (issue 9: a burst must be
 * slowed down, not bounced). Stanzas are routed synchronously, so the stream a stanza came in on is
 * known while it is routed; a queue above its high-water mark holds that stream's reading until it
 * has drained. Plain TCP flow control then slows the sender, as Prosody and ejabberd do.
 */
export interface Pausable {
  /** Stops reading; reading resumes once every returned release has been called. */
  hold(): () => void;
}

let current: Pausable | undefined;

/**
 * Marks `source` as the origin of what is routed until `leaveSource(previous)`; no closure per
 * stanza on the hot path. Callers pair it with try/finally.
 */
export function enterSource(source: Pausable): Pausable | undefined {
  const previous = current;
  current = source;
  return previous;
}

export function leaveSource(previous: Pausable | undefined): void {
  current = previous;
}

/** The stream whose stanza is being routed now, if any. */
export function currentSource(): Pausable | undefined {
  return current;
}
