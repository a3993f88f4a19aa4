/**
 * The dialback keys this server has sent (issue 10, XEP-0185 §4): as the authoritative server we
 * answer a `<db:verify/>` with `valid` only for a key we really sent, on a stream whose id the
 * receiving server really gave us — a key seen on the wire cannot be replayed for another stream,
 * and a verify for a stream id we never saw is `invalid` even if the HMAC matches. Bounded: keys
 * expire after `ttlMs` (a verification comes within seconds), and the oldest go first.
 */
export class IssuedKeys {
  private readonly issued = new Map<string, number>();

  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  add(receiving: string, originating: string, streamId: string): void {
    if (this.issued.size >= this.maxEntries) {
      const oldest = this.issued.keys().next().value;
      if (oldest !== undefined) this.issued.delete(oldest);
    }
    this.issued.set(key(receiving, originating, streamId), this.now() + this.ttlMs);
  }

  has(receiving: string, originating: string, streamId: string): boolean {
    const k = key(receiving, originating, streamId);
    const until = this.issued.get(k);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.issued.delete(k);
      return false;
    }
    return true;
  }
}

const key = (receiving: string, originating: string, streamId: string): string =>
  `${receiving} ${originating} ${streamId}`;
