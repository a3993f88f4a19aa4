/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes at exit): self time per function, with
 * locations mapped back to the TypeScript sources through the compiled files' source maps.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotFunction {
  name: string;
  /** "src/xml/streamParser.ts:120", "node_modules/saxes/saxes.js:1500", "node:net:…", or "(native)". */
  location: string;
  samples: number;
  selfMs: number;
  /** Share of the busy samples (idle excluded). */
  percent: number;
  /** The caller most of these samples came through, "name (location)" (for natives: who called). */
  caller: string;
}

export interface ProfileSummary {
  file: string;
  durationMs: number;
  busySamples: number;
  idleSamples: number;
  functions: HotFunction[];
  /** Self time per file (or package), largest first. */
  files: { file: string; samples: number; percent: number }[];
}

const maps = new Map<string, SourceMap | undefined>();

function sourceMapFor(jsFile: string): SourceMap | undefined {
  if (maps.has(jsFile)) return maps.get(jsFile);
  let map: SourceMap | undefined;
  try {
    const mapFile = `${jsFile}.map`;
    if (existsSync(mapFile))
      map = new SourceMap(JSON.parse(readFileSync(mapFile, "utf8")) as SourceMapPayload);
  } catch {
    map = undefined;
  }
  maps.set(jsFile, map);
  return map;
}

/** Where a call frame is, relative to the repository root, in TypeScript terms when possible. */
function locate(frame: CallFrame, root: string): string {
  const { url, lineNumber, columnNumber } = frame;
  if (url === "") return "(native)";
  if (url.startsWith("node:")) return `${url}:${lineNumber + 1}`;
  if (!url.startsWith("file://")) return `${url}:${lineNumber + 1}`;
  const file = fileURLToPath(url);
  const map = file.includes(`${path.sep}node_modules${path.sep}`) ? undefined : sourceMapFor(file);
  if (map) {
    const entry = map.findEntry(lineNumber, columnNumber) as
      { originalSource?: string; originalLine?: number } | Record<string, never>;
    if ("originalSource" in entry && entry.originalSource !== undefined && entry.originalLine !== undefined) {
      const source = entry.originalSource.startsWith("file://")
        ? fileURLToPath(entry.originalSource)
        : path.resolve(path.dirname(file), entry.originalSource);
      return `${path.relative(root, source)}:${entry.originalLine + 1}`;
    }
  }
  return `${path.relative(root, file)}:${lineNumber + 1}`;
}

const fileOf = (location: string): string => {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(location);
  if (nm?.[1] !== undefined) return `node_modules/${nm[1]}`;
  return location.replace(/:\d+$/, "");
};

/**
 * The `top` functions by self time. With `window` ([start, end] in CLOCK_MONOTONIC µs, the clock of
 * the profile's timestamps), only the samples taken inside it count.
 */
export function summarizeProfile(
  file: string,
  root: string,
  top = 25,
  window?: [number, number],
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n);
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const count = new Map<number, number>();
  const time = new Map<number, number>();
  let at = profile.startTime;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (window !== undefined && (at < window[0] || at > window[1])) continue;
    first = Math.min(first, at);
    last = Math.max(last, at);
    const id = samples[i] ?? -1;
    count.set(id, (count.get(id) ?? 0) + 1);
    // A sample's time is the gap to the next one.
    time.set(id, (time.get(id) ?? 0) + (deltas[i + 1] ?? 0) / 1000);
  }
  const agg = new Map<
    string,
    { name: string; location: string; samples: number; selfMs: number; callers: Map<string, number> }
  >();
  let idle = 0;
  let busy = 0;
  for (const [id, n] of count) {
    const node = byId.get(id);
    if (!node) continue;
    const name = node.callFrame.functionName === "" ? "(anonymous)" : node.callFrame.functionName;
    if (name === "(idle)") {
      idle += n;
      continue;
    }
    busy += n;
    const location = locate(node.callFrame, root);
    const key = `${name} ${location}`;
    const entry = agg.get(key) ?? {
      name,
      location,
      samples: 0,
      selfMs: 0,
      callers: new Map<string, number>(),
    };
    entry.samples += n;
    entry.selfMs += time.get(id) ?? 0;
    // The nearest caller that is not the same function (recursion) nor a native helper.
    let up = parent.get(id);
    while (up && (up.callFrame.functionName === node.callFrame.functionName || up.callFrame.url === ""))
      up = parent.get(up.id);
    if (up) {
      const caller = `${up.callFrame.functionName === "" ? "(anonymous)" : up.callFrame.functionName} (${locate(up.callFrame, root)})`;
      entry.callers.set(caller, (entry.callers.get(caller) ?? 0) + n);
    }
    agg.set(key, entry);
  }
  const functions = [...agg.values()]
    .sort((a, b) => b.samples - a.samples)
    .slice(0, top)
    .map(({ callers, ...f }) => ({
      ...f,
      percent: (100 * f.samples) / Math.max(1, busy),
      caller: [...callers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "",
    }));
  const perFile = new Map<string, number>();
  for (const f of agg.values()) {
    const key = f.location === "(native)" ? f.name : fileOf(f.location);
    perFile.set(key, (perFile.get(key) ?? 0) + f.samples);
  }
  const files = [...perFile.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f, n]) => ({ file: f, samples: n, percent: (100 * n) / Math.max(1, busy) }));
  return {
    file,
    durationMs: last > first ? (last - first) / 1000 : 0,
    busySamples: busy,
    idleSamples: idle,
    functions,
    files,
  };
}

/** The `.cpuprofile` files in `dir` (none when the process did not exit cleanly). */
export function profilesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => path.join(dir, f));
}
