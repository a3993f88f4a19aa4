/**
 * The addresses of the `host` a connect or ping names: an IP literal as is, else its A and AAAA
 * records in `outgoing.ip_versions` order, asked from `outgoing.dns.servers` (or the system's).
 * No SRV: the request names the host and port to connect to; `diagnose` follows SRV records.
 */
import { isIP } from "node:net";
import { ask, createDnsClient, type Answer } from "../dns/query.js";
import type { ResolveOptions } from "../dns/resolve.js";
import { ProbeFailure } from "./failure.js";

export interface Address {
  ip: string;
  family: 4 | 6;
}

/** "192.0.2.1" or "2001:db8::1" (also written "[2001:db8::1]") as an address, else undefined. */
export function ipLiteral(host: string): Address | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const version = isIP(bare);
  return version === 0 ? undefined : { ip: bare, family: version === 4 ? 4 : 6 };
}

/** "ip:port", IPv6 in brackets. */
export function hostPort(ip: string, port: number): string {
  return `${ip.includes(":") ? `[${ip}]` : ip}:${port}`;
}

export interface HostAddresses {
  addresses: Address[];
  /** Every family answered NXDOMAIN. */
  nxdomain: boolean;
  /** DNS failures (timeouts, SERVFAIL), one per question. */
  errors: string[];
}

/** A/AAAA of `host` in `ipVersions` order; never throws for DNS answers. */
export async function lookUpAddresses(
  host: string,
  resolve: ResolveOptions,
  timeoutMs: number,
): Promise<HostAddresses> {
  const literal = ipLiteral(host);
  if (literal !== undefined) return { addresses: [literal], nxdomain: false, errors: [] };
  const client = createDnsClient(timeoutMs, resolve.servers);
  try {
    const limits = { timeoutMs, retries: resolve.retries };
    const answers = await Promise.all(
      resolve.ipVersions.map(async (v) => {
        const answer: Answer<string[]> = await ask(client, limits, () =>
          v === 4 ? client.resolve4(host) : client.resolve6(host),
        );
        return { family: v, answer };
      }),
    );
    const result: HostAddresses = { addresses: [], nxdomain: answers.length > 0, errors: [] };
    for (const { family, answer } of answers) {
      if (answer.kind !== "nxdomain") result.nxdomain = false;
      if (answer.kind === "records") result.addresses.push(...answer.value.map((ip) => ({ ip, family })));
      if (answer.kind === "error")
        result.errors.push(`${answer.problem} (${family === 4 ? "A" : "AAAA"} ${host})`);
    }
    return result;
  } finally {
    client.cancel();
  }
}

/** As lookUpAddresses, but no address at all is a failure (dns_nxdomain or dns_error). */
export async function resolveHost(
  host: string,
  resolve: ResolveOptions,
  timeoutMs: number,
): Promise<Address[]> {
  const found = await lookUpAddresses(host, resolve, Math.min(timeoutMs, resolve.timeoutMs));
  if (found.addresses.length > 0) return found.addresses;
  if (found.errors.length > 0) throw new ProbeFailure("dns_error", "dns", `DNS: ${found.errors.join("; ")}`);
  const types = resolve.ipVersions.map((v) => (v === 4 ? "A" : "AAAA")).join("/");
  throw new ProbeFailure(
    "dns_nxdomain",
    "dns",
    found.nxdomain ? `DNS: ${host} does not exist (NXDOMAIN)` : `DNS: ${host} has no ${types} records`,
  );
}
