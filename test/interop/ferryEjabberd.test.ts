/**
 * Ferry ↔ ejabberd 23.01 federation: a component on each server, messages both ways over S2S with
 * dialback, plain and over STARTTLS. Ferry resolves through a private DNS server on loopback;
 * ejabberd asks it for SRV records but resolves host names through its own hosts file (PEERS.md).
 */
import { after, before } from "node:test";
import { startDns, type DnsServer } from "../helpers/peers/dns.js";
import { ensurePeerPackages } from "../helpers/peers/packages.js";
import { RunDir, Teardown } from "../helpers/peers/runDir.js";
import { interopSuite, type InteropSide } from "../helpers/federation.js";
import { startEjabberd } from "../helpers/peers/ejabberd.js";

const SECRET = "interop-secret";

const PLAIN = {
  ferry: { address: "127.0.0.27", domain: "fe.fedtest", component: "svc.fe.fedtest" },
  peer: { address: "127.0.0.33", domain: "e2.fedtest", component: "svc.e2.fedtest" },
};
const TLS = {
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
  // Ferry's domains by SRV (ejabberd reads the targets from its hosts file); ejabberd's by A.
  const ferries: InteropSide[] = [PLAIN, TLS].map((n) => n.ferry);
  dnsServer = await startDns({
    runDir: run,
    address: "127.0.0.155",
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

for (const [names, tls] of [
  [PLAIN, false],
  [TLS, true],
] as const) {
  interopSuite({
    title: `Ferry ↔ ejabberd, dialback${tls ? " over STARTTLS" : ", plain"}`,
    peerName: "ejabberd",
    ...names,
    tls,
    secret: SECRET,
    run: () => run,
    dns: () => dnsServer,
    startPeer: (peerTls) =>
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
  });
}
