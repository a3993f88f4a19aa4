/**
 * Ferry ↔ Prosody 0.12 federation: a component on each server, messages both ways over S2S with
 * dialback, plain and over STARTTLS, names resolved through a private DNS server on loopback.
 */
import { after, before } from "node:test";
import { startDns, type DnsServer } from "../helpers/peers/dns.js";
import { ensurePeerPackages } from "../helpers/peers/packages.js";
import { RunDir, Teardown } from "../helpers/peers/runDir.js";
import { interopSuite, type InteropSide } from "../helpers/federation.js";
import { startProsody } from "../helpers/peers/prosody.js";

const SECRET = "interop-secret";

const PLAIN = {
  ferry: { address: "127.0.0.25", domain: "f.fedtest", component: "svc.f.fedtest" },
  peer: { address: "127.0.0.23", domain: "p2.fedtest", component: "svc.p2.fedtest" },
};
const TLS = {
  ferry: { address: "127.0.0.26", domain: "tf.fedtest", component: "svc.tf.fedtest" },
  peer: { address: "127.0.0.24", domain: "tp2.fedtest", component: "svc.tp2.fedtest" },
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
  // Every domain (and component domain) by SRV, as real deployments publish them.
  const sides: InteropSide[] = [PLAIN, TLS].flatMap((n) => [n.ferry, n.peer]);
  dnsServer = await startDns({
    runDir: run,
    address: "127.0.0.154",
    zones: ["fedtest"],
    a: Object.fromEntries(sides.map((s) => [srvTarget(s.domain), s.address])),
    srv: sides.flatMap((s) =>
      [s.domain, s.component].map((domain) => ({ domain, target: srvTarget(s.domain), port: 5269 })),
    ),
  });
  teardown.add(() => dnsServer.stop());
});

after(() => teardown.run());

for (const [names, tls] of [
  [PLAIN, false],
  [TLS, true],
] as const) {
  interopSuite({
    title: `Ferry ↔ Prosody, dialback${tls ? " over STARTTLS" : ", plain"}`,
    peerName: "Prosody",
    ...names,
    tls,
    secret: SECRET,
    run: () => run,
    dns: () => dnsServer,
    startPeer: (peerTls) =>
      startProsody({
        runDir: run,
        address: names.peer.address,
        domain: names.peer.domain,
        components: [{ domain: names.peer.component, secret: SECRET }],
        dnsResolvConf: dnsServer.resolvConf,
        tls: peerTls,
        requireEncryption: tls,
      }),
  });
}
