/**
 * A private DNS server (dnsmasq) on a loopback address, authoritative for made-up TLDs. With
 * --no-resolv and --local=/tld/ no query ever leaves loopback: unknown names get NXDOMAIN, names
 * outside the TLDs get REFUSED.
 */
import { writeFileSync } from "node:fs";
import { assertFree, spawnPeer, waitForPort, type PeerProcess, type RunDir } from "./runDir.js";

export interface SrvRecord {
  /** `xmpp-server` (STARTTLS, the default) or `xmpps-server` (direct TLS, XEP-0368). */
  service?: "xmpp-server" | "xmpps-server";
  /** The domain looked up, e.g. `p.fedtest` for `_xmpp-server._tcp.p.fedtest`. */
  domain: string;
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface DnsOptions {
  runDir: RunDir;
  /** Loopback address to listen on; the default is one nothing else on a test machine uses. */
  address?: string;
  /** Only 53 can be named in resolv.conf for ejabberd (see DnsServer.resolvConf). */
  port?: number;
  /** TLDs (or zones) answered only from these records, e.g. `["fedtest"]`. */
  zones: string[];
  /** A records for exactly these names. */
  a?: Record<string, string>;
  /** A records for these names and every name below them (`p.fedtest` also answers `svc.p.fedtest`). */
  wildcards?: Record<string, string>;
  srv?: SrvRecord[];
}

export interface DnsServer {
  /** "ip:port", for Ferry's `[s2s] outgoing.dns.servers` and Resolver.setServers. */
  server: string;
  address: string;
  port: number;
  /**
   * A resolv.conf naming this server, for Prosody's `unbound.resolvconf` and ejabberd's inetrc.
   * With a port other than 53 it uses unbound's `ip@port` form, which Erlang's resolver cannot read.
   */
  resolvConf: string;
  process: PeerProcess;
  stop(): Promise<void>;
}

export const DEFAULT_DNS_ADDRESS = "127.0.0.153";

export function dnsmasqArgs(options: DnsOptions, address: string, port: number): string[] {
  const { runDir, zones, a = {}, wildcards = {}, srv = [] } = options;
  return [
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--no-poll",
    `--listen-address=${address}`,
    "--bind-interfaces",
    `--port=${port}`,
    "--user=root",
    `--pid-file=${runDir.file(`dnsmasq-${address}.pid`)}`, // also names the run folder in the cmdline
    "--log-facility=-",
    "--log-queries",
    ...zones.map((zone) => `--local=/${zone}/`),
    ...Object.entries(a).map(([name, ip]) => `--host-record=${name},${ip}`),
    ...Object.entries(wildcards).map(([name, ip]) => `--address=/${name}/${ip}`),
    ...srv.map(
      (r) =>
        `--srv-host=_${r.service ?? "xmpp-server"}._tcp.${r.domain},${r.target},${r.port},${r.priority ?? 0},${r.weight ?? 0}`,
    ),
  ];
}

export async function startDns(options: DnsOptions): Promise<DnsServer> {
  const { runDir } = options;
  const address = options.address ?? DEFAULT_DNS_ADDRESS;
  const port = options.port ?? 53;
  await assertFree(address, port);
  const resolvConf = runDir.file(`resolv-${address}.conf`);
  writeFileSync(resolvConf, `nameserver ${address}${port === 53 ? "" : `@${port}`}\n`);
  const proc = spawnPeer({
    runDir,
    name: `dnsmasq-${address}`,
    command: "/usr/sbin/dnsmasq",
    args: dnsmasqArgs(options, address, port),
  });
  try {
    await waitForPort(address, port, 5000, proc); // dnsmasq serves TCP too
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return {
    server: `${address}:${port}`,
    address,
    port,
    resolvConf,
    process: proc,
    stop: () => proc.stop(2000),
  };
}
