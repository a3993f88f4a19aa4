// TOML text → validated, defaulted, deeply frozen Config, or a ConfigError listing every problem.
import { readFile } from "node:fs/promises";
import { parse, TomlError } from "smol-toml";
import type * as z from "zod";
import { ConfigError, formatProblem, type ConfigProblem, type ConfigWarning } from "./errors.js";
import { stripIgnoredOptions } from "./ignored.js";
import { knownKeys, schemaAt } from "./introspect.js";
import { formatPath, TomlLocator, type PathSegment } from "./locate.js";
import { configSchema, type Config } from "./schema.js";
import { closestMatch, OPTION_HINTS } from "./suggest.js";

export { ConfigError, type ConfigProblem, type ConfigWarning } from "./errors.js";
export type { Config } from "./schema.js";

export interface LoadedConfig {
  readonly config: Config;
  readonly warnings: ConfigWarning[];
}

export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError([
      { file: path, line: undefined, path: "", message: `cannot read the file: ${reason}` },
    ]);
  }
  return loadConfigText(text, path);
}

export function loadConfigText(text: string, fileName: string): LoadedConfig {
  const raw = parseToml(text, fileName);
  const locator = new TomlLocator(text);
  const { data, ignored } = stripIgnoredOptions(raw);
  const warnings = ignored
    .map(({ path, reason }): ConfigWarning => {
      const problem: ConfigProblem = {
        file: fileName,
        line: locator.line(path),
        path: formatPath(path),
        message: `option "${String(path.at(-1))}" is accepted for MongooseIM compatibility and ignored: ${reason}`,
      };
      return { ...problem, text: formatProblem(problem) };
    })
    .sort(byLine);
  const result = configSchema.safeParse(data);
  if (!result.success) {
    throw new ConfigError(describeIssues(result.error.issues, data, locator, fileName));
  }
  return { config: deepFreeze(result.data), warnings };
}

function parseToml(text: string, fileName: string): Record<string, unknown> {
  try {
    return parse(text, { unsafeKeyBehaviour: "throw" });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    const problem: ConfigProblem = {
      file: fileName,
      line: err.line,
      path: "",
      message: `TOML syntax error: ${reason}`,
    };
    const where = `${fileName}:${err.line}:${err.column}`;
    throw new ConfigError([problem], `${where}: TOML syntax error: ${reason}\n${err.codeblock.trimEnd()}`);
  }
}

function toSegments(path: readonly PropertyKey[]): PathSegment[] {
  return path.map((p) => (typeof p === "number" ? p : String(p)));
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let current = data;
  for (const segment of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<PathSegment, unknown>)[segment];
  }
  return current;
}

/** How an offending value reads in an error: as TOML would spell it. */
function describeValue(value: unknown): string {
  if (typeof value === "string")
    return value.length > 60 ? `${JSON.stringify(value.slice(0, 57))}...` : JSON.stringify(value);
  if (typeof value === "number")
    return Number.isNaN(value)
      ? "nan"
      : value === Infinity
        ? "inf"
        : value === -Infinity
          ? "-inf"
          : String(value);
  if (typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value instanceof Date) return "a date";
  if (Array.isArray(value)) return "an array";
  return "a table";
}

function unknownOption(key: string, tablePath: PathSegment[]): string {
  const generic = formatPath(tablePath.filter((s) => typeof s === "string"));
  const hint = OPTION_HINTS[generic === "" ? key : `${generic}.${key}`];
  if (hint !== undefined) return `unknown option "${key}" (${hint})`;
  const table = schemaAt(configSchema, tablePath);
  const suggestion = table === undefined ? undefined : closestMatch(key, knownKeys(table));
  return suggestion === undefined
    ? `unknown option "${key}"`
    : `unknown option "${key}" (did you mean "${suggestion}"?)`;
}

function describeIssues(
  issues: readonly z.core.$ZodIssue[],
  data: unknown,
  locator: TomlLocator,
  file: string,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (path: PathSegment[], message: string) =>
    problems.push({ file, line: locator.line(path), path: formatPath(path), message });

  for (const issue of issues) {
    const path = toSegments(issue.path);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) add([...path, key], unknownOption(key, path));
      continue;
    }
    const value = valueAt(data, path);
    if (!issue.message.startsWith("expected ")) {
      add(path, issue.message);
    } else if (value === undefined) {
      add(path, `missing mandatory option "${String(path.at(-1))}" (${issue.message})`);
    } else {
      add(path, `${issue.message}, got ${describeValue(value)}`);
    }
  }
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const id = `${p.path}\n${p.message}`;
      return seen.has(id) ? false : (seen.add(id), true);
    })
    .sort(byLine);
}

function byLine(a: ConfigProblem, b: ConfigProblem): number {
  return (a.line ?? 0) - (b.line ?? 0);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
