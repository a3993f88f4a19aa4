/**
 * Ferry ↔ ejabberd 23.01 federation: a component on each server, messages both ways over S2S with
 * dialback, plain and over STARTTLS. Ferry resolves through a private DNS server on loopback;
 * ejabberd asks it for SRV records but resolves host names through its own hosts file (PEERS.md).
 */
import { interopSuite } from "../helpers/federation.js";
import { interopRun, srvTarget } from "../helpers/interopRun.js";
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

// Ferry's domains by SRV (ejabberd reads the targets from its hosts file); ejabberd's by A.
const setup = interopRun({
  label: "ferry-ejabberd",
  dnsAddress: "127.0.0.155",
  packages: ["openssl", "dnsmasq-base", "ejabberd"],
  bySrv: [PLAIN, TLS].map((n) => n.ferry),
  byA: [PLAIN, TLS].map((n) => n.peer),
});

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
    run: setup.run,
    dns: setup.dns,
    startPeer: (peerTls) =>
      startEjabberd({
        runDir: setup.run(),
        address: names.peer.address,
        domain: names.peer.domain,
        components: [{ domain: names.peer.component, secret: SECRET }],
        dnsResolvConf: setup.dns().resolvConf,
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
