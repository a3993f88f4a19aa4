/**
 * One incoming S2S stream (RFC 6120 §4, jabber:server). jabberd14's admin view (seed 000) puts such
 * a stream in "connecting incoming" until a domain is authorized on it and in "established
 * incoming" afterwards; the top-level states carry those names so logs, metrics and the disco tree
 * say the same thing.
 *
 * The machine is pure: its transport (socket + XML parser, src/net) is an invoked callback actor
 * supplied with `.provide()`; commands go to it with `sendTo("transport", …)`.
 */
import { assign, emit, enqueueActions, fromCallback, sendTo, setup } from "xstate";
import { endStream } from "./streamEnd.js";
import type { LogEmitted, ShutdownEvent, TransportCommand, TransportEvent } from "./events.js";
import { NS } from "../src/xmpp/namespaces.js";
import { serverFeatures, type StartTlsOffer } from "../src/xmpp/features.js";
import { stanzaKind } from "../src/xmpp/stanzaErrors.js";

export interface S2sInInput {
  /** Fresh, unguessable (RFC 6120 §4.7.3); also the key of the transport in src/net. */
  streamId: string;
  hosts: readonly string[];
  /** `[[listen.s2s]] state_timeout`: how long a negotiation step may wait for the peer. */
  stateTimeoutMs: number;
  starttls: StartTlsOffer;
}

export interface S2sInContext extends S2sInInput {
  /** The `to` of the peer's header: the local domain it wants (jabberd14's "Addresses"). */
  localDomain?: string;
  /** The `from` of the peer's header, when it sent one (optional in RFC 3920). */
  remoteDomain?: string;
  /** "1.0", "0.9" (pre-RFC peer, no version attribute) or undefined before the header. */
  version?: string;
  /** Domains authorized on this stream (several with dialback piggybacking). */
  authorized: string[];
  /** Why the stream ended, for logs and metrics. */
  closeReason?: string;
}

export type S2sInEvent = TransportEvent | ShutdownEvent;

/** RFC 6120 §4.7.5: a missing version means pre-XMPP-1.0; answer with the lower of both. */
function isVersion1(version: string | undefined): boolean {
  if (version === undefined) return false;
  const major = Number.parseInt(version.split(".")[0] ?? "", 10);
  return Number.isFinite(major) && major >= 1;
}

export const s2sInMachine = setup({
  types: {
    context: {} as S2sInContext,
    events: {} as S2sInEvent,
    input: {} as S2sInInput,
    emitted: {} as LogEmitted,
  },
  actors: {
    // Provided by src/net with the real socket; this placeholder keeps the chart self-contained.
    transport: fromCallback<TransportCommand, { connectionId: string }>(() => undefined),
  },
  delays: {
    stateTimeout: ({ context }) => context.stateTimeoutMs,
  },
  guards: {
    wrongNamespace: ({ event }) =>
      event.type === "STREAM_HEADER" &&
      (event.header.ns !== NS.STREAM || event.header.defaultNs !== NS.SERVER),
    unknownHost: ({ context, event }) =>
      event.type === "STREAM_HEADER" &&
      event.header.to !== undefined &&
      !context.hosts.includes(event.header.to.toLowerCase()),
    isStanza: ({ event }) => event.type === "ELEMENT" && stanzaKind(event.element) !== undefined,
  },
  actions: {
    recordHeader: assign(({ event }) => {
      if (event.type !== "STREAM_HEADER") return {};
      return {
        localDomain: event.header.to?.toLowerCase(),
        remoteDomain: event.header.from?.toLowerCase(),
        version: isVersion1(event.header.version) ? "1.0" : "0.9",
      };
    }),
    openStream: sendTo("transport", ({ context }) => ({
      type: "OPEN_STREAM" as const,
      attrs: {
        defaultNs: NS.SERVER,
        id: context.streamId,
        ...(context.localDomain === undefined ? {} : { from: context.localDomain }),
        ...(context.remoteDomain === undefined ? {} : { to: context.remoteDomain }),
        ...(context.version === "1.0" ? { version: "1.0" } : {}),
        extraNamespaces: { db: NS.DIALBACK },
      },
    })),
    // Pre-1.0 peers get no features (seed 000: "XMPP version" 0.9) but may still do dialback.
    sendFeaturesIfV1: enqueueActions(({ context, enqueue }) => {
      if (context.version !== "1.0") return;
      enqueue.sendTo("transport", {
        type: "SEND",
        element: serverFeatures({ starttls: context.starttls, dialback: true }),
      } satisfies TransportCommand);
    }),
    endStream: endStream<S2sInContext, S2sInEvent>(),
    logOpened: emit(({ context }) => ({
      type: "log" as const,
      level: "info",
      message: `stream ${context.streamId} opened from ${context.remoteDomain ?? "(no from)"} to ${
        context.localDomain ?? "(no to)"
      }, XMPP ${context.version ?? "?"}`,
    })),
  },
}).createMachine({
  id: "s2sIn",
  context: ({ input }) => ({ ...input, authorized: [] }),
  invoke: { id: "transport", src: "transport", input: ({ context }) => ({ connectionId: context.streamId }) },
  initial: "connecting",
  on: {
    SOCKET_CLOSED: {
      target: ".closed",
      actions: assign({ closeReason: ({ context }) => context.closeReason ?? "peer closed" }),
    },
    STREAM_ERROR: {
      target: ".closing",
      actions: {
        type: "endStream",
        params: ({ event }) => ({ condition: event.condition, text: event.text }),
      },
    },
    STREAM_END: { target: ".closing", actions: { type: "endStream", params: {} } },
    SHUTDOWN: {
      target: ".closing",
      actions: {
        type: "endStream",
        params: { condition: "system-shutdown", text: "Server is shutting down" },
      },
    },
  },
  states: {
    // jabberd14: "connecting incoming connections" — not (yet) authorized for any domain.
    connecting: {
      initial: "waitForStream",
      states: {
        waitForStream: {
          on: {
            STREAM_HEADER: [
              {
                guard: "wrongNamespace",
                target: "#s2sIn.closing",
                actions: {
                  type: "endStream",
                  params: { condition: "invalid-namespace", text: "Expected a jabber:server stream" },
                },
              },
              {
                guard: "unknownHost",
                target: "#s2sIn.closing",
                actions: {
                  type: "endStream",
                  params: ({ event }) => ({
                    condition: "host-unknown",
                    text: `This server does not serve ${event.header.to ?? ""}`,
                  }),
                },
              },
              { target: "awaitingAuth", actions: ["recordHeader", "openStream", "logOpened"] },
            ],
          },
          after: {
            stateTimeout: {
              target: "#s2sIn.closing",
              actions: {
                type: "endStream",
                params: { condition: "connection-timeout", text: "No stream header" },
              },
            },
          },
        },
        // Header answered; a 1.0 peer has our features. Dialback (issue 4) authorizes domains here.
        awaitingAuth: {
          entry: "sendFeaturesIfV1",
          on: {
            ELEMENT: {
              guard: "isStanza",
              target: "#s2sIn.closing",
              actions: {
                type: "endStream",
                params: {
                  condition: "not-authorized",
                  text: "Authenticate (dialback) before sending stanzas",
                  detail: "stanza before authentication",
                },
              },
            },
          },
        },
      },
    },
    // jabberd14: "established incoming connections" — one or more domains authorized.
    established: {},
    closing: {},
    closed: { type: "final" },
  },
});
