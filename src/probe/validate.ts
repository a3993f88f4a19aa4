/**
 * Request bodies of the probe API, checked field by field. Every refusal names the field, so a
 * 400 answer says exactly what to fix: `{ "error": "...", "field": "port" }`. Unknown fields are
 * refused too (a misspelt `usetls` silently ignored would probe something else than was meant).
 */
import { isIP } from "node:net";
import { normalizeDomain } from "../config/leaves.js";
import { ipLiteral } from "./resolveHost.js";

export const MAX_BODY_BYTES = 16 * 1024;
export const DEFAULT_PORT = 5269;
/** XEP-0368's conventional direct TLS port. */
export const DIRECT_TLS_PORT = 5270;
export const DEFAULT_TIMEOUT_MS = 15_000;
export const MIN_TIMEOUT_MS = 100;
export const MAX_TIMEOUT_MS = 60_000;

/** connect and ping (seed 002's request, plus `directTLS` and `verifyCertificate`). */
export interface StreamRequest {
  host: string;
  port: number;
  /** Undefined: the first hosted domain. */
  fromDomain: string | undefined;
  toDomain: string;
  useTLS: boolean;
  directTLS: boolean;
  timeout: number;
  /** Fail with cert_invalid when the certificate does not verify for toDomain. */
  verifyCertificate: boolean;
}

export interface DiagnoseRequest {
  domain: string;
  fromDomain: string | undefined;
  /** A server without TLS counts as a problem (undefined: as `outgoing.tls.mode` says). */
  requireTls: boolean | undefined;
  /** Budget of each stream the diagnosis opens, in ms. */
  timeout: number;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; error: string; field: string };

const refuse = (field: string, error: string): { ok: false; error: string; field: string } => ({
  ok: false,
  error,
  field,
});

/** The body as JSON (an object); `field` is "body" when it is not. */
export function parseBody(text: string): Validated<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return refuse("body", `the body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return refuse("body", "the body must be a JSON object");
  }
  return { ok: true, value: value as Record<string, unknown> };
}

const STREAM_FIELDS = [
  "host",
  "port",
  "fromDomain",
  "toDomain",
  "useTLS",
  "directTLS",
  "timeout",
  "verifyCertificate",
] as const;
const DIAGNOSE_FIELDS = ["domain", "fromDomain", "requireTls", "timeout"] as const;

export function validateStreamRequest(body: Record<string, unknown>): Validated<StreamRequest> {
  const unknown = unknownField(body, STREAM_FIELDS);
  if (unknown !== undefined) return unknown;
  const host = hostField(body.host);
  if (typeof host !== "string") return host;
  const port = integerField(body, "port", DEFAULT_PORT, 1, 65535);
  if (typeof port !== "number") return port;
  const fromDomain = domainField(body, "fromDomain", false);
  if (fromDomain !== undefined && typeof fromDomain !== "string") return fromDomain;
  const toDomain = domainField(body, "toDomain", true) ?? defaultDomain(host);
  if (typeof toDomain !== "string") return toDomain;
  const timeout = integerField(body, "timeout", DEFAULT_TIMEOUT_MS, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
  if (typeof timeout !== "number") return timeout;
  const useTLS = booleanField(body, "useTLS", true);
  if (typeof useTLS !== "boolean") return useTLS;
  const directTLS = booleanField(body, "directTLS", port === DIRECT_TLS_PORT);
  if (typeof directTLS !== "boolean") return directTLS;
  const verifyCertificate = booleanField(body, "verifyCertificate", false);
  if (typeof verifyCertificate !== "boolean") return verifyCertificate;
  return {
    ok: true,
    value: {
      host,
      port,
      fromDomain,
      toDomain,
      useTLS: useTLS || directTLS,
      directTLS,
      timeout,
      verifyCertificate,
    },
  };
}

export function validateDiagnoseRequest(body: Record<string, unknown>): Validated<DiagnoseRequest> {
  const unknown = unknownField(body, DIAGNOSE_FIELDS);
  if (unknown !== undefined) return unknown;
  const domain = domainField(body, "domain", false);
  if (domain === undefined) return refuse("domain", "domain is missing: the domain to diagnose");
  if (typeof domain !== "string") return domain;
  const fromDomain = domainField(body, "fromDomain", false);
  if (fromDomain !== undefined && typeof fromDomain !== "string") return fromDomain;
  const timeout = integerField(body, "timeout", 10_000, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
  if (typeof timeout !== "number") return timeout;
  const requireTls = body.requireTls === undefined ? undefined : booleanField(body, "requireTls", false);
  if (requireTls !== undefined && typeof requireTls !== "boolean") return requireTls;
  return { ok: true, value: { domain, fromDomain, requireTls, timeout } };
}

function unknownField(body: Record<string, unknown>, known: readonly string[]) {
  const extra = Object.keys(body).find((key) => !known.includes(key));
  return extra === undefined
    ? undefined
    : refuse(extra, `unknown field "${extra}" (known: ${known.join(", ")})`);
}

/** A host name or an IP address (IPv6 bare or in brackets). */
function hostField(value: unknown): string | { ok: false; error: string; field: string } {
  if (value === undefined || value === null || value === "") {
    return refuse("host", "host is missing: the server to connect to (a host name or IP address)");
  }
  if (typeof value !== "string") return refuse("host", "host must be a string");
  const literal = ipLiteral(value);
  if (literal !== undefined) return literal.ip;
  return normalizeDomain(value) ?? refuse("host", `host "${value}" is not a valid host name or IP address`);
}

/** A domain; `allowIp` also takes IP literals (a stream may be addressed to one). */
function domainField(
  body: Record<string, unknown>,
  field: string,
  allowIp: boolean,
): string | undefined | { ok: false; error: string; field: string } {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") return refuse(field, `${field} must be a domain name`);
  if (allowIp && ipLiteral(value) !== undefined) return defaultDomain(ipLiteral(value)?.ip ?? value);
  return normalizeDomain(value) ?? refuse(field, `${field} "${value}" is not a valid domain name`);
}

/** toDomain defaults to the host; an IPv6 host becomes an IP-literal domain ("[::1]"). */
function defaultDomain(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function integerField(
  body: Record<string, unknown>,
  field: string,
  fallback: number,
  min: number,
  max: number,
): number | { ok: false; error: string; field: string } {
  const value = body[field];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    return refuse(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function booleanField(
  body: Record<string, unknown>,
  field: string,
  fallback: boolean,
): boolean | { ok: false; error: string; field: string } {
  const value = body[field];
  if (value === undefined) return fallback;
  return typeof value === "boolean" ? value : refuse(field, `${field} must be true or false`);
}
