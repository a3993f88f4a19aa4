/**
 * Server dialback (XEP-0220) elements and keys. Keys follow XEP-0185: HMAC-SHA256 keyed with the
 * hex SHA-256 of the dialback secret over "receiving originating streamid", so a key can be checked
 * later (by any node that knows the secret) without remembering it.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { el, type Element } from "../xml/element.js";
import { NS } from "./namespaces.js";
import type { StanzaErrorCondition } from "./stanzaErrors.js";
import { stanzaError } from "./stanzaErrors.js";

export function dialbackKey(
  secret: string,
  receiving: string,
  originating: string,
  streamId: string,
): string {
  const hashedSecret = createHash("sha256").update(secret, "utf8").digest("hex");
  return createHmac("sha256", hashedSecret)
    .update(`${receiving} ${originating} ${streamId}`, "utf8")
    .digest("hex");
}

export function dialbackKeyMatches(
  secret: string,
  receiving: string,
  originating: string,
  streamId: string,
  offered: string,
): boolean {
  const expected = Buffer.from(dialbackKey(secret, receiving, originating, streamId));
  const got = Buffer.from(offered.trim().toLowerCase());
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** `<db:result/>` or `<db:verify/>` as read off a stream. */
export interface DialbackElement {
  kind: "result" | "verify";
  from: string;
  to: string;
  /** db:verify only: the stream id the key was issued for. */
  id?: string;
  /** valid | invalid | error, on answers; undefined on requests. */
  type?: string;
  key: string;
  /** The condition of a type="error" answer. */
  errorCondition?: string;
}

export function readDialback(element: Element): DialbackElement | undefined {
  if (element.ns !== NS.DIALBACK || (element.local !== "result" && element.local !== "verify"))
    return undefined;
  const { from, to, id, type } = element.attrs;
  if (from === undefined || to === undefined) return undefined;
  const error = element.getChild("error");
  const condition = error?.children.find((c): c is Element => typeof c !== "string" && c.local !== "text");
  return {
    kind: element.local,
    from: from.toLowerCase(),
    to: to.toLowerCase(),
    key: element.text().trim(),
    ...(id === undefined ? {} : { id }),
    ...(type === undefined ? {} : { type }),
    ...(condition === undefined ? {} : { errorCondition: condition.local }),
  };
}

const dbAttrs = (attrs: Record<string, string | undefined>): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined) out[name] = value;
  return out;
};

/** Step 1 (originating → receiving): the key for a domain pair. */
export function dbResultRequest(from: string, to: string, key: string): Element {
  return el("db:result", { from, to }, key);
}

/** Step 4 (receiving → originating): the verdict, or a dialback error (XEP-0220 §2.4). */
export function dbResultAnswer(
  from: string,
  to: string,
  type: "valid" | "invalid" | "error",
  error?: { condition: StanzaErrorCondition; text: string },
): Element {
  const answer = el("db:result", dbAttrs({ from, to, type }));
  if (type === "error" && error) answer.append(stanzaError(error.condition, { text: error.text }));
  return answer;
}

/** Step 2 (receiving → authoritative): is this key yours for this stream? */
export function dbVerifyRequest(from: string, to: string, id: string, key: string): Element {
  return el("db:verify", { from, to, id }, key);
}

/** Step 3 refused with a dialback error (XEP-0220 §2.4): e.g. item-not-found for a domain not served. */
export function dbVerifyError(
  from: string,
  to: string,
  id: string,
  condition: StanzaErrorCondition,
  text: string,
): Element {
  return el("db:verify", { from, to, id, type: "error" }, stanzaError(condition, { text }));
}

/** Step 3 (authoritative → receiving). */
export function dbVerifyAnswer(from: string, to: string, id: string, type: "valid" | "invalid"): Element {
  return el("db:verify", { from, to, id, type });
}
