/**
 * The XEP-0114 workload: a sender component on server A sends numbered messages to a receiver
 * component on server B. Each phase uses its own id prefix; the receiver counts what arrives,
 * duplicates and reordering, the sender counts what comes back (bounces).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ComponentLink, MessageSeen } from "./component.js";
import { percentile, sorted } from "./stats.js";

export interface Endpoints {
  sender: ComponentLink;
  receiver: ComponentLink;
  /** JIDs the messages go from and to. */
  from: string;
  to: string;
}

/** The message body: 70 characters of text with an entity, like a short chat line. */
const BODY = "The quick brown fox jumps over the lazy dog &amp; keeps going, message";

export const message = (from: string, to: string, id: string): string =>
  `<message from='${from}' to='${to}' id='${id}' type='chat'><body>${BODY} ${id}</body></message>`;

export interface Delivery {
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** Error messages that came back to the sender. */
  bounced: number;
  /** The first bounce, to explain a failed run. */
  firstBounce?: string | undefined;
}

/** Tracks one phase's ids `<prefix><n>`, n in [0, count). */
class Tracker {
  readonly seen: Uint8Array;
  readonly arrivedAt: Float64Array;
  received = 0;
  duplicated = 0;
  reordered = 0;
  bounced = 0;
  firstBounce: string | undefined;
  lastArrival = 0;
  private highest = -1;
  private waiter: (() => void) | undefined;
  private progressWaiter: (() => void) | undefined;
  private progressTarget = 0;

  constructor(
    readonly prefix: string,
    readonly count: number,
  ) {
    this.seen = new Uint8Array(count);
    this.arrivedAt = new Float64Array(count);
  }

  onReceived(m: MessageSeen, at: number): void {
    if (!m.id.startsWith(this.prefix)) return;
    const n = Number(m.id.slice(this.prefix.length));
    if (!Number.isInteger(n) || n < 0 || n >= this.count) return;
    if (this.seen[n] === 1) {
      this.duplicated++;
      return;
    }
    this.seen[n] = 1;
    this.arrivedAt[n] = at;
    this.received++;
    this.lastArrival = at;
    if (n < this.highest) this.reordered++;
    else this.highest = n;
    if (this.received + this.bounced >= this.progressTarget) this.progressWaiter?.();
    if (this.received === this.count) this.waiter?.();
  }

  onBounce(m: MessageSeen): void {
    if (m.type !== "error" || !m.id.startsWith(this.prefix)) return;
    this.bounced++;
    this.firstBounce ??= m.xml.slice(0, 600);
    this.progressWaiter?.();
    this.waiter?.();
  }

  /** Resolves once `target` messages have arrived or bounced, or after `ms`. */
  progress(target: number, ms: number): Promise<void> {
    this.progressTarget = target;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.progressWaiter = undefined;
        resolve();
      }, ms);
      this.progressWaiter = () => {
        clearTimeout(timer);
        this.progressWaiter = undefined;
        resolve();
      };
    });
  }

  /** Resolves when every message arrived or bounced, or nothing came for `stallMs`. */
  async done(stallMs: number): Promise<void> {
    let lastCount = -1;
    let lastProgress = performance.now();
    while (this.received + this.bounced < this.count) {
      if (this.received + this.bounced !== lastCount) {
        lastCount = this.received + this.bounced;
        lastProgress = performance.now();
      } else if (performance.now() - lastProgress > stallMs) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  delivery(sent: number): Delivery {
    return {
      sent,
      received: this.received,
      lost: sent - this.received,
      duplicated: this.duplicated,
      reordered: this.reordered,
      bounced: this.bounced,
      firstBounce: this.firstBounce,
    };
  }
}

function track(ends: Endpoints, prefix: string, count: number): Tracker {
  const tracker = new Tracker(prefix, count);
  ends.receiver.onMessage = (m, at) => {
    tracker.onReceived(m, at);
  };
  ends.sender.onMessage = (m) => {
    tracker.onBounce(m);
  };
  return tracker;
}

export interface SetupResult extends Delivery {
  /** Time from writing the first message to its arrival, in ms. */
  setupMs: number;
}

/**
 * The first message between two domains: DNS + TCP (+ STARTTLS) + dialback + delivery (on fresh
 * servers: cold, every code path run for the first time; later: warm).
 */
export async function runSetup(ends: Endpoints, prefix = "s", timeoutMs = 30_000): Promise<SetupResult> {
  const tracker = track(ends, prefix, 1);
  const t0 = performance.now();
  ends.sender.socket.write(message(ends.from, ends.to, `${prefix}0`));
  await tracker.done(timeoutMs);
  const setupMs = tracker.received === 1 ? (tracker.arrivedAt[0] ?? Number.NaN) - t0 : Number.NaN;
  return { ...tracker.delivery(1), setupMs };
}

export interface LatencyResult extends Delivery {
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * `rate` messages per second for `seconds`, each written on its own as it falls due (a 1 ms timer
 * checks which are due), one-way latency = arrival time − write time (same clock, same process).
 */
export async function runLatency(ends: Endpoints, rate: number, seconds: number): Promise<LatencyResult> {
  const count = Math.round(rate * seconds);
  const tracker = track(ends, "l", count);
  const sentAt = new Float64Array(count);
  const socket = ends.sender.socket;
  const start = performance.now();
  let sent = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    while (sent < due) {
      sentAt[sent] = performance.now();
      socket.write(message(ends.from, ends.to, `l${sent}`));
      sent++;
    }
    await sleep(1);
  }
  await tracker.done(10_000);
  const latencies: number[] = [];
  for (let i = 0; i < count; i++)
    if (tracker.seen[i] === 1) latencies.push((tracker.arrivedAt[i] ?? 0) - (sentAt[i] ?? 0));
  const s = sorted(latencies);
  return {
    ...tracker.delivery(count),
    rate,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.at(-1) ?? Number.NaN,
  };
}

export interface ThroughputResult extends Delivery {
  /** Messages per second from the first byte written to the last message received. */
  msgsPerSec: number;
  durationMs: number;
  /** Time the sender needed to hand everything to its socket (backpressure included). */
  writeMs: number;
  /** Most messages in flight (written, not yet received); 0 = no limit. */
  window: number;
}

/**
 * `count` messages in batches of 256 per write, waiting for 'drain' when the sender's socket
 * buffer is full. With `window` > 0 (closed loop), at most `window` messages are in flight: the
 * sender waits for the receiver to catch up, so no server has to buffer more than that. With
 * `window` = 0 (open loop, a burst), the sender writes as fast as server A reads.
 */
export async function runThroughput(
  ends: Endpoints,
  prefix: string,
  count: number,
  window: number,
  onStart: () => void = () => undefined,
): Promise<ThroughputResult> {
  const tracker = track(ends, prefix, count);
  const BATCH = 256;
  onStart();
  const t0 = performance.now();
  const parts: string[] = [];
  let stalledSince = 0;
  for (let i = 0; i < count;) {
    if (window > 0 && i - tracker.received - tracker.bounced + BATCH > window) {
      // Closed loop: wait for the receiver (a lost message would stall us: give up after 15 s).
      const before = tracker.received + tracker.bounced;
      await tracker.progress(i + BATCH - window, 200);
      if (tracker.received + tracker.bounced === before) {
        stalledSince ||= performance.now();
        if (performance.now() - stalledSince > 15_000 || ends.sender.closed) break;
      } else stalledSince = 0;
      continue;
    }
    parts.length = 0;
    const end = Math.min(count, i + BATCH);
    for (; i < end; i++) parts.push(message(ends.from, ends.to, `${prefix}${i}`));
    await ends.sender.write(parts.join(""));
    if (ends.sender.closed) break;
  }
  const writeMs = performance.now() - t0;
  await tracker.done(15_000);
  const durationMs = tracker.lastArrival - t0;
  return {
    ...tracker.delivery(count),
    msgsPerSec: tracker.received === count ? (count * 1000) / durationMs : Number.NaN,
    durationMs,
    writeMs,
    window,
  };
}
