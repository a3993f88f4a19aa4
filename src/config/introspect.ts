// Reading the zod schema as data: which options exist under a path (for "did you mean"), what they
// mean and default to (for the README reference), which hold secrets (for the effective config).
import * as z from "zod";
import type { OptionMeta } from "./leaves.js";
import type { PathSegment } from "./locate.js";

type Schema = z.core.$ZodType;

export interface SchemaInfo {
  /** The schema under its default/optional/pipe wrappers. */
  readonly core: Schema;
  readonly description: string | undefined;
  readonly meta: OptionMeta;
  /** Present when the schema has a default; `value` is what it produces. */
  readonly default: { value: unknown } | undefined;
  readonly optional: boolean;
}

function readMeta(schema: Schema): { description?: string } & OptionMeta {
  const meta = z.globalRegistry.get(schema);
  if (meta === undefined) return {};
  const str = (k: string): string | undefined => (typeof meta[k] === "string" ? meta[k] : undefined);
  const out: { description?: string } & OptionMeta = {};
  const description = str("description");
  const allowed = str("allowed");
  const docDefault = str("docDefault");
  const keyName = str("keyName");
  if (description !== undefined) out.description = description;
  if (allowed !== undefined) out.allowed = allowed;
  if (docDefault !== undefined) out.docDefault = docDefault;
  if (keyName !== undefined) out.keyName = keyName;
  if (meta.secret === true) out.secret = true;
  return out;
}

/** Peels default/prefault/optional/pipe wrappers, merging their metadata (outer wins). */
export function inspectSchema(schema: Schema): SchemaInfo {
  const layers: ReturnType<typeof readMeta>[] = [];
  let current = schema;
  let dflt: { value: unknown } | undefined;
  let optional = false;
  for (;;) {
    layers.push(readMeta(current));
    if (current instanceof z.ZodDefault) {
      dflt ??= { value: current._zod.def.defaultValue };
      current = current.unwrap();
    } else if (current instanceof z.ZodPrefault) {
      current = current.unwrap();
    } else if (current instanceof z.ZodOptional) {
      optional = true;
      current = current.unwrap();
    } else if (current instanceof z.ZodPipe) {
      current = current.in;
    } else {
      break;
    }
  }
  const merged = Object.assign({}, ...layers.reverse()) as ReturnType<typeof readMeta>;
  const { description, ...meta } = merged;
  return { core: current, description, meta, default: dflt, optional };
}

/** The child schema for one path segment, or undefined if the schema has no such child. */
function child(schema: Schema, segment: PathSegment): Schema | undefined {
  const { core } = inspectSchema(schema);
  if (core instanceof z.ZodObject) {
    const shape: Readonly<Record<string, Schema>> = core.shape;
    return typeof segment === "string" && Object.hasOwn(shape, segment) ? shape[segment] : undefined;
  }
  if (core instanceof z.ZodArray) return typeof segment === "number" ? core.element : undefined;
  if (core instanceof z.ZodRecord) return typeof segment === "string" ? core.valueType : undefined;
  return undefined;
}

export function schemaAt(root: Schema, path: readonly PathSegment[]): Schema | undefined {
  let current: Schema | undefined = root;
  for (const segment of path) {
    if (current === undefined) return undefined;
    current = child(current, segment);
  }
  return current;
}

/** Keys of the table at this schema, with dotted keys of nested tables (`outgoing.dns.timeout`). */
export function knownKeys(schema: Schema, depth = 3): string[] {
  const { core } = inspectSchema(schema);
  if (!(core instanceof z.ZodObject) || depth === 0) return [];
  const shape: Readonly<Record<string, Schema>> = core.shape;
  return Object.entries(shape).flatMap(([key, value]) => [
    key,
    ...knownKeys(value, depth - 1).map((sub) => `${key}.${sub}`),
  ]);
}

export interface OptionRow {
  /** MongooseIM-style name: `listen.s2s.port`, `shaper.NAME.max_rate`. */
  readonly option: string;
  readonly info: SchemaInfo;
}

/** Every documented option, depth first in schema order. */
export function optionRows(root: Schema, prefix = ""): OptionRow[] {
  const info = inspectSchema(root);
  const { core } = info;
  const rows: OptionRow[] = [];
  const isLeaf = info.meta.allowed !== undefined;
  if (prefix !== "" && (isLeaf || info.description !== undefined)) rows.push({ option: prefix, info });
  if (isLeaf) return rows;
  const join = (key: string) => (prefix === "" ? key : `${prefix}.${key}`);
  if (core instanceof z.ZodObject) {
    const shape: Readonly<Record<string, Schema>> = core.shape;
    for (const [key, value] of Object.entries(shape)) {
      rows.push(...optionRows(value, join(key)));
    }
  } else if (core instanceof z.ZodArray) {
    rows.push(...optionRows(core.element, prefix));
  } else if (core instanceof z.ZodRecord) {
    rows.push(...optionRows(core.valueType, join(info.meta.keyName ?? "NAME")));
  }
  return rows;
}
