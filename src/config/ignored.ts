// MongooseIM options that configure the Erlang runtime rather than XMPP. They are accepted so that
// MongooseIM configurations load, removed before validation, and reported as warnings.
import type { PathSegment } from "./locate.js";

export interface IgnoredOption {
  /** Option path; "*" matches any key or array index. */
  readonly pattern: readonly string[];
  readonly reason: string;
}

const LISTENER = ["listen", "*", "*"] as const;
const TLS_TABLES = [
  [...LISTENER, "tls"],
  ["s2s", "outgoing", "tls"],
] as const;

export const IGNORED_OPTIONS: readonly IgnoredOption[] = [
  {
    pattern: [...LISTENER, "proto"],
    reason: 'Ferry listens on TCP only (MongooseIM, too, accepts only "tcp")',
  },
  {
    pattern: [...LISTENER, "num_acceptors"],
    reason: "Node.js accepts connections on its event loop; there is no acceptor process pool",
  },
  {
    pattern: [...LISTENER, "reuse_port"],
    reason: "SO_REUSEPORT needs Node.js 22.12 or later; Ferry runs on Node.js 20",
  },
  {
    pattern: [...LISTENER, "hibernate_after"],
    reason: "Erlang process hibernation has no Node.js equivalent",
  },
  ...TLS_TABLES.flatMap((table): IgnoredOption[] => [
    {
      pattern: [...table, "module"],
      reason: "it chooses an Erlang TLS library (fast_tls or just_tls); Ferry always uses Node's OpenSSL",
    },
    {
      pattern: [...table, "protocol_options"],
      reason: "these are fast_tls OpenSSL flags; use tls.versions to choose TLS versions",
    },
    {
      pattern: [...table, "dhfile"],
      reason: "Ferry negotiates ECDHE (and TLS 1.3 groups) only and loads no finite-field DH parameters",
    },
  ]),
];

export interface IgnoredHit {
  readonly path: PathSegment[];
  readonly reason: string;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function children(value: unknown): [PathSegment, unknown][] {
  if (Array.isArray(value)) return value.map((v: unknown, i): [PathSegment, unknown] => [i, v]);
  if (isTable(value)) return Object.entries(value);
  return [];
}

function strip(
  value: unknown,
  pattern: readonly string[],
  path: PathSegment[],
  reason: string,
  hits: IgnoredHit[],
): void {
  const [head, ...rest] = pattern;
  if (head === undefined) return;
  if (rest.length === 0) {
    if (isTable(value) && Object.hasOwn(value, head)) {
      hits.push({ path: [...path, head], reason });
      Reflect.deleteProperty(value, head);
    }
    return;
  }
  for (const [key, child] of children(value)) {
    if (head === "*" || head === key) strip(child, rest, [...path, key], reason, hits);
  }
}

/** Removes ignored options from a copy of the parsed TOML and says which were there. */
export function stripIgnoredOptions(raw: Record<string, unknown>): {
  data: Record<string, unknown>;
  ignored: IgnoredHit[];
} {
  const data = structuredClone(raw);
  const ignored: IgnoredHit[] = [];
  for (const option of IGNORED_OPTIONS) strip(data, option.pattern, [], option.reason, ignored);
  return { data, ignored };
}
