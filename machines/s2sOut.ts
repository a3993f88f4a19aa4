/**
 * One outgoing S2S stream, in the states jabberd14 documents for outgoing connections (seed 000,
 * the table in ARCHITECTURE.md): created → connecting → connected → (gotStreamRoot | awaitingFeatures
 * → gotFeatures) → [tlsStarting → connected …] → dialbackSent → dialbackSucceeded | dialbackFailed,
 * or droppedBySettings. A parallel `dialback` region mirrors jabberd14's "dialback state": noRequest
 * (just sending verifies), couldSend, wantToSend, sent.
 *
 * Two uses: a queue's connection (`authorize: true`) authorizes `local` towards `remote` with a
 * db:result and then carries stanzas (which never become events here); a dialback verification's
 * connection (`authorize: false`) only carries db:verify requests to the authoritative server.
 *
 * Pure: DNS + TCP (`connect`), the socket (`transport`) and the dialback key (`sendDialbackKey`,
 * which needs the secret) are provided by src/.
 */
import { and, assign, fromCallback, fromPromise, raise, sendParent, sendTo, setup } from "xstate";
import type {
  AdminCloseEvent,
  CertificateSummary,
  LogEmitted,
  ShutdownEvent,
  TransportCommand,
  TransportEvent,
} from "./events.js";
import { endStream } from "./streamEnd.js";
import { el } from "../src/xml/element.js";
import { NS } from "../src/xmpp/namespaces.js";
import { readFeatures, type PeerFeatures } from "../src/xmpp/features.js";
import { dbVerifyRequest, readDialback } from "../src/xmpp/dialback.js";

export type OutgoingTlsMode = "starttls" | "starttls_required" | "tls";

/** Why a link failed, as its queued stanzas will be bounced (RFC 6120 §8.3.3). */
export interface LinkFailure {
  condition: "remote-server-not-found" | "remote-server-timeout";
  text: string;
  /** What went wrong after connecting, for ferry_s2s_connect_attempts_total{result}. */
  kind?: "tls_failed" | "cert_invalid" | "auth_failed" | "stream_error";
}

export interface VerifyRequest {
  /** The id of the incoming stream whose db:result is being checked. */
  id: string;
  key: string;
}

export interface ConnectInput {
  local: string;
  remote: string;
  directTls: boolean;
}

export interface ConnectOutput {
  connectionId: string;
  /** "ip:port" of the peer we reached. */
  peer: string;
  /** seed 000's "connection results": one line per address tried. */
  attempts: string[];
  /** What DNS answered (SRV targets, addresses), for the link history. */
  dns?: string[];
  /** TLS from the first byte on this connection (an `_xmpps-server` target, XEP-0368). */
  directTls?: boolean;
  /** Direct TLS: the remote certificate's verdict. */
  certificate?: CertificateSummary;
  /** seed 001's relay name (`outgoing.address` tls_name): the certificate may name it instead. */
  tlsName?: string;
}

export interface S2sOutInput {
  local: string;
  remote: string;
  authorize: boolean;
  tlsMode: OutgoingTlsMode;
  /**
   * `outgoing.tls.require_for` for this remote domain (seed 001's "Send Encrypted to Domains"):
   * required = only over TLS with a certificate verified for it; never = do not even try TLS.
   */
  tlsPolicy?: "required" | "never" | "opportunistic";
  /** We can present a certificate for `local` (SASL EXTERNAL is possible). */
  ownCertificate?: boolean;
  stateTimeoutMs: number;
  streamTimeoutMs: number;
  /** For a verification's connection: the db:verify to carry. */
  verify?: VerifyRequest;
}

export interface S2sOutContext extends S2sOutInput {
  connectionId?: string;
  peer?: string;
  attempts: string[];
  /** What DNS answered for the remote domain. */
  dns?: string[];
  /** The stream id the peer gave us (the dialback key is made over it). */
  streamId?: string;
  version?: "1.0" | "0.9";
  features?: PeerFeatures;
  tls: "none" | "starttls" | "direct";
  failure?: LinkFailure;
  closeReason?: string;
  /** The verify is out and not yet answered (seed 000's "pending verifies" before it is sent). */
  verifySent: boolean;
  /** The stream is being closed because of our settings (seed 000's "dropped because of settings"). */
  dropped: boolean;
  /** The link came up (dialback succeeded) or the verification was answered. */
  up: boolean;
  /** The remote certificate's verdict, once TLS is up. */
  certificate?: CertificateSummary;
  /** How this stream was authenticated: SASL EXTERNAL (XEP-0178) or dialback. */
  auth?: "external" | "dialback";
  tlsName?: string;
}

/** Internal: raised so that the dialback region follows the link region. */
type S2sOutInternal = { type: "STREAM_READY" } | { type: "REQUEST_SENT" } | { type: "LINK_ENDED" };

export type S2sOutEvent = TransportEvent | ShutdownEvent | AdminCloseEvent | S2sOutInternal;

export type S2sOutParentEvent =
  | {
      type: "LINK_UP";
      local: string;
      remote: string;
      connectionId: string;
      auth: "external" | "dialback";
      tls: "none" | "starttls" | "direct";
      peer: string;
    }
  | { type: "VERIFY_ANSWER"; id: string; valid: boolean };

export interface S2sOutOutput {
  failure?: LinkFailure;
  attempts: string[];
}

/** What the connect actor throws: a failure with the attempts made. */
function asFailure(error: unknown): LinkFailure & { attempts: string[]; dns: string[] } {
  if (typeof error === "object" && error !== null && "condition" in error && "text" in error) {
    const e = error as { condition: unknown; text: unknown; attempts?: unknown; dns?: unknown };
    return {
      condition:
        e.condition === "remote-server-not-found" ? "remote-server-not-found" : "remote-server-timeout",
      text: String(e.text),
      attempts: Array.isArray(e.attempts) ? e.attempts.map(String) : [],
      dns: Array.isArray(e.dns) ? e.dns.map(String) : [],
    };
  }
  return { condition: "remote-server-timeout", text: String(error), attempts: [], dns: [] };
}

const timeout = (step: string): LinkFailure => ({
  condition: "remote-server-timeout",
  kind: "stream_error",
  text: `no answer from the remote server ${step} within state_timeout`,
});

/** `state_timeout` on one negotiation step: the link fails and the stream ends. */
const timedOut = (step: string) =>
  ({
    stateTimeout: {
      target: "#s2sOut.link.open.closing",
      actions: [
        { type: "fail", params: timeout(step) },
        { type: "endStream", params: { condition: "connection-timeout" } },
      ],
    },
  }) as const;

export const s2sOutMachine = setup({
  types: {
    context: {} as S2sOutContext,
    events: {} as S2sOutEvent,
    input: {} as S2sOutInput,
    emitted: {} as LogEmitted,
    output: {} as S2sOutOutput,
  },
  actors: {
    connect: fromPromise<ConnectOutput, ConnectInput>(() =>
      Promise.reject(new Error("connect not provided")),
    ),
    transport: fromCallback<TransportCommand, { connectionId: string }>(() => undefined),
  },
  delays: {
    stateTimeout: ({ context }) => context.stateTimeoutMs,
  },
  guards: {
    isVersion1: ({ event }) => {
      if (event.type !== "STREAM_HEADER") return false;
      const major = Number.parseInt((event.header.version ?? "").split(".")[0] ?? "", 10);
      return Number.isFinite(major) && major >= 1;
    },
    isFeatures: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "features" && event.element.ns === NS.STREAM,
    isProceed: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "proceed" && event.element.ns === NS.TLS,
    isTlsFailure: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "failure" && event.element.ns === NS.TLS,
    isPeerStreamError: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "error" && event.element.ns === NS.STREAM,
    shouldStartTls: ({ context }) =>
      context.tls === "none" && context.features?.starttls !== "none" && context.tlsPolicy !== "never",
    tlsRequiredButUnavailable: ({ context }) =>
      context.tls === "none" &&
      (context.tlsMode === "starttls_required" ||
        context.tlsMode === "tls" ||
        context.features?.starttls === "required" ||
        context.tlsPolicy === "required"),
    certificateRequiredButInvalid: ({ context }) =>
      context.tlsPolicy === "required" && context.certificate?.ok !== true,
    // XEP-0178: EXTERNAL offered on an encrypted stream, and we have a certificate for our domain.
    canUseExternal: ({ context }) =>
      context.authorize &&
      context.tls !== "none" &&
      (context.features?.saslMechanisms.includes("EXTERNAL") ?? false) &&
      context.ownCertificate === true,
    dialbackOffered: ({ context }) => context.features?.dialback === true || context.version === "0.9",
    isSaslSuccess: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "success" && event.element.ns === NS.SASL,
    isSaslFailure: ({ event }) =>
      event.type === "ELEMENT" && event.element.local === "failure" && event.element.ns === NS.SASL,
    noDialback: ({ context }) =>
      context.authorize && context.version === "1.0" && context.features?.dialback !== true,
    authorize: ({ context }) => context.authorize,
    dialbackValid: ({ context, event }) => {
      if (event.type !== "ELEMENT") return false;
      const db = readDialback(event.element);
      return (
        db?.kind === "result" && db.type === "valid" && db.from === context.remote && db.to === context.local
      );
    },
    dialbackRefused: ({ context, event }) => {
      if (event.type !== "ELEMENT") return false;
      const db = readDialback(event.element);
      return (
        db?.kind === "result" &&
        db.type !== undefined &&
        db.from === context.remote &&
        db.to === context.local
      );
    },
    // CVE-2012-3525: only answers to verifies we sent count.
    isVerifyAnswer: ({ context, event }) => {
      if (event.type !== "ELEMENT") return false;
      const db = readDialback(event.element);
      return (
        db?.kind === "verify" &&
        db.type !== undefined &&
        db.id !== undefined &&
        context.verifySent &&
        db.id === context.verify?.id &&
        db.from === context.remote &&
        db.to === context.local
      );
    },
    // An orderly end only once the link was up (or we were shutting down); a stream lost during
    // negotiation is a failure, so the queue bounces and backs off instead of reconnecting at once.
    wasUp: ({ context }) =>
      context.failure === undefined && (context.up || context.closeReason === "system-shutdown"),
    dropped: ({ context }) => context.dropped,
    // After STARTTLS the verdict is taken with the first answer on the encrypted stream, where it
    // is first needed (require_for), rather than on TLS_ESTABLISHED, before our header goes out.
    verdictDue: ({ context }) => context.tls === "starttls" && context.certificate === undefined,
  },
  actions: {
    recordHeader: assign(({ event }) => {
      if (event.type !== "STREAM_HEADER") return {};
      const major = Number.parseInt((event.header.version ?? "").split(".")[0] ?? "", 10);
      return { streamId: event.header.id, version: Number.isFinite(major) && major >= 1 ? "1.0" : "0.9" };
    }),
    recordFeatures: assign(({ event }) =>
      event.type === "ELEMENT" ? { features: readFeatures(event.element) } : {},
    ),
    fail: assign((_, failure: LinkFailure) => ({ failure })),
    openStream: sendTo("transport", ({ context }) => ({
      type: "OPEN_STREAM" as const,
      attrs: {
        defaultNs: NS.SERVER,
        from: context.local,
        to: context.remote,
        version: "1.0",
        extraNamespaces: { db: NS.DIALBACK },
      },
    })),
    sendStartTls: sendTo("transport", { type: "SEND" as const, element: el("starttls", { xmlns: NS.TLS }) }),
    startTls: sendTo("transport", ({ context }) => ({
      type: "START_TLS" as const,
      role: "client" as const,
      servername: context.remote,
      identity: context.local,
    })),
    markTls: assign({ tls: "starttls" as const }),
    // Provided by src/: the key is made with the dialback secret, which stays out of the machine.
    sendDialbackKey: () => undefined,
    sendVerify: sendTo("transport", ({ context }) => ({
      type: "SEND" as const,
      element: dbVerifyRequest(
        context.local,
        context.remote,
        context.verify?.id ?? "",
        context.verify?.key ?? "",
      ),
    })),
    reportVerify: sendParent(({ event }) => {
      const db = event.type === "ELEMENT" ? readDialback(event.element) : undefined;
      return {
        type: "VERIFY_ANSWER",
        id: db?.id ?? "",
        valid: db?.type === "valid",
      } satisfies S2sOutParentEvent;
    }),
    // Provided by src/: the attempt is over (link up, or verify answered); its slot is free again.
    attemptSettled: () => undefined,
    // Provided by src/: XEP-0198 acks when the peer offered urn:xmpp:sm:3 (stanzas follow at once).
    enableSm: () => undefined,
    linkUp: sendParent(
      ({ context }) =>
        ({
          type: "LINK_UP",
          local: context.local,
          remote: context.remote,
          connectionId: context.connectionId ?? "",
          auth: context.auth ?? "dialback",
          tls: context.tls,
          peer: context.peer ?? "",
        }) satisfies S2sOutParentEvent,
    ),
    watchIdle: sendTo("transport", ({ context }) => ({
      type: "WATCH_IDLE" as const,
      ms: context.streamTimeoutMs,
    })),
    endStream: endStream<S2sOutContext, S2sOutEvent>(),
    streamReady: raise({ type: "STREAM_READY" }),
    requestSent: raise({ type: "REQUEST_SENT" }),
    linkEnded: raise({ type: "LINK_ENDED" }),
    markDropped: assign({ dropped: true }),
    markUp: assign({ up: true }),
    // Provided by src/: the remote certificate's verdict after a STARTTLS handshake.
    checkCertificate: () => undefined,
    // Provided by src/: starts working that verdict out while the peer answers our new header.
    prepareCertificate: () => undefined,
    sendAuthExternal: sendTo("transport", ({ context }) => ({
      type: "SEND" as const,
      // XEP-0178 §2: the authorization identity is our domain, base64-encoded.
      element: el(
        "auth",
        { xmlns: NS.SASL, mechanism: "EXTERNAL" },
        Buffer.from(context.local).toString("base64"),
      ),
    })),
    restartStream: sendTo("transport", { type: "RESET_PARSER" as const }),
    recordPeerError: assign(({ event }) => {
      if (event.type !== "ELEMENT") return {};
      const condition = event.element.children.find(
        (c) => typeof c !== "string" && c.ns === NS.STREAM_ERRORS,
      );
      const text = event.element.getChild("text", NS.STREAM_ERRORS)?.text();
      const name = typeof condition === "object" ? condition.local : "undefined-condition";
      return {
        failure: {
          condition: "remote-server-timeout" as const,
          kind: "stream_error" as const,
          text: `the remote server ended the stream with <${name}/>${text ? `: ${text}` : ""}`,
        },
      };
    }),
  },
}).createMachine({
  id: "s2sOut",
  type: "parallel",
  context: ({ input }) => ({
    ...input,
    attempts: [],
    tls: "none",
    verifySent: false,
    dropped: false,
    up: false,
  }),
  output: ({ context }) => ({
    attempts: context.attempts,
    ...(context.failure === undefined ? {} : { failure: context.failure }),
  }),
  states: {
    link: {
      initial: "created",
      states: {
        // seed 000: "created, not yet started to connect".
        created: { always: "connecting" },
        // "we started to connect, no connection yet": DNS, then every address in turn.
        connecting: {
          invoke: {
            id: "connect",
            src: "connect",
            input: ({ context }) => ({
              local: context.local,
              remote: context.remote,
              directTls: context.tlsMode === "tls",
            }),
            onDone: {
              target: "open",
              actions: assign(({ event }) => ({
                connectionId: event.output.connectionId,
                peer: event.output.peer,
                attempts: event.output.attempts,
                ...(event.output.dns === undefined ? {} : { dns: event.output.dns }),
                ...(event.output.certificate === undefined ? {} : { certificate: event.output.certificate }),
                ...(event.output.tlsName === undefined ? {} : { tlsName: event.output.tlsName }),
                // Each target says how it speaks TLS (XEP-0368 mixes both kinds in one order).
                tls: event.output.directTls === true ? ("direct" as const) : ("none" as const),
              })),
            },
            onError: {
              target: "failed",
              actions: assign(({ event }) => {
                const failure = asFailure(event.error);
                return {
                  failure: { condition: failure.condition, text: failure.text },
                  attempts: failure.attempts,
                  dns: failure.dns,
                };
              }),
            },
          },
          on: {
            SHUTDOWN: {
              target: "failed",
              actions: {
                type: "fail",
                params: { condition: "remote-server-timeout", text: "server shutting down" },
              },
            },
            ADMIN_CLOSE: {
              target: "failed",
              actions: {
                type: "fail",
                params: ({ event }) => ({
                  condition: "remote-server-timeout" as const,
                  text: `connection attempt abandoned by ${event.by}`,
                }),
              },
            },
          },
        },
        open: {
          invoke: {
            id: "transport",
            src: "transport",
            input: ({ context }) => ({ connectionId: context.connectionId ?? "" }),
          },
          initial: "connected",
          on: {
            SOCKET_CLOSED: [
              { guard: "dropped", target: "droppedBySettings" },
              {
                guard: "wasUp",
                target: "closed",
                actions: assign({ closeReason: ({ context }) => context.closeReason ?? "peer closed" }),
              },
              {
                target: "failed",
                actions: assign({
                  failure: ({ context }) =>
                    context.failure ?? {
                      condition: "remote-server-timeout",
                      kind: "stream_error" as const,
                      text: "the remote server closed the connection",
                    },
                }),
              },
            ],
            STREAM_ERROR: {
              target: ".closing",
              actions: [
                {
                  type: "fail",
                  params: ({ event }) => ({
                    condition: "remote-server-timeout",
                    kind: "stream_error" as const,
                    text: `the remote server broke the stream: ${event.text}`,
                  }),
                },
                {
                  type: "endStream",
                  params: ({ event }) => ({ condition: event.condition, text: event.text }),
                },
              ],
            },
            STREAM_END: { target: ".closing", actions: { type: "endStream", params: {} } },
            SHUTDOWN: {
              target: ".closing",
              actions: {
                type: "endStream",
                params: { condition: "system-shutdown", text: "Server is shutting down" },
              },
            },
            ADMIN_CLOSE: {
              target: ".closing",
              actions: { type: "endStream", params: ({ event }) => ({ detail: `closed by ${event.by}` }) },
            },
            ELEMENT: [
              {
                guard: "isPeerStreamError",
                target: ".closing",
                actions: ["recordPeerError", { type: "endStream", params: {} }],
              },
              // The verification's connection has done its job once the answer is in.
              {
                guard: "isVerifyAnswer",
                target: ".closing",
                actions: [
                  "markUp",
                  "attemptSettled",
                  "reportVerify",
                  { type: "endStream", params: { detail: "verification answered" } },
                ],
              },
            ],
            IDLE: {
              target: ".closing",
              actions: { type: "endStream", params: { detail: "idle (stream_timeout)" } },
            },
          },
          states: {
            // "connected to the other host": our stream header is out.
            connected: {
              entry: "openStream",
              on: {
                STREAM_HEADER: [
                  { guard: "isVersion1", target: "awaitingFeatures", actions: "recordHeader" },
                  // A pre-1.0 peer has no features, hence no STARTTLS.
                  {
                    guard: "tlsRequiredButUnavailable",
                    target: "closing",
                    actions: [
                      "recordHeader",
                      "markDropped",
                      {
                        type: "fail",
                        params: {
                          condition: "remote-server-timeout",
                          kind: "tls_failed" as const,
                          text: "TLS is required (outgoing.tls.mode) but the remote server is pre-XMPP 1.0 (no STARTTLS)",
                        },
                      },
                      {
                        type: "endStream",
                        params: { condition: "policy-violation", text: "TLS is required" },
                      },
                    ],
                  },
                  {
                    guard: "verdictDue",
                    target: "gotStreamRoot",
                    actions: ["recordHeader", "checkCertificate"],
                  },
                  { target: "gotStreamRoot", actions: "recordHeader" },
                ],
              },
              after: timedOut("(stream header)"),
            },
            // "we got peer's stream root" (pre-1.0 peer: no features; dialback straight away).
            gotStreamRoot: {
              entry: "streamReady",
              always: { guard: "authorize", target: "dialbackSent" },
            },
            // "we are waiting for stream features".
            awaitingFeatures: {
              on: {
                ELEMENT: [
                  {
                    guard: and(["isFeatures", "verdictDue"]),
                    target: "gotFeatures",
                    actions: ["recordFeatures", "checkCertificate"],
                  },
                  { guard: "isFeatures", target: "gotFeatures", actions: "recordFeatures" },
                ],
              },
              after: timedOut("(stream features)"),
            },
            // "we got the stream features": decide STARTTLS, dialback, or drop.
            gotFeatures: {
              always: [
                { guard: "shouldStartTls", target: "tlsStarting" },
                {
                  guard: "tlsRequiredButUnavailable",
                  target: "closing",
                  actions: [
                    "markDropped",
                    {
                      type: "fail",
                      params: {
                        condition: "remote-server-timeout",
                        kind: "tls_failed" as const,
                        text: "TLS is required (outgoing.tls.mode) but the remote server does not offer STARTTLS",
                      },
                    },
                    { type: "endStream", params: { condition: "policy-violation", text: "TLS is required" } },
                  ],
                },
                {
                  guard: "certificateRequiredButInvalid",
                  target: "closing",
                  actions: [
                    "markDropped",
                    {
                      type: "fail",
                      params: ({ context }) => ({
                        condition: "remote-server-timeout",
                        kind: "cert_invalid" as const,
                        text: `TLS required for ${context.remote} (outgoing.tls.require_for) but its certificate does not verify: ${
                          context.certificate?.reason ?? "no certificate"
                        }${context.certificate?.detail ? ` (${context.certificate.detail})` : ""}`,
                      }),
                    },
                    {
                      type: "endStream",
                      params: { condition: "policy-violation", text: "certificate not trusted" },
                    },
                  ],
                },
                { guard: "canUseExternal", target: "saslStarted" },
                {
                  guard: "noDialback",
                  target: "closing",
                  actions: [
                    "markDropped",
                    {
                      type: "fail",
                      params: {
                        condition: "remote-server-timeout",
                        kind: "auth_failed" as const,
                        text: "the remote server offers no authentication method Ferry can use (dialback, or SASL EXTERNAL with a certificate)",
                      },
                    },
                    {
                      type: "endStream",
                      params: { condition: "unsupported-feature", text: "dialback required" },
                    },
                  ],
                },
                { guard: "authorize", target: "dialbackSent", actions: "streamReady" },
                { actions: "streamReady", target: "ready" },
              ],
            },
            // "we started to authenticate using sasl" (XEP-0178, EXTERNAL).
            saslStarted: {
              entry: "sendAuthExternal",
              on: {
                ELEMENT: [
                  { guard: "isSaslSuccess", target: "saslSucceeded" },
                  { guard: "isSaslFailure", target: "saslFailed" },
                ],
              },
              after: timedOut("(SASL EXTERNAL)"),
            },
            // "there was a SASL authentication failure": dialback on the same stream, if offered.
            saslFailed: {
              always: [
                { guard: "dialbackOffered", target: "dialbackSent", actions: "streamReady" },
                {
                  target: "closing",
                  actions: [
                    {
                      type: "fail",
                      params: ({ context }) => ({
                        condition: "remote-server-timeout",
                        kind: "auth_failed" as const,
                        text: `${context.remote} refused our certificate (SASL EXTERNAL) and offers no dialback`,
                      }),
                    },
                    { type: "endStream", params: {} },
                  ],
                },
              ],
            },
            // "successfully authenticated using SASL": the stream restarts, then stanzas flow.
            saslSucceeded: {
              initial: "restarting",
              states: {
                restarting: {
                  entry: ["restartStream", "openStream"],
                  on: {
                    STREAM_HEADER: { actions: "recordHeader" },
                    ELEMENT: { guard: "isFeatures", target: "authenticated", actions: "recordFeatures" },
                  },
                  after: timedOut("(stream restart after SASL)"),
                },
                authenticated: {
                  entry: [
                    assign({ auth: "external" as const }),
                    "markUp",
                    "attemptSettled",
                    "enableSm",
                    "linkUp",
                    "watchIdle",
                  ],
                },
              },
            },
            // A verify-only connection with nothing to authorize: it carries db:verify requests.
            ready: {},
            tlsStarting: {
              entry: "sendStartTls",
              on: {
                ELEMENT: [
                  { guard: "isProceed", actions: "startTls" },
                  // RFC 6120 §5.4.2.2: after <failure/> the peer closes; we close our side too.
                  {
                    guard: "isTlsFailure",
                    target: "closing",
                    actions: [
                      {
                        type: "fail",
                        params: {
                          condition: "remote-server-timeout",
                          kind: "tls_failed" as const,
                          text: "the remote server refused STARTTLS",
                        },
                      },
                      { type: "endStream", params: {} },
                    ],
                  },
                ],
                TLS_ESTABLISHED: { target: "connected", actions: ["markTls", "prepareCertificate"] },
                TLS_FAILED: {
                  target: "closing",
                  actions: {
                    type: "fail",
                    params: ({ event }) => ({
                      condition: "remote-server-timeout",
                      kind: "tls_failed" as const,
                      text: `TLS negotiation failed: ${event.error}`,
                    }),
                  },
                },
              },
              after: timedOut("(STARTTLS)"),
            },
            // "we sent out a dialback request".
            dialbackSent: {
              entry: ["sendDialbackKey", "requestSent"],
              on: {
                ELEMENT: [
                  { guard: "dialbackValid", target: "dialbackSucceeded" },
                  {
                    guard: "dialbackRefused",
                    target: "dialbackFailed",
                    actions: {
                      type: "fail",
                      params: ({ context }) => ({
                        condition: "remote-server-timeout",
                        kind: "auth_failed" as const,
                        text: `dialback: ${context.remote} did not accept ${context.local}`,
                      }),
                    },
                  },
                ],
              },
              after: timedOut("(dialback result)"),
            },
            // "we had success with our dialback request": stanzas may flow (not through here).
            dialbackSucceeded: {
              entry: [
                assign({ auth: "dialback" as const }),
                "markUp",
                "attemptSettled",
                "enableSm",
                "linkUp",
                "watchIdle",
              ],
            },
            // "dialback failed".
            dialbackFailed: {
              always: { target: "closing", actions: { type: "endStream", params: {} } },
            },
            // A stream being closed no longer counts as an attempt under way (outgoing.max_connecting).
            closing: { entry: "attemptSettled" },
          },
        },
        // seed 000: "Dropped because of settings" (reached once the stream is closed).
        droppedBySettings: { type: "final", entry: "linkEnded" },
        failed: { type: "final", entry: "linkEnded" },
        closed: { type: "final", entry: "linkEnded" },
      },
    },
    // seed 000's "Dialback state".
    dialback: {
      initial: "noRequest",
      on: { LINK_ENDED: ".ended" },
      states: {
        // "no dialback request, just sending verifies".
        noRequest: {
          always: { guard: "authorize", target: "wantToSend" },
          on: { STREAM_READY: "couldSend" },
        },
        // "we could send dialback requests, if we want to": verifies go out now.
        couldSend: { entry: ["sendVerify", assign({ verifySent: true })] },
        // "we want to send dialback requests, but cannot do that yet".
        wantToSend: { on: { REQUEST_SENT: "sent" } },
        // "we have sent a dialback request".
        sent: {},
        ended: { type: "final" },
      },
    },
  },
});
