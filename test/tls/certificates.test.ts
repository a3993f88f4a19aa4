import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { loadConfigText } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { CertificateStore, type StoreLog } from "../../src/tls/certificates.js";
import { makeCa, makeLeaf, type LeafCertificate } from "../helpers/peers/certs.js";
import { RunDir } from "../helpers/peers/runDir.js";

// --- fixtures -------------------------------------------------------------------------------------

interface DomainCert {
  domain: string;
  certfile: string;
  keyfile?: string;
}

interface Setup {
  domains?: DomainCert[];
  /** The `[[listen.s2s]] tls` table; null for a listener without TLS. */
  listener?: Record<string, string | string[]> | null;
  outgoing?: Record<string, string | string[]>;
}

/** TOML inline table (JSON strings and string arrays are valid TOML). */
function inline(table: object): string {
  return `{ ${Object.entries(table)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join(", ")} }`;
}

function makeConfig(setup: Setup): Config {
  const lines = ["[general]", 'hosts = ["a.example", "b.example"]'];
  if (setup.domains !== undefined) lines.push(`domain_certfile = [${setup.domains.map(inline).join(", ")}]`);
  lines.push("[[listen.s2s]]", "port = 0");
  if (setup.listener !== null) lines.push(`tls = ${inline(setup.listener ?? {})}`);
  if (setup.outgoing !== undefined) lines.push(`[s2s.outgoing]`, `tls = ${inline(setup.outgoing)}`);
  return loadConfigText(lines.join("\n") + "\n", "test.toml").config;
}

function quietLog(): StoreLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info: ${m}`),
    warning: (m) => lines.push(`warning: ${m}`),
  };
}

// --- connections ------------------------------------------------------------------------------------

type Listening = { port: number; close: () => Promise<void> };

async function listen(server: net.Server): Promise<Listening> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A direct-TLS echo server made from the store's options (as a direct-TLS listener would be). */
async function directTls(store: CertificateStore): Promise<Listening & { server: tls.Server }> {
  const options = store.serverOptions(0);
  assert.ok(options !== undefined);
  const server = tls.createServer(options, (socket) => {
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  store.attachServer(0, server);
  return { ...(await listen(server)), server };
}

/** A plain TCP echo server upgraded at once with STARTTLS's server options (a TLSSocket over TCP). */
async function starttls(store: CertificateStore): Promise<Listening> {
  const server = net.createServer((raw) => {
    const options = store.serverSecureOptions(0);
    assert.ok(options !== undefined);
    const secure = new tls.TLSSocket(raw, { isServer: true, ...options });
    secure.on("error", () => undefined);
    secure.pipe(secure);
  });
  return listen(server);
}

interface Connected {
  socket: tls.TLSSocket;
  /** subjectAltName of the certificate the server presented. */
  names: string;
  fingerprint: string;
}

async function connect(
  port: number,
  options: tls.ConnectionOptions = {},
  overTcp = false,
): Promise<Connected> {
  const base = { rejectUnauthorized: false, ...options };
  const socket = overTcp
    ? tls.connect({ socket: net.connect(port, "127.0.0.1"), ...base })
    : tls.connect({ host: "127.0.0.1", port, ...base });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  const peer = socket.getPeerCertificate();
  return { socket, names: peer.subjectaltname ?? "", fingerprint: peer.fingerprint256 };
}

async function presented(port: number, servername?: string, overTcp = false): Promise<string> {
  const { socket, names } = await connect(port, servername === undefined ? {} : { servername }, overTcp);
  socket.destroy();
  return names;
}

async function echo(socket: tls.TLSSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve, reject) => {
    socket.once("data", (data: Buffer) => {
      resolve(data.toString());
    });
    socket.once("error", reject);
  });
  socket.write(text);
  return reply;
}

// --- tests --------------------------------------------------------------------------------------------

describe("CertificateStore", () => {
  let run: RunDir;
  let fallback: LeafCertificate;
  let a: LeafCertificate;
  let b: LeafCertificate;
  let out: LeafCertificate;
  let domains: DomainCert[];

  before(() => {
    run = RunDir.create("tls-certs");
    const ca = makeCa(run);
    fallback = makeLeaf(run, ca, ["default.example"]);
    a = makeLeaf(run, ca, ["a.example"]);
    b = makeLeaf(run, ca, ["b.example", "*.b.example"]);
    out = makeLeaf(run, ca, ["out.example"]);
    domains = [
      { domain: "a.example", certfile: a.cert, keyfile: a.key },
      { domain: "b.example", certfile: b.cert, keyfile: b.key },
    ];
  });
  after(() => {
    run.remove();
  });

  const listenerTls = (mode: string): Record<string, string> => ({
    mode,
    certfile: fallback.cert,
    keyfile: fallback.key,
  });

  describe("SNI on incoming connections", () => {
    for (const kind of ["direct TLS", "STARTTLS"] as const) {
      it(`${kind}: exact domain, wildcard, unknown name and no SNI`, async () => {
        const store = CertificateStore.load(
          makeConfig({ domains, listener: listenerTls(kind === "direct TLS" ? "tls" : "starttls") }),
          quietLog(),
        );
        const server = kind === "direct TLS" ? await directTls(store) : await starttls(store);
        const overTcp = kind === "STARTTLS";
        try {
          assert.equal(await presented(server.port, "a.example", overTcp), "DNS:a.example");
          assert.equal(await presented(server.port, "A.Example", overTcp), "DNS:a.example");
          assert.equal(await presented(server.port, "b.example", overTcp), "DNS:b.example, DNS:*.b.example");
          assert.equal(
            await presented(server.port, "muc.b.example", overTcp),
            "DNS:b.example, DNS:*.b.example",
            "a domain certificate whose wildcard names the server name",
          );
          assert.equal(await presented(server.port, "c.example", overTcp), "DNS:default.example");
          assert.equal(await presented(server.port, undefined, overTcp), "DNS:default.example");
        } finally {
          await server.close();
        }
      });
    }

    it("without tls.certfile, the first domain certificate is the default", async () => {
      const store = CertificateStore.load(makeConfig({ domains, listener: { mode: "tls" } }), quietLog());
      const server = await directTls(store);
      try {
        assert.equal(await presented(server.port), "DNS:a.example");
        assert.equal(await presented(server.port, "b.example"), "DNS:b.example, DNS:*.b.example");
      } finally {
        await server.close();
      }
    });

    it("serverContext picks the same way; a listener without tls has none", () => {
      const config = makeConfig({ domains, listener: listenerTls("starttls") });
      const store = CertificateStore.load(config, quietLog());
      assert.equal(store.serverContext(0, "a.example"), store.serverContext(0, "A.EXAMPLE."));
      assert.notEqual(store.serverContext(0, "a.example"), store.serverContext(0, "b.example"));
      assert.equal(store.serverContext(0, "x.b.example"), store.serverContext(0, "b.example"));
      assert.equal(store.serverContext(0, "nobody.example"), store.serverContext(0));
      assert.equal(store.serverContext(1), undefined);
      const plain = CertificateStore.load(makeConfig({ domains, listener: null }), quietLog());
      assert.equal(plain.serverOptions(0), undefined);
      assert.equal(plain.serverSecureOptions(0), undefined);
      assert.equal(plain.serverContext(0, "a.example"), undefined);
    });

    it("requests the peer's certificate unless verify_mode is none, and never rejects it itself", () => {
      const peer = CertificateStore.load(makeConfig({ listener: listenerTls("tls") }), quietLog());
      assert.equal(peer.serverOptions(0)?.requestCert, true);
      assert.equal(peer.serverSecureOptions(0)?.rejectUnauthorized, false);
      const none = CertificateStore.load(
        makeConfig({ listener: { ...listenerTls("tls"), verify_mode: "none" } }),
        quietLog(),
      );
      assert.equal(none.serverOptions(0)?.requestCert, false);
    });

    it("applies versions: a TLS 1.3-only listener refuses a TLS 1.2 client", async () => {
      const store = CertificateStore.load(
        makeConfig({ listener: { ...listenerTls("tls"), versions: ["tlsv1.3"] } }),
        quietLog(),
      );
      assert.equal(store.serverOptions(0)?.minVersion, "TLSv1.3");
      const server = await directTls(store);
      try {
        await assert.rejects(connect(server.port, { maxVersion: "TLSv1.2" }));
        const { socket } = await connect(server.port);
        assert.equal(socket.getProtocol(), "TLSv1.3");
        socket.destroy();
      } finally {
        await server.close();
      }
    });
  });

  describe("outgoing certificate (clientOptions, hasCertificateFor)", () => {
    it("presents the local domain's certificate, else outgoing.tls.certfile", () => {
      const store = CertificateStore.load(
        makeConfig({
          domains,
          listener: null,
          outgoing: { certfile: out.cert, keyfile: out.key, cacertfile: a.ca, versions: ["tlsv1.2"] },
        }),
        quietLog(),
      );
      const certOf = (local: string) => store.clientOptions(local).cert?.toString();
      assert.equal(certOf("a.example"), readFileSync(a.cert, "utf8"));
      assert.equal(certOf("muc.b.example"), readFileSync(b.cert, "utf8"), "wildcard domain certificate");
      assert.equal(certOf("other.example"), readFileSync(out.cert, "utf8"));
      const options = store.clientOptions("a.example");
      assert.equal(options.key?.toString(), readFileSync(a.key, "utf8"));
      assert.equal(options.ca?.length, 1);
      assert.deepEqual([options.minVersion, options.maxVersion], ["TLSv1.2", "TLSv1.2"]);
      // One context per certificate, built at load (not one per connection).
      assert.equal(store.clientOptions("a.example").secureContext, options.secureContext);
      assert.equal(
        store.clientOptions("x.b.example").secureContext,
        store.clientOptions("muc.b.example").secureContext,
      );
      assert.notEqual(store.clientOptions("other.example").secureContext, options.secureContext);

      assert.equal(store.hasCertificateFor("a.example"), true);
      assert.equal(store.hasCertificateFor("x.b.example"), true);
      assert.equal(store.hasCertificateFor("out.example"), true);
      assert.equal(store.hasCertificateFor("other.example"), false, "the fallback does not name it");
    });

    it("presents no certificate without one, and the default TLS versions", () => {
      const store = CertificateStore.load(makeConfig({ listener: null }), quietLog());
      const { secureContext, ...options } = store.clientOptions("a.example");
      assert.deepEqual(options, { minVersion: "TLSv1.2", maxVersion: "TLSv1.3" });
      assert.equal(store.clientOptions("b.example").secureContext, secureContext, "built once, at load");
      assert.equal(store.hasCertificateFor("a.example"), false);
    });

    it("the client certificate reaches a server that requests one", async () => {
      const store = CertificateStore.load(makeConfig({ domains, listener: listenerTls("tls") }), quietLog());
      const options = store.serverOptions(0);
      assert.ok(options !== undefined);
      const server = tls.createServer(options);
      const seen = new Promise<string>((resolve) => {
        server.once("secureConnection", (socket: tls.TLSSocket) => {
          resolve(socket.getPeerCertificate().subjectaltname ?? "");
        });
      });
      const listening = await listen(server);
      try {
        const { socket } = await connect(listening.port, {
          ...store.clientOptions("b.example"),
          servername: "a.example",
        });
        assert.equal(await seen, "DNS:b.example, DNS:*.b.example");
        socket.destroy();
      } finally {
        await listening.close();
      }
    });
  });

  describe("checks at load", () => {
    const fails = (setup: Setup, message: RegExp) => {
      assert.throws(() => CertificateStore.load(makeConfig(setup), quietLog()), { message });
    };
    const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

    it("a missing file names the option and the file", () => {
      fails(
        { domains: [...domains, { domain: "c.example", certfile: "/nonexistent/c.pem" }], listener: null },
        /^general\.domain_certfile\[2\]\.certfile: cannot read \/nonexistent\/c\.pem: ENOENT: no such file or directory$/,
      );
      fails(
        { listener: { certfile: fallback.cert, keyfile: "/nonexistent/k.pem" } },
        /^listen\.s2s\[0\]\.tls\.keyfile: cannot read \/nonexistent\/k\.pem: ENOENT/,
      );
      fails(
        { listener: null, outgoing: { certfile: out.cert, keyfile: out.key, cacertfile: "/nonexistent/ca" } },
        /^s2s\.outgoing\.tls\.cacertfile: cannot read \/nonexistent\/ca: ENOENT/,
      );
    });

    it("a key that does not match its certificate", () => {
      fails(
        { listener: { certfile: fallback.cert, keyfile: a.key } },
        new RegExp(
          `^listen\\.s2s\\[0\\]\\.tls\\.keyfile: the key in ${quote(a.key)} does not match the certificate in ${quote(fallback.cert)}$`,
        ),
      );
      fails(
        { domains: [{ domain: "a.example", certfile: a.cert, keyfile: b.key }], listener: null },
        /^general\.domain_certfile\[0\]\.keyfile: the key in .* does not match/,
      );
    });

    it("a domain certificate that does not name its domain (CN-only and wildcard rules)", () => {
      fails(
        { domains: [{ domain: "b.example", certfile: a.cert, keyfile: a.key }], listener: null },
        new RegExp(
          `^general\\.domain_certfile\\[0\\]\\.certfile: ${quote(a.cert)} does not name b\\.example \\(it names DNS:a\\.example\\)$`,
        ),
      );
      fails(
        { domains: [{ domain: "x.y.b.example", certfile: b.cert, keyfile: b.key }], listener: null },
        /does not name x\.y\.b\.example/,
      );
      // A wildcard certificate does name a subdomain one label down.
      CertificateStore.load(
        makeConfig({
          domains: [{ domain: "muc.b.example", certfile: b.cert, keyfile: b.key }],
          listener: null,
        }),
        quietLog(),
      );
    });

    it("certfile may hold the key; without it and without keyfile, no key", () => {
      const both = run.file("both.pem");
      writeFileSync(both, readFileSync(a.cert, "utf8") + readFileSync(a.key, "utf8"));
      const store = CertificateStore.load(
        makeConfig({ domains: [{ domain: "a.example", certfile: both }], listener: null }),
        quietLog(),
      );
      assert.equal(store.hasCertificateFor("a.example"), true);
      fails(
        { listener: { certfile: fallback.cert } },
        /^listen\.s2s\[0\]\.tls\.certfile: no usable private key in .*default\.example\.crt \(set keyfile/,
      );
    });

    it("files that are no certificates, a bad cipher list", () => {
      fails(
        { listener: { certfile: fallback.key, keyfile: fallback.key } },
        /^listen\.s2s\[0\]\.tls\.certfile: .* holds no usable PEM certificate/,
      );
      fails(
        { listener: { ...listenerTls("tls"), cacertfile: fallback.key } },
        /^listen\.s2s\[0\]\.tls\.cacertfile: .* holds no PEM certificate$/,
      );
      fails(
        { listener: { ...listenerTls("tls"), ciphers: "NO-SUCH-CIPHER" } },
        /^listen\.s2s\[0\]\.tls\.ciphers: "NO-SUCH-CIPHER": .*no cipher match/,
      );
    });
  });

  describe("reload", () => {
    it("new handshakes get replaced certificates, established ones keep working, failures change nothing", async () => {
      const ca = makeCa(run, "ca2");
      const a2 = makeLeaf(run, ca, ["a.example", "v2.a.example"], "a2");
      const fallback2 = makeLeaf(run, ca, ["default.example", "v2.default.example"], "default2");
      const live = {
        aCert: run.file("live-a.crt"),
        aKey: run.file("live-a.key"),
        dCert: run.file("live-d.crt"),
        dKey: run.file("live-d.key"),
      };
      const install = (aLeaf: LeafCertificate, dLeaf: LeafCertificate) => {
        copyFileSync(aLeaf.cert, live.aCert);
        copyFileSync(aLeaf.key, live.aKey);
        copyFileSync(dLeaf.cert, live.dCert);
        copyFileSync(dLeaf.key, live.dKey);
      };
      install(a, fallback);
      const log = quietLog();
      const store = CertificateStore.load(
        makeConfig({
          domains: [{ domain: "a.example", certfile: live.aCert, keyfile: live.aKey }],
          listener: { mode: "tls", certfile: live.dCert, keyfile: live.dKey },
        }),
        log,
      );
      const direct = await directTls(store);
      const upgrade = await starttls(store);
      try {
        const established = await connect(direct.port, { servername: "a.example" });
        const establishedStarttls = await connect(upgrade.port, { servername: "a.example" }, true);
        assert.equal(established.names, "DNS:a.example");

        install(a2, fallback2);
        assert.deepEqual(store.reload(), { ok: true });
        assert.ok(log.lines.includes("info: TLS certificates reloaded"));
        const v2a = "DNS:a.example, DNS:v2.a.example";
        const v2d = "DNS:default.example, DNS:v2.default.example";
        assert.equal(await presented(direct.port, "a.example"), v2a);
        assert.equal(await presented(direct.port), v2d, "no SNI: the attached server's default changed");
        assert.equal(await presented(upgrade.port, "a.example", true), v2a);
        assert.equal(await presented(upgrade.port, undefined, true), v2d);
        assert.equal(await echo(established.socket, "still here"), "still here");
        assert.equal(await echo(establishedStarttls.socket, "me too"), "me too");
        assert.equal(established.socket.getPeerCertificate().subjectaltname, "DNS:a.example");

        // A bad SIGHUP: a key that does not match, then a missing file.
        copyFileSync(b.key, live.aKey);
        const bad = store.reload();
        assert.equal(bad.ok, false);
        assert.match(
          bad.error,
          /^general\.domain_certfile\[0\]\.keyfile: the key in .*live-a\.key does not match/,
        );
        assert.ok(log.lines.some((l) => l.startsWith("warning: TLS certificates not reloaded")));
        assert.equal(await presented(direct.port, "a.example"), v2a, "the previous certificate stays");
        assert.equal(await presented(direct.port), v2d);
        assert.equal(await presented(upgrade.port, "a.example", true), v2a);
        copyFileSync(a2.key, live.aKey);
        rmSync(live.dCert);
        assert.deepEqual(store.reload(), {
          ok: false,
          error: `listen.s2s[0].tls.certfile: cannot read ${live.dCert}: ENOENT: no such file or directory`,
        });
        assert.equal(await presented(direct.port), v2d);
        assert.equal(await echo(established.socket, "after"), "after");

        established.socket.destroy();
        establishedStarttls.socket.destroy();
      } finally {
        await direct.close();
        await upgrade.close();
      }
    });
  });
});
