/**
 * Server identity checks for XMPP (RFC 6125 §6, as profiled for XMPP by RFC 6120 §13.7.1.2 and
 * RFC 7590 §3.2): the reference identifier is the peer's domain (ASCII, A-labels) and the presented
 * identifiers are the certificate's DNS-IDs, SRV-IDs, XmppAddrs and — only when it has no
 * subjectAltName at all — its CN.
 */
import type { X509Certificate } from "node:crypto";
import { domainToASCII } from "node:url";
import { readCertificateFields } from "./certFields.js";

export interface CertificateIdentities {
  /** DNS-IDs: subjectAltName dNSName entries (RFC 6125 §6.4). */
  dns: string[];
  /** XmppAddr otherName values (RFC 6120 §13.7.1.4). */
  xmppAddr: string[];
  /** SRV-IDs: SRVName otherName values such as `_xmpp-server.example.com` (RFC 4985, RFC 6125 §6.5.1). */
  srv: string[];
  /**
   * The subject's CN-ID, present only when the certificate has no subjectAltName extension: RFC 6125
   * §6.4.4 forbids the CN fallback whenever other identifiers exist (the last CN when several).
   */
  cn?: string;
}

/** The SRV service whose SRV-IDs identify an XMPP server (RFC 6120 §13.7.1.2.1). */
const SERVER_SERVICE = "_xmpp-server";

/** The identities of `cert`, read from its DER encoding. */
export function certificateIdentities(cert: X509Certificate): CertificateIdentities {
  return identitiesFromDer(cert.raw);
}

/** As certificateIdentities, from raw DER; unreadable input gives no identities. */
export function identitiesFromDer(der: Uint8Array): CertificateIdentities {
  const fields = readCertificateFields(der);
  if (fields === undefined) return { dns: [], xmppAddr: [], srv: [] };
  const san = fields.subjectAltName;
  if (san !== undefined) return { dns: san.dns, xmppAddr: san.xmppAddr, srv: san.srv };
  const cn = fields.commonNames.at(-1);
  return cn === undefined ? { dns: [], xmppAddr: [], srv: [] } : { dns: [], xmppAddr: [], srv: [], cn };
}

/** Every presented identifier, deduplicated, for logs and `name-mismatch` details. */
export function identityNames(ids: CertificateIdentities): string[] {
  return [...new Set([...ids.dns, ...ids.srv, ...ids.xmppAddr, ...(ids.cn === undefined ? [] : [ids.cn])])];
}

/** Whether any presented identifier in `ids` is valid for the XMPP server domain `domain`. */
export function matchesDomain(ids: CertificateIdentities, domain: string): boolean {
  const reference = normalize(domain);
  if (reference === undefined) return false;
  if (ids.dns.some((dns) => matchesDnsId(dns, reference))) return true;
  if (ids.srv.some((srv) => matchesSrvId(srv, reference))) return true;
  if (ids.xmppAddr.some((jid) => normalize(jid) === reference)) return true;
  return ids.cn !== undefined && matchesDnsId(ids.cn, reference);
}

/**
 * Lower-case A-label form without a trailing dot (RFC 6125 §6.4.1: compare case-insensitively,
 * U-labels converted to A-labels); `undefined` for anything that is not a plausible domain name.
 */
function normalize(name: string): string | undefined {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (trimmed === "" || trimmed.includes("*")) return undefined;
  // domainToASCII lower-cases and applies IDNA; it returns "" for names it refuses.
  const ascii = /^[\x21-\x7e]+$/.test(trimmed) ? trimmed.toLowerCase() : domainToASCII(trimmed);
  if (ascii === "" || ascii.split(".").some((label) => label === "")) return undefined;
  return ascii;
}

/**
 * RFC 6125 §6.4.3: a wildcard only as the complete left-most label, standing for exactly one
 * non-empty label. Partial-label wildcards (`f*.example.com`) are refused, and so is a wildcard over a
 * single label (`*.com`): without a public-suffix list, at least two labels must follow the `*`.
 */
function matchesDnsId(presented: string, reference: string): boolean {
  if (!presented.startsWith("*.")) return normalize(presented) === reference;
  const base = normalize(presented.slice(2));
  if (base?.includes(".") !== true) return false;
  if (!reference.endsWith(`.${base}`)) return false;
  const label = reference.slice(0, reference.length - base.length - 1);
  return label !== "" && !label.includes(".");
}

/**
 * RFC 6125 §6.5.1: the service label must be `_xmpp-server` (case-insensitive) and the DNS domain
 * name portion is matched like a DNS-ID, wildcard rule included.
 */
function matchesSrvId(presented: string, reference: string): boolean {
  const dot = presented.indexOf(".");
  if (dot < 0 || presented.slice(0, dot).toLowerCase() !== SERVER_SERVICE) return false;
  return matchesDnsId(presented.slice(dot + 1), reference);
}
