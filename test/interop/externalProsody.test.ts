/**
 * Ferry ↔ Prosody 0.12 with certificates (issue 5): with a test CA both trust (and Prosody's
 * `s2s_secure_auth`), SASL EXTERNAL (XEP-0178) authenticates both directions, as both servers' logs
 * and Ferry's connection state show; with two CAs neither trusts the other's, dialback over TLS does,
 * and Ferry keeps the verdict (`untrusted-chain`) on the connection.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { loadConfigText } from "../../src/config/load.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { connectComponent } from "../helpers/component.js";
import {
  captureLog,
  deliver,
  ferryConfig,
  incomingStreams,
  outgoingLink,
  waitForLogLine,
  type CapturedLog,
  type InteropSide,
} from "../helpers/federation.js";
import { interopRun } from "../helpers/interopRun.js";
import { makeCa, makeLeaf } from "../helpers/peers/certs.js";
import { startProsody, type ProsodyPeer } from "../helpers/peers/prosody.js";
import { Teardown } from "../helpers/peers/runDir.js";
import type { WirePeer } from "../helpers/wire.js";

const SECRET = "interop-secret";

interface Pair {
  ferry: InteropSide;
  peer: InteropSide;
}

const TRUSTED: Pair = {
  ferry: { address: "127.0.0.41", domain: "xpf.fedtest", component: "svc.xpf.fedtest" },
  peer: { address: "127.0.0.42", domain: "xpp.fedtest", component: "svc.xpp.fedtest" },
};
const UNTRUSTED: Pair = {
  ferry: { address: "127.0.0.43", domain: "upf.fedtest", component: "svc.upf.fedtest" },
  peer: { address: "127.0.0.44", domain: "upp.fedtest", component: "svc.upp.fedtest" },
};

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const setup = interopRun({
  label: "external-prosody",
  dnsAddress: "127.0.0.156",
  packages: ["openssl", "dnsmasq-base", "prosody", "lua-unbound"],
  bySrv: [TRUSTED, UNTRUSTED].flatMap((n) => [n.ferry, n.peer]),
});

interface Running {
  server: FerryServer;
  log: CapturedLog;
  prosody: ProsodyPeer;
  atFerry: WirePeer;
  atPeer: WirePeer;
}

/**
 * Prosody and Ferry for `pair`, each with a certificate for its domain and `*.domain` (the
 * components are subdomains). `sharedCa`: both certificates from one CA that both trust; else each
 * from its own CA, and each server trusts only its own.
 */
async function startPair(pair: Pair, sharedCa: boolean, local: Teardown): Promise<Running> {
  const { ferry, peer } = pair;
  const ferryCa = makeCa(setup.run(), `ca-${ferry.domain}`);
  const peerCa = sharedCa ? ferryCa : makeCa(setup.run(), `ca-${peer.domain}`);
  const peerCert = makeLeaf(setup.run(), peerCa, [peer.domain, `*.${peer.domain}`]);
  const ferryCert = makeLeaf(setup.run(), ferryCa, [ferry.domain, `*.${ferry.domain}`]);
  const [prosody] = await local.startAll([
    startProsody({
      runDir: setup.run(),
      address: peer.address,
      domain: peer.domain,
      components: [{ domain: peer.component, secret: SECRET }],
      dnsResolvConf: setup.dns().resolvConf,
      tls: { cert: peerCert.cert, key: peerCert.key, ca: peerCa.cert },
      requireEncryption: true,
      secureAuth: sharedCa,
      logLevel: "debug",
    }),
  ]);
  const { config, componentPort } = await ferryConfig({
    address: ferry.address,
    domain: ferry.domain,
    secret: SECRET,
    dns: setup.dns().server,
    tls: { cert: ferryCert.cert, key: ferryCert.key },
    ca: ferryCa.cert,
    clientCert: "domain",
  });
  const log = captureLog("debug");
  const server = await startServer(loadConfigText(config, "ferry.toml").config, log.logger);
  // Kept beside the peers' logs (FERRY_KEEP_RUN keeps the run folder).
  local.add(() => {
    writeFileSync(setup.run().file(`ferry-${ferry.domain}.log`), log.lines().join("\n") + "\n");
  });
  local.add(() => server.stop());
  const atFerry = await connectComponent(componentPort, ferry.component, SECRET, "", ferry.address);
  local.add(() => {
    atFerry.destroy();
  });
  if (prosody.componentPort === undefined) throw new Error("Prosody has no component port");
  const atPeer = await connectComponent(prosody.componentPort, peer.component, SECRET, "", peer.address);
  local.add(() => {
    atPeer.destroy();
  });
  return { server, log, prosody, atFerry, atPeer };
}

const prosodyLog = (p: ProsodyPeer): string => readFileSync(p.logFile, "utf8");

const waitForProsodyLog = (p: ProsodyPeer, pattern: RegExp): Promise<string> =>
  waitForLogLine(p.logFile, pattern);

/** The tail of Ferry's log, for failure messages. */
const tail = (log: CapturedLog): string => log.lines().slice(-60).join("\n");

describe("Ferry ↔ Prosody, one CA trusted by both: SASL EXTERNAL both ways", () => {
  const local = new Teardown();
  let r: Running;
  const { ferry, peer } = TRUSTED;

  before(async () => {
    r = await startPair(TRUSTED, true, local);
  });
  after(() => local.run());

  it("Ferry → Prosody authenticates with SASL EXTERNAL", async () => {
    await deliver(r.atFerry, r.atPeer, `alice@${ferry.component}`, `bob@${peer.component}`);
    const link = outgoingLink(r.server, ferry.component, peer.component);
    assert.ok(link, `no live link ${ferry.component} → ${peer.component}\n${tail(r.log)}`);
    assert.equal(link.auth, "external", tail(r.log));
    assert.equal(link.tls, "starttls");
    assert.equal(link.certificate?.ok, true, JSON.stringify(link.certificate));
    // Prosody (s2s_secure_auth = true) verified Ferry's certificate and accepted it for Ferry's
    // component domain. (Ferry's own log does not name the mechanism of an outgoing stream.)
    await waitForProsodyLog(r.prosody, / s2sin\S+\tdebug\tcertificate chain validation result: valid/);
    await waitForProsodyLog(
      r.prosody,
      new RegExp(
        ` ${escape(peer.component)}:saslauth\\tinfo\\tAccepting SASL EXTERNAL identity from ${escape(ferry.component)}$`,
      ),
    );
  });

  // Issue 5: EXTERNAL visible in both servers' logs. Ferry logs the link with its mechanism at info
  // level, and its connection's states (saslStarted, saslSucceeded) at debug.
  it("Ferry's own log names SASL EXTERNAL for its outgoing link", () => {
    const actor = escape(`out:${ferry.component}:${peer.component}`);
    assert.ok(
      r.log.grep(new RegExp(` XMPPO ${actor} .*up: SASL EXTERNAL, TLS \\(starttls\\)`)).length > 0,
      `Ferry's lines for the link:\n${r.log.grep(new RegExp(actor)).join("\n")}`,
    );
  });

  it("Prosody → Ferry authenticates with SASL EXTERNAL (no dialback verification)", async () => {
    await deliver(r.atPeer, r.atFerry, `bob@${peer.component}`, `alice@${ferry.component}`);
    // Prosody's own word: its outgoing stream to Ferry's component domain used EXTERNAL.
    await waitForProsodyLog(
      r.prosody,
      new RegExp(
        ` ${escape(peer.component)}:saslauth\\tdebug\\tSASL EXTERNAL with ${escape(ferry.component)} succeeded$`,
      ),
    );
    // Ferry's incoming stream: certificate verified for Prosody's domain, authorized by SASL.
    const streams = incomingStreams(r.server).filter((s) => s.remoteDomain === peer.component);
    assert.ok(streams.length > 0, `no incoming stream from ${peer.component}\n${tail(r.log)}`);
    for (const s of streams) {
      assert.equal(s.certificate?.ok, true, JSON.stringify(s.certificate));
      assert.ok(s.authorized.includes(`${peer.component} ${ferry.component}`), JSON.stringify(s));
    }
    assert.ok(
      r.log.grep(/ XMPPI in:\S+ .*state connecting\.awaitingAuth -> connecting\.saslRestart$/).length > 0,
      `no incoming stream went through SASL EXTERNAL:\n${tail(r.log)}`,
    );
    assert.deepEqual(r.log.grep(/ verify:/), [], "no dialback verification was started");
    assert.deepEqual(r.log.grep(/dialback \S+ → \S+: /), [], "nothing was authorized by dialback");
  });

  it("Prosody's server answers an iq ping from Ferry's side, both new links over EXTERNAL", async () => {
    r.atFerry.send(
      `<iq type='get' id='ping1' from='${ferry.component}' to='${peer.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`,
    );
    const got = await r.atFerry.waitFor(/<iq [^>]*id=['"]ping1['"][^>]*\/?>/, 15_000);
    assert.match(got, /<iq [^>]*type=['"]result['"]/);
    // Ferry's component → Prosody's host, and Prosody's host → Ferry's component.
    assert.equal(outgoingLink(r.server, ferry.component, peer.domain)?.auth, "external", tail(r.log));
    await waitForProsodyLog(
      r.prosody,
      new RegExp(
        ` ${escape(peer.domain)}:saslauth\\tdebug\\tSASL EXTERNAL with ${escape(ferry.component)} succeeded$`,
      ),
    );
    assert.deepEqual(r.log.grep(/ verify:/), [], "no dialback verification was started");
    assert.deepEqual(r.log.grep(/dialback \S+ → \S+: /), [], "nothing was authorized by dialback");
    assert.doesNotMatch(prosodyLog(r.prosody), /SASL EXTERNAL with \S+ failed/);
  });
});

describe("Ferry ↔ Prosody, each trusting only its own CA: dialback over TLS", () => {
  const local = new Teardown();
  let r: Running;
  const { ferry, peer } = UNTRUSTED;

  before(async () => {
    r = await startPair(UNTRUSTED, false, local);
  });
  after(() => local.run());

  it("Ferry → Prosody falls back to dialback, keeping the verdict untrusted-chain", async () => {
    await deliver(r.atFerry, r.atPeer, `alice@${ferry.component}`, `bob@${peer.component}`);
    const link = outgoingLink(r.server, ferry.component, peer.component);
    assert.ok(link, `no live link ${ferry.component} → ${peer.component}\n${tail(r.log)}`);
    assert.equal(link.auth, "dialback", tail(r.log));
    assert.equal(link.tls, "starttls");
    assert.equal(link.certificate?.ok, false);
    assert.equal(link.certificate.reason, "untrusted-chain", JSON.stringify(link.certificate));
    // Prosody could not verify Ferry's certificate either, so it offered no EXTERNAL.
    await waitForProsodyLog(r.prosody, / s2sin\S+\tdebug\tcertificate chain validation result: invalid/);
    assert.doesNotMatch(prosodyLog(r.prosody), /Offering SASL EXTERNAL|Accepting SASL EXTERNAL/);
  });

  it("Prosody → Ferry uses dialback with the verify round trip; the verdict stays on the stream", async () => {
    await deliver(r.atPeer, r.atFerry, `bob@${peer.component}`, `alice@${ferry.component}`);
    const streams = incomingStreams(r.server).filter((s) => s.remoteDomain === peer.component);
    assert.ok(streams.length > 0, `no incoming stream from ${peer.component}\n${tail(r.log)}`);
    for (const s of streams) {
      assert.equal(s.certificate?.ok, false);
      assert.equal(s.certificate.reason, "untrusted-chain", JSON.stringify(s.certificate));
    }
    // Verified by asking Prosody (a verify: actor), not accepted on the certificate's word.
    assert.ok(
      r.log.grep(new RegExp(`dialback ${escape(peer.component)} → ${escape(ferry.component)}: valid, TLS$`))
        .length > 0,
      `no dialback verdict for ${peer.component} → ${ferry.component}:\n${tail(r.log)}`,
    );
    assert.ok(r.log.grep(/ verify:/).length > 0, `no dialback verification was made:\n${tail(r.log)}`);
    assert.deepEqual(r.log.grep(/certificate verified \(no verify round trip\)/), []);
    assert.deepEqual(r.log.grep(/ XMPPI .*-> connecting\.saslRestart/), [], "no SASL on incoming streams");
    assert.doesNotMatch(prosodyLog(r.prosody), /Initiating SASL EXTERNAL|SASL EXTERNAL with \S+ succeeded/);
  });
});
