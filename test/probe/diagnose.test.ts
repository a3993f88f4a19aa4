/**
 * POST /api/xmpp-s2s/diagnose and `ferry probe` against Ferry servers published in a test DNS
 * server: a domain where federation works; one whose certificate covers only its parent domain and
 * SRV target; an SRV record pointing at the client port; a name that does not exist; addresses
 * that do not answer; an expired certificate; a server without TLS, found without SRV records.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { runProbeCommand } from "../../src/probe/cli.js";
import { startFakeDns, type FakeDnsServer, type FakeRecord } from "../dns/fakeDnsServer.js";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, type IssuedCertificate } from "../helpers/testPki.js";
import { freePort } from "../helpers/wire.js";
import {
  ferryToml,
  startFerry,
  startProber,
  type Prober,
  type RunningFerry,
  negotiation,
} from "./probeFerry.js";

const DAY = 86_400_000;
const SECRET = "probe-test-secret";

interface Report {
  ok: boolean;
  dns: {
    srv: {
      service: string;
      status: string;
      records: { target: string; port: number; addresses: { ip: string; family: number }[] }[];
    }[];
    fallback?: { host: string; port: number; status: string };
  };
  addresses: {
    ip: string;
    family: number;
    port: number;
    answered: boolean;
    streamId?: string;
    features?: string[];
    featuresBeforeTls?: string[];
    code?: string;
    tls?: {
      version: string;
      cipher: string;
      certificate: { chain: string; verdicts: { name: string; covered: boolean; ok: boolean }[] };
    };
  }[];
  auth: { saslExternal: { status: string; detail: string }; dialback: { status: string; detail: string } };
  ping: { ok: boolean; rtt?: number; reply?: string; stanza?: string; skipped?: string };
  problems: { code: string; text: string }[];
  warnings: { code: string; text: string }[];
}

const srv = (target: string, port: number): FakeRecord[] => [
  { type: "SRV", priority: 0, weight: 0, port, target },
];
const a: FakeRecord[] = [{ type: "A", address: "127.0.0.1" }];

describe("diagnose", () => {
  let run: RunDir;
  let dns: FakeDnsServer;
  let prober: Prober;
  const targets: RunningFerry[] = [];
  let goodPort: number;
  let deadPort: number;
  let plainPort: number;
  let caFile: string;

  before(async () => {
    run = RunDir.create("probe-diagnose");
    const pki = new TestPki(run);
    const ca = pki.issue("ca", { ca: true, cn: "Probe Test CA" });
    caFile = ca.certFile;
    const leaf = (
      name: string,
      san: string[],
      extra: Parameters<TestPki["issue"]>[1] = {},
    ): IssuedCertificate =>
      pki.issue(name, {
        issuer: ca,
        san: san.map((n) => `DNS:${n}`),
        eku: "serverAuth,clientAuth",
        ...extra,
      });
    const good = leaf("good", ["good.example", "xmpp.good.example"]);
    const expired = leaf("expired", ["expired.example"], {
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - 2 * DAY),
    });
    goodPort = await freePort();
    deadPort = await freePort();
    plainPort = await freePort();
    const [expiredPort, proberPort] = [await freePort(), await freePort()];
    dns = await startFakeDns({
      servfail: ["_xmpp-server._tcp.flaky.example", "_xmpps-server._tcp.flaky.example"],
      records: {
        "_xmpp-server._tcp.good.example": srv("xmpp.good.example", goodPort),
        "_xmpp-server._tcp.conference.good.example": srv("xmpp.good.example", goodPort),
        "xmpp.good.example": a,
        "_xmpp-server._tcp.c2s.example": srv("xmpp.good.example", 5222),
        "_xmpp-server._tcp.expired.example": srv("xmpp.expired.example", expiredPort),
        "xmpp.expired.example": a,
        "_xmpp-server._tcp.dead.example": srv("xmpp.dead.example", deadPort),
        "xmpp.dead.example": a,
        "plain.example": a,
      },
    });
    // The prober finds the targets through DNS (as it verifies their dialback keys on their reply
    // links); the targets find prober.example through outgoing.address.
    const prober_ = `127.0.0.1:${proberPort}`;
    prober = await startProber({
      hosts: ["prober.example"],
      port: proberPort,
      ca: caFile,
      dnsServers: [dns.address],
      shared: SECRET,
      s2sExtra: `outgoing.port = ${plainPort}`,
    });
    const routes = { "prober.example": prober_ };
    targets.push(
      await startFerry({
        hosts: ["good.example", "conference.good.example"],
        port: goodPort,
        cert: good,
        routes,
      }),
      await startFerry({ hosts: ["expired.example"], port: expiredPort, cert: expired, routes }),
      await startFerry({ hosts: ["plain.example"], port: plainPort, routes }),
    );
  });

  after(async () => {
    await Promise.all([prober, ...targets].map((f) => f.stop()));
    await dns.close();
    run.remove();
  });

  const diagnose = async (body: Record<string, unknown>): Promise<Report> => {
    const { status, json } = await prober.post("/api/xmpp-s2s/diagnose", { timeout: 5000, ...body });
    assert.equal(status, 200, JSON.stringify(json));
    return json as unknown as Report;
  };
  const codes = (list: { code: string }[]): string[] => list.map((f) => f.code);

  it("a working domain: SRV, the address, TLS and certificate, dialback, ping; no problems", async () => {
    const report = await diagnose({ domain: "good.example" });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.deepEqual(report.problems, []);
    const plain = report.dns.srv.find((s) => s.service === "_xmpp-server");
    assert.deepEqual(plain?.records, [
      {
        target: "xmpp.good.example",
        port: goodPort,
        priority: 0,
        weight: 0,
        addresses: [{ ip: "127.0.0.1", family: 4 }],
      },
    ]);
    assert.equal(report.dns.srv.find((s) => s.service === "_xmpps-server")?.status, "none");
    const [address] = report.addresses;
    assert.ok(address?.tls);
    assert.equal(address.answered, true);
    assert.equal(address.family, 4);
    assert.match(String(address.streamId), /^[0-9a-f]{32}$/);
    assert.deepEqual(negotiation(address.featuresBeforeTls), ["STARTTLS", "DIALBACK"]);
    assert.deepEqual(negotiation(address.features), ["DIALBACK"]);
    assert.match(address.tls.version, /^TLSv1\.[23]$/);
    assert.equal(address.tls.certificate.chain, "ok");
    assert.deepEqual(address.tls.certificate.verdicts, [
      { name: "good.example", covered: true, ok: true },
      { name: "xmpp.good.example", covered: true, ok: true },
    ]);
    assert.equal(report.auth.dialback.status, "works");
    assert.equal(report.auth.saslExternal.status, "no-certificate");
    assert.equal(report.ping.ok, true);
    assert.equal(report.ping.reply, "result");
    assert.match(String(report.ping.stanza), /from='good\.example'/);
  });

  it("a certificate that covers the parent domain and the SRV target, not the domain", async () => {
    const report = await diagnose({ domain: "conference.good.example" });
    assert.equal(report.ok, false);
    const problem = report.problems.find((p) => p.code === "cert_name_mismatch");
    assert.equal(
      problem?.text,
      "the certificate does not cover conference.good.example (it names good.example, xmpp.good.example); " +
        "covering the SRV target xmpp.good.example is not enough: XMPP servers check the domain itself",
    );
    // Dialback still works: the certificate is the only problem.
    assert.equal(report.auth.dialback.status, "works");
    assert.deepEqual(codes(report.problems), ["cert_name_mismatch"]);
  });

  it("an SRV record pointing at the client port", async () => {
    const report = await diagnose({ domain: "c2s.example" });
    assert.equal(report.ok, false);
    const problem = report.problems.find((p) => p.code === "srv_client_port");
    assert.match(
      String(problem?.text),
      /^SRV _xmpp-server\._tcp\.c2s\.example points at port 5222, the client port/,
    );
  });

  it("a name that does not exist", async () => {
    const report = await diagnose({ domain: "missing.example" });
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems, [
      { code: "dns_nxdomain", text: "missing.example does not exist in DNS (NXDOMAIN)" },
    ]);
    assert.deepEqual(report.addresses, []);
    assert.equal(report.auth.dialback.status, "not-tried");
  });

  it("DNS failing for the SRV questions: no guess at A/AAAA, a problem", async () => {
    const report = await diagnose({ domain: "flaky.example" });
    assert.equal(report.ok, false);
    assert.deepEqual(codes(report.problems), ["dns_error"]);
    assert.match(
      report.problems[0]?.text ?? "",
      /DNS could not answer _xmpps-server\._tcp\.flaky\.example and _xmpp-server\._tcp\.flaky\.example/,
    );
    assert.deepEqual(report.addresses, []);
  });

  it("no address answered", async () => {
    const report = await diagnose({ domain: "dead.example" });
    assert.equal(report.ok, false);
    const [address] = report.addresses;
    assert.ok(address);
    assert.equal(address.answered, false);
    assert.equal(address.code, "tcp_refused");
    const problem = report.problems.find((p) => p.code === "no_address_answered");
    assert.match(
      String(problem?.text),
      new RegExp(`^no address of dead\\.example answered: 127\\.0\\.0\\.1:${deadPort}: .*refused`),
    );
    assert.ok(codes(report.warnings).includes("address_failed"));
  });

  it("an expired certificate", async () => {
    const report = await diagnose({ domain: "expired.example" });
    assert.equal(report.ok, false);
    const problem = report.problems.find((p) => p.code === "cert_expired");
    assert.match(String(problem?.text), /^the certificate of expired\.example expired on \d{4}-\d\d-\d\d$/);
  });

  it("no SRV records: the domain's own address on the default port; no TLS is a warning, or a problem when required", async () => {
    const report = await diagnose({ domain: "plain.example" });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.dns.fallback?.status, "records");
    assert.ok(codes(report.warnings).includes("tls_not_offered"));
    assert.equal(report.ping.ok, true);
    const strict = await diagnose({ domain: "plain.example", requireTls: true });
    assert.equal(strict.ok, false);
    assert.deepEqual(codes(strict.problems), ["tls_required"]);
  });

  describe("ferry probe", () => {
    let config: string;
    let noSecret: string;

    before(() => {
      config = run.file("probe.toml");
      noSecret = run.file("probe-no-secret.toml");
      const toml = ferryToml({
        hosts: ["prober.example"],
        ca: caFile,
        dnsServers: [dns.address],
        shared: SECRET,
        s2sExtra: `outgoing.port = ${plainPort}`,
      });
      writeFileSync(config, toml);
      writeFileSync(noSecret, toml.replace(/^shared = .*$/m, ""));
    });

    const probe = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = "";
      let err = "";
      const sink = (write: (s: string) => void) =>
        new Writable({
          write(chunk: Buffer | string, _encoding, done) {
            write(chunk.toString());
            done();
          },
        });
      const code = await runProbeCommand(args, {
        stdout: sink((s) => (out += s)),
        stderr: sink((s) => (err += s)),
      });
      return { code, out, err };
    };

    it("exit 0 and a readable report when federation would work", async () => {
      const { code, out } = await probe(["good.example", "--config", config, "--timeout", "5000"]);
      assert.equal(code, 0, out);
      assert.match(out, /^Federation with good\.example \(as prober\.example\): would work\n/);
      assert.match(
        out,
        /_xmpp-server\._tcp\.good\.example: xmpp\.good\.example:\d+ \(priority 0, weight 0\) -> 127\.0\.0\.1/,
      );
      assert.match(out, /TLS: TLSv1\.[23] TLS_\S+ \(STARTTLS\)/);
      // The running prober serves prober.example with the same secret, but confirms only the keys it
      // sent itself: from the command line, dialback cannot be checked (and is said so).
      assert.match(out, /dialback: could not be checked .*confirms only keys it sent itself/);
      assert.match(out, /Ping: not sent: from the command line/);
    });

    it("explains a broken certificate in plain words, exit 1", async () => {
      const { code, out } = await probe(["conference.good.example", "--config", config]);
      assert.equal(code, 1);
      assert.match(out, /would NOT work/);
      assert.match(
        out,
        /Problems\n {2}- the certificate does not cover conference\.good\.example \(it names good\.example, xmpp\.good\.example\)/,
      );
    });

    it("explains a wrong SRV record, exit 1", async () => {
      const { code, out } = await probe(["c2s.example", "--config", config, "--timeout", "2000"]);
      assert.equal(code, 1);
      assert.match(out, /SRV _xmpp-server\._tcp\.c2s\.example points at port 5222, the client port/);
    });

    it("--json prints the diagnosis; --tls makes a server without TLS a problem", async () => {
      const { code, out } = await probe(["plain.example", "--config", config, "--json", "--tls"]);
      assert.equal(code, 1);
      const report = JSON.parse(out) as Report;
      assert.equal(report.ok, false);
      assert.deepEqual(codes(report.problems), ["tls_required"]);
    });

    it("says plainly when dialback cannot be checked from the command line", async () => {
      const { code, out } = await probe(["good.example", "--config", noSecret]);
      assert.equal(code, 0, out);
      assert.match(
        out,
        /dialback: could not be checked \(good\.example checks a dialback key by asking the server of prober\.example/,
      );
    });

    it("bad usage: exit 2 with the usage", async () => {
      for (const args of [
        [],
        ["a.example", "b.example"],
        ["a.example", "--frob"],
        ["not a domain"],
        ["a.example", "--timeout", "5"],
      ]) {
        const { code, err } = await probe(args);
        assert.equal(code, 2, args.join(" "));
        assert.match(err, /usage: ferry probe DOMAIN/);
      }
    });

    it("a configuration that cannot be loaded: exit 1 with the reason", async () => {
      const { code, err } = await probe(["good.example", "--config", run.file("nothing.toml")]);
      assert.equal(code, 1);
      assert.match(err, /cannot read the file/);
    });
  });
});
