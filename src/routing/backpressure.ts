/**
 * Flow control from a congested outgoing link or component back to whoever feeds it (issue 9: a
 * burst must be slowed down, not bounced). Stanzas are routed synchronously, so the stream a stanza
 * came in on is known while it is routed; a queue above its high-water mark holds that stream's
 * reading until it has drained. Plain TCP flow control then slows the sender, as Prosody and
 * ejabberd do. The same knowledge lets an incoming stream's XEP-0198 acks wait for the stanzas it
 * handed on to leave the process (handedTo).
 */
export interface Pausable {
  /** Stops reading; reading resumes once every returned release has been called. */
  hold(): () => void;
  /** The stanza being routed now was handed to `sink` (see handedTo). */
  handedTo?(sink: Flushable): void;
}

/** Something that writes stanzas to a socket and can tell when what it accepted has left the process. */
export interface Flushable {
  /** Calls `done` once every stanza accepted so far is in the kernel's socket buffer (or gone for good). */
  afterFlush(done: () => void): void;
}

/**
 * A queue with a live but congested link stops reading the streams that feed it at HIGH_WATER
 * stanzas and reads them again at LOW_WATER (TCP then slows the senders).
 */
export const HIGH_WATER = 1000;
export const LOW_WATER = 250;

/** The streams a congested queue holds, each once; undefined while it holds none (most queues). */
export type Holds = Map<Pausable, () => void> | undefined;

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

/**
 * The stanza being routed now was handed to `sink` (a component's link): the stream it came in on
 * acknowledges it (XEP-0198) only once the sink has flushed it, so that an ack never covers a
 * stanza still in this process's memory, which a crash would lose after the sender let it go.
 */
export function handedTo(sink: Flushable): void {
  current?.handedTo?.(sink);
}

/** Holds the stream whose stanza is being routed now, once; returns the updated holds. */
export function holdCurrentSource(holds: Holds): Holds {
  const source = current;
  if (source === undefined) return holds;
  // Made on first use: an empty Map is 184 bytes, and a queue per link (issue 9).
  const map = holds ?? new Map<Pausable, () => void>();
  if (!map.has(source)) map.set(source, source.hold());
  return map;
}

/** Lets every held stream be read again. */
export function releaseHolds(holds: Holds): Holds {
  if (holds !== undefined) for (const release of holds.values()) release();
  return undefined;
}
