// Leaf value schemas. Each one fails with a single message, "expected <allowed>", and carries the
// same `allowed` text as metadata so the README reference and the error messages never disagree.
import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import * as z from "zod";

/** Metadata keys Ferry puts on schemas (besides zod's own `description`). */
export interface OptionMeta {
  /** What values are allowed, in words; used in errors ("expected …") and in the reference table. */
  allowed?: string;
  /** How the reference table shows a default that is computed at load time. */
  docDefault?: string;
  /** Placeholder for the keys of a `[table.NAME]` record, e.g. "NAME". */
  keyName?: string;
  /** The option may hold a secret: the effective config redacts it. */
  secret?: boolean;
}

function expected(allowed: string): { error: string } {
  return { error: `expected ${allowed}` };
}

function leaf<T extends z.ZodType>(schema: T, allowed: string): T {
  return schema.meta({ allowed });
}

/** Attaches the option's meaning (and optionally a computed default's wording) to a schema. */
export function doc<T extends z.ZodType>(schema: T, description: string, extra: OptionMeta = {}): T {
  return schema.meta({ description, ...extra });
}

export function integer(min: number, allowed: string) {
  const e = expected(allowed);
  return leaf(z.number(e).int(e).min(min, e).max(Number.MAX_SAFE_INTEGER, e), allowed);
}

export const positiveInt = () => integer(1, "a positive integer");

/** MongooseIM's `int_or_infinity`: the TOML string "infinity" becomes the number Infinity. */
export function intOrInfinity(min: 0 | 1) {
  const allowed = `${min === 0 ? "a non-negative" : "a positive"} integer or "infinity"`;
  const e = expected(allowed);
  const schema = z
    .union([z.number(e).int(e).min(min, e).max(Number.MAX_SAFE_INTEGER, e), z.literal("infinity", e)], e)
    .transform((v): number => (v === "infinity" ? Infinity : v));
  return leaf(schema, allowed);
}

/** Listener ports may be 0 (the OS picks a free port), which tests rely on. */
export function port(allowZero: boolean) {
  const allowed = allowZero ? "a port number (0-65535, 0 = any free port)" : "a port number (1-65535)";
  const e = expected(allowed);
  return leaf(
    z
      .number(e)
      .int(e)
      .min(allowZero ? 0 : 1, e)
      .max(65535, e),
    allowed,
  );
}

export const bool = () => leaf(z.boolean(expected("true or false")), "true or false");

export function text(allowed = "a non-empty string") {
  const e = expected(allowed);
  return leaf(z.string(e).min(1, e), allowed);
}

export const filePath = () => text("a file path");

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  const quoted = values.map((v) => `"${v}"`);
  const last = quoted.pop() ?? "";
  const allowed = quoted.length === 0 ? last : `${quoted.join(", ")} or ${last}`;
  return leaf(z.enum(values, expected(allowed)), allowed);
}

export function ipVersion() {
  const e = expected("4 or 6");
  return leaf(z.union([z.literal(4, e), z.literal(6, e)], e), "4 or 6");
}

export function ipAddress() {
  const allowed = "an IP address";
  const e = expected(allowed);
  return leaf(
    z.string(e).refine((s) => isIP(s) !== 0, e),
    allowed,
  );
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** A domain name in its ASCII (IDNA) form, lower-cased, as JIDs compare it; undefined if invalid. */
export function normalizeDomain(input: string): string | undefined {
  if (input.length === 0 || input.endsWith(".")) return undefined;
  const ascii = domainToASCII(input);
  if (ascii === "" || ascii.length > 253) return undefined;
  return ascii.split(".").every((label) => LABEL.test(label)) ? ascii : undefined;
}

export function domain() {
  const allowed = "a domain name";
  const e = expected(allowed);
  const schema = z
    .string(e)
    .refine((s) => normalizeDomain(s) !== undefined, e)
    .transform((s) => normalizeDomain(s) ?? s);
  return leaf(schema, allowed);
}

/** `*.corp.example`, `partner.example`, `!broken.example` (seed 001's secure-relaying list). */
export function domainPattern() {
  const allowed = 'a domain, "*.domain" or "!domain"';
  const e = expected(allowed);
  const valid = (s: string): boolean => {
    const body = s.replace(/^!/, "").replace(/^\*\./, "");
    return normalizeDomain(body) !== undefined;
  };
  return leaf(z.string(e).refine(valid, e), allowed);
}

/** Resolver address in the form Node's `dns.Resolver#setServers` takes. */
export function resolverAddress() {
  const allowed = 'an IP address with optional port ("127.0.0.1", "127.0.0.1:5353", "[::1]:53")';
  const e = expected(allowed);
  const valid = (s: string): boolean => {
    if (isIP(s) !== 0) return true;
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
    if (m === null) return false;
    const ip = m[1] ?? m[2] ?? "";
    const p = Number(m[3]);
    return isIP(ip) !== 0 && (m[1] === undefined || isIP(ip) === 6) && p >= 1 && p <= 65535;
  };
  return leaf(z.string(e).refine(valid, e), allowed);
}

/** A bare or full JID, a bare domain, or `*@domain` for everybody at a domain. */
export function jidPattern() {
  const allowed = 'a JID ("user@domain", "user@domain/resource", "domain" or "*@domain")';
  const e = expected(allowed);
  const valid = (s: string): boolean => {
    const m = /^(?:([^@/\s]+)@)?([^@/\s]+)(?:\/(.+))?$/u.exec(s);
    if (m === null) return false;
    const local = m[1];
    if (local !== undefined && local !== "*" && /[*"&'/:<>]/.test(local)) return false;
    return normalizeDomain(m[2] ?? "") !== undefined;
  };
  return leaf(z.string(e).refine(valid, e), allowed);
}

export function list<T extends z.ZodType>(item: T, allowed: string, opts: { nonEmpty?: boolean } = {}) {
  const e = expected(allowed);
  const schema = z.array(item, e);
  return leaf(opts.nonEmpty === true ? schema.min(1, e) : schema, allowed);
}

/** A TOML table whose unknown keys are errors. */
export function table<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, expected("a table"));
}
