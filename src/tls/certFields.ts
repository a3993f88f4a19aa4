/**
 * The few certificate fields identity checks need, read from the DER (RFC 5280 §4.1) rather than
 * from Node's X509Certificate strings: `subjectAltName` prints otherName values in a form that cannot
 * be split reliably, and `validFrom`/`validTo` are locale-style strings. Malformed input yields
 * `undefined` or empty lists, never an exception.
 */
import { TAG, asciiString, children, content, isOid, readTlv, utf8String, type Tlv } from "./der.js";

/** Encoded OID contents (X.690 §8.19). */
const OID = {
  /** id-ce-subjectAltName 2.5.29.17 (RFC 5280 §4.2.1.6). */
  subjectAltName: Uint8Array.of(0x55, 0x1d, 0x11),
  /** id-ce-extKeyUsage 2.5.29.37 (RFC 5280 §4.2.1.12). */
  extKeyUsage: Uint8Array.of(0x55, 0x1d, 0x25),
  /** id-on-xmppAddr 1.3.6.1.5.5.7.8.5 (RFC 6120 §13.7.1.4). */
  xmppAddr: Uint8Array.of(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05),
  /** id-on-dnsSRV 1.3.6.1.5.5.7.8.7 (RFC 4985 §2). */
  dnsSrv: Uint8Array.of(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07),
  /** id-at-commonName 2.5.4.3. */
  commonName: Uint8Array.of(0x55, 0x04, 0x03),
};

export interface SubjectAltNames {
  /** dNSName entries (IA5String), as written. */
  dns: string[];
  /** otherName id-on-xmppAddr values (UTF8String). */
  xmppAddr: string[];
  /** otherName id-on-dnsSRV values (IA5String), e.g. `_xmpp-server.example.com`. */
  srv: string[];
}

export interface CertificateFields {
  /**
   * The subjectAltName entries; `undefined` when the extension is absent. A present but unreadable
   * (or duplicated) extension gives empty lists, so that it still rules out the CN fallback.
   */
  subjectAltName: SubjectAltNames | undefined;
  /**
   * The extended key usage purposes as dotted OIDs; `undefined` when the extension is absent. A
   * present but unreadable (or duplicated) extension gives `[]`, which permits no purpose.
   */
  extendedKeyUsage: string[] | undefined;
  /** commonName values of the subject, in order (most specific last). */
  commonNames: string[];
  notBefore: Date | undefined;
  notAfter: Date | undefined;
}

/** The fields of a DER certificate, or `undefined` when its outer structure cannot be walked. */
export function readCertificateFields(der: Uint8Array): CertificateFields | undefined {
  const cert = readTlv(der, 0, der.length);
  if (cert?.tag !== TAG.SEQUENCE || cert.end !== der.length) return undefined;
  const tbs = children(der, cert)?.[0];
  if (tbs?.tag !== TAG.SEQUENCE) return undefined;
  const fields = children(der, tbs);
  if (fields === undefined) return undefined;
  // TBSCertificate: [0] version OPTIONAL, serial, signature, issuer, validity, subject, spki, ...
  const first = fields[0]?.tag === TAG.context(0) ? 1 : 0;
  const validity = fields[first + 3];
  const subject = fields[first + 4];
  if (validity?.tag !== TAG.SEQUENCE || subject?.tag !== TAG.SEQUENCE) return undefined;
  const explicit = fields.slice(first + 6).find((f) => f.tag === TAG.context(3));
  const extensions = explicit === undefined ? [] : readExtensions(der, explicit);
  // Unreadable extensions might hide either: count both as present and malformed (fail closed).
  const san = extensions === undefined ? null : extensionValue(der, extensions, OID.subjectAltName);
  const eku = extensions === undefined ? null : extensionValue(der, extensions, OID.extKeyUsage);
  const [notBefore, notAfter] = children(der, validity) ?? [];
  return {
    subjectAltName: san === undefined ? undefined : readSubjectAltName(der, san),
    extendedKeyUsage: eku === undefined ? undefined : readExtendedKeyUsage(der, eku),
    commonNames: readCommonNames(der, subject),
    notBefore: notBefore === undefined ? undefined : readTime(der, notBefore),
    notAfter: notAfter === undefined ? undefined : readTime(der, notAfter),
  };
}

interface Extension {
  oid: Tlv;
  /** The extnValue OCTET STRING. */
  value: Tlv;
}

/** The extensions inside `[3] EXPLICIT Extensions`, or `undefined` if any is unreadable. */
function readExtensions(der: Uint8Array, explicit: Tlv): Extension[] | undefined {
  const wrapper = children(der, explicit);
  const list = wrapper?.[0];
  if (wrapper?.length !== 1 || list?.tag !== TAG.SEQUENCE) return undefined;
  const items = children(der, list);
  if (items === undefined) return undefined;
  const out: Extension[] = [];
  // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
  for (const ext of items) {
    const parts = ext.tag === TAG.SEQUENCE ? children(der, ext) : undefined;
    const oid = parts?.[0];
    const value = parts?.at(-1);
    const critical = parts?.length === 3 ? parts[1] : undefined;
    const shapeOk = parts?.length === 2 || critical?.tag === TAG.BOOLEAN;
    if (!shapeOk || oid?.tag !== TAG.OID || value?.tag !== TAG.OCTET_STRING) return undefined;
    out.push({ oid, value });
  }
  return out;
}

/**
 * The value of the extension `oid`: `undefined` when absent, `null` when it appears more than once
 * (RFC 5280 §4.2 allows one; not worth guessing between), else the single element the OCTET STRING
 * wraps, or `null` when that is not exactly one element.
 */
function extensionValue(der: Uint8Array, extensions: Extension[], oid: Uint8Array): Tlv | null | undefined {
  const found = extensions.filter((ext) => isOid(der, ext.oid, oid));
  const only = found[0];
  if (only === undefined) return undefined;
  if (found.length > 1) return null;
  const inner = readTlv(der, only.value.contentStart, only.value.end);
  return inner?.end === only.value.end ? inner : null;
}

/** GeneralNames (SEQUENCE OF GeneralName); a malformed value gives empty lists. */
function readSubjectAltName(der: Uint8Array, value: Tlv | null): SubjectAltNames {
  const out: SubjectAltNames = { dns: [], xmppAddr: [], srv: [] };
  if (value?.tag !== TAG.SEQUENCE) return out;
  for (const name of children(der, value) ?? []) readGeneralName(der, name, out);
  return out;
}

/** ExtKeyUsageSyntax (SEQUENCE OF KeyPurposeId) as dotted OIDs; a malformed value gives `[]`. */
function readExtendedKeyUsage(der: Uint8Array, value: Tlv | null): string[] {
  if (value?.tag !== TAG.SEQUENCE) return [];
  const purposes = children(der, value) ?? [];
  if (purposes.some((p) => p.tag !== TAG.OID)) return [];
  return purposes.flatMap((p) => {
    const dotted = oidToString(content(der, p));
    return dotted === undefined ? [] : [dotted];
  });
}

/** Adds one GeneralName (RFC 5280 §4.2.1.6) to `out` if it is a dNSName, XmppAddr or SRVName. */
function readGeneralName(der: Uint8Array, name: Tlv, out: SubjectAltNames): void {
  if (name.tag === TAG.contextPrimitive(2)) {
    // dNSName [2] IA5String
    const dns = asciiString(content(der, name));
    if (dns !== undefined && dns !== "") out.dns.push(dns);
    return;
  }
  if (name.tag !== TAG.context(0)) return;
  // otherName [0] { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY DEFINED BY type-id }
  const parts = children(der, name);
  const typeId = parts?.[0];
  const explicit = parts?.[1];
  if (parts?.length !== 2 || explicit?.tag !== TAG.context(0)) return;
  const inner = children(der, explicit);
  const value = inner?.[0];
  if (inner?.length !== 1 || value === undefined) return;
  if (isOid(der, typeId, OID.xmppAddr) && value.tag === TAG.UTF8_STRING) {
    const jid = utf8String(content(der, value));
    if (jid !== undefined && jid !== "") out.xmppAddr.push(jid);
  } else if (isOid(der, typeId, OID.dnsSrv) && value.tag === TAG.IA5_STRING) {
    const srv = asciiString(content(der, value));
    if (srv !== undefined && srv !== "") out.srv.push(srv);
  }
}

/** commonName values of a Name (SEQUENCE OF SET OF AttributeTypeAndValue). */
function readCommonNames(der: Uint8Array, name: Tlv): string[] {
  const out: string[] = [];
  for (const rdn of children(der, name) ?? []) {
    if (rdn.tag !== TAG.SET) continue;
    for (const atv of children(der, rdn) ?? []) {
      const parts = atv.tag === TAG.SEQUENCE ? children(der, atv) : undefined;
      const value = parts?.[1];
      if (parts?.length !== 2 || value === undefined || !isOid(der, parts[0], OID.commonName)) continue;
      const bytes = content(der, value);
      const text =
        value.tag === TAG.UTF8_STRING
          ? utf8String(bytes)
          : value.tag === TAG.PRINTABLE_STRING || value.tag === TAG.IA5_STRING
            ? asciiString(bytes)
            : undefined;
      if (text !== undefined && text !== "") out.push(text);
    }
  }
  return out;
}

/** Dotted form of an OID's content octets (X.690 §8.19), or `undefined` if malformed. */
export function oidToString(bytes: Uint8Array): string | undefined {
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    if (value === 0 && b === 0x80) return undefined; // non-minimal encoding
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) return undefined;
    if ((b & 0x80) !== 0) continue;
    if (arcs.length === 0)
      arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
    else arcs.push(value);
    value = 0;
  }
  if (arcs.length === 0 || ((bytes.at(-1) ?? 0x80) & 0x80) !== 0) return undefined;
  return arcs.join(".");
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), RFC 5280 §4.1.2.5. */
function readTime(der: Uint8Array, tlv: Tlv): Date | undefined {
  const text = asciiString(content(der, tlv));
  if (text === undefined) return undefined;
  let digits: string;
  if (tlv.tag === TAG.UTC_TIME && /^\d{12}Z$/.test(text)) {
    const yy = Number(text.slice(0, 2));
    digits = `${yy >= 50 ? 19 : 20}${text}`;
  } else if (tlv.tag === TAG.GENERALIZED_TIME && /^\d{14}Z$/.test(text)) {
    digits = text;
  } else {
    return undefined;
  }
  const n = (from: number, to: number): number => Number(digits.slice(from, to));
  const ms = Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14));
  return Number.isNaN(ms) ? undefined : new Date(ms);
}
