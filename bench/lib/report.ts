/** Text tables for the terminal and JSON files formatted the way the repository's prettier wants. */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import * as prettier from "prettier";
import type { Summary } from "./stats.js";

/**
 * Columns separated by two spaces; `align` gives "l" or "r" per column (default: the first left,
 * the others right).
 */
export function table(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const left = (i: number): boolean => (align ? align[i] === "l" : i === 0);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (left(i) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** The same as a Markdown table (for the README). */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(" | ")} |`;
  const rule = `| ${header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** A number with `digits` decimals and thousands separators; "–" for NaN. */
export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)", or just the median with a single run. */
export function range(s: Summary, digits = 0, scale = 1): string {
  if (s.n === 0) return "–";
  const m = num(s.median * scale, digits);
  if (s.n === 1) return m;
  return `${m} (${num(s.min * scale, digits)}–${num(s.max * scale, digits)})`;
}

export function ratio(a: number, b: number, digits = 2): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–";
  return `${num(a / b, digits)}×`;
}

/** Writes `value` as JSON, formatted with the repository's prettier settings. */
export async function writeJson(file: string, value: unknown): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const options = (await prettier.resolveConfig(file)) ?? {};
  const text = await prettier.format(JSON.stringify(value), { ...options, parser: "json", filepath: file });
  writeFileSync(file, text);
}
