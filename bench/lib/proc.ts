/** What /proc says about a server process: resident memory and CPU time. */
import { readFileSync } from "node:fs";

/** Clock ticks per second of utime/stime in /proc/PID/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

export interface ProcMemory {
  /** VmRSS: resident set size now, in bytes. */
  rss: number;
  /** VmHWM: the highest resident set size so far, in bytes. */
  peakRss: number;
}

function statusField(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return match?.[1] === undefined ? Number.NaN : Number(match[1]) * 1024;
}

export function readMemory(pid: number): ProcMemory {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  return { rss: statusField(text, "VmRSS"), peakRss: statusField(text, "VmHWM") };
}

/** utime + stime of `pid` (threads included), in milliseconds. */
export function readCpuMs(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the whole line are utime and stime: 11 and 12 after the ")".
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / USER_HZ;
}

/** The executable name /proc gives for `pid` (e.g. "beam.smp", "lua5.4", "node"). */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}

/** Busy CPU time of the whole machine (all CPUs, everything but idle and iowait), in milliseconds. */
export function machineBusyMs(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [, ...fields] = line.trim().split(/\s+/);
  const ticks = fields.map(Number);
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return ((total - idle) * 1000) / USER_HZ;
}
