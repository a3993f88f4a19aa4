/**
 * Interoperability tests run real peers from Debian. The test set-up installs a missing package
 * (CI runs as root with Debian's archive reachable); a machine where that is impossible fails the
 * test with the reason rather than skipping it.
 */
import { execFileSync } from "node:child_process";

let updated = false;

export function ensureDebianPackage(pkg: string, present: () => boolean): void {
  if (present()) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    if (!updated) {
      execFileSync("apt-get", ["update"], { stdio: "ignore", env });
      updated = true;
    }
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", pkg], { stdio: "ignore", env });
  } catch (err) {
    throw new Error(`Debian package ${pkg} is missing and could not be installed: ${String(err)}`, {
      cause: err,
    });
  }
  if (!present()) throw new Error(`Debian package ${pkg} installed but still not usable`);
}

/** True when the command runs and exits 0. */
export function runs(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
