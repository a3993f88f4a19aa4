/**
 * Ferry ↔ Prosody 0.12 federation: a component on each server, messages both ways over S2S with
 * dialback, plain and over STARTTLS, names resolved through a private DNS server on loopback.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer } from "../../src/server.js";
import { connectComponent } from "../helpers/component.js";
import type { WirePeer } from "../helpers/wire.js";
import { makeCa, makeLeaf } from "../helpers/peers/certs.js";
import { startDns, type DnsServer } from "../helpers/peers/dns.js";
import { ensurePeerPackages } from "../helpers/peers/packages.js";
import { startProsody, type PeerTls } from "../helpers/peers/prosody.js";
import { RunDir, Teardown } from "../helpers/peers/runDir.js";
import { deliver, ferryConfig } from "../helpers/federation.js";

const SECRET = "interop-secret";
const DNS_ADDRESS = "127.0.0.154";

interface Names {
  ferry: { address: string; domain: string; component: string };
  prosody: { address: string; domain: string; component: string };
}

const PLAIN: Names = {
  ferry: { address: "127.0.0.25", domain: "f.fedtest", component: "svc.f.fedtest" },
  prosody: { address: "127.0.0.23", domain: "p2.fedtest", component: "svc.p2.fedtest" },
};
const TLS: Names = {
  ferry: { address: "127.0.0.26", domain: "tf.fedtest", component: "svc.tf.fedtest" },
  prosody: { address: "127.0.0.24", domain: "tp2.fedtest", component: "svc.tp2.fedtest" },
};

const srvTarget = (domain: string): string => `xmpp.${domain}`;

let run: RunDir;
let dnsServer: DnsServer;
const teardown = new Teardown();

before(async () => {
  ensurePeerPackages(["openssl", "dnsmasq-base", "prosody", "lua-unbound"]);
  run = RunDir.create("ferry-prosody");
  teardown.add(() => {
    run.remove();
  });
  const sides = [PLAIN, TLS].flatMap((n) => [n.ferry, n.prosody]);
  dnsServer = await startDns({
    runDir: run,
    address: DNS_ADDRESS,
    zones: ["fedtest"],
    a: Object.fromEntries(sides.map((s) => [srvTarget(s.domain), s.address])),
    srv: sides.flatMap((s) =>
      [s.domain, s.component].map((domain) => ({ domain, target: srvTarget(s.domain), port: 5269 })),
    ),
  });
  teardown.add(() => dnsServer.stop());
});

after(() => teardown.run());

function suite(title: string, names: Names, tls: boolean): void {
  describe(title, () => {
    const local = new Teardown();
    let atFerry: WirePeer;
    let atProsody: WirePeer;

    before(async () => {
      let prosodyTls: PeerTls | undefined;
      let ferryTls: { cert: string; key: string } | undefined;
      if (tls) {
        const ca = makeCa(run, "ca");
        const p = makeLeaf(run, ca, [names.prosody.domain, `*.${names.prosody.domain}`]);
        const f = makeLeaf(run, ca, [names.ferry.domain, `*.${names.ferry.domain}`], "ferry");
        prosodyTls = { cert: p.cert, key: p.key };
        ferryTls = { cert: f.cert, key: f.key };
      }
      const [prosody] = await local.startAll([
        startProsody({
          runDir: run,
          address: names.prosody.address,
          domain: names.prosody.domain,
          components: [{ domain: names.prosody.component, secret: SECRET }],
          dnsResolvConf: dnsServer.resolvConf,
          tls: prosodyTls,
          requireEncryption: tls,
        }),
      ]);
      const { config, componentPort } = await ferryConfig({
        address: names.ferry.address,
        domain: names.ferry.domain,
        secret: SECRET,
        dns: dnsServer.server,
        tls: ferryTls,
      });
      const ferry = await startServer(loadConfigText(config, "ferry.toml").config, silentLogger);
      local.add(() => ferry.stop());
      atFerry = await connectComponent(componentPort, names.ferry.component, SECRET, "", names.ferry.address);
      local.add(() => {
        atFerry.destroy();
      });
      atProsody = await connectComponent(
        prosody.componentPort!,
        names.prosody.component,
        SECRET,
        "",
        prosody.address,
      );
      local.add(() => {
        atProsody.destroy();
      });
    });

    after(() => local.run());

    it("Ferry → Prosody", async () => {
      await deliver(atFerry, atProsody, `alice@${names.ferry.component}`, `bob@${names.prosody.component}`);
    });

    it("Prosody → Ferry", async () => {
      await deliver(atProsody, atFerry, `bob@${names.prosody.component}`, `alice@${names.ferry.component}`);
    });

    it("Prosody's server answers an iq ping from Ferry's side", async () => {
      atFerry.send(
        `<iq type='get' id='ping1' from='${names.ferry.component}' to='${names.prosody.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`,
      );
      const got = await atFerry.waitFor(
        /<iq [^>]*id=['"]ping1['"][^>]*>|<iq [^>]*id=['"]ping1['"][^>]*\/>/,
        15_000,
      );
      assert.match(got, /type=['"]result['"]/);
    });
  });
}

suite("Ferry ↔ Prosody, dialback, plain", PLAIN, false);
suite("Ferry ↔ Prosody, dialback over STARTTLS", TLS, true);
