/**
 * Reads V8 `.heapsnapshot` files (what `v8.writeHeapSnapshot()` writes): self size per kind of
 * object, and the difference between two snapshots, to see what a link costs in memory.
 */
import { readFileSync } from "node:fs";

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Kinds whose names are contents (string text, numbers): grouped by kind alone. */
const UNNAMED = new Set(["string", "concatenated string", "sliced string", "number", "bigint", "symbol"]);

/** Self size (bytes) and count per "type:name" (object: its constructor; closure: its function). */
export function heapByKind(file: string): Map<string, { bytes: number; count: number }> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const out = new Map<string, { bytes: number; count: number }>();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt] ?? 0] ?? "?";
    const key = UNNAMED.has(type)
      ? type
      : `${type}:${(snap.strings[nodes[i + nameAt] ?? 0] ?? "").slice(0, 60)}`;
    const entry = out.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += nodes[i + sizeAt] ?? 0;
    entry.count++;
    out.set(key, entry);
  }
  return out;
}

export interface HeapGrowth {
  kind: string;
  bytesPerUnit: number;
  countPerUnit: number;
}

/** What grew from `before` to `after`, divided by `units` (e.g. links), largest first. */
export function heapGrowth(before: string, after: string, units: number, top = 25): HeapGrowth[] {
  const a = heapByKind(before);
  const b = heapByKind(after);
  const rows: HeapGrowth[] = [];
  for (const [kind, { bytes, count }] of b) {
    const old = a.get(kind) ?? { bytes: 0, count: 0 };
    rows.push({ kind, bytesPerUnit: (bytes - old.bytes) / units, countPerUnit: (count - old.count) / units });
  }
  return rows.sort((x, y) => y.bytesPerUnit - x.bytesPerUnit).slice(0, top);
}
