/** A raw TCP peer for wire-level tests: send bytes, wait for what Ferry writes back. */
import net from "node:net";

export class WirePeer {
  received = "";
  closed = false;
  private readonly socket: net.Socket;
  private waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => {
      this.received += data;
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  static connect(port: number, host = "127.0.0.1"): Promise<WirePeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => {
        socket.off("error", reject);
        resolve(new WirePeer(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Connects once a process being started listens; `why` explains a timeout (its stderr, say). */
  static async connectWhenListening(port: number, why: () => string, timeoutMs = 10_000): Promise<WirePeer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await WirePeer.connect(port);
      } catch {
        if (Date.now() > deadline) throw new Error(`nothing listens on ${port}: ${why()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  end(): void {
    this.socket.end();
  }

  /** Stops reading (a slow peer): Ferry's writes back up into the kernel and then its queues. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** How many times `pattern` (global) occurs in what was received. */
  count(pattern: RegExp): number {
    return this.received.match(pattern)?.length ?? 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves with everything received so far once `pattern` matches it. */
  async waitFor(pattern: RegExp, timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.received)) {
      if (this.closed) throw new Error(`connection closed before ${String(pattern)}; got: ${this.received}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${String(pattern)}; got: ${this.received}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received;
  }

  /** Resolves once Ferry has closed the TCP connection. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open; got: ${this.received}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** An S2S stream header as a peer sends it; `version: null` for a pre-1.0 (dialback-only) peer. */
export const S2S_HEADER = (to: string, from: string, version: string | null = "1.0"): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' ` +
  `xmlns:db='jabber:server:dialback' to='${to}' from='${from}'${version === null ? "" : ` version='${version}'`}>`;
