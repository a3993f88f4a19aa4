/**
 * Per-IP limits on an S2S listener (issue 10): simultaneous connections, the rate of new ones
 * (a token bucket), and dialback verifications under way — each verification makes Ferry connect
 * to the claimed domain's server, so without a bound one address could aim Ferry at a victim.
 * Bounded memory: an address is forgotten once it holds nothing and its bucket is full again.
 */
export interface IpLimitSettings {
  maxConnections: number;
  ratePerSecond: number;
  maxVerifications: number;
}

/** Addresses tracked before idle ones are swept. */
const SWEEP_AT = 10_000;

interface PerIp {
  connections: number;
  verifications: number;
  tokens: number;
  refilledAt: number;
}

export class IpLimits {
  private readonly ips = new Map<string, PerIp>();
  private readonly burst: number;

  constructor(
    private readonly settings: IpLimitSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.burst = settings.ratePerSecond * 5;
  }

  /** A new connection from `ip`: its release, or why it is refused. */
  admit(ip: string): { release: () => void } | { refused: string } {
    const entry = this.entry(ip);
    this.refill(entry);
    if (entry.connections >= this.settings.maxConnections)
      return { refused: `too many connections from ${ip} (max_connections_per_ip)` };
    if (entry.tokens < 1) return { refused: `connecting too fast from ${ip} (connection_rate_per_ip)` };
    entry.tokens -= 1;
    entry.connections++;
    return {
      release: once(() => {
        entry.connections--;
        this.forget(ip, entry);
      }),
    };
  }

  /** A dialback verification for a connection from `ip`: its release, or undefined over the bound. */
  verification(ip: string): (() => void) | undefined {
    const entry = this.entry(ip);
    if (entry.verifications >= this.settings.maxVerifications) return undefined;
    entry.verifications++;
    return once(() => {
      entry.verifications--;
      this.forget(ip, entry);
    });
  }

  get tracked(): number {
    return this.ips.size;
  }

  private entry(ip: string): PerIp {
    let entry = this.ips.get(ip);
    if (entry === undefined) {
      if (this.ips.size >= SWEEP_AT) this.sweep();
      entry = { connections: 0, verifications: 0, tokens: this.burst, refilledAt: this.now() };
      this.ips.set(ip, entry);
    }
    return entry;
  }

  private refill(entry: PerIp): void {
    const now = this.now();
    entry.tokens = Math.min(
      this.burst,
      entry.tokens + ((now - entry.refilledAt) / 1000) * this.settings.ratePerSecond,
    );
    entry.refilledAt = now;
  }

  /** Forgets every address that holds nothing and whose bucket has refilled. */
  private sweep(): void {
    for (const [ip, entry] of this.ips) this.forget(ip, entry);
  }

  private forget(ip: string, entry: PerIp): void {
    if (entry.connections > 0 || entry.verifications > 0) return;
    this.refill(entry);
    if (entry.tokens >= this.burst) this.ips.delete(ip);
    // Else kept (a storm's bucket must stay empty); emptied buckets refill and go on the next admit.
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}
