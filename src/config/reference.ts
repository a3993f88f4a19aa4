// The README's configuration reference, generated from the schema's metadata so that meanings and
// defaults live next to the validation. `node dist/src/config/reference.js --write` rewrites the README
// section; without --write the section is printed; --check exits 1 when the README is stale.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as z from "zod";
import { IGNORED_OPTIONS } from "./ignored.js";
import { optionRows, type SchemaInfo } from "./introspect.js";
import { configSchema } from "./schema.js";

export const REFERENCE_START = "<!-- config-reference:start -->";
export const REFERENCE_END = "<!-- config-reference:end -->";

/** MongooseIM writes large numbers with digit separators (`600_000`); so does the reference. */
function tomlNumber(n: number): string {
  if (n === Infinity) return '"infinity"';
  return Math.abs(n) >= 10_000 && Number.isInteger(n)
    ? String(n).replace(/\B(?=(\d{3})+(?!\d))/g, "_")
    : String(n);
}

/** A default value in TOML spelling. */
export function tomlValue(value: unknown): string {
  if (typeof value === "number") return tomlNumber(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    return entries.length === 0
      ? "{}"
      : `{ ${entries.map(([k, v]) => `${k} = ${tomlValue(v)}`).join(", ")} }`;
  }
  return String(value);
}

function defaultText(info: SchemaInfo): string {
  if (info.meta.docDefault !== undefined) return info.meta.docDefault;
  if (info.default !== undefined) return `\`${tomlValue(info.default.value)}\``;
  if (info.optional || info.core instanceof z.ZodObject) return "not set";
  return "required";
}

function meaningText(info: SchemaInfo): string {
  const meaning = info.description ?? "";
  return info.meta.allowed === undefined ? meaning : `${meaning} Allowed: ${info.meta.allowed}.`.trim();
}

const cell = (s: string): string => s.replaceAll("|", "\\|");

/** A Markdown table padded the way Prettier pads it, so `prettier --check` leaves the README alone. */
function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${widths.map((w, i) => (cells[i] ?? "").padEnd(w)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

/** The text between the README markers (without the markers). */
export function generateConfigReference(): string {
  const rows = optionRows(configSchema).map(({ option, info }) => [
    `\`${option}\``,
    cell(defaultText(info)),
    cell(meaningText(info)),
  ]);
  // The listener type is the second "*"; the index of the [[listen.TYPE]] table is implied.
  const ignored = IGNORED_OPTIONS.map(({ pattern, reason }) => [
    `\`${pattern.filter((p, i) => !(p === "*" && i === 2)).join(".")}\``,
    cell(`${reason.charAt(0).toUpperCase()}${reason.slice(1)}.`),
  ]);
  return [
    "<!-- Generated from src/config/schema.ts by `node dist/src/config/reference.js --write`; do not edit. -->",
    "",
    "Options keep MongooseIM's names and defaults; times are in milliseconds unless the meaning says",
    'otherwise, and `"infinity"` means no limit. `listen.*` options belong in each `[[listen.TYPE]]` table.',
    "",
    ...markdownTable(["option", "default", "meaning"], rows),
    "",
    "MongooseIM options that configure the Erlang runtime are accepted, ignored, and reported as warnings:",
    "",
    ...markdownTable(["option", "why it is ignored"], ignored),
  ].join("\n");
}

/** Replaces the text between the markers; throws if the markers are missing. */
export function replaceReferenceSection(readme: string, reference: string): string {
  const start = readme.indexOf(REFERENCE_START);
  const end = readme.indexOf(REFERENCE_END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`README.md lacks the ${REFERENCE_START} … ${REFERENCE_END} markers`);
  }
  return `${readme.slice(0, start + REFERENCE_START.length)}\n\n${reference}\n\n${readme.slice(end)}`;
}

/** The text currently between the markers, trimmed. */
export function extractReferenceSection(readme: string): string | undefined {
  const start = readme.indexOf(REFERENCE_START);
  const end = readme.indexOf(REFERENCE_END);
  if (start === -1 || end === -1 || end < start) return undefined;
  return readme.slice(start + REFERENCE_START.length, end).trim();
}

/** dist/src/config/reference.js → the repository root's README.md. */
export const README_PATH = fileURLToPath(new URL("../../../README.md", import.meta.url));

async function main(args: readonly string[]): Promise<number> {
  const reference = generateConfigReference();
  if (args.includes("--write")) {
    const readme = await readFile(README_PATH, "utf8");
    await writeFile(README_PATH, replaceReferenceSection(readme, reference));
    return 0;
  }
  if (args.includes("--check")) {
    const current = extractReferenceSection(await readFile(README_PATH, "utf8"));
    if (current === reference) return 0;
    process.stderr.write(
      "README.md's configuration reference is stale: run `node dist/src/config/reference.js --write`\n",
    );
    return 1;
  }
  process.stdout.write(`${reference}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
