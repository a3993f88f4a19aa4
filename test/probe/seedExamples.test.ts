/**
 * Seed 002's example request bodies, unchanged, against Ferry servers: a test DNS server makes the
 * seed's names (jabber.org, localhost) point at a Ferry hosting jabber.org and localhost on
 * 127.0.0.76:5269, and the prober, serving example.com, listens on 127.0.0.77:5269.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFakeDns, type FakeDnsServer } from "../dns/fakeDnsServer.js";
import { RunDir, assertFree } from "../helpers/peers/runDir.js";
import { TestPki } from "../helpers/testPki.js";
import { startFerry, startProber, negotiation, type Prober, type RunningFerry } from "./probeFerry.js";

const TARGET = "127.0.0.76";
const PROBER = "127.0.0.77";

// Verbatim from seed 002 ("Connect Request", "Ping Request", the two cURL examples).
const CONNECT_REQUEST = `{
  "host": "jabber.org",
  "port": 5269,
  "fromDomain": "example.com",
  "toDomain": "jabber.org",
  "useTLS": true,
  "timeout": 15000
}`;
const PING_REQUEST = CONNECT_REQUEST;
const CURL_CONNECT = `{
    "host": "jabber.org",
    "fromDomain": "example.com",
    "useTLS": true
  }`;
const CURL_PROSODY = `{
    "host": "localhost",
    "fromDomain": "test.local",
    "useTLS": false
  }`;

describe("seed 002's example requests", () => {
  let run: RunDir;
  let dns: FakeDnsServer;
  let prober: Prober;
  let target: RunningFerry;

  before(async () => {
    await assertFree(TARGET, 5269);
    await assertFree(PROBER, 5269);
    run = RunDir.create("probe-seed");
    const pki = new TestPki(run);
    const ca = pki.issue("ca", { ca: true, cn: "Probe Test CA" });
    const cert = (name: string) =>
      pki.issue(name, { issuer: ca, san: [`DNS:${name}`], eku: "serverAuth,clientAuth" });
    dns = await startFakeDns({
      records: {
        "jabber.org": [{ type: "A", address: TARGET }],
        localhost: [{ type: "A", address: TARGET }],
        "example.com": [{ type: "A", address: PROBER }],
      },
    });
    prober = await startProber({
      hosts: ["example.com"],
      address: PROBER,
      port: 5269,
      cert: cert("example.com"),
      clientCert: true,
      ca: ca.certFile,
      dnsServers: [dns.address],
    });
    target = await startFerry({
      hosts: ["jabber.org", "localhost"],
      address: TARGET,
      port: 5269,
      cert: cert("jabber.org"),
      clientCert: true,
      ca: ca.certFile,
      dnsServers: [dns.address],
    });
  });

  after(async () => {
    await Promise.all([prober.stop(), target.stop(), dns.close()]);
    run.remove();
  });

  it("the Connect Request: success, the server's stream id, the protected stream's features", async () => {
    const { status, json } = await prober.post("/api/xmpp-s2s/connect", CONNECT_REQUEST);
    assert.equal(status, 200);
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.host, "jabber.org");
    assert.equal(json.port, 5269);
    assert.match(String(json.streamId), /^[0-9a-f]{32}$/);
    assert.deepEqual(negotiation(json.features), ["SASL-EXTERNAL", "DIALBACK"]);
    assert.equal(typeof json.rtt, "number");
  });

  it("the Ping Request: success and the iq result", async () => {
    const { json } = await prober.post("/api/xmpp-s2s/ping", PING_REQUEST);
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.host, "jabber.org");
    assert.equal(json.port, 5269);
    assert.match(String(json.streamId), /^[0-9a-f]{32}$/);
    assert.ok(Array.isArray(json.features));
    const stanzas = json.stanzas as string[];
    assert.match(
      stanzas[0]!,
      /^<iq type='result' id='probe-[0-9a-f]{24}' from='jabber\.org' to='example\.com'\/>$/,
    );
    assert.equal(typeof json.rtt, "number");
  });

  it("the cURL example (toDomain and port default to the host and 5269)", async () => {
    const { json } = await prober.post("/api/xmpp-s2s/connect", CURL_CONNECT);
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.port, 5269);
    assert.deepEqual(negotiation(json.featuresBeforeTls), ["STARTTLS", "DIALBACK"]);
  });

  it("the 'Local Testing with Prosody' cURL example, here against Ferry", async () => {
    const { json } = await prober.post("/api/xmpp-s2s/connect", CURL_PROSODY);
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.host, "localhost");
    assert.deepEqual(negotiation(json.features), ["STARTTLS", "DIALBACK"]);
    assert.equal(json.tls, undefined);
  });
});
