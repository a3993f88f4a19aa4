/**
 * The connection a probe stream starts with: TCP, or TCP then TLS for a direct TLS target
 * (XEP-0368: SNI is the remote domain, ALPN "xmpp-server"), within the probe's budget, with the time
 * each took and a precise failure: tcp_refused, tcp_timeout, tcp_unreachable, tls_failed.
 */
import net from "node:net";
import tls from "node:tls";
import { ProbeFailure, since, type Timings } from "./failure.js";
import type { SessionOptions } from "./probeSession.js";
import { hostPort } from "./resolveHost.js";

/** SNI takes host names only (RFC 6066 §3). */
export const sniName = (name: string): string | undefined => (net.isIP(name) === 0 ? name : undefined);

function connectFailure(err: unknown, where: string, connected: boolean): ProbeFailure {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === "ECONNREFUSED")
    return new ProbeFailure("tcp_refused", "tcp", `${where} refused the connection`);
  if (code === "ETIMEDOUT") return new ProbeFailure("tcp_timeout", "tcp", `no TCP connection to ${where}`);
  if (!connected) return new ProbeFailure("tcp_unreachable", "tcp", `cannot connect to ${where}: ${message}`);
  return new ProbeFailure("tls_failed", "tls", `TLS handshake with ${where} failed: ${message}`);
}

/** TCP, or TCP then TLS for a direct TLS target; records `tcp` (and `tls`) in `timings`. */
export function openSocket(options: SessionOptions, timings: Timings): Promise<net.Socket> {
  const { target, to } = options;
  const where = hostPort(target.ip, target.port);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let connectedAt: number | undefined;
    const servername = sniName(to);
    const socket: net.Socket = target.directTls
      ? tls.connect({
          ...options.env.trust.certificates.clientOptions(options.from),
          host: target.ip,
          port: target.port,
          ...(servername === undefined ? {} : { servername }),
          ALPNProtocols: ["xmpp-server"],
          // Judged afterwards by src/tls (RFC 6125), which says precisely what is wrong.
          rejectUnauthorized: false,
        })
      : net.connect({ host: target.ip, port: target.port, noDelay: true });
    const fail = (failure: ProbeFailure): void => {
      cleanup();
      socket.destroy();
      reject(failure);
    };
    const timer = setTimeout(
      () => {
        fail(
          connectedAt === undefined
            ? new ProbeFailure(
                "tcp_timeout",
                "tcp",
                `no TCP connection to ${where} within ${options.timeoutMs} ms`,
              )
            : new ProbeFailure(
                "timeout",
                "tls",
                `no TLS handshake with ${where} within ${options.timeoutMs} ms`,
              ),
        );
      },
      Math.max(1, options.startedAt + options.timeoutMs - performance.now()),
    );
    const onError = (err: Error): void => {
      fail(connectFailure(err, where, connectedAt !== undefined));
    };
    const onConnect = (): void => {
      connectedAt = performance.now();
      timings.tcp = since(start);
    };
    const onReady = (): void => {
      cleanup();
      if (target.directTls && connectedAt !== undefined) timings.tls = since(connectedAt);
      resolve(socket);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off("error", onError);
      socket.off("connect", onConnect);
    };
    socket.once("error", onError);
    socket.once("connect", onConnect);
    socket.once(target.directTls ? "secureConnect" : "connect", onReady);
  });
}
