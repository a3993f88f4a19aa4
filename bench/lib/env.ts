/**
 * The benchmark's fixed surroundings: loopback addresses 127.0.0.91–99, the private DNS server on
 * 127.0.0.160 (dnsmasq, authoritative for the made-up TLD `fbench`, nothing leaves loopback), the
 * test CA, and a description of the machine.
 */
import { execFileSync } from "node:child_process";
import os from "node:os";
import { makeCa, makeLeaf } from "../../test/helpers/peers/certs.js";
import { startDns, type DnsServer } from "../../test/helpers/peers/dns.js";
import { ensurePeerPackages } from "../../test/helpers/peers/packages.js";
import type { RunDir } from "../../test/helpers/peers/runDir.js";
import { REPO, componentOf, secondComponentOf, type Tls } from "./servers.js";

/** Not `.test`: Prosody's resolver answers every `*.test` name NXDOMAIN itself (RFC 6761). */
export const TLD = "fbench";
/**
 * `FERRY_BENCH_SLOT=N` (1–4) moves everything to 127.0.0.(201+10N)… and DNS to 127.0.0.(209+10N),
 * so that two benchmarks can run side by side on one machine (while their figures are compared
 * only within a run).
 */
const SLOT = Number(process.env.FERRY_BENCH_SLOT ?? 0);
if (!Number.isInteger(SLOT) || SLOT < 0 || SLOT > 4) throw new Error("FERRY_BENCH_SLOT must be 0–4");
const at = (n: number): string => `127.0.0.${SLOT === 0 ? n : 200 + 10 * SLOT + (n % 10)}`;

export const DNS_ADDRESS = SLOT === 0 ? "127.0.0.160" : at(99);

/** Server A (the sender's) and B (the receiver's); C: the scale benchmark's fake S2S responder. */
export const ADDRESS = { a: at(91), b: at(92), fake: at(93), dead: at(94) } as const;
export const DOMAIN = { a: `a.${TLD}`, b: `b.${TLD}` } as const;

export const srvTarget = (domain: string): string => `xmpp.${domain}`;

/** Every name a server must connect to, for ejabberd's private /etc/hosts. */
export function hostsFor(sides: { domain: string; address: string }[]): Record<string, string> {
  return Object.fromEntries(
    sides.flatMap(({ domain, address }) =>
      [domain, componentOf(domain), secondComponentOf(domain), srvTarget(domain)].map((name) => [
        name,
        address,
      ]),
    ),
  );
}

/**
 * dnsmasq with SRV records `_xmpp-server._tcp.{a,b}.fbench`, `…svc.{a,b}.fbench` and
 * `…svc2.{a,b}.fbench` pointing at
 * `xmpp.{a,b}.fbench:5269`, A records for those targets, and `wildcards` (name → address for the
 * name and everything under it).
 */
export async function startBenchDns(
  runDir: RunDir,
  wildcards: Record<string, string> = {},
): Promise<DnsServer> {
  const sides = [
    { domain: DOMAIN.a, address: ADDRESS.a },
    { domain: DOMAIN.b, address: ADDRESS.b },
  ];
  return startDns({
    runDir,
    address: DNS_ADDRESS,
    zones: [TLD],
    a: Object.fromEntries(sides.map((s) => [srvTarget(s.domain), s.address])),
    wildcards,
    srv: sides.flatMap((s) =>
      [s.domain, componentOf(s.domain), secondComponentOf(s.domain)].map((domain) => ({
        domain,
        target: srvTarget(s.domain),
        port: 5269,
      })),
    ),
  });
}

export interface Certificates {
  a: Tls;
  b: Tls;
}

/** A test CA and a leaf for each side's domain and `*.domain` (its component). */
export function makeCertificates(runDir: RunDir): Certificates {
  const ca = makeCa(runDir, "bench-ca");
  const leaf = (domain: string): Tls => {
    const { cert, key } = makeLeaf(runDir, ca, [domain, `*.${domain}`]);
    return { cert, key };
  };
  return { a: leaf(DOMAIN.a), b: leaf(DOMAIN.b) };
}

export function ensurePackages(): void {
  ensurePeerPackages(["openssl", "dnsmasq-base", "prosody", "lua-unbound", "ejabberd"]);
}

function version(pkg: string): string {
  try {
    return execFileSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" }).trim();
  } catch {
    return "not installed";
  }
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  prosody: string;
  ejabberd: string;
  dnsmasq: string;
  openssl: string;
  /** The Ferry measured: commit, and how many files under src/ and machines/ differ from it. */
  ferryCommit: string;
  ferryChangedFiles: number;
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, {
      cwd: REPO,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "";
  }
}

export function machineInfo(): MachineInfo {
  let osName = os.type();
  try {
    const release = execFileSync("sh", ["-c", '. /etc/os-release && echo "$PRETTY_NAME"'], {
      encoding: "utf8",
    });
    osName = release.trim();
  } catch {
    // keep os.type()
  }
  return {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    os: osName,
    node: process.version,
    prosody: version("prosody"),
    ejabberd: version("ejabberd"),
    dnsmasq: version("dnsmasq-base"),
    openssl: process.versions.openssl,
    ferryCommit: git(["rev-parse", "--short", "HEAD"]) || "unknown",
    ferryChangedFiles: git(["status", "--porcelain", "--", "src", "machines"])
      .split("\n")
      .filter((l) => l !== "").length,
  };
}
