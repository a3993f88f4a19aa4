/**
 * The DNS half of a diagnosis: `_xmpp-server` and `_xmpps-server` SRV records (RFC 6120 §3.2,
 * XEP-0368), the addresses of every target, or without SRV the domain's own A/AAAA records, and
 * what is wrong with them in plain words. Also the addresses Ferry itself would use when an
 * `outgoing.address` entry overrides DNS for the domain.
 */
import { ask, createDnsClient, type DnsClient, type QueryLimits } from "../dns/query.js";
import type { ResolveOptions } from "../dns/resolve.js";
import type { Findings } from "./findings.js";
import { hostPort, ipLiteral, lookUpAddresses, type Address } from "./resolveHost.js";

export type SrvService = "_xmpp-server" | "_xmpps-server";

export interface SrvTargetReport {
  target: string;
  port: number;
  priority: number;
  weight: number;
  addresses: Address[];
  /** Why it has no address, when it has none. */
  error?: string;
}

export interface SrvReport {
  service: SrvService;
  /** The name asked, e.g. `_xmpp-server._tcp.example.org`. */
  name: string;
  /** records; none (NXDOMAIN or no SRV); no-service (a '.' target); error (DNS failed). */
  status: "records" | "none" | "no-service" | "error";
  records: SrvTargetReport[];
  error?: string;
}

export interface DnsReport {
  srv: SrvReport[];
  /** Without SRV records: the domain's own A/AAAA records, on the default port. */
  fallback?: {
    host: string;
    port: number;
    addresses: Address[];
    status: "records" | "nxdomain" | "none" | "error";
    error?: string;
  };
  /** `outgoing.address` entries for the domain: Ferry connects there instead of where DNS points. */
  override?: { ip: string; port: number; tlsName?: string }[];
}

/** One address to probe. */
export interface DiagTarget extends Address {
  port: number;
  directTls: boolean;
  /** The name it was found under (an SRV target, or the domain itself). */
  host: string;
  /** e.g. "_xmpp-server → xmpp.example.org:5269", "A example.org", "outgoing.address". */
  via: string;
  /** The name its certificate must match instead of the domain (`outgoing.address` tls_name). */
  tlsName?: string;
}

/** Ports of the client service (RFC 6120 §14.7, XEP-0368 direct TLS for clients). */
const CLIENT_PORTS = new Set([5222, 5223]);

export async function lookUpDomain(
  domain: string,
  resolve: ResolveOptions,
  timeoutMs: number,
  findings: Findings,
): Promise<{ dns: DnsReport; targets: DiagTarget[] }> {
  const dnsTimeout = Math.min(timeoutMs, resolve.timeoutMs);
  const client = createDnsClient(dnsTimeout, resolve.servers);
  let srv: SrvReport[];
  try {
    const ask = (service: SrvService): Promise<SrvReport> =>
      askSrv(service, domain, client, { timeoutMs: dnsTimeout, retries: resolve.retries }, resolve);
    srv = await Promise.all([ask("_xmpps-server"), ask("_xmpp-server")]);
  } finally {
    client.cancel();
  }
  const dns: DnsReport = { srv };
  const targets = srvTargets(srv, findings);
  const plain = srv.find((s) => s.service === "_xmpp-server");
  const secure = srv.find((s) => s.service === "_xmpps-server");
  if (plain?.status === "no-service" && secure?.status !== "records") {
    findings.problem(
      "no_service",
      `the SRV record ${plain.name} says ${domain} offers no XMPP server service ('.' target)`,
    );
  } else if (srv.every((s) => s.status === "none")) {
    // RFC 6120 §3.2.2: without SRV records, the domain's own addresses on the default port.
    dns.fallback = await fallback(domain, resolve, dnsTimeout, findings);
    targets.push(
      ...dns.fallback.addresses.map((a) => ({
        ...a,
        port: resolve.port,
        directTls: resolve.directTls,
        host: domain,
        via: `${a.family === 4 ? "A" : "AAAA"} ${domain} (no SRV records)`,
      })),
    );
  } else if (targets.length === 0 && findings.problems.length === 0) {
    // SRV failures and nothing to fall back on: resolve.ts does not guess A/AAAA then either.
    const failed = srv.filter((s) => s.status === "error").map((s) => s.name);
    findings.problem(
      failed.length > 0 ? "dns_error" : "no_address",
      failed.length > 0
        ? `DNS could not answer ${failed.join(" and ")}, so there is no address to connect to`
        : `DNS gave no address to connect to for ${domain}`,
    );
  }
  const overrides = resolve.overrides.filter((o) => o.host.toLowerCase() === domain);
  if (overrides.length === 0) return { dns, targets };
  dns.override = overrides.map((o) => ({
    ip: o.ip_address,
    port: o.port ?? resolve.port,
    ...(o.tls_name === undefined ? {} : { tlsName: o.tls_name }),
  }));
  findings.warning(
    "outgoing_address_override",
    `Ferry's outgoing.address sends ${domain} to ${dns.override.map((o) => hostPort(o.ip, o.port)).join(", ")} instead of where DNS points; other servers use DNS`,
  );
  return {
    dns,
    targets: dns.override.map((o) => ({
      ip: o.ip,
      family: ipLiteral(o.ip)?.family ?? 4,
      port: o.port,
      directTls: resolve.directTls,
      host: domain,
      via: "outgoing.address",
      ...(o.tlsName === undefined ? {} : { tlsName: o.tlsName }),
    })),
  };
}

/** One SRV question and the addresses of its targets, best first (priority, then weight). */
async function askSrv(
  service: SrvService,
  domain: string,
  client: DnsClient,
  limits: QueryLimits,
  resolve: ResolveOptions,
): Promise<SrvReport> {
  const name = `${service}._tcp.${domain}`;
  const answer = await ask(client, limits, () => client.resolveSrv(name));
  if (answer.kind === "error") return { service, name, status: "error", records: [], error: answer.problem };
  if (answer.kind !== "records") return { service, name, status: "none", records: [] };
  // RFC 2782: a lone "." target means "decidedly not available here" (Node gives "").
  const real = answer.value.filter((r) => r.name !== "" && r.name !== ".");
  if (real.length === 0) return { service, name, status: "no-service", records: [] };
  const ordered = [...real].sort((a, b) => a.priority - b.priority || b.weight - a.weight);
  const records = await Promise.all(
    ordered.map(async ({ name: target, port, priority, weight }): Promise<SrvTargetReport> => {
      const found = await lookUpAddresses(target, resolve, limits.timeoutMs);
      const report = { target, port, priority, weight, addresses: found.addresses };
      if (found.addresses.length > 0) return report;
      const error =
        found.errors.length > 0 ? found.errors.join("; ") : found.nxdomain ? "NXDOMAIN" : "no A/AAAA records";
      return { ...report, error };
    }),
  );
  return { service, name, status: "records", records };
}

/** The addresses SRV records lead to, and what is wrong with the records. */
function srvTargets(srv: readonly SrvReport[], findings: Findings): DiagTarget[] {
  const targets: DiagTarget[] = [];
  for (const report of srv) {
    if (report.status === "error") {
      findings.warning("dns_error", `DNS could not answer for ${report.name}: ${report.error ?? "error"}`);
    }
    const directTls = report.service === "_xmpps-server";
    for (const r of report.records) {
      if (CLIENT_PORTS.has(r.port)) {
        findings.problem(
          "srv_client_port",
          `SRV ${report.name} points at port ${r.port}, the client port: servers connect to server ports (5269${directTls ? ", or 5270 for direct TLS" : ""})`,
        );
      }
      if (r.error !== undefined) {
        findings.warning(
          "srv_target_unresolvable",
          `the SRV target ${r.target} of ${report.name} has no address (${r.error})`,
        );
      }
      for (const a of r.addresses) {
        targets.push({
          ...a,
          port: r.port,
          directTls,
          host: r.target,
          via: `${report.service} → ${r.target}:${r.port}`,
        });
      }
    }
  }
  if (targets.length === 0 && srv.some((s) => s.status === "records")) {
    findings.problem("srv_target_unresolvable", "none of the SRV targets has an address");
  }
  return targets;
}

/** Without SRV records: the domain's own A/AAAA records, and why there are none. */
async function fallback(
  domain: string,
  resolve: ResolveOptions,
  timeoutMs: number,
  findings: Findings,
): Promise<NonNullable<DnsReport["fallback"]>> {
  const found = await lookUpAddresses(domain, resolve, timeoutMs);
  const error = found.errors.join("; ");
  const base = { host: domain, port: resolve.port, addresses: found.addresses };
  if (found.addresses.length > 0) return { ...base, status: "records" };
  if (error !== "") {
    findings.problem("dns_error", `DNS could not answer for ${domain}: ${error}`);
    return { ...base, status: "error", error };
  }
  if (found.nxdomain) {
    findings.problem("dns_nxdomain", `${domain} does not exist in DNS (NXDOMAIN)`);
    return { ...base, status: "nxdomain" };
  }
  findings.problem(
    "dns_no_records",
    `${domain} has no SRV records (_xmpp-server, _xmpps-server) and no A/AAAA records`,
  );
  return { ...base, status: "none" };
}
