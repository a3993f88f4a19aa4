/**
 * One XMPP connection's I/O: the socket, the stream parser in front of it and the write path.
 * A machine drives it through TransportCommands and hears from it through TransportEvents (both
 * in machines/events.ts); the socket itself never enters a machine's context.
 *
 * Writes are batched per tick (cork, then uncork on the next tick), so a burst of stanzas leaves
 * in one TCP segment instead of one write() each.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { X509Certificate } from "node:crypto";
import {
  TLSSocket,
  connect as tlsConnect,
  type CipherNameAndProtocol,
  type ConnectionOptions,
  type DetailedPeerCertificate,
  type TLSSocketOptions,
} from "node:tls";
import type { PeerStreamHeader, TransportCommand, TransportEvent } from "../../machines/events.js";
import type { Logger } from "../log.js";
import type { Element } from "../xml/element.js";
import { serialize, streamHeader, STREAM_FOOTER } from "../xml/serialize.js";
import { StreamParser, type StreamHeader } from "../xml/streamParser.js";
import { streamError, type StreamErrorCondition } from "../xmpp/streamErrors.js";
import { stanzaKind } from "../xmpp/stanzaErrors.js";
import type { Shaper } from "./shaper.js";
import type { SmInbound, SmOutbound } from "../s2s/streamManagement.js";
import type { Flushable } from "../routing/backpressure.js";
import { NS } from "../xmpp/namespaces.js";

export interface TransportOptions {
  id: string;
  socket: Socket;
  /** The stream's content namespace, used when a header must be sent only to carry an error. */
  defaultNs: string;
  maxStanzaSize: number;
  log: Logger;
  /** How long to wait for the peer's `</stream:stream>` after ours before cutting the TCP link. */
  closeGraceMs?: number;
  /** Limits how fast the peer may send (`shaper` / `shaper_rule`). */
  shaper?: Shaper;
  /**
   * STARTTLS as the receiving side: our certificate (chosen by SNI) — looked up at each handshake,
   * so a reload applies to new handshakes only.
   */
  serverTls?: () => Pick<TLSSocketOptions, "secureContext" | "SNICallback">;
  /** STARTTLS as the initiating side: what we present when connecting as `local` (SASL EXTERNAL). */
  clientTls?: (local: string) => ConnectionOptions;
  /** Already TLS from the first byte (XEP-0368 direct TLS). */
  secure?: boolean;
  /** Counts bytes per direction (plain integers, exported at scrape time). */
  traffic?: (direction: "in" | "out", bytes: number, tls: "none" | "starttls" | "direct") => void;
}

export interface TransportEndpoints {
  local: { address: string; port: number };
  remote: { address: string; port: number };
  /** Negotiated TLS (protocol version, IANA cipher suite name), when the stream is encrypted. */
  tls?: { version: string; cipher: string };
}

export class XmppTransport {
  readonly id: string;
  /** The current socket: the TCP one, or the TLS socket wrapping it after STARTTLS. */
  socket: Socket;
  /** "none", "starttls" or "direct": whether and how the stream is encrypted. */
  tls: "none" | "starttls" | "direct";
  bytesIn = 0;
  bytesOut = 0;
  /** For seed 000's "connection start", "stanza count" and "last used" (stanzas only, either way). */
  readonly startedAt = Date.now();
  stanzasIn = 0;
  stanzasOut = 0;
  lastStanzaAt: number | undefined;
  private readonly parser: StreamParser;
  private readonly options: TransportOptions;
  private sink: ((event: TransportEvent) => void) | undefined;
  private headerSent = false;
  /** We sent `</stream:stream>`: input is ignored until the peer closes too. */
  private closing = false;
  private peerEnded = false;
  private closedReported = false;
  /** Writes in this tick: the first goes out at once, the others are corked until the tick ends. */
  private tickWrites = 0;
  private graceTimer: NodeJS.Timeout | undefined;
  private shaperTimer: NodeJS.Timeout | undefined;
  /**
   * Once a stream is established, its stanzas go here instead of becoming machine events
   * (ARCHITECTURE.md principle 1: no statechart event per stanza).
   */
  stanzaSink: ((stanza: Element) => void) | undefined;
  /** XEP-0198 on this stream, once enabled (src/s2s/streamManagement.ts). */
  smOutbound: SmOutbound | undefined;
  smInbound: SmInbound | undefined;

  constructor(options: TransportOptions) {
    this.options = options;
    this.id = options.id;
    this.socket = options.socket;
    this.tls = options.secure === true ? "direct" : "none";
    this.parser = new StreamParser(
      {
        onHeader: (header) => {
          this.emit({ type: "STREAM_HEADER", header: peerHeader(header) });
        },
        onElement: (element) => {
          // Only stanzas take the fast path; anything else (dialback, a peer's stream error) is control.
          // XEP-0198 acks go to their counters, not to the machine (several per second).
          if (element.ns === NS.SM && (this.smOutbound !== undefined || this.smInbound !== undefined)) {
            this.receiveSm(element);
            return;
          }
          if (this.stanzaSink && !this.closing && stanzaKind(element) !== undefined) {
            this.stanzasIn++;
            this.lastStanzaAt = Date.now();
            this.stanzaSink(element);
          } else this.emit({ type: "ELEMENT", element });
        },
        onEnd: () => {
          this.peerEnded = true;
          if (this.closing) this.socket.end();
          else this.emit({ type: "STREAM_END" });
        },
        onError: (condition, text) => {
          this.emit({ type: "STREAM_ERROR", condition, text });
        },
      },
      { maxStanzaSize: options.maxStanzaSize },
    );
  }

  /** Connects the transport to its machine and starts reading. */
  attach(sink: (event: TransportEvent) => void): void {
    this.sink = sink;
    this.listen(this.socket);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.bytesIn += chunk.length;
    this.readSinceSweep = true;
    this.options.traffic?.("in", chunk.length, this.tls);
    this.parser.write(chunk);
    this.shape(chunk.length);
  };

  /** Whether anything was read since the last sweepIdle(). */
  private readSinceSweep = true;

  /**
   * Called periodically for every transport (src/server.ts): a stream that read nothing since
   * the previous call gives its parser state back until its next read (issue 9: an idle link's
   * memory; the state is rebuilt in a few microseconds).
   */
  sweepIdle(): void {
    if (this.readSinceSweep) this.readSinceSweep = false;
    else if (!this.parser.suspended) this.parser.suspend();
  }

  private listen(socket: Socket): void {
    socket.on("data", this.onData);
    socket.on("error", (err) => {
      this.options.log.debug(`socket error: ${err.message}`);
    });
    socket.on("close", (hadError) => {
      this.clearGrace();
      if (this.closedReported) return;
      this.closedReported = true;
      this.sink?.({ type: "SOCKET_CLOSED", ...(hadError ? { error: "socket error" } : {}) });
    });
    // stream_timeout: Node measures inactivity in both directions for us.
    socket.on("timeout", () => {
      this.sink?.({ type: "IDLE" });
    });
  }

  /**
   * RFC 6120 §5.4.3.3: after <proceed/>, TLS starts on the same TCP connection and the stream
   * restarts; anything the peer pipelined after <starttls/> is discarded (the parser is reset).
   */
  private receiveSm(element: Element): void {
    if (element.local === "enabled" || element.local === "failed")
      this.options.log.info(
        `stream management (XEP-0198) ${element.local === "enabled" ? "enabled" : "refused by the peer"}`,
      );
    const ok = this.smOutbound?.receive(element) ?? this.smInbound?.receive(element) ?? true;
    if (!ok)
      this.fail(
        "undefined-condition",
        "stream management: the peer acknowledged more stanzas than were sent",
      );
  }

  /** The socket's real addresses and its TLS parameters, for the admin views. */
  endpoints(): TransportEndpoints {
    const socket = this.socket;
    // Before the handshake completes there is no protocol nor cipher yet.
    const cipher =
      socket instanceof TLSSocket ? (socket.getCipher() as CipherNameAndProtocol | undefined) : undefined;
    const version = socket instanceof TLSSocket ? socket.getProtocol() : null;
    const tls =
      cipher === undefined || version === null ? undefined : { version, cipher: cipher.standardName };
    return {
      local: { address: socket.localAddress ?? "", port: socket.localPort ?? 0 },
      remote: { address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 },
      ...(tls === undefined ? {} : { tls }),
    };
  }

  /** The certificate chain the peer presented (leaf first), empty without TLS or a certificate. */
  peerChain(): X509Certificate[] {
    if (!(this.socket instanceof TLSSocket)) return [];
    const chain: X509Certificate[] = [];
    let cert: DetailedPeerCertificate | undefined = this.socket.getPeerCertificate(true);
    while (cert?.raw !== undefined && chain.length < 10) {
      chain.push(new X509Certificate(cert.raw));
      // The last certificate of a chain points at itself.
      cert = cert.issuerCertificate === cert ? undefined : cert.issuerCertificate;
    }
    return chain;
  }

  /** Verdicts per domain, kept with the connection (the chain does not change once TLS is up);
   *  made on first use, as plain streams never need one (issue 9: memory per idle link). */
  private verdicts: Map<string, unknown> | undefined;

  /** A certificate check, computed once per domain for this connection. */
  verdict<T>(domain: string, check: (chain: X509Certificate[], domain: string) => T): T {
    const verdicts = (this.verdicts ??= new Map());
    if (!verdicts.has(domain)) verdicts.set(domain, check(this.peerChain(), domain));
    return verdicts.get(domain) as T;
  }

  private startTls(role: "client" | "server", servername: string | undefined, identity?: string): void {
    const raw = this.socket;
    if (this.tickWrites > 1) raw.uncork();
    this.tickWrites = 0;
    raw.off("data", this.onData);
    raw.removeAllListeners("close");
    raw.removeAllListeners("timeout");
    this.parser.reset();
    this.headerSent = false;
    const onFailure = (err: Error): void => {
      this.options.log.notice(`TLS negotiation failed: ${err.message}`);
      this.sink?.({ type: "TLS_FAILED", error: err.message });
    };
    let secure: TLSSocket;
    if (role === "server") {
      // A certificate from the initiating server is asked for (SASL EXTERNAL, XEP-0178) but not
      // required, and checked by us rather than by OpenSSL (which would insist on clientAuth).
      secure = new TLSSocket(raw, {
        isServer: true,
        requestCert: true,
        rejectUnauthorized: false,
        ...this.options.serverTls?.(),
      });
      secure.once("secure", () => {
        this.tls = "starttls";
        // RFC 6120 §4.7.3: every stream, a restarted one too, gets a fresh unpredictable id.
        this.sink?.({ type: "TLS_ESTABLISHED", streamId: randomBytes(16).toString("hex") });
      });
    } else {
      secure = tlsConnect({
        socket: raw,
        ...(servername === undefined ? {} : { servername }),
        ...(identity === undefined ? {} : this.options.clientTls?.(identity)),
        ALPNProtocols: ["xmpp-server"],
        // Verified by our own RFC 6125 checks (src/tls), which keep a precise reason.
        rejectUnauthorized: false,
      });
      secure.once("secureConnect", () => {
        this.tls = "starttls";
        this.sink?.({ type: "TLS_ESTABLISHED" });
      });
    }
    secure.once("error", onFailure);
    this.socket = secure;
    this.listen(secure);
  }

  command(command: TransportCommand): void {
    switch (command.type) {
      case "OPEN_STREAM":
        this.headerSent = true;
        this.write(streamHeader(command.attrs));
        return;
      case "SEND":
        this.send(command.element);
        return;
      case "CLOSE_STREAM":
        this.closeStream(command.error);
        return;
      case "RESET_PARSER":
        this.parser.reset();
        return;
      case "START_TLS":
        this.startTls(command.role, command.servername, command.identity);
        return;
      case "WATCH_IDLE":
        this.socket.setTimeout(command.ms);
        return;
    }
  }

  /** Writes a stanza; false when the stream is closing or closed and it was not written. */
  send(element: Element): boolean {
    return this.sendSerialized(serialize(element)) > 0;
  }

  /** Writes a stanza already serialized; returns its size in bytes, 0 when it was not written. */
  sendSerialized(xml: string): number {
    if (!this.isOpen) return 0;
    return this.write(xml);
  }

  get isOpen(): boolean {
    return !this.closing && !this.socket.destroyed && !this.socket.writableEnded;
  }

  /** The socket's buffer is full: hold further stanzas until `drain`. */
  get congested(): boolean {
    return this.socket.writableNeedDrain;
  }

  onDrain(listener: () => void): void {
    this.socket.on("drain", listener);
  }

  /**
   * Calls `done` once everything written so far has reached the kernel: an empty write queued
   * behind it completes only then (Node calls its callback in order, with an error if the socket
   * is destroyed first, when the data is lost whatever we do).
   */
  afterFlush(done: () => void): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded || socket.writableLength === 0) done();
    else
      socket.write("", () => {
        done();
      });
  }

  /** A stanza read here was handed to `sink`: our XEP-0198 ack for it waits for the sink's flush. */
  handedTo(sink: Flushable): void {
    this.smInbound?.dependOn(sink);
  }

  /** A protocol violation found on the stanza path: the machine ends the stream with this error. */
  fail(condition: StreamErrorCondition, text: string): void {
    this.emit({ type: "STREAM_ERROR", condition, text });
  }

  /** Tears the socket down at once (actor stopped, forced shutdown). Idempotent. */
  destroy(): void {
    this.clearGrace();
    this.closedReported = true;
    this.socket.destroy();
  }

  private closeStream(
    error: { condition: Parameters<typeof streamError>[0]; text?: string } | undefined,
  ): void {
    if (this.closing || this.socket.destroyed) return;
    // RFC 6120 §4.9.1.2: an error before our header still needs a header to make sense.
    if (!this.headerSent) {
      this.headerSent = true;
      this.write(streamHeader({ defaultNs: this.options.defaultNs, id: this.id }));
    }
    if (error) this.write(serialize(streamError(error.condition, error.text)));
    this.write(STREAM_FOOTER);
    this.closing = true;
    // After a stream error, or once the peer has closed its side, there is nothing left to wait for.
    if (error !== undefined || this.peerEnded) this.socket.end();
    this.graceTimer = setTimeout(() => this.socket.destroy(), this.options.closeGraceMs ?? 1000);
    this.graceTimer.unref();
  }

  private write(data: string): number {
    if (this.socket.destroyed || this.socket.writableEnded) return 0;
    const bytes = Buffer.byteLength(data);
    this.bytesOut += bytes;
    this.options.traffic?.("out", bytes, this.tls);
    // A lone write (a stanza at a time) is sent as it is; a burst goes out in one writev at the end
    // of the tick, however many stanzas it holds.
    const writes = this.tickWrites++;
    if (writes === 0) process.nextTick(this.endTick);
    else if (writes === 1) this.socket.cork();
    this.socket.write(data);
    return bytes;
  }

  private readonly endTick = (): void => {
    if (this.tickWrites > 1) this.socket.uncork();
    this.tickWrites = 0;
  };

  private emit(event: TransportEvent): void {
    if (this.closing && event.type !== "SOCKET_CLOSED") return;
    this.sink?.(event);
  }

  private holds = 0;

  /** Stops reading until the returned release is called (a congested queue downstream). */
  hold(): () => void {
    this.holds++;
    this.socket.pause();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      if (this.holds === 0 && this.shaperTimer === undefined && !this.socket.destroyed) this.socket.resume();
    };
  }

  private shape(bytes: number): void {
    const pause = this.options.shaper?.update(bytes) ?? 0;
    if (pause <= 0 || this.shaperTimer !== undefined) return;
    this.socket.pause();
    this.shaperTimer = setTimeout(() => {
      this.shaperTimer = undefined;
      if (this.holds === 0 && !this.socket.destroyed) this.socket.resume();
    }, pause);
  }

  private clearGrace(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    if (this.shaperTimer !== undefined) clearTimeout(this.shaperTimer);
    this.shaperTimer = undefined;
  }
}

function peerHeader(header: StreamHeader): PeerStreamHeader {
  const prefixes: Record<string, string> = {};
  for (const [name, value] of Object.entries(header.attrs)) {
    if (name.startsWith("xmlns:")) prefixes[name.slice(6)] = value;
  }
  const { to, from, id, version } = header.attrs;
  return {
    defaultNs: header.defaultNs,
    ns: header.ns,
    prefixes,
    attrs: header.attrs,
    ...(to === undefined ? {} : { to }),
    ...(from === undefined ? {} : { from }),
    ...(id === undefined ? {} : { id }),
    ...(version === undefined ? {} : { version }),
  };
}
