/**
 * One XEP-0114 component session (jabber:component:accept), with MongooseIM's `[[listen.service]]`
 * behaviour: awaiting stream → awaiting handshake → established, and `replaced` when a newer
 * connection for the same domain takes over under `conflict_behaviour = "kick_old"`.
 *
 * Pure: the secret check (`validHandshake`), the route table (`nameTaken`, `registerRoutes`,
 * `unregisterRoutes`) and the transport are provided by src/ with `.provide()`, so the password
 * and the sockets never enter the machine's context.
 */
import { and, assign, emit, fromCallback, not, sendTo, setup } from "xstate";
import { endStream } from "./streamEnd.js";
import type { LogEmitted, ShutdownEvent, TransportCommand, TransportEvent } from "./events.js";
import { NS } from "../src/xmpp/namespaces.js";
import { el } from "../src/xml/element.js";
import { Jid } from "../src/xmpp/jid.js";

export type ConflictBehaviour = "disconnect" | "kick_old";

export interface ComponentInput {
  streamId: string;
  /** The server's hosted domains: a component may not take one, and `is_subdomain` spans them. */
  hosts: readonly string[];
  stateTimeoutMs: number;
  conflictBehaviour: ConflictBehaviour;
}

export interface ComponentContext extends ComponentInput {
  /** The domain named in the stream header's `to`. */
  domain?: string;
  /** MongooseIM's `is_subdomain="true"`: also serve `<domain>.<each hosted domain>`. */
  isSubdomain: boolean;
  closeReason?: string;
}

/** Sent by the route table to the old session when a new one for its domain takes over. */
export interface ReplacedEvent {
  type: "REPLACED";
}

export type ComponentEvent = TransportEvent | ShutdownEvent | ReplacedEvent;

/** Every domain a session serves once established. */
export function componentDomains(
  context: Pick<ComponentContext, "domain" | "isSubdomain" | "hosts">,
): string[] {
  if (context.domain === undefined) return [];
  if (!context.isSubdomain) return [context.domain];
  return [context.domain, ...context.hosts.map((host) => `${context.domain ?? ""}.${host}`)];
}

function headerDomain(to: string | undefined): string | undefined {
  if (to === undefined) return undefined;
  const jid = Jid.tryParse(to);
  return jid !== undefined && jid.local === "" && jid.resource === "" ? jid.domain : undefined;
}

export const componentMachine = setup({
  types: {
    context: {} as ComponentContext,
    events: {} as ComponentEvent,
    input: {} as ComponentInput,
    emitted: {} as LogEmitted,
  },
  actors: {
    transport: fromCallback<TransportCommand, { connectionId: string }>(() => undefined),
  },
  delays: {
    stateTimeout: ({ context }) => context.stateTimeoutMs,
  },
  guards: {
    wrongNamespace: ({ event }) =>
      event.type === "STREAM_HEADER" &&
      (event.header.ns !== NS.STREAM || event.header.defaultNs !== NS.COMPONENT),
    badDomain: ({ event }) => event.type === "STREAM_HEADER" && headerDomain(event.header.to) === undefined,
    hostedDomain: ({ context, event }) => {
      if (event.type !== "STREAM_HEADER") return false;
      const domain = headerDomain(event.header.to);
      return domain !== undefined && context.hosts.includes(domain);
    },
    isPeerStreamError: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "error" && event.element.ns === NS.STREAM,
    isHandshake: ({ event }) =>
      event.type === "ELEMENT" &&
      event.element.local === "handshake" &&
      (event.element.ns === NS.COMPONENT || event.element.ns === ""),
    // Provided by src/: they need the listener's password and the server's route table.
    validHandshake: () => false,
    nameTaken: () => false,
    mayKickOld: ({ context }) => context.conflictBehaviour === "kick_old",
  },
  actions: {
    recordHeader: assign(({ event }) => {
      if (event.type !== "STREAM_HEADER") return {};
      return {
        domain: headerDomain(event.header.to),
        isSubdomain: event.header.attrs.is_subdomain === "true",
      };
    }),
    // XEP-0114 §3: the answer has `from` = the component's domain, the stream id, and no version.
    openStream: sendTo("transport", ({ context }) => ({
      type: "OPEN_STREAM" as const,
      attrs: { defaultNs: NS.COMPONENT, from: context.domain ?? "", id: context.streamId },
    })),
    sendHandshake: sendTo("transport", { type: "SEND" as const, element: el("handshake") }),
    endStream: endStream<ComponentContext, ComponentEvent>(),
    logEstablished: emit(({ context }) => ({
      type: "log" as const,
      level: "notice" as const,
      message: `component connected for ${componentDomains(context).join(", ")}`,
    })),
    // Provided by src/: put the session in (and take it out of) the server's route table.
    registerRoutes: () => undefined,
    unregisterRoutes: () => undefined,
  },
}).createMachine({
  id: "component",
  context: ({ input }) => ({ ...input, isSubdomain: false }),
  invoke: { id: "transport", src: "transport", input: ({ context }) => ({ connectionId: context.streamId }) },
  initial: "awaitingStream",
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
    awaitingStream: {
      on: {
        STREAM_HEADER: [
          {
            guard: "wrongNamespace",
            target: "closing",
            actions: {
              type: "endStream",
              params: { condition: "invalid-namespace", text: "Expected a jabber:component:accept stream" },
            },
          },
          {
            guard: "badDomain",
            target: "closing",
            actions: {
              type: "endStream",
              params: ({ event }) => ({
                condition: "host-unknown",
                text: "The stream header must name the component's domain",
                detail: `to=${event.header.to ?? "(none)"}`,
              }),
            },
          },
          {
            guard: "hostedDomain",
            target: "closing",
            actions: {
              type: "endStream",
              params: ({ event }) => ({
                condition: "conflict",
                text: `${event.header.to ?? ""} is served by this server itself`,
              }),
            },
          },
          { target: "awaitingHandshake", actions: ["recordHeader", "openStream"] },
        ],
      },
      after: {
        stateTimeout: {
          target: "closing",
          actions: {
            type: "endStream",
            params: { condition: "connection-timeout", text: "No stream header" },
          },
        },
      },
    },
    awaitingHandshake: {
      on: {
        ELEMENT: [
          {
            guard: not("isHandshake"),
            target: "closing",
            actions: {
              type: "endStream",
              params: { condition: "not-authorized", text: "Send <handshake/> first" },
            },
          },
          {
            guard: not("validHandshake"),
            target: "closing",
            actions: {
              type: "endStream",
              params: { condition: "not-authorized", text: "Invalid handshake", detail: "wrong secret" },
            },
          },
          {
            guard: and(["nameTaken", not("mayKickOld")]),
            target: "closing",
            actions: {
              type: "endStream",
              params: ({ context }) => ({
                condition: "conflict",
                text: `A component for ${context.domain ?? ""} is already connected`,
              }),
            },
          },
          { target: "established" },
        ],
      },
      after: {
        stateTimeout: {
          target: "closing",
          actions: { type: "endStream", params: { condition: "connection-timeout", text: "No handshake" } },
        },
      },
    },
    established: {
      entry: ["sendHandshake", "registerRoutes", "logEstablished"],
      exit: "unregisterRoutes",
      on: {
        REPLACED: "replaced",
        // Stanzas never get here (they take the stanza path); anything else is not allowed.
        ELEMENT: [
          { guard: "isPeerStreamError", target: "closing", actions: { type: "endStream", params: {} } },
          {
            target: "closing",
            actions: {
              type: "endStream",
              params: ({ event }) => ({
                condition: "unsupported-stanza-type",
                text: `<${event.element.name}/> is not a stanza`,
              }),
            },
          },
        ],
      },
    },
    // A newer connection took the domain over (kick_old); it already has this session's queue.
    replaced: {
      entry: {
        type: "endStream",
        params: { condition: "conflict", text: "Replaced by a new connection" },
      },
    },
    closing: {},
    closed: { type: "final" },
  },
});
