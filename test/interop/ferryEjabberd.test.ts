/**
 * Ferry ↔ ejabberd 23.01 federation: a component on each server, messages both ways over S2S with
 * dialback, plain and over STARTTLS. Ferry resolves through a private DNS server on loopback;
 * ejabberd resolves SRV there too but the SRV targets through its own hosts file (PEERS.md).
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
import type { PeerTls } from "../helpers/peers/prosody.js";
import { startEjabberd } from "../helpers/peers/ejabberd.js";
import { RunDir, Teardown } from "../helpers/peers/runDir.js";
import { deliver, ferryConfig } from "../helpers/federation.js";

const SECRET = "interop-secret";
const DNS_ADDRESS = "127.0.0.155";

interface Names {
  ferry: { address: string; domain: string; component: string };
  peer: { address: string; domain: string; component: string };
}

const PLAIN: Names = {
  ferry: { address: "127.0.0.27", domain: "fe.fedtest", component: "svc.fe.fedtest" },
  peer: { address: "127.0.0.33", domain: "e2.fedtest", component: "svc.e2.fedtest" },
};
const TLS: Names = {
  ferry: { address: "127.0.0.28", domain: "tfe.fedtest", component: "svc.tfe.fedtest" },
  peer: { address: "127.0.0.34", domain: "te2.fedtest", component: "svc.te2.fedtest" },
};

const srvTarget = (domain: string): string => `xmpp.${domain}`;

let run: RunDir;
let dnsServer: DnsServer;
const teardown = new Teardown();

before(async () => {
  ensurePeerPackages(["openssl", "dnsmasq-base", "ejabberd"]);
  run = RunDir.create("ferry-ejabberd");
  teardown.add(() => {
    run.remove();
  });
  // Ferry's domains by SRV (ejabberd reads their targets from its hosts file); ejabberd's by A.
  const ferries = [PLAIN, TLS].map((n) => n.ferry);
  dnsServer = await startDns({
    runDir: run,
    address: DNS_ADDRESS,
    zones: ["fedtest"],
    a: Object.fromEntries(ferries.map((s) => [srvTarget(s.domain), s.address])),
    wildcards: Object.fromEntries([PLAIN, TLS].map((n) => [n.peer.domain, n.peer.address])),
    srv: ferries.flatMap((s) =>
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
    let atPeer: WirePeer;

    before(async () => {
      let peerTls: PeerTls | undefined;
      let ferryTls: { cert: string; key: string } | undefined;
      if (tls) {
        const ca = makeCa(run, "ca");
        const p = makeLeaf(run, ca, [names.peer.domain, `*.${names.peer.domain}`]);
        const f = makeLeaf(run, ca, [names.ferry.domain, `*.${names.ferry.domain}`], "ferry");
        peerTls = { cert: p.cert, key: p.key };
        ferryTls = { cert: f.cert, key: f.key };
      }
      const [peer] = await local.startAll([
        startEjabberd({
          runDir: run,
          address: names.peer.address,
          domain: names.peer.domain,
          components: [{ domain: names.peer.component, secret: SECRET }],
          dnsResolvConf: dnsServer.resolvConf,
          tls: peerTls,
          starttls: tls ? "required" : "false",
          hosts: {
            [srvTarget(names.ferry.domain)]: names.ferry.address,
            [names.ferry.domain]: names.ferry.address,
            [names.ferry.component]: names.ferry.address,
          },
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
      atPeer = await connectComponent(peer.componentPort!, names.peer.component, SECRET, "", peer.address);
      local.add(() => {
        atPeer.destroy();
      });
    });

    after(() => local.run());

    it("Ferry → ejabberd", async () => {
      await deliver(atFerry, atPeer, `alice@${names.ferry.component}`, `bob@${names.peer.component}`);
    });

    it("ejabberd → Ferry", async () => {
      await deliver(atPeer, atFerry, `bob@${names.peer.component}`, `alice@${names.ferry.component}`);
    });

    it("ejabberd's server answers an iq ping from Ferry's side", async () => {
      atFerry.send(
        `<iq type='get' id='ping1' from='${names.ferry.component}' to='${names.peer.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`,
      );
      const got = await atFerry.waitFor(
        /<iq [^>]*id=['"]ping1['"][^>]*>|<iq [^>]*id=['"]ping1['"][^>]*\/>/,
        15_000,
      );
      assert.match(got, /type=['"]result['"]/);
    });
  });
}

suite("Ferry ↔ ejabberd, dialback, plain", PLAIN, false);
suite("Ferry ↔ ejabberd, dialback over STARTTLS", TLS, true);
