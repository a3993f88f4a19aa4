/**
 * Prosody 0.12 as a real S2S peer: one host (plus components) on its own loopback address, run in
 * the foreground from a config and data folder inside the run folder (recipe: PEERS.md).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { assertFree, spawnPeer, waitForLog, type PeerProcess, type RunDir } from "./runDir.js";

export interface ComponentAccount {
  domain: string;
  secret: string;
}

export interface UserAccount {
  user: string;
  password: string;
}

export interface PeerTls {
  cert: string;
  key: string;
  /** CA file to trust; without it peers' certificates are unverified and dialback authenticates. */
  ca?: string;
}

export interface ProsodyOptions {
  runDir: RunDir;
  address: string;
  domain: string;
  components?: ComponentAccount[];
  /** resolv.conf naming the private DNS server (DnsServer.resolvConf). */
  dnsResolvConf: string;
  /** Name → address answered by Prosody's resolver before DNS (its private hosts file). */
  hosts?: Record<string, string>;
  tls?: PeerTls;
  /** `s2s_require_encryption`: refuse S2S without TLS (needs `tls`). */
  requireEncryption?: boolean;
  /** `s2s_secure_auth`: authenticate peers by certificate only (needs `tls.ca`). Default false. */
  secureAuth?: boolean;
  /** Client accounts on `domain`; enables the c2s listener on address:c2sPort. */
  users?: UserAccount[];
  s2sPort?: number;
  componentPort?: number;
  c2sPort?: number;
  /** Modules beyond disco, dialback, ping (+ tls with `tls`, saslauth with `tls` or users), e.g. "smacks". */
  modules?: string[];
  /** Lua appended to the global section, e.g. `s2s_timeout = 5`. */
  extraConfig?: string;
  /** At least "info": start-up is detected from the log. */
  logLevel?: "debug" | "info";
}

export interface ProsodyPeer {
  domain: string;
  address: string;
  s2sPort: number;
  /** Undefined without components (Prosody then opens no component listener). */
  componentPort: number | undefined;
  c2sPort: number | undefined;
  configFile: string;
  /** Prosody's own log (its stdout/stderr go to process.logFile). */
  logFile: string;
  process: PeerProcess;
  /**
   * SIGTERM: Prosody first waits for its S2S links to close (~1 s with a live peer, longer with one
   * that does not answer), so after `graceMs` (default 8 s) it is killed.
   */
  stop(graceMs?: number): Promise<void>;
}

const lua = (s: string): string => JSON.stringify(s);
const luaList = (items: (string | number)[]): string =>
  `{ ${items.map((i) => (typeof i === "number" ? String(i) : lua(i))).join("; ")} }`;

export function prosodyConfig(options: ProsodyOptions, dir: string): string {
  const { address, domain, tls, components = [], users = [] } = options;
  const modules = [
    "disco",
    "dialback",
    "ping",
    ...(tls ? ["tls"] : []),
    // Accounts log in with SASL (c2s), certificates authenticate servers (SASL EXTERNAL).
    ...(tls || users.length > 0 ? ["saslauth"] : []),
    ...(options.modules ?? []),
  ];
  const global = [
    "run_as_root = true",
    `pidfile = ${lua(`${dir}/prosody.pid`)}`,
    `data_path = ${lua(`${dir}/data`)}`,
    `log = { { levels = { min = ${lua(options.logLevel ?? "info")} }, to = "file", filename = ${lua(`${dir}/prosody.log`)} } }`,
    `interfaces = ${luaList([address])}`,
    `local_interfaces = ${luaList([address])}`,
    `component_interfaces = ${luaList([address])}`,
    `s2s_ports = ${luaList([options.s2sPort ?? 5269])}`,
    `component_ports = ${luaList([options.componentPort ?? 5347])}`,
    // c2s is always loaded; without accounts it listens nowhere.
    `c2s_ports = ${luaList(users.length > 0 ? [options.c2sPort ?? 5222] : [])}`,
    "use_ipv6 = false",
    // Nagle adds ~80 ms to link set-up and a ~40 ms latency tail.
    "network_settings = { nagle = false }",
    `modules_enabled = ${luaList(modules)}`,
    `s2s_require_encryption = ${String(options.requireEncryption ?? false)}`,
    `s2s_secure_auth = ${String(options.secureAuth ?? false)}`,
    "c2s_require_encryption = false",
    "allow_unencrypted_plain_auth = true",
    `unbound = { resolvconf = ${lua(options.dnsResolvConf)}; hoststxt = ${lua(`${dir}/hosts`)} }`,
  ];
  if (tls) {
    const ca = tls.ca === undefined ? "" : `; cafile = ${lua(tls.ca)}`;
    global.push(`ssl = { certificate = ${lua(tls.cert)}; key = ${lua(tls.key)}${ca} }`);
  }
  if (options.extraConfig !== undefined) global.push(options.extraConfig);
  const hosts = [`VirtualHost ${lua(domain)}`];
  for (const c of components) hosts.push(`Component ${lua(c.domain)}\n  component_secret = ${lua(c.secret)}`);
  return `-- Written by Ferry's test harness.\n${global.join("\n")}\n\n${hosts.join("\n\n")}\n`;
}

export async function startProsody(options: ProsodyOptions): Promise<ProsodyPeer> {
  const { runDir, address, domain } = options;
  const s2sPort = options.s2sPort ?? 5269;
  const componentPort = (options.components ?? []).length > 0 ? (options.componentPort ?? 5347) : undefined;
  const c2sPort = (options.users ?? []).length > 0 ? (options.c2sPort ?? 5222) : undefined;
  const services = { s2s: s2sPort, component: componentPort, c2s: c2sPort };
  for (const port of Object.values(services)) if (port !== undefined) await assertFree(address, port);
  const dir = runDir.file(`prosody-${domain}`);
  mkdirSync(`${dir}/data`, { recursive: true });
  mkdirSync(`${dir}/certs`); // Prosody indexes it at start-up and logs an error when it is missing
  const configFile = `${dir}/prosody.cfg.lua`;
  writeFileSync(configFile, prosodyConfig(options, dir));
  const hostsLines = Object.entries(options.hosts ?? {}).map(([name, ip]) => `${ip}\t${name}\n`);
  writeFileSync(`${dir}/hosts`, hostsLines.join(""));
  for (const { user, password } of options.users ?? []) {
    execFileSync("prosodyctl", ["--config", configFile, "register", user, domain, password], {
      stdio: ["ignore", "ignore", "pipe"],
    });
  }
  const proc = spawnPeer({
    runDir,
    name: `prosody-${domain}`,
    command: "prosody",
    args: ["--config", configFile, "-F"],
  });
  const logFile = `${dir}/prosody.log`;
  try {
    // Prosody keeps running when it cannot bind a port; its log says which ports it did bind.
    for (const [service, port] of Object.entries(services))
      if (port !== undefined)
        await waitForLog(logFile, `Activated service '${service}' on [${address}]:${port}`, 45_000, proc);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return {
    domain,
    address,
    s2sPort,
    componentPort,
    c2sPort,
    configFile,
    logFile,
    process: proc,
    stop: (graceMs = 8000) => proc.stop(graceMs),
  };
}
