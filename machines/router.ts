/**
 * The router: supervisor of every root actor (connections, queues, verifications). It is told of
 * children through registry events and decides, OTP-style, what a crash means: restart the child
 * (at most `restartIntensity` times per `restartPeriodMs` per key) or release it (close its socket,
 * bounce its stanzas). On SHUTDOWN it drains: listeners close, every child is asked to end its
 * stream, and the router ends when the last child is gone or the drain timeout passes.
 *
 * The `Map` of children lives outside the machine (src/routing/registry.ts): context only keeps
 * what the decisions need (a live count and recent restart times), so it stays small and showable.
 * Effects are emitted; src/ carries them out.
 */
import { assign, emit, setup } from "xstate";

export type ChildKind = "s2sIn" | "s2sOut" | "queue" | "dialbackVerify" | "component";

export type RouterEvent =
  | { type: "CHILD_STARTED"; key: string; kind: ChildKind }
  | { type: "CHILD_DONE"; key: string }
  | { type: "CHILD_FAILED"; key: string; restartable: boolean; error: string }
  | { type: "SHUTDOWN" };

export type RouterEmitted =
  | { type: "restartChild"; key: string }
  /** The child is gone for good: release what it held and bounce what it had accepted. */
  | { type: "releaseChild"; key: string; reason: string }
  /** Begin the drain: stop accepting, ask every child (or the one named) to close. */
  | { type: "drain"; key?: string }
  /** The drain timed out: force what is left closed. */
  | { type: "forceStop" };

export interface RouterInput {
  restartIntensity?: number;
  restartPeriodMs?: number;
  drainTimeoutMs?: number;
}

export interface RouterContext {
  live: number;
  /** Recent restart times per key, pruned to the restart period. */
  restarts: Record<string, number[]>;
  restartIntensity: number;
  restartPeriodMs: number;
  drainTimeoutMs: number;
}

function recentRestarts(context: RouterContext, key: string, now: number): number[] {
  return (context.restarts[key] ?? []).filter((t) => now - t < context.restartPeriodMs);
}

export const routerMachine = setup({
  types: {
    context: {} as RouterContext,
    events: {} as RouterEvent,
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- XState reads the type only
    input: {} as RouterInput,
    emitted: {} as RouterEmitted,
  },
  guards: {
    mayRestart: ({ context, event }) =>
      event.type === "CHILD_FAILED" &&
      event.restartable &&
      recentRestarts(context, event.key, Date.now()).length < context.restartIntensity,
    noChildrenLeft: ({ context }) => context.live <= 0,
  },
  delays: {
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
  actions: {
    countStarted: assign({ live: ({ context }) => context.live + 1 }),
    countGone: assign({
      live: ({ context }) => context.live - 1,
      restarts: ({ context, event }) => {
        if (event.type !== "CHILD_DONE" && event.type !== "CHILD_FAILED") return context.restarts;
        const { [event.key]: _gone, ...rest } = context.restarts;
        return rest;
      },
    }),
    recordRestart: assign({
      restarts: ({ context, event }) => {
        if (event.type !== "CHILD_FAILED") return context.restarts;
        const now = Date.now();
        return { ...context.restarts, [event.key]: [...recentRestarts(context, event.key, now), now] };
      },
    }),
    emitRestart: emit(({ event }) => ({
      type: "restartChild" as const,
      key: "key" in event ? event.key : "",
    })),
    emitRelease: emit(({ event }) => ({
      type: "releaseChild" as const,
      key: "key" in event ? event.key : "",
      reason: event.type === "CHILD_FAILED" ? event.error : "done",
    })),
    emitDrain: emit({ type: "drain" as const }),
    emitDrainChild: emit(({ event }) => ({ type: "drain" as const, key: "key" in event ? event.key : "" })),
    emitForceStop: emit({ type: "forceStop" as const }),
  },
}).createMachine({
  id: "router",
  context: ({ input }) => ({
    live: 0,
    restarts: {},
    restartIntensity: input.restartIntensity ?? 3,
    restartPeriodMs: input.restartPeriodMs ?? 60_000,
    drainTimeoutMs: input.drainTimeoutMs ?? 1500,
  }),
  initial: "running",
  states: {
    running: {
      on: {
        CHILD_STARTED: { actions: "countStarted" },
        CHILD_DONE: { actions: ["countGone", "emitRelease"] },
        // A restarted child keeps its registry slot, so the live count does not change.
        CHILD_FAILED: [
          { guard: "mayRestart", actions: ["recordRestart", "emitRestart"] },
          { actions: ["countGone", "emitRelease"] },
        ],
        SHUTDOWN: "draining",
      },
    },
    draining: {
      entry: "emitDrain",
      always: { guard: "noChildrenLeft", target: "stopped" },
      on: {
        // Children created while draining (an accept racing the listener close) are drained too.
        CHILD_STARTED: { actions: ["countStarted", "emitDrainChild"] },
        CHILD_DONE: { actions: ["countGone", "emitRelease"] },
        CHILD_FAILED: { actions: ["countGone", "emitRelease"] },
      },
      after: { drainTimeout: { target: "stopped", actions: "emitForceStop" } },
    },
    stopped: { type: "final" },
  },
});
