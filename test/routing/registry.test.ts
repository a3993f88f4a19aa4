import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setup } from "xstate";
import { ActorRegistry } from "../../src/routing/registry.js";
import { silentLogger } from "../../src/log.js";

/** A child that crashes on CRASH, finishes on SHUTDOWN (or ignores it when told to). */
const child = setup({
  types: {
    events: {} as { type: "CRASH" } | { type: "SHUTDOWN" },
    input: {} as { ignoreShutdown: boolean },
    context: {} as { ignoreShutdown: boolean },
  },
  guards: { honoursShutdown: ({ context }) => !context.ignoreShutdown },
  actions: {
    crash: () => {
      throw new Error("child crashed");
    },
  },
}).createMachine({
  context: ({ input }) => ({ ignoreShutdown: input.ignoreShutdown }),
  initial: "running",
  states: {
    running: { on: { CRASH: { actions: "crash" }, SHUTDOWN: { guard: "honoursShutdown", target: "done" } } },
    done: { type: "final" },
  },
});

function makeRegistry(drainTimeoutMs = 1000) {
  const stopped: { done: boolean } = { done: false };
  const registry = new ActorRegistry({
    log: silentLogger,
    drainTimeoutMs,
    onStopped: () => {
      stopped.done = true;
    },
  });
  return { registry, stopped };
}

describe("actor registry and router supervision", () => {
  it("restarts a crashed restartable child under the same key", () => {
    const { registry } = makeRegistry();
    const released: string[] = [];
    const first = registry.start({
      key: "q:1",
      kind: "queue",
      logic: child,
      input: { ignoreShutdown: false },
      restartable: true,
      release: (reason) => released.push(reason),
    });
    first.send({ type: "CRASH" });
    const second = registry.get("q:1");
    assert.ok(second);
    assert.notEqual(second, first);
    assert.equal((second.getSnapshot() as { status: string }).status, "active");
    assert.deepEqual(released, []);
  });

  it("releases a crashed connection with the crash as reason and forgets it", () => {
    const { registry } = makeRegistry();
    const released: string[] = [];
    const actor = registry.start({
      key: "in:1",
      kind: "s2sIn",
      logic: child,
      input: { ignoreShutdown: false },
      restartable: false,
      release: (reason) => released.push(reason),
    });
    actor.send({ type: "CRASH" });
    assert.equal(registry.get("in:1"), undefined);
    assert.equal(released.length, 1);
    assert.match(released[0]!, /child crashed/);
  });

  it("gives up on a child that keeps crashing (restart intensity)", () => {
    const { registry } = makeRegistry();
    const released: string[] = [];
    registry.start({
      key: "q:2",
      kind: "queue",
      logic: child,
      input: { ignoreShutdown: false },
      restartable: true,
      release: (reason) => released.push(reason),
    });
    for (let i = 0; i < 4; i++) registry.get("q:2")?.send({ type: "CRASH" });
    assert.equal(registry.get("q:2"), undefined);
    assert.equal(released.length, 1);
  });

  it("drains every child on shutdown, then reports stopped", () => {
    const { registry, stopped } = makeRegistry();
    for (const key of ["a", "b", "c"]) {
      registry.start({
        key,
        kind: "s2sIn",
        logic: child,
        input: { ignoreShutdown: false },
        restartable: false,
      });
    }
    registry.shutdown();
    assert.equal(registry.size, 0);
    assert.ok(stopped.done);
  });

  it("forces children that ignore the drain to stop after the timeout, releasing them", async () => {
    const { registry, stopped } = makeRegistry(30);
    const released: string[] = [];
    registry.start({
      key: "stuck",
      kind: "s2sIn",
      logic: child,
      input: { ignoreShutdown: true },
      restartable: false,
      release: (reason) => released.push(reason),
    });
    registry.shutdown();
    assert.equal(stopped.done, false);
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.ok(stopped.done);
    assert.deepEqual(released, ["shutdown timed out"]);
  });
});
