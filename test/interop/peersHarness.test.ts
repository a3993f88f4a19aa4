/**
 * Proves the real-peer harness (test/helpers/peers) on its own, so Ferry's interop tests can swap
 * one side for Ferry: private DNS answers A and SRV records; Prosody and ejabberd start from
 * configs the harness writes, and components attached to each exchange messages over S2S with
 * dialback, plain and with STARTTLS; ejabberd gets its host names once from a private /etc/hosts
 * (where mount namespaces work) and once from tagged lines in the shared one.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import dns from "node:dns";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connectComponent } from "../helpers/component.js";
import type { WirePeer } from "../helpers/wire.js";
import { makeCa, makeLeaf } from "../helpers/peers/certs.js";
import { startDns, type DnsServer } from "../helpers/peers/dns.js";
import { startEjabberd } from "../helpers/peers/ejabberd.js";
import { addHosts } from "../helpers/peers/hosts.js";
import { ensurePeerPackages } from "../helpers/peers/packages.js";
import { startProsody, type PeerTls } from "../helpers/peers/prosody.js";
import { RunDir, Teardown } from "../helpers/peers/runDir.js";

const SECRET = "harness-secret";

/** The SRV target of a Prosody pair's domains. */
const srvTarget = (pair: Pair): string => `xmpp.${pair.prosody.domain}`;

let run: RunDir;
let dnsServer: DnsServer;
const teardown = new Teardown();

/** Names for one Prosody/ejabberd pair; each pair has its own addresses and domains. */
interface Pair {
  prosody: { address: string; domain: string; component: string };
  ejabberd: { address: string; domain: string; component: string };
}

const PLAIN: Pair = {
  prosody: { address: "127.0.0.21", domain: "p.fedtest", component: "svc.p.fedtest" },
  ejabberd: { address: "127.0.0.31", domain: "e.fedtest", component: "svc.e.fedtest" },
};
const TLS: Pair = {
  prosody: { address: "127.0.0.22", domain: "tp.fedtest", component: "svc.tp.fedtest" },
  ejabberd: { address: "127.0.0.32", domain: "te.fedtest", component: "svc.te.fedtest" },
};

before(async () => {
  ensurePeerPackages();
  run = RunDir.create("harness");
  teardown.add(() => {
    run.remove();
  });
  // Prosody's domains are reached through SRV records (ejabberd resolves their target through its
  // hosts file, see srvTarget); ejabberd's through A records on the domains and every name below.
  const pairs = [PLAIN, TLS];
  dnsServer = await startDns({
    runDir: run,
    zones: ["fedtest"],
    a: Object.fromEntries(pairs.map((p) => [srvTarget(p), p.prosody.address])),
    wildcards: Object.fromEntries(pairs.map((p) => [p.ejabberd.domain, p.ejabberd.address])),
    srv: pairs.flatMap((p) =>
      [p.prosody.domain, p.prosody.component].map((domain) => ({ domain, target: srvTarget(p), port: 5269 })),
    ),
  });
  teardown.add(() => dnsServer.stop());
});

after(() => teardown.run());

describe("private DNS", () => {
  it("answers A and SRV records and nothing outside its zone", async () => {
    const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([dnsServer.server]);
    assert.deepEqual(await resolver.resolve4("xmpp.p.fedtest"), ["127.0.0.21"]);
    assert.deepEqual(await resolver.resolve4("svc.e.fedtest"), ["127.0.0.31"]);
    assert.deepEqual(await resolver.resolveSrv("_xmpp-server._tcp.svc.p.fedtest"), [
      { name: "xmpp.p.fedtest", port: 5269, priority: 0, weight: 0 },
    ]);
    await assert.rejects(resolver.resolve4("nowhere.fedtest"), { code: "ENOTFOUND" });
    await assert.rejects(resolver.resolve4("example.com"), { code: "EREFUSED" });
    assert.equal(readFileSync(dnsServer.resolvConf, "utf8"), "nameserver 127.0.0.153\n");
  });
});

describe("hosts lines", () => {
  it("removes exactly the lines it added", () => {
    const file = run.file("hosts-copy");
    const original = "127.0.0.1\tlocalhost\n# a comment\n";
    writeFileSync(file, original);
    const lines = addHosts(run, { "a.fedtest": "127.0.0.40", "b.fedtest": "127.0.0.41" }, file);
    assert.match(readFileSync(file, "utf8"), /^127\.0\.0\.40\ta\.fedtest\t# ferry-test /m);
    writeFileSync(file, readFileSync(file, "utf8") + "127.0.0.42\tc.fedtest\n"); // someone else's
    lines.remove();
    assert.equal(readFileSync(file, "utf8"), original + "127.0.0.42\tc.fedtest\n");
  });
});

/** Sends a message from one component and resolves with the stanza the other one receives. */
async function deliver(from: WirePeer, to: WirePeer, fromJid: string, toJid: string): Promise<string> {
  const id = `m${String(Math.random()).slice(2, 10)}`;
  from.send(
    `<message from='${fromJid}' to='${toJid}' id='${id}' type='chat'><body>hello ${id}</body></message>`,
  );
  const got = await to.waitFor(new RegExp(`<message[^>]*id=['"]${id}['"][\\s\\S]*?</message>`), 15_000);
  const stanza = new RegExp(`<message[^>]*id=['"]${id}['"][\\s\\S]*?</message>`).exec(got)?.[0] ?? "";
  assert.match(stanza, new RegExp(`from=['"]${fromJid}['"]`));
  assert.match(stanza, new RegExp(`<body>hello ${id}</body>`));
  return stanza;
}

function s2sSuite(title: string, pair: Pair, tls: boolean): void {
  describe(title, () => {
    const local = new Teardown();
    let toProsody: WirePeer;
    let toEjabberd: WirePeer;

    before(async () => {
      let prosodyTls: PeerTls | undefined;
      let ejabberdTls: PeerTls | undefined;
      if (tls) {
        // No CA handed to the peers: certificates stay unverified, so dialback authenticates.
        const ca = makeCa(run, "ca");
        const p = makeLeaf(run, ca, [pair.prosody.domain, `*.${pair.prosody.domain}`]);
        const e = makeLeaf(run, ca, [pair.ejabberd.domain, `*.${pair.ejabberd.domain}`]);
        prosodyTls = { cert: p.cert, key: p.key };
        ejabberdTls = { cert: e.cert, key: e.key };
      }
      const [prosody, ejabberd] = await local.startAll([
        startProsody({
          runDir: run,
          address: pair.prosody.address,
          domain: pair.prosody.domain,
          components: [{ domain: pair.prosody.component, secret: SECRET }],
          dnsResolvConf: dnsServer.resolvConf,
          tls: prosodyTls,
          requireEncryption: tls,
        }),
        startEjabberd({
          runDir: run,
          address: pair.ejabberd.address,
          domain: pair.ejabberd.domain,
          components: [{ domain: pair.ejabberd.component, secret: SECRET }],
          dnsResolvConf: dnsServer.resolvConf,
          tls: ejabberdTls,
          starttls: tls ? "required" : "false",
          hosts: { [srvTarget(pair)]: pair.prosody.address },
          // Each way once (where a private mount namespace is possible at all).
          privateHosts: tls ? false : undefined,
        }),
      ]);
      toProsody = await connectComponent(
        prosody.componentPort!,
        pair.prosody.component,
        SECRET,
        "",
        prosody.address,
      );
      local.add(() => {
        toProsody.destroy();
      });
      toEjabberd = await connectComponent(
        ejabberd.componentPort!,
        pair.ejabberd.component,
        SECRET,
        "",
        ejabberd.address,
      );
      local.add(() => {
        toEjabberd.destroy();
      });
    });

    after(() => local.run());

    it("Prosody → ejabberd", async () => {
      await deliver(
        toProsody,
        toEjabberd,
        `alice@${pair.prosody.component}`,
        `bob@${pair.ejabberd.component}`,
      );
    });

    it("ejabberd → Prosody", async () => {
      await deliver(
        toEjabberd,
        toProsody,
        `bob@${pair.ejabberd.component}`,
        `alice@${pair.prosody.component}`,
      );
    });
  });
}

s2sSuite("Prosody ↔ ejabberd, dialback, plain", PLAIN, false);
s2sSuite("Prosody ↔ ejabberd, dialback over STARTTLS", TLS, true);

describe("after the S2S suites", () => {
  it("left no peer running and no line in /etc/hosts", () => {
    const ours = readdirSync("/proc")
      .filter((pid) => /^\d+$/.test(pid) && Number(pid) !== dnsServer.process.pid)
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(run.path);
        } catch {
          return false; // gone meanwhile
        }
      });
    assert.deepEqual(ours, []);
    assert.doesNotMatch(readFileSync("/etc/hosts", "utf8"), new RegExp(`ferry-test ${run.path}`));
  });
});
