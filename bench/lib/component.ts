/**
 * The load generator's XEP-0114 component: a raw socket, the SHA-1 handshake, and a light scanner
 * that finds `<message>` stanzas in what the server writes (no XML parser, so the generator costs
 * as little CPU as possible; the messages are ours and carry no nested `<message>`).
 */
import { createHash } from "node:crypto";
import net from "node:net";
import { once } from "node:events";
import { attribute, scanElements } from "./scan.js";

export interface MessageSeen {
  /** The `id` attribute ("" when missing). */
  id: string;
  /** The `type` attribute ("" when missing). */
  type: string;
  /** The whole stanza, kept only for error messages (first few). */
  xml: string;
}

export type MessageHandler = (message: MessageSeen, at: number) => void;

export class ComponentLink {
  readonly socket: net.Socket;
  readonly domain: string;
  /** Called for each complete `<message>` the server sends us. */
  onMessage: MessageHandler = () => undefined;
  /** Elements other than messages (iq, presence, stream errors), counted. */
  otherElements = 0;
  streamError = "";
  closed = false;
  private pending = "";

  private constructor(socket: net.Socket, domain: string, rest: string) {
    this.socket = socket;
    this.domain = domain;
    this.pending = rest;
    socket.on("data", (chunk: string) => {
      this.pending += chunk;
      this.scan();
    });
    socket.on("close", () => {
      this.closed = true;
    });
    socket.on("error", () => undefined);
  }

  /** Connects, opens the component stream and completes the handshake. */
  static async connect(
    host: string,
    port: number,
    domain: string,
    secret: string,
    timeoutMs = 10_000,
  ): Promise<ComponentLink> {
    const socket = net.connect({ host, port, noDelay: true });
    socket.setEncoding("utf8");
    const timer = setTimeout(
      () => socket.destroy(new Error(`component ${domain}: no handshake in ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await once(socket, "connect");
      socket.write(
        `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
      );
      let got = "";
      let streamId: string | undefined;
      for (;;) {
        const [chunk] = (await once(socket, "data")) as [string];
        got += chunk;
        if (streamId === undefined) {
          const header = /<stream:stream\s[^>]*>/.exec(got)?.[0];
          if (header === undefined) continue;
          streamId = attribute(header, "id");
          if (streamId === "") throw new Error(`component ${domain}: no stream id in ${header}`);
          const digest = createHash("sha1")
            .update(streamId + secret)
            .digest("hex");
          socket.write(`<handshake>${digest}</handshake>`);
        }
        if (got.includes("<stream:error")) throw new Error(`component ${domain}: ${got}`);
        const done = /<handshake\s*\/>|<handshake><\/handshake>/.exec(got);
        if (done !== null) {
          socket.removeAllListeners("data");
          return new ComponentLink(socket, domain, got.slice(done.index + done[0].length));
        }
      }
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes, and resolves once the socket accepts more (backpressure). */
  async write(data: string): Promise<void> {
    if (this.socket.write(data) || this.closed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  close(): void {
    if (this.closed) return;
    this.socket.end("</stream:stream>");
    setTimeout(() => this.socket.destroy(), 500).unref();
  }

  private scan(): void {
    const buf = this.pending;
    const now = performance.now();
    const pos = scanElements(buf, 0, (name, tag, start, end) => {
      if (name === "message")
        this.onMessage(
          {
            id: attribute(tag, "id"),
            type: attribute(tag, "type"),
            xml: buf.slice(start, Math.min(end, start + 2000)),
          },
          now,
        );
      else if (name === "/stream:stream") this.streamError ||= "</stream:stream>";
      else {
        if (name === "stream:error") this.streamError = buf.slice(start, end);
        this.otherElements++;
      }
    });
    this.pending = pos >= buf.length ? "" : buf.slice(pos);
  }
}
