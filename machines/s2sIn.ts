/**
 * One incoming S2S stream (RFC 6120 §4, jabber:server). jabberd14's admin view (seed 000) puts such
 * a stream in "connecting incoming" until a domain is authorized on it and in "established
 * incoming" afterwards; the top-level states carry those names so logs, metrics and the disco tree
 * say the same thing.
 *
 * Dialback (XEP-0220), receiving side: each `<db:result/>` starts a verification (its own actor,
 * src/ starts it) and its verdict comes back as DIALBACK_VERIFIED; several domain pairs may be
 * authorized on one stream (piggybacking). Authoritative side: `<db:verify/>` is answered with keys
 * recomputed from the secret (src/, XEP-0185).
 *
 * Pure: the transport, the secret, the policy and the route table are provided by src/.
 */
import { and, assign, emit, enqueueActions, fromCallback, not, raise, sendTo, setup, stateIn } from "xstate";
import { endStream } from "./streamEnd.js";
import type {
  AdminCloseEvent,
  CertificateSummary,
  LogEmitted,
  ShutdownEvent,
  TransportCommand,
  TransportEvent,
} from "./events.js";
import { el } from "../src/xml/element.js";
import { Jid } from "../src/xmpp/jid.js";
import { NS } from "../src/xmpp/namespaces.js";
import { serverFeatures, type StartTlsOffer } from "../src/xmpp/features.js";
import { stanzaKind, type StanzaErrorCondition } from "../src/xmpp/stanzaErrors.js";
import { dbResultAnswer, readDialback, type DialbackElement } from "../src/xmpp/dialback.js";

export interface S2sInInput {
  /** The key of the transport in src/net (and of this actor in the registry). */
  connectionId: string;
  /** Fresh, unguessable (RFC 6120 §4.7.3); a new one after STARTTLS. */
  streamId: string;
  hosts: readonly string[];
  /** `[[listen.s2s]] state_timeout`: how long a negotiation step may wait for the peer. */
  stateTimeoutMs: number;
  /** `stream_timeout`: an established stream idle this long is closed. */
  streamTimeoutMs: number;
  starttls: StartTlsOffer;
  /** `[s2s] secure_auth`: only certificates (SASL EXTERNAL, or dialback over verified TLS). */
  secureAuth?: boolean;
  /** The listener is direct TLS (XEP-0368): the stream is encrypted from the first byte. */
  directTls?: boolean;
}

export interface S2sInContext extends S2sInInput {
  /** The peer certificate's verdict for the stream's `from` domain, once TLS is up. */
  certificate?: CertificateSummary;
  /** The `to` of the peer's header: the local domain it wants (jabberd14's "Addresses"). */
  localDomain?: string;
  /** The `from` of the peer's header, when it sent one (optional in RFC 3920). */
  remoteDomain?: string;
  /** "1.0", "0.9" (pre-RFC peer, no version attribute) or undefined before the header. */
  version?: string;
  /** STARTTLS done on this stream. */
  secure: boolean;
  /** Authorized "originating receiving" domain pairs (several with dialback piggybacking). */
  authorized: string[];
  /** Pairs with a verification under way. */
  pending: string[];
  /** How each authorized pair was proven (same order as `authorized`), for the admin views. */
  authMethods: string[];
  /** Why the stream ended, for logs and metrics. */
  closeReason?: string;
}

/** The verdict of a dialbackVerify actor, delivered by src/. */
export interface DialbackVerifiedEvent {
  type: "DIALBACK_VERIFIED";
  remote: string;
  local: string;
  result: "valid" | "invalid" | "failed";
  reason?: string;
  /** For "failed": the error the originating server hears (default remote-server-timeout). */
  condition?: StanzaErrorCondition;
}

export type S2sInEvent = TransportEvent | ShutdownEvent | AdminCloseEvent | DialbackVerifiedEvent;

/** RFC 6120 §4.7.5: a missing version means pre-XMPP-1.0; answer with the lower of both. */
function isVersion1(version: string | undefined): boolean {
  if (version === undefined) return false;
  const major = Number.parseInt(version.split(".")[0] ?? "", 10);
  return Number.isFinite(major) && major >= 1;
}

export const pairKey = (remote: string, local: string): string => `${remote} ${local}`;

/** A bare domain (no local part, no resource), as dialback addresses must be. */
function isDomain(value: string | undefined): boolean {
  if (value === undefined || value === "") return false;
  const jid = Jid.tryParse(value);
  return jid !== undefined && jid.local === "" && jid.resource === "";
}

function dialbackOf(event: S2sInEvent): DialbackElement | undefined {
  return event.type === "ELEMENT" ? readDialback(event.element) : undefined;
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
    // Provided by src/ (hosted domains and component domains); the default knows only the hosts.
    headerTargetServed: ({ context, event }) =>
      event.type === "STREAM_HEADER" && context.hosts.includes((event.header.to ?? "").toLowerCase()),
    noTarget: ({ event }) => event.type === "STREAM_HEADER" && event.header.to === undefined,
    isStanza: ({ event }) => event.type === "ELEMENT" && stanzaKind(event.element) !== undefined,
    isPeerStreamError: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "error" && event.element.ns === NS.STREAM,
    isSmEnable: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "enable" && event.element.ns === NS.SM,
    isStartTls: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "starttls" && event.element.ns === NS.TLS,
    tlsOffered: ({ context }) => context.starttls !== "none" && !context.secure,
    isDbVerifyRequest: ({ event }) => {
      const db = dialbackOf(event);
      return db?.kind === "verify" && db.type === undefined && db.id !== undefined;
    },
    isDbResultRequest: ({ event }) => {
      const db = dialbackOf(event);
      return db?.kind === "result" && db.type === undefined;
    },
    tlsRequiredFirst: ({ context }) => context.starttls === "required" && !context.secure,
    secureAuthOn: ({ context }) => context.secureAuth === true,
    // Provided by src/: the stream's certificate verifies for the db:result's originating domain.
    dbOriginCertified: () => false,
    isSaslExternal: ({ event }) =>
      event.type === "ELEMENT" &&
      event.element.local === "auth" &&
      event.element.ns === NS.SASL &&
      event.element.attrs.mechanism === "EXTERNAL",
    // XEP-0178 §3: authzid empty ("=") or the stream's `from`; certificate verified for it.
    externalAcceptable: ({ context, event }) => {
      if (event.type !== "ELEMENT" || !context.secure || context.certificate?.ok !== true) return false;
      const text = event.element.text().trim();
      const authzid =
        text === "" || text === "=" ? context.remoteDomain : Buffer.from(text, "base64").toString("utf8");
      return authzid !== undefined && authzid === context.remoteDomain;
    },
    verdictValid: ({ event }) => event.type === "DIALBACK_VERIFIED" && event.result === "valid",
    // Another domain pair is already authorized on this stream (piggybacking).
    othersAuthorized: ({ context, event }) =>
      event.type === "DIALBACK_VERIFIED" &&
      context.authorized.some((pair) => pair !== pairKey(event.remote, event.local)),
    // XEP-0220: from and to are bare domains, and db:verify carries the stream id.
    isMalformedDialback: ({ event }) => {
      if (event.type !== "ELEMENT" || event.element.ns !== NS.DIALBACK) return false;
      const { local, attrs } = event.element;
      if ((local !== "result" && local !== "verify") || attrs.type !== undefined) return false;
      return !isDomain(attrs.from) || !isDomain(attrs.to) || (local === "verify" && !attrs.id);
    },
    // Provided by src/: the db:result claims a domain served here (a loop, or a spoof).
    dbOriginLocal: ({ context, event }) => {
      const db = dialbackOf(event);
      return db !== undefined && context.hosts.includes(db.from);
    },
    // RFC 6120 §4.9.3.23: a first-level element that is neither a stanza nor understood here.
    isUnsupportedElement: ({ event }) =>
      event.type === "ELEMENT" &&
      stanzaKind(event.element) === undefined &&
      event.element.ns !== NS.DIALBACK &&
      event.element.ns !== NS.SM,
    verdictInvalid: ({ event }) => event.type === "DIALBACK_VERIFIED" && event.result === "invalid",
    verificationsPending: ({ context }) => context.pending.length > 0,
    isEstablished: stateIn("established"),
    // Provided by src/: is a db:result's receiving domain ours (hosted, or a component's)? May its
    // originating domain federate with us (default_policy, host_policy)?
    dbTargetServed: () => false,
    dbOriginAllowed: () => true,
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
      // XEP-0178: EXTERNAL only on an encrypted stream whose certificate verified for its `from`.
      const external = context.secure && context.certificate?.ok === true && context.authorized.length === 0;
      enqueue.sendTo("transport", {
        type: "SEND",
        element: serverFeatures({
          starttls: context.secure ? "none" : context.starttls,
          dialback: true,
          ...(external ? { saslMechanisms: ["EXTERNAL"] } : {}),
          streamManagement: true,
        }),
      } satisfies TransportCommand);
    }),
    // Provided by src/: start counting handled stanzas and answer <enabled/>.
    enableSm: () => undefined,
    refuseSm: sendTo("transport", {
      type: "SEND" as const,
      element: el("failed", { xmlns: NS.SM }, el("unexpected-request", { xmlns: NS.STANZA_ERRORS })),
    }),
    // Provided by src/: the peer certificate's verdict for the stream's `from` (after TLS).
    checkCertificate: () => undefined,
    // Provided by src/: a fresh stream id for a restarted stream (RFC 6120 §4.7.3).
    renewStreamId: () => undefined,
    sendSaslSuccess: sendTo("transport", {
      type: "SEND" as const,
      element: el("success", { xmlns: NS.SASL }),
    }),
    sendSaslFailure: sendTo("transport", {
      type: "SEND" as const,
      element: el("failure", { xmlns: NS.SASL }, el("not-authorized")),
    }),
    authorizeByCertificate: assign(({ context }) => {
      const pair = pairKey(context.remoteDomain ?? "", context.localDomain ?? "");
      if (context.authorized.includes(pair)) return {};
      return {
        authorized: [...context.authorized, pair],
        authMethods: [...context.authMethods, "SASL EXTERNAL"],
      };
    }),
    restartParser: sendTo("transport", { type: "RESET_PARSER" as const }),
    // XEP-0344 style: dialback over TLS whose certificate already proves the originating domain.
    acceptByCertificate: raise(({ event }) => {
      const db = dialbackOf(event);
      return {
        type: "DIALBACK_VERIFIED" as const,
        remote: db?.from ?? "",
        local: db?.to ?? "",
        result: "valid" as const,
        reason: "certificate verified (no verify round trip)",
      };
    }),
    sendProceed: sendTo("transport", { type: "SEND" as const, element: el("proceed", { xmlns: NS.TLS }) }),
    sendTlsFailure: sendTo("transport", { type: "SEND" as const, element: el("failure", { xmlns: NS.TLS }) }),
    startTls: sendTo("transport", { type: "START_TLS" as const, role: "server" as const }),
    markSecure: assign(({ context, event }) => ({
      secure: true,
      version: undefined,
      streamId:
        event.type === "TLS_ESTABLISHED" && event.streamId !== undefined ? event.streamId : context.streamId,
    })),
    // XEP-0220 §2.4: a dialback error instead of "invalid" keeps a stream other domains use.
    sendForbidden: sendTo("transport", ({ event }) => {
      if (event.type !== "DIALBACK_VERIFIED") throw new Error("sendForbidden needs DIALBACK_VERIFIED");
      return {
        type: "SEND" as const,
        element: dbResultAnswer(event.local, event.remote, "error", {
          condition: "forbidden",
          text: event.reason ?? `${event.remote} could not be verified`,
        }),
      };
    }),
    sendDialbackError: sendTo("transport", ({ event }) => {
      const db = dialbackOf(event);
      return {
        type: "SEND" as const,
        element: dbResultAnswer(db?.to ?? "", db?.from ?? "", "error", {
          condition: "item-not-found",
          text: `${db?.to ?? ""} is not served here`,
        }),
      };
    }),
    addPending: assign({
      pending: ({ context, event }) => {
        const db = dialbackOf(event);
        return db ? [...context.pending, pairKey(db.from, db.to)] : context.pending;
      },
    }),
    sendVerdict: sendTo("transport", ({ event }) => {
      if (event.type !== "DIALBACK_VERIFIED") throw new Error("sendVerdict needs DIALBACK_VERIFIED");
      const type = event.result === "failed" ? "error" : event.result;
      return {
        type: "SEND" as const,
        element: dbResultAnswer(event.local, event.remote, type, {
          condition: event.condition ?? "remote-server-timeout",
          text: event.reason ?? "the authoritative server could not be asked",
        }),
      };
    }),
    settleVerdict: assign(({ context, event }) => {
      if (event.type !== "DIALBACK_VERIFIED") return {};
      const pair = pairKey(event.remote, event.local);
      const added = event.result === "valid" && !context.authorized.includes(pair);
      return {
        pending: context.pending.filter((p) => p !== pair),
        authorized: added ? [...context.authorized, pair] : context.authorized,
        authMethods: added
          ? [
              ...context.authMethods,
              event.reason?.startsWith("certificate") === true
                ? "dialback (certificate, XEP-0344)"
                : "dialback",
            ]
          : context.authMethods,
      };
    }),
    // One line per incoming authentication outcome: pair, mechanism, TLS, result, reason.
    logVerdict: emit(({ context, event }) => {
      const verdict = event.type === "DIALBACK_VERIFIED" ? event : undefined;
      return {
        type: "log" as const,
        level: verdict?.result === "valid" ? ("info" as const) : ("notice" as const),
        message: `dialback ${verdict?.remote ?? "?"} → ${verdict?.local ?? "?"}: ${verdict?.result ?? "?"}, ${
          context.secure ? "TLS" : "no TLS"
        }${verdict?.reason === undefined ? "" : ` (${verdict.reason})`}`,
      };
    }),
    logOpened: emit(({ context }) => ({
      type: "log" as const,
      level: "info",
      message: `stream ${context.streamId} opened from ${context.remoteDomain ?? "(no from)"} to ${
        context.localDomain ?? "(no to)"
      }, XMPP ${context.version ?? "?"}`,
    })),
    watchIdle: sendTo("transport", ({ context }) => ({
      type: "WATCH_IDLE" as const,
      ms: context.streamTimeoutMs,
    })),
    endStream: endStream<S2sInContext, S2sInEvent>(),
    // Provided by src/: answer a db:verify (needs the secret), start a verification actor, and
    // route this stream's stanzas from now on (no statechart event per stanza).
    answerVerify: () => undefined,
    startVerification: () => undefined,
    openStanzaPath: () => undefined,
  },
}).createMachine({
  id: "s2sIn",
  context: ({ input }) => ({
    ...input,
    authorized: [],
    pending: [],
    authMethods: [],
    secure: input.directTls === true,
  }),
  invoke: {
    id: "transport",
    src: "transport",
    input: ({ context }) => ({ connectionId: context.connectionId }),
  },
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
    // Prosody's s2s:close does the same: `</stream:stream>`, no error; the peer may reconnect.
    ADMIN_CLOSE: {
      target: ".closing",
      actions: { type: "endStream", params: ({ event }) => ({ detail: `closed by ${event.by}` }) },
    },
    // Dialback, in "connecting" and "established" alike (piggybacking adds domains later).
    ELEMENT: [
      // The peer ended the stream with an error: answer with our </stream:stream>.
      {
        guard: "isPeerStreamError",
        target: ".closing",
        actions: { type: "endStream", params: { detail: "peer sent a stream error" } },
      },
      {
        guard: "isMalformedDialback",
        target: ".closing",
        actions: {
          type: "endStream",
          params: {
            condition: "improper-addressing",
            text: "dialback needs 'from' and 'to' domains (and an 'id' on db:verify)",
          },
        },
      },
      { guard: "isDbVerifyRequest", actions: "answerVerify" },
      {
        guard: and(["isDbResultRequest", "dbOriginLocal"]),
        target: ".closing",
        actions: {
          type: "endStream",
          params: ({ event }) => ({
            condition: "invalid-from",
            text: `${dialbackOf(event)?.from ?? "?"} is served here: a remote server cannot claim it`,
          }),
        },
      },
      // XEP-0198: acks count stanzas, so only once a domain may send them on this stream.
      { guard: and(["isSmEnable", stateIn("#s2sIn.established")]), actions: "enableSm" },
      { guard: "isSmEnable", actions: "refuseSm" },
      { guard: and(["isDbResultRequest", not("dbTargetServed")]), actions: "sendDialbackError" },
      {
        guard: and(["isDbResultRequest", not("dbOriginAllowed")]),
        target: ".closing",
        actions: {
          type: "endStream",
          params: ({ event }) => ({
            condition: "policy-violation",
            text: `Federation with ${dialbackOf(event)?.from ?? "?"} is not allowed here`,
            detail: `${dialbackOf(event)?.from ?? "?"} denied by default_policy/host_policy`,
          }),
        },
      },
      {
        guard: and(["isDbResultRequest", "tlsRequiredFirst"]),
        target: ".closing",
        actions: {
          type: "endStream",
          params: {
            condition: "policy-violation",
            text: "Use STARTTLS first",
            detail: "dialback before required TLS",
          },
        },
      },
      {
        guard: and(["isDbResultRequest", "secureAuthOn", not("dbOriginCertified")]),
        target: ".closing",
        actions: {
          type: "endStream",
          params: {
            condition: "policy-violation",
            text: "This server accepts only certificate authentication (secure_auth)",
            detail: "dialback without a verified certificate (secure_auth)",
          },
        },
      },
      {
        guard: and(["isDbResultRequest", "dbOriginCertified"]),
        actions: ["addPending", "acceptByCertificate"],
      },
      { guard: "isDbResultRequest", actions: ["addPending", "startVerification"] },
      // Last: anything else at the top level is refused (dialback answers and acks are ignored).
      {
        guard: "isUnsupportedElement",
        target: ".closing",
        actions: {
          type: "endStream",
          params: ({ event }) => ({
            condition: "unsupported-stanza-type",
            text: `<${event.element.local}/> is not understood on a server stream`,
          }),
        },
      },
    ],
    DIALBACK_VERIFIED: [
      {
        guard: and(["verdictValid", "isEstablished"]),
        actions: ["settleVerdict", "sendVerdict", "logVerdict"],
      },
      {
        guard: "verdictValid",
        target: ".established",
        actions: ["settleVerdict", "sendVerdict", "logVerdict"],
      },
      // Invalid while other domains use the stream: a <forbidden/> dialback error, the stream stays.
      {
        guard: and(["verdictInvalid", "othersAuthorized"]),
        actions: ["settleVerdict", "sendForbidden", "logVerdict"],
      },
      // Invalid: XEP-0220 §2.2.1, the receiving server closes the stream.
      {
        guard: "verdictInvalid",
        target: ".closing",
        actions: [
          "settleVerdict",
          "sendVerdict",
          "logVerdict",
          { type: "endStream", params: { detail: "dialback key invalid" } },
        ],
      },
      // Failed (the authoritative server could not be asked): an error; the peer may try again.
      { actions: ["settleVerdict", "sendVerdict", "logVerdict"] },
    ],
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
                guard: and([not("noTarget"), not("headerTargetServed")]),
                target: "#s2sIn.closing",
                actions: {
                  type: "endStream",
                  params: ({ event }) => ({
                    condition: "host-unknown",
                    text: `This server does not serve ${event.header.to ?? ""}`,
                  }),
                },
              },
              {
                target: "awaitingAuth",
                actions: ["recordHeader", "checkCertificate", "openStream", "logOpened"],
              },
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
        // Header answered; a 1.0 peer has our features. Dialback authorizes domains from here.
        awaitingAuth: {
          entry: "sendFeaturesIfV1",
          on: {
            ELEMENT: [
              {
                guard: and(["isSaslExternal", "externalAcceptable"]),
                target: "saslRestart",
                actions: [
                  "authorizeByCertificate",
                  "sendSaslSuccess",
                  "restartParser",
                  "renewStreamId",
                  emit(({ context }) => ({
                    type: "log" as const,
                    level: "info" as const,
                    message: `${context.remoteDomain ?? "?"} → ${context.localDomain ?? "?"} authenticated with SASL EXTERNAL (certificate verified)`,
                  })),
                ],
              },
              { guard: "isSaslExternal", actions: "sendSaslFailure" },
              {
                guard: and(["isStartTls", "tlsOffered"]),
                target: "tlsStarting",
                actions: ["sendProceed", "startTls"],
              },
              {
                guard: "isStartTls",
                target: "#s2sIn.closing",
                actions: [
                  "sendTlsFailure",
                  { type: "endStream", params: { detail: "STARTTLS not offered" } },
                ],
              },
              {
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
            ],
          },
          // A peer that neither authenticates nor verifies is dropped; waiting on our own
          // verification (DNS, connect…) does not count against it.
          after: {
            stateTimeout: [
              { guard: "verificationsPending", target: "awaitingAuth", reenter: true },
              {
                target: "#s2sIn.closing",
                actions: {
                  type: "endStream",
                  params: {
                    condition: "connection-timeout",
                    text: "No authentication",
                    detail: "state_timeout",
                  },
                },
              },
            ],
          },
        },
        // SASL EXTERNAL succeeded (XEP-0178): the peer restarts the stream, then stanzas may flow.
        saslRestart: {
          on: {
            STREAM_HEADER: { target: "#s2sIn.established", actions: ["openStream", "sendFeaturesIfV1"] },
          },
          after: {
            stateTimeout: {
              target: "#s2sIn.closing",
              actions: {
                type: "endStream",
                params: { condition: "connection-timeout", text: "No stream restart" },
              },
            },
          },
        },
        tlsStarting: {
          on: {
            // RFC 6120 §5.4.3.3: the stream restarts on the encrypted connection, with a new id.
            TLS_ESTABLISHED: { target: "waitForStream", actions: "markSecure" },
            TLS_FAILED: {
              target: "#s2sIn.closing",
              actions: assign({ closeReason: ({ event }) => `TLS failed: ${event.error}` }),
            },
          },
          after: {
            stateTimeout: {
              target: "#s2sIn.closing",
              actions: {
                type: "endStream",
                params: { condition: "connection-timeout", detail: "TLS handshake did not complete" },
              },
            },
          },
        },
      },
    },
    // jabberd14: "established incoming connections" — one or more domains authorized.
    established: {
      entry: ["openStanzaPath", "watchIdle"],
      on: {
        IDLE: {
          target: "closing",
          actions: { type: "endStream", params: { detail: "idle (stream_timeout)" } },
        },
      },
    },
    // The stream is ending: a late verdict or element must not re-establish it or start work.
    closing: { on: { DIALBACK_VERIFIED: {}, ELEMENT: {} } },
    closed: { type: "final" },
  },
});
