/**
 * Preloaded into Ferry by the scale benchmark (`node --expose-gc --import …/gcPreload.js`): SIGUSR2
 * runs a full garbage collection, so the heap figures read afterwards from /metrics are what
 * survives, not garbage waiting for the next collection. With FERRY_BENCH_HEAP_SNAPSHOTS set to a
 * folder, each SIGUSR2 also writes a heap snapshot there (1.heapsnapshot, 2.heapsnapshot, …).
 * Ferry's own code is untouched.
 */
import path from "node:path";
import { writeHeapSnapshot } from "node:v8";

const gc = (globalThis as { gc?: () => void }).gc;
const snapshots = process.env.FERRY_BENCH_HEAP_SNAPSHOTS;
let taken = 0;
process.on("SIGUSR2", () => {
  // Twice: objects with finalizers or weak references need a second collection to go.
  gc?.();
  gc?.();
  if (snapshots !== undefined && snapshots !== "") {
    taken++;
    writeHeapSnapshot(path.join(snapshots, `${taken}.heapsnapshot`));
  }
});
