/**
 * ejabberd 23.01 as a real S2S peer, run as a plain non-distributed Erlang node (no epmd, cookie or
 * node name) from a config and spool inside the run folder (recipe: PEERS.md).
 *
 * Name resolution: the inetrc makes Erlang's resolver ask the private DNS server, but ejabberd uses
 * it for SRV records only; every A lookup (SRV targets, and domains without SRV) goes through libc's
 * getaddrinfo, i.e. /etc/hosts. So each name ejabberd must connect to goes in `hosts`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { addHosts, privateHostsSupported, withPrivateHosts, type HostsLines } from "./hosts.js";
import { assertFree, spawnPeer, waitForLog, type PeerProcess, type RunDir } from "./runDir.js";
import type { ComponentAccount, PeerTls } from "./prosody.js";

export interface EjabberdOptions {
  runDir: RunDir;
  address: string;
  domain: string;
  components?: ComponentAccount[];
  /** resolv.conf naming the private DNS server on port 53 (DnsServer.resolvConf): SRV lookups. */
  dnsResolvConf: string;
  /**
   * Name → address for every host ejabberd connects to by name: SRV targets, and remote domains
   * without SRV (including those it connects back to for dialback verification).
   */
  hosts?: Record<string, string>;
  /**
   * Where `hosts` go: a private /etc/hosts in ejabberd's own mount namespace (default when
   * privateHostsSupported()), or else tagged lines in the shared /etc/hosts, removed on stop.
   */
  privateHosts?: boolean;
  tls?: PeerTls;
  /** `s2s_use_starttls`; "optional" or "required" need `tls`. Default "false". */
  starttls?: "false" | "optional" | "required";
  s2sPort?: number;
  componentPort?: number;
  /** YAML appended to the top level, e.g. `s2s_timeout: 5`. */
  extraConfig?: string;
  /** At least "info": start-up is detected from the log. */
  logLevel?: "debug" | "info";
}

export interface EjabberdPeer {
  domain: string;
  address: string;
  s2sPort: number;
  /** Undefined without components (no ejabberd_service listener then). */
  componentPort: number | undefined;
  configFile: string;
  /** ejabberd's own log (error.log and crash.log sit beside it). */
  logFile: string;
  process: PeerProcess;
  stop(graceMs?: number): Promise<void>;
}

// JSON strings are valid YAML scalars and escape whatever a path or secret contains.
const y = (s: string): string => JSON.stringify(s);

export function ejabberdConfig(options: EjabberdOptions): string {
  const { address, domain, tls, components = [] } = options;
  const starttls = options.starttls ?? "false";
  if (starttls !== "false" && !tls) throw new Error(`ejabberd: s2s_use_starttls ${starttls} needs tls`);
  const lines = [
    "# Written by Ferry's test harness.",
    `hosts: [${y(domain)}]`,
    `loglevel: ${options.logLevel ?? "info"}`,
    "log_rotate_count: 0",
    "listen:",
    `  - port: ${options.s2sPort ?? 5269}`,
    `    ip: ${y(address)}`,
    "    module: ejabberd_s2s_in",
    "    shaper: none",
  ];
  if (components.length > 0) {
    lines.push(
      `  - port: ${options.componentPort ?? 5347}`,
      `    ip: ${y(address)}`,
      "    module: ejabberd_service",
      "    shaper: none",
      "    hosts:",
      ...components.flatMap((c) => [`      ${y(c.domain)}:`, `        password: ${y(c.secret)}`]),
    );
  }
  lines.push(
    `s2s_use_starttls: ${starttls}`,
    // IPv4 only: every peer is on 127.0.0.x, and an AAAA attempt first only adds a round trip.
    "outgoing_s2s_families: [ipv4]",
    "shaper: {}",
    "shaper_rules: {}",
    "access_rules:",
    "  s2s_all:",
    "    allow: all",
    "s2s_access: s2s_all",
    "modules:",
    "  mod_s2s_dialback: {}",
    "  mod_disco: {}",
    "  mod_ping: {}",
  );
  if (tls) {
    lines.push(`certfiles: [${y(tls.cert)}, ${y(tls.key)}]`);
    if (tls.ca !== undefined) lines.push(`ca_file: ${y(tls.ca)}`);
  }
  if (options.extraConfig !== undefined) lines.push(options.extraConfig);
  return lines.join("\n") + "\n";
}

export async function startEjabberd(options: EjabberdOptions): Promise<EjabberdPeer> {
  const { runDir, address, domain } = options;
  const s2sPort = options.s2sPort ?? 5269;
  const componentPort = (options.components ?? []).length > 0 ? (options.componentPort ?? 5347) : undefined;
  for (const port of [s2sPort, componentPort]) if (port !== undefined) await assertFree(address, port);
  const dir = runDir.file(`ejabberd-${domain}`);
  mkdirSync(`${dir}/spool`, { recursive: true });
  const configFile = `${dir}/ejabberd.yml`;
  writeFileSync(configFile, ejabberdConfig(options));
  const inetrc = `${dir}/inetrc`;
  writeFileSync(inetrc, `{resolv_conf, ${y(options.dnsResolvConf)}}.\n{lookup, [file, dns]}.\n`);
  const logFile = `${dir}/ejabberd.log`;
  // The quoted spool path is an Erlang string term; it also names the run folder in the cmdline.
  let command = "erl";
  let args = ["+K", "true", "-noinput", "-mnesia", "dir", y(`${dir}/spool`), "-s", "ejabberd"];
  const hosts = options.hosts ?? {};
  let sharedHosts: HostsLines | undefined;
  if (Object.keys(hosts).length > 0) {
    if (options.privateHosts ?? privateHostsSupported())
      ({ command, args } = withPrivateHosts(`${dir}/hosts`, hosts, command, args));
    else sharedHosts = addHosts(runDir, hosts);
  }
  const proc = spawnPeer({
    runDir,
    name: `ejabberd-${domain}`,
    command,
    args,
    env: {
      ...process.env,
      HOME: dir,
      ERL_LIBS: "/usr/lib/x86_64-linux-gnu",
      EJABBERD_CONFIG_PATH: configFile,
      EJABBERD_LOG_PATH: logFile,
      ERL_INETRC: inetrc,
    },
  });
  const stop = async (graceMs = 5000): Promise<void> => {
    await proc.stop(graceMs);
    sharedHosts?.remove();
  };
  try {
    // ejabberd binds its listeners early but accepts only once started (a connection would sit in
    // the backlog, and a SIGTERM then crashes Mnesia mid-start-up): wait for its own word. It took
    // over 20 s on a 2-core machine with every core busy, hence the long limit.
    for (const port of [s2sPort, componentPort])
      if (port !== undefined)
        await waitForLog(logFile, `Start accepting TCP connections at ${address}:${port} `, 60_000, proc);
  } catch (err) {
    await stop(1000);
    throw err;
  }
  return {
    domain,
    address,
    s2sPort,
    componentPort,
    configFile,
    logFile,
    process: proc,
    stop,
  };
}
