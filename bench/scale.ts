/**
 * `npm run bench:scale`: 10,000 concurrent S2S links from one Ferry.
 *
 * Ferry A (a.fbench on 127.0.0.91) has a component; the load generator sends one message to each of
 * `d00000.remote.fbench` … `d09999.remote.fbench`. The private DNS server answers every name under
 * remote.fbench with 127.0.0.93 (a dnsmasq wildcard), where a fake S2S responder (lib/fakeS2s.ts,
 * in this process) accepts any stream and any dialback request at once, so every one of the 10,000
 * queues opens its own link (DNS + TCP + stream + dialback). Reported:
 *
 * - set-up rate: links/s from the first message written to the 10,000th delivered;
 * - heap and RSS per link: Ferry's `nodejs_heap_size_used_bytes` and
 *   `process_resident_memory_bytes` (/metrics) after a full GC (Ferry runs with --expose-gc and a
 *   preload that collects on SIGUSR2), minus the same before the links, divided by 10,000;
 * - bounce time for 10,000 dead links: the responder cuts every link and stops listening; once Ferry
 *   has seen the links close, one message per domain again; time until 10,000 errors are back at the
 *   component. Then the same for 10,000 fresh domains whose address refuses connections.
 *
 * `--profile` also runs Ferry under `--cpu-prof` and prints its top functions during the set-up and
 * while it bounces the dead links; `--heap-snapshot` writes heap snapshots before and with every link
 * up and prints what grew per link (use it with fewer links: a snapshot takes seconds and memory).
 *
 *   npm run bench:scale [-- --links N] [--profile] [--heap-snapshot]
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { RunDir, Teardown } from "../test/helpers/peers/runDir.js";
import { ComponentLink } from "./lib/component.js";
import { ADDRESS, DOMAIN, TLD, ensurePackages, machineInfo, startBenchDns } from "./lib/env.js";
import { profilesIn, summarizeProfile, type ProfileSummary } from "./lib/cpuprofile.js";
import { FakeS2s } from "./lib/fakeS2s.js";
import { heapGrowth, type HeapGrowth } from "./lib/heapsnapshot.js";
import { monotonicUs } from "./lib/pair.js";
import { sample, scrape, type Samples } from "./lib/metrics.js";
import { readCpuMs, readMemory } from "./lib/proc.js";
import { num, table, writeJson } from "./lib/report.js";
import { HTTP_PORT, REPO, SECRET, startServer } from "./lib/servers.js";
import { median, percentile, sorted } from "./lib/stats.js";

const KiB = 1024;
const MB = 1024 * 1024;

function openFileLimit(): number {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  return Number(line?.split(/\s+/)[3] ?? Number.NaN);
}

/** Resolves when `done()` holds; fails after `timeoutMs`, or when `progress()` is stuck for `stallMs`. */
async function waitUntil(
  what: string,
  done: () => boolean,
  progress: () => number,
  timeoutMs: number,
  stallMs = 30_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = progress();
  let lastChange = performance.now();
  while (!done()) {
    await sleep(20);
    const now = performance.now();
    const p = progress();
    if (p !== last) {
      last = p;
      lastChange = now;
    }
    if (now > deadline || now - lastChange > stallMs)
      throw new Error(`${what}: stuck at ${p} after ${num((now - lastChange) / 1000, 1)} s without progress`);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      links: { type: "string" },
      out: { type: "string" },
      profile: { type: "boolean", default: false },
      "heap-snapshot": { type: "boolean", default: false },
    },
  });
  const links = Number(values.links ?? 10_000);
  if (!Number.isInteger(links) || links <= 0) throw new Error("--links must be a positive integer");
  const out = path.resolve(values.out ?? path.join(REPO, "bench/results/scale-latest.json"));
  const fdLimit = openFileLimit();
  if (fdLimit < links + 1000)
    throw new Error(
      `ulimit -n is ${fdLimit}: ${links} links need ${links + 1000} file descriptors here and in Ferry ` +
        `(raise it with \`ulimit -n ${links + 2000}\` or pass --links)`,
    );
  ensurePackages();
  const machine = machineInfo();
  const run = RunDir.create("bench-scale");
  const teardown = new Teardown();
  const domain = (i: number, zone: string): string => `d${String(i).padStart(5, "0")}.${zone}.${TLD}`;
  const indexOf = (jid: string): number => Number(/@d(\d+)\./.exec(jid)?.[1] ?? -1);
  try {
    const dns = await startBenchDns(run, { [`remote.${TLD}`]: ADDRESS.fake, [`dead.${TLD}`]: ADDRESS.dead });
    teardown.add(() => dns.stop());
    const fake = new FakeS2s();
    await fake.listen(ADDRESS.fake, 5269);
    teardown.add(() => fake.stop());

    if (values["heap-snapshot"]) {
      mkdirSync(run.file("heap"));
      process.env.FERRY_BENCH_HEAP_SNAPSHOTS = run.file("heap");
    }
    const preload = pathToFileURL(path.join(REPO, "dist/bench/gcPreload.js")).href;
    const [ferry] = await teardown.startAll([
      startServer({
        kind: "ferry",
        address: ADDRESS.a,
        domain: DOMAIN.a,
        dnsServer: dns.server,
        dnsResolvConf: dns.resolvConf,
        hosts: {},
        runDir: run,
        nodeOptions: [
          "--expose-gc",
          "--import",
          preload,
          ...(values.profile ? ["--cpu-prof", "--cpu-prof-dir", run.file("cpu-prof")] : []),
        ],
      }),
    ]);
    const metricsUrl = `http://${ADDRESS.a}:${HTTP_PORT}/metrics`;
    // A full GC in Ferry (and a heap snapshot with --heap-snapshot); the scrape is answered after it.
    const settled = async (): Promise<Samples> => {
      ferry.process.signal("SIGUSR2");
      await sleep(300);
      return scrape(metricsUrl);
    };
    const component = await ComponentLink.connect(
      ferry.address,
      ferry.componentPort,
      ferry.component,
      SECRET,
    );
    teardown.add(() => {
      component.close();
    });
    const from = `load@${ferry.component}`;
    const send = async (prefix: string, zone: string): Promise<number> => {
      const t0 = performance.now();
      const parts: string[] = [];
      for (let i = 0; i < links;) {
        parts.length = 0;
        for (const end = Math.min(links, i + 500); i < end; i++)
          parts.push(
            `<message from='${from}' to='probe@${domain(i, zone)}' id='${prefix}${i}' type='chat'><body>hello</body></message>`,
          );
        await component.write(parts.join(""));
      }
      return t0;
    };
    process.stdout.write(
      `Ferry scale benchmark: ${num(links)} S2S links (ulimit -n ${fdLimit})\n` +
        `${machine.os}, ${machine.cores} cores (${machine.cpu}), Node ${machine.node}\n\n`,
    );

    // Before: the server with its component, nothing else.
    const before = await settled();
    const heap0 = sample(before, "nodejs_heap_size_used_bytes");
    const rss0 = sample(before, "process_resident_memory_bytes");

    // 1. Set-up: one message to each remote domain opens one link each.
    const arrivedAt = new Float64Array(links);
    let bounced = 0;
    const conditions = new Map<string, number>();
    /** The error text of the first bounce of each condition, which says what failed. */
    const examples = new Map<string, string>();
    let firstBounce = "";
    component.onMessage = (m) => {
      if (m.type !== "error") return;
      bounced++;
      const condition =
        /<([a-z-]+)\s+xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]/.exec(m.xml)?.[1] ?? "?";
      conditions.set(condition, (conditions.get(condition) ?? 0) + 1);
      if (!examples.has(condition))
        examples.set(condition, /<text[^>]*>([^<]*)<\/text>/.exec(m.xml)?.[1] ?? "");
      firstBounce ||= m.xml;
    };
    fake.onMessage = (to, at) => {
      const n = indexOf(to);
      if (n >= 0 && n < links) arrivedAt[n] = at;
    };
    const cpu0 = readCpuMs(ferry.pid);
    const t0 = await send("u", "remote");
    const t0Us = monotonicUs() - (performance.now() - t0) * 1000;
    const writeDone = performance.now();
    await waitUntil(
      "link set-up",
      () => fake.messages >= links || bounced > 0,
      () => fake.messages,
      300_000,
    );
    if (bounced > 0) throw new Error(`link set-up: ${bounced} bounced, first: ${firstBounce}`);
    const arrivals = sorted([...arrivedAt]);
    const setupMs = (arrivals.at(-1) ?? Number.NaN) - t0;
    const setupWindow: [number, number] = [t0Us, t0Us + setupMs * 1000];
    const setup = {
      links,
      seconds: setupMs / 1000,
      linksPerSec: (links * 1000) / setupMs,
      writeMs: writeDone - t0,
      firstDeliveryMs: (arrivals[0] ?? Number.NaN) - t0,
      halfDeliveredMs: percentile(arrivals, 50) - t0,
      streams: fake.streams,
      dialbacks: fake.authorized,
      ferryCpuMsPerLink: (readCpuMs(ferry.pid) - cpu0) / links,
    };

    // 2. Memory with every link up and idle.
    await sleep(2000);
    const up = await settled();
    const heap1 = sample(up, "nodejs_heap_size_used_bytes");
    const rss1 = sample(up, "process_resident_memory_bytes");
    const memory = {
      linksOpen: sample(up, "ferry_connections", 'kind="s2s_out"'),
      heapBeforeMB: heap0 / MB,
      heapAfterMB: heap1 / MB,
      rssBeforeMB: rss0 / MB,
      rssAfterMB: rss1 / MB,
      heapPerLinkKiB: (heap1 - heap0) / links / KiB,
      rssPerLinkKiB: (rss1 - rss0) / links / KiB,
      procRssMB: readMemory(ferry.pid).rss / MB,
      scrapeMs: 0,
    };
    // What one Prometheus scrape costs with every link up (three scrapes, the median).
    const scrapeTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await scrape(metricsUrl);
      scrapeTimes.push(performance.now() - t);
    }
    memory.scrapeMs = median(scrapeTimes);

    // 3a. The links die: the responder resets every connection and stops listening.
    const tDown = performance.now();
    await fake.stop();
    let open = memory.linksOpen;
    const poll = setInterval(() => {
      void scrape(metricsUrl).then((s) => {
        open = sample(s, "ferry_connections", 'kind="s2s_out"');
      });
    }, 100);
    await waitUntil(
      "links seen down",
      () => open === 0,
      () => open,
      60_000,
      60_000,
    ).finally(() => {
      clearInterval(poll);
    });
    const downNoticedMs = performance.now() - tDown;
    bounced = 0;
    conditions.clear();
    examples.clear();
    const cpu1 = readCpuMs(ferry.pid);
    const tDead = await send("x", "remote");
    const tDeadUs = monotonicUs() - (performance.now() - tDead) * 1000;
    await waitUntil(
      "bounces (dead links)",
      () => bounced >= links,
      () => bounced,
      600_000,
      60_000,
    );
    const deadWindow: [number, number] = [tDeadUs, monotonicUs()];
    const deadLinks = {
      downNoticedMs,
      ferryCpuMsPerLink: (readCpuMs(ferry.pid) - cpu1) / links,
      bounceSeconds: (performance.now() - tDead) / 1000,
      bounced,
      conditions: Object.fromEntries(conditions),
      examples: Object.fromEntries(examples),
    };

    // 3b. Fresh domains whose address refuses connections.
    bounced = 0;
    conditions.clear();
    examples.clear();
    const tFresh = await send("y", "dead");
    await waitUntil(
      "bounces (refused)",
      () => bounced >= links,
      () => bounced,
      600_000,
      60_000,
    );
    const refused = {
      bounceSeconds: (performance.now() - tFresh) / 1000,
      bounced,
      conditions: Object.fromEntries(conditions),
      examples: Object.fromEntries(examples),
    };
    const after = await settled();
    const final = {
      heapMB: sample(after, "nodejs_heap_size_used_bytes") / MB,
      rssMB: sample(after, "process_resident_memory_bytes") / MB,
      queuedStanzas: sample(after, "ferry_s2s_queue_stanzas"),
      backoffLinks: sample(after, "ferry_s2s_backoff_links"),
    };

    const rows = [
      ["links set up", num(links)],
      ["set-up time", `${num(setup.seconds, 2)} s`],
      ["set-up rate", `${num(setup.linksPerSec)} links/s`],
      ["  Ferry CPU per link set up", `${num(setup.ferryCpuMsPerLink, 2)} ms`],
      [
        "  first / half of the links delivered after",
        `${num(setup.firstDeliveryMs)} / ${num(setup.halfDeliveredMs)} ms`,
      ],
      ["open outgoing S2S connections (metric)", num(memory.linksOpen)],
      [
        "heap used before → after (after GC)",
        `${num(memory.heapBeforeMB, 1)} → ${num(memory.heapAfterMB, 1)} MB`,
      ],
      ["heap per link", `${num(memory.heapPerLinkKiB, 2)} KiB`],
      ["RSS before → after", `${num(memory.rssBeforeMB, 1)} → ${num(memory.rssAfterMB, 1)} MB`],
      ["RSS per link", `${num(memory.rssPerLinkKiB, 2)} KiB`],
      ["one /metrics scrape with every link up", `${num(memory.scrapeMs)} ms`],
      ["links cut → Ferry saw all closed", `${num(deadLinks.downNoticedMs)} ms`],
      [`bounce ${num(links)} dead links (1 stanza each)`, `${num(deadLinks.bounceSeconds, 2)} s`],
      ["  Ferry CPU per dead link bounced", `${num(deadLinks.ferryCpuMsPerLink, 2)} ms`],
      [
        "  conditions",
        Object.entries(deadLinks.conditions)
          .map(([c, n]) => `${c} ${num(n)}`)
          .join(", "),
      ],
      [`bounce ${num(links)} refused fresh domains`, `${num(refused.bounceSeconds, 2)} s`],
      [
        "  conditions",
        Object.entries(refused.conditions)
          .map(([c, n]) => `${c} ${num(n)}`)
          .join(", "),
      ],
      ["heap / RSS at the end (after GC)", `${num(final.heapMB, 1)} / ${num(final.rssMB, 1)} MB`],
    ];
    process.stdout.write(`${table(["figure", "value"], rows, ["l", "l"])}\n`);
    let heap: HeapGrowth[] | undefined;
    if (values["heap-snapshot"]) {
      heap = heapGrowth(run.file("heap", "1.heapsnapshot"), run.file("heap", "2.heapsnapshot"), links);
      process.stdout.write(
        `\nHeap growth per link by kind (heap snapshots after GC, before and with every link up):\n\n${table(
          ["bytes/link", "objects/link", "kind (type:constructor or function)"],
          heap.map((h) => [num(h.bytesPerUnit), num(h.countPerUnit, 2), h.kind]),
          ["r", "r", "l"],
        )}\n`,
      );
    }
    const profiles: Record<string, ProfileSummary> = {};
    if (values.profile) {
      await ferry.stop();
      const file = profilesIn(run.file("cpu-prof"))[0];
      if (file !== undefined) {
        for (const [name, window] of [
          ["link set-up", setupWindow],
          ["bouncing the dead links", deadWindow],
        ] as const) {
          const profile = summarizeProfile(file, REPO, 25, window);
          profiles[name] = profile;
          process.stdout.write(
            `\nFerry's CPU profile, ${name} (${num(profile.busySamples)} busy samples, idle excluded):\n\n` +
              `${table(
                ["self %", "function", "where", "mostly called from"],
                profile.functions.map((f) => [num(f.percent, 1), f.name, f.location, f.caller]),
                ["r", "l", "l", "l"],
              )}\n\n${table(
                ["self %", "file or package"],
                profile.files.slice(0, 15).map((f) => [num(f.percent, 1), f.file]),
                ["r", "l"],
              )}\n`,
          );
        }
      }
    }
    await writeJson(out, {
      date: new Date().toISOString(),
      machine,
      setup,
      memory,
      deadLinks,
      refused,
      final,
      profiles,
    });
    process.stdout.write(`results: ${out}\n`);
    return 0;
  } finally {
    await teardown.run();
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
