// The configuration file's schema. Option names, types and defaults are MongooseIM's (seeds 003 and
// 004, MongooseIM's listener documentation); Ferry's own additions live in their own tables
// ([[listen.http]], [access], [metrics], [debug]) or are marked "Ferry" in their meaning.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import * as z from "zod";
import {
  bool,
  doc,
  domain,
  domainPattern,
  filePath,
  intOrInfinity,
  ipAddress,
  ipVersion,
  jidPattern,
  list,
  oneOf,
  port,
  positiveInt,
  resolverAddress,
  table,
  text,
} from "./leaves.js";

export const LOG_LEVELS = [
  "none",
  "emergency",
  "alert",
  "critical",
  "error",
  "warning",
  "notice",
  "info",
  "debug",
  "all",
  // CommuniGate Pro's names for the same scale (seed 001).
  "problems",
  "major",
  "low-level",
  "all-info",
] as const;

// --- listeners ------------------------------------------------------------------------------------

function socketOptions(defaultPort: number, anyAddress: string) {
  return {
    port: doc(port(true).default(defaultPort), "Port the listener binds to."),
    ip_address: doc(ipAddress().optional(), "IP address the listener binds to.", {
      docDefault: `"${anyAddress}" (IPv6: "${anyAddress === "0.0.0.0" ? "::" : "::1"}")`,
    }),
    ip_version: doc(
      ipVersion().optional(),
      "IP version of the listening socket. Not needed when `ip_address` is set: it follows from it.",
      { docDefault: "4, or that of `ip_address`" },
    ),
  };
}

/** MongooseIM's general options of the XMPP listeners (c2s, s2s, service). */
const xmppListenerOptions = () => ({
  backlog: doc(positiveInt().default(1024), "TCP accept backlog."),
  proxy_protocol: doc(
    bool()
      .default(false)
      .refine((on) => !on, "the PROXY protocol is not supported by Ferry yet: set it to false or remove it"),
    "MongooseIM's PROXY protocol option; only `false` is accepted until Ferry parses PROXY headers.",
  ),
  max_stanza_size: doc(
    intOrInfinity(1).default(Infinity),
    "Largest stanza accepted, in bytes (counted before decoding); a larger one ends the stream with " +
      "`<policy-violation/>`.",
  ),
  max_connections: doc(
    intOrInfinity(1).default(Infinity),
    "Most simultaneous connections on this listener; further ones are closed as they arrive.",
  ),
  state_timeout: doc(
    intOrInfinity(0).default(5000),
    "Time (ms) the peer may take to answer each stream negotiation step; then the stream ends with " +
      "`<connection-timeout/>`.",
  ),
});

const TLS_VERSIONS = ["tlsv1.2", "tlsv1.3"] as const;

/** TLS options shared by `[[listen.s2s]] tls` and `[s2s] outgoing.tls` (issue 5). */
const tlsOptions = (side: "incoming" | "outgoing") => ({
  certfile: doc(
    filePath().optional(),
    "PEM file with the certificate chain (it may also hold the private key)" +
      (side === "outgoing" ? ", presented for SASL EXTERNAL." : "."),
  ),
  keyfile: doc(filePath().optional(), "PEM file with the private key, when `certfile` does not hold it."),
  cacertfile: doc(
    filePath().optional(),
    "PEM file with the CA certificates that peer certificates are checked against.",
    {
      docDefault: "the system trust store",
    },
  ),
  verify_mode: doc(
    oneOf(["peer", "selfsigned_peer", "none"]).default("peer"),
    "How peer certificates are checked: `peer` needs a chain to a trusted CA, `selfsigned_peer` also " +
      "accepts self-signed ones, `none` does not check (no SASL EXTERNAL then).",
  ),
  ciphers: doc(
    text("an OpenSSL cipher list").optional(),
    "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are Node's).",
    { docDefault: "Node's default" },
  ),
  versions: doc(
    list(oneOf(TLS_VERSIONS), 'an array of "tlsv1.2", "tlsv1.3"', { nonEmpty: true }).default(() => [
      ...TLS_VERSIONS,
    ]),
    "TLS versions allowed.",
  ),
});

const TLS_MODES = ["tls", "starttls", "starttls_required"] as const;

const listenerTls = table({
  mode: doc(
    oneOf(TLS_MODES).default("starttls"),
    "`starttls`: offer STARTTLS; `starttls_required`: offer it and refuse to go on without it; `tls`: " +
      "TLS from the first byte (XEP-0368 direct TLS, conventionally port 5270).",
  ),
  required: doc(
    bool().default(false),
    'Drop peers that do not use TLS (same effect as `mode = "starttls_required"`).',
  ),
  ...tlsOptions("incoming"),
});

type Wildcards = { any: string; any6: string };

/**
 * MongooseIM derives the IP version from `ip_address` and binds to the all-zeros address of that
 * version when none is given; Ferry's HTTP listener binds to loopback instead.
 */
function resolveAddress<
  T extends { port: number; ip_address?: string | undefined; ip_version?: 4 | 6 | undefined },
>(
  listener: T,
  ctx: z.RefinementCtx,
  defaults: Wildcards,
): { port: number; ip_address: string; ip_version: 4 | 6 } & Omit<T, "port" | "ip_address" | "ip_version"> {
  // The address goes next to the port, as in the documentation (the effective config keeps this order).
  const { port, ip_address, ip_version, ...rest } = listener;
  if (ip_address === undefined) {
    const version = ip_version ?? 4;
    return { port, ip_address: version === 6 ? defaults.any6 : defaults.any, ip_version: version, ...rest };
  }
  const actual = isIP(ip_address) === 6 ? 6 : 4;
  if (ip_version !== undefined && ip_version !== actual) {
    ctx.addIssue({
      code: "custom",
      path: ["ip_version"],
      message: `ip_version = ${ip_version} contradicts ip_address = "${ip_address}" (an IPv${actual} address)`,
    });
  }
  return { port, ip_address, ip_version: actual, ...rest };
}

const ALL_INTERFACES: Wildcards = { any: "0.0.0.0", any6: "::" };
const LOOPBACK: Wildcards = { any: "127.0.0.1", any6: "::1" };

const SHAPER_NAME = 'a shaper name from [shaper.NAME] or "none"';

const s2sListener = doc(
  table({
    ...socketOptions(5269, ALL_INTERFACES.any),
    ...xmppListenerOptions(),
    shaper: doc(
      text(SHAPER_NAME).default("none"),
      "Traffic shaper (`[shaper.NAME]`) applied to each incoming connection: reading pauses when it " +
        "exceeds the shaper's rate.",
    ),
    tls: doc(listenerTls.optional(), "TLS for incoming streams; without this table no STARTTLS is offered."),
    max_connections_per_ip: doc(
      intOrInfinity(1).default(1000),
      "Ferry: most simultaneous connections from one IP address; further ones get `<policy-violation/>`.",
    ),
    connection_rate_per_ip: doc(
      intOrInfinity(1).default(50),
      "Ferry: new connections per second from one IP address (bursts of five times as many); beyond " +
        "it, `<policy-violation/>`.",
    ),
    max_verifications_per_ip: doc(
      intOrInfinity(1).default(50),
      "Ferry: dialback verifications under way for connections from one IP address; further " +
        "`<db:result/>`s are answered with a `<policy-violation/>` error, so Ferry cannot be made to " +
        "flood a victim domain.",
    ),
  }).transform((l, ctx) => resolveAddress(l, ctx, ALL_INTERFACES)),
  "One `[[listen.s2s]]` table per listener for incoming federation (server-to-server) streams.",
  { docDefault: "not set (no listener)" },
);

const serviceListener = doc(
  table({
    ...socketOptions(8888, ALL_INTERFACES.any),
    ...xmppListenerOptions(),
    access: doc(
      text('an [access] list name or "all"').default("all"),
      "Who may send stanzas to the components: `all`, or the name of an `[access]` list of JIDs.",
    ),
    password: doc(text(), "Secret the component authenticates with (XEP-0114 handshake). Mandatory.", {
      secret: true,
    }),
    shaper_rule: doc(
      text(SHAPER_NAME).default("none"),
      "Traffic shaper (`[shaper.NAME]`) applied to each component connection.",
    ),
    check_from: doc(
      bool().default(true),
      "Refuse stanzas from the component whose `from` is outside the component's domain.",
    ),
    hidden_components: doc(
      bool().default(false),
      "Leave the components of this listener out of the server's disco#items.",
    ),
    conflict_behaviour: doc(
      oneOf(["disconnect", "kick_old"]).default("disconnect"),
      "When a component connects for a domain already connected: `disconnect` refuses the new " +
        "connection with `<conflict/>`, `kick_old` closes the old one and keeps the new one.",
    ),
    max_fsm_queue: doc(
      positiveInt().optional(),
      "Most stanzas queued for a slow component; beyond it they are bounced with " +
        "`resource-constraint`. Overrides `general.max_fsm_queue`.",
      { docDefault: "not set (no limit)" },
    ),
  }).transform((l, ctx) => resolveAddress(l, ctx, ALL_INTERFACES)),
  "One `[[listen.service]]` table per XEP-0114 component listener.",
  { docDefault: "not set (no listener)" },
);

const httpListener = doc(
  table({
    ...socketOptions(5280, LOOPBACK.any),
    api_token: doc(
      text().optional(),
      "Ferry: bearer token for the admin API (`/api/connections`, `/api/links`); not set turns those " +
        "endpoints off.",
      { secret: true },
    ),
    probe_private: doc(
      bool().default(false),
      "Ferry: allow the S2S probe API (`/api/xmpp-s2s/*`) to connect to private and loopback addresses.",
    ),
  }).transform((l, ctx) => resolveAddress(l, ctx, LOOPBACK)),
  "Ferry: one `[[listen.http]]` table per HTTP listener (`/metrics`, `/healthz`, `/debug/actors`, APIs).",
  { docDefault: "not set (no listener)" },
);

const listeners = <T extends z.ZodType>(item: T, header: string) =>
  z.array(item, { error: `expected ${header} tables (an array of tables)` }).default(() => []);

// --- sections ---------------------------------------------------------------------------------------

const general = table({
  hosts: doc(
    list(domain(), "a non-empty array of domain names", { nonEmpty: true }),
    "Domains this server hosts. Mandatory.",
  ),
  loglevel: doc(
    oneOf(LOG_LEVELS).default("warning"),
    "Log level: MongooseIM's names, or CommuniGate Pro's (`problems` = warning, `major` = info, " +
      "`low-level` = debug, `all-info` = everything).",
  ),
  max_fsm_queue: doc(
    positiveInt().optional(),
    "Default for `listen.service.max_fsm_queue`. Ferry also bounds each outgoing S2S queue (one per " +
      "local and remote domain) with it: stanzas beyond it, or beyond 16 MiB, are bounced with " +
      "`resource-constraint`; when not set, an outgoing queue holds up to 10,000.",
    { docDefault: "not set (components: no limit; outgoing S2S queues: 10,000)" },
  ),
  shutdown_timeout: doc(
    positiveInt().default(5000),
    "Ferry: on SIGTERM/SIGINT, how long (ms) streams get to deliver or bounce what they hold and close " +
      "with `</stream:stream>` before the rest is cut.",
  ),
  disco_items: doc(
    list(jidPattern(), "an array of JIDs").default(() => []),
    "Ferry: extra items the hosted domains list in disco#items (seed 001's supplementary discovery items).",
  ),
  domain_certfile: doc(
    list(
      table({ domain: domain(), certfile: filePath(), keyfile: filePath().optional() }),
      "an array of {domain, certfile, keyfile} tables",
    ).default(() => []),
    "Certificates per hosted domain, chosen by SNI; `certfile` may also hold the key, or give `keyfile`.",
  ),
});

const s2sOutgoing = table({
  address: doc(
    list(
      table({
        host: domain(),
        ip_address: ipAddress(),
        port: port(false).optional(),
        tls_name: domain().optional(),
      }),
      "an array of {host, ip_address, port, tls_name} tables",
    ).default(() => []),
    "Addresses for remote domains, used instead of DNS; `port` defaults to `outgoing.port`, `tls_name` " +
      "(Ferry) is the name the peer's certificate must match instead of `host`.",
    { docDefault: "not set" },
  ),
  connection_timeout: doc(
    intOrInfinity(1).default(10_000),
    "Time (ms) to establish each outgoing TCP connection.",
  ),
  dns: table({
    retries: doc(positiveInt().default(2), "DNS lookup attempts when opening an outgoing connection."),
    timeout: doc(positiveInt().default(10), "Timeout (s) of each DNS lookup."),
    servers: doc(
      list(resolverAddress(), 'an array of "ip" or "ip:port" strings').default(() => []),
      "Ferry: DNS servers to use instead of the system's resolvers.",
      { docDefault: "not set (the system's)" },
    ),
    negative_ttl: doc(
      intOrInfinity(0).default(30),
      "Ferry: how long (s) a domain that did not resolve is remembered as such (0: not at all).",
    ),
  }).prefault({}),
  max_connecting: doc(
    positiveInt().default(64),
    "Ferry: most outgoing connection attempts (DNS and TCP) under way at once; others wait their turn.",
  ),
  ip_versions: doc(
    list(ipVersion(), "a non-empty array of 4 and 6", { nonEmpty: true }).default((): (4 | 6)[] => [4, 6]),
    "IP versions to try, in this order.",
  ),
  max_retry_delay: doc(
    positiveInt().default(300),
    "Longest wait (s) between attempts to reach a remote server; the delay doubles up to it.",
  ),
  max_stanza_size: doc(
    intOrInfinity(1).default(Infinity),
    "Largest stanza accepted on outgoing streams, in bytes.",
  ),
  port: doc(port(false).default(5269), "Port used when DNS gives no SRV record."),
  shaper: doc(
    text(SHAPER_NAME).default("none"),
    "Traffic shaper (`[shaper.NAME]`) for data received on outgoing streams.",
  ),
  state_timeout: doc(
    intOrInfinity(0).default(5000),
    "Time (ms) the remote server may take to answer each negotiation step; then `<connection-timeout/>`.",
  ),
  stream_timeout: doc(
    intOrInfinity(0).default(600_000),
    "Time (ms) an established outgoing stream may stay idle before it is closed.",
  ),
  tls: table({
    mode: doc(
      oneOf(TLS_MODES).default("starttls"),
      "`starttls`: use STARTTLS when offered (opportunistic); `starttls_required`: never send without " +
        "it; `tls`: direct TLS (XEP-0368, `_xmpps-server` SRV records).",
    ),
    ...tlsOptions("outgoing"),
    require_for: doc(
      list(domainPattern(), 'an array of "domain", "*.domain" or "!domain" patterns').default(() => []),
      "Ferry: domains that get stanzas only over TLS with a certificate valid for them (seed 001's " +
        "secure relaying); `*.` matches subdomains, `!` makes an exception.",
    ),
  }).prefault({}),
});

const s2s = table({
  default_policy: doc(
    oneOf(["allow", "deny"]).default("allow"),
    "Whether S2S connections to and from remote servers are allowed by default.",
  ),
  host_policy: doc(
    list(
      table({ host: domain(), policy: oneOf(["allow", "deny"]) }),
      "an array of {host, policy} tables",
    ).default(() => []),
    "Per-domain exceptions to `default_policy`.",
    { docDefault: "not set (`default_policy` applies)" },
  ),
  shared: doc(
    text().default(() => randomBytes(10).toString("hex")),
    "Secret for server dialback keys (XEP-0185). A peer's verification is confirmed only for a key this " +
      "node sent on that stream, so keys cannot be replayed.",
    { docDefault: "10 strong random bytes, hex-encoded", secret: true },
  ),
  secure_auth: doc(
    bool().default(false),
    "Ferry: accept incoming peers only with certificate authentication or dialback over verified TLS.",
  ),
  introspection: table({
    address: doc(domain().optional(), "Ferry: address of the S2S introspection disco tree (seed 000).", {
      docDefault: '"s2s." + first of `general.hosts`',
    }),
    history: doc(
      positiveInt().default(20),
      "Ferry: how many recent link attempts are kept per remote domain (the `links` node, `/api/links`).",
    ),
  }).prefault({}),
  outgoing: s2sOutgoing.prefault({}),
});

const shaper = z
  .record(
    z.string(),
    table({
      max_rate: doc(
        positiveInt(),
        "Rate (bytes/s) of the token-bucket shaper NAME, which listeners and `s2s.outgoing.shaper` name.",
      ),
    }),
    { error: "expected a table of shapers ([shaper.NAME] tables)" },
  )
  .default(() => ({}))
  .meta({ keyName: "NAME" });

const access = z
  .record(
    z.string(),
    doc(
      list(jidPattern(), "an array of JIDs"),
      "Ferry: the JID list NAME. `global` and `s2s` may browse the S2S introspection tree; listeners' " +
        '`access` options name lists. A JID may be bare, full, a domain, or `"*@domain"`.',
      { docDefault: "not set" },
    ),
    { error: "expected a table of JID lists" },
  )
  .default(() => ({}))
  .meta({ keyName: "NAME" });

const metrics = table({
  per_domain: doc(
    list(domain(), "an array of domain names").default(() => []),
    "Ferry: remote domains that get their own metric series (other domains are never a label).",
  ),
});

const debug = table({
  inspector: doc(
    table({ port: doc(port(false).default(5281), "Port of the inspector's WebSocket server.") }).optional(),
    "Ferry: attach the Stately inspector (`@statelyai/inspect`) over WebSocket; off unless set.",
    { docDefault: "not set (off)" },
  ),
});

const root = table({
  // A missing [general] should be reported as a missing general.hosts, hence the (incomplete) prefault.
  general: general.prefault({} as z.input<typeof general>),
  listen: table({
    s2s: listeners(s2sListener, "[[listen.s2s]]"),
    service: listeners(serviceListener, "[[listen.service]]"),
    http: listeners(httpListener, "[[listen.http]]"),
  }).prefault({}),
  s2s: s2s.prefault({}),
  shaper,
  access,
  metrics: metrics.prefault({}),
  debug: debug.prefault({}),
});

// --- cross-references -------------------------------------------------------------------------------

type Parsed = z.output<typeof root>;

interface Bound {
  where: (string | number)[];
  port: number;
  ip_address: string;
}

function overlaps(a: Bound, b: Bound): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  if (a.ip_address === b.ip_address || a.ip_address === "::" || b.ip_address === "::") return true;
  const v4 = (ip: string) => isIP(ip) === 4;
  return (a.ip_address === "0.0.0.0" && v4(b.ip_address)) || (b.ip_address === "0.0.0.0" && v4(a.ip_address));
}

function pathText(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function checkReferences(c: Parsed, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => {
    ctx.addIssue({ code: "custom", path, message });
  };
  const duplicates = <T>(
    items: readonly T[],
    key: (item: T) => string,
    path: (i: number) => (string | number)[],
  ) => {
    const seen = new Set<string>();
    items.forEach((item, i) => {
      const k = key(item);
      if (seen.has(k)) issue(path(i), `duplicate ${JSON.stringify(k)}`);
      seen.add(k);
    });
  };

  duplicates(
    c.general.hosts,
    (h) => h,
    (i) => ["general", "hosts", i],
  );
  duplicates(
    c.s2s.host_policy,
    (p) => p.host,
    (i) => ["s2s", "host_policy", i, "host"],
  );
  duplicates(c.s2s.outgoing.ip_versions, String, (i) => ["s2s", "outgoing", "ip_versions", i]);

  const shapers = Object.keys(c.shaper);
  if (Object.hasOwn(c.shaper, "none")) issue(["shaper", "none"], '"none" is reserved: it means "no shaper"');
  const shaperRef = (name: string, path: (string | number)[]) => {
    if (name === "none" || Object.hasOwn(c.shaper, name)) return;
    const known =
      shapers.length > 0 ? `defined shapers: ${shapers.join(", ")}` : "no [shaper.NAME] is defined";
    issue(
      path,
      `unknown shaper "${name}": expected a shaper defined as [shaper.${name}] or "none" (${known})`,
    );
  };
  c.listen.s2s.forEach((l, i) => {
    shaperRef(l.shaper, ["listen", "s2s", i, "shaper"]);
  });
  c.listen.service.forEach((l, i) => {
    shaperRef(l.shaper_rule, ["listen", "service", i, "shaper_rule"]);
  });
  shaperRef(c.s2s.outgoing.shaper, ["s2s", "outgoing", "shaper"]);

  const lists = Object.keys(c.access);
  if (Object.hasOwn(c.access, "all")) issue(["access", "all"], '"all" is reserved: it means everybody');
  c.listen.service.forEach((l, i) => {
    if (l.access === "all" || Object.hasOwn(c.access, l.access)) return;
    const known = lists.length > 0 ? `defined lists: ${lists.join(", ")}` : "no [access] list is defined";
    issue(
      ["listen", "service", i, "access"],
      `unknown access list "${l.access}": expected "all" or a list defined in [access] (${known})`,
    );
  });

  const bound: Bound[] = [
    ...c.listen.s2s.map((l, i) => ({ ...l, where: ["listen", "s2s", i] })),
    ...c.listen.service.map((l, i) => ({ ...l, where: ["listen", "service", i] })),
    ...c.listen.http.map((l, i) => ({ ...l, where: ["listen", "http", i] })),
  ];
  bound.forEach((b, i) => {
    const earlier = bound.slice(0, i).find((a) => overlaps(a, b));
    if (earlier !== undefined) {
      issue(
        [...b.where, "port"],
        `port ${b.port} on ${b.ip_address} is already used by ${pathText(earlier.where)} (${earlier.ip_address})`,
      );
    }
  });

  const haveDomainCerts = c.general.domain_certfile.length > 0;
  c.listen.s2s.forEach((l, i) => {
    if (l.tls === undefined) return;
    if (l.tls.certfile === undefined && !haveDomainCerts) {
      issue(
        ["listen", "s2s", i, "tls", "certfile"],
        "missing certificate: [listen.s2s] tls needs tls.certfile (or general.domain_certfile)",
      );
    }
    if (l.tls.keyfile !== undefined && l.tls.certfile === undefined) {
      issue(["listen", "s2s", i, "tls", "keyfile"], "tls.keyfile is set but tls.certfile is not");
    }
  });
  if (c.s2s.outgoing.tls.keyfile !== undefined && c.s2s.outgoing.tls.certfile === undefined) {
    issue(["s2s", "outgoing", "tls", "keyfile"], "tls.keyfile is set but tls.certfile is not");
  }
}

/** Defaults that depend on other options. */
function fillDerived(c: Parsed) {
  const firstHost = c.general.hosts[0] ?? "localhost";
  return {
    ...c,
    s2s: {
      ...c.s2s,
      introspection: { ...c.s2s.introspection, address: c.s2s.introspection.address ?? `s2s.${firstHost}` },
    },
  };
}

export const configSchema = root.superRefine(checkReferences).transform(fillDerived);

/** The validated configuration with every default filled in (deeply frozen by the loader). */
export type Config = z.output<typeof configSchema>;
