/**
 * Ferry ↔ Ferry federation on loopback: two servers, each with a component, exchanging stanzas over
 * S2S with dialback in both directions (plain and STARTTLS), and what senders get back when the
 * other side is down or refuses.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { S2S_HEADER, WirePeer, freePort } from "../helpers/wire.js";
import { dialbackKey } from "../../src/xmpp/dialback.js";
import { connectComponent } from "../helpers/component.js";

interface Side {
  server: FerryServer;
  s2s: number;
  comp: number;
}

const message = (from: string, to: string, body: string, id: string): string =>
  `<message from='${from}' to='${to}' id='${id}' type='chat'><body>${body}</body></message>`;

function config(opts: {
  host: string;
  s2s: number;
  comp: number;
  peers: Record<string, number>;
  tls?: { cert: string; key: string };
  mode?: string;
  extra?: string;
}): string {
  const overrides = Object.entries(opts.peers)
    .map(([host, port]) => `{host = "${host}", ip_address = "127.0.0.1", port = ${port}}`)
    .join(", ");
  return `[general]
hosts = ["${opts.host}"]

[[listen.s2s]]
port = ${opts.s2s}
ip_address = "127.0.0.1"
${opts.tls ? `tls.certfile = "${opts.tls.cert}"\ntls.keyfile = "${opts.tls.key}"\n` : ""}${opts.mode === "tls" ? `tls.mode = "tls"\n` : ""}
[[listen.service]]
port = ${opts.comp}
ip_address = "127.0.0.1"
password = "secret"

[s2s]
outgoing.address = [${overrides}]
outgoing.connection_timeout = 2000
outgoing.max_retry_delay = 2
${opts.mode ? `outgoing.tls.mode = "${opts.mode}"` : ""}
${opts.extra ?? ""}
`;
}

async function pair(
  a: { host: string; tls?: { cert: string; key: string }; mode?: string; extra?: string },
  b: { host: string; tls?: { cert: string; key: string }; mode?: string; extra?: string },
): Promise<[Side, Side]> {
  const [aS2s, aComp, bS2s, bComp] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const peersOfA = { [b.host]: bS2s, [`svc.${b.host}`]: bS2s };
  const peersOfB = { [a.host]: aS2s, [`svc.${a.host}`]: aS2s };
  const serverA = await startServer(
    loadConfigText(config({ ...a, s2s: aS2s, comp: aComp, peers: peersOfA }), "a.toml").config,
    silentLogger,
  );
  const serverB = await startServer(
    loadConfigText(config({ ...b, s2s: bS2s, comp: bComp, peers: peersOfB }), "b.toml").config,
    silentLogger,
  );
  return [
    { server: serverA, s2s: aS2s, comp: aComp },
    { server: serverB, s2s: bS2s, comp: bComp },
  ];
}

describe("Ferry ↔ Ferry federation", () => {
  describe("plain, dialback", () => {
    let a: Side;
    let b: Side;
    let compA: WirePeer;
    let compB: WirePeer;

    before(async () => {
      [a, b] = await pair({ host: "a.example" }, { host: "b.example" });
      compA = await connectComponent(a.comp, "svc.a.example", "secret");
      compB = await connectComponent(b.comp, "svc.b.example", "secret");
    });

    after(async () => {
      compA.destroy();
      compB.destroy();
      await Promise.all([a.server.stop(), b.server.stop()]);
    });

    it("delivers a message from a component on A to a component on B, and back", async () => {
      compA.send(message("alice@svc.a.example", "bob@svc.b.example", "over the ferry", "f1"));
      const got = await compB.waitFor(/<body>over the ferry<\/body>/, 10_000);
      assert.match(got, /from=['"]alice@svc\.a\.example['"]/);
      compB.send(message("bob@svc.b.example", "alice@svc.a.example", "and back", "f2"));
      await compA.waitFor(/<body>and back<\/body>/, 10_000);
    });

    it("carries presence and iq, and answers an iq to the remote server itself", async () => {
      compA.send("<presence from='alice@svc.a.example' to='bob@svc.b.example'/>");
      await compB.waitFor(/<presence [^>]*from=['"]alice@svc\.a\.example['"]/, 10_000);
      compA.send(
        "<iq type='get' id='ping-b' from='alice@svc.a.example' to='b.example'><ping xmlns='urn:xmpp:ping'/></iq>",
      );
      const got = await compA.waitFor(/id=['"]ping-b['"]/, 10_000);
      assert.match(got, /<iq [^>]*type=['"]result['"]/);
    });

    it("piggybacks a second domain pair on the same streams", async () => {
      // The server domain a.example → svc.b.example is another (source, target) pair.
      compA.send(
        "<iq type='get' id='disco-b' from='svc.a.example' to='b.example'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
      );
      const got = await compA.waitFor(/id=['"]disco-b['"][\s\S]*<\/iq>/, 10_000);
      assert.match(got, /<item jid=['"]svc\.b\.example['"]\/>/);
    });

    it("bounces to the sender when the remote component is not connected", async () => {
      compA.send(message("alice@svc.a.example", "x@gone.b.example", "anyone?", "f3"));
      const got = await compA.waitFor(/id=['"]f3['"][\s\S]*?<\/message>/, 10_000);
      assert.match(got, /type=['"]error['"]/);
    });
  });

  describe("failures", () => {
    it("bounces with remote-server-timeout when the peer is down, within connection_timeout", async () => {
      const [aS2s, aComp, deadPort] = [await freePort(), await freePort(), await freePort()];
      const server = await startServer(
        loadConfigText(
          config({ host: "a.example", s2s: aS2s, comp: aComp, peers: { "down.example": deadPort } }),
          "a.toml",
        ).config,
        silentLogger,
      );
      const comp = await connectComponent(aComp, "svc.a.example", "secret");
      try {
        const started = Date.now();
        comp.send(message("alice@svc.a.example", "bob@down.example", "hello?", "d1"));
        const got = await comp.waitFor(/id=['"]d1['"][\s\S]*?<\/message>/, 10_000);
        assert.match(got, /<remote-server-timeout xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]\/>/);
        assert.match(got, /could not connect to down\.example/);
        assert.ok(Date.now() - started < 3000);
      } finally {
        comp.destroy();
        await server.stop();
      }
    });

    it("bounces with remote-server-not-found when DNS knows no such domain", async () => {
      const [aS2s, aComp, dns] = [await freePort(), await freePort(), await freePort()];
      const server = await startServer(
        loadConfigText(
          config({
            host: "a.example",
            s2s: aS2s,
            comp: aComp,
            peers: {},
            // A DNS server that is not there: the lookup fails, and says so.
            extra: `outgoing.dns.servers = ["127.0.0.1:${dns}"]\noutgoing.dns.timeout = 1\noutgoing.dns.retries = 1`,
          }),
          "a.toml",
        ).config,
        silentLogger,
      );
      const comp = await connectComponent(aComp, "svc.a.example", "secret");
      try {
        comp.send(message("alice@svc.a.example", "bob@nowhere.example", "hello?", "n1"));
        const got = await comp.waitFor(/id=['"]n1['"][\s\S]*?<\/message>/, 10_000);
        assert.match(got, /<remote-server-not-found xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]\/>/);
        assert.match(got, /DNS/);
      } finally {
        comp.destroy();
        await server.stop();
      }
    });

    it("refuses to federate with a domain host_policy denies, on both sides", async () => {
      const [a, b] = await pair(
        { host: "a.example", extra: `host_policy = [{host = "svc.b.example", policy = "deny"}]` },
        { host: "b.example", extra: `default_policy = "deny"` },
      );
      const compA = await connectComponent(a.comp, "svc.a.example", "secret");
      const compB = await connectComponent(b.comp, "svc.b.example", "secret");
      try {
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "denied", "p1"));
        const got = await compA.waitFor(/id=['"]p1['"][\s\S]*?<\/message>/, 10_000);
        assert.match(got, /remote-server-not-found/);
        assert.match(got, /policy/);
        // B denies everyone: A's attempt to reach it fails and comes back.
        compA.send(message("alice@svc.a.example", "x@b.example", "denied too", "p2"));
        const got2 = await compA.waitFor(/id=['"]p2['"][\s\S]*?<\/message>/, 10_000);
        assert.match(got2, /type=['"]error['"]/);
      } finally {
        compA.destroy();
        compB.destroy();
        await Promise.all([a.server.stop(), b.server.stop()]);
      }
    });
  });

  describe("two processes", () => {
    it("a Ferry process and another Ferry exchange messages both ways over dialback", async () => {
      const root = fileURLToPath(new URL("../../../", import.meta.url));
      const bin = path.join(
        root,
        (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { bin: { ferry: string } }).bin
          .ferry,
      );
      const [aS2s, aComp, bS2s, bComp] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      const dir = mkdtempSync(path.join(tmpdir(), "ferry-proc-"));
      const file = path.join(dir, "b.toml");
      writeFileSync(
        file,
        config({
          host: "b.example",
          s2s: bS2s,
          comp: bComp,
          peers: { "a.example": aS2s, "svc.a.example": aS2s },
        }),
      );
      const child = spawn(process.execPath, [bin, "--config", file], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      const a = await startServer(
        loadConfigText(
          config({
            host: "a.example",
            s2s: aS2s,
            comp: aComp,
            peers: { "b.example": bS2s, "svc.b.example": bS2s },
          }),
          "a.toml",
        ).config,
        silentLogger,
      );
      try {
        let compB: WirePeer | undefined;
        const deadline = Date.now() + 10_000;
        while (!compB) {
          try {
            compB = await connectComponent(bComp, "svc.b.example", "secret");
          } catch {
            if (Date.now() > deadline) throw new Error(`ferry B did not start: ${stderr}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        const compA = await connectComponent(aComp, "svc.a.example", "secret");
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "to the other process", "x1"));
        await compB.waitFor(/to the other process/, 10_000);
        compB.send(message("bob@svc.b.example", "alice@svc.a.example", "and back again", "x2"));
        await compA.waitFor(/and back again/, 10_000);
        compA.destroy();
        compB.destroy();
      } finally {
        child.kill("SIGTERM");
        assert.equal(await exited, 0, stderr);
        await a.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("dialback on the wire", () => {
    let a: Side;
    let b: Side;

    before(async () => {
      [a, b] = await pair(
        { host: "a.example", extra: `shared = "secret-a"` },
        { host: "b.example", extra: `shared = "secret-b"` },
      );
    });

    after(async () => {
      await Promise.all([a.server.stop(), b.server.stop()]);
    });

    it("answers db:verify valid for a key it issued and invalid for any other", async () => {
      const peer = await WirePeer.connect(a.s2s);
      peer.send(S2S_HEADER("a.example", "b.example"));
      await peer.waitFor(/<\/stream:features>/);
      // As if A had sent this key on an outgoing stream to which b.example gave the id stream-1.
      a.server.issuedKeys.add("b.example", "a.example", "stream-1");
      const good = dialbackKey("secret-a", "b.example", "a.example", "stream-1");
      peer.send(`<db:verify from='b.example' to='a.example' id='stream-1'>${good}</db:verify>`);
      // The right HMAC for a stream id A never got: A did not send it, so it is invalid.
      const unsent = dialbackKey("secret-a", "b.example", "a.example", "stream-3");
      peer.send(`<db:verify from='b.example' to='a.example' id='stream-3'>${unsent}</db:verify>`);
      peer.send(`<db:verify from='b.example' to='a.example' id='stream-2'>${good}</db:verify>`);
      const got = await peer.waitFor(/id=['"]stream-2['"][^>]*\/>|id=['"]stream-2['"][^>]*><\/db:verify>/);
      assert.match(
        got,
        /<db:verify [^>]*id=['"]stream-1['"][^>]*type=['"]valid['"]|<db:verify [^>]*type=['"]valid['"][^>]*id=['"]stream-1['"]/,
      );
      for (const id of ["stream-2", "stream-3"]) {
        assert.match(
          got,
          new RegExp(
            `<db:verify [^>]*id=['"]${id}['"][^>]*type=['"]invalid['"]|<db:verify [^>]*type=['"]invalid['"][^>]*id=['"]${id}['"]`,
          ),
        );
      }
      peer.destroy();
    });

    it("authorizes a domain only after asking its authoritative server, then enforces from and to", async () => {
      const comp = await connectComponent(a.comp, "svc.a.example", "secret");
      const peer = await WirePeer.connect(a.s2s);
      peer.send(S2S_HEADER("a.example", "b.example"));
      const header = await peer.waitFor(/<\/stream:features>/);
      const id = / id=['"]([^'"]+)['"]/.exec(header)?.[1] ?? "";
      // A key made with B's secret, as B would send it: A asks B (the authoritative server for
      // b.example), which says valid because it did send it.
      b.server.issuedKeys.add("svc.a.example", "b.example", id);
      peer.send(
        `<db:result from='b.example' to='svc.a.example'>${dialbackKey("secret-b", "svc.a.example", "b.example", id)}</db:result>`,
      );
      await peer.waitFor(/<db:result [^>]*type=['"]valid['"]/, 10_000);
      peer.send("<message from='x@b.example' to='y@svc.a.example' id='w1'><body>authorized</body></message>");
      await comp.waitFor(/authorized/);
      peer.send("<message from='x@evil.example' to='y@svc.a.example' id='w2'><body>spoofed</body></message>");
      await peer.waitFor(/<invalid-from xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
      assert.doesNotMatch(comp.received, /spoofed/);
      comp.destroy();
    });

    it("says invalid for a forged key and closes that stream", async () => {
      const peer = await WirePeer.connect(a.s2s);
      peer.send(S2S_HEADER("a.example", "b.example"));
      await peer.waitFor(/<\/stream:features>/);
      peer.send(`<db:result from='b.example' to='a.example'>${"0".repeat(64)}</db:result>`);
      await peer.waitFor(/<db:result [^>]*type=['"]invalid['"]/, 10_000);
      // XEP-0220 §2.2.1: the receiving server closes the stream; a stanza after it goes nowhere.
      peer.send("<message from='x@b.example' to='y@a.example'><body>let me</body></message>");
      await peer.waitFor(/<\/stream:stream>$/);
    });

    it("answers a db:result for a domain it does not serve with a dialback error", async () => {
      const peer = await WirePeer.connect(a.s2s);
      peer.send(S2S_HEADER("a.example", "b.example"));
      await peer.waitFor(/<\/stream:features>/);
      peer.send("<db:result from='b.example' to='other.example'>abc</db:result>");
      const got = await peer.waitFor(/<\/db:result>/);
      assert.match(got, /<db:result [^>]*type=['"]error['"]/);
      assert.match(got, /<item-not-found xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]\/>/);
      peer.destroy();
    });
  });

  describe("queue life", () => {
    it("closes an idle link after stream_timeout and opens a new one for the next stanza", async () => {
      const [a, b] = await pair(
        { host: "a.example", extra: "outgoing.stream_timeout = 300" },
        { host: "b.example", extra: "outgoing.stream_timeout = 300" },
      );
      const compA = await connectComponent(a.comp, "svc.a.example", "secret");
      const compB = await connectComponent(b.comp, "svc.b.example", "secret");
      const incoming = (): string[] => [...b.server.registry.keys()].filter((k) => k.startsWith("in:"));
      try {
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "first", "i1"));
        await compB.waitFor(/first/, 10_000);
        assert.equal(incoming().length, 1, "one incoming stream at B");
        const deadline = Date.now() + 5000;
        while (incoming().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(incoming().length, 0, "the idle stream was closed");
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "second", "i2"));
        await compB.waitFor(/second/, 10_000);
      } finally {
        compA.destroy();
        compB.destroy();
        await Promise.all([a.server.stop(), b.server.stop()]);
      }
    });

    it("backs off after a failure and delivers what waited once the peer is back", async () => {
      const [aS2s, aComp, bS2s, bComp] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      const peers = { "b.example": bS2s, "svc.b.example": bS2s };
      const a = await startServer(
        loadConfigText(config({ host: "a.example", s2s: aS2s, comp: aComp, peers }), "a.toml").config,
        silentLogger,
      );
      const compA = await connectComponent(aComp, "svc.a.example", "secret");
      let b: FerryServer | undefined;
      let compB: WirePeer | undefined;
      try {
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "too early", "b1"));
        await compA.waitFor(/id=['"]b1['"][\s\S]*?remote-server-timeout/, 10_000);
        // During the backoff (about 1 s) a new stanza waits instead of failing at once.
        b = await startServer(
          loadConfigText(
            config({
              host: "b.example",
              s2s: bS2s,
              comp: bComp,
              peers: { "a.example": aS2s, "svc.a.example": aS2s },
            }),
            "b.toml",
          ).config,
          silentLogger,
        );
        compB = await connectComponent(bComp, "svc.b.example", "secret");
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "after the backoff", "b2"));
        await compB.waitFor(/after the backoff/, 10_000);
        assert.doesNotMatch(compA.received, /id=['"]b2['"][^>]*type=['"]error['"]/);
      } finally {
        compA.destroy();
        compB?.destroy();
        await Promise.all([a.stop(), b?.stop()]);
      }
    });
  });

  describe("STARTTLS, dialback", () => {
    let dir: string;
    let a: Side;
    let b: Side;

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), "ferry-tls-"));
      const cert = path.join(dir, "cert.pem");
      const key = path.join(dir, "key.pem");
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          key,
          "-out",
          cert,
          "-days",
          "2",
          "-subj",
          "/CN=ferry.test",
        ],
        { stdio: "ignore" },
      );
      [a, b] = await pair(
        { host: "a.example", tls: { cert, key }, mode: "starttls_required" },
        { host: "b.example", tls: { cert, key }, mode: "starttls_required" },
      );
    });

    after(async () => {
      await Promise.all([a.server.stop(), b.server.stop()]);
      rmSync(dir, { recursive: true, force: true });
    });

    it("exchanges messages over direct TLS (XEP-0368) in both directions", async () => {
      const cert = path.join(dir, "cert.pem");
      const key = path.join(dir, "key.pem");
      const [da, db] = await pair(
        { host: "a.example", tls: { cert, key }, mode: "tls" },
        { host: "b.example", tls: { cert, key }, mode: "tls" },
      );
      const compA = await connectComponent(da.comp, "svc.a.example", "secret");
      const compB = await connectComponent(db.comp, "svc.b.example", "secret");
      try {
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "direct", "dt1"));
        await compB.waitFor(/<body>direct<\/body>/, 10_000);
        compB.send(message("bob@svc.b.example", "alice@svc.a.example", "direct back", "dt2"));
        await compA.waitFor(/<body>direct back<\/body>/, 10_000);
        // A plain connection to a direct-TLS listener gets nowhere.
        const plain = await WirePeer.connect(db.s2s);
        plain.send(S2S_HEADER("b.example", "a.example"));
        await plain.waitClosed(5000);
        assert.doesNotMatch(plain.received, /<stream:features/);
      } finally {
        compA.destroy();
        compB.destroy();
        await Promise.all([da.server.stop(), db.server.stop()]);
      }
    });

    it("exchanges messages over STARTTLS in both directions", async () => {
      const compA = await connectComponent(a.comp, "svc.a.example", "secret");
      const compB = await connectComponent(b.comp, "svc.b.example", "secret");
      try {
        compA.send(message("alice@svc.a.example", "bob@svc.b.example", "encrypted", "t1"));
        await compB.waitFor(/<body>encrypted<\/body>/, 10_000);
        compB.send(message("bob@svc.b.example", "alice@svc.a.example", "encrypted back", "t2"));
        await compA.waitFor(/<body>encrypted back<\/body>/, 10_000);
      } finally {
        compA.destroy();
        compB.destroy();
      }
    });
  });
});
