/**
 * POST /api/xmpp-s2s/connect (seed 002): open a stream to `host:port` as Ferry's outgoing side
 * would, read the server's stream header (its real id) and features, upgrade with STARTTLS when
 * asked and offered (or speak TLS from the first byte), and report the protected stream's features.
 * `establish` is shared with ping, which goes on to authenticate.
 */
import { tlsReport, type CertificateReport } from "./certificateReport.js";
import { AddressRefused, ProbeFailure, since, type Phase, type Timings } from "./failure.js";
import { featureNames } from "./featureNames.js";
import type { ProbeEnv } from "./probeEnv.js";
import { ProbeSession } from "./probeSession.js";
import { hostPort, resolveHost } from "./resolveHost.js";
import { refusal } from "./addressGuard.js";
import type { StreamRequest } from "./validate.js";

export interface TlsSummary {
  mode: "starttls" | "direct";
  version: string;
  cipher: string;
  certificate: CertificateReport;
}

/** The response body of connect (and the common part of ping's). */
export interface StreamProbeResponse {
  success: boolean;
  host: string;
  port: number;
  /** The address that answered ("ip:port"). */
  address?: string;
  /** The id of the server's stream header, as the server sent it. */
  streamId?: string;
  /** Seed 002's names; after STARTTLS, those of the protected stream. */
  features?: string[];
  /** Before STARTTLS, when it was done. */
  featuresBeforeTls?: string[];
  /** Milliseconds: connect, the whole probe; ping, the ping's round trip. */
  rtt?: number;
  tls?: TlsSummary;
  timings: Timings;
  /** Failures only: a sentence, a stable code, and the phase it happened in. */
  error?: string;
  code?: string;
  phase?: Phase;
  /** Addresses tried before the one used (or all of them, when none answered). */
  attempts?: string[];
}

export interface Established {
  session: ProbeSession;
  timings: Timings;
  attempts: string[];
}

/**
 * DNS, then each address in turn until one accepts TCP (as Ferry's connect step does), the stream
 * header and features, and STARTTLS when asked and offered. Throws ProbeFailure, or AddressRefused
 * before any connection when an address is private and `probe_private` is off; on a failure after
 * connecting, the session is attached to the error so the caller can report what was learnt.
 */
export async function establish(
  request: StreamRequest,
  from: string,
  env: ProbeEnv,
  startedAt: number,
  timings: Timings,
): Promise<Established> {
  const dnsStart = performance.now();
  const addresses = await resolveHost(request.host, env.resolve, request.timeout);
  timings.dns = since(dnsStart);
  for (const { ip } of addresses) {
    const why = refusal(ip, env.allowPrivate);
    if (why !== undefined) throw new AddressRefused(`${request.host}: ${why}`);
  }
  const attempts: string[] = [];
  let session: ProbeSession | undefined;
  for (const [index, { ip }] of addresses.entries()) {
    try {
      session = await ProbeSession.connect(
        {
          target: { ip, port: request.port, directTls: request.directTLS },
          from,
          to: request.toDomain,
          timeoutMs: request.timeout,
          startedAt,
          env,
        },
        timings,
      );
      break;
    } catch (err) {
      // Only a failed connection moves on to the next address; a TLS or later failure is the answer.
      if (!(err instanceof ProbeFailure) || err.phase !== "tcp" || index === addresses.length - 1) {
        if (err instanceof ProbeFailure && attempts.length > 0) {
          throw new ProbeFailure(err.code, err.phase, `${err.message} (also tried: ${attempts.join("; ")})`);
        }
        throw err;
      }
      attempts.push(`${hostPort(ip, request.port)}: ${err.message}`);
    }
  }
  if (session === undefined) throw new ProbeFailure("tcp_unreachable", "tcp", `${request.host}: no address`);
  try {
    await session.openStream();
    if (request.useTLS && !request.directTLS && session.startTlsOffered) await session.startTls();
    if (request.verifyCertificate) verifyCertificate(session, request.toDomain, env);
  } catch (err) {
    session.close();
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { session, attempts });
  }
  return { session, timings, attempts };
}

/** `verifyCertificate: true`: the stream must be TLS with a certificate Ferry accepts for `domain`. */
function verifyCertificate(session: ProbeSession, domain: string, env: ProbeEnv): void {
  if (session.tls === undefined) {
    throw new ProbeFailure("cert_invalid", "tls", `no TLS on this stream, so no certificate for ${domain}`);
  }
  const verdict = env.trust.outgoing(session.tls.chain, domain);
  if (!verdict.ok) {
    throw new ProbeFailure(
      "cert_invalid",
      "tls",
      `the certificate is not valid for ${domain}: ${verdict.reason} (${verdict.detail})`,
    );
  }
}

/** What a session learnt, in the response's terms. */
export function sessionFacts(
  session: ProbeSession,
  domain: string,
  env: ProbeEnv,
): Partial<StreamProbeResponse> {
  const tls = session.tls;
  return {
    address: hostPort(session.target.ip, session.target.port),
    ...(session.streamId === undefined ? {} : { streamId: session.streamId }),
    features: featureNames(session.features),
    ...(session.featuresBeforeTls === undefined
      ? {}
      : { featuresBeforeTls: featureNames(session.featuresBeforeTls) }),
    ...(tls === undefined ? {} : { tls: tlsReport(tls, [domain], env.trust.outgoing) }),
  };
}

/** The failure response: the sentence, code and phase, and whatever was learnt before it. */
export function failureResponse(
  request: StreamRequest,
  err: ProbeFailure,
  timings: Timings,
  env: ProbeEnv,
  startedAt: number,
): StreamProbeResponse {
  const { session, attempts } = err as ProbeFailure & { session?: ProbeSession; attempts?: string[] };
  return {
    success: false,
    host: request.host,
    port: request.port,
    ...(session === undefined ? {} : sessionFacts(session, request.toDomain, env)),
    ...(attempts === undefined || attempts.length === 0 ? {} : { attempts }),
    timings: { ...timings, total: since(startedAt) },
    error: err.message,
    code: err.code,
    phase: err.phase,
  };
}

export async function probeConnect(
  request: StreamRequest,
  from: string,
  env: ProbeEnv,
): Promise<StreamProbeResponse> {
  const startedAt = performance.now();
  const timings: Timings = {};
  try {
    const { session, attempts } = await establish(request, from, env, startedAt, timings);
    session.close();
    const rtt = since(startedAt);
    return {
      success: true,
      host: request.host,
      port: request.port,
      ...sessionFacts(session, request.toDomain, env),
      rtt,
      ...(attempts.length === 0 ? {} : { attempts }),
      timings: { ...timings, total: rtt },
    };
  } catch (err) {
    if (err instanceof ProbeFailure) return failureResponse(request, err, timings, env, startedAt);
    throw err;
  }
}
