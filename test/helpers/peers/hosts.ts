/**
 * Host names for peers that resolve with libc (getaddrinfo reads /etc/hosts, then the system's DNS):
 * ejabberd does so for every A lookup, ignoring its inetrc. Preferred: a private /etc/hosts in the
 * peer's own mount namespace (withPrivateHosts). Fallback: lines added to the shared /etc/hosts,
 * each with a marker naming the run folder, so exactly those lines are removed again (addHosts).
 */
import { mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { runs } from "../debian.js";
import { onAbnormalExit, type RunDir } from "./runDir.js";

export interface HostsLines {
  /** The marker ending each added line. */
  readonly marker: string;
  /** Removes the lines again (idempotent). */
  remove(): void;
}

const LOCK = path.join(os.tmpdir(), "ferry-etc-hosts.lock");

/** Test files run in parallel processes: serialise read-modify-write of the shared file. */
function withLock(action: () => void): void {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || Date.now() > deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    action();
  } finally {
    rmdirSync(LOCK);
  }
}

/** Rewrites in place: /etc/hosts is often a bind mount, which a rename would not replace. */
function edit(file: string, change: (lines: string[]) => string[]): void {
  withLock(() => {
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    writeFileSync(file, change(lines).join("\n") + "\n");
  });
}

/** Adds `name → address` lines, e.g. `{ "xmpp.p.fedtest": "127.0.0.21" }`. */
export function addHosts(runDir: RunDir, entries: Record<string, string>, file = "/etc/hosts"): HostsLines {
  const marker = `# ferry-test ${runDir.path}`;
  const added = Object.entries(entries).map(([name, address]) => `${address}\t${name}\t${marker}`);
  edit(file, (lines) => [...lines, ...added]);
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    unregister();
    edit(file, (lines) => lines.filter((line) => !line.endsWith(marker)));
  };
  const unregister = onAbnormalExit(remove);
  return { marker, remove };
}

let namespaceWorks: boolean | undefined;

/**
 * Whether a peer can get its own /etc/hosts in a private mount namespace (needs CAP_SYS_ADMIN:
 * true as root on a VM, often false in a container), probed once with the real operation.
 */
export function privateHostsSupported(): boolean {
  if (namespaceWorks === undefined) {
    const probe = path.join(os.tmpdir(), `ferry-hosts-probe-${process.pid}`);
    writeFileSync(probe, "127.0.0.1\tlocalhost\n");
    namespaceWorks = runs("unshare", [...UNSHARE, "sh", "-c", MOUNT_AND_EXEC, probe, "true"]);
    rmSync(probe, { force: true });
  }
  return namespaceWorks;
}

const UNSHARE = ["--mount", "--propagation", "private"];
// $0 is the hosts file, "$@" the command: exec keeps the PID that spawn() reported.
const MOUNT_AND_EXEC = 'mount --bind "$0" /etc/hosts && exec "$@"';

/**
 * Writes `<file>` = the system's /etc/hosts plus `entries`, and returns the command line that runs
 * `command` with that file mounted over /etc/hosts, for it alone (privateHostsSupported() first).
 */
export function withPrivateHosts(
  file: string,
  entries: Record<string, string>,
  command: string,
  args: string[],
): { command: string; args: string[] } {
  const lines = Object.entries(entries).map(([name, address]) => `${address}\t${name}\n`);
  writeFileSync(file, readFileSync("/etc/hosts", "utf8") + lines.join(""));
  return { command: "unshare", args: [...UNSHARE, "sh", "-c", MOUNT_AND_EXEC, file, command, ...args] };
}
