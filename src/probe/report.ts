/** A diagnosis as `ferry probe` prints it: the verdict first, then what was seen, then why. */
import type { AuthReport, DiagnoseReport } from "./diagnose.js";
import type { AddressReport } from "./diagnoseFindings.js";
import type { SrvReport } from "./diagnoseDns.js";
import { hostPort } from "./resolveHost.js";

const AUTH_WORDS: Record<AuthReport["status"], string> = {
  works: "works",
  refused: "refused",
  unverifiable: "could not be checked",
  failed: "failed",
  "not-offered": "not offered",
  "no-tls": "not possible without TLS",
  "no-certificate": "not possible without a certificate",
  "not-tried": "not tried",
};

export function formatReport(report: DiagnoseReport): string {
  const { domain, fromDomain } = report;
  const lines: string[] = [
    `Federation with ${domain} (as ${fromDomain}): ${report.ok ? "would work" : "would NOT work"}`,
    "",
    "DNS",
    ...report.dns.srv.map(srvLine),
  ];
  const fallback = report.dns.fallback;
  if (fallback !== undefined) {
    const found = fallback.addresses.map((a) => a.ip).join(", ");
    lines.push(
      `  ${fallback.host} (no SRV records, port ${fallback.port}): ${found === "" ? fallback.status : found}`,
    );
  }
  for (const o of report.dns.override ?? []) {
    lines.push(
      `  outgoing.address sends it to ${hostPort(o.ip, o.port)}${o.tlsName === undefined ? "" : ` (certificate name ${o.tlsName})`}`,
    );
  }
  lines.push("", "Addresses");
  if (report.addresses.length === 0) lines.push("  none");
  for (const address of report.addresses) lines.push(...addressLines(address, domain));

  const { saslExternal, dialback } = report.auth;
  lines.push(
    "",
    "Authentication",
    `  SASL EXTERNAL: ${AUTH_WORDS[saslExternal.status]} (${saslExternal.detail})`,
    `  dialback: ${AUTH_WORDS[dialback.status]} (${dialback.detail})`,
    "",
  );
  const ping = report.ping;
  if (ping.ok)
    lines.push(`Ping: answered in ${ping.rtt} ms (${ping.reply}, over ${ping.auth}, ${ping.address})`);
  else if ("skipped" in ping) lines.push(`Ping: not sent: ${ping.skipped}`);
  else lines.push(`Ping: failed: ${ping.error}`);

  if (report.problems.length > 0) {
    lines.push("", "Problems");
    for (const p of report.problems) lines.push(`  - ${p.text} [${p.code}]`);
  }
  if (report.warnings.length > 0) {
    lines.push("", "Warnings");
    for (const w of report.warnings) lines.push(`  - ${w.text} [${w.code}]`);
  }
  lines.push("", `Took ${report.timings.total} ms (DNS ${report.timings.dns} ms).`);
  return `${lines.join("\n")}\n`;
}

function srvLine(srv: SrvReport): string {
  if (srv.status !== "records") {
    const words = {
      none: "no records",
      "no-service": "'.' (no service)",
      error: `DNS error: ${srv.error ?? ""}`,
    };
    return `  ${srv.name}: ${words[srv.status]}`;
  }
  const targets = srv.records.map((r) => {
    const addresses =
      r.addresses.length > 0 ? r.addresses.map((a) => a.ip).join(", ") : (r.error ?? "no address");
    return `${r.target}:${r.port} (priority ${r.priority}, weight ${r.weight}) -> ${addresses}`;
  });
  return `  ${srv.name}: ${targets.join("; ")}`;
}

function addressLines(a: AddressReport, domain: string): string[] {
  const head = `  ${hostPort(a.ip, a.port)} (IPv${a.family}${a.directTls ? ", direct TLS" : ""}, ${a.via})`;
  if (a.skipped !== undefined) return [`${head}: not probed: ${a.skipped}`];
  if (!a.answered) return [`${head}: no answer: ${a.error ?? "no XMPP stream"}`];
  const lines = [`${head}: answered${a.rtt === undefined ? "" : ` in ${a.rtt} ms`}`];
  lines.push(`      stream id ${a.streamId ?? "(none)"}, XMPP ${a.version ?? "pre-1.0"}`);
  if (a.features !== undefined)
    lines.push(`      features: ${a.features.length === 0 ? "none" : a.features.join(", ")}`);
  const tls = a.tls;
  if (tls === undefined) {
    lines.push("      TLS: none");
  } else {
    const cert = tls.certificate;
    lines.push(
      `      TLS: ${tls.version} ${tls.cipher} (${tls.mode === "direct" ? "direct TLS" : "STARTTLS"})`,
    );
    const until =
      cert.notAfter === undefined
        ? ""
        : `; valid until ${cert.notAfter.slice(0, 10)} (${daysText(cert.daysLeft)})`;
    lines.push(
      `      certificate: ${cert.names.length === 0 ? "no names" : cert.names.join(", ")}${until}; chain: ${cert.chain}`,
    );
    for (const v of cert.verdicts) {
      const verdict = v.ok ? "valid" : `NOT valid (${v.reason ?? "?"})`;
      lines.push(
        `        ${v.name}: ${v.covered ? "covered" : "not covered"}, ${verdict}${v.name === domain ? "" : " (informative)"}`,
      );
    }
  }
  if (a.error !== undefined) lines.push(`      failed: ${a.error}`);
  return lines;
}

function daysText(days: number | undefined): string {
  if (days === undefined) return "?";
  if (days < 0) return `expired ${-days} day${days === -1 ? "" : "s"} ago`;
  return `${days} day${days === 1 ? "" : "s"} left`;
}
