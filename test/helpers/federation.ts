/** Ferry's side of the interop tests: its configuration, messages checked end to end, the suite. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Writable } from "node:stream";
import type { CertificateSummary } from "../../machines/events.js";
import { loadConfigText } from "../../src/config/load.js";
import { createLogger, silentLogger, type Logger, type MongooseLogLevel } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { connectComponent } from "./component.js";
import { makeCa, makeLeaf } from "./peers/certs.js";
import type { DnsServer } from "./peers/dns.js";
import type { PeerTls } from "./peers/prosody.js";
import { Teardown, type RunDir, type Stoppable } from "./peers/runDir.js";
import { freePort, type WirePeer } from "./wire.js";

export interface FerrySide {
  address: string;
  domain: string;
  secret: string;
  /** "ip:port" of the private DNS server. */
  dns: string;
  /** With a certificate: STARTTLS offered and required both ways. */
  tls?: { cert: string; key: string } | undefined;
  /**
   * CA file that peers' certificates are checked against (`tls.cacertfile` on the listener and
   * `outgoing.tls.cacertfile`); without it, the system trust store.
   */
  ca?: string | undefined;
  /**
   * Which option presents `tls` as Ferry's own certificate on outgoing streams (needed for SASL
   * EXTERNAL): `domain` = `[general] domain_certfile` for `domain`, `outgoing` =
   * `outgoing.tls.certfile`. Default: none (outgoing streams can only use dialback).
   */
  clientCert?: "domain" | "outgoing" | undefined;
  /** `[s2s] secure_auth`. */
  secureAuth?: boolean | undefined;
}

export async function ferryConfig(side: FerrySide): Promise<{ config: string; componentPort: number }> {
  const componentPort = await freePort();
  const tls = side.tls;
  const ca = side.ca === undefined ? "" : `tls.cacertfile = "${side.ca}"\n`;
  const domainCert =
    tls && side.clientCert === "domain"
      ? `domain_certfile = [{domain = "${side.domain}", certfile = "${tls.cert}", keyfile = "${tls.key}"}]\n`
      : "";
  const outgoingCert =
    tls && side.clientCert === "outgoing"
      ? `outgoing.tls.certfile = "${tls.cert}"\noutgoing.tls.keyfile = "${tls.key}"\n`
      : "";
  const config = `[general]
hosts = ["${side.domain}"]
${domainCert}
[[listen.s2s]]
port = 5269
ip_address = "${side.address}"
${tls ? `tls.certfile = "${tls.cert}"\ntls.keyfile = "${tls.key}"\ntls.mode = "starttls_required"\n${ca}` : ""}
[[listen.service]]
port = ${componentPort}
ip_address = "${side.address}"
password = "${side.secret}"

[s2s]
outgoing.dns.servers = ["${side.dns}"]
outgoing.dns.timeout = 2
outgoing.connection_timeout = 5000
outgoing.max_retry_delay = 2
outgoing.tls.mode = "${tls ? "starttls_required" : "starttls"}"
${side.ca === undefined ? "" : `outgoing.${ca}`}${outgoingCert}${side.secureAuth === true ? "secure_auth = true\n" : ""}`;
  return { config, componentPort };
}

/** A logger that keeps Ferry's log lines (text format) for assertions. */
export interface CapturedLog {
  logger: Logger;
  lines(): string[];
  /** Lines matching `pattern`. */
  grep(pattern: RegExp): string[];
}

/** Ferry's log at `level` (default "debug": state changes included), kept in memory. */
export function captureLog(level: MongooseLogLevel = "debug"): CapturedLog {
  const kept: string[] = [];
  let partial = "";
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      const parts = (partial + chunk.toString()).split("\n");
      partial = parts.pop() ?? "";
      kept.push(...parts);
      done();
    },
  });
  const lines = (): string[] => (partial === "" ? [...kept] : [...kept, partial]);
  return {
    logger: createLogger({ level, format: "text", stream }),
    lines,
    grep: (pattern) => lines().filter((line) => pattern.test(line)),
  };
}

/**
 * Resolves with the first line of a peer's log file that matches `pattern` (peers write their logs
 * asynchronously: a line may follow the stanza it is about); fails with the log's tail after
 * `timeoutMs`.
 */
export async function waitForLogLine(file: string, pattern: RegExp, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // not written yet
    }
    const line = text.split("\n").find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (Date.now() > deadline)
      assert.fail(`${file} has no line matching ${String(pattern)}; it ends with:\n${text.slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What the tests read of an outgoing connection's context (machines/s2sOut.ts). */
export interface LinkState {
  auth?: "external" | "dialback";
  certificate?: CertificateSummary;
  tls?: string;
}

/**
 * The connection context of the queue `out:<local>:<remote>` while its link is up (the `conn`
 * child exists only then: read it right after a delivery); undefined otherwise.
 */
export function outgoingLink(server: FerryServer, local: string, remote: string): LinkState | undefined {
  const queue = server.registry.get(`out:${local}:${remote}`);
  const snapshot = queue?.getSnapshot() as
    { children: Record<string, { getSnapshot(): { context: unknown } } | undefined> } | undefined;
  return snapshot?.children.conn?.getSnapshot().context as LinkState | undefined;
}

/** What the tests read of an incoming stream's context (machines/s2sIn.ts). */
export interface IncomingState {
  key: string;
  state: string;
  remoteDomain?: string;
  localDomain?: string;
  certificate?: CertificateSummary;
  authorized: string[];
}

/** Every incoming S2S stream (`in:<id>` actors) at `server`, with its state and context. */
export function incomingStreams(server: FerryServer): IncomingState[] {
  return [...server.registry.keys()]
    .filter((key) => key.startsWith("in:"))
    .flatMap((key) => {
      const snapshot = server.registry.get(key)?.getSnapshot() as
        { value: unknown; context: Omit<IncomingState, "key" | "state"> } | undefined;
      return snapshot === undefined
        ? []
        : [{ key, state: JSON.stringify(snapshot.value), ...snapshot.context }];
    });
}

/** Sends a message from one component and checks the one that arrives at the other. */
export async function deliver(from: WirePeer, to: WirePeer, fromJid: string, toJid: string): Promise<string> {
  const id = `m${String(Math.random()).slice(2, 10)}`;
  from.send(
    `<message from='${fromJid}' to='${toJid}' id='${id}' type='chat'><body>hello ${id} &amp; more</body></message>`,
  );
  const pattern = new RegExp(`<message[^>]*id=['"]${id}['"][\\s\\S]*?</message>`);
  const got = await to.waitFor(pattern, 15_000);
  const stanza = pattern.exec(got)?.[0] ?? "";
  assert.match(stanza, new RegExp(`from=['"]${fromJid}['"]`));
  assert.match(stanza, new RegExp(`to=['"]${toJid}['"]`));
  assert.match(stanza, new RegExp(`<body>hello ${id} &amp; more</body>`));
  return stanza;
}

/** One server of an interop pair: where it listens, its domain and the component attached to it. */
export interface InteropSide {
  address: string;
  domain: string;
  component: string;
}

export interface RunningPeer extends Stoppable {
  address: string;
  componentPort: number | undefined;
}

export interface InteropSuite {
  title: string;
  peerName: string;
  ferry: InteropSide;
  peer: InteropSide;
  tls: boolean;
  secret: string;
  run: () => RunDir;
  dns: () => DnsServer;
  /** Starts the real peer, with its certificate when `tls`. */
  startPeer: (tls: PeerTls | undefined) => Promise<RunningPeer>;
}

/**
 * Ferry and a real peer, each with a component: messages both ways over S2S with dialback (over
 * STARTTLS, required on both sides, when `tls`), and an iq answered by the peer's server.
 */
export function interopSuite(suite: InteropSuite): void {
  describe(suite.title, () => {
    const local = new Teardown();
    let atFerry: WirePeer;
    let atPeer: WirePeer;
    const { ferry, peer: peerSide, secret } = suite;

    before(async () => {
      let peerTls: PeerTls | undefined;
      let ferryTls: { cert: string; key: string } | undefined;
      if (suite.tls) {
        // No CA handed to either side: certificates are not verified, dialback authenticates.
        const ca = makeCa(suite.run(), "ca");
        const p = makeLeaf(suite.run(), ca, [peerSide.domain, `*.${peerSide.domain}`]);
        const f = makeLeaf(suite.run(), ca, [ferry.domain, `*.${ferry.domain}`], `ferry-${ferry.domain}`);
        peerTls = { cert: p.cert, key: p.key };
        ferryTls = { cert: f.cert, key: f.key };
      }
      const [peer] = await local.startAll([suite.startPeer(peerTls)]);
      const { config, componentPort } = await ferryConfig({
        address: ferry.address,
        domain: ferry.domain,
        secret,
        dns: suite.dns().server,
        tls: ferryTls,
      });
      const server = await startServer(loadConfigText(config, "ferry.toml").config, silentLogger);
      local.add(() => server.stop());
      atFerry = await connectComponent(componentPort, ferry.component, secret, "", ferry.address);
      local.add(() => {
        atFerry.destroy();
      });
      if (peer.componentPort === undefined) throw new Error(`${suite.peerName} has no component port`);
      atPeer = await connectComponent(peer.componentPort, peerSide.component, secret, "", peer.address);
      local.add(() => {
        atPeer.destroy();
      });
    });

    after(() => local.run());

    it(`Ferry → ${suite.peerName}`, async () => {
      await deliver(atFerry, atPeer, `alice@${ferry.component}`, `bob@${peerSide.component}`);
    });

    it(`${suite.peerName} → Ferry`, async () => {
      await deliver(atPeer, atFerry, `bob@${peerSide.component}`, `alice@${ferry.component}`);
    });

    it(`${suite.peerName}'s server answers an iq ping sent from Ferry's side`, async () => {
      atFerry.send(
        `<iq type='get' id='ping1' from='${ferry.component}' to='${peerSide.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`,
      );
      const got = await atFerry.waitFor(/<iq [^>]*id=['"]ping1['"][^>]*\/?>/, 15_000);
      assert.match(got, /<iq [^>]*type=['"]result['"]/);
    });
  });
}
