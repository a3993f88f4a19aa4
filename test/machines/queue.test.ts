import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SimulatedClock, assign, createActor, sendParent, setup, type AnyActorRef } from "xstate";
import { queueMachine, retryDelay, type QueueInput } from "../../machines/queue.js";
import {
  s2sOutMachine,
  type LinkFailure,
  type S2sOutInput,
  type S2sOutOutput,
  type S2sOutParentEvent,
} from "../../machines/s2sOut.js";

const LOCAL = "a.example";
const REMOTE = "b.example";

/** What a test tells the fake connection to do. */
type FakeConnEvent =
  | { type: "UP"; connectionId: string }
  | { type: "FAIL"; failure: LinkFailure }
  | { type: "CLOSE" }
  | { type: "SHUTDOWN" };

interface Recorded {
  connInputs: S2sOutInput[];
  shutdowns: number;
}

/** Stands in for s2sOut: LINK_UP on UP, finishes (with or without a failure) on FAIL / CLOSE. */
// Cast where it is provided: `provide` wants logic of the same type as s2sOut, and a fake is not.
function fakeConn(recorded: Recorded, options: { throwOnStart?: boolean } = {}) {
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
      recorded.connInputs.push(context.input);
    },
    initial: "running",
    states: {
      running: {
        on: {
          UP: {
            actions: sendParent(
              ({ context, event }) =>
                ({
                  type: "LINK_UP",
                  local: context.input.local,
                  remote: context.input.remote,
                  connectionId: event.connectionId,
                  auth: "dialback",
                  tls: "none",
                  peer: "192.0.2.1:5269",
                }) satisfies S2sOutParentEvent,
            ),
          },
          FAIL: {
            target: "done",
            actions: assign({
              output: ({ event }) => ({ failure: event.failure, attempts: ["192.0.2.1:5269"] }),
            }),
          },
          CLOSE: "done",
          SHUTDOWN: {
            actions: () => {
              recorded.shutdowns += 1;
            },
          },
        },
      },
      done: { type: "final" },
    },
    output: ({ context }) => context.output,
  });
}

interface QueueFakes {
  throwOnStart?: boolean;
  pending?: boolean;
}

/** Every actor a test started, stopped after it so that no timer outlives its test. */
const started: { stop: () => void }[] = [];
afterEach(() => {
  for (const actor of started.splice(0)) actor.stop();
});

function start(input: Partial<QueueInput> = {}, fakes: QueueFakes = {}) {
  const recorded: Recorded = { connInputs: [], shutdowns: 0 };
  const attached: string[] = [];
  let detached = 0;
  const bounces: LinkFailure[] = [];
  const buffer = { pending: fakes.pending ?? false };
  const machine = queueMachine.provide({
    actors: { conn: fakeConn(recorded, fakes) as unknown as typeof s2sOutMachine },
    guards: { hasPending: () => buffer.pending },
    actions: {
      attachLink: (_, { connectionId }) => attached.push(connectionId),
      detachLink: () => {
        detached += 1;
      },
      bounceQueued: (_, failure) => bounces.push(failure),
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, {
    clock,
    input: {
      local: LOCAL,
      remote: REMOTE,
      maxRetryDelayMs: 30_000,
      tlsMode: "starttls",
      stateTimeoutMs: 10_000,
      streamTimeoutMs: 600_000,
      ...input,
    },
  });
  actor.start();
  started.push(actor);
  const conn = (): AnyActorRef => {
    const ref = actor.getSnapshot().children.conn as AnyActorRef | undefined;
    assert.ok(ref, "a connection is running");
    return ref;
  };
  return {
    actor,
    clock,
    buffer,
    recorded,
    attached,
    bounces,
    detached: () => detached,
    value: (): unknown => actor.getSnapshot().value,
    context: () => actor.getSnapshot().context,
    /** Tells the fake connection what happens to it. */
    conn: (event: FakeConnEvent) => {
      conn().send(event);
    },
    hasConn: () => actor.getSnapshot().children.conn !== undefined,
  };
}

const timeoutFailure: LinkFailure = { condition: "remote-server-timeout", text: "no address answered" };

describe("retryDelay", () => {
  it("is about 1 s for the first retry", () => {
    assert.equal(retryDelay(1, 30_000, 0.5), 1000);
    assert.equal(retryDelay(1, 30_000, 0), 800);
    assert.equal(retryDelay(1, 30_000, 1), 1200);
  });

  it("doubles with each failure", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((attempt) => retryDelay(attempt, 1_000_000, 0.5)),
      [1000, 2000, 4000, 8000, 16000],
    );
  });

  it("stays within ±20 % of the doubled delay", () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const base = 1000 * 2 ** (attempt - 1);
      for (const random of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]) {
        const delay = retryDelay(attempt, 1_000_000, random);
        assert.ok(delay >= base * 0.8 && delay <= base * 1.2, `${attempt}/${random}: ${delay}`);
      }
      const delay = retryDelay(attempt, 1_000_000);
      assert.ok(delay >= base * 0.8 && delay <= base * 1.2, `${attempt}/Math.random: ${delay}`);
    }
  });

  it("never exceeds max_retry_delay", () => {
    for (const random of [0, 0.5, 1]) {
      for (let attempt = 1; attempt <= 40; attempt++) {
        assert.ok(retryDelay(attempt, 5000, random) <= 5000);
      }
      assert.ok(retryDelay(20, 5000, random) >= 4000, "capped delays keep their jitter below the cap");
    }
    assert.equal(retryDelay(20, 5000, 1), 5000);
  });

  it("treats attempt 0 like the first retry", () => {
    assert.equal(retryDelay(0, 30_000, 0.5), 1000);
  });
});

describe("queue machine", () => {
  it("stays idle with nothing to send, and links on NONEMPTY", () => {
    const q = start();
    assert.equal(q.value(), "idle");
    assert.equal(q.hasConn(), false);
    q.actor.send({ type: "NONEMPTY" });
    assert.deepEqual(q.value(), { link: "connecting" });
    assert.deepEqual(q.recorded.connInputs, [
      {
        local: LOCAL,
        remote: REMOTE,
        authorize: true,
        tlsMode: "starttls",
        stateTimeoutMs: 10_000,
        streamTimeoutMs: 600_000,
      },
    ]);
  });

  it("links at once when stanzas are already buffered", () => {
    const q = start({}, { pending: true });
    assert.deepEqual(q.value(), { link: "connecting" });
    assert.equal(q.recorded.connInputs.length, 1);
  });

  it("LINK_UP: sending, the buffer is attached to that connection", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "UP", connectionId: "conn-9" });
    assert.deepEqual(q.value(), { link: "sending" });
    assert.deepEqual(q.attached, ["conn-9"]);
    assert.equal(q.detached(), 0);
  });

  it("NONEMPTY while linked changes nothing", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.actor.send({ type: "NONEMPTY" });
    assert.equal(q.recorded.connInputs.length, 1);
    q.conn({ type: "UP", connectionId: "conn-9" });
    q.actor.send({ type: "NONEMPTY" });
    assert.deepEqual(q.value(), { link: "sending" });
    assert.equal(q.recorded.connInputs.length, 1);
  });

  it("a link closed without failure (idle close) goes back to idle, detaching the buffer", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "UP", connectionId: "conn-9" });
    q.conn({ type: "CLOSE" });
    assert.equal(q.value(), "idle");
    assert.equal(q.detached(), 1);
    assert.deepEqual(q.bounces, []);
    assert.equal(q.hasConn(), false);
  });

  it("…and links again when stanzas are still buffered", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "UP", connectionId: "conn-9" });
    q.buffer.pending = true;
    q.conn({ type: "CLOSE" });
    assert.deepEqual(q.value(), { link: "connecting" });
    assert.equal(q.recorded.connInputs.length, 2);
    assert.equal(q.detached(), 1);
  });

  it("a failed connection bounces what is queued and backs off about 1 s", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "FAIL", failure: timeoutFailure });
    assert.equal(q.value(), "backoff");
    assert.deepEqual(q.bounces, [timeoutFailure]);
    assert.equal(q.context().attempt, 1);
    assert.deepEqual(q.context().lastFailure, timeoutFailure);
    const delay = q.context().retryDelayMs;
    assert.ok(delay >= 800 && delay <= 1200, `first retry after ${delay} ms`);
    assert.equal(q.detached(), 0, "never attached, never detached");
  });

  it("bounces with the failure's own condition (remote-server-not-found)", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    const dns: LinkFailure = { condition: "remote-server-not-found", text: "DNS: no SRV or A/AAAA records" };
    q.conn({ type: "FAIL", failure: dns });
    assert.deepEqual(q.bounces, [dns]);
  });

  it("backoff ends in idle when nothing is buffered", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "FAIL", failure: timeoutFailure });
    const delay = q.context().retryDelayMs;
    q.clock.increment(delay - 1);
    assert.equal(q.value(), "backoff");
    q.actor.send({ type: "NONEMPTY" });
    assert.equal(q.value(), "backoff", "new stanzas wait for the backoff");
    q.clock.increment(1);
    assert.equal(q.value(), "idle");
    assert.equal(q.recorded.connInputs.length, 1);
  });

  it("retires after retireAfterMs idle with nothing to send (final, output retired)", () => {
    const q = start({ retireAfterMs: 1000 });
    q.clock.increment(999);
    assert.equal(q.value(), "idle");
    q.clock.increment(1);
    assert.equal(q.value(), "retired");
    assert.deepEqual(q.actor.getSnapshot().output, { retired: true });
    assert.deepEqual(q.bounces, [], "nothing was held, nothing bounced");
  });

  it("a stopped queue's output says it was not retired", () => {
    const q = start();
    q.actor.send({ type: "SHUTDOWN" });
    assert.deepEqual(q.actor.getSnapshot().output, { retired: false });
  });

  it("RETRY (an administrator's 'retry link now') clears the backoff and connects at once", () => {
    const q = start({ maxRetryDelayMs: 600_000 });
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "FAIL", failure: timeoutFailure });
    assert.equal(q.value(), "backoff");
    assert.equal(q.context().attempt, 1);
    q.actor.send({ type: "RETRY" });
    assert.deepEqual(q.value(), { link: "connecting" });
    assert.equal(q.context().attempt, 0, "the next failure backs off from the start again");
    assert.equal(q.recorded.connInputs.length, 2);
  });

  it("RETRY while idle connects even with nothing to send, so the link can be seen coming up", () => {
    const q = start();
    q.actor.send({ type: "RETRY" });
    assert.deepEqual(q.value(), { link: "connecting" });
    q.conn({ type: "UP", connectionId: "c1" });
    assert.deepEqual(q.value(), { link: "sending" });
  });

  it("backoff ends in a new link when stanzas are buffered", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "FAIL", failure: timeoutFailure });
    q.buffer.pending = true;
    q.clock.increment(q.context().retryDelayMs);
    assert.deepEqual(q.value(), { link: "connecting" });
    assert.equal(q.recorded.connInputs.length, 2);
  });

  it("counts consecutive failures and doubles the delay up to max_retry_delay", () => {
    const q = start({ maxRetryDelayMs: 3000 }, { pending: true });
    const bounds: [number, number][] = [
      [800, 1200],
      [1600, 2400],
      [2400, 3000],
      [2400, 3000],
    ];
    for (const [i, [low, high]] of bounds.entries()) {
      q.conn({ type: "FAIL", failure: timeoutFailure });
      assert.equal(q.value(), "backoff");
      assert.equal(q.context().attempt, i + 1);
      const delay = q.context().retryDelayMs;
      assert.ok(delay >= low && delay <= high, `attempt ${i + 1}: ${delay} ms not in [${low}, ${high}]`);
      q.clock.increment(delay);
      assert.deepEqual(q.value(), { link: "connecting" });
    }
    assert.equal(q.bounces.length, 4);
    assert.equal(q.recorded.connInputs.length, 5);
  });

  it("a link that came up resets the failure count", () => {
    const q = start({}, { pending: true });
    q.conn({ type: "FAIL", failure: timeoutFailure });
    q.clock.increment(q.context().retryDelayMs);
    q.conn({ type: "FAIL", failure: timeoutFailure });
    assert.equal(q.context().attempt, 2);
    q.clock.increment(q.context().retryDelayMs);
    q.conn({ type: "UP", connectionId: "conn-3" });
    assert.equal(q.context().attempt, 0);
    q.conn({ type: "FAIL", failure: timeoutFailure });
    assert.equal(q.context().attempt, 1);
    const delay = q.context().retryDelayMs;
    assert.ok(delay >= 800 && delay <= 1200, `back to about 1 s: ${delay}`);
  });

  it("a link that fails after coming up detaches, bounces and backs off", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "UP", connectionId: "conn-9" });
    const broken: LinkFailure = {
      condition: "remote-server-timeout",
      text: "the remote server broke the stream",
    };
    q.conn({ type: "FAIL", failure: broken });
    assert.equal(q.value(), "backoff");
    assert.equal(q.detached(), 1);
    assert.deepEqual(q.bounces, [broken]);
  });

  it("a connection that crashes counts as a failure: bounce and backoff", () => {
    const q = start({}, { throwOnStart: true });
    q.actor.send({ type: "NONEMPTY" });
    assert.equal(q.value(), "backoff");
    assert.equal(q.context().attempt, 1);
    const [bounce, ...more] = q.bounces;
    assert.ok(bounce);
    assert.deepEqual(more, []);
    assert.equal(bounce.condition, "remote-server-timeout");
    assert.match(bounce.text, /^internal error: .*fake connection crashed/);
  });

  const shutdownBounce: LinkFailure = {
    condition: "remote-server-timeout",
    text: "the server is shutting down",
  };

  it("SHUTDOWN in idle: stopped, bouncing with 'the server is shutting down'", () => {
    const q = start();
    q.actor.send({ type: "SHUTDOWN" });
    assert.equal(q.value(), "stopped");
    assert.equal(q.actor.getSnapshot().status, "done");
    assert.deepEqual(q.bounces, [shutdownBounce]);
  });

  it("SHUTDOWN in backoff: stopped at once", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "FAIL", failure: timeoutFailure });
    q.actor.send({ type: "SHUTDOWN" });
    assert.equal(q.value(), "stopped");
    assert.equal(q.actor.getSnapshot().status, "done");
    assert.deepEqual(q.bounces, [timeoutFailure, shutdownBounce]);
    q.buffer.pending = true;
    q.clock.increment(60_000);
    assert.equal(q.recorded.connInputs.length, 1, "the backoff timer is gone");
  });

  it("SHUTDOWN while linked is passed to the connection; stopped once it is done", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.conn({ type: "UP", connectionId: "conn-9" });
    q.actor.send({ type: "SHUTDOWN" });
    assert.equal(q.recorded.shutdowns, 1);
    assert.deepEqual(q.value(), { link: "sending" }, "waits for the connection to close");
    assert.deepEqual(q.bounces, [shutdownBounce], "what waits is bounced at once");
    q.conn({ type: "CLOSE" });
    assert.equal(q.value(), "stopped");
    assert.equal(q.actor.getSnapshot().status, "done");
    assert.deepEqual(q.bounces, [shutdownBounce, shutdownBounce], "and what came back unacknowledged");
    assert.equal(q.detached(), 1);
  });

  it("SHUTDOWN while connecting: a connection that then fails still ends in stopped, without backoff", () => {
    const q = start();
    q.actor.send({ type: "NONEMPTY" });
    q.actor.send({ type: "SHUTDOWN" });
    assert.equal(q.recorded.shutdowns, 1);
    assert.deepEqual(q.value(), { link: "connecting" });
    assert.deepEqual(q.bounces, [shutdownBounce], "nothing waits for the connection to give up");
    q.conn({ type: "FAIL", failure: { condition: "remote-server-timeout", text: "server shutting down" } });
    assert.equal(q.value(), "stopped");
    assert.deepEqual(q.bounces, [shutdownBounce, shutdownBounce]);
    assert.equal(q.context().attempt, 0);
  });
});
