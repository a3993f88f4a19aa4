/**
 * `npm run bench`: Ferry ↔ Ferry, Prosody ↔ Prosody, ejabberd ↔ ejabberd and Ferry ↔ Prosody both
 * ways, plain dialback and dialback over STARTTLS, driven by the same XEP-0114 workload; every
 * configuration runs once per round, rounds repeat (A B A B …); prints medians with min–max and the
 * ratios Ferry/Prosody and Ferry/ejabberd, and writes bench/results/latest.json (+ latest.md).
 *
 *   npm run bench [-- --rounds N] [--quick] [--messages N] [--latency-seconds S] [--rate R]
 *                    [--pairs ferry-ferry,prosody-prosody,...] [--modes plain,starttls]
 */
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import * as prettier from "prettier";
import { RunDir } from "../test/helpers/peers/runDir.js";
import { ensurePackages, machineInfo, makeCertificates, startBenchDns, type MachineInfo } from "./lib/env.js";
import { pairId, runPair, type PairConfig, type RunResult, type Workload } from "./lib/pair.js";
import { markdownTable, num, range, ratio, table, writeJson } from "./lib/report.js";
import { REPO, type ServerKind } from "./lib/servers.js";
import { summarize, type Summary } from "./lib/stats.js";
import type { ThroughputResult } from "./lib/workload.js";

const KINDS: readonly ServerKind[] = ["ferry", "prosody", "ejabberd"];
const DEFAULT_PAIRS = [
  "ferry-ferry",
  "prosody-prosody",
  "ejabberd-ejabberd",
  "ferry-prosody",
  "prosody-ferry",
];

function parsePair(text: string): [ServerKind, ServerKind] {
  const [a, b] = text.split("-");
  const known = (k: string | undefined): k is ServerKind => KINDS.includes(k as ServerKind);
  if (!known(a) || !known(b))
    throw new Error(`--pairs: "${text}" is not KIND-KIND with KIND in ${KINDS.join(", ")}`);
  return [a, b];
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, not "${value}"`);
  return n;
}

interface Options {
  rounds: number;
  workload: Workload;
  configs: PairConfig[];
  out: string;
  quick: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string" },
      quick: { type: "boolean", default: false },
      messages: { type: "string" },
      "latency-seconds": { type: "string" },
      rate: { type: "string" },
      window: { type: "string" },
      pairs: { type: "string" },
      modes: { type: "string" },
      out: { type: "string" },
    },
  });
  const quick = values.quick;
  const pairs = (values.pairs ?? DEFAULT_PAIRS.join(",")).split(",").map(parsePair);
  const modes = (values.modes ?? "plain,starttls").split(",");
  for (const m of modes)
    if (m !== "plain" && m !== "starttls") throw new Error(`--modes: unknown mode "${m}"`);
  const configs = modes.flatMap((mode) =>
    pairs.map(([a, b]) => ({ id: pairId(a, b, mode === "starttls"), a, b, tls: mode === "starttls" })),
  );
  return {
    quick,
    rounds: positiveInt("rounds", values.rounds, quick ? 1 : 3),
    workload: {
      messages: positiveInt("messages", values.messages, quick ? 10_000 : 100_000),
      window: positiveInt("window", values.window, 5000),
      latencySeconds: positiveInt("latency-seconds", values["latency-seconds"], quick ? 2 : 5),
      latencyRate: positiveInt("rate", values.rate, 2000),
    },
    configs,
    out: path.resolve(values.out ?? path.join(REPO, "bench/results/latest.json")),
  };
}

export interface ConfigSummary {
  config: string;
  runs: number;
  /** Runs that lost a message in any phase, or broke. */
  failed: number;
  /** Messages lost in the burst phase, summed over the runs. */
  burstLost: number;
  failures: string[];
  /** Each figure from the runs whose phase lost nothing. */
  burst: Summary;
  window: Summary;
  setupMs: Summary;
  warmSetupMs: Summary;
  p50Ms: Summary;
  p99Ms: Summary;
  senderRssMB: Summary;
  receiverRssMB: Summary;
  senderSettledRssMB: Summary;
  receiverSettledRssMB: Summary;
  senderPeakRssMB: Summary;
  receiverPeakRssMB: Summary;
  senderCpuMsPer1k: Summary;
  receiverCpuMsPer1k: Summary;
  duplicated: number;
  reordered: number;
}

const MB = 1024 * 1024;

function summarizeConfig(config: string, runs: RunResult[]): ConfigSummary {
  const mine = runs.filter((r) => r.config === config);
  const pick = (f: (r: RunResult) => number | undefined): Summary =>
    summarize(mine.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const clean = <T extends { lost: number }>(d: T | undefined): T | undefined =>
    d !== undefined && d.lost === 0 ? d : undefined;
  const phases = (r: RunResult) => [r.setup, r.window, r.latency, r.warmSetup, r.burst];
  const total = (f: (d: { duplicated: number; reordered: number }) => number): number =>
    mine.reduce((n, r) => n + phases(r).reduce((m, d) => m + (d ? f(d) : 0), 0), 0);
  return {
    config,
    runs: mine.length,
    failed: mine.filter((r) => !r.ok).length,
    burstLost: mine.reduce((n, r) => n + (r.burst?.lost ?? 0), 0),
    failures: mine.flatMap((r) => (r.failure === undefined ? [] : [`round ${r.round}: ${r.failure}`])),
    burst: pick((r) => clean(r.burst)?.msgsPerSec),
    window: pick((r) => clean(r.window)?.msgsPerSec),
    setupMs: pick((r) => clean(r.setup)?.setupMs),
    warmSetupMs: pick((r) => clean(r.warmSetup)?.setupMs),
    p50Ms: pick((r) => clean(r.latency)?.p50),
    p99Ms: pick((r) => clean(r.latency)?.p99),
    senderRssMB: pick((r) => (r.sender ? r.sender.rssBytes / MB : undefined)),
    receiverRssMB: pick((r) => (r.receiver ? r.receiver.rssBytes / MB : undefined)),
    senderSettledRssMB: pick((r) => (r.sender ? r.sender.settledRssBytes / MB : undefined)),
    receiverSettledRssMB: pick((r) => (r.receiver ? r.receiver.settledRssBytes / MB : undefined)),
    senderPeakRssMB: pick((r) => (r.sender ? r.sender.peakRssBytes / MB : undefined)),
    receiverPeakRssMB: pick((r) => (r.receiver ? r.receiver.peakRssBytes / MB : undefined)),
    senderCpuMsPer1k: pick((r) => (clean(r.window) ? r.sender?.cpuMsPer1k : undefined)),
    receiverCpuMsPer1k: pick((r) => (clean(r.window) ? r.receiver?.cpuMsPer1k : undefined)),
    duplicated: total((d) => d.duplicated),
    reordered: total((d) => d.reordered),
  };
}

function resultHeader(window: number): string[] {
  return [
    "configuration (A→B)",
    "burst msgs/s",
    `window ${num(window / 1000)}k msgs/s`,
    "set-up ms",
    "warm set-up ms",
    "p50 ms",
    "p99 ms",
    "RSS A MB",
    "RSS B MB",
    "RSS A/B 3 s later",
    "CPU A ms/1k",
    "CPU B ms/1k",
    "failed runs (lost)",
  ];
}

function resultRows(summaries: ConfigSummary[]): string[][] {
  return summaries.map((s) => [
    s.config,
    range(s.burst),
    range(s.window),
    range(s.setupMs, 1),
    range(s.warmSetupMs, 1),
    range(s.p50Ms, 2),
    range(s.p99Ms, 2),
    range(s.senderRssMB),
    range(s.receiverRssMB),
    `${num(s.senderSettledRssMB.median)}/${num(s.receiverSettledRssMB.median)}`,
    range(s.senderCpuMsPer1k, 1),
    range(s.receiverCpuMsPer1k, 1),
    `${s.failed}/${s.runs}${s.burstLost > 0 ? ` (${num(s.burstLost)})` : ""}`,
  ]);
}

export interface Ratios {
  mode: string;
  versus: string;
  burst: number;
  window: number;
  setupMs: number;
  warmSetupMs: number;
  p99Ms: number;
  senderRss: number;
  senderCpuPer1k: number;
}

function ratios(summaries: ConfigSummary[], modes: string[]): Ratios[] {
  const find = (id: string): ConfigSummary | undefined => summaries.find((s) => s.config === id);
  return modes.flatMap((mode) => {
    const ferry = find(`ferry→ferry ${mode}`);
    if (!ferry) return [];
    return (["prosody", "ejabberd"] as const).flatMap((peer) => {
      const other = find(`${peer}→${peer} ${mode}`);
      if (!other) return [];
      const r = (f: (s: ConfigSummary) => Summary): number => f(ferry).median / f(other).median;
      return [
        {
          mode,
          versus: peer,
          burst: r((s) => s.burst),
          window: r((s) => s.window),
          setupMs: r((s) => s.setupMs),
          warmSetupMs: r((s) => s.warmSetupMs),
          p99Ms: r((s) => s.p99Ms),
          senderRss: r((s) => s.senderRssMB),
          senderCpuPer1k: r((s) => s.senderCpuMsPer1k),
        },
      ];
    });
  });
}

const RATIO_HEADER = [
  "Ferry / peer (same pair type)",
  "burst msgs/s",
  "window msgs/s",
  "set-up",
  "warm set-up",
  "p99",
  "RSS A",
  "CPU A /1k",
];

function ratioRows(list: Ratios[]): string[][] {
  const x = (v: number): string => ratio(v, 1);
  return list.map((r) => [
    `Ferry/${r.versus === "prosody" ? "Prosody" : "ejabberd"} ${r.mode}`,
    x(r.burst),
    x(r.window),
    x(r.setupMs),
    x(r.warmSetupMs),
    x(r.p99Ms),
    x(r.senderRss),
    x(r.senderCpuPer1k),
  ]);
}

function throughputText(t: ThroughputResult | undefined): string {
  if (t === undefined) return "–";
  if (t.lost > 0) return `${num(t.lost)} lost`;
  const extra =
    t.reordered > 0 || t.duplicated > 0 ? ` (reordered ${t.reordered}, duplicated ${t.duplicated})` : "";
  return `${num(t.msgsPerSec)} msgs/s${extra}`;
}

/** Medians over the runs of Ferry's time per state during the link set-up, largest first. */
function setupBreakdown(
  config: string,
  runs: RunResult[],
  side: "a" | "b",
  which: "setupStates" | "warmSetupStates",
): [string, number][] {
  const values = new Map<string, number[]>();
  for (const r of runs)
    if (r.config === config)
      for (const [state, ms] of Object.entries(r[which]?.[side] ?? {}))
        values.set(state, [...(values.get(state) ?? []), ms]);
  return [...values.entries()]
    .map(([state, list]): [string, number] => [state, summarize(list).median])
    .sort((x, y) => y[1] - x[1]);
}

function describeMachine(m: MachineInfo): string {
  return (
    `${m.os}, ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB RAM, Linux ${m.kernel}; ` +
    `Node ${m.node}, Prosody ${m.prosody}, ejabberd ${m.ejabberd}, dnsmasq ${m.dnsmasq}, OpenSSL ${m.openssl}; ` +
    `Ferry ${m.ferryCommit}${m.ferryChangedFiles > 0 ? ` + ${m.ferryChangedFiles} changed files in src/, machines/` : ""}`
  );
}

async function main(): Promise<number> {
  const opts = options();
  ensurePackages();
  const machine = machineInfo();
  const run = RunDir.create("bench");
  const dns = await startBenchDns(run);
  const certs = makeCertificates(run);
  // Logs of failed runs, from this run only.
  const failedDir = path.join(path.dirname(opts.out), "failed");
  rmSync(failedDir, { recursive: true, force: true });
  const env = { dns, certs, failedDir };
  const { workload } = opts;
  process.stdout.write(
    `Ferry benchmark: ${opts.configs.length} configurations × ${opts.rounds} round(s); ` +
      `${num(workload.messages)} messages for throughput (burst, and at most ${num(workload.window)} in flight), ` +
      `${num(workload.latencyRate)} msg/s × ` +
      `${workload.latencySeconds} s for latency\n${describeMachine(machine)}\n\n`,
  );
  const results: RunResult[] = [];
  const t0 = performance.now();
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const config of opts.configs) {
        const r = await runPair(config, round, workload, env);
        results.push(r);
        const line =
          `burst ${throughputText(r.burst)}, window ${throughputText(r.window)}, ` +
          `set-up ${num(r.setup?.setupMs ?? Number.NaN, 1)}/${num(r.warmSetup?.setupMs ?? Number.NaN, 1)} ms (cold/warm), ` +
          `p50/p99 ${num(r.latency?.p50 ?? Number.NaN, 2)}/${num(r.latency?.p99 ?? Number.NaN, 2)} ms, ` +
          `RSS ${num((r.sender?.rssBytes ?? Number.NaN) / MB)}/${num((r.receiver?.rssBytes ?? Number.NaN) / MB)} MB ` +
          `(3 s later ${num((r.sender?.settledRssBytes ?? Number.NaN) / MB)}/${num((r.receiver?.settledRssBytes ?? Number.NaN) / MB)}), ` +
          `CPU ${num(r.sender?.cpuMsPer1k ?? Number.NaN, 1)}/${num(r.receiver?.cpuMsPer1k ?? Number.NaN, 1)} ms/1k, ` +
          `others ${num(r.othersCpuPercent ?? Number.NaN)} % CPU` +
          (r.ok ? "" : ` — FAILED: ${r.failure ?? "?"}`);
        process.stdout.write(
          `[round ${round}] ${config.id.padEnd(26)} ${line} (${num(r.wallMs / 1000, 1)} s)\n`,
        );
      }
    }
  } finally {
    await dns.stop();
    run.remove();
  }
  const summaries = opts.configs.map((c) => summarizeConfig(c.id, results));
  const modes = [...new Set(opts.configs.map((c) => (c.tls ? "starttls" : "plain")))];
  const ratioList = ratios(summaries, modes);
  const elapsed = (performance.now() - t0) / 1000;
  const othersCpu = summarize(
    results.flatMap((r) => (r.othersCpuPercent === undefined ? [] : [r.othersCpuPercent])),
  );
  const noise =
    `Other processes on the machine used ${range(othersCpu)} % of its CPU (median, min–max over the runs) ` +
    `while the phases ran.`;

  process.stdout.write(
    `\nMedians of ${opts.rounds} round(s), (min–max); failed = runs that lost a message or broke\n\n`,
  );
  process.stdout.write(`${table(resultHeader(workload.window), resultRows(summaries))}\n\n`);
  if (ratioList.length > 0)
    process.stdout.write(
      `Ratios of medians (msgs/s: higher is better for Ferry; the others: lower is better)\n\n${table(RATIO_HEADER, ratioRows(ratioList))}\n\n`,
    );
  for (const config of opts.configs.filter((c) => c.a === "ferry" || c.b === "ferry")) {
    for (const [which, title] of [
      ["setupStates", "cold"],
      ["warmSetupStates", "warm"],
    ] as const) {
      const lines = (["a", "b"] as const).flatMap((side) =>
        setupBreakdown(config.id, results, side, which)
          .slice(0, 6)
          .map(([state, ms]) => `  ${side === "a" ? "A" : "B"} ${state}: ${num(ms, 1)} ms`),
      );
      if (lines.length > 0)
        process.stdout.write(
          `Ferry's states during the ${title} link set-up, ${config.id} (medians):\n${lines.join("\n")}\n`,
        );
    }
  }
  for (const s of summaries)
    for (const f of s.failures) process.stdout.write(`failure ${s.config}: ${f.slice(0, 400)}\n`);
  process.stdout.write(`${noise}\n${num(elapsed, 0)} s in all\n`);

  await writeJson(opts.out, {
    date: new Date().toISOString(),
    machine,
    rounds: opts.rounds,
    quick: opts.quick,
    workload,
    othersCpuPercent: othersCpu,
    summaries,
    ratios: ratioList,
    runs: results,
  });
  const md =
    `Measured ${new Date().toISOString().slice(0, 10)} on ${describeMachine(machine)}; ` +
    `${opts.rounds} round(s), ${num(workload.messages)} messages, latency at ${num(workload.latencyRate)} msg/s. ${noise}\n\n` +
    `${markdownTable(resultHeader(workload.window), resultRows(summaries))}\n\n` +
    (ratioList.length > 0 ? `${markdownTable(RATIO_HEADER, ratioRows(ratioList))}\n` : "");
  const mdFile = opts.out.replace(/\.json$/, ".md");
  writeFileSync(
    mdFile,
    await prettier.format(md, { parser: "markdown", printWidth: 110, proseWrap: "preserve" }),
  );
  process.stdout.write(`results: ${opts.out}, ${mdFile}\n`);
  return results.every((r) => r.ok) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
