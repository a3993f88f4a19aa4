/**
 * POST /api/xmpp-s2s/diagnose and `ferry probe`: the whole picture of federation with a domain.
 * DNS (SRV records and addresses, diagnoseDns.ts); every address, each IP family on its own, with
 * its stream features, TLS and certificate; which authentication works (SASL EXTERNAL, dialback)
 * on the first address that answered, as Ferry would pick it; a ping; and the problems found, each
 * a sentence. `ok` is true only when federation would work.
 */
import { refusal } from "./addressGuard.js";
import { tlsReport } from "./certificateReport.js";
import { lookUpDomain, type DiagTarget, type DnsReport } from "./diagnoseDns.js";
import { addressFindings, type AddressReport } from "./diagnoseFindings.js";
import { AddressRefused, ProbeFailure, since } from "./failure.js";
import { featureNames } from "./featureNames.js";
import { Findings, type Finding } from "./findings.js";
import type { ProbeEnv } from "./probeEnv.js";
import { ProbeSession } from "./probeSession.js";
import {
  authFindings,
  checkAuth,
  notTried,
  sessionOptions,
  type AuthReport,
  type PingReport,
} from "./diagnoseAuth.js";
import { hostPort } from "./resolveHost.js";

export interface DiagnoseOptions {
  domain: string;
  /** The domain we authenticate as. */
  fromDomain: string;
  /** A server without TLS is a problem (default: unless `outgoing.tls.mode` is "starttls"). */
  requireTls?: boolean | undefined;
  /** Budget of each stream, in ms. */
  timeout: number;
}

export type { AuthReport, PingReport } from "./diagnoseAuth.js";

export interface DiagnoseReport {
  ok: boolean;
  domain: string;
  fromDomain: string;
  dns: DnsReport;
  addresses: AddressReport[];
  auth: { saslExternal: AuthReport; dialback: AuthReport };
  ping: PingReport;
  problems: Finding[];
  warnings: Finding[];
  timings: { dns: number; total: number };
}

/** Addresses probed at once. */
const PARALLEL = 4;

export async function diagnose(options: DiagnoseOptions, env: ProbeEnv): Promise<DiagnoseReport> {
  const started = performance.now();
  const { domain, fromDomain } = options;
  const findings = new Findings();
  const { dns, targets } = await lookUpDomain(domain, env.resolve, options.timeout, findings);
  const dnsMs = since(started);
  const refusals = targets.map((t) => refusal(t.ip, env.allowPrivate));
  if (targets.length > 0 && refusals.every((r) => r !== undefined)) {
    throw new AddressRefused(`${domain}: ${refusals[0] ?? ""}`);
  }
  const addresses = await mapLimited(targets, PARALLEL, (target, i) => {
    const skipped = refusals[i];
    return skipped === undefined
      ? probeAddress(target, options, env)
      : Promise.resolve(skippedReport(target, skipped));
  });

  const policy = env.trust.requireFor(domain);
  const requireTls = options.requireTls ?? (env.tlsMode !== "starttls" || policy === "required");
  for (const report of addresses) addressFindings(report, domain, requireTls, findings);
  const probed = addresses.filter((a) => a.skipped === undefined);
  if (probed.length > 0 && !probed.some((a) => a.answered)) {
    findings.problem(
      "no_address_answered",
      `no address of ${domain} answered: ${probed.map((a) => `${hostPort(a.ip, a.port)}: ${a.error ?? "no answer"}`).join("; ")}`,
    );
  }

  // Authentication and ping on the address Ferry would use: the first that answered cleanly.
  const bestIndex = addresses.findIndex((a) => a.answered && a.code === undefined);
  const best = addresses[bestIndex];
  const bestTarget = targets[bestIndex];
  const { auth, ping } =
    best === undefined || bestTarget === undefined
      ? {
          auth: notTried(domain),
          ping: { ok: false as const, skipped: `no address of ${domain} completed a stream` },
        }
      : await checkAuth(best, bestTarget, options, env);
  authFindings(auth, ping, options, findings);

  return {
    ok: findings.problems.length === 0 && addresses.some((a) => a.answered),
    domain,
    fromDomain,
    dns,
    addresses,
    auth,
    ping,
    problems: findings.problems,
    warnings: findings.warnings,
    timings: { dns: dnsMs, total: since(started) },
  };
}

/** One address: connect, stream header and features, STARTTLS when offered, the certificate. */
async function probeAddress(
  target: DiagTarget,
  options: DiagnoseOptions,
  env: ProbeEnv,
): Promise<AddressReport> {
  const settings = sessionOptions(target, options, env);
  const base = {
    ip: target.ip,
    family: target.family,
    port: target.port,
    directTls: target.directTls,
    via: target.via,
  };
  let session: ProbeSession | undefined;
  const timings = {};
  try {
    session = await ProbeSession.connect(settings, timings);
    await session.openStream();
    if (session.startTlsOffered) await session.startTls();
    return { ...base, ...facts(session, target, options, env), rtt: since(settings.startedAt), timings };
  } catch (err) {
    if (!(err instanceof ProbeFailure)) throw err;
    return {
      ...base,
      ...(session === undefined ? { answered: false } : facts(session, target, options, env)),
      error: err.message,
      code: err.code,
      phase: err.phase,
      timings,
    };
  } finally {
    session?.close();
  }
}

function facts(
  session: ProbeSession,
  target: DiagTarget,
  options: DiagnoseOptions,
  env: ProbeEnv,
): Omit<AddressReport, "ip" | "family" | "port" | "directTls" | "via" | "timings"> {
  // The domain first; then the names a certificate is often (wrongly) issued for instead.
  const names = [...new Set([options.domain, target.tlsName, target.host].filter((n) => n !== undefined))];
  const tls = session.tls;
  return {
    answered: session.answered,
    ...(session.streamId === undefined ? {} : { streamId: session.streamId }),
    ...(session.version === undefined ? {} : { version: session.version }),
    ...(session.answered ? { features: featureNames(session.features) } : {}),
    ...(session.featuresBeforeTls === undefined
      ? {}
      : { featuresBeforeTls: featureNames(session.featuresBeforeTls) }),
    ...(tls === undefined ? {} : { tls: tlsReport(tls, names, env.trust.outgoing) }),
  };
}

function skippedReport(target: DiagTarget, why: string): AddressReport {
  const { ip, family, port, directTls, via } = target;
  return { ip, family, port, directTls, via, answered: false, skipped: why, timings: {} };
}

/** Runs `work` over `items`, at most `limit` at a time, keeping the order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      const item = items[index];
      if (item !== undefined) results[index] = await work(item, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
