/**
 * The `connect` step of an outgoing stream (seed 000's "we started to connect"): resolve the remote
 * domain, then try every address in turn, each within `connection_timeout`, keeping one line per
 * attempt ("connection results"). The connected socket becomes a transport in the table; the
 * machine gets its id. Failures carry the bounce condition and a text saying what failed.
 */
import net from "node:net";
import tls from "node:tls";
import { fromPromise } from "xstate";
import type { ConnectInput, ConnectOutput, LinkFailure } from "../../machines/s2sOut.js";
import type { Logger } from "../log.js";
import { resolveTargets, type ResolveOptions, type Target } from "../dns/resolve.js";
import { XmppTransport } from "../net/transport.js";
import type { Shaper } from "../net/shaper.js";
import type { CertificateCheck } from "./trust.js";
import type { ConnectResult, StanzaCounters, TlsLabel } from "../metrics/stanzaCounters.js";
import type { TransportTable } from "../net/transportActor.js";
import { NS } from "../xmpp/namespaces.js";
import { ownedString } from "../xml/ownedString.js";
import type { ConnectSlots, NegativeDnsCache } from "./connectLimits.js";

export interface ConnectOptions {
  resolve: ResolveOptions;
  connectionTimeoutMs: number;
  maxStanzaSize: number;
  transports: TransportTable;
  log: Logger;
  newId: () => string;
  /** `outgoing.shaper`: limits how fast the remote server may send to us on this connection. */
  shaper?: () => Shaper | undefined;
  /** The certificate we present when connecting as a local domain (SASL EXTERNAL). */
  clientTls?: (local: string) => tls.ConnectionOptions;
  /** Judges the remote certificate (direct TLS: right after connecting). */
  checkCertificate?: CertificateCheck;
  counters?: StanzaCounters;
  /** Where the attempt is, while it runs (seed 000's "pending IPs" and "connection results"). */
  progress?: ConnectProgress;
  /** `outgoing.max_connecting`: attempts under way at once. */
  slots?: ConnectSlots;
  /** `outgoing.dns.negative_ttl`: domains that did not resolve, remembered. */
  negativeDns?: NegativeDnsCache;
}

export interface ConnectState {
  /** What DNS answered: one line per target, then its notes. */
  dns: string[];
  /** Addresses not tried yet. */
  pending: string[];
  /** One line per address tried. */
  results: string[];
}

/** The live state of running connect steps, by the connect actor (the admin tree reads it). */
export class ConnectProgress {
  private readonly running = new WeakMap<object, ConnectState>();

  of(connectActor: object): ConnectState | undefined {
    return this.running.get(connectActor);
  }

  set(connectActor: object, state: ConnectState): void {
    this.running.set(connectActor, state);
  }
}

/** A target as seed 000 prints addresses: `ip:port`, IPv6 in brackets. */
const where = (target: Target): string =>
  `${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`;

export function dnsLines(resolved: { targets: Target[]; notes: string[]; failure?: string }): string[] {
  // Kept with the link (context, link history): flat strings in an array of its exact size, not
  // trees of concatenations (about 0.4 KiB per line, issue 9).
  return resolved.targets
    .map((t) => ownedString(`${where(t)}${t.directTls ? " (direct TLS)" : ""} via ${t.via}`))
    .concat(resolved.notes, resolved.failure === undefined ? [] : [resolved.failure]);
}

export class ConnectFailure extends Error implements LinkFailure {
  constructor(
    readonly condition: LinkFailure["condition"],
    readonly text: string,
    readonly attempts: string[],
    readonly dns: string[] = [],
  ) {
    super(text);
  }
}

function open(
  target: Target,
  servername: string,
  timeoutMs: number,
  signal: AbortSignal,
  client: () => tls.ConnectionOptions,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = target.directTls
      ? tls.connect({
          ...client(),
          host: target.host,
          port: target.port,
          // XEP-0368: SNI is the XMPP domain (or the relay name of an outgoing.address override).
          servername: target.tlsName ?? servername,
          ALPNProtocols: ["xmpp-server"],
          // Judged by src/tls (RFC 6125) afterwards, which keeps a precise reason.
          rejectUnauthorized: false,
        })
      : net.connect({ host: target.host, port: target.port, noDelay: true });
    // Every XMPP socket sends each write at once (tls.connect has no noDelay option of its own).
    if (target.directTls) socket.setNoDelay(true);
    const ready = target.directTls ? "secureConnect" : "connect";
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => {
          fail(new TimeoutError(`no connection within ${timeoutMs} ms`));
        }, timeoutMs)
      : undefined;
    const onAbort = (): void => {
      fail(new Error("abandoned"));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off("error", fail);
      signal.removeEventListener("abort", onAbort);
    };
    socket.once("error", fail);
    signal.addEventListener("abort", onAbort);
    socket.once(ready, () => {
      cleanup();
      resolve(socket);
    });
  });
}

/** What an address attempt's failure was, for ferry_s2s_connect_attempts_total. */
function attemptResult(err: unknown, directTls: boolean): ConnectResult {
  const code = (err as { code?: unknown }).code;
  if (code === "ECONNREFUSED") return "tcp_refused";
  if (err instanceof TimeoutError) return "tcp_timeout";
  return directTls ? "tls_failed" : "tcp_refused";
}

class TimeoutError extends Error {}

export function connectActor(options: ConnectOptions) {
  // One byte counter for every connection, not a closure per connection (issue 9).
  const counters = options.counters;
  const traffic =
    counters === undefined
      ? undefined
      : (direction: "in" | "out", bytes: number, tls: TlsLabel): void => {
          counters.traffic("s2s", direction, tls, bytes);
        };
  return fromPromise<ConnectOutput, ConnectInput>(async ({ input, signal, self }) => {
    const waitLine = `waiting for a free connection slot (outgoing.max_connecting = ${options.slots?.max ?? 0})`;
    const waiting: ConnectState = { dns: [], pending: [], results: [waitLine] };
    if (options.slots !== undefined && options.slots.inUse >= options.slots.max)
      options.progress?.set(self, waiting);
    const release = await options.slots?.acquire(signal);
    try {
      const output = await attempt(input, signal, self);
      // The attempt goes on over the connection (stream, TLS, authentication): the slot is held
      // until the machine says it settled, or the connection closes.
      if (release !== undefined)
        options.slots?.hold(
          output.connectionId,
          release,
          options.transports.get(output.connectionId)?.socket,
        );
      return output;
    } catch (err) {
      release?.();
      throw err;
    }
  });

  async function attempt(input: ConnectInput, signal: AbortSignal, self: object): Promise<ConnectOutput> {
    const cached = options.negativeDns?.get(input.remote);
    const resolved = cached ?? (await resolveTargets(input.remote, { ...options.resolve, signal }));
    if (cached === undefined) options.negativeDns?.remember(input.remote, resolved);
    const counters = options.counters;
    const dns =
      cached === undefined
        ? dnsLines(resolved)
        : dnsLines(resolved).concat("(remembered: outgoing.dns.negative_ttl)");
    if (resolved.targets.length === 0) {
      counters?.connectAttempt(resolved.failureKind === "dns-error" ? "dns_timeout" : "dns_nxdomain");
      throw new ConnectFailure(
        "remote-server-not-found",
        resolved.failure ?? `DNS: no address for ${input.remote}`,
        resolved.notes,
        dns,
      );
    }
    const attempts: string[] = [];
    const progress: ConnectState = { dns, pending: resolved.targets.map(where), results: attempts };
    options.progress?.set(self, progress);
    for (const target of resolved.targets) {
      const at = ownedString(where(target));
      progress.pending.shift();
      try {
        const socket = await open(
          target,
          input.remote,
          options.connectionTimeoutMs,
          signal,
          () => options.clientTls?.(input.local) ?? {},
        );
        attempts.push(
          ownedString(`${at}: connected${target.directTls ? " (direct TLS)" : ""} (${target.via})`),
        );
        const connectionId = options.newId();
        const transport = new XmppTransport({
          id: connectionId,
          socket,
          defaultNs: NS.SERVER,
          maxStanzaSize: options.maxStanzaSize,
          log: options.log.child("XMPPO", `out:${input.local}:${input.remote}`),
          secure: target.directTls,
          ...(options.clientTls === undefined ? {} : { clientTls: options.clientTls }),
          ...(traffic === undefined ? {} : { traffic }),
          ...(options.shaper === undefined ? {} : { shaper: options.shaper() }),
        });
        options.transports.set(connectionId, transport);
        counters?.connectAttempt("ok");
        const check = options.checkCertificate;
        const certificate =
          target.directTls && check !== undefined
            ? transport.verdict(target.tlsName ?? input.remote, check)
            : undefined;
        return {
          connectionId,
          peer: at,
          attempts: attempts.slice(), // of its exact size: the context keeps it
          dns,
          directTls: target.directTls,
          ...(target.tlsName === undefined ? {} : { tlsName: target.tlsName }),
          ...(certificate === undefined ? {} : { certificate }),
        };
      } catch (err) {
        if (signal.aborted) throw err;
        counters?.connectAttempt(attemptResult(err, target.directTls));
        attempts.push(
          ownedString(`${at}: ${err instanceof Error ? err.message : String(err)} (${target.via})`),
        );
      }
    }
    throw new ConnectFailure(
      "remote-server-timeout",
      `could not connect to ${input.remote}: ${attempts.join("; ")}`,
      attempts,
      dns,
    );
  }
}
