/**
 * One probe stream to one address, spoken as Ferry's outgoing side speaks it (machines/s2sOut.ts)
 * but as a plain async procedure: it is a one-shot diagnostic, not a supervised link. The socket,
 * parser, STARTTLS upgrade and stream restarts are XmppTransport's, as on every Ferry stream; this
 * adds the steps (TCP or direct TLS, stream header and features, STARTTLS, SASL EXTERNAL or
 * dialback, an XEP-0199 ping), the time each phase took, and one precise failure code.
 */
import { randomBytes, type X509Certificate } from "node:crypto";
import type net from "node:net";
import { TLSSocket } from "node:tls";
import type { PeerStreamHeader, TransportEvent } from "../../machines/events.js";
import { XmppTransport } from "../net/transport.js";
import { IqReplies, IqReplyTimeout } from "../routing/iqReplies.js";
import { el, type Element } from "../xml/element.js";
import { dbResultRequest, dialbackKey, readDialback } from "../xmpp/dialback.js";
import { readFeatures } from "../xmpp/features.js";
import { NS } from "../xmpp/namespaces.js";
import { stanzaKind } from "../xmpp/stanzaErrors.js";
import type { StreamErrorCondition } from "../xmpp/streamErrors.js";
import { ProbeFailure, since, type Phase, type Timings } from "./failure.js";
import { openSocket, sniName } from "./openSocket.js";
import type { ProbeEnv } from "./probeEnv.js";
import { hostPort } from "./resolveHost.js";

export interface SessionTarget {
  ip: string;
  port: number;
  /** TLS from the first byte (XEP-0368) rather than plain TCP. */
  directTls: boolean;
}

export interface SessionOptions {
  target: SessionTarget;
  /** Our domain (stream `from`, dialback originating domain, SASL EXTERNAL identity). */
  from: string;
  /** The remote domain (stream `to`, SNI, the name its certificate must cover). */
  to: string;
  /** The whole probe's budget, in ms, from `startedAt` (performance.now()). */
  timeoutMs: number;
  startedAt: number;
  env: Pick<ProbeEnv, "trust" | "secret" | "maxStanzaSize" | "log" | "replies" | "issuedKeys">;
}

export interface TlsFacts {
  mode: "starttls" | "direct";
  /** "TLSv1.3"… */
  version: string;
  /** IANA name, e.g. "TLS_AES_256_GCM_SHA384". */
  cipher: string;
  /** The certificates the server presented, leaf first. */
  chain: X509Certificate[];
}

export type AuthMethod = "external" | "dialback";

/** Whether SASL EXTERNAL can be tried on this stream, and if not, why. */
export type ExternalStatus = "possible" | "not-offered" | "no-tls" | "no-certificate";

export interface AuthOutcome {
  method: AuthMethod;
  /** SASL EXTERNAL was tried first and refused (the SASL condition). */
  externalRefused?: string;
}

export interface PingOutcome {
  rtt: number;
  reply: Element;
}

const PHASE_WORDS: Record<Phase, string> = {
  dns: "looking up DNS",
  tcp: "connecting",
  tls: "negotiating TLS",
  stream: "waiting for the stream header and features",
  auth: "authenticating",
  ping: "waiting for the ping reply",
};

export class ProbeSession {
  readonly timings: Timings;
  readonly target: SessionTarget;
  /** The id of the server's current stream header (a new one after each restart). */
  streamId: string | undefined;
  /** The `version` of its header ("1.0"; absent for pre-XMPP-1.0 servers). */
  version: string | undefined;
  /** The `from` of its header: the domain it says it is. */
  serverDomain: string | undefined;
  /** The server answered with an XMPP stream header (it speaks XMPP on this port). */
  answered = false;
  /** The current stream's features (after STARTTLS: the protected stream's). */
  features: Element | undefined;
  featuresBeforeTls: Element | undefined;
  tls: TlsFacts | undefined;
  /** Stanzas the server sent on this stream. */
  readonly stanzas: Element[] = [];
  failure: ProbeFailure | undefined;

  private readonly options: SessionOptions;
  private readonly transport: XmppTransport;
  private readonly replies: IqReplies;
  private readonly events: TransportEvent[] = [];
  private wake: (() => void) | undefined;
  private readonly failed: Promise<never>;
  private rejectFailed: (failure: ProbeFailure) => void = () => undefined;
  private readonly deadline: NodeJS.Timeout;
  private phase: Phase = "stream";
  private closed = false;
  private socketGone = false;
  /** The stream error we owe the server when we close (its XML was broken). */
  private closeError: StreamErrorCondition | undefined;

  private constructor(options: SessionOptions, socket: net.Socket, timings: Timings) {
    this.options = options;
    this.target = options.target;
    this.timings = timings;
    this.replies = options.env.replies ?? new IqReplies();
    this.failed = new Promise<never>((_resolve, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => undefined);
    const { trust } = options.env;
    this.transport = new XmppTransport({
      id: `probe-${randomBytes(8).toString("hex")}`,
      socket,
      defaultNs: NS.SERVER,
      maxStanzaSize: options.env.maxStanzaSize,
      log: options.env.log.child("XMPPO", `probe:${options.from}:${options.to}`),
      secure: options.target.directTls,
      clientTls: (local) => trust.certificates.clientOptions(local),
      closeGraceMs: 1000,
    });
    if (options.target.directTls) this.tls = tlsFacts(socket, "direct", this.transport.peerChain());
    this.transport.attach((event) => {
      this.onEvent(event);
    });
    this.deadline = setTimeout(
      () => {
        this.fail(this.timeoutFailure());
      },
      Math.max(1, options.startedAt + options.timeoutMs - performance.now()),
    );
  }

  /** Connects (TCP, or direct TLS); fails with tcp_refused, tcp_timeout, tcp_unreachable, tls_failed. */
  static async connect(options: SessionOptions, timings: Timings = {}): Promise<ProbeSession> {
    const socket = await openSocket(options, timings);
    return new ProbeSession(options, socket, timings);
  }

  /** Sends our stream header; reads the server's and, for XMPP 1.0, its features. */
  async openStream(phase: "stream" | "auth" = "stream"): Promise<void> {
    this.phase = phase;
    const start = performance.now();
    const { from, to } = this.options;
    this.transport.command({
      type: "OPEN_STREAM",
      attrs: { defaultNs: NS.SERVER, from, to, version: "1.0", extraNamespaces: { db: NS.DIALBACK } },
    });
    const header = await this.next((e) => (e.type === "STREAM_HEADER" ? e.header : undefined));
    this.checkHeader(header);
    this.answered = true;
    this.streamId = header.id;
    this.version = header.version;
    this.serverDomain = header.from;
    this.features = isVersion1(header.version)
      ? await this.next((e) =>
          e.type === "ELEMENT" && e.element.local === "features" && e.element.ns === NS.STREAM
            ? e.element
            : undefined,
        )
      : undefined;
    if (phase === "stream") this.timings.stream = (this.timings.stream ?? 0) + since(start);
  }

  /** Whether the current features offer STARTTLS (and we are not encrypted yet). */
  get startTlsOffered(): boolean {
    return this.tls === undefined && this.features?.getChild("starttls", NS.TLS) !== undefined;
  }

  /** STARTTLS (RFC 6120 §5.4), then the restarted stream's header and features. */
  async startTls(): Promise<void> {
    this.phase = "tls";
    const start = performance.now();
    this.featuresBeforeTls = this.features;
    this.transport.send(el("starttls", { xmlns: NS.TLS }));
    const answer = await this.next((e) =>
      e.type === "ELEMENT" &&
      e.element.ns === NS.TLS &&
      (e.element.local === "proceed" || e.element.local === "failure")
        ? e.element
        : undefined,
    );
    if (answer.local === "failure") {
      throw this.fail(new ProbeFailure("tls_failed", "tls", "the server answered STARTTLS with <failure/>"));
    }
    const servername = sniName(this.options.to);
    this.transport.command({
      type: "START_TLS",
      role: "client",
      ...(servername === undefined ? {} : { servername }),
      identity: this.options.from,
    });
    await this.next((e) => (e.type === "TLS_ESTABLISHED" ? true : undefined));
    this.timings.tls = since(start);
    this.tls = tlsFacts(this.transport.socket, "starttls", this.transport.peerChain());
    await this.openStream();
  }

  /** SASL EXTERNAL needs TLS, the mechanism offered, and a certificate of ours naming `from`. */
  externalStatus(): ExternalStatus {
    if (this.tls === undefined) return "no-tls";
    const offered = this.features === undefined ? [] : readFeatures(this.features).saslMechanisms;
    if (!offered.includes("EXTERNAL")) return "not-offered";
    return this.options.env.trust.certificates.hasCertificateFor(this.options.from)
      ? "possible"
      : "no-certificate";
  }

  /** Dialback is offered (or implied: a pre-1.0 server has no features). */
  get dialbackOffered(): boolean {
    return this.features === undefined ? !isVersion1(this.version) : readFeatures(this.features).dialback;
  }

  /**
   * Authenticates as `from` with the first of `methods` that the stream allows: SASL EXTERNAL
   * (XEP-0178), falling back to dialback (XEP-0220) when it is refused, as s2sOut does.
   */
  async authenticate(methods: readonly AuthMethod[] = ["external", "dialback"]): Promise<AuthOutcome> {
    this.phase = "auth";
    const start = performance.now();
    let externalRefused: string | undefined;
    if (methods.includes("external") && this.externalStatus() === "possible") {
      externalRefused = await this.saslExternal();
      if (externalRefused === undefined) {
        this.timings.auth = since(start);
        return { method: "external" };
      }
    }
    if (methods.includes("dialback") && this.dialbackOffered) {
      await this.dialback();
      this.timings.auth = since(start);
      return { method: "dialback", ...(externalRefused === undefined ? {} : { externalRefused }) };
    }
    const to = this.options.to;
    throw this.fail(
      externalRefused !== undefined
        ? new ProbeFailure(
            "sasl_failed",
            "auth",
            `${to} refused our certificate (SASL EXTERNAL: ${externalRefused}) and offers no dialback`,
          )
        : new ProbeFailure(
            "no_auth_method",
            "auth",
            `${to} offers no authentication Ferry can use here (${this.authMethodsText(methods)})`,
          ),
    );
  }

  /** Sends an XEP-0199 ping from `from` to `to`; the reply may come on any stream (IqReplies). */
  async ping(): Promise<PingOutcome> {
    this.phase = "ping";
    const { from, to } = this.options;
    // Unguessable: a reply is believed on its id (and remote domain) alone.
    const id = `probe-${randomBytes(12).toString("hex")}`;
    const left = Math.max(1, this.options.startedAt + this.options.timeoutMs - performance.now());
    const reply = this.replies.expect(id, to, left);
    const start = performance.now();
    this.transport.send(el("iq", { type: "get", id, from, to }, el("ping", { xmlns: NS.PING })));
    try {
      const answer = await Promise.race([reply, this.failed]);
      this.timings.ping = since(start);
      return { rtt: this.timings.ping, reply: answer };
    } catch (err) {
      if (err instanceof IqReplyTimeout) throw this.fail(this.timeoutFailure());
      throw err;
    } finally {
      this.replies.cancel(id);
    }
  }

  /** Ends the stream politely (`</stream:stream>`, with a stream error if its XML was broken). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.deadline);
    if (this.socketGone) {
      this.transport.destroy();
      return;
    }
    const error = this.closeError;
    this.transport.command({
      type: "CLOSE_STREAM",
      ...(error === undefined ? {} : { error: { condition: error } }),
    });
  }

  private async saslExternal(): Promise<string | undefined> {
    const from = this.options.from;
    this.transport.send(
      el("auth", { xmlns: NS.SASL, mechanism: "EXTERNAL" }, Buffer.from(from).toString("base64")),
    );
    const answer = await this.next((e) =>
      e.type === "ELEMENT" &&
      e.element.ns === NS.SASL &&
      (e.element.local === "success" || e.element.local === "failure")
        ? e.element
        : undefined,
    );
    if (answer.local === "failure") {
      const condition = answer.children.find(
        (c): c is Element => typeof c !== "string" && c.local !== "text",
      );
      return condition?.local ?? "failure";
    }
    // RFC 6120 §6.4.6: the stream restarts after SASL success.
    this.transport.command({ type: "RESET_PARSER" });
    await this.openStream("auth");
    this.phase = "auth";
    return undefined;
  }

  private async dialback(): Promise<void> {
    const { from, to } = this.options;
    const streamId = this.streamId;
    if (streamId === undefined) {
      throw this.fail(
        new ProbeFailure("no_stream_id", "auth", `${to} gave its stream no id, which dialback keys need`),
      );
    }
    // XEP-0185 key over the id the receiving server gave us: Ferry's db:verify handler recomputes it.
    // Remembered by the server, whose db:verify answer confirms only keys it sent (issue 10).
    this.options.env.issuedKeys?.add(to, from, streamId);
    this.transport.send(dbResultRequest(from, to, dialbackKey(this.options.env.secret, to, from, streamId)));
    const remote = to.toLowerCase();
    const local = from.toLowerCase();
    const answer = await this.next((e) => {
      const db = e.type === "ELEMENT" ? readDialback(e.element) : undefined;
      return db?.kind === "result" && db.type !== undefined && db.from === remote && db.to === local
        ? db
        : undefined;
    });
    if (answer.type === "valid") return;
    if (answer.type === "invalid") {
      throw this.fail(
        new ProbeFailure(
          "dialback_invalid",
          "auth",
          `${to} did not accept our dialback key for ${from}: it asked the server of ${from} to confirm it and was told no, or could not reach it`,
        ),
      );
    }
    const condition = answer.errorCondition === undefined ? "" : ` <${answer.errorCondition}/>`;
    throw this.fail(
      new ProbeFailure(
        "dialback_error",
        "auth",
        `${to} answered our dialback request with an error${condition}`,
      ),
    );
  }

  private timeoutFailure(): ProbeFailure {
    const { from, to, timeoutMs } = this.options;
    const where = hostPort(this.target.ip, this.target.port);
    const text =
      this.phase === "ping"
        ? `no answer to the ping within ${timeoutMs} ms: ${to} answers over its own connection to ${from}, which it may be unable to open`
        : `no answer from ${where} within ${timeoutMs} ms (${PHASE_WORDS[this.phase]})`;
    return new ProbeFailure("timeout", this.phase, text);
  }

  private authMethodsText(methods: readonly AuthMethod[]): string {
    const parts: string[] = [];
    if (methods.includes("dialback")) parts.push("dialback: not offered");
    if (methods.includes("external")) parts.push(`SASL EXTERNAL: ${this.externalStatus()}`);
    return parts.join("; ");
  }

  private checkHeader(header: PeerStreamHeader): void {
    if (header.defaultNs === NS.SERVER) return;
    const text =
      header.defaultNs === NS.CLIENT
        ? "the server answered with a client stream (jabber:client): this port serves clients, not servers"
        : `the server answered with a '${header.defaultNs}' stream instead of jabber:server`;
    this.closeError = "invalid-namespace";
    throw this.fail(new ProbeFailure("stream_error:invalid-namespace", this.phase, text));
  }

  private onEvent(event: TransportEvent): void {
    if (this.closed) return;
    switch (event.type) {
      case "ELEMENT": {
        const element = event.element;
        if (element.local === "error" && element.ns === NS.STREAM) {
          this.fail(peerStreamError(element, this.phase));
          return;
        }
        if (stanzaKind(element) !== undefined) {
          this.stanzas.push(element);
          this.replies.take(element);
          return;
        }
        break;
      }
      case "STREAM_ERROR":
        this.closeError = event.condition;
        this.fail(
          new ProbeFailure(
            `stream_error:${event.condition}`,
            this.phase,
            `what the server sent is not an XMPP stream: ${event.text}`,
          ),
        );
        return;
      case "STREAM_END": {
        // Elements read with the end (an invalid dialback answer, then </stream:stream>) are
        // looked at first: the failure is what they say, not that the stream ended.
        const phase = this.phase;
        setImmediate(() => {
          this.fail(
            new ProbeFailure(
              "stream_closed",
              phase,
              `the server closed the stream while Ferry was ${PHASE_WORDS[phase]}`,
            ),
          );
        });
        return;
      }
      case "SOCKET_CLOSED":
        this.socketGone = true;
        this.fail(
          new ProbeFailure(
            "connection_closed",
            this.phase,
            `the server closed the connection while Ferry was ${PHASE_WORDS[this.phase]}`,
          ),
        );
        return;
      case "TLS_FAILED":
        this.fail(new ProbeFailure("tls_failed", "tls", `TLS handshake failed: ${event.error}`));
        return;
      case "IDLE":
        return;
      default:
        break;
    }
    this.events.push(event);
    this.wake?.();
  }

  /** Records the first failure; every wait then throws it. */
  private fail(failure: ProbeFailure): ProbeFailure {
    // A stream that ended after saying why (an invalid dialback key, then </stream:stream>) fails
    // for that reason, not for having ended.
    if (this.failure !== undefined && !(ENDED.has(this.failure.code) && !ENDED.has(failure.code))) {
      return this.failure;
    }
    this.failure = failure;
    this.rejectFailed(failure);
    this.wake?.();
    return failure;
  }

  /** The next event `pick` accepts; others are skipped (they carry nothing a probe needs). */
  private async next<T>(pick: (event: TransportEvent) => T | undefined): Promise<T> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const event = this.events.shift();
      if (event === undefined) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      const picked = pick(event);
      if (picked !== undefined) return picked;
    }
  }
}

const ENDED = new Set(["stream_closed", "connection_closed"]);

function isVersion1(version: string | undefined): boolean {
  const major = Number.parseInt((version ?? "").split(".")[0] ?? "", 10);
  return Number.isFinite(major) && major >= 1;
}

function tlsFacts(socket: net.Socket, mode: TlsFacts["mode"], chain: X509Certificate[]): TlsFacts {
  if (!(socket instanceof TLSSocket)) return { mode, version: "unknown", cipher: "unknown", chain };
  const cipher = socket.getCipher();
  return {
    mode,
    version: socket.getProtocol() ?? "unknown",
    cipher: cipher.standardName || cipher.name,
    chain,
  };
}

/** The server's `<stream:error/>` as `stream_error:<condition>` with its text. */
function peerStreamError(element: Element, phase: Phase): ProbeFailure {
  const condition = element.children.find(
    (c): c is Element => typeof c !== "string" && c.ns === NS.STREAM_ERRORS && c.local !== "text",
  );
  const name = condition?.local ?? "undefined-condition";
  const text = element.getChild("text", NS.STREAM_ERRORS)?.text().trim();
  return new ProbeFailure(
    `stream_error:${name}`,
    phase,
    `the server ended the stream with <${name}/>${text === undefined || text === "" ? "" : `: ${text}`}`,
  );
}
