/**
 * One benchmark run: a fresh pair of servers (A sends, B receives), a component on each, then the
 * phases in order — link set-up (first message), latency at a fixed rate, throughput — and what
 * /proc says about both processes afterwards.
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { DnsServer } from "../../test/helpers/peers/dns.js";
import { RunDir, Teardown } from "../../test/helpers/peers/runDir.js";
import { ComponentLink } from "./component.js";
import { ADDRESS, DOMAIN, hostsFor, type Certificates } from "./env.js";
import { availableParallelism } from "node:os";
import { machineBusyMs, readCpuMs, readMemory, processName } from "./proc.js";
import { scrape } from "./metrics.js";
import {
  HTTP_PORT,
  SECRET,
  secondComponentOf,
  startServer,
  type BenchServer,
  type ServerKind,
} from "./servers.js";
import {
  runLatency,
  runSetup,
  runThroughput,
  type Endpoints,
  type LatencyResult,
  type SetupResult,
  type ThroughputResult,
} from "./workload.js";

export interface PairConfig {
  /** e.g. "ferry→prosody starttls". */
  id: string;
  a: ServerKind;
  b: ServerKind;
  tls: boolean;
}

export interface Workload {
  messages: number;
  /** In-flight limit of the closed-loop throughput phase. */
  window: number;
  latencyRate: number;
  latencySeconds: number;
}

export interface ServerFigures {
  kind: ServerKind;
  pid: number;
  process: string;
  /** VmRSS after the last phase. */
  rssBytes: number;
  /** VmRSS 3 s later, idle (Ferry gives back what a burst grew, src/memory/idleCollector.ts). */
  settledRssBytes: number;
  /** VmHWM: the peak over the whole run. */
  peakRssBytes: number;
  /** CPU time (user + system) per 1,000 messages in the closed-loop throughput phase. */
  cpuMsPer1k: number;
  /** The same in the burst phase (all messages written, delivered or not). */
  burstCpuMsPer1k: number;
}

/** How long after the last phase the settled RSS is read. */
const SETTLE_MS = 3000;

/** CLOCK_MONOTONIC in µs: the clock of V8's .cpuprofile timestamps. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

export interface RunResult {
  config: string;
  round: number;
  /** No message lost in any phase, and nothing broke. */
  ok: boolean;
  failure?: string | undefined;
  setup?: SetupResult | undefined;
  /** Closed loop: at most `window` messages in flight. */
  window?: ThroughputResult | undefined;
  latency?: LatencyResult | undefined;
  /** The first message to a second domain on B once the servers are warm (a new link). */
  warmSetup?: SetupResult | undefined;
  /** Open loop: every message written as fast as server A reads. */
  burst?: ThroughputResult | undefined;
  sender?: ServerFigures | undefined;
  receiver?: ServerFigures | undefined;
  /**
   * Share of the machine's CPU (all cores) that processes other than the two servers and this
   * benchmark used while the phases ran: how noisy the run was.
   */
  othersCpuPercent?: number | undefined;
  /**
   * Ferry only: milliseconds each machine spent in each state during the link set-up
   * (`ferry_state_duration_seconds_sum` right after the first message), "machine state" → ms.
   */
  setupStates?: { a?: Record<string, number>; b?: Record<string, number> } | undefined;
  /**
   * The same for the warm set-up (the growth of each state's total over the phases in between, which
   * are stanza traffic only: the link machines stay put).
   */
  warmSetupStates?: { a?: Record<string, number>; b?: Record<string, number> } | undefined;
  /** Start and end of each throughput phase (monotonic µs), to cut CPU profiles. */
  phases: Record<string, [number, number]>;
  wallMs: number;
}

export interface PairEnv {
  dns: DnsServer;
  certs: Certificates;
  /** Where logs of failed runs are copied. */
  failedDir: string;
  /** Extra `node` options per side for Ferry (e.g. --cpu-prof). */
  ferryNodeOptions?: (side: "a" | "b", run: RunDir) => string[];
  /** The file Ferry runs instead of `bin.ferry` (the profiler runs the unbundled code). */
  ferryEntry?: string;
  /** Told the phase windows before the servers stop (the profile is written as they exit). */
  onPhases?: (phases: Record<string, [number, number]>) => void;
  /** Called once the servers have stopped, with the run folder, before it is removed. */
  beforeRemove?: (run: RunDir, servers: BenchServer[]) => void;
}

export const pairId = (a: ServerKind, b: ServerKind, tls: boolean): string =>
  `${a}→${b} ${tls ? "starttls" : "plain"}`;

function keepLogs(env: PairEnv, result: RunResult, servers: BenchServer[]): void {
  const dir = path.join(env.failedDir, `${result.config.replace(/[^a-z0-9]+/gi, "-")}-round${result.round}`);
  mkdirSync(dir, { recursive: true });
  for (const s of servers) {
    for (const file of [s.logFile, s.process.logFile])
      if (existsSync(file))
        copyFileSync(file, path.join(dir, `${s.kind}-${s.domain}-${path.basename(file)}.log`));
  }
  result.failure = `${result.failure ?? "failed"} (logs: ${dir})`;
}

export async function runPair(
  config: PairConfig,
  round: number,
  workload: Workload,
  env: PairEnv,
): Promise<RunResult> {
  const started = performance.now();
  const result: RunResult = { config: config.id, round, ok: false, phases: {}, wallMs: 0 };
  const run = RunDir.create("bench-run");
  const teardown = new Teardown();
  const servers: BenchServer[] = [];
  const sides = [
    { domain: DOMAIN.a, address: ADDRESS.a },
    { domain: DOMAIN.b, address: ADDRESS.b },
  ];
  const hosts = hostsFor(sides);
  try {
    const spec = (side: "a" | "b", kind: ServerKind) => ({
      kind,
      address: ADDRESS[side],
      domain: DOMAIN[side],
      dnsServer: env.dns.server,
      dnsResolvConf: env.dns.resolvConf,
      hosts,
      tls: config.tls ? env.certs[side] : undefined,
      runDir: run,
      nodeOptions: env.ferryNodeOptions?.(side, run) ?? [],
      ...(env.ferryEntry === undefined ? {} : { entry: env.ferryEntry }),
    });
    const [a, b] = await teardown.startAll([
      startServer(spec("a", config.a)),
      startServer(spec("b", config.b)),
    ]);
    servers.push(a, b);
    const receiver = await ComponentLink.connect(b.address, b.componentPort, b.component, SECRET);
    teardown.add(() => {
      receiver.close();
    });
    const sender = await ComponentLink.connect(a.address, a.componentPort, a.component, SECRET);
    teardown.add(() => {
      sender.close();
    });
    const ends: Endpoints = { sender, receiver, from: `load@${a.component}`, to: `sink@${b.component}` };

    result.setup = await runSetup(ends);
    result.setupStates = {};
    for (const [side, server] of [
      ["a", a],
      ["b", b],
    ] as const)
      if (server.kind === "ferry") result.setupStates[side] = await stateDurations(server);
    if (result.setup.lost > 0)
      throw new Error(`set-up: the first message did not arrive (${bounceText(result.setup)})`);

    const cpu = (): [number, number] => [readCpuMs(a.pid), readCpuMs(b.pid)];
    const ours = (): number => readCpuMs(a.pid) + readCpuMs(b.pid) + readCpuMs(process.pid);
    const busy0 = machineBusyMs();
    const ours0 = ours();
    const wall0 = performance.now();
    let c0: [number, number] = [0, 0];
    let t0 = 0;
    const start = (): void => {
      c0 = cpu();
      t0 = monotonicUs();
    };
    result.window = await runThroughput(ends, "w", workload.messages, workload.window, start);
    result.phases.window = [t0, monotonicUs()];
    const windowCpu = cpu().map((c, i) => c - (c0[i] ?? 0));
    result.latency = await runLatency(ends, workload.latencyRate, workload.latencySeconds);
    // A second link between warm servers: to another component on B, so a new domain pair.
    const receiver2 = await ComponentLink.connect(
      b.address,
      b.secondComponentPort,
      secondComponentOf(b.domain),
      SECRET,
    );
    teardown.add(() => {
      receiver2.close();
    });
    result.warmSetup = await runSetup(
      { sender, receiver: receiver2, from: ends.from, to: `sink@${secondComponentOf(b.domain)}` },
      "v",
    );
    // What the warm set-up added to each state's total.
    result.warmSetupStates = {};
    for (const [side, server] of [
      ["a", a],
      ["b", b],
    ] as const) {
      if (server.kind !== "ferry") continue;
      const before = result.setupStates[side] ?? {};
      const now = await stateDurations(server);
      result.warmSetupStates[side] = Object.fromEntries(
        Object.entries(now)
          .map(([state, ms]): [string, number] => [state, ms - (before[state] ?? 0)])
          .filter(([, ms]) => ms > 0.05),
      );
    }
    result.burst = await runThroughput(ends, "t", workload.messages, 0, start);
    result.phases.burst = [t0, monotonicUs()];
    const burstCpu = cpu().map((c, i) => c - (c0[i] ?? 0));
    const others = machineBusyMs() - busy0 - (ours() - ours0);
    result.othersCpuPercent = Math.max(
      0,
      (100 * others) / ((performance.now() - wall0) * availableParallelism()),
    );
    const per1k = workload.messages / 1000;
    const figures = (s: BenchServer, i: number): ServerFigures => {
      const mem = readMemory(s.pid);
      return {
        kind: s.kind,
        pid: s.pid,
        process: processName(s.pid),
        rssBytes: mem.rss,
        settledRssBytes: Number.NaN,
        peakRssBytes: mem.peakRss,
        cpuMsPer1k: (windowCpu[i] ?? Number.NaN) / per1k,
        burstCpuMsPer1k: (burstCpu[i] ?? Number.NaN) / per1k,
      };
    };
    result.sender = figures(a, 0);
    result.receiver = figures(b, 1);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    result.sender.settledRssBytes = readMemory(a.pid).rss;
    result.receiver.settledRssBytes = readMemory(b.pid).rss;
    const losses = (
      [
        ["closed-loop throughput", result.window],
        ["latency", result.latency],
        ["warm set-up", result.warmSetup],
        ["burst", result.burst],
      ] as const
    ).flatMap(([name, d]) => (d.lost > 0 ? [`${name}: ${d.lost} lost (${bounceText(d)})`] : []));
    if (losses.length > 0) throw new Error(losses.join("; "));
    result.ok = true;
  } catch (err) {
    result.failure = err instanceof Error ? err.message : String(err);
  } finally {
    env.onPhases?.(result.phases);
    try {
      await teardown.run();
    } catch (err) {
      process.stderr.write(`teardown: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    result.wallMs = performance.now() - started;
    if (!result.ok && servers.length > 0) keepLogs(env, result, servers);
    env.beforeRemove?.(run, servers);
    run.remove();
  }
  return result;
}

function bounceText(d: { bounced: number; firstBounce?: string | undefined }): string {
  return d.bounced > 0 ? `${d.bounced} bounced, first: ${d.firstBounce ?? ""}` : "nothing bounced";
}

/** `ferry_state_duration_seconds_sum` of a Ferry server, as "machine state" → ms. */
async function stateDurations(server: BenchServer): Promise<Record<string, number>> {
  const samples = await scrape(`http://${server.address}:${HTTP_PORT}/metrics`);
  const out: Record<string, number> = {};
  for (const [key, value] of samples) {
    const m = /^ferry_state_duration_seconds_sum\{machine="([^"]*)",state="([^"]*)"\}$/.exec(key);
    // Our component's own session is not part of the link.
    if (m?.[1] !== undefined && m[2] !== undefined && m[1] !== "component" && value > 0)
      out[`${m[1]} ${m[2]}`] = value * 1000;
  }
  return out;
}
