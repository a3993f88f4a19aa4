/**
 * The set-up every interop test file shares: the Debian packages, a run folder, and a private DNS
 * server on its own loopback address that publishes the test's domains — by SRV (target
 * `xmpp.<domain>`, for the domain and its component) or by A records on the domain and every name
 * under it. Registers its own before/after hooks; the getters are valid inside tests.
 */
import { after, before } from "node:test";
import { startDns, type DnsServer } from "./peers/dns.js";
import { ensurePeerPackages, type PeerPackage } from "./peers/packages.js";
import { RunDir, Teardown } from "./peers/runDir.js";
import type { InteropSide } from "./federation.js";

export const srvTarget = (domain: string): string => `xmpp.${domain}`;

export interface InteropRunOptions {
  label: string;
  /** A loopback address no other test file uses for its DNS server. */
  dnsAddress: string;
  packages: PeerPackage[];
  /** Published by SRV records (Prosody and Ferry resolve these through the DNS server). */
  bySrv: InteropSide[];
  /** Published by A records on the domain and below (ejabberd connects to these names itself). */
  byA?: InteropSide[];
}

export interface InteropRun {
  run: () => RunDir;
  dns: () => DnsServer;
}

export function interopRun(options: InteropRunOptions): InteropRun {
  let run: RunDir | undefined;
  let dns: DnsServer | undefined;
  const teardown = new Teardown();

  before(async () => {
    ensurePeerPackages(options.packages);
    const dir = RunDir.create(options.label);
    run = dir;
    teardown.add(() => {
      dir.remove();
    });
    const server = await startDns({
      runDir: dir,
      address: options.dnsAddress,
      zones: ["fedtest"],
      a: Object.fromEntries(options.bySrv.map((s) => [srvTarget(s.domain), s.address])),
      wildcards: Object.fromEntries((options.byA ?? []).map((s) => [s.domain, s.address])),
      srv: options.bySrv.flatMap((s) =>
        [s.domain, s.component].map((domain) => ({ domain, target: srvTarget(s.domain), port: 5269 })),
      ),
    });
    dns = server;
    teardown.add(() => server.stop());
  });

  after(() => teardown.run());

  return {
    run: () => {
      if (!run) throw new Error("the interop run is not set up yet");
      return run;
    },
    dns: () => {
      if (!dns) throw new Error("the private DNS server is not started yet");
      return dns;
    },
  };
}
