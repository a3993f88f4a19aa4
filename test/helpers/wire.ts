/** A raw TCP peer for wire-level tests: send bytes, wait for what Ferry writes back. */
import { closeSync, mkdirSync, openSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

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

/**
 * Ports are picked below the kernel's ephemeral range (32768–60999 on Linux), so that no `listen(0)`
 * or outgoing connection elsewhere can take one between this probe and the caller's own listen.
 */
const PORT_RANGE = { first: 10_000, count: 22_000 };
const handedOut = new Set<number>();
// Test files run as concurrent children of one `node --test`: an exclusive file per port in a folder
// named after that runner keeps two files from being handed the same port.
const reservations = path.join(os.tmpdir(), `ferry-test-ports-${String(process.ppid)}`);

let swept = false;

/** Removes the reservation folders of runners that have exited. */
function sweepOldReservations(): void {
  swept = true;
  for (const name of readdirSync(os.tmpdir())) {
    const runner = /^ferry-test-ports-(\d+)$/.exec(name)?.[1];
    if (runner === undefined || Number(runner) === process.ppid) continue;
    try {
      process.kill(Number(runner), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") {
        rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
      }
    }
  }
}

function reserve(port: number): boolean {
  if (handedOut.has(port)) return false;
  try {
    if (!swept) sweepOldReservations();
    mkdirSync(reservations, { recursive: true });
    closeSync(openSync(path.join(reservations, String(port)), "wx"));
  } catch {
    return false;
  }
  handedOut.add(port);
  return true;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => {
      resolve(false);
    });
    server.listen(port, "127.0.0.1", () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

/** A free port on 127.0.0.1 that no other caller in this test run has been or will be given. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = PORT_RANGE.first + Math.floor(Math.random() * PORT_RANGE.count);
    if (reserve(port) && (await canListen(port))) return port;
  }
  throw new Error("freePort: no free port found in 1,000 tries");
}

/** An S2S stream header as a peer sends it; `version: null` for a pre-1.0 (dialback-only) peer. */
export const S2S_HEADER = (to: string, from: string, version: string | null = "1.0"): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' ` +
  `xmlns:db='jabber:server:dialback' to='${to}' from='${from}'${version === null ? "" : ` version='${version}'`}>`;
