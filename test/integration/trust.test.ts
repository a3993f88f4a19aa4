/**
 * The trust layer between two Ferry servers with a test CA: SASL EXTERNAL both ways when both
 * certificates verify, dialback (with the precise verdict kept on the connection) when one does
 * not, require_for refusing to send in clear or to an unverified peer, and secure_auth.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, type IssuedCertificate } from "../helpers/testPki.js";
import { connectComponent } from "../helpers/component.js";
import { freePort, type WirePeer } from "../helpers/wire.js";

const HOUR = 3600_000;

interface Side {
  server: FerryServer;
  s2s: number;
  comp: number;
}

interface SideOptions {
  host: string;
  cert?: IssuedCertificate;
  ca?: string;
  extra?: string;
  outgoingExtra?: string;
  /** Extra lines for the [[listen.s2s]] table (tls.mode, tls.verify_mode…). */
  listenerExtra?: string;
}

function config(o: SideOptions & { s2s: number; comp: number; peers: Record<string, number> }): string {
  const overrides = Object.entries(o.peers)
    .map(([host, port]) => `{host = "${host}", ip_address = "127.0.0.1", port = ${port}}`)
    .join(", ");
  const cert = o.cert;
  return `[general]
hosts = ["${o.host}"]
${o.extra ?? ""}

[[listen.s2s]]
port = ${o.s2s}
ip_address = "127.0.0.1"
${cert ? `tls.certfile = "${cert.certFile}"\ntls.keyfile = "${cert.keyFile}"\n` : ""}${o.ca ? `tls.cacertfile = "${o.ca}"\n` : ""}${o.listenerExtra ?? ""}
[[listen.service]]
port = ${o.comp}
ip_address = "127.0.0.1"
password = "secret"

[s2s]
outgoing.address = [${overrides}]
outgoing.connection_timeout = 2000
outgoing.max_retry_delay = 2
${cert ? `outgoing.tls.certfile = "${cert.certFile}"\noutgoing.tls.keyfile = "${cert.keyFile}"\n` : ""}${o.ca ? `outgoing.tls.cacertfile = "${o.ca}"\n` : ""}${o.outgoingExtra ?? ""}
`;
}

async function pair(a: SideOptions, b: SideOptions): Promise<[Side, Side]> {
  const [aS2s, aComp, bS2s, bComp] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const start = async (o: SideOptions, s2s: number, comp: number, peer: string, peerPort: number) =>
    startServer(
      loadConfigText(
        config({ ...o, s2s, comp, peers: { [peer]: peerPort, [`svc.${peer}`]: peerPort } }),
        `${o.host}.toml`,
      ).config,
      silentLogger,
    );
  return [
    { server: await start(a, aS2s, aComp, b.host, bS2s), s2s: aS2s, comp: aComp },
    { server: await start(b, bS2s, bComp, a.host, aS2s), s2s: bS2s, comp: bComp },
  ];
}

/** The outgoing link's connection context (while it is up). */
function link(
  side: Side,
  local: string,
  remote: string,
): { auth?: string; certificate?: { ok: boolean; reason?: string; detail?: string } } {
  const queue = side.server.registry.get(`out:${local}:${remote}`);
  const snapshot = queue?.getSnapshot() as
    { children: Record<string, { getSnapshot(): { context: unknown } } | undefined> } | undefined;
  const context = snapshot?.children.conn?.getSnapshot().context;
  assert.ok(context, `no live link ${local} → ${remote}`);
  return context;
}

/** The incoming streams' contexts at a server. */
function incoming(side: Side): { certificate?: { ok: boolean; reason?: string }; authorized: string[] }[] {
  return [...side.server.registry.keys()]
    .filter((key) => key.startsWith("in:"))
    .map(
      (key) =>
        (
          side.server.registry.get(key)?.getSnapshot() as {
            context: { certificate?: { ok: boolean; reason?: string }; authorized: string[] };
          }
        ).context,
    );
}

/** One connection's fields as the admin tree (disco and /api/connections) shows them. */
function adminFields(side: Side, group: string, name: string | RegExp): Map<string, string> {
  const entry = side.server.introspection
    .connections()
    .find((c) => c.group === group && (typeof name === "string" ? c.name === name : name.test(c.name)));
  assert.ok(entry, `${name.toString()} in ${group}`);
  return new Map(entry.fields.map((f) => [f.var, f.values.join("; ")]));
}

const message = (from: string, to: string, body: string, id: string): string =>
  `<message from='${from}' to='${to}' id='${id}' type='chat'><body>${body}</body></message>`;

async function exchange(a: Side, b: Side, tag: string): Promise<[WirePeer, WirePeer]> {
  const compA = await connectComponent(a.comp, "svc.a.example", "secret");
  const compB = await connectComponent(b.comp, "svc.b.example", "secret");
  compA.send(message("alice@svc.a.example", "bob@svc.b.example", `${tag} there`, `${tag}1`));
  await compB.waitFor(new RegExp(`${tag} there`), 10_000);
  compB.send(message("bob@svc.b.example", "alice@svc.a.example", `${tag} back`, `${tag}2`));
  await compA.waitFor(new RegExp(`${tag} back`), 10_000);
  return [compA, compB];
}

describe("trust between two Ferry servers", () => {
  let run: RunDir;
  let pki: TestPki;
  let caFile: string;
  const certs: Record<string, IssuedCertificate> = {};

  before(() => {
    run = RunDir.create("trust");
    pki = new TestPki(run);
    const ca = pki.issue("ca", { ca: true, cn: "Ferry Test CA" });
    caFile = ca.certFile;
    const leaf = (name: string, domain: string, extra: Partial<Parameters<TestPki["issue"]>[1]> = {}) =>
      (certs[name] = pki.issue(name, {
        issuer: ca,
        san: [`DNS:${domain}`, `DNS:*.${domain}`],
        eku: "serverAuth",
        ...extra,
      }));
    leaf("a", "a.example");
    leaf("b", "b.example");
    leaf("b-expired", "b.example", {
      notBefore: new Date(Date.now() - 48 * HOUR),
      notAfter: new Date(Date.now() - HOUR),
    });
    leaf("b-wrong", "other.example");
    certs["b-self"] = pki.issue("b-self", { san: ["DNS:b.example", "DNS:*.b.example"], eku: "serverAuth" });
  });

  after(() => {
    run.remove();
  });

  it("authenticates both directions with SASL EXTERNAL when both certificates verify", async () => {
    const [a, b] = await pair(
      { host: "a.example", cert: certs.a, ca: caFile },
      { host: "b.example", cert: certs.b, ca: caFile },
    );
    try {
      const peers = await exchange(a, b, "external");
      assert.equal(link(a, "svc.a.example", "svc.b.example").auth, "external");
      assert.equal(link(b, "svc.b.example", "svc.a.example").auth, "external");
      assert.deepEqual(link(a, "svc.a.example", "svc.b.example").certificate?.ok, true);
      // The admin view (issue 7) says the same: TLS version and cipher, verdict, method.
      const out = adminFields(a, "established-outgoing", "svc.b.example/svc.a.example");
      assert.match(out.get("tls") ?? "", /^STARTTLS, TLSv1\.[23], TLS_/);
      assert.match(out.get("ip-port") ?? "", / \(TLS TLSv1\.[23] TLS_\w+\)$/);
      assert.match(out.get("certificate") ?? "", /^valid \(names: b\.example, \*\.b\.example\)$/);
      assert.equal(out.get("authentication"), "SASL EXTERNAL");
      assert.equal(out.get("connection-state"), "successfully authenticated using SASL");
      const inc = adminFields(b, "established-incoming", /@svc\.b\.example\/svc\.a\.example$/);
      assert.equal(inc.get("authentication"), "SASL EXTERNAL");
      assert.match(inc.get("certificate") ?? "", /^valid /);
      assert.ok(
        ![...a.server.registry.keys(), ...b.server.registry.keys()].some((k) => k.startsWith("verify:")),
        "no dialback verification was needed",
      );
      for (const p of peers) p.destroy();
    } finally {
      await Promise.all([a.server.stop(), b.server.stop()]);
    }
  });

  it("falls back to dialback when a certificate is expired, and keeps the reason on the connection", async () => {
    const [a, b] = await pair(
      { host: "a.example", cert: certs.a, ca: caFile },
      { host: "b.example", cert: certs["b-expired"], ca: caFile },
    );
    try {
      const peers = await exchange(a, b, "expired");
      const aToB = link(a, "svc.a.example", "svc.b.example");
      const verdict = aToB.certificate;
      assert.ok(verdict, "the verdict is kept on the connection");
      assert.equal(verdict.ok, false);
      assert.equal(verdict.reason, "expired");
      assert.match(
        adminFields(a, "established-outgoing", "svc.b.example/svc.a.example").get("certificate") ?? "",
        /^invalid: expired /,
      );
      // B's own outgoing link could not use EXTERNAL (A refused B's certificate): dialback.
      assert.equal(link(b, "svc.b.example", "svc.a.example").auth, "dialback");
      assert.ok(
        incoming(a).some((s) => s.certificate?.reason === "expired"),
        "A's incoming stream keeps the verdict",
      );
      for (const p of peers) p.destroy();
    } finally {
      await Promise.all([a.server.stop(), b.server.stop()]);
    }
  });

  it("a self-signed peer: refused for EXTERNAL in verify_mode peer, accepted in selfsigned_peer", async () => {
    const [a, b] = await pair(
      { host: "a.example", cert: certs.a, ca: caFile },
      { host: "b.example", cert: certs["b-self"], ca: caFile },
    );
    try {
      const peers = await exchange(a, b, "selfpeer");
      const verdict = link(a, "svc.a.example", "svc.b.example").certificate;
      assert.equal(verdict?.reason, "self-signed");
      assert.equal(
        link(b, "svc.b.example", "svc.a.example").auth,
        "dialback",
        "A would not take B's certificate",
      );
      for (const p of peers) p.destroy();
    } finally {
      await Promise.all([a.server.stop(), b.server.stop()]);
    }
    const [a2, b2] = await pair(
      {
        host: "a.example",
        cert: certs.a,
        ca: caFile,
        listenerExtra: `tls.verify_mode = "selfsigned_peer"\n`,
        outgoingExtra: `outgoing.tls.verify_mode = "selfsigned_peer"\n`,
      },
      { host: "b.example", cert: certs["b-self"], ca: caFile },
    );
    try {
      const peers = await exchange(a2, b2, "selfok");
      assert.equal(link(a2, "svc.a.example", "svc.b.example").certificate?.ok, true);
      assert.equal(link(b2, "svc.b.example", "svc.a.example").auth, "external");
      for (const p of peers) p.destroy();
    } finally {
      await Promise.all([a2.server.stop(), b2.server.stop()]);
    }
  });

  it("authenticates with SASL EXTERNAL over direct TLS (XEP-0368) too", async () => {
    const direct = { listenerExtra: `tls.mode = "tls"\n`, outgoingExtra: `outgoing.tls.mode = "tls"\n` };
    const [a, b] = await pair(
      { host: "a.example", cert: certs.a, ca: caFile, ...direct },
      { host: "b.example", cert: certs.b, ca: caFile, ...direct },
    );
    try {
      const peers = await exchange(a, b, "direct");
      assert.equal(link(a, "svc.a.example", "svc.b.example").auth, "external");
      assert.equal(link(b, "svc.b.example", "svc.a.example").auth, "external");
      for (const p of peers) p.destroy();
    } finally {
      await Promise.all([a.server.stop(), b.server.stop()]);
    }
  });

  it("require_for: refuses a peer whose certificate names another domain, with the reason", async () => {
    const [a, b] = await pair(
      {
        host: "a.example",
        cert: certs.a,
        ca: caFile,
        outgoingExtra: `outgoing.tls.require_for = ["*.b.example", "b.example"]\n`,
      },
      { host: "b.example", cert: certs["b-wrong"], ca: caFile },
    );
    try {
      const compA = await connectComponent(a.comp, "svc.a.example", "secret");
      const compB = await connectComponent(b.comp, "svc.b.example", "secret");
      compA.send(message("alice@svc.a.example", "bob@svc.b.example", "must not arrive", "rf1"));
      const got = await compA.waitFor(/id=['"]rf1['"][\s\S]*?<\/message>/, 10_000);
      assert.match(got, /type=['"]error['"]/);
      assert.match(
        got,
        /name-mismatch \(cert names: other\.example, \*\.other\.example; expected svc\.b\.example\)/,
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.doesNotMatch(compB.received, /must not arrive/);
      compA.destroy();
      compB.destroy();
    } finally {
      await Promise.all([a.server.stop(), b.server.stop()]);
    }
  });

  it("require_for: sends nothing in clear to a peer without TLS; the sender gets the bounce", async () => {
    // A bare server that speaks only enough XMPP to offer dialback (no STARTTLS), recording every byte.
    let received = "";
    const fake = net.createServer((socket) => {
      socket.setEncoding("utf8");
      socket.on("data", (data: string) => {
        received += data;
        if (data.includes("<stream:stream")) {
          socket.write(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
              "xmlns:db='jabber:server:dialback' from='plain.example' id='fake1' version='1.0'>" +
              "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
          );
        }
      });
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const fakePort = (fake.address() as net.AddressInfo).port;
    const [aS2s, aComp] = [await freePort(), await freePort()];
    const server = await startServer(
      loadConfigText(
        config({
          host: "a.example",
          cert: certs.a,
          ca: caFile,
          s2s: aS2s,
          comp: aComp,
          peers: { "plain.example": fakePort },
          outgoingExtra: `outgoing.tls.require_for = ["plain.example"]\n`,
        }),
        "a.toml",
      ).config,
      silentLogger,
    );
    try {
      const compA = await connectComponent(aComp, "svc.a.example", "secret");
      compA.send(message("alice@svc.a.example", "bob@plain.example", "secret body", "pl1"));
      const got = await compA.waitFor(/id=['"]pl1['"][\s\S]*?<\/message>/, 10_000);
      assert.match(got, /type=['"]error['"]/);
      assert.match(got, /does not offer STARTTLS/);
      assert.doesNotMatch(
        received,
        /secret body|<message|<db:result/,
        "no stanza and no dialback key in clear",
      );
      assert.match(received, /<stream:stream /, "the peer did see our stream header");
      compA.destroy();
    } finally {
      await server.stop();
      fake.close();
    }
  });

  it("secure_auth: a peer that can only offer dialback without a verified certificate is refused", async () => {
    const [a, b] = await pair(
      { host: "a.example" },
      { host: "b.example", cert: certs.b, ca: caFile, extra: "" },
    );
    // b.example demands certificate authentication; a.example has no certificate at all.
    await b.server.stop();
    const [bS2s, bComp] = [b.s2s, b.comp];
    const strict = await startServer(
      loadConfigText(
        config({
          host: "b.example",
          cert: certs.b,
          ca: caFile,
          s2s: bS2s,
          comp: bComp,
          peers: { "a.example": a.s2s, "svc.a.example": a.s2s },
          outgoingExtra: "secure_auth = true\n",
        }),
        "b.toml",
      ).config,
      silentLogger,
    );
    try {
      const compB = await connectComponent(bComp, "svc.b.example", "secret");
      const compA = await connectComponent(a.comp, "svc.a.example", "secret");
      compA.send(message("alice@svc.a.example", "bob@svc.b.example", "no cert", "sa1"));
      const got = await compA.waitFor(/id=['"]sa1['"][\s\S]*?<\/message>/, 10_000);
      assert.match(got, /type=['"]error['"]/);
      assert.match(got, /policy-violation/);
      assert.match(got, /certificate authentication \(secure_auth\)|secure_auth/);
      assert.doesNotMatch(compB.received, /no cert/);
      compA.destroy();
      compB.destroy();
    } finally {
      await Promise.all([a.server.stop(), strict.stop()]);
    }
  });
});
