/**
 * One outgoing queue per (source domain, target domain), as CommuniGate Pro keeps them (seed 001):
 * the first stanza opens a connection, everything queued is sent, the connection stays open while
 * idle and is closed after `stream_timeout`. On failure everything queued is bounced and the queue
 * backs off (about 1 s, doubling with jitter up to `max_retry_delay`) before it tries again.
 *
 * The stanzas themselves live in src/ (a bounded buffer that writes straight to the connection);
 * this machine only sees "the buffer is no longer empty" and the connection's life.
 */
import { assign, emit, sendTo, setup } from "xstate";
import type { LogEmitted, ShutdownEvent } from "./events.js";
import {
  s2sOutMachine,
  type LinkFailure,
  type OutgoingTlsMode,
  type S2sOutInput,
  type S2sOutParentEvent,
} from "./s2sOut.js";

export interface QueueInput {
  local: string;
  remote: string;
  maxRetryDelayMs: number;
  tlsMode: OutgoingTlsMode;
  stateTimeoutMs: number;
  streamTimeoutMs: number;
  /** Passed on to each connection (see S2sOutInput). */
  tlsPolicy?: S2sOutInput["tlsPolicy"];
  ownCertificate?: boolean;
  /** How long an idle queue with nothing to send is kept (default 60 s). */
  retireAfterMs?: number;
}

export interface QueueContext extends QueueInput {
  /** Consecutive failed connection attempts. */
  attempt: number;
  retryDelayMs: number;
  lastFailure?: LinkFailure;
  stopping: boolean;
}

export type QueueEvent =
  /** The buffer went from empty to non-empty. */
  | { type: "NONEMPTY" }
  /** An administrator asks for a new attempt now (seed 000 tree, HTTP API): the backoff is cleared. */
  | { type: "RETRY" }
  | Extract<S2sOutParentEvent, { type: "LINK_UP" }>
  | ShutdownEvent;

/** First retry after about 1 s, doubling per failure up to max_retry_delay, ±20 % jitter. */
export function retryDelay(attempt: number, maxMs: number, random: number = Math.random()): number {
  const base = Math.min(maxMs, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(Math.min(maxMs, base * (0.8 + 0.4 * random)));
}

export const queueMachine = setup({
  types: {
    context: {} as QueueContext,
    events: {} as QueueEvent,
    input: {} as QueueInput,
    emitted: {} as LogEmitted,
  },
  actors: {
    conn: s2sOutMachine,
  },
  delays: {
    retryDelay: ({ context }) => context.retryDelayMs,
    // An idle queue with nothing to send goes away (its memory with it); the next stanza makes a new one.
    retireAfter: ({ context }) => context.retireAfterMs ?? 60_000,
  },
  guards: {
    // Provided by src/: whether the buffer holds stanzas.
    hasPending: () => false,
    stopping: ({ context }) => context.stopping,
  },
  actions: {
    // Provided by src/: hand the established connection to the buffer, and take it back.
    attachLink: (_, _params: { connectionId: string }) => undefined,
    detachLink: () => undefined,
    // Provided by src/: return every buffered stanza to its sender with this error.
    bounceQueued: (_, _params: LinkFailure) => undefined,
  },
}).createMachine({
  id: "queue",
  context: ({ input }) => ({ ...input, attempt: 0, retryDelayMs: 0, stopping: false }),
  // Retired (idle, nothing to send) rather than stopped by a shutdown.
  output: ({ context }) => ({ retired: !context.stopping }),
  initial: "idle",
  states: {
    idle: {
      always: { guard: "hasPending", target: "link" },
      // RETRY connects even with nothing to send, so that an administrator sees the link come up.
      on: { NONEMPTY: "link", RETRY: "link", SHUTDOWN: "stopped" },
      after: { retireAfter: [{ guard: "hasPending", target: "link" }, { target: "retired" }] },
    },
    // Final, nothing held: src/ forgets the queue (a stanza arriving meanwhile opens a new one).
    retired: { type: "final" },
    link: {
      invoke: {
        id: "conn",
        src: "conn",
        input: ({ context }) => ({
          local: context.local,
          remote: context.remote,
          authorize: true,
          tlsMode: context.tlsMode,
          stateTimeoutMs: context.stateTimeoutMs,
          streamTimeoutMs: context.streamTimeoutMs,
          // Only what differs from s2sOut's defaults (opportunistic TLS, no certificate of ours): an
          // established link's context then stays within 19 fields, which V8 keeps as a fast object
          // after XState's Object.assign; one more makes it a 0.8 KiB dictionary (issue 9).
          ...(context.tlsPolicy === undefined || context.tlsPolicy === "opportunistic"
            ? {}
            : { tlsPolicy: context.tlsPolicy }),
          ...(context.ownCertificate === true ? { ownCertificate: true } : {}),
        }),
        onDone: [
          { guard: "stopping", target: "stopped" },
          {
            guard: ({ event }) => event.output.failure !== undefined,
            target: "backoff",
            actions: [
              assign({
                attempt: ({ context }) => context.attempt + 1,
                lastFailure: ({ event }) => event.output.failure,
              }),
              // One line per connection outcome (issue 6): pair, result, reason.
              emit(({ context, event }) => ({
                type: "log" as const,
                level: "info" as const,
                message: `link ${context.local} → ${context.remote} failed (attempt ${context.attempt + 1}): ${
                  event.output.failure?.text ?? "?"
                }`,
              })),
              {
                type: "bounceQueued",
                params: ({ event }) =>
                  event.output.failure ?? { condition: "remote-server-timeout", text: "connection failed" },
              },
            ],
          },
          // Closed after being idle (or by the peer): connect again when there is something to send.
          { target: "idle" },
        ],
        onError: {
          target: "backoff",
          actions: [
            assign({ attempt: ({ context }) => context.attempt + 1 }),
            {
              type: "bounceQueued",
              params: ({ event }) => ({
                condition: "remote-server-timeout",
                text: `internal error: ${String(event.error)}`,
              }),
            },
          ],
        },
      },
      initial: "connecting",
      states: {
        connecting: {
          on: {
            LINK_UP: {
              target: "sending",
              actions: [
                assign({ attempt: 0 }),
                emit(({ event }) => ({
                  type: "log" as const,
                  level: "info" as const,
                  message: `link ${event.local} → ${event.remote} up: ${
                    event.auth === "external" ? "SASL EXTERNAL" : "dialback"
                  }, ${event.tls === "none" ? "no TLS" : `TLS (${event.tls})`}, ${event.peer}`,
                })),
                { type: "attachLink", params: ({ event }) => ({ connectionId: event.connectionId }) },
              ],
            },
          },
        },
        sending: { exit: "detachLink" },
      },
      on: {
        // What waits is bounced at once, while its senders' streams are still open; what the peer
        // has not acknowledged yet (XEP-0198) comes back when the stream is closed, and goes too.
        SHUTDOWN: {
          actions: [
            assign({ stopping: true }),
            {
              type: "bounceQueued",
              params: { condition: "remote-server-timeout", text: "the server is shutting down" },
            },
            sendTo("conn", { type: "SHUTDOWN" }),
          ],
        },
      },
    },
    backoff: {
      entry: assign({ retryDelayMs: ({ context }) => retryDelay(context.attempt, context.maxRetryDelayMs) }),
      after: {
        retryDelay: [{ guard: "hasPending", target: "link" }, { target: "idle" }],
      },
      on: {
        SHUTDOWN: "stopped",
        RETRY: { target: "link", actions: assign({ attempt: 0 }) },
      },
    },
    stopped: {
      type: "final",
      entry: [
        assign({ stopping: true }),
        {
          type: "bounceQueued",
          params: { condition: "remote-server-timeout", text: "the server is shutting down" },
        },
      ],
    },
  },
});
