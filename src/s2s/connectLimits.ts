/**
 * What keeps stanzas to many unknown domains from turning Ferry into a connection storm (issue 10):
 * a bound on outgoing connection attempts under way at once (`outgoing.max_connecting`), and a
 * negative DNS cache (`outgoing.dns.negative_ttl`) so a domain that does not resolve is not asked
 * again at every retry.
 */
import type { EventEmitter } from "node:events";
import type { ResolvedTargets } from "../dns/resolve.js";

/** What a slot is held with: the connection, whose `close` frees it. */
type Closable = Pick<EventEmitter, "once" | "off">;

/** A counting semaphore whose waiters can give up (an abandoned connect attempt). */
export class ConnectSlots {
  private busy = 0;
  private readonly waiting: { grant: () => void }[] = [];
  private readonly held = new Map<string, { release: () => void; connection?: Closable }>();

  constructor(readonly max: number) {}

  /** Keeps a slot with a connection until `settle(connectionId)`, or until the connection closes. */
  hold(connectionId: string, release: () => void, connection?: Closable): void {
    this.held.set(connectionId, connection === undefined ? { release } : { release, connection });
    connection?.once("close", release);
  }

  settle(connectionId: string): void {
    const held = this.held.get(connectionId);
    if (held === undefined) return;
    this.held.delete(connectionId);
    // Settled: a close listener left behind would only keep memory for the link's life (issue 9).
    held.connection?.off("close", held.release);
    held.release();
  }

  get inUse(): number {
    return this.busy;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with the release function once a slot is free; rejects if `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<() => void> {
    const releaseOnce = this.releaser();
    if (this.busy < this.max) {
      this.busy++;
      return Promise.resolve(releaseOnce);
    }
    return this.wait(signal, releaseOnce);
  }

  /**
   * A slot's release, made in a scope of its own: it stays with the connection (a `close`
   * listener) for the link's life, and a closure made in acquire() would keep the attempt's abort
   * signal alive with it (0.7 KiB per idle link, issue 9).
   */
  private releaser(): () => void {
    const releaseOnce = once(() => {
      for (const [id, held] of this.held) if (held.release === releaseOnce) this.held.delete(id);
      const next = this.waiting.shift();
      if (next) next.grant();
      else this.busy--;
    });
    return releaseOnce;
  }

  private wait(signal: AbortSignal, releaseOnce: () => void): Promise<() => void> {
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve(releaseOnce);
        },
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(waiter);
        if (at !== -1) this.waiting.splice(at, 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error("abandoned"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** Failed resolutions by domain, for `ttlMs` (bounded: the oldest are forgotten first). */
export class NegativeDnsCache {
  private readonly entries = new Map<string, { until: number; result: ResolvedTargets }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(domain: string): ResolvedTargets | undefined {
    const entry = this.entries.get(domain);
    if (entry === undefined) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(domain);
      return undefined;
    }
    return entry.result;
  }

  remember(domain: string, result: ResolvedTargets): void {
    if (this.ttlMs <= 0 || result.targets.length > 0) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(domain, { until: this.now() + this.ttlMs, result });
  }
}
