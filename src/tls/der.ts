/**
 * A minimal, bounds-checked DER reader (X.690 §8.1, §10.1): just enough to walk a certificate to
 * the fields Node's X509Certificate leaves ambiguous. Every read either stays inside the bytes of its
 * parent or yields `undefined`; nothing here throws on malformed input.
 */

/** One tag-length-value element; offsets index the buffer it was read from. */
export interface Tlv {
  /** The identifier octet (class, constructed bit and tag number < 31). */
  readonly tag: number;
  readonly contentStart: number;
  /** One past the last content byte. */
  readonly end: number;
}

/** Universal and context-specific identifier octets used by the certificate walk. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
  /** [n] constructed (EXPLICIT, or IMPLICIT of a constructed type). */
  context: (n: number): number => 0xa0 | n,
  /** [n] primitive (IMPLICIT of a primitive type). */
  contextPrimitive: (n: number): number => 0x80 | n,
} as const;

/**
 * The element starting at `offset`, which must end by `limit`. Refuses high tag numbers, indefinite
 * lengths (not DER) and lengths of more than 4 octets: a certificate never needs them.
 */
export function readTlv(buf: Uint8Array, offset: number, limit: number): Tlv | undefined {
  const bound = Math.min(limit, buf.length);
  if (offset < 0 || offset + 2 > bound) return undefined;
  const tag = buf[offset] ?? 0;
  if ((tag & 0x1f) === 0x1f) return undefined;
  const first = buf[offset + 1] ?? 0;
  let pos = offset + 2;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const octets = first & 0x7f;
    if (octets === 0 || octets > 4 || pos + octets > bound) return undefined;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (buf[pos + i] ?? 0);
    pos += octets;
  }
  const end = pos + length;
  if (end > bound) return undefined;
  return { tag, contentStart: pos, end };
}

/** The elements directly inside `parent`, or `undefined` when its content is not a clean sequence of them. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  let pos = parent.contentStart;
  while (pos < parent.end) {
    const child = readTlv(buf, pos, parent.end);
    if (child === undefined) return undefined;
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** The content bytes of `tlv` (a view, not a copy). */
export function content(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.contentStart, tlv.end);
}

/** Whether `tlv` is an OBJECT IDENTIFIER whose encoded content is exactly `oid`. */
export function isOid(buf: Uint8Array, tlv: Tlv | undefined, oid: Uint8Array): boolean {
  if (tlv?.tag !== TAG.OID || tlv.end - tlv.contentStart !== oid.length) return false;
  return oid.every((byte, i) => buf[tlv.contentStart + i] === byte);
}

/** IA5String / PrintableString content as text, or `undefined` if a byte is outside 7-bit ASCII. */
export function asciiString(bytes: Uint8Array): string | undefined {
  let s = "";
  for (const b of bytes) {
    if (b > 0x7f) return undefined;
    s += String.fromCharCode(b);
  }
  return s;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** UTF8String content as text, or `undefined` if it is not valid UTF-8. */
export function utf8String(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
