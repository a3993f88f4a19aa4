/**
 * Stream features as seed 002 names them: STARTTLS, SASL-<MECHANISM> per mechanism, DIALBACK, and
 * the other features its list mentions (SESSION, BIND) or that servers commonly offer. A feature
 * this table does not know is named by its element in upper case.
 */
import type { Element } from "../xml/element.js";
import { NS } from "../xmpp/namespaces.js";

const KNOWN: Record<string, string> = {
  [`${NS.TLS} starttls`]: "STARTTLS",
  [`${NS.DIALBACK_FEATURE} dialback`]: "DIALBACK",
  ["urn:ietf:params:xml:ns:xmpp-session session"]: "SESSION",
  ["urn:ietf:params:xml:ns:xmpp-bind bind"]: "BIND",
  ["urn:xmpp:sm:3 sm"]: "SM",
  ["urn:xmpp:sm:2 sm"]: "SM",
  ["urn:xmpp:features:bidi bidi"]: "BIDI",
  ["http://jabber.org/features/compress compression"]: "COMPRESSION",
  ["urn:xmpp:features:rosterver ver"]: "ROSTERVER",
  ["urn:xmpp:features:pre-approval sub"]: "PRE-APPROVAL",
  ["urn:xmpp:csi:0 csi"]: "CSI",
  ["urn:xmpp:sasl:2 authentication"]: "SASL2",
  ["urn:xmpp:stream-limits:0 limits"]: "LIMITS",
};

export function featureNames(features: Element | undefined): string[] {
  if (features === undefined) return [];
  const names: string[] = [];
  const add = (name: string): void => {
    if (!names.includes(name)) names.push(name);
  };
  for (const child of features.children) {
    if (typeof child === "string") continue;
    if (child.local === "mechanisms" && child.ns === NS.SASL) {
      for (const m of child.getChildren("mechanism")) add(`SASL-${m.text().trim().toUpperCase()}`);
      continue;
    }
    add(KNOWN[`${child.ns} ${child.local}`] ?? child.local.toUpperCase());
  }
  return names;
}
