/**
 * Ferry ↔ Prosody 0.12 federation: a component on each server, messages both ways over S2S with
 * dialback, plain and over STARTTLS, names resolved through a private DNS server on loopback.
 */
import { interopSuite } from "../helpers/federation.js";
import { interopRun } from "../helpers/interopRun.js";
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

// Every domain (and component domain) by SRV, as real deployments publish them.
const setup = interopRun({
  label: "ferry-prosody",
  dnsAddress: "127.0.0.154",
  packages: ["openssl", "dnsmasq-base", "prosody", "lua-unbound"],
  bySrv: [PLAIN, TLS].flatMap((n) => [n.ferry, n.peer]),
});

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
    run: setup.run,
    dns: setup.dns,
    startPeer: (peerTls) =>
      startProsody({
        runDir: setup.run(),
        address: names.peer.address,
        domain: names.peer.domain,
        components: [{ domain: names.peer.component, secret: SECRET }],
        dnsResolvConf: setup.dns().resolvConf,
        tls: peerTls,
        requireEncryption: tls,
      }),
  });
}
