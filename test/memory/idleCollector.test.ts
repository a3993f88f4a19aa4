/** The idle collector: one full collection once a burst is over, never while the loop is busy. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { getHeapStatistics } from "node:v8";
import {
  IdleCollector,
  startIdleCollector,
  type IdleCollectorProbe,
} from "../../src/memory/idleCollector.js";
import type { Logger } from "../../src/log.js";

const MiB = 2 ** 20;

/** A heap that grows when told and shrinks to `live` when collected. */
function fakeProbe(): IdleCollectorProbe & { heap: number; live: number; busy: number; collections: number } {
  const probe = {
    heap: 20 * MiB,
    live: 18 * MiB,
    busy: 0,
    collections: 0,
    collect: () => {
      probe.collections++;
      probe.heap = probe.live;
    },
    heapCommitted: () => probe.heap,
    loopUtilization: () => probe.busy,
  };
  return probe;
}

describe("IdleCollector", () => {
  it("collects only after growth and two quiet intervals in a row", () => {
    const probe = fakeProbe();
    const collector = new IdleCollector(probe, { growthBytes: 2 * MiB, idleBelow: 0.01, quietIntervals: 2 });
    assert.equal(probe.collections, 0);

    probe.heap = 21 * MiB;
    assert.equal(collector.tick(), undefined);
    assert.equal(collector.tick(), undefined, "1 MiB of growth is not worth a collection");

    probe.heap = 27 * MiB;
    probe.busy = 0.9;
    assert.equal(collector.tick(), undefined, "never while the loop is busy");
    probe.busy = 0.03;
    assert.equal(collector.tick(), undefined, "nor while it relays a trickle of stanzas");
    probe.busy = 0.002;
    assert.equal(collector.tick(), undefined, "one quiet interval is not enough");
    probe.busy = 0.03;
    assert.equal(collector.tick(), undefined, "traffic again: start over");
    probe.busy = 0.002;
    assert.equal(collector.tick(), undefined);
    assert.equal(probe.collections, 0);

    probe.live = 19 * MiB;
    assert.deepEqual(collector.tick(), { before: 27 * MiB, after: 19 * MiB });
    assert.equal(probe.collections, 1);
    assert.equal(collector.tick(), undefined, "nothing grew since");
  });

  it("measures growth from where V8 shrank the heap by itself", () => {
    const probe = fakeProbe();
    const collector = new IdleCollector(probe, { growthBytes: 2 * MiB, idleBelow: 0.01, quietIntervals: 1 });
    probe.heap = 16 * MiB;
    assert.equal(collector.tick(), undefined);
    probe.heap = 19 * MiB;
    assert.ok(collector.tick() !== undefined, "3 MiB above the new low");
  });
});

describe("startIdleCollector (V8's own collector)", () => {
  it("gives back the heap a burst grew, once the loop is idle, and says so at debug level", async () => {
    const lines: string[] = [];
    const log = {
      debug: (message: string) => lines.push(message),
      isDebug: () => true,
    } as unknown as Logger;
    const stop = startIdleCollector(log, 50);
    try {
      // A burst, in one task: some 15 MiB of strings kept until its end, so that the collections
      // during it move them to the old generation, then dropped.
      let burst: string[][] | undefined = [];
      for (let i = 0; i < 200; i++)
        burst.push(Array.from({ length: 1000 }, (_, j) => `stanza ${i} ${j}`.repeat(4)));
      assert.equal(burst.length, 200);
      burst = undefined;
      const grown = getHeapStatistics().total_heap_size;
      const until = Date.now() + 5000;
      while (!lines.some((l) => l.startsWith("idle after heap growth")) && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 50));
      const line = lines.find((l) => l.startsWith("idle after heap growth"));
      assert.ok(line !== undefined, "collected once idle");
      assert.ok(getHeapStatistics().total_heap_size < grown - 8 * MiB, "the heap shrank");
    } finally {
      stop();
    }
  });
});
