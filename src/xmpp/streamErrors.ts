/** Stream errors (RFC 6120 §4.9): the defined conditions and the `<stream:error/>` element. */
import { Element, el } from "../xml/element.js";
import { NS } from "./namespaces.js";

/** Every defined condition of RFC 6120 §4.9.3. */
export const STREAM_ERROR_CONDITIONS = [
  "bad-format",
  "bad-namespace-prefix",
  "conflict",
  "connection-timeout",
  "host-gone",
  "host-unknown",
  "improper-addressing",
  "internal-server-error",
  "invalid-from",
  "invalid-namespace",
  "invalid-xml",
  "not-authorized",
  "not-well-formed",
  "policy-violation",
  "remote-connection-failed",
  "reset",
  "resource-constraint",
  "restricted-xml",
  "see-other-host",
  "system-shutdown",
  "undefined-condition",
  "unsupported-encoding",
  "unsupported-feature",
  "unsupported-stanza-type",
  "unsupported-version",
] as const;

export type StreamErrorCondition = (typeof STREAM_ERROR_CONDITIONS)[number];

/**
 * `<stream:error><condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>[<text …>]</stream:error>`.
 * The `stream` prefix is declared by the stream header we sent, so it is not redeclared here; the
 * element's resolved namespace is set explicitly for code that inspects it.
 */
export function streamError(condition: StreamErrorCondition, text?: string): Element {
  const children = [el(condition, { xmlns: NS.STREAM_ERRORS })];
  if (text !== undefined && text !== "") {
    children.push(el("text", { xmlns: NS.STREAM_ERRORS, "xml:lang": "en" }, text));
  }
  return new Element("stream:error", {}, children, NS.STREAM);
}
