/** The Debian packages the real peers come from, installed by the test set-up when missing. */
import { existsSync } from "node:fs";
import { ensureDebianPackage } from "../debian.js";

// Each package with a file that proves it is usable.
const PACKAGES = {
  openssl: "/usr/bin/openssl",
  "dnsmasq-base": "/usr/sbin/dnsmasq",
  prosody: "/usr/bin/prosody",
  // Only a Recommends of prosody (skipped by --no-install-recommends), but without it Prosody's
  // resolver ignores the `unbound` option and asks the system's DNS servers.
  "lua-unbound": "/usr/lib/x86_64-linux-gnu/lua/5.4/lunbound.so",
  ejabberd: "/usr/lib/x86_64-linux-gnu/ejabberd-23.01/ebin/ejabberd.app",
} as const;

export type PeerPackage = keyof typeof PACKAGES;

export function ensurePeerPackages(
  packages: readonly PeerPackage[] = Object.keys(PACKAGES) as PeerPackage[],
): void {
  for (const pkg of packages) {
    const file = PACKAGES[pkg];
    ensureDebianPackage(pkg, () => existsSync(file));
  }
}
