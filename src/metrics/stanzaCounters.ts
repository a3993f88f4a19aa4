/**
 * Per-stanza counters as plain integers (a labelled prom-client increment per stanza costs more
 * than the rest of the hot path, ARCHITECTURE.md principle 3); exported at scrape time.
 */
export type DropReason =
  /** RFC 6120 §8.3.1 / principle 4: an error or result that cannot be bounced had nowhere to go. */
  | "unbounceable"
  /** RFC 6121 §8.5: presence to an account or domain that does not take it is ignored. */
  | "presence-ignored";

export class StanzaCounters {
  readonly dropped = new Map<DropReason, number>();
  readonly bounced = new Map<string, number>();

  drop(reason: DropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  bounce(condition: string): void {
    this.bounced.set(condition, (this.bounced.get(condition) ?? 0) + 1);
  }
}
