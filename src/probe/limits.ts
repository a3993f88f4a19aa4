/**
 * Bounds on the probe API, which opens outgoing connections for whoever asks: at most
 * `maxConcurrent` probes at once (503 beyond), and a token bucket per client address (429 beyond),
 * both answered with Retry-After. The client table is bounded too (least recently seen first out).
 */
export interface LimitSettings {
  /** Probes running at once, all clients together. */
  maxConcurrent: number;
  /** Probes a client may start in a burst. */
  burst: number;
  /** Probes a client regains per minute. */
  perMinute: number;
  /** Clients remembered; beyond it the least recently seen is forgotten. */
  maxClients: number;
}

export const DEFAULT_LIMITS: LimitSettings = {
  maxConcurrent: 8,
  burst: 10,
  perMinute: 10,
  maxClients: 10_000,
};

export type Admission =
  | { ok: true; release: () => void }
  | { ok: false; status: 429 | 503; retryAfterSeconds: number; error: string; code: "rate_limited" | "busy" };

interface Bucket {
  tokens: number;
  updated: number;
}

export class ProbeLimits {
  private readonly settings: LimitSettings;
  private readonly now: () => number;
  private running = 0;
  /** Insertion order = least recently seen first (a seen client is re-inserted). */
  private readonly buckets = new Map<string, Bucket>();

  constructor(settings: Partial<LimitSettings> = {}, now: () => number = Date.now) {
    this.settings = { ...DEFAULT_LIMITS, ...settings };
    this.now = now;
  }

  /** Takes a token for `client` and a running slot; call release() when the probe ends. */
  admit(client: string): Admission {
    const { burst, perMinute, maxConcurrent } = this.settings;
    const now = this.now();
    const bucket = this.bucket(client, now);
    if (bucket.tokens < 1) {
      const wait = Math.ceil(((1 - bucket.tokens) * 60_000) / perMinute / 1000);
      return {
        ok: false,
        status: 429,
        retryAfterSeconds: Math.max(1, wait),
        code: "rate_limited",
        error: `too many probes from ${client}: at most ${burst} at once and ${perMinute} per minute`,
      };
    }
    if (this.running >= maxConcurrent) {
      return {
        ok: false,
        status: 503,
        retryAfterSeconds: 1,
        code: "busy",
        error: `${maxConcurrent} probes are already running; try again shortly`,
      };
    }
    bucket.tokens -= 1;
    this.running++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.running--;
      },
    };
  }

  get active(): number {
    return this.running;
  }

  private bucket(client: string, now: number): Bucket {
    const { burst, perMinute, maxClients } = this.settings;
    let bucket = this.buckets.get(client);
    if (bucket === undefined) {
      bucket = { tokens: burst, updated: now };
    } else {
      this.buckets.delete(client);
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updated) * perMinute) / 60_000);
      bucket.updated = now;
    }
    this.buckets.set(client, bucket);
    if (this.buckets.size > maxClients) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return bucket;
  }
}
