/**
 * One XEP-0220 verification, receiving side (steps 2–3): an incoming stream got
 * `<db:result from=originating to=receiving>KEY</db:result>`; ask the authoritative server of the
 * originating domain, over a connection of our own, whether KEY is its key for that stream.
 * verifying → valid | invalid | failed; the answer goes back to the incoming stream.
 *
 * The answer is also emitted (`verdict`) the moment it arrives: the connection still closes its
 * stream properly before the machine is done, and the incoming stream need not wait for that.
 */
import { assign, emit, setup } from "xstate";
import type { LogEmitted } from "./events.js";
import type { S2sOutInput, S2sOutParentEvent, OutgoingTlsMode } from "./s2sOut.js";
import { s2sOutMachine } from "./s2sOut.js";

export interface DialbackVerifyInput {
  /** The incoming stream the db:result came on. */
  streamId: string;
  /** Receiving (ours) and originating (theirs) domains. */
  local: string;
  remote: string;
  key: string;
  tlsMode: OutgoingTlsMode;
  stateTimeoutMs: number;
  /** The whole verification may take this long (DNS, connect, negotiation, answer). */
  timeoutMs: number;
  /** `outgoing.tls.require_for` for the originating domain (see S2sOutInput). */
  tlsPolicy?: S2sOutInput["tlsPolicy"];
}

export interface DialbackVerifyContext extends DialbackVerifyInput {
  answer?: boolean;
  reason?: string;
}

export interface DialbackVerifyOutput {
  result: "valid" | "invalid" | "failed";
  /** Why it failed, for the dialback error and the log. */
  reason?: string;
}

export type DialbackVerifyEvent = Extract<S2sOutParentEvent, { type: "VERIFY_ANSWER" }>;

/** The authoritative server's answer, as soon as it is in (the output follows once closed). */
export interface DialbackVerdictEmitted {
  type: "verdict";
  result: "valid" | "invalid";
}

export const dialbackVerifyMachine = setup({
  types: {
    context: {} as DialbackVerifyContext,
    events: {} as DialbackVerifyEvent,
    input: {} as DialbackVerifyInput,
    output: {} as DialbackVerifyOutput,
    emitted: {} as LogEmitted | DialbackVerdictEmitted,
  },
  actors: {
    // Provided by src/ with its real I/O (the same s2sOut logic the queues use).
    conn: s2sOutMachine,
  },
  delays: {
    verifyTimeout: ({ context }) => context.timeoutMs,
  },
  guards: {
    answered: ({ context }) => context.answer !== undefined,
    answeredValid: ({ context }) => context.answer === true,
  },
}).createMachine({
  id: "dialbackVerify",
  context: ({ input }) => ({ ...input }),
  initial: "verifying",
  output: ({ context }) => ({
    result: context.answer === undefined ? "failed" : context.answer ? "valid" : "invalid",
    ...(context.reason === undefined ? {} : { reason: context.reason }),
  }),
  states: {
    verifying: {
      invoke: {
        id: "conn",
        src: "conn",
        input: ({ context }) => ({
          local: context.local,
          remote: context.remote,
          authorize: false,
          tlsMode: context.tlsMode,
          stateTimeoutMs: context.stateTimeoutMs,
          streamTimeoutMs: context.timeoutMs,
          verify: { id: context.streamId, key: context.key },
          ...(context.tlsPolicy === undefined ? {} : { tlsPolicy: context.tlsPolicy }),
        }),
        // The connection closes itself once the answer is in (or it failed).
        onDone: [
          { guard: "answeredValid", target: "valid" },
          { guard: "answered", target: "invalid" },
          {
            target: "failed",
            actions: assign({
              reason: ({ event }) =>
                event.output.failure?.text ?? "the authoritative server closed the stream without answering",
            }),
          },
        ],
        onError: { target: "failed", actions: assign({ reason: ({ event }) => String(event.error) }) },
      },
      on: {
        VERIFY_ANSWER: {
          actions: [
            assign({ answer: ({ event }) => event.valid }),
            emit(({ event }) => ({
              type: "verdict" as const,
              result: event.valid ? ("valid" as const) : ("invalid" as const),
            })),
          ],
        },
      },
      after: {
        verifyTimeout: [
          { guard: "answeredValid", target: "valid" },
          { guard: "answered", target: "invalid" },
          {
            target: "failed",
            actions: assign({ reason: "no answer from the authoritative server in time" }),
          },
        ],
      },
    },
    valid: { type: "final" },
    invalid: { type: "final" },
    failed: { type: "final" },
  },
});
