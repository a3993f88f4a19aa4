/**
 * DNS questions with `outgoing.dns.timeout`/`retries` semantics (as MongooseIM's `inet_res` loop):
 * each try gets `timeoutMs` per server, and up to `retries` tries are made. Answers are classified
 * as records, "no such name" (NXDOMAIN), "no records of that type" (NODATA) or a DNS failure.
 */
import { promises as dns } from "node:dns";
import type { SrvRecord } from "node:dns";

/** What resolution needs from a resolver; `dns.promises.Resolver` is one, tests may inject another. */
export interface DnsClient {
  resolveSrv(name: string): Promise<SrvRecord[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  /** The servers asked, for failure texts. */
  getServers(): string[];
  /** Abandons every outstanding question (they reject with ECANCELLED). */
  cancel(): void;
}

export interface QueryLimits {
  timeoutMs: number;
  retries: number;
  signal?: AbortSignal | undefined;
}

export type Answer<T> =
  | { kind: "records"; value: T }
  | { kind: "nxdomain" }
  | { kind: "nodata" }
  /** `problem` says what went wrong, e.g. "timeout after 2 tries asking 127.0.0.1:53". */
  | { kind: "error"; problem: string };

/**
 * A resolver with `servers` (else the system's). c-ares' own retransmissions are turned off
 * (`tries: 1`): `ask` asks again until `dns.timeout` is up, then makes the next of `dns.retries` tries.
 *
 * c-ares does not keep to the timeout it is given. From 1.32 on (Node 20.20 has 1.34) it gives up on a
 * question after 5 × the server's average latency, at least 250 ms and at most 5 s, once it has three
 * answers from that server; Node looks at c-ares' timeouts once a second. Against a DNS server
 * nearby, every question ends after about a second, whatever `dns.timeout` says.
 */
export function createDnsClient(timeoutMs: number, servers?: readonly string[]): DnsClient {
  const resolver = new dns.Resolver({ timeout: Math.max(1, Math.round(timeoutMs)), tries: 1 });
  if (servers !== undefined && servers.length > 0) resolver.setServers([...servers]);
  return resolver;
}

/** Resolvers by (timeout, servers): one c-ares channel per configured server set, not per lookup. */
const shared = new Map<string, DnsClient>();
const SHARED_MAX = 16;

/**
 * The resolver every resolution with these settings shares. A channel is costly to set up
 * (c-ares reads the system configuration, sockets are opened), so resolutions never cancel it:
 * an abandoned question is dropped by its deadline and ends inside c-ares after `timeoutMs`.
 */
export function sharedDnsClient(timeoutMs: number, servers?: readonly string[]): DnsClient {
  const key = `${Math.max(1, Math.round(timeoutMs))} ${servers?.join(" ") ?? ""}`;
  let client = shared.get(key);
  if (client === undefined) {
    client = new BoundedDnsClient(createDnsClient(timeoutMs, servers), MAX_IN_FLIGHT);
    // Bounded (tests use many fake servers); the oldest set is dropped first.
    if (shared.size >= SHARED_MAX) shared.delete(shared.keys().next().value ?? "");
    shared.set(key, client);
  }
  return client;
}

/**
 * Questions one shared channel has on the wire at once. A channel has one UDP socket per server:
 * a burst of thousands of questions (10,000 fresh domains) would have their answers overflow its
 * receive buffer, and the lost ones would end as timeouts. The rest wait their turn, inside the
 * caller's deadline.
 */
const MAX_IN_FLIGHT = 256;

/** A DnsClient that lets at most `limit` questions run at once, in the order they were asked. */
export class BoundedDnsClient implements DnsClient {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly inner: DnsClient,
    private readonly limit: number,
  ) {}

  resolveSrv(name: string): Promise<SrvRecord[]> {
    return this.run(() => this.inner.resolveSrv(name));
  }
  resolve4(name: string): Promise<string[]> {
    return this.run(() => this.inner.resolve4(name));
  }
  resolve6(name: string): Promise<string[]> {
    return this.run(() => this.inner.resolve6(name));
  }
  getServers(): string[] {
    return this.inner.getServers();
  }
  cancel(): void {
    this.inner.cancel();
  }

  /** Questions asked but not yet sent. */
  get queued(): number {
    return this.waiting.length;
  }

  private async run<T>(question: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((go) => this.waiting.push(go));
    else this.running++;
    try {
      return await question();
    } finally {
      // The slot passes straight to the next question, if any.
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}

/** Asks one question, retrying DNS failures (not NXDOMAIN/NODATA); rejects only when aborted. */
export async function ask<T>(
  client: DnsClient,
  limits: QueryLimits,
  run: () => Promise<T>,
): Promise<Answer<T>> {
  const servers = client.getServers();
  const tries = Math.max(1, limits.retries);
  let problem = "";
  for (let i = 0; i < tries; i++) {
    limits.signal?.throwIfAborted();
    try {
      const ms = limits.timeoutMs * Math.max(1, servers.length);
      const value = await withDeadline(
        askUntil(run, performance.now() + ms, limits.signal),
        ms,
        limits.signal,
      );
      return { kind: "records", value };
    } catch (err) {
      limits.signal?.throwIfAborted();
      const code = errorCode(err);
      if (code === "ENOTFOUND") return { kind: "nxdomain" };
      if (code === "ENODATA") return { kind: "nodata" };
      problem = describe(code, tries, servers);
    }
  }
  return { kind: "error", problem };
}

const TIMEOUT = "ETIMEOUT";

/**
 * Asks again each time c-ares gives up (see `createDnsClient`) before `until`. A recursive resolver
 * still working on the name answers the new question when it is done. After a stall of the event
 * loop, c-ares' timer runs before the answer that came meanwhile is read and drops it, and the new
 * question gets its answer at once.
 */
async function askUntil<T>(
  run: () => Promise<T>,
  until: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  for (;;) {
    const asked = performance.now();
    try {
      return await run();
    } catch (err) {
      const now = performance.now();
      // c-ares waits at least 250 ms; a quicker "timeout" is not that one, and asking again at once
      // would only spin.
      const early = now - asked < 200;
      if (errorCode(err) !== TIMEOUT || early || now >= until || signal?.aborted === true) throw err;
    }
  }
}

function withDeadline<T>(work: Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      // After a stall of the event loop (10,000 links closing at once), timers run before the I/O
      // that came meanwhile: let an answer already received settle first (an immediate runs after
      // the poll phase), rather than report a timeout for it.
      setImmediate(() => {
        done();
        reject(Object.assign(new Error("DNS query timed out"), { code: TIMEOUT }));
      });
    }, ms);
    const onAbort = () => {
      done();
      reject(new Error("aborted")); // `ask` then throws the signal's own reason
    };
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        done();
        resolve(v);
      },
      (e: unknown) => {
        done();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function errorCode(err: unknown): string {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") {
    return err.code;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The failure in words, for bounce texts: which servers, and what they did. */
function describe(code: string, tries: number, servers: readonly string[]): string {
  const who = servers.length === 0 ? "the system's DNS servers" : servers.map(withPort).join(", ");
  switch (code) {
    case TIMEOUT:
      return `timeout after ${tries} ${tries === 1 ? "try" : "tries"} asking ${who}`;
    case "ECONNREFUSED":
      return `connection refused by ${who}`;
    case "ESERVFAIL":
      return `${who} answered SERVFAIL`;
    case "EREFUSED":
      return `${who} refused the query (REFUSED)`;
    case "EBADNAME":
      return "the name is not a valid DNS name";
    default:
      return `error ${code} asking ${who}`;
  }
}

/** Node lists servers on port 53 without the port; show it anyway ("127.0.0.1:53", "[::1]:53"). */
function withPort(server: string): string {
  if (/^\[.*\]:\d+$/.test(server) || /^[^:]+:\d+$/.test(server)) return server;
  return server.includes(":") ? `[${server}]:53` : `${server}:53`;
}
