/**
 * The far side of the fan-out tests, run in a child process so that a stalled event loop in Ferry
 * cannot starve it: a wildcard DNS (every name is 127.0.0.1, except `nx*` names, which do not exist)
 * and a TCP server that accepts and stays silent, counting concurrent connections.
 *
 * `startPeers()` forks this file; the child serves only when started with --hostile-peers (as a
 * compiled file under dist/test it could otherwise be picked up as a module and must do nothing).
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CountingServer, WildcardDns } from "./hostileHarness.js";

export interface PeerStats {
  current: number;
  max: number;
  total: number;
  queries: string[];
}

type Request = { type: "stats" } | { type: "reset" };
type Reply = { type: "ready"; dns: string; port: number } | ({ type: "stats" } & PeerStats);

export interface Peers {
  dns: string;
  port: number;
  stats(): Promise<PeerStats>;
  /** Forgets the maximum and the questions seen so far. */
  reset(): Promise<PeerStats>;
  close(): Promise<void>;
}

const NXDOMAIN = (name: string): boolean => name.startsWith("nx");

export async function startPeers(): Promise<Peers> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ["--hostile-peers"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending: { resolve: (reply: Reply) => void; reject: (err: Error) => void }[] = [];
  child.on("message", (reply: Reply) => {
    pending.shift()?.resolve(reply);
  });
  child.on("exit", (code) => {
    for (const waiter of pending.splice(0))
      waiter.reject(new Error(`hostile peers exited with ${String(code)}`));
  });
  const next = (): Promise<Reply> =>
    new Promise((resolve, reject) => {
      pending.push({ resolve, reject });
    });
  const ready = await next();
  if (ready.type !== "ready") throw new Error("hostile peers did not start");
  const ask = async (request: Request): Promise<PeerStats> => {
    const reply = next();
    child.send(request);
    const got = await reply;
    if (got.type !== "stats") throw new Error("unexpected reply");
    return got;
  };
  return {
    dns: ready.dns,
    port: ready.port,
    stats: () => ask({ type: "stats" }),
    reset: () => ask({ type: "reset" }),
    close: () =>
      new Promise((resolve) => {
        child.once("exit", () => {
          resolve();
        });
        child.kill();
      }),
  };
}

async function serve(): Promise<void> {
  const dns = await WildcardDns.start("127.0.0.1", NXDOMAIN);
  const counting = await CountingServer.start(4096);
  const send = (reply: Reply): void => {
    process.send?.(reply);
  };
  process.on("message", (request: Request) => {
    const stats: PeerStats = {
      current: counting.current,
      max: counting.max,
      total: counting.total,
      queries: [...dns.queries],
    };
    if (request.type === "reset") {
      counting.max = counting.current;
      dns.queries.length = 0;
    }
    send({ type: "stats", ...stats });
  });
  process.on("disconnect", () => {
    process.exit(0);
  });
  send({ type: "ready", dns: dns.server, port: counting.port });
}

if (process.argv.includes("--hostile-peers")) {
  serve().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
