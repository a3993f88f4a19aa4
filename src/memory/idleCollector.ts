/**
 * Gives memory back once a burst is over. Under load V8 grows the heap and, once traffic stops,
 * keeps it: it collects again only when something allocates again. After a 100,000-message burst
 * that is 5–10 MB of RSS held for nothing (issue 9: 80 → 73 MB three seconds after the burst). So
 * when the committed heap has grown by `growthBytes` since the last full collection and the event
 * loop has been idle for a second, one full collection is run.
 *
 * Only the `ferry` process runs it (src/main.ts): a server embedded in another program (the tests)
 * leaves that program's heap alone.
 */
import { setFlagsFromString, getHeapStatistics } from "node:v8";
import { runInNewContext } from "node:vm";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import type { Logger } from "../log.js";

export interface IdleCollectorProbe {
  /** Runs a full, compacting garbage collection. */
  collect(): void;
  /** Bytes the heap has committed. */
  heapCommitted(): number;
  /** The event loop's utilization (0–1) since the previous call. */
  loopUtilization(): number;
}

export interface IdleCollectorOptions {
  /** Growth of the committed heap since the last collection that is worth one. */
  growthBytes: number;
  /**
   * A loop busier than this over an interval is not idle. Relaying 2,000 stanzas/s keeps Ferry's
   * loop 2–4 % busy, and an idle Ferry's under 0.5 %: a collection (about 30 ms for a 16 MB heap)
   * must not stall a link that carries traffic, however little.
   */
  idleBelow: number;
  /** Consecutive idle intervals before a collection. */
  quietIntervals: number;
}

export const IDLE_COLLECTOR_DEFAULTS: IdleCollectorOptions = {
  growthBytes: 2 * 2 ** 20,
  idleBelow: 0.01,
  quietIntervals: 2,
};

export class IdleCollector {
  private baseline: number;
  private quiet = 0;

  constructor(
    private readonly probe: IdleCollectorProbe,
    private readonly options: IdleCollectorOptions = IDLE_COLLECTOR_DEFAULTS,
  ) {
    this.baseline = probe.heapCommitted();
  }

  /** Once per interval; what a collection gave back, or undefined when none was run. */
  tick(): { before: number; after: number } | undefined {
    this.quiet = this.probe.loopUtilization() < this.options.idleBelow ? this.quiet + 1 : 0;
    const before = this.probe.heapCommitted();
    // The heap shrank by itself (V8 collected meanwhile): measure growth from there.
    if (before < this.baseline) this.baseline = before;
    if (this.quiet < this.options.quietIntervals || before - this.baseline < this.options.growthBytes) {
      return undefined;
    }
    this.probe.collect();
    this.baseline = this.probe.heapCommitted();
    return { before, after: this.baseline };
  }
}

/**
 * V8's full collection, which Node hands out only with --expose-gc; that flag is set for this. Run
 * twice: objects with finalizers or weak references go only in a second one, and the heap
 * shrinks only then (measured: 26 → 19 MB committed after a burst, where one collection left 25).
 */
function fullCollection(): () => void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  return () => {
    gc();
    gc();
  };
}

/** Checks twice a second; returns what stops it. The timer does not keep the process alive. */
export function startIdleCollector(log: Logger, intervalMs = 500): () => void {
  const gc = fullCollection();
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  const collector = new IdleCollector({
    collect: gc,
    heapCommitted: () => getHeapStatistics().total_heap_size,
    loopUtilization: () => {
      const now = performance.eventLoopUtilization();
      const since = performance.eventLoopUtilization(now, last);
      last = now;
      return since.utilization;
    },
  });
  const MB = 2 ** 20;
  const timer = setInterval(() => {
    const freed = collector.tick();
    if (freed !== undefined && log.isDebug()) {
      log.debug(
        `idle after heap growth: full collection, heap ${(freed.before / MB).toFixed(1)} → ${(freed.after / MB).toFixed(1)} MB`,
      );
    }
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}
