/**
 * Ferry ↔ ejabberd 23.01 with certificates (issue 5): with a test CA both trust, SASL EXTERNAL
 * (XEP-0178) authenticates both directions, as ejabberd's log and Ferry's connection state show;
 * with two CAs neither trusts the other's, EXTERNAL fails (or is not offered) and dialback over TLS
 * authenticates, with Ferry keeping the verdict (`untrusted-chain`) on the connection.
 *
 * ejabberd offers EXTERNAL on every encrypted incoming S2S stream and checks the certificate when it
 * is used (against `ca_file`); on outgoing streams it tries EXTERNAL whenever the peer offers it and
 * falls back to dialback (mod_s2s_dialback) when that fails or is not offered.
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
import { interopRun, srvTarget } from "../helpers/interopRun.js";
import { makeCa, makeLeaf } from "../helpers/peers/certs.js";
import { startEjabberd, type EjabberdPeer } from "../helpers/peers/ejabberd.js";
import { Teardown } from "../helpers/peers/runDir.js";
import type { WirePeer } from "../helpers/wire.js";

const SECRET = "interop-secret";

interface Pair {
  ferry: InteropSide;
  peer: InteropSide;
}

const TRUSTED: Pair = {
  ferry: { address: "127.0.0.51", domain: "xef.fedtest", component: "svc.xef.fedtest" },
  peer: { address: "127.0.0.52", domain: "xee.fedtest", component: "svc.xee.fedtest" },
};
const UNTRUSTED: Pair = {
  ferry: { address: "127.0.0.53", domain: "uef.fedtest", component: "svc.uef.fedtest" },
  peer: { address: "127.0.0.54", domain: "uee.fedtest", component: "svc.uee.fedtest" },
};

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const setup = interopRun({
  label: "external-ejabberd",
  dnsAddress: "127.0.0.157",
  packages: ["openssl", "dnsmasq-base", "ejabberd"],
  bySrv: [TRUSTED, UNTRUSTED].map((n) => n.ferry),
  byA: [TRUSTED, UNTRUSTED].map((n) => n.peer),
});

interface Running {
  server: FerryServer;
  log: CapturedLog;
  ejabberd: EjabberdPeer;
  atFerry: WirePeer;
  atPeer: WirePeer;
}

/**
 * ejabberd and Ferry for `pair`, each with a certificate for its domain and `*.domain` (the
 * components are subdomains), STARTTLS required both ways. `sharedCa`: both certificates from one
 * CA that both trust; else each from its own CA, and each server trusts only its own.
 */
async function startPair(pair: Pair, sharedCa: boolean, local: Teardown): Promise<Running> {
  const { ferry, peer } = pair;
  const ferryCa = makeCa(setup.run(), `ca-${ferry.domain}`);
  const peerCa = sharedCa ? ferryCa : makeCa(setup.run(), `ca-${peer.domain}`);
  const peerCert = makeLeaf(setup.run(), peerCa, [peer.domain, `*.${peer.domain}`]);
  const ferryCert = makeLeaf(setup.run(), ferryCa, [ferry.domain, `*.${ferry.domain}`]);
  const [ejabberd] = await local.startAll([
    startEjabberd({
      runDir: setup.run(),
      address: peer.address,
      domain: peer.domain,
      components: [{ domain: peer.component, secret: SECRET }],
      dnsResolvConf: setup.dns().resolvConf,
      // `ca_file`: what ejabberd checks peers' certificates against (its s2s_cafile default).
      tls: { cert: peerCert.cert, key: peerCert.key, ca: peerCa.cert },
      starttls: "required",
      hosts: {
        [srvTarget(ferry.domain)]: ferry.address,
        [ferry.domain]: ferry.address,
        [ferry.component]: ferry.address,
      },
    }),
  ]);
  const { config, componentPort } = await ferryConfig({
    address: ferry.address,
    domain: ferry.domain,
    secret: SECRET,
    dns: setup.dns().server,
    tls: { cert: ferryCert.cert, key: ferryCert.key },
    ca: ferryCa.cert,
    clientCert: "outgoing",
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
  if (ejabberd.componentPort === undefined) throw new Error("ejabberd has no component port");
  const atPeer = await connectComponent(ejabberd.componentPort, peer.component, SECRET, "", peer.address);
  local.add(() => {
    atPeer.destroy();
  });
  return { server, log, ejabberd, atFerry, atPeer };
}

const ejabberdLog = (e: EjabberdPeer): string => readFileSync(e.logFile, "utf8");

/** The tail of Ferry's log, for failure messages. */
const tail = (log: CapturedLog): string => log.lines().slice(-60).join("\n");

describe("Ferry ↔ ejabberd, one CA trusted by both: SASL EXTERNAL both ways", () => {
  const local = new Teardown();
  let r: Running;
  const { ferry, peer } = TRUSTED;

  before(async () => {
    r = await startPair(TRUSTED, true, local);
  });
  after(() => local.run());

  it("Ferry → ejabberd authenticates with SASL EXTERNAL", async () => {
    await deliver(r.atFerry, r.atPeer, `alice@${ferry.component}`, `bob@${peer.component}`);
    const link = outgoingLink(r.server, ferry.component, peer.component);
    assert.ok(link, `no live link ${ferry.component} → ${peer.component}\n${tail(r.log)}`);
    assert.equal(link.auth, "external", tail(r.log));
    assert.equal(link.tls, "starttls");
    assert.equal(link.certificate?.ok, true, JSON.stringify(link.certificate));
    // ejabberd checked Ferry's certificate against its ca_file and accepted it.
    await waitForLogLine(
      r.ejabberd.logFile,
      new RegExp(
        `Accepted inbound s2s EXTERNAL authentication ${escape(ferry.component)} -> ${escape(peer.component)} `,
      ),
    );
    assert.doesNotMatch(ejabberdLog(r.ejabberd), /Failed inbound s2s EXTERNAL authentication/);
  });

  it("ejabberd → Ferry authenticates with SASL EXTERNAL (no dialback verification)", async () => {
    await deliver(r.atPeer, r.atFerry, `bob@${peer.component}`, `alice@${ferry.component}`);
    await waitForLogLine(
      r.ejabberd.logFile,
      new RegExp(
        `Accepted outbound s2s EXTERNAL authentication ${escape(peer.component)} -> ${escape(ferry.component)} `,
      ),
    );
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
    assert.doesNotMatch(ejabberdLog(r.ejabberd), /dialback authentication/);
    assert.doesNotMatch(ejabberdLog(r.ejabberd), /Failed outbound s2s EXTERNAL authentication/);
  });
});

describe("Ferry ↔ ejabberd, each trusting only its own CA: dialback over TLS", () => {
  const local = new Teardown();
  let r: Running;
  const { ferry, peer } = UNTRUSTED;

  before(async () => {
    r = await startPair(UNTRUSTED, false, local);
  });
  after(() => local.run());

  it("Ferry → ejabberd: EXTERNAL refused, dialback on the same stream; verdict untrusted-chain", async () => {
    await deliver(r.atFerry, r.atPeer, `alice@${ferry.component}`, `bob@${peer.component}`);
    const link = outgoingLink(r.server, ferry.component, peer.component);
    assert.ok(link, `no live link ${ferry.component} → ${peer.component}\n${tail(r.log)}`);
    assert.equal(link.auth, "dialback", tail(r.log));
    assert.equal(link.tls, "starttls");
    assert.equal(link.certificate?.ok, false);
    assert.equal(link.certificate.reason, "untrusted-chain", JSON.stringify(link.certificate));
    await waitForLogLine(
      r.ejabberd.logFile,
      new RegExp(
        `Failed inbound s2s EXTERNAL authentication ${escape(ferry.component)} -> ${escape(peer.component)} `,
      ),
    );
    await waitForLogLine(
      r.ejabberd.logFile,
      new RegExp(
        `Accepted inbound s2s dialback authentication ${escape(ferry.component)} -> ${escape(peer.component)} `,
      ),
    );
  });

  it("ejabberd → Ferry: no EXTERNAL offered, dialback with the verify round trip", async () => {
    await deliver(r.atPeer, r.atFerry, `bob@${peer.component}`, `alice@${ferry.component}`);
    const streams = incomingStreams(r.server).filter((s) => s.remoteDomain === peer.component);
    assert.ok(streams.length > 0, `no incoming stream from ${peer.component}\n${tail(r.log)}`);
    for (const s of streams) {
      assert.equal(s.certificate?.ok, false);
      assert.equal(s.certificate.reason, "untrusted-chain", JSON.stringify(s.certificate));
    }
    assert.ok(
      r.log.grep(new RegExp(`dialback ${escape(peer.component)} → ${escape(ferry.component)}: valid, TLS$`))
        .length > 0,
      `no dialback verdict for ${peer.component} → ${ferry.component}:\n${tail(r.log)}`,
    );
    assert.ok(r.log.grep(/ verify:/).length > 0, `no dialback verification was made:\n${tail(r.log)}`);
    assert.deepEqual(r.log.grep(/ XMPPI .*-> connecting\.saslRestart/), [], "no SASL on incoming streams");
    await waitForLogLine(
      r.ejabberd.logFile,
      new RegExp(
        `Accepted outbound s2s dialback authentication ${escape(peer.component)} -> ${escape(ferry.component)} `,
      ),
    );
    assert.doesNotMatch(
      ejabberdLog(r.ejabberd),
      new RegExp(`Accepted outbound s2s EXTERNAL authentication ${escape(peer.component)}`),
    );
  });
});
