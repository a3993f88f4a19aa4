/**
 * Where to connect for an outgoing S2S stream to a remote domain: the ordered list of (IP, port,
 * direct TLS?) targets, or a text saying why there is none (it ends up in bounce `<text/>`s).
 *
 * Order: `outgoing.address` overrides (no DNS at all); IP-literal domains; SRV records (RFC 6120
 * §3.2.1, RFC 2782 ordering, XEP-0368 for `_xmpps-server`), each target resolved to A/AAAA in
 * `ip_versions` order; without any SRV record, A/AAAA of the domain itself on `outgoing.port`
 * (RFC 6120 §3.2.2).
 *
 * TLS, as MongooseIM's `mongoose_addr_list` does it:
 * - `directTls` (`outgoing.tls.mode = "tls"`): TLS from the first byte to every target. Only
 *   `_xmpps-server` is asked, since XEP-0368 forbids direct TLS to `_xmpp-server` targets; without
 *   such records the fallback is A/AAAA of the domain on `outgoing.port` (direct TLS there too).
 * - otherwise both `_xmpps-server` (direct TLS) and `_xmpp-server` (plain, then STARTTLS) are asked
 *   (unless `xmppsSrv` is false) and, per XEP-0368 rule 1, mixed into one RFC 2782 ordering, so the
 *   peer's operator decides between direct TLS and STARTTLS by priorities and weights. Direct TLS
 *   is never weaker than STARTTLS, so this holds for `starttls` and `starttls_required` alike.
 *   Each target says whether it is direct TLS; the connection machine must follow it.
 */
import { isIP } from "node:net";
import type { SrvRecord } from "node:dns";
import type { Config } from "../config/schema.js";
import { ask, sharedDnsClient, type Answer, type DnsClient, type QueryLimits } from "./query.js";
import { orderByPriorityAndWeight, type Random } from "./weighted.js";

export interface Target {
  /** An IP address. */
  host: string;
  port: number;
  /** TLS from the first byte (XEP-0368), else plain TCP then STARTTLS as `tls.mode` says. */
  directTls: boolean;
  /** Where it came from, for logs and the introspection tree. */
  via: string;
  /** From an `outgoing.address` override's `tls_name`: the name the certificate must match. */
  tlsName?: string;
}

/**
 * - `invalid-domain`: not an ASCII domain name (IDNA failure upstream);
 * - `no-records`: the DNS says there is nothing (NXDOMAIN, no SRV and no A/AAAA, …);
 * - `no-service`: an SRV '.' target says the domain offers no XMPP server service;
 * - `dns-error`: the DNS servers failed (timeout, refused, SERVFAIL).
 */
export type FailureKind = "invalid-domain" | "no-records" | "no-service" | "dns-error";

export interface ResolvedTargets {
  /** In the order to try them; (host, port) pairs are unique. Empty when `failure` is set. */
  targets: Target[];
  /** What failed, e.g. "DNS: no SRV or A/AAAA records for x.example". */
  failure?: string;
  failureKind?: FailureKind;
  /** Lesser problems worth a log line, e.g. one SRV target that has no address. */
  notes: string[];
}

/** An `s2s.outgoing.address` entry. */
export interface AddressOverride {
  host: string;
  ip_address: string;
  port?: number | undefined;
  tls_name?: string | undefined;
}

export interface ResolveOptions {
  /** `outgoing.port`: for A/AAAA fallback, overrides without a port, and IP literals. */
  port: number;
  /** `outgoing.ip_versions`, in order of preference. */
  ipVersions: readonly (4 | 6)[];
  /** `outgoing.address`. */
  overrides: readonly AddressOverride[];
  /** `outgoing.dns.timeout`, in milliseconds, per try (and per server). */
  timeoutMs: number;
  /** `outgoing.dns.retries`: number of tries per question. */
  retries: number;
  /** `outgoing.dns.servers` ("ip", "ip:port", "[v6]:port"); unset or empty: the system's. */
  servers?: readonly string[] | undefined;
  /** `outgoing.tls.mode = "tls"`. */
  directTls: boolean;
  /** Also ask `_xmpps-server` when not `directTls` (default true; see the module comment). */
  xmppsSrv?: boolean | undefined;
  /** A resolver to use instead of the one shared by these `timeoutMs` and `servers` (tests). */
  resolver?: DnsClient | undefined;
  /** For the RFC 2782 weighted order (tests). */
  random?: Random | undefined;
  /** Abandons the resolution: the promise rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/** The options as `[s2s] outgoing` configures them. */
export function resolveOptionsFromConfig(outgoing: Config["s2s"]["outgoing"]): ResolveOptions {
  const options: ResolveOptions = {
    port: outgoing.port,
    ipVersions: outgoing.ip_versions,
    overrides: outgoing.address,
    timeoutMs: outgoing.dns.timeout * 1000,
    retries: outgoing.dns.retries,
    servers: outgoing.dns.servers,
    directTls: outgoing.tls.mode === "tls",
  };
  // The resolver is made now, at start-up, rather than on the first link's path.
  try {
    sharedDnsClient(options.timeoutMs, options.servers);
  } catch {
    // Unusable servers: each resolution reports them (see resolveTargets).
  }
  return options;
}

export async function resolveTargets(domain: string, options: ResolveOptions): Promise<ResolvedTargets> {
  const overrides = options.overrides.filter((o) => o.host.toLowerCase() === domain.toLowerCase());
  if (overrides.length > 0) {
    return done(
      overrides.map((o) => ({
        host: o.ip_address,
        port: o.port ?? options.port,
        directTls: options.directTls,
        via: `outgoing.address override for ${domain}`,
        ...(o.tls_name !== undefined ? { tlsName: o.tls_name } : {}),
      })),
    );
  }
  const literal = ipLiteral(domain);
  if (literal !== undefined) {
    return done([
      { host: literal, port: options.port, directTls: options.directTls, via: `IP literal ${domain}` },
    ]);
  }
  if (!isAsciiDomain(domain)) {
    return fail("invalid-domain", `DNS: ${JSON.stringify(domain)} is not a valid ASCII (IDNA) domain name`);
  }

  let client: DnsClient;
  try {
    client = options.resolver ?? sharedDnsClient(options.timeoutMs, options.servers);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return fail("dns-error", `DNS: unusable outgoing.dns.servers ${JSON.stringify(options.servers)}: ${why}`);
  }
  // An abort rejects every question still waiting (see `ask`); the shared resolver stays up.
  return new Resolution(domain.toLowerCase().replace(/\.$/, ""), options, client).run();
}

const XMPPS = "_xmpps-server._tcp";
const XMPP = "_xmpp-server._tcp";

interface Candidate extends SrvRecord {
  service: typeof XMPPS | typeof XMPP;
}

/** A host's addresses in `ip_versions` order, or why there are none. */
interface Addresses {
  found: { ip: string; type: "A" | "AAAA" }[];
  /** Failed questions, e.g. "timeout after 2 tries asking 127.0.0.1:53 (A x.example)". */
  errors: string[];
  /** Every question got NXDOMAIN. */
  nxdomain: boolean;
}

class Resolution {
  private readonly limits: QueryLimits;
  private readonly notes: string[] = [];
  private readonly asked = new Map<string, Promise<Addresses>>();

  constructor(
    private readonly domain: string,
    private readonly options: ResolveOptions,
    private readonly client: DnsClient,
  ) {
    this.limits = { timeoutMs: options.timeoutMs, retries: options.retries, signal: options.signal };
  }

  async run(): Promise<ResolvedTargets> {
    const { directTls, xmppsSrv } = this.options;
    const services: Candidate["service"][] = directTls
      ? [XMPPS]
      : xmppsSrv === false
        ? [XMPP]
        : [XMPPS, XMPP];
    const answers = await Promise.all(
      services.map(async (s) => ({
        service: s,
        answer: await ask(this.client, this.limits, () => this.client.resolveSrv(`${s}.${this.domain}`)),
      })),
    );

    const candidates: Candidate[] = [];
    const refused: string[] = [];
    const errors: string[] = [];
    for (const { service, answer } of answers) {
      if (answer.kind === "error") errors.push(`${answer.problem} (SRV ${service}.${this.domain})`);
      if (answer.kind !== "records") continue;
      // RFC 2782: a single "." target means "decidedly not available"; a stray one among others
      // means nothing and is skipped. Node gives the root as "".
      const real = answer.value.filter((r) => r.name !== "" && r.name !== ".");
      if (real.length === 0 && answer.value.length > 0) refused.push(service);
      candidates.push(...real.map((r) => ({ ...r, service })));
    }

    if (candidates.length > 0) {
      this.notes.push(...errors);
      return this.fromSrv(candidates);
    }
    if (refused.length > 0) {
      // XEP-0368: after a '.' the initiating party MUST NOT fall back to A/AAAA.
      this.notes.push(...errors);
      return this.fail("no-service", this.refusalText(refused));
    }
    if (errors.length > 0) {
      // Not knowing whether SRV records exist, A/AAAA would be a guess a DNS attacker could force.
      return this.fail("dns-error", `DNS: ${errors.join("; ")}`);
    }
    return this.fallback();
  }

  private async fromSrv(candidates: Candidate[]): Promise<ResolvedTargets> {
    const ordered = orderByPriorityAndWeight(candidates, this.options.random);
    const resolved = await Promise.all(ordered.map((c) => this.addresses(c.name)));
    const targets: Target[] = [];
    const unresolved: string[] = [];
    const errors: string[] = [];
    ordered.forEach((c, i) => {
      const a = resolved[i] ?? { found: [], errors: [], nxdomain: false };
      const srv = `SRV ${c.service}.${this.domain} → ${c.name}:${c.port}`;
      for (const { ip, type } of a.found) {
        targets.push({ host: ip, port: c.port, directTls: c.service === XMPPS, via: `${srv} (${type})` });
      }
      if (a.found.length > 0) {
        this.notes.push(...a.errors);
      } else {
        unresolved.push(`${c.name}:${c.port}`);
        if (a.errors.length > 0) errors.push(...a.errors);
        else this.notes.push(`${srv}: no ${this.typesText()} records`);
      }
    });
    if (targets.length > 0) {
      this.notes.push(...errors);
      return this.done(targets);
    }
    if (errors.length > 0) return this.fail("dns-error", `DNS: ${errors.join("; ")}`);
    return this.fail(
      "no-records",
      `DNS: no ${this.typesText()} records for the SRV targets of ${this.domain} (${unresolved.join(", ")})`,
    );
  }

  private async fallback(): Promise<ResolvedTargets> {
    const a = await this.addresses(this.domain);
    if (a.found.length > 0) {
      this.notes.push(...a.errors);
      return this.done(
        a.found.map(({ ip, type }) => ({
          host: ip,
          port: this.options.port,
          directTls: this.options.directTls,
          via: `${type} ${this.domain} (no SRV records)`,
        })),
      );
    }
    if (a.errors.length > 0) return this.fail("dns-error", `DNS: ${a.errors.join("; ")}`);
    if (a.nxdomain) return this.fail("no-records", `DNS: ${this.domain} does not exist (NXDOMAIN)`);
    const srv = this.options.directTls ? "_xmpps-server SRV" : "SRV";
    return this.fail("no-records", `DNS: no ${srv} or ${this.typesText()} records for ${this.domain}`);
  }

  /** A and/or AAAA of `host` (asked once however many SRV records name it). */
  private addresses(host: string): Promise<Addresses> {
    const key = host.toLowerCase();
    let pending = this.asked.get(key);
    if (pending === undefined) {
      pending = this.lookUp(host);
      this.asked.set(key, pending);
    }
    return pending;
  }

  /** A and AAAA asked in parallel, listed in `ip_versions` order. */
  private async lookUp(host: string): Promise<Addresses> {
    const literal = ipLiteral(host);
    if (literal !== undefined) {
      // Not allowed by RFC 2782, but seen in the wild: an SRV target written as an address.
      return {
        found: [{ ip: literal, type: isIP(literal) === 4 ? "A" : "AAAA" }],
        errors: [],
        nxdomain: false,
      };
    }
    const answers = await Promise.all(
      this.options.ipVersions.map(async (v) => {
        const type = v === 4 ? ("A" as const) : ("AAAA" as const);
        const answer: Answer<string[]> = await ask(this.client, this.limits, () =>
          v === 4 ? this.client.resolve4(host) : this.client.resolve6(host),
        );
        return { type, answer };
      }),
    );
    const result: Addresses = { found: [], errors: [], nxdomain: answers.length > 0 };
    for (const { type, answer } of answers) {
      if (answer.kind !== "nxdomain") result.nxdomain = false;
      if (answer.kind === "records") result.found.push(...answer.value.map((ip) => ({ ip, type })));
      if (answer.kind === "error") result.errors.push(`${answer.problem} (${type} ${host})`);
    }
    return result;
  }

  private refusalText(refused: string[]): string {
    if (refused.includes(XMPP) || !refused.includes(XMPPS)) {
      return `DNS: the SRV record says ${this.domain} offers no XMPP service ('.' target)`;
    }
    return this.options.directTls
      ? `DNS: the _xmpps-server SRV record says ${this.domain} offers no direct TLS ('.' target), ` +
          `which outgoing.tls.mode = "tls" needs`
      : `DNS: the _xmpps-server SRV record says ${this.domain} offers no direct TLS ('.' target) ` +
          `and there are no _xmpp-server records`;
  }

  /** "A/AAAA", "AAAA/A", "A" or "AAAA", as `ip_versions` says. */
  private typesText(): string {
    return this.options.ipVersions.map((v) => (v === 4 ? "A" : "AAAA")).join("/");
  }

  private done(targets: Target[]): ResolvedTargets {
    return done(targets, this.notes);
  }

  private fail(kind: FailureKind, text: string): ResolvedTargets {
    return fail(kind, text, this.notes);
  }
}

function done(targets: Target[], notes: string[] = []): ResolvedTargets {
  const seen = new Set<string>();
  const unique = targets.filter((t) => {
    const key = `${t.host} ${t.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { targets: unique, notes };
}

function fail(failureKind: FailureKind, failure: string, notes: string[] = []): ResolvedTargets {
  return { targets: [], failure, failureKind, notes };
}

/** The address of an IP-literal domain ("192.0.2.1", "[2001:db8::1]", also bare "2001:db8::1"). */
function ipLiteral(domain: string): string | undefined {
  const bare = domain.startsWith("[") && domain.endsWith("]") ? domain.slice(1, -1) : domain;
  const version = isIP(bare);
  if (version === 0 || (bare !== domain && version !== 6)) return undefined;
  return bare;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/i;

/** ASCII letters, digits, '-' and '_' (SRV-style names) in 1–63 character labels, 253 at most. */
function isAsciiDomain(domain: string): boolean {
  const name = domain.endsWith(".") ? domain.slice(0, -1) : domain;
  return name.length > 0 && name.length <= 253 && name.split(".").every((l) => LABEL.test(l));
}
