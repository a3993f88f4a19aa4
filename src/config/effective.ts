// `ferry check-config FILE` prints the effective configuration: every default filled in, in TOML that
// loads again, with secrets (options marked `secret` in the schema) redacted.
import { stringify } from "smol-toml";
import { inspectSchema, schemaAt } from "./introspect.js";
import type { PathSegment } from "./locate.js";
import { configSchema, type Config } from "./schema.js";

export const REDACTED = "(redacted)";

function isSecret(path: readonly PathSegment[]): boolean {
  const schema = schemaAt(configSchema, path);
  return schema !== undefined && inspectSchema(schema).meta.secret === true;
}

/** Plain TOML-ready data: Infinity back to MongooseIM's "infinity", secrets replaced. */
function toToml(value: unknown, path: PathSegment[]): unknown {
  if (typeof value === "string" && isSecret(path)) return REDACTED;
  if (value === Infinity) return "infinity";
  if (Array.isArray(value)) return value.map((v: unknown, i) => toToml(v, [...path, i]));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toToml(v, [...path, k])]));
  }
  return value;
}

export function formatEffectiveConfig(config: Config): string {
  const body = stringify(toToml(config, []));
  return `# Effective configuration: defaults filled in, secrets shown as "${REDACTED}".\n\n${body}`;
}
