import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { assign, createActor, sendParent, setup, type AnyActorRef } from "xstate";
import {
  dialbackVerifyMachine,
  type DialbackVerifyInput,
  type DialbackVerifyOutput,
} from "../../machines/dialbackVerify.js";
import {
  s2sOutMachine,
  type LinkFailure,
  type S2sOutInput,
  type S2sOutOutput,
  type S2sOutParentEvent,
} from "../../machines/s2sOut.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a test tells the fake connection to do. */
type FakeConnEvent =
  { type: "ANSWER"; id: string; valid: boolean } | { type: "FAIL"; failure: LinkFailure } | { type: "CLOSE" };

/** Stands in for s2sOut: VERIFY_ANSWER on ANSWER, finishes on FAIL / CLOSE. */
// Cast where it is provided: `provide` wants logic of the same type as s2sOut, and a fake is not.
function fakeConn(connInputs: S2sOutInput[], options: { throwOnStart?: boolean }) {
  return setup({
    types: {
      input: {} as S2sOutInput,
      context: {} as { input: S2sOutInput; output: S2sOutOutput },
      events: {} as FakeConnEvent,
      output: {} as S2sOutOutput,
    },
  }).createMachine({
    context: ({ input }) => ({ input, output: { attempts: [] } }),
    entry: ({ context }) => {
      if (options.throwOnStart === true) throw new Error("fake connection crashed");
      connInputs.push(context.input);
    },
    initial: "running",
    states: {
      running: {
        on: {
          ANSWER: {
            actions: sendParent(
              ({ event }) =>
                ({ type: "VERIFY_ANSWER", id: event.id, valid: event.valid }) satisfies S2sOutParentEvent,
            ),
          },
          FAIL: {
            target: "done",
            actions: assign({ output: ({ event }) => ({ failure: event.failure, attempts: [] }) }),
          },
          CLOSE: "done",
        },
      },
      done: { type: "final" },
    },
    output: ({ context }) => context.output,
  });
}

/** Every actor a test started, stopped after it so that no timer outlives its test. */
const started: { stop: () => void }[] = [];
afterEach(() => {
  for (const actor of started.splice(0)) actor.stop();
});

function start(input: Partial<DialbackVerifyInput> = {}, options: { throwOnStart?: boolean } = {}) {
  const connInputs: S2sOutInput[] = [];
  const machine = dialbackVerifyMachine.provide({
    actors: { conn: fakeConn(connInputs, options) as unknown as typeof s2sOutMachine },
  });
  const actor = createActor(machine, {
    input: {
      streamId: "in-stream-1",
      local: "a.example",
      remote: "b.example",
      key: "k3y",
      tlsMode: "starttls",
      stateTimeoutMs: 1000,
      timeoutMs: 1000,
      ...input,
    },
  });
  actor.start();
  started.push(actor);
  return {
    actor,
    connInputs,
    conn: (event: FakeConnEvent) => {
      const ref = actor.getSnapshot().children.conn as AnyActorRef | undefined;
      assert.ok(ref, "the connection is running");
      ref.send(event);
    },
    hasConn: () => actor.getSnapshot().children.conn !== undefined,
    value: (): unknown => actor.getSnapshot().value,
    output: (): DialbackVerifyOutput | undefined => actor.getSnapshot().output,
  };
}

describe("dialbackVerify machine", () => {
  it("opens a verify-only connection carrying the db:verify for the incoming stream", () => {
    const v = start({ timeoutMs: 4321, tlsMode: "starttls_required", stateTimeoutMs: 77 });
    assert.equal(v.value(), "verifying");
    assert.deepEqual(v.connInputs, [
      {
        local: "a.example",
        remote: "b.example",
        authorize: false,
        tlsMode: "starttls_required",
        stateTimeoutMs: 77,
        streamTimeoutMs: 4321,
        verify: { id: "in-stream-1", key: "k3y" },
      },
    ]);
  });

  it("a valid answer, then the connection closes: valid", () => {
    const v = start();
    v.conn({ type: "ANSWER", id: "in-stream-1", valid: true });
    assert.equal(v.value(), "verifying", "waits for the connection to close");
    v.conn({ type: "CLOSE" });
    assert.equal(v.value(), "valid");
    assert.equal(v.actor.getSnapshot().status, "done");
    assert.deepEqual(v.output(), { result: "valid" });
  });

  it("emits the answer the moment it arrives, before the connection has closed", () => {
    const v = start();
    const verdicts: unknown[] = [];
    v.actor.on("verdict", (emitted) => verdicts.push(emitted));
    v.conn({ type: "ANSWER", id: "in-stream-1", valid: true });
    assert.deepEqual(verdicts, [{ type: "verdict", result: "valid" }]);
    assert.equal(v.value(), "verifying", "the stream still closes properly");
    v.conn({ type: "CLOSE" });
    assert.equal(v.value(), "valid");
    assert.equal(verdicts.length, 1, "once");
  });

  it("an invalid answer is emitted as such", () => {
    const v = start();
    const verdicts: unknown[] = [];
    v.actor.on("verdict", (emitted) => verdicts.push(emitted));
    v.conn({ type: "ANSWER", id: "in-stream-1", valid: false });
    assert.deepEqual(verdicts, [{ type: "verdict", result: "invalid" }]);
  });

  it("an invalid answer: invalid", () => {
    const v = start();
    v.conn({ type: "ANSWER", id: "in-stream-1", valid: false });
    v.conn({ type: "CLOSE" });
    assert.equal(v.value(), "invalid");
    assert.deepEqual(v.output(), { result: "invalid" });
  });

  it("an answer counts even if the connection then fails", () => {
    const v = start();
    v.conn({ type: "ANSWER", id: "in-stream-1", valid: true });
    v.conn({ type: "FAIL", failure: { condition: "remote-server-timeout", text: "reset" } });
    assert.deepEqual(v.output(), { result: "valid" });
  });

  it("the connection fails without an answer: failed, with the connection's reason", () => {
    const v = start();
    v.conn({
      type: "FAIL",
      failure: { condition: "remote-server-not-found", text: "DNS: no SRV or A/AAAA records for b.example" },
    });
    assert.equal(v.value(), "failed");
    assert.deepEqual(v.output(), {
      result: "failed",
      reason: "DNS: no SRV or A/AAAA records for b.example",
    });
  });

  it("the connection closes without an answer and without a failure: failed", () => {
    const v = start();
    v.conn({ type: "CLOSE" });
    assert.deepEqual(v.output(), {
      result: "failed",
      reason: "the authoritative server closed the stream without answering",
    });
  });

  it("no answer within the timeout: failed, and the connection is stopped", async () => {
    const v = start({ timeoutMs: 30 });
    await sleep(10);
    assert.equal(v.value(), "verifying");
    await sleep(40);
    assert.equal(v.value(), "failed");
    assert.deepEqual(v.output(), {
      result: "failed",
      reason: "no answer from the authoritative server in time",
    });
    assert.equal(v.hasConn(), false);
  });

  it("an answer in but the connection still open at the timeout: the answer stands", async () => {
    const v = start({ timeoutMs: 30 });
    v.conn({ type: "ANSWER", id: "in-stream-1", valid: false });
    await sleep(50);
    assert.deepEqual(v.output(), { result: "invalid" });
  });

  it("a crashed connection: failed, with the error as reason", () => {
    const v = start({}, { throwOnStart: true });
    assert.equal(v.value(), "failed");
    assert.equal(v.output()?.result, "failed");
    assert.match(v.output()?.reason ?? "", /fake connection crashed/);
  });
});
