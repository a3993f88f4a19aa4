/**
 * `npm run bench:profile`: the Ferry → Ferry throughput case (plain dialback, 100,000 messages by
 * default) with `node --cpu-prof` on the sending and the receiving Ferry; prints the top 25
 * self-time functions of each (locations mapped to the TypeScript sources) and the self time per
 * file or package, and writes them to bench/results/profile-latest.json.
 *
 * Only the samples of one phase count (`--phase window`, the default: the closed-loop throughput
 * phase, steady state with no loss; `burst`: the open-loop phase; `all`: the whole process life,
 * start-up included).
 *
 *   npm run bench:profile [-- --messages N] [--starttls] [--phase window|burst|all] [--top N] [--keep DIR]
 */
import { cpSync, mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { RunDir } from "../test/helpers/peers/runDir.js";
import { profilesIn, summarizeProfile, type ProfileSummary } from "./lib/cpuprofile.js";
import { ensurePackages, machineInfo, makeCertificates, startBenchDns } from "./lib/env.js";
import { pairId, runPair } from "./lib/pair.js";
import { num, table, writeJson } from "./lib/report.js";
import { FERRY_UNBUNDLED, REPO } from "./lib/servers.js";

function print(title: string, s: ProfileSummary): void {
  const total = s.busySamples + s.idleSamples;
  process.stdout.write(
    `\n${title}: ${num(s.durationMs / 1000, 1)} s profiled, ${num(s.busySamples)} busy samples ` +
      `(${num((100 * s.busySamples) / Math.max(1, total), 1)} % of all; idle excluded from the shares below)\n\n`,
  );
  process.stdout.write(
    `${table(
      ["self %", "self ms", "function", "where", "mostly called from"],
      s.functions.map((f) => [num(f.percent, 1), num(f.selfMs), f.name, f.location, f.caller]),
      ["r", "r", "l", "l", "l"],
    )}\n\n`,
  );
  process.stdout.write(
    `${table(
      ["self %", "file or package"],
      s.files.slice(0, 15).map((f) => [num(f.percent, 1), f.file]),
      ["r", "l"],
    )}\n`,
  );
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      messages: { type: "string" },
      starttls: { type: "boolean", default: false },
      top: { type: "string" },
      keep: { type: "string" },
      phase: { type: "string" },
    },
  });
  const messages = Number(values.messages ?? 100_000);
  const top = Number(values.top ?? 25);
  ensurePackages();
  const machine = machineInfo();
  const run = RunDir.create("bench-profile");
  const dns = await startBenchDns(run);
  const certs = makeCertificates(run);
  const summaries: Record<string, ProfileSummary> = {};
  const phase = values.phase ?? "window";
  if (phase !== "window" && phase !== "burst" && phase !== "all")
    throw new Error("--phase: window, burst or all");
  let phases: Record<string, [number, number]> = {};
  const phaseWindow = (): [number, number] | undefined => (phase === "all" ? undefined : phases[phase]);
  const config = {
    id: pairId("ferry", "ferry", values.starttls),
    a: "ferry",
    b: "ferry",
    tls: values.starttls,
  } as const;
  try {
    const result = await runPair(
      config,
      1,
      { messages, window: 5000, latencyRate: 2000, latencySeconds: 1 },
      {
        dns,
        certs,
        failedDir: path.join(REPO, "bench/results/failed"),
        ferryNodeOptions: (side, dir) => ["--cpu-prof", "--cpu-prof-dir", dir.file(`cpu-prof-${side}`)],
        // The bundle would put every function in one file: profile the same code unbundled.
        ferryEntry: FERRY_UNBUNDLED,
        onPhases: (p) => {
          phases = p;
        },
        beforeRemove: (dir) => {
          for (const side of ["a", "b"] as const) {
            const files = profilesIn(dir.file(`cpu-prof-${side}`));
            const file = files[0];
            if (file === undefined) {
              process.stderr.write(`no .cpuprofile from Ferry ${side} (did it exit cleanly?)\n`);
              continue;
            }
            summaries[side] = summarizeProfile(file, REPO, top, phaseWindow());
            if (values.keep !== undefined) {
              mkdirSync(values.keep, { recursive: true });
              cpSync(file, path.join(values.keep, `ferry-${side}.cpuprofile`));
            }
          }
        },
      },
    );
    const t = (d: { msgsPerSec: number; lost: number } | undefined): string =>
      d === undefined ? "–" : d.lost > 0 ? `${num(d.lost)} lost` : `${num(d.msgsPerSec)} msgs/s`;
    process.stdout.write(
      `${config.id}, ${num(messages)} messages under the profiler: closed loop (5,000 in flight) ${t(result.window)}, ` +
        `burst ${t(result.burst)}; CPU A ${num(result.sender?.cpuMsPer1k ?? Number.NaN, 1)} ms/1k, ` +
        `CPU B ${num(result.receiver?.cpuMsPer1k ?? Number.NaN, 1)} ms/1k (closed loop)\n` +
        `profile samples from: ${phase === "all" ? "the whole process life" : `the ${phase} phase`}\n`,
    );
    if (summaries.a) print("Sending Ferry (A: component in → S2S out)", summaries.a);
    if (summaries.b) print("Receiving Ferry (B: S2S in → component out)", summaries.b);
    await writeJson(path.join(REPO, "bench/results/profile-latest.json"), {
      date: new Date().toISOString(),
      machine,
      config: config.id,
      messages,
      result,
      sender: summaries.a,
      receiver: summaries.b,
    });
    return result.ok ? 0 : 1;
  } finally {
    await dns.stop();
    run.remove();
  }
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
