/**
 * resolveTargets against an in-process DNS server on 127.0.0.1, through Node's real resolver.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolveOptionsFromConfig, resolveTargets, type ResolveOptions } from "../../src/dns/resolve.js";
import {
  BoundedDnsClient,
  ask,
  createDnsClient,
  sharedDnsClient,
  type DnsClient,
} from "../../src/dns/query.js";
import { loadConfigText } from "../../src/config/load.js";
import { startFakeDns, type FakeDnsServer, type FakeRecord } from "./fakeDnsServer.js";

const A = (address: string): FakeRecord => ({ type: "A", address });
const AAAA = (address: string): FakeRecord => ({ type: "AAAA", address });
const SRV = (priority: number, weight: number, port: number, target: string): FakeRecord => ({
  type: "SRV",
  priority,
  weight,
  port,
  target,
});

const RECORDS: Record<string, FakeRecord[]> = {
  // SRV with two priority levels; xmpp2 has both address families.
  "_xmpp-server._tcp.prio.example": [
    SRV(20, 0, 5269, "xmpp1.prio.example"),
    SRV(10, 0, 5299, "xmpp2.prio.example"),
  ],
  "xmpp1.prio.example": [A("192.0.2.1")],
  "xmpp2.prio.example": [A("192.0.2.2"), AAAA("2001:db8::2")],
  // Two targets of equal priority, weights 1 and 3.
  "_xmpp-server._tcp.weights.example": [
    SRV(5, 1, 5269, "light.weights.example"),
    SRV(5, 3, 5269, "heavy.weights.example"),
  ],
  "light.weights.example": [A("192.0.2.11")],
  "heavy.weights.example": [A("192.0.2.13")],
  // "Decidedly not available".
  "_xmpp-server._tcp.dot.example": [SRV(0, 0, 0, ".")],
  "dot.example": [A("192.0.2.99")],
  // No SRV at all: A/AAAA of the domain.
  "plain.example": [A("192.0.2.20"), AAAA("2001:db8::20")],
  // Exists, but has neither SRV nor addresses.
  "empty.example": [],
  // XEP-0368: direct TLS records mixed with STARTTLS ones.
  "_xmpps-server._tcp.both.example": [SRV(5, 0, 5270, "xmpp.both.example")],
  "_xmpp-server._tcp.both.example": [SRV(10, 0, 5269, "xmpp.both.example")],
  "xmpp.both.example": [A("192.0.2.30")],
  "_xmpps-server._tcp.notls.example": [SRV(0, 0, 0, ".")],
  "_xmpp-server._tcp.notls.example": [SRV(10, 0, 5269, "xmpp.notls.example")],
  "xmpp.notls.example": [A("192.0.2.40")],
  "notls.example": [A("192.0.2.41")],
  "_xmpps-server._tcp.onlydot.example": [SRV(0, 0, 0, ".")],
  "onlydot.example": [A("192.0.2.42")],
  "_xmpp-server._tcp.starttls-only.example": [SRV(10, 0, 5269, "xmpp.starttls-only.example")],
  "xmpp.starttls-only.example": [A("192.0.2.50")],
  "starttls-only.example": [A("192.0.2.51")],
  // One SRV target without addresses, one with; the same target listed twice.
  "_xmpp-server._tcp.partial.example": [
    SRV(1, 0, 5269, "gone.partial.example"),
    SRV(2, 0, 5269, "ok.partial.example"),
    SRV(3, 0, 5269, "ok.partial.example"),
  ],
  "ok.partial.example": [A("192.0.2.60")],
  "_xmpp-server._tcp.dangling.example": [SRV(1, 0, 5269, "gone.dangling.example")],
  "_xmpp-server._tcp.literal.example": [SRV(1, 0, 5275, "192.0.2.70")],
};

let dns: FakeDnsServer;
let base: ResolveOptions;

before(async () => {
  dns = await startFakeDns({ records: RECORDS, servfail: ["_xmpp-server._tcp.servfail.example"] });
  base = {
    port: 5269,
    ipVersions: [4, 6],
    overrides: [],
    timeoutMs: 1000,
    retries: 2,
    servers: [dns.address],
    directTls: false,
  };
});
after(() => dns.close());

/** The questions the server got for names under `suffix`. */
const asked = (suffix: string) => dns.queries.filter((q) => q.endsWith(suffix));
const endpoints = (r: { targets: { host: string; port: number; directTls: boolean }[] }) =>
  r.targets.map((t) => `${t.host}:${t.port}${t.directTls ? " tls" : ""}`);

describe("resolveTargets: overrides and literals (no DNS)", () => {
  it("uses outgoing.address entries in order, with outgoing.port as the default port", async () => {
    const r = await resolveTargets("Fed.example", {
      ...base,
      overrides: [
        { host: "other.example", ip_address: "192.0.2.200" },
        { host: "fed.example", ip_address: "127.0.0.5" },
        { host: "fed.example", ip_address: "::1", port: 5999, tls_name: "cert.example" },
      ],
    });
    assert.deepEqual(r.targets, [
      { host: "127.0.0.5", port: 5269, directTls: false, via: "outgoing.address override for Fed.example" },
      {
        host: "::1",
        port: 5999,
        directTls: false,
        via: "outgoing.address override for Fed.example",
        tlsName: "cert.example",
      },
    ]);
    assert.equal(r.failure, undefined);
    assert.deepEqual(asked("fed.example"), []);
  });

  it("marks overrides direct TLS when tls.mode is tls", async () => {
    const r = await resolveTargets("fed.example", {
      ...base,
      directTls: true,
      overrides: [{ host: "fed.example", ip_address: "127.0.0.5", port: 5270 }],
    });
    assert.deepEqual(endpoints(r), ["127.0.0.5:5270 tls"]);
  });

  it("connects to IP-literal domains directly", async () => {
    const before = dns.queries.length;
    const v4 = await resolveTargets("192.0.2.7", base);
    assert.deepEqual(v4.targets, [
      { host: "192.0.2.7", port: 5269, directTls: false, via: "IP literal 192.0.2.7" },
    ]);
    const v6 = await resolveTargets("[2001:db8::7]", base);
    assert.deepEqual(endpoints(v6), ["2001:db8::7:5269"]);
    assert.equal(dns.queries.length, before, "no DNS question");
  });

  it("refuses a domain that is not ASCII, without asking the DNS", async () => {
    const before = dns.queries.length;
    const r = await resolveTargets("bücher.example", base);
    assert.deepEqual(r.targets, []);
    assert.equal(r.failureKind, "invalid-domain");
    assert.equal(r.failure, 'DNS: "bücher.example" is not a valid ASCII (IDNA) domain name');
    assert.equal((await resolveTargets("a..example", base)).failureKind, "invalid-domain");
    assert.equal(dns.queries.length, before);
  });
});

describe("resolveTargets: SRV (RFC 6120 §3.2.1, RFC 2782)", () => {
  it("orders targets by priority, each with its addresses in ip_versions order", async () => {
    const r = await resolveTargets("prio.example", base);
    assert.deepEqual(endpoints(r), ["192.0.2.2:5299", "2001:db8::2:5299", "192.0.2.1:5269"]);
    assert.equal(r.targets[0]!.via, "SRV _xmpp-server._tcp.prio.example → xmpp2.prio.example:5299 (A)");
    assert.equal(r.targets[1]!.via, "SRV _xmpp-server._tcp.prio.example → xmpp2.prio.example:5299 (AAAA)");
    assert.equal(r.failure, undefined);

    const v6first = await resolveTargets("prio.example", { ...base, ipVersions: [6, 4] });
    assert.deepEqual(endpoints(v6first), ["2001:db8::2:5299", "192.0.2.2:5299", "192.0.2.1:5269"]);
  });

  it("asks only the address families in ip_versions", async () => {
    const aQuestions = () => dns.queries.filter((q) => q.startsWith("A ")).length;
    const before = aQuestions();
    const r = await resolveTargets("prio.example", { ...base, ipVersions: [6] });
    assert.deepEqual(endpoints(r), ["2001:db8::2:5299"]);
    assert.equal(aQuestions(), before, "no A question");
    assert.ok(
      r.notes.includes("SRV _xmpp-server._tcp.prio.example → xmpp1.prio.example:5269: no AAAA records"),
    );
  });

  it("orders equal priorities by weight with the given random source", async () => {
    // Draws are 1..4: light owns 1, heavy 2..4.
    const light = await resolveTargets("weights.example", { ...base, random: () => 0 });
    assert.deepEqual(endpoints(light), ["192.0.2.11:5269", "192.0.2.13:5269"]);
    const heavy = await resolveTargets("weights.example", { ...base, random: () => 0.3 });
    assert.deepEqual(endpoints(heavy), ["192.0.2.13:5269", "192.0.2.11:5269"]);
  });

  it("treats a single '.' target as no service, without falling back to A/AAAA", async () => {
    const r = await resolveTargets("dot.example", base);
    assert.deepEqual(r.targets, []);
    assert.equal(r.failureKind, "no-service");
    assert.equal(r.failure, "DNS: the SRV record says dot.example offers no XMPP service ('.' target)");
    assert.ok(!dns.queries.includes("A dot.example"));
  });

  it("skips SRV targets without addresses and keeps (host, port) pairs unique", async () => {
    const r = await resolveTargets("partial.example", base);
    assert.deepEqual(endpoints(r), ["192.0.2.60:5269"]);
    assert.ok(
      r.notes.includes(
        "SRV _xmpp-server._tcp.partial.example → gone.partial.example:5269: no A/AAAA records",
      ),
    );
    assert.equal(asked("ok.partial.example").length, 2, "one A and one AAAA question for a repeated target");
  });

  it("fails when no SRV target has an address", async () => {
    const r = await resolveTargets("dangling.example", base);
    assert.equal(r.failureKind, "no-records");
    assert.equal(
      r.failure,
      "DNS: no A/AAAA records for the SRV targets of dangling.example (gone.dangling.example:5269)",
    );
  });

  it("uses an SRV target written as an IP address as it is", async () => {
    const r = await resolveTargets("literal.example", base);
    assert.deepEqual(endpoints(r), ["192.0.2.70:5275"]);
  });

  it("reports SERVFAIL as a DNS failure after the retries, without guessing A/AAAA", async () => {
    const r = await resolveTargets("servfail.example", base);
    assert.equal(r.failureKind, "dns-error");
    assert.equal(r.failure, `DNS: ${dns.address} answered SERVFAIL (SRV _xmpp-server._tcp.servfail.example)`);
    assert.equal(asked("_xmpp-server._tcp.servfail.example").length, 2, "dns.retries = 2 tries");
    assert.ok(!dns.queries.includes("A servfail.example"));
  });
});

describe("resolveTargets: no SRV records (RFC 6120 §3.2.2)", () => {
  it("falls back to A/AAAA of the domain on outgoing.port", async () => {
    const r = await resolveTargets("plain.example", { ...base, port: 5299 });
    assert.deepEqual(r.targets, [
      { host: "192.0.2.20", port: 5299, directTls: false, via: "A plain.example (no SRV records)" },
      { host: "2001:db8::20", port: 5299, directTls: false, via: "AAAA plain.example (no SRV records)" },
    ]);
    const v4 = await resolveTargets("plain.example", { ...base, ipVersions: [4] });
    assert.deepEqual(endpoints(v4), ["192.0.2.20:5269"]);
  });

  it("says when there are no records at all", async () => {
    const r = await resolveTargets("empty.example", base);
    assert.equal(r.failureKind, "no-records");
    assert.equal(r.failure, "DNS: no SRV or A/AAAA records for empty.example");
    const v6 = await resolveTargets("empty.example", { ...base, ipVersions: [6] });
    assert.equal(v6.failure, "DNS: no SRV or AAAA records for empty.example");
  });

  it("says when the domain does not exist", async () => {
    const r = await resolveTargets("nowhere.example", base);
    assert.equal(r.failureKind, "no-records");
    assert.equal(r.failure, "DNS: nowhere.example does not exist (NXDOMAIN)");
    assert.deepEqual(r.targets, []);
  });
});

describe("resolveTargets: _xmpps-server (XEP-0368)", () => {
  it("mixes direct TLS and STARTTLS records in one RFC 2782 order", async () => {
    const r = await resolveTargets("both.example", base);
    assert.deepEqual(endpoints(r), ["192.0.2.30:5270 tls", "192.0.2.30:5269"]);
    assert.equal(r.targets[0]!.via, "SRV _xmpps-server._tcp.both.example → xmpp.both.example:5270 (A)");
  });

  it("asks only _xmpp-server when xmppsSrv is false", async () => {
    const before = asked("_xmpps-server._tcp.both.example").length;
    const r = await resolveTargets("both.example", { ...base, xmppsSrv: false });
    assert.deepEqual(endpoints(r), ["192.0.2.30:5269"]);
    assert.equal(asked("_xmpps-server._tcp.both.example").length, before);
  });

  it("with tls.mode = tls, asks only _xmpps-server and uses direct TLS everywhere", async () => {
    const before = asked("_xmpp-server._tcp.both.example").length;
    const r = await resolveTargets("both.example", { ...base, directTls: true });
    assert.deepEqual(endpoints(r), ["192.0.2.30:5270 tls"]);
    assert.equal(asked("_xmpp-server._tcp.both.example").length, before);

    // Without _xmpps-server records: A/AAAA of the domain on outgoing.port, still direct TLS.
    const fallback = await resolveTargets("starttls-only.example", { ...base, directTls: true, port: 5270 });
    assert.deepEqual(endpoints(fallback), ["192.0.2.51:5270 tls"]);
    const none = await resolveTargets("empty.example", { ...base, directTls: true });
    assert.equal(none.failure, "DNS: no _xmpps-server SRV or A/AAAA records for empty.example");
  });

  it("after an _xmpps-server '.', uses _xmpp-server records, never A/AAAA", async () => {
    const r = await resolveTargets("notls.example", base);
    assert.deepEqual(endpoints(r), ["192.0.2.40:5269"]);

    const only = await resolveTargets("onlydot.example", base);
    assert.equal(only.failureKind, "no-service");
    assert.equal(
      only.failure,
      "DNS: the _xmpps-server SRV record says onlydot.example offers no direct TLS ('.' target) " +
        "and there are no _xmpp-server records",
    );
    assert.ok(!dns.queries.includes("A onlydot.example"));

    const tls = await resolveTargets("notls.example", { ...base, directTls: true });
    assert.equal(tls.failureKind, "no-service");
    assert.equal(
      tls.failure,
      "DNS: the _xmpps-server SRV record says notls.example offers no direct TLS ('.' target), " +
        'which outgoing.tls.mode = "tls" needs',
    );
  });
});

describe("resolveTargets: DNS servers that fail", () => {
  it("times out after dns.retries tries of dns.timeout each", async () => {
    const silent = await startFakeDns({ silent: true });
    try {
      const started = performance.now();
      const r = await resolveTargets("x.example", { ...base, servers: [silent.address], timeoutMs: 100 });
      const elapsed = performance.now() - started;
      assert.equal(r.failureKind, "dns-error");
      assert.equal(
        r.failure,
        `DNS: timeout after 2 tries asking ${silent.address} (SRV _xmpps-server._tcp.x.example); ` +
          `timeout after 2 tries asking ${silent.address} (SRV _xmpp-server._tcp.x.example)`,
      );
      assert.equal(silent.queries.filter((q) => q === "SRV _xmpp-server._tcp.x.example").length, 2);
      assert.ok(!silent.queries.includes("A x.example"), "no A/AAAA guess after an SRV timeout");
      assert.ok(elapsed >= 190 && elapsed < 3000, `took ${elapsed} ms`);
    } finally {
      await silent.close();
    }
  });

  it("says when the server refuses connections", async () => {
    const closed = await closedPort();
    const r = await resolveTargets("x.example", {
      ...base,
      servers: [`127.0.0.1:${closed}`],
      xmppsSrv: false,
    });
    assert.equal(r.failureKind, "dns-error");
    assert.equal(
      r.failure,
      `DNS: connection refused by 127.0.0.1:${closed} (SRV _xmpp-server._tcp.x.example)`,
    );
  });

  it("rejects with the signal's reason when aborted", async () => {
    const silent = await startFakeDns({ silent: true });
    try {
      const controller = new AbortController();
      const started = performance.now();
      setTimeout(() => {
        controller.abort(new Error("queue stopped"));
      }, 30);
      await assert.rejects(
        resolveTargets("x.example", {
          ...base,
          servers: [silent.address],
          timeoutMs: 5000,
          signal: controller.signal,
        }),
        /queue stopped/,
      );
      assert.ok(performance.now() - started < 3000, "well before dns.timeout");
    } finally {
      await silent.close();
    }
  });
});

describe("resolveTargets: the shared resolver", () => {
  it("is one per (timeout, servers), made when the configuration is read", () => {
    const client = sharedDnsClient(base.timeoutMs, base.servers);
    assert.equal(sharedDnsClient(base.timeoutMs, [...(base.servers ?? [])]), client);
    assert.notEqual(sharedDnsClient(base.timeoutMs + 1, base.servers), client);
    assert.notEqual(sharedDnsClient(base.timeoutMs, ["127.0.0.1:1"]), client);
  });

  it("an abandoned resolution leaves the others on the same resolver running", async () => {
    const controller = new AbortController();
    const abandoned = resolveTargets("prio.example", { ...base, signal: controller.signal });
    const kept = resolveTargets("weights.example", base);
    controller.abort(new Error("queue stopped"));
    await assert.rejects(abandoned, /queue stopped/);
    assert.equal((await kept).targets.length, 2);
    assert.equal((await resolveTargets("prio.example", base)).targets.length, 3, "and later ones");
  });
});

describe("resolveTargets: injected resolver", () => {
  it("asks the given client and leaves it running", async () => {
    let cancelled = false;
    const client: DnsClient = {
      resolveSrv: (name) =>
        name === "_xmpp-server._tcp.inj.example"
          ? Promise.resolve([{ name: "srv.inj.example", port: 5280, priority: 1, weight: 0 }])
          : Promise.reject(Object.assign(new Error("nope"), { code: "ENOTFOUND" })),
      resolve4: () => Promise.resolve(["198.51.100.1"]),
      resolve6: () => Promise.reject(Object.assign(new Error("none"), { code: "ENODATA" })),
      getServers: () => [],
      cancel: () => {
        cancelled = true;
      },
    };
    const r = await resolveTargets("inj.example", { ...base, servers: undefined, resolver: client });
    assert.deepEqual(endpoints(r), ["198.51.100.1:5280"]);
    assert.equal(cancelled, false);
  });

  it("turns unusable servers into a DNS failure", async () => {
    const r = await resolveTargets("x.example", { ...base, servers: ["not an address"] });
    assert.equal(r.failureKind, "dns-error");
    assert.match(r.failure ?? "", /^DNS: unusable outgoing\.dns\.servers \["not an address"\]: /);
  });
});

describe("resolveOptionsFromConfig", () => {
  it("maps [s2s] outgoing, with dns.timeout in seconds and tls.mode = tls as direct TLS", () => {
    const { config } = loadConfigText(
      [
        "[general]",
        'hosts = ["localhost"]',
        "[s2s]",
        "outgoing.port = 5270",
        "outgoing.ip_versions = [6, 4]",
        "outgoing.dns.timeout = 3",
        "outgoing.dns.retries = 4",
        'outgoing.dns.servers = ["127.0.0.153:53"]',
        'outgoing.tls.mode = "tls"',
        "[[s2s.outgoing.address]]",
        'host = "fed.example"',
        'ip_address = "127.0.0.5"',
      ].join("\n"),
      "test.toml",
    );
    const o = resolveOptionsFromConfig(config.s2s.outgoing);
    assert.equal(o.port, 5270);
    assert.deepEqual(o.ipVersions, [6, 4]);
    assert.equal(o.timeoutMs, 3000);
    assert.equal(o.retries, 4);
    assert.deepEqual(o.servers, ["127.0.0.153:53"]);
    assert.equal(o.directTls, true);
    assert.deepEqual(
      o.overrides.map((a) => [a.host, a.ip_address, a.port]),
      [["fed.example", "127.0.0.5", undefined]],
    );
  });
});

/** A UDP port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) =>
    socket.close(() => {
      resolve();
    }),
  );
  return port;
}

describe("BoundedDnsClient (the shared resolver's limit on questions in flight)", () => {
  it("sends at most `limit` questions at once, the rest in the order asked, and answers all", async () => {
    let running = 0;
    let peak = 0;
    const sent: string[] = [];
    const pending: (() => void)[] = [];
    const inner: DnsClient = {
      resolveSrv: () => Promise.reject(new Error("unused")),
      resolve6: () => Promise.reject(new Error("unused")),
      resolve4: (name) => {
        sent.push(name);
        running++;
        peak = Math.max(peak, running);
        return new Promise<string[]>((answer) => {
          pending.push(() => {
            running--;
            answer([`127.0.0.${sent.indexOf(name) + 1}`]);
          });
        });
      },
      getServers: () => [],
      cancel: () => undefined,
    };
    const client = new BoundedDnsClient(inner, 3);
    const names = Array.from({ length: 10 }, (_, i) => `d${i}.example`);
    const answers = Promise.all(names.map((name) => client.resolve4(name)));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent, names.slice(0, 3), "three on the wire");
    assert.equal(client.queued, 7);
    while (sent.length < names.length || pending.length > 0) {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(sent, names, "the rest in the order asked");
    assert.equal(peak, 3);
    assert.deepEqual(
      (await answers).map((a) => a[0]),
      names.map((_, i) => `127.0.0.${i + 1}`),
    );
  });

  it("frees the slot of a question that failed", async () => {
    const inner: DnsClient = {
      resolveSrv: () => Promise.reject(Object.assign(new Error("nx"), { code: "ENOTFOUND" })),
      resolve4: () => Promise.resolve(["127.0.0.1"]),
      resolve6: () => Promise.reject(new Error("unused")),
      getServers: () => [],
      cancel: () => undefined,
    };
    const client = new BoundedDnsClient(inner, 1);
    await assert.rejects(client.resolveSrv("_xmpp-server._tcp.nx.example"), /nx/);
    assert.deepEqual(await client.resolve4("a.example"), ["127.0.0.1"]);
  });
});

/** A fake DNS server in another process, so that it answers while this one is blocked. */
async function dnsInChild(
  records: Record<string, FakeRecord[]>,
): Promise<{ address: string; kill: () => void }> {
  const server = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { startFakeDns } from ${JSON.stringify(new URL("./fakeDnsServer.js", import.meta.url).href)};
       const dns = await startFakeDns({ records: ${JSON.stringify(records)} });
       process.stdout.write(dns.address + "\\n");`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [line] = (await once(server.stdout, "data")) as [Buffer];
  return { address: line.toString().trim(), kill: () => server.kill() };
}

/** Keeps the event loop busy for `ms`. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe("ask: an answer that came while the event loop was stalled", () => {
  it("is taken, not reported as a timeout (the deadline lets waiting I/O settle first)", async () => {
    const dns = await dnsInChild({ "stall.example": [A("192.0.2.77")] });
    try {
      // c-ares is given 1 s, our deadline 100 ms.
      const client = createDnsClient(1000, [dns.address]);
      const answer = ask(client, { timeoutMs: 100, retries: 1 }, () => client.resolve4("stall.example"));
      // Blocked past the deadline: the answer is already in the socket when the loop runs again,
      // and the deadline's timer runs before it is read.
      stall(150);
      assert.deepEqual(await answer, { kind: "records", value: ["192.0.2.77"] });
    } finally {
      dns.kill();
    }
  });
});

/**
 * c-ares 1.32+ (Node 20.20 has 1.34) does not keep to the configured timeout once it has three
 * answers from a server: it waits 5 × that server's average latency, at least 250 ms and at most
 * 5 s, and Node checks c-ares' timeouts once a second. Against a DNS server on loopback, a question
 * fails after about a second whatever `dns.timeout` says.
 */
describe("ask: dns.timeout holds against c-ares' adaptive timeout", () => {
  const WARM = ["w1.example", "w2.example", "w3.example"];
  const warmRecords = Object.fromEntries(WARM.map((n) => [n, [A("192.0.2.9")]]));

  async function warm(client: DnsClient): Promise<void> {
    for (const name of WARM) assert.deepEqual(await client.resolve4(name), ["192.0.2.9"]);
  }

  it("waits dns.timeout for a recursive resolver, quick on average, that needs 1.8 s for one name", async () => {
    const dns = await startFakeDns({
      records: { ...warmRecords, "slow.example": [A("192.0.2.78")] },
      recursionMs: { "slow.example": 1800 },
    });
    try {
      const client = createDnsClient(4000, [dns.address]);
      await warm(client);
      const started = performance.now();
      const answer = await ask(client, { timeoutMs: 4000, retries: 1 }, () =>
        client.resolve4("slow.example"),
      );
      assert.deepEqual(answer, { kind: "records", value: ["192.0.2.78"] });
      assert.ok(performance.now() - started >= 1700, "answered once the recursion was done");
    } finally {
      await dns.close();
    }
  });

  it("takes an answer that came during a stall longer than c-ares' own timeout", async () => {
    const dns = await dnsInChild({ ...warmRecords, "stall2.example": [A("192.0.2.79")] });
    try {
      const client = createDnsClient(4000, [dns.address]);
      await warm(client);
      const answer = ask(client, { timeoutMs: 4000, retries: 1 }, () => client.resolve4("stall2.example"));
      // 2.2 s blocked: inside dns.timeout (4 s), past c-ares' own (at most 2 s here).
      stall(2200);
      assert.deepEqual(await answer, { kind: "records", value: ["192.0.2.79"] });
    } finally {
      dns.kill();
    }
  });
});
