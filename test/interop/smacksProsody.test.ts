/**
 * Issue 10, stream management on S2S against a real peer: Prosody 0.12 with `mod_smacks` offers
 * `urn:xmpp:sm:3` on an authenticated S2S stream (after SASL EXTERNAL's stream restart, so both
 * sides have certificates from one test CA). Ferry enables it and keeps what Prosody has not
 * acknowledged. Prosody is SIGKILLed with 5,000 stanzas queued and in flight: every stanza is
 * delivered or bounced to its sender, none lost; Prosody restarts and the link comes back alone.
 *
 * Addresses: Ferry 127.0.0.121, Prosody 127.0.0.122, private DNS 127.0.0.161.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { loadConfigText } from "../../src/config/load.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { connectComponent } from "../helpers/component.js";
import {
  captureLog,
  deliver,
  ferryConfig,
  type CapturedLog,
  type InteropSide,
} from "../helpers/federation.js";
import { interopRun } from "../helpers/interopRun.js";
import { makeCa, makeLeaf } from "../helpers/peers/certs.js";
import { startProsody, type ProsodyPeer } from "../helpers/peers/prosody.js";
import { Teardown, spawnPeer, waitForPort } from "../helpers/peers/runDir.js";
import type { WirePeer } from "../helpers/wire.js";

const SECRET = "interop-secret";
const TOTAL = 5000;
const ferry: InteropSide = { address: "127.0.0.121", domain: "smf.fedtest", component: "svc.smf.fedtest" };
const peer: InteropSide = { address: "127.0.0.122", domain: "smp.fedtest", component: "svc.smp.fedtest" };

const setup = interopRun({
  label: "smacks-prosody",
  dnsAddress: "127.0.0.161",
  packages: ["openssl", "dnsmasq-base", "prosody", "lua-unbound"],
  bySrv: [ferry, peer],
});

const ids = (text: string, pattern: RegExp): string[] => [...text.matchAll(pattern)].map((m) => m[1] ?? "");

describe("Ferry → Prosody with mod_smacks: XEP-0198 acks, Prosody killed mid-stream", () => {
  const local = new Teardown();
  let server: FerryServer;
  let log: CapturedLog;
  let prosody: ProsodyPeer;
  let atFerry: WirePeer;
  let atPeer: WirePeer;

  before(async () => {
    const ca = makeCa(setup.run(), "ca-smacks");
    const peerCert = makeLeaf(setup.run(), ca, [peer.domain, `*.${peer.domain}`]);
    const ferryCert = makeLeaf(setup.run(), ca, [ferry.domain, `*.${ferry.domain}`]);
    [prosody] = await local.startAll([
      startProsody({
        runDir: setup.run(),
        address: peer.address,
        domain: peer.domain,
        components: [{ domain: peer.component, secret: SECRET }],
        dnsResolvConf: setup.dns().resolvConf,
        tls: { cert: peerCert.cert, key: peerCert.key, ca: ca.cert },
        requireEncryption: true,
        secureAuth: true,
        modules: ["smacks"],
        logLevel: "debug",
      }),
    ]);
    const { config, componentPort } = await ferryConfig({
      address: ferry.address,
      domain: ferry.domain,
      secret: SECRET,
      dns: setup.dns().server,
      tls: { cert: ferryCert.cert, key: ferryCert.key },
      ca: ca.cert,
      clientCert: "domain",
    });
    log = captureLog("debug");
    server = await startServer(loadConfigText(config, "ferry.toml").config, log.logger);
    local.add(() => server.stop());
    atFerry = await connectComponent(componentPort, ferry.component, SECRET, "", ferry.address);
    local.add(() => {
      atFerry.destroy();
    });
    if (prosody.componentPort === undefined) throw new Error("Prosody has no component port");
    atPeer = await connectComponent(prosody.componentPort, peer.component, SECRET, "", peer.address);
  });
  after(() => local.run());

  /** A connection's admin fields, once `ready` holds (acks are enabled a round trip after the link). */
  async function fieldsOf(
    group: string,
    named: (name: string) => boolean,
    ready: (fields: Map<string, string>) => boolean,
  ): Promise<Map<string, string>> {
    const until = Date.now() + 5000;
    for (;;) {
      const entry = server.introspection.connections().find((c) => c.group === group && named(c.name));
      const fields = new Map(entry?.fields.map((f) => [f.var, f.values.join("; ")]));
      if ((entry !== undefined && ready(fields)) || Date.now() > until) {
        assert.ok(entry, log.lines().slice(-40).join("\n"));
        return fields;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("enables stream management on the link once Prosody offers it (after SASL EXTERNAL)", async () => {
    await deliver(atFerry, atPeer, `alice@${ferry.component}`, `bob@${peer.component}`);
    const fields = await fieldsOf(
      "established-outgoing",
      (name) => name === `${peer.component}/${ferry.component}`,
      (f) => f.get("stream-management")?.startsWith("on ") === true,
    );
    assert.equal(fields.get("authentication"), "SASL EXTERNAL");
    assert.match(fields.get("stream-management") ?? "", /^on \(XEP-0198\), \d+ unacknowledged$/);
    assert.ok(log.grep(/stream management \(XEP-0198\) enabled/).length > 0);
  });

  it("answers Prosody's <enable/> on its stream to Ferry, and acknowledges what it handled", async () => {
    await deliver(atPeer, atFerry, `bob@${peer.component}`, `alice@${ferry.component}`);
    const fields = await fieldsOf(
      "established-incoming",
      (name) => name.endsWith(`@${ferry.component}/${peer.component}`),
      (f) => f.get("stream-management") === "on (XEP-0198 acks)",
    );
    assert.equal(fields.get("stream-management"), "on (XEP-0198 acks)");
    assert.equal(fields.get("authentication"), "SASL EXTERNAL");
  });

  it("loses nothing when Prosody is SIGKILLed with 5,000 stanzas in flight, and reconnects alone", async (t) => {
    let batch = "";
    for (let i = 1; i <= TOTAL; i++)
      batch += `<message from='alice@${ferry.component}' to='bob@${peer.component}' id='k${i}'><body>${i}</body></message>`;
    atPeer.received = "";
    atFerry.received = "";
    atFerry.send(batch);
    await atPeer.waitFor(/id=['"]k500['"]/, 15_000);
    assert.ok(prosody.process.signal("SIGKILL"));
    await prosody.process.exited;
    const deadline = Date.now() + 30_000;
    let delivered: string[] = [];
    let bounced: string[] = [];
    while (Date.now() < deadline) {
      delivered = ids(atPeer.received, /<message [^>]*id=['"]k(\d+)['"]/g);
      bounced = ids(atFerry.received, /<message [^>]*id=['"]k(\d+)['"][^>]*type=['"]error['"]/g);
      if (new Set([...delivered, ...bounced]).size >= TOTAL) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const accounted = new Set([...delivered, ...bounced]);
    const lost = Array.from({ length: TOTAL }, (_, n) => String(n + 1)).filter((id) => !accounted.has(id));
    const both = delivered.filter((id) => bounced.includes(id)).length;
    t.diagnostic(
      `sent ${TOTAL}, delivered ${delivered.length}, bounced ${bounced.length}, both ${both}, lost ${lost.length}`,
    );
    assert.deepEqual(
      lost.slice(0, 20),
      [],
      `${lost.length} lost (delivered ${delivered.length}, bounced ${bounced.length})`,
    );
    assert.equal(new Set(delivered).size, delivered.length, "none delivered twice");
    assert.equal(new Set(bounced).size, bounced.length, "none bounced twice");
    assert.ok(bounced.length > 0, "the kill left stanzas to bounce");
    assert.match(
      atFerry.received,
      /<remote-server-(timeout|not-found) xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]\/>/,
    );

    // Prosody comes back (same config and data): the queue's retry finds it, no operator.
    atPeer.destroy();
    const again = spawnPeer({
      runDir: setup.run(),
      name: `prosody-${peer.domain}-again`,
      command: "prosody",
      args: ["--config", prosody.configFile, "-F"],
    });
    local.add(() => again.stop(8000));
    if (prosody.componentPort === undefined) throw new Error("Prosody has no component port");
    await waitForPort(peer.address, prosody.componentPort, 15_000, again);
    const bob = await connectComponent(prosody.componentPort, peer.component, SECRET, "", peer.address);
    local.add(() => {
      bob.destroy();
    });
    const until = Date.now() + 20_000;
    while (!/id=['"]back['"]/.test(bob.received)) {
      assert.ok(Date.now() < until, `the link did not come back:\n${log.lines().slice(-30).join("\n")}`);
      atFerry.send(
        `<message from='alice@${ferry.component}' to='bob@${peer.component}' id='back'><body>back</body></message>`,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  });
});
