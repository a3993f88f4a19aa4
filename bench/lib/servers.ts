/**
 * The servers under test, each a process of its own with its own config and data folder on its own
 * loopback address: Ferry (the `ferry` command, package.json's `bin.ferry`, with `--config FILE`),
 * Prosody 0.12 and ejabberd 23.01 from Debian. Every server hosts one domain and one XEP-0114 component on it (`svc.<domain>`).
 *
 * Limits removed and Nagle off, per server:
 * - Ferry: no shaper is configured (the default); `max_fsm_queue` not set (no limit); Ferry turns
 *   Nagle off itself (`noDelay` on its plain TCP listeners and outgoing connections). A
 *   `[[listen.http]]` on the server's address serves /metrics (the set-up breakdown is read there).
 * - Prosody: the config loads only disco, dialback, ping (+ tls, saslauth for STARTTLS), so
 *   mod_limits (Debian's default config: 30 kB/s on incoming S2S) is not loaded;
 *   `network_settings = { nagle = false }`.
 * - ejabberd: `shaper: none` on both listeners, `shaper: {}`, `shaper_rules: {}` (no c2s/s2s
 *   shapers), `max_fsm_queue` raised from 10,000 to 10,000,000 (a process whose mailbox exceeds it
 *   is killed, which loses messages); its listeners already set `nodelay`, and the Erlang VM is
 *   started with `-kernel inet_default_connect_options [{nodelay,true}]` so that its outgoing S2S
 *   sockets do too.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ejabberdConfig } from "../../test/helpers/peers/ejabberd.js";
import { privateHostsSupported, withPrivateHosts } from "../../test/helpers/peers/hosts.js";
import { startProsody } from "../../test/helpers/peers/prosody.js";
import {
  assertFree,
  spawnPeer,
  waitForLog,
  waitForPort,
  type PeerProcess,
  type RunDir,
} from "../../test/helpers/peers/runDir.js";

export type ServerKind = "ferry" | "prosody" | "ejabberd";

export const SECRET = "bench-component-secret";
export const S2S_PORT = 5269;
export const COMPONENT_PORT = 5347;
export const HTTP_PORT = 5280;
/** ejabberd only: the second component's listener. */
export const SECOND_COMPONENT_PORT = 5348;

/** The repository root (this file is dist/bench/lib/servers.js once compiled). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
/** What `ferry` runs (package.json's `bin.ferry`: the bundle), so the benchmark measures what ships. */
/** The same server unbundled (`tsc`'s output), for profiles that name each file and package. */
export const FERRY_UNBUNDLED = path.join(REPO, "dist/src/cli.js");
export const FERRY_CLI = path.join(
  REPO,
  (JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { bin: { ferry: string } }).bin.ferry,
);

/**
 * The `node` options on the `ferry` command's `#!/usr/bin/env -S node …` line (its V8 heap
 * settings): the benchmark runs Ferry exactly as the command does.
 */
export function ferryRuntimeOptions(): string[] {
  const first = readFileSync(FERRY_CLI, "utf8").split("\n", 1)[0] ?? "";
  const match = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return (
    match?.[1]
      ?.trim()
      .split(/\s+/)
      .filter((o) => o !== "") ?? []
  );
}

export interface Tls {
  cert: string;
  key: string;
}

export interface ServerSpec {
  kind: ServerKind;
  /** Loopback address the server listens on (S2S 5269, components 5347). */
  address: string;
  domain: string;
  /** `ip:port` of the private DNS server. */
  dnsServer: string;
  /** resolv.conf naming it (Prosody's unbound, ejabberd's inetrc). */
  dnsResolvConf: string;
  /** Name → address for ejabberd, which resolves host names with getaddrinfo. */
  hosts: Record<string, string>;
  /** STARTTLS offered and required both ways (dialback over TLS; certificates not verified). */
  tls?: Tls | undefined;
  /** A fresh folder for this server's config, data and logs. */
  runDir: RunDir;
  /** Ferry only: extra `node` options, e.g. `--cpu-prof`. */
  nodeOptions?: string[];
  /** Ferry only: the file to run instead of FERRY_CLI. */
  entry?: string;
  /** Ferry only: TOML appended to the generated config (after `[s2s]`'s keys; `[[listen.http]]` is
   * always there, on HTTP_PORT). */
  ferryExtra?: string;
}

export interface BenchServer {
  kind: ServerKind;
  domain: string;
  component: string;
  address: string;
  componentPort: number;
  /** Where the second component (`svc2.<domain>`) connects. */
  secondComponentPort: number;
  /** The server process (beam.smp for ejabberd, lua for Prosody, node for Ferry). */
  pid: number;
  process: PeerProcess;
  /** Log file to show when something fails. */
  logFile: string;
  stop(graceMs?: number): Promise<void>;
}

export const componentOf = (domain: string): string => `svc.${domain}`;
/** A second component on each server: the target of the warm link set-up. */
export const secondComponentOf = (domain: string): string => `svc2.${domain}`;

export function ferryConfig(spec: ServerSpec): string {
  const tls = spec.tls;
  return `# Written by Ferry's benchmark (bench/lib/servers.ts).
[general]
hosts = ["${spec.domain}"]
loglevel = "warning"

[[listen.s2s]]
port = ${S2S_PORT}
ip_address = "${spec.address}"
${tls ? `tls.certfile = "${tls.cert}"\ntls.keyfile = "${tls.key}"\ntls.mode = "starttls_required"\n` : ""}
[[listen.service]]
port = ${COMPONENT_PORT}
ip_address = "${spec.address}"
password = "${SECRET}"

[[listen.http]]
port = ${HTTP_PORT}
ip_address = "${spec.address}"

[s2s]
outgoing.dns.servers = ["${spec.dnsServer}"]
outgoing.ip_versions = [4]
outgoing.tls.mode = "${tls ? "starttls_required" : "starttls"}"
${spec.ferryExtra ?? ""}
`;
}

async function startFerry(spec: ServerSpec): Promise<BenchServer> {
  const { runDir, address, domain } = spec;
  for (const port of [S2S_PORT, COMPONENT_PORT, HTTP_PORT]) await assertFree(address, port);
  const configFile = runDir.file(`ferry-${domain}.toml`);
  writeFileSync(configFile, ferryConfig(spec));
  const proc = spawnPeer({
    runDir,
    name: `ferry-${domain}`,
    command: process.execPath,
    args: [
      ...ferryRuntimeOptions(),
      ...(spec.nodeOptions ?? []),
      spec.entry ?? FERRY_CLI,
      "--config",
      configFile,
    ],
  });
  try {
    for (const port of [S2S_PORT, COMPONENT_PORT, HTTP_PORT]) await waitForPort(address, port, 15_000, proc);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return {
    kind: "ferry",
    domain,
    component: componentOf(domain),
    address,
    componentPort: COMPONENT_PORT,
    secondComponentPort: COMPONENT_PORT,
    pid: proc.pid,
    process: proc,
    logFile: proc.logFile,
    stop: (graceMs = 5000) => proc.stop(graceMs),
  };
}

async function startProsodyServer(spec: ServerSpec): Promise<BenchServer> {
  const peer = await startProsody({
    runDir: spec.runDir,
    address: spec.address,
    domain: spec.domain,
    components: [componentOf(spec.domain), secondComponentOf(spec.domain)].map((domain) => ({
      domain,
      secret: SECRET,
    })),
    dnsResolvConf: spec.dnsResolvConf,
    tls: spec.tls,
    requireEncryption: spec.tls !== undefined,
    s2sPort: S2S_PORT,
    componentPort: COMPONENT_PORT,
  });
  return {
    kind: "prosody",
    domain: spec.domain,
    component: componentOf(spec.domain),
    address: spec.address,
    componentPort: COMPONENT_PORT,
    secondComponentPort: COMPONENT_PORT,
    pid: peer.process.pid,
    process: peer.process,
    logFile: peer.logFile,
    stop: (graceMs = 3000) => peer.stop(graceMs),
  };
}

async function startEjabberdServer(spec: ServerSpec): Promise<BenchServer> {
  const { runDir, address, domain } = spec;
  for (const port of [S2S_PORT, COMPONENT_PORT, SECOND_COMPONENT_PORT]) await assertFree(address, port);
  const dir = runDir.file(`ejabberd-${domain}`);
  mkdirSync(`${dir}/spool`, { recursive: true });
  const configFile = `${dir}/ejabberd.yml`;
  writeFileSync(
    configFile,
    ejabberdConfig({
      runDir,
      address,
      domain,
      components: [{ domain: componentOf(domain), secret: SECRET }],
      dnsResolvConf: spec.dnsResolvConf,
      tls: spec.tls,
      starttls: spec.tls ? "required" : "false",
      s2sPort: S2S_PORT,
      componentPort: COMPONENT_PORT,
      extraConfig: "max_fsm_queue: 10000000",
    }).replace(
      // The second component on a listener of its own: one ejabberd_service listener registers
      // every domain in its `hosts` for each component that connects to it, and then spreads the
      // stanzas for a domain over all of them.
      "s2s_use_starttls:",
      [
        `  - port: ${SECOND_COMPONENT_PORT}`,
        `    ip: ${JSON.stringify(address)}`,
        "    module: ejabberd_service",
        "    shaper: none",
        "    hosts:",
        `      ${JSON.stringify(secondComponentOf(domain))}:`,
        `        password: ${JSON.stringify(SECRET)}`,
        "s2s_use_starttls:",
      ].join("\n"),
    ),
  );
  const inetrc = `${dir}/inetrc`;
  writeFileSync(inetrc, `{resolv_conf, ${JSON.stringify(spec.dnsResolvConf)}}.\n{lookup, [file, dns]}.\n`);
  const logFile = `${dir}/ejabberd.log`;
  let command = "erl";
  let args = [
    "+K",
    "true",
    "-noinput",
    "-kernel",
    "inet_default_connect_options",
    "[{nodelay,true}]",
    "-mnesia",
    "dir",
    JSON.stringify(`${dir}/spool`),
    "-s",
    "ejabberd",
  ];
  if (!privateHostsSupported())
    throw new Error("ejabberd needs a private /etc/hosts (unshare --mount), which this machine refuses");
  ({ command, args } = withPrivateHosts(`${dir}/hosts`, spec.hosts, command, args));
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
  try {
    for (const port of [S2S_PORT, COMPONENT_PORT, SECOND_COMPONENT_PORT])
      await waitForLog(logFile, `Start accepting TCP connections at ${address}:${port} `, 30_000, proc);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return {
    kind: "ejabberd",
    domain,
    component: componentOf(domain),
    address,
    componentPort: COMPONENT_PORT,
    secondComponentPort: SECOND_COMPONENT_PORT,
    pid: proc.pid,
    process: proc,
    logFile,
    stop: (graceMs = 3000) => proc.stop(graceMs),
  };
}

export function startServer(spec: ServerSpec): Promise<BenchServer> {
  switch (spec.kind) {
    case "ferry":
      return startFerry(spec);
    case "prosody":
      return startProsodyServer(spec);
    case "ejabberd":
      return startEjabberdServer(spec);
  }
}
