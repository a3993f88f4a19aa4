/**
 * A tiny fake receiving S2S server for the scale benchmark: it answers any stream header for any
 * domain with stream features offering dialback (no STARTTLS), accepts every `<db:result/>` as
 * valid at once (it never verifies the key with the originating server: it is a load sink, not a
 * server), and counts the messages that arrive. One connection costs it a socket and a string, so
 * the memory and CPU measured on the other side are Ferry's own.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import { attribute, scanElements } from "./scan.js";

export class FakeS2s {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Stream headers answered. */
  streams = 0;
  /** Dialback requests answered with type='valid'. */
  authorized = 0;
  messages = 0;
  /** Called with the `to` domain of each message. */
  onMessage: (to: string, at: number) => void = () => undefined;

  constructor() {
    this.server = net.createServer({ noDelay: true }, (socket) => {
      this.accept(socket);
    });
  }

  get connections(): number {
    return this.sockets.size;
  }

  listen(address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: address, port, backlog: 4096 }, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  /** Stops listening and cuts every connection (TCP reset: the peer sees the link die). */
  stop(): Promise<void> {
    for (const s of this.sockets) s.resetAndDestroy();
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setEncoding("utf8");
    let pending = "";
    let opened = false;
    socket.on("data", (chunk: string) => {
      pending += chunk;
      const now = performance.now();
      const pos = scanElements(pending, 0, (name, tag) => {
        if (name === "stream:stream" && !opened) {
          opened = true;
          this.streams++;
          const to = attribute(tag, "to");
          const from = attribute(tag, "from");
          socket.write(
            `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' ` +
              `xmlns:db='jabber:server:dialback' id='${randomBytes(8).toString("hex")}' from='${to}' to='${from}' version='1.0'>` +
              `<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`,
          );
        } else if (name === "db:result") {
          this.authorized++;
          socket.write(
            `<db:result from='${attribute(tag, "to")}' to='${attribute(tag, "from")}' type='valid'/>`,
          );
        } else if (name === "message") {
          this.messages++;
          this.onMessage(attribute(tag, "to"), now);
        } else if (name === "/stream:stream") {
          socket.end("</stream:stream>");
        }
      });
      pending = pos >= pending.length ? "" : pending.slice(pos);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.sockets.delete(socket);
    });
  }
}
