/** Stanza errors (RFC 6120 §8.3): conditions, the `<error/>` child, and bounces. */
import { CONTENT_NAMESPACES, NS } from "./namespaces.js";
import { Element, el } from "../xml/element.js";

export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

/**
 * Every defined condition of RFC 6120 §8.3.3 with the error type the RFC says it SHOULD carry; where
 * it allows two, the first one it names.
 */
export const STANZA_ERROR_TYPES = {
  "bad-request": "modify",
  conflict: "cancel",
  "feature-not-implemented": "cancel",
  forbidden: "auth",
  gone: "cancel",
  "internal-server-error": "cancel",
  "item-not-found": "cancel",
  "jid-malformed": "modify",
  "not-acceptable": "modify",
  "not-allowed": "cancel",
  "not-authorized": "auth",
  "policy-violation": "modify",
  "recipient-unavailable": "wait",
  redirect: "modify",
  "registration-required": "auth",
  "remote-server-not-found": "cancel",
  "remote-server-timeout": "wait",
  "resource-constraint": "wait",
  "service-unavailable": "cancel",
  "subscription-required": "auth",
  "undefined-condition": "cancel",
  "unexpected-request": "wait",
} as const satisfies Record<string, StanzaErrorType>;

export type StanzaErrorCondition = keyof typeof STANZA_ERROR_TYPES;

export interface StanzaErrorOptions {
  /** Defaults to the condition's type in `STANZA_ERROR_TYPES`. */
  type?: StanzaErrorType;
  /** Human-readable text, sent with `xml:lang='en'`. */
  text?: string;
  /** The entity that generated the error (RFC 6120 §8.3.2), usually our domain. */
  by?: string;
}

/** The `<error/>` child: `<error type='…' [by='…']><condition xmlns='…stanzas'/>[<text/>]</error>`. */
export function stanzaError(condition: StanzaErrorCondition, opts: StanzaErrorOptions = {}): Element {
  // No xmlns: <error/> is in the stream's content namespace, like its parent stanza.
  const attrs: Record<string, string> = { type: opts.type ?? STANZA_ERROR_TYPES[condition] };
  if (opts.by !== undefined) attrs.by = opts.by;
  const error = el("error", attrs, el(condition, { xmlns: NS.STANZA_ERRORS }));
  if (opts.text !== undefined && opts.text !== "") {
    error.append(el("text", { xmlns: NS.STANZA_ERRORS, "xml:lang": "en" }, opts.text));
  }
  return error;
}

export type StanzaKind = "message" | "presence" | "iq";

/** The stanza kind of an element in a content namespace (or none, as built in code), else undefined. */
export function stanzaKind(element: Element): StanzaKind | undefined {
  if (element.ns !== "" && !CONTENT_NAMESPACES.has(element.ns)) return undefined;
  const local = element.local;
  return local === "message" || local === "presence" || local === "iq" ? local : undefined;
}

/**
 * The error reply to `stanza` (RFC 6120 §8.3.1): same element and id, `to` and `from` swapped,
 * `type='error'`, the original payload kept, the `<error/>` child appended. Returns `undefined`
 * when no reply may be sent — the stanza is itself an error, or an iq result (ARCHITECTURE principle
 * 4: the caller counts it as dropped) — or when the element is not a stanza at all.
 */
export function bounce(
  stanza: Element,
  condition: StanzaErrorCondition,
  opts?: StanzaErrorOptions,
): Element | undefined {
  const kind = stanzaKind(stanza);
  if (kind === undefined) return undefined;
  const type = stanza.attrs.type;
  if (type === "error" || (kind === "iq" && type === "result")) return undefined;

  // Copy every attribute (id, xml:lang, namespace declarations) so the reply means the same thing.
  const attrs: Record<string, string> = { ...stanza.attrs, type: "error" };
  delete attrs.to;
  delete attrs.from;
  const { to, from } = stanza.attrs;
  if (from !== undefined) attrs.to = from;
  if (to !== undefined) attrs.from = to;
  return new Element(stanza.name, attrs, [...stanza.children, stanzaError(condition, opts)], stanza.ns);
}
