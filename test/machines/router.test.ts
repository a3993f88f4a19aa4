import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createActor } from "xstate";
import { routerMachine, type RouterEmitted } from "../../machines/router.js";

function start(input = {}) {
  const effects: RouterEmitted[] = [];
  const actor = createActor(routerMachine, { input });
  actor.on("*", (effect) => effects.push(effect));
  actor.start();
  return { actor, effects };
}

describe("router machine", () => {
  it("releases a child that finished", () => {
    const { actor, effects } = start();
    actor.send({ type: "CHILD_STARTED", key: "in:1", kind: "s2sIn" });
    actor.send({ type: "CHILD_DONE", key: "in:1" });
    assert.deepEqual(effects, [{ type: "releaseChild", key: "in:1", reason: "done" }]);
    assert.equal(actor.getSnapshot().context.live, 0);
  });

  it("never restarts a connection: a crash releases it with the error as reason", () => {
    const { actor, effects } = start();
    actor.send({ type: "CHILD_STARTED", key: "in:1", kind: "s2sIn" });
    actor.send({ type: "CHILD_FAILED", key: "in:1", restartable: false, error: "boom" });
    assert.deepEqual(effects, [{ type: "releaseChild", key: "in:1", reason: "boom" }]);
  });

  it("restarts a restartable child at most restartIntensity times per period, then releases it", () => {
    const { actor, effects } = start({ restartIntensity: 2, restartPeriodMs: 60_000 });
    actor.send({ type: "CHILD_STARTED", key: "q:a:b", kind: "queue" });
    for (let i = 0; i < 3; i++)
      actor.send({ type: "CHILD_FAILED", key: "q:a:b", restartable: true, error: "x" });
    assert.deepEqual(
      effects.map((e) => e.type),
      ["restartChild", "restartChild", "releaseChild"],
    );
    assert.equal(actor.getSnapshot().context.live, 0);
    assert.deepEqual(actor.getSnapshot().context.restarts, {});
  });

  it("forgets restarts older than the period", async () => {
    const { actor, effects } = start({ restartIntensity: 1, restartPeriodMs: 20 });
    actor.send({ type: "CHILD_STARTED", key: "q", kind: "queue" });
    actor.send({ type: "CHILD_FAILED", key: "q", restartable: true, error: "x" });
    await new Promise((resolve) => setTimeout(resolve, 40));
    actor.send({ type: "CHILD_FAILED", key: "q", restartable: true, error: "x" });
    assert.deepEqual(
      effects.map((e) => e.type),
      ["restartChild", "restartChild"],
    );
  });

  it("drains on SHUTDOWN and stops when the last child is gone", () => {
    const { actor, effects } = start();
    actor.send({ type: "CHILD_STARTED", key: "a", kind: "s2sIn" });
    actor.send({ type: "CHILD_STARTED", key: "b", kind: "s2sIn" });
    actor.send({ type: "SHUTDOWN" });
    assert.equal(actor.getSnapshot().value, "draining");
    assert.deepEqual(effects.at(-1), { type: "drain" });
    actor.send({ type: "CHILD_DONE", key: "a" });
    assert.equal(actor.getSnapshot().value, "draining");
    actor.send({ type: "CHILD_FAILED", key: "b", restartable: true, error: "x" });
    assert.equal(actor.getSnapshot().status, "done", "no restarts while draining");
  });

  it("stops at once on SHUTDOWN when there are no children", () => {
    const { actor } = start();
    actor.send({ type: "SHUTDOWN" });
    assert.equal(actor.getSnapshot().status, "done");
  });

  it("drains a child that starts during the drain, and forces a stop after the drain timeout", async () => {
    const { actor, effects } = start({ drainTimeoutMs: 20 });
    actor.send({ type: "CHILD_STARTED", key: "a", kind: "s2sIn" });
    actor.send({ type: "SHUTDOWN" });
    actor.send({ type: "CHILD_STARTED", key: "late", kind: "s2sIn" });
    assert.deepEqual(effects.at(-1), { type: "drain", key: "late" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(effects.at(-1), { type: "forceStop" });
    assert.equal(actor.getSnapshot().status, "done");
  });
});
