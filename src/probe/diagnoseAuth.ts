/**
 * The authentication half of a diagnosis, on the address Ferry would use: SASL EXTERNAL and dialback
 * each on a stream of its own (so both verdicts are known), the ping on the first that works, and
 * the findings: no method at all, a refused dialback key, a ping whose answer never came back.
 */
import { serialize } from "../xml/serialize.js";
import type { DiagTarget } from "./diagnoseDns.js";
import type { AddressReport } from "./diagnoseFindings.js";
import type { DiagnoseOptions, DiagnoseReport } from "./diagnose.js";
import { ProbeFailure } from "./failure.js";
import type { Findings } from "./findings.js";
import type { ProbeEnv } from "./probeEnv.js";
import { ProbeSession, type AuthMethod, type PingOutcome, type SessionOptions } from "./probeSession.js";
import { hostPort } from "./resolveHost.js";

/**
 * works; refused (the remote said no); unverifiable (dialback from the CLI: the remote asks the
 * server of fromDomain, which may not know this secret); failed (timeout, stream error…);
 * not-offered; no-tls / no-certificate (SASL EXTERNAL impossible); not-tried (no address answered).
 */
export interface AuthReport {
  status:
    | "works"
    | "refused"
    | "unverifiable"
    | "failed"
    | "not-offered"
    | "no-tls"
    | "no-certificate"
    | "not-tried";
  detail: string;
  code?: string;
}

export type PingReport =
  | {
      ok: true;
      address: string;
      auth: "sasl-external" | "dialback";
      rtt: number;
      reply: string;
      stanza: string;
    }
  | { ok: false; address: string; error: string; code: string }
  | { ok: false; skipped: string };

/** A stream to `target` for this diagnosis, with a budget of its own. */
export function sessionOptions(target: DiagTarget, options: DiagnoseOptions, env: ProbeEnv): SessionOptions {
  return {
    target: { ip: target.ip, port: target.port, directTls: target.directTls },
    from: options.fromDomain,
    to: options.domain,
    timeoutMs: options.timeout,
    startedAt: performance.now(),
    env,
  };
}

export function notTried(domain: string): DiagnoseReport["auth"] {
  const none: AuthReport = { status: "not-tried", detail: `no address of ${domain} completed a stream` };
  return { saslExternal: none, dialback: none };
}

/** One stream authenticated with `method` only, and the ping when asked. */
async function authSession(
  target: DiagTarget,
  method: AuthMethod,
  withPing: boolean,
  options: DiagnoseOptions,
  env: ProbeEnv,
): Promise<{ failure?: ProbeFailure; ping?: PingOutcome; pingFailure?: ProbeFailure }> {
  let session: ProbeSession | undefined;
  try {
    session = await ProbeSession.connect(sessionOptions(target, options, env));
    await session.openStream();
    if (session.startTlsOffered) await session.startTls();
    await session.authenticate([method]);
  } catch (err) {
    session?.close();
    if (err instanceof ProbeFailure) return { failure: err };
    throw err;
  }
  try {
    return withPing ? { ping: await session.ping() } : {};
  } catch (err) {
    if (err instanceof ProbeFailure) return { pingFailure: err };
    throw err;
  } finally {
    session.close();
  }
}

export async function checkAuth(
  best: AddressReport,
  target: DiagTarget,
  options: DiagnoseOptions,
  env: ProbeEnv,
): Promise<{ auth: DiagnoseReport["auth"]; ping: PingReport }> {
  const { domain, fromDomain } = options;
  const address = hostPort(best.ip, best.port);
  const features = best.features ?? [];
  let ping: PingReport | undefined =
    env.replies === undefined
      ? {
          ok: false,
          skipped: `from the command line the reply would go to the server that serves ${fromDomain}, not to this command`,
        }
      : undefined;
  const pingFrom = (
    method: "sasl-external" | "dialback",
    result: Awaited<ReturnType<typeof authSession>>,
  ): void => {
    if (result.ping !== undefined) {
      const { rtt, reply } = result.ping;
      ping = {
        ok: true,
        address,
        auth: method,
        rtt,
        reply: reply.attrs.type ?? "",
        stanza: serialize(reply),
      };
    } else if (result.pingFailure !== undefined) {
      ping = { ok: false, address, error: result.pingFailure.message, code: result.pingFailure.code };
    }
  };

  let saslExternal: AuthReport;
  if (best.tls === undefined) {
    saslExternal = { status: "no-tls", detail: "SASL EXTERNAL needs TLS, which this address does not offer" };
  } else if (!env.trust.certificates.hasCertificateFor(fromDomain)) {
    saslExternal = {
      status: "no-certificate",
      detail: `Ferry has no certificate for ${fromDomain} ([general] domain_certfile or s2s.outgoing.tls.certfile)`,
    };
  } else if (!features.includes("SASL-EXTERNAL")) {
    saslExternal = {
      status: "not-offered",
      detail: `${domain} does not offer SASL EXTERNAL to ${fromDomain}: it does not accept our certificate for ${fromDomain}`,
    };
  } else {
    const result = await authSession(target, "external", ping === undefined, options, env);
    pingFrom("sasl-external", result);
    saslExternal =
      result.failure === undefined
        ? { status: "works", detail: `${domain} accepts our certificate for ${fromDomain}` }
        : {
            status:
              result.failure.code === "sasl_failed" || result.failure.code === "no_auth_method"
                ? "refused"
                : "failed",
            detail: result.failure.message,
            code: result.failure.code,
          };
  }

  let dialback: AuthReport;
  if (!features.includes("DIALBACK") && best.version?.startsWith("1") === true) {
    dialback = { status: "not-offered", detail: `${domain} does not offer dialback` };
  } else {
    const result = await authSession(target, "dialback", ping === undefined, options, env);
    pingFrom("dialback", result);
    const failure = result.failure;
    if (failure === undefined) {
      dialback = { status: "works", detail: `${domain} verified our dialback key for ${fromDomain}` };
    } else if (
      !env.dialbackVerifiable &&
      (failure.code === "dialback_invalid" || failure.code === "timeout")
    ) {
      dialback = {
        status: "unverifiable",
        detail:
          `${domain} checks a dialback key by asking the server of ${fromDomain}, which confirms only keys it sent ` +
          `itself, so a key sent from the command line is refused; ask the running server instead ` +
          `(POST /api/xmpp-s2s/diagnose). It said: ${failure.message}`,
        code: failure.code,
      };
    } else {
      dialback = {
        status: failure.code === "dialback_invalid" ? "refused" : "failed",
        detail: failure.message,
        code: failure.code,
      };
    }
  }
  return {
    auth: { saslExternal, dialback },
    ping: ping ?? { ok: false, skipped: "no authentication worked, so no ping was sent" },
  };
}

export function authFindings(
  auth: DiagnoseReport["auth"],
  ping: PingReport,
  options: DiagnoseOptions,
  findings: Findings,
): void {
  const { saslExternal, dialback } = auth;
  const { domain, fromDomain } = options;
  if (saslExternal.status === "not-tried") return;
  const works = saslExternal.status === "works" || dialback.status === "works";
  if (dialback.status === "unverifiable") {
    findings.warning(
      "dialback_unverifiable",
      `dialback could not be checked from the command line: ${domain} asks the server of ${fromDomain} to ` +
        `confirm our key, and it confirms only keys it sent itself (use POST /api/xmpp-s2s/diagnose on the server)`,
    );
  }
  if (!works && dialback.status !== "unverifiable") {
    if (dialback.status === "refused") {
      findings.problem(
        "dialback_invalid",
        `${domain} did not accept dialback from ${fromDomain}: it could not confirm our key with the server of ${fromDomain}; check that ${domain} can resolve ${fromDomain} (SRV _xmpp-server._tcp.${fromDomain}) and connect to it`,
      );
    } else if (dialback.status === "failed") {
      findings.problem("dialback_failed", `dialback with ${domain} failed: ${dialback.detail}`);
    } else if (saslExternal.status === "refused") {
      findings.problem(
        "sasl_failed",
        `${domain} refused our certificate for ${fromDomain} and offers no dialback`,
      );
    } else {
      findings.problem(
        "no_auth_method",
        `${domain} offers no authentication Ferry can use: dialback: ${dialback.detail}; SASL EXTERNAL: ${saslExternal.detail}`,
      );
    }
  }
  if (works && (saslExternal.status === "refused" || saslExternal.status === "failed")) {
    findings.warning(
      "sasl_external_refused",
      `SASL EXTERNAL did not work (${saslExternal.detail}); dialback does`,
    );
  }
  if (works && (dialback.status === "refused" || dialback.status === "failed")) {
    findings.warning("dialback_refused", `dialback did not work (${dialback.detail}); SASL EXTERNAL does`);
  }
  if (!ping.ok && "code" in ping) {
    findings.problem(ping.code === "timeout" ? "ping_timeout" : "ping_failed", ping.error);
  }
}
