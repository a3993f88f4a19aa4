/**
 * JIDs (RFC 7622): an immutable, normalized value type.
 *
 * Parsing follows RFC 7622 §3.2: the resourcepart is everything after the first `/`, the localpart is
 * everything before the first `@` that precedes that `/`, and the rest is the domainpart. Each part
 * is normalized, then limited to 1023 UTF-8 bytes. Equality is string equality of normalized parts.
 *
 * PRECIS approximations (we have no PRECIS library and want none on the hot path):
 * - localpart (UsernameCaseMapped, RFC 8265 §3.3): width mapping is done by NFKC on the Halfwidth
 *   and Fullwidth Forms block only; case mapping is `toLowerCase()` (what RFC 8265 prescribes),
 *   then NFC. Instead of the full IdentifierClass derived-property table we reject the RFC 7622 §3.3.1
 *   characters, controls, spaces, format characters (except ZWNJ/ZWJ), private use, unassigned and
 *   lone surrogates. Non-ASCII symbols and punctuation, which IdentifierClass disallows, are let
 *   through, as stringprep-era servers (Prosody, ejabberd) do.
 * - resourcepart (OpaqueString, RFC 8265 §4.2): non-ASCII spaces map to U+0020, then NFC; controls
 *   and lone surrogates are rejected. Case is preserved.
 * - domainpart: UTS #46 via `url.domainToASCII` (the WHATWG URL host parser) rather than strict
 *   IDNA2008; the result must consist of LDH labels (underscore tolerated, as internal host names
 *   use it) of at most 63 octets. Hyphen placement is not checked: domainToASCII does not check it.
 */
import { isIPv4, isIPv6 } from "node:net";
import { domainToASCII } from "node:url";
import { ownedString } from "../xml/ownedString.js";

export type JidPart = "localpart" | "domainpart" | "resourcepart";

/** Why a string is not a JID; `part` says which part is at fault. */
export class JidError extends Error {
  override readonly name = "JidError";
  readonly input: string;
  readonly part: JidPart;

  constructor(input: string, part: JidPart, problem: string) {
    super(`invalid JID ${quote(input)}: ${part} ${problem}`);
    this.input = input;
    this.part = part;
  }
}

/** RFC 7622 §3.1: each part is at most 1023 octets once normalized. */
const MAX_PART_BYTES = 1023;
/**
 * Raw parts longer than this (UTF-16 units) are refused before normalization, so hostile input costs
 * bounded work. NFC and width mapping never shrink a part eightfold; only piles of characters that
 * UTS #46 drops (soft hyphens in a domain) could, and refusing those is no loss.
 */
const MAX_RAW_PART = 8 * MAX_PART_BYTES;
const MAX_LABEL_BYTES = 63;

/**
 * Recently parsed JIDs by their text. A busy link carries the same few addresses in every stanza:
 * a hit skips normalization, and hands the routing tables the same domain strings again, whose
 * hashes V8 has already computed.
 */
const recent = new Map<string, Jid>();
const RECENT_MAX = 4096;

export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  readonly #text: string;

  /** Parts must already be normalized: use `Jid.parse`. */
  private constructor(local: string, domain: string, resource: string) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    let text = local === "" ? domain : `${local}@${domain}`;
    if (resource !== "") text += `/${resource}`;
    this.#text = text;
    Object.freeze(this);
  }

  /** Parses and normalizes; throws `JidError` naming the faulty part. */
  static parse(text: string): Jid {
    const known = recent.get(text);
    if (known !== undefined) return known;
    // A copy: the text may be a slice of a whole socket read, which the cache must not keep alive.
    const own = ownedString(text);
    const jid = Jid.parseNew(own);
    // Bounded: a peer sending endless distinct addresses only makes the cache start over.
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(own, jid);
    return jid;
  }

  private static parseNew(text: string): Jid {
    const slash = text.indexOf("/");
    const head = slash === -1 ? text : text.slice(0, slash);
    const at = head.indexOf("@");
    const rawLocal = at === -1 ? undefined : head.slice(0, at);
    const rawDomain = at === -1 ? head : head.slice(at + 1);
    const rawResource = slash === -1 ? undefined : text.slice(slash + 1);

    const local = rawLocal === undefined ? "" : normalizeLocal(text, rawLocal);
    const domain = normalizeDomain(text, rawDomain);
    const resource = rawResource === undefined ? "" : normalizeResource(text, rawResource);
    return new Jid(local, domain, resource);
  }

  /** Like `parse`, but returns `undefined` for invalid input. */
  static tryParse(text: string): Jid | undefined {
    try {
      return Jid.parse(text);
    } catch (err) {
      if (err instanceof JidError) return undefined;
      throw err;
    }
  }

  /** This JID without its resourcepart (itself when it has none). */
  bare(): Jid {
    return this.resource === "" ? this : new Jid(this.local, this.domain, "");
  }

  equals(other: Jid): boolean {
    return this.#text === other.#text;
  }

  /**
   * The canonical form. It always parses back to an equal JID: localpart and domainpart can contain
   * neither `@` nor `/`, so the first `/` and the first `@` before it are the separators again.
   */
  toString(): string {
    return this.#text;
  }
}

/**
 * The normalized domainpart of a JID string, or `undefined` when the string is not a valid JID.
 * Equivalent to `Jid.tryParse(text)?.domain`, but plain lower-case ASCII input — nearly every JID on
 * the wire — is checked in one scan without allocating or normalizing.
 */
export function domainOf(text: string): string | undefined {
  const fast = plainDomainOf(text);
  if (fast !== undefined) return fast;
  return Jid.tryParse(text)?.domain;
}

// ---- fast path ----------------------------------------------------------------------------------

/**
 * The domain of `text` when the whole JID is plain ASCII that normalization leaves unchanged, else
 * `undefined` (meaning "take the slow path", not "invalid"). Anything unusual falls through: upper
 * case, a trailing dot, `xn--` labels (domainToASCII validates Punycode), a final label starting with
 * a digit (IP literals and the WHATWG number rules), non-ASCII, controls.
 */
function plainDomainOf(text: string): string | undefined {
  const length = text.length;
  let domainStart = 0;
  // Localpart, if any: scan up to the first "@" or "/".
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x40 /* @ */) {
      if (i === 0 || i > MAX_PART_BYTES) return undefined;
      domainStart = i + 1;
      break;
    }
    if (c === 0x2f /* / */) break;
    // Printable ASCII except " & ' : < > and upper case.
    if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x26 || c === 0x27 || c === 0x3a) return undefined;
    if (c === 0x3c || c === 0x3e || (c >= 0x41 && c <= 0x5a)) return undefined;
  }
  const domainEnd = plainDomainEnd(text, domainStart);
  if (domainEnd === -1) return undefined;
  if (domainEnd < length) {
    // Resourcepart: non-empty printable ASCII (space included), which NFC leaves alone.
    if (length - domainEnd - 1 === 0 || length - domainEnd - 1 > MAX_PART_BYTES) return undefined;
    for (let j = domainEnd + 1; j < length; j++) {
      const c = text.charCodeAt(j);
      if (c < 0x20 || c >= 0x7f) return undefined;
    }
  }
  return text.slice(domainStart, domainEnd);
}

/**
 * Where the domainpart starting at `start` ends (at the first "/" or the end of `text`) if it is
 * already normalized: lower-case LDH labels of 1 to 63 octets, none of them Punycode, the last not
 * starting with a digit, at most 1023 octets in all. Otherwise -1, meaning "normalize it".
 */
function plainDomainEnd(text: string, start: number): number {
  const length = text.length;
  let labelStart = start;
  let i = start;
  for (; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e /* . */ || c === 0x2f /* / */) {
      if (!plainLabel(text, labelStart, i)) return -1;
      if (c === 0x2f) break;
      labelStart = i + 1;
    } else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) {
      return -1;
    }
  }
  if (i === length && !plainLabel(text, labelStart, i)) return -1;
  const first = text.charCodeAt(labelStart);
  if (first >= 0x30 && first <= 0x39) return -1;
  return i - start > MAX_PART_BYTES ? -1 : i;
}

function plainLabel(text: string, start: number, end: number): boolean {
  if (end === start || end - start > MAX_LABEL_BYTES) return false;
  return !text.startsWith("xn--", start);
}

// ---- normalization ------------------------------------------------------------------------------

const FORBIDDEN_LOCAL = /["&'/:<>@]/;
// Controls, unassigned, private use, lone surrogates, separators, and format characters except
// ZWNJ/ZWJ (which some scripts need).
const DISALLOWED_LOCAL = /[\p{Cc}\p{Cn}\p{Co}\p{Cs}\p{Z}]|(?![\u200c\u200d])\p{Cf}/u;
const DISALLOWED_RESOURCE = /[\p{Cc}\p{Cs}]/u;
const WIDE_OR_NARROW = /[\uff00-\uffef]/gu;
const NON_ASCII_SPACE = /(?! )\p{Zs}/gu;
const NOT_PLAIN = /[^\x21-\x7e]/;
const LDH_LABEL = /^[a-z0-9_-]+$/;

function normalizeLocal(input: string, raw: string): string {
  if (raw === "") throw new JidError(input, "localpart", 'is empty (nothing before "@")');
  checkRaw(input, "localpart", raw);
  // Plain ASCII needs only case folding; NFC and width mapping leave it unchanged.
  const local = NOT_PLAIN.test(raw)
    ? raw
        .replace(WIDE_OR_NARROW, (c) => c.normalize("NFKC"))
        .toLowerCase()
        .normalize("NFC")
    : raw.toLowerCase();
  const forbidden = FORBIDDEN_LOCAL.exec(local);
  if (forbidden) {
    throw new JidError(input, "localpart", `contains the forbidden character ${quote(forbidden[0])}`);
  }
  const disallowed = DISALLOWED_LOCAL.exec(local);
  if (disallowed) {
    throw new JidError(input, "localpart", `contains the disallowed character ${codePoint(disallowed[0])}`);
  }
  checkLength(input, "localpart", local);
  return local;
}

function normalizeResource(input: string, raw: string): string {
  if (raw === "") throw new JidError(input, "resourcepart", 'is empty (nothing after "/")');
  checkRaw(input, "resourcepart", raw);
  const resource = NOT_PLAIN.test(raw) ? raw.replace(NON_ASCII_SPACE, " ").normalize("NFC") : raw;
  const disallowed = DISALLOWED_RESOURCE.exec(resource);
  if (disallowed) {
    throw new JidError(
      input,
      "resourcepart",
      `contains the disallowed character ${codePoint(disallowed[0])}`,
    );
  }
  checkLength(input, "resourcepart", resource);
  return resource;
}

function normalizeDomain(input: string, raw: string): string {
  // RFC 7622 §3.2: one trailing dot is stripped before anything else.
  const stripped = raw.endsWith(".") ? raw.slice(0, -1) : raw;
  if (stripped === "") throw new JidError(input, "domainpart", "is empty");
  if (plainDomainEnd(stripped, 0) === stripped.length) return stripped;
  checkRaw(input, "domainpart", stripped);
  if (stripped.startsWith("[") && stripped.endsWith("]")) {
    const address = stripped.slice(1, -1);
    // Zone identifiers (fe80::1%eth0) mean nothing to a remote server.
    const canonical = isIPv6(address) && !address.includes("%") ? domainToASCII(stripped) : "";
    if (canonical === "") throw new JidError(input, "domainpart", "is not a valid IPv6 address literal");
    return canonical; // lower-case and compressed (RFC 5952), e.g. [::1]
  }
  if (isIPv4(stripped)) return stripped;
  const domain = domainToASCII(stripped);
  if (domain === "") throw new JidError(input, "domainpart", "is not a valid domain name");
  // The WHATWG parser turns number-like hosts ("0x7f.1", "1.2.3") into IPv4 addresses; only a
  // dotted-quad written as such is an IP literal.
  if (isIPv4(domain)) {
    throw new JidError(input, "domainpart", "is a number but not a dotted-quad IPv4 address");
  }
  for (const label of domain.split(".")) {
    if (label === "") throw new JidError(input, "domainpart", "has an empty label");
    if (label.length > MAX_LABEL_BYTES) {
      throw new JidError(input, "domainpart", `has a label longer than ${MAX_LABEL_BYTES} octets`);
    }
    if (!LDH_LABEL.test(label)) {
      throw new JidError(
        input,
        "domainpart",
        'has a label with characters other than letters, digits, "-" and "_"',
      );
    }
  }
  checkLength(input, "domainpart", domain);
  return domain;
}

function checkRaw(input: string, part: JidPart, raw: string): void {
  if (raw.length > MAX_RAW_PART) throw new JidError(input, part, `is longer than ${MAX_PART_BYTES} bytes`);
}

function checkLength(input: string, part: JidPart, value: string): void {
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_PART_BYTES) {
    throw new JidError(input, part, `is ${bytes} bytes long; at most ${MAX_PART_BYTES} are allowed`);
  }
}

/** Quotes input for an error message, cut short so that a hostile megabyte does not end up in logs. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

function codePoint(char: string): string {
  const cp = char.codePointAt(0) ?? 0;
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}
