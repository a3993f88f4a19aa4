/**
 * The S2S probe API against real peers on loopback: Prosody 0.12 and ejabberd 23.01, each plain and
 * with STARTTLS required. Seed 002's request bodies (pointed at the peers' domains, which the private
 * DNS server resolves) must return success with the peers' own stream ids and features; ping must
 * authenticate with dialback (the peer verifies the key with Ferry's s2s listener) and get the
 * peer's iq result, which comes back over the peer's own connection; diagnose must find nothing wrong.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { interopRun, srvTarget } from "../helpers/interopRun.js";
import { makeCa, makeLeaf } from "../helpers/peers/certs.js";
import { startEjabberd } from "../helpers/peers/ejabberd.js";
import { startProsody } from "../helpers/peers/prosody.js";
import { Teardown, type Stoppable } from "../helpers/peers/runDir.js";
import { startProber, type Prober } from "../probe/probeFerry.js";

const SECRET = "probe-interop-secret";
const FERRY = { address: "127.0.0.75", domain: "probe.fedtest", component: "svc.probe.fedtest" };

interface Peer {
  name: string;
  kind: "prosody" | "ejabberd";
  tls: boolean;
  address: string;
  domain: string;
  component: string;
}

const PEERS: Peer[] = [
  {
    name: "Prosody 0.12, plain",
    kind: "prosody",
    tls: false,
    address: "127.0.0.71",
    domain: "pp.fedtest",
    component: "svc.pp.fedtest",
  },
  {
    name: "Prosody 0.12, STARTTLS required",
    kind: "prosody",
    tls: true,
    address: "127.0.0.72",
    domain: "tpp.fedtest",
    component: "svc.tpp.fedtest",
  },
  {
    name: "ejabberd 23.01, plain",
    kind: "ejabberd",
    tls: false,
    address: "127.0.0.73",
    domain: "pe.fedtest",
    component: "svc.pe.fedtest",
  },
  {
    name: "ejabberd 23.01, STARTTLS required",
    kind: "ejabberd",
    tls: true,
    address: "127.0.0.74",
    domain: "tpe.fedtest",
    component: "svc.tpe.fedtest",
  },
];

// Ferry's domain by SRV (Prosody resolves it so; ejabberd reads the target from its hosts file);
// the peers' domains by A records, which is how Ferry's probe finds them.
const setup = interopRun({
  label: "probe-peers",
  dnsAddress: "127.0.0.158",
  packages: ["openssl", "dnsmasq-base", "prosody", "lua-unbound", "ejabberd"],
  bySrv: [FERRY],
  byA: PEERS,
});

describe("S2S probe against Prosody and ejabberd", () => {
  const teardown = new Teardown();
  let prober: Prober;

  before(async () => {
    const run = setup.run();
    const ca = makeCa(run, "probe-ca");
    const certOf = (domain: string) => makeLeaf(run, ca, [domain, `*.${domain}`], `probe-${domain}`);
    const ferryCert = certOf(FERRY.domain);
    const dns = setup.dns();
    await teardown.startAll(
      PEERS.map((peer): Promise<Stoppable> => {
        const tls = peer.tls ? { cert: certOf(peer.domain).cert, key: certOf(peer.domain).key } : undefined;
        return peer.kind === "prosody"
          ? startProsody({
              runDir: run,
              address: peer.address,
              domain: peer.domain,
              dnsResolvConf: dns.resolvConf,
              tls,
              requireEncryption: peer.tls,
            })
          : startEjabberd({
              runDir: run,
              address: peer.address,
              domain: peer.domain,
              dnsResolvConf: dns.resolvConf,
              tls,
              starttls: peer.tls ? "required" : "false",
              hosts: { [srvTarget(FERRY.domain)]: FERRY.address, [FERRY.domain]: FERRY.address },
            });
      }),
    );
    // Ferry offers STARTTLS (the peers requiring TLS connect back to it) and trusts the test CA, so
    // the peers' certificates verify in diagnose.
    prober = await startProber({
      hosts: [FERRY.domain],
      address: FERRY.address,
      port: 5269,
      cert: { certFile: ferryCert.cert, keyFile: ferryCert.key },
      ca: ca.cert,
      dnsServers: [dns.server],
      shared: SECRET,
    });
    teardown.add(() => prober.stop());
  });

  after(() => teardown.run());

  for (const peer of PEERS) {
    describe(peer.name, () => {
      // Seed 002's Connect/Ping Request, pointed at the peer.
      const body = {
        host: peer.domain,
        port: 5269,
        fromDomain: FERRY.domain,
        toDomain: peer.domain,
        useTLS: peer.tls,
        timeout: 15000,
      };

      it("connect: success, the peer's own stream ids, its features", async () => {
        const first = await prober.post("/api/xmpp-s2s/connect", body);
        assert.equal(first.status, 200);
        assert.equal(first.json.success, true, JSON.stringify(first.json));
        assert.equal(first.json.address, `${peer.address}:5269`);
        const features = first.json.features as string[];
        assert.ok(features.includes("DIALBACK"), features.join(", "));
        if (peer.tls) {
          assert.ok((first.json.featuresBeforeTls as string[]).includes("STARTTLS"));
          assert.ok(!features.includes("STARTTLS"), "the protected stream's features");
          assert.match((first.json.tls as { version: string }).version, /^TLSv1\.[23]$/);
        } else {
          assert.equal(first.json.tls, undefined);
        }
        // By address rather than name this time: another stream, another id.
        const second = await prober.post("/api/xmpp-s2s/connect", { ...body, host: peer.address });
        assert.equal(second.json.success, true, JSON.stringify(second.json));
        // The peers' own formats: Prosody draws UUIDs, ejabberd 64-bit decimal numbers.
        const format =
          peer.kind === "prosody"
            ? /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
            : /^\d{6,20}$/;
        for (const id of [first.json.streamId, second.json.streamId]) assert.match(String(id), format);
        assert.notEqual(first.json.streamId, second.json.streamId);
      });

      it("ping: dialback, then the peer's iq result", async () => {
        const { json } = await prober.post("/api/xmpp-s2s/ping", body);
        assert.equal(json.success, true, JSON.stringify(json));
        assert.equal(json.auth, "dialback");
        assert.equal(json.reply, "result");
        const stanza = (json.stanzas as string[])[0] ?? "";
        assert.match(stanza, /^<iq /);
        assert.match(stanza, /type='result'/);
        assert.match(stanza, new RegExp(`from='${peer.domain.replace(/\./g, "\\.")}'`));
        assert.match(stanza, /to='probe\.fedtest'/);
        const timings = json.timings as Record<string, number>;
        for (const phase of ["dns", "tcp", "stream", "auth", "ping"])
          assert.equal(typeof timings[phase], "number", phase);
      });

      it("diagnose: federation would work", async () => {
        const { json } = await prober.post("/api/xmpp-s2s/diagnose", { domain: peer.domain, timeout: 15000 });
        const report = json as {
          ok: boolean;
          problems: unknown[];
          auth: { dialback: { status: string } };
          ping: { ok: boolean };
          addresses: { answered: boolean; tls?: { certificate: { verdicts: { ok: boolean }[] } } }[];
        };
        assert.equal(report.ok, true, JSON.stringify(report, null, 2));
        assert.deepEqual(report.problems, []);
        assert.equal(report.auth.dialback.status, "works");
        assert.equal(report.ping.ok, true);
        const [address] = report.addresses;
        assert.ok(address);
        assert.equal(address.answered, true);
        if (peer.tls) assert.equal(address.tls?.certificate.verdicts[0]?.ok, true);
      });
    });
  }
});
