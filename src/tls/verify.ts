/**
 * Verdicts on a peer's certificate for an XMPP server domain (RFC 7590 §3.2, RFC 6120 §13.7.2):
 * a path from the leaf through the intermediates the peer sent to a trust anchor (RFC 5280 §6,
 * reduced to signatures, issuer names, CA flags and validity dates), the extended key usage, and the
 * RFC 6125 identity rules of ./identity.ts. Each refusal carries one precise reason.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { readCertificateFields } from "./certFields.js";
import { certificateIdentities, identityNames, matchesDomain } from "./identity.js";

export {
  certificateIdentities,
  identityNames,
  matchesDomain,
  type CertificateIdentities,
} from "./identity.js";

export type CertFailure =
  | "expired"
  | "not-yet-valid"
  | "self-signed"
  | "untrusted-chain"
  | "name-mismatch"
  | "eku"
  | "no-certificate";

export type CertVerdict =
  { ok: true; names: string[] } | { ok: false; reason: CertFailure; detail: string; names: string[] };

/** `peer`: full checks; `selfsigned_peer`: also accept a self-signed leaf; `none`: accept anything. */
export type VerifyMode = "peer" | "selfsigned_peer" | "none";

export interface TrustStore {
  /** The trusted CA certificates (and any end-entity certificate trusted as itself). */
  readonly anchors: readonly X509Certificate[];
  /** Where they came from (a file path, or "node's root certificates"), for messages. */
  readonly source: string;
}

/**
 * A store's anchors by fingerprint and by subject name, so that a verification looks at the few
 * anchors that can matter instead of all of them (Node's root list has about 150: scanned at each
 * link set-up that took ~0.3 ms per verdict, four verdicts per STARTTLS link).
 */
interface AnchorIndex {
  readonly fingerprints: ReadonlySet<string>;
  readonly bySubject: ReadonlyMap<string, readonly X509Certificate[]>;
}

const indexes = new WeakMap<TrustStore, AnchorIndex>();

function indexOf(store: TrustStore): AnchorIndex {
  let index = indexes.get(store);
  if (index === undefined) {
    const bySubject = new Map<string, X509Certificate[]>();
    for (const anchor of store.anchors) {
      const key = nameKey(anchor.subject);
      const list = bySubject.get(key);
      if (list === undefined) bySubject.set(key, [anchor]);
      else list.push(anchor);
    }
    index = { fingerprints: new Set(store.anchors.map((a) => a.fingerprint256)), bySubject };
    indexes.set(store, index);
  }
  return index;
}

/**
 * A loose form of a distinguished name as Node prints it: lower case, no whitespace nor escapes,
 * its attributes sorted. Names OpenSSL would match (X509_NAME_cmp compares canonical forms) get the
 * same key; a few others may too, which is harmless since checkIssued still decides.
 */
function nameKey(name: string): string {
  return name
    .split(/[\n+]/u)
    .map((part) => part.toLowerCase().replace(/[\\\s]/gu, ""))
    .sort()
    .join("\n");
}

export interface VerifyOptions {
  trust: TrustStore;
  mode: VerifyMode;
  /** The time to check validity dates against; defaults to now. */
  now?: Date;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle; throws naming `source` when one cannot be parsed. */
export function trustStoreFromPem(pem: string | readonly string[], source = "PEM"): TrustStore {
  const blocks = (typeof pem === "string" ? [pem] : pem).flatMap((text) => text.match(PEM_CERTIFICATE) ?? []);
  const anchors = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new Error(`${source}: certificate #${i + 1} cannot be parsed: ${String(err)}`, { cause: err });
    }
  });
  const store = { anchors, source };
  indexOf(store); // at load, not on the first link's path
  return store;
}

let nodeRoots: TrustStore | undefined;

/**
 * The CA certificates of `cacertfile` (a PEM bundle); without one, the root certificates Node was
 * built with (Mozilla's list). Throws when the file cannot be read or holds no certificate.
 */
export function loadTrustStore(cacertfile?: string): TrustStore {
  if (cacertfile === undefined) {
    nodeRoots ??= trustStoreFromPem(tls.rootCertificates, "node's root certificates");
    return nodeRoots;
  }
  const store = trustStoreFromPem(readFileSync(cacertfile, "utf8"), cacertfile);
  if (store.anchors.length === 0) throw new Error(`${cacertfile}: no PEM certificate found`);
  return store;
}

/** The peer sends at most this many certificates worth considering, and paths are this long at most. */
const MAX_SENT = 16;
const MAX_DEPTH = 8;
/** Signature checks per verification, against adversarial bundles (names are compared first). */
const SIGNATURE_BUDGET = 64;

/**
 * The verdict on `chain` (the peer's certificates, leaf first) for the server domain `domain`.
 * Order of checks: presence, path to a trust anchor (or self-signed), validity dates along the
 * path, extended key usage of the leaf, then the leaf's identities.
 */
export function verifyPeerCertificate(
  chain: readonly X509Certificate[],
  domain: string,
  options: VerifyOptions,
): CertVerdict {
  const leaf = chain[0];
  if (leaf === undefined) {
    if (options.mode === "none") return { ok: true, names: [] };
    return refuse("no-certificate", "the peer presented no certificate", []);
  }
  const ids = certificateIdentities(leaf);
  const names = identityNames(ids);
  if (options.mode === "none") return { ok: true, names };
  const now = options.now ?? new Date();

  const paths = findPaths(leaf, chain.slice(1, 1 + MAX_SENT), indexOf(options.trust), now);
  let path = paths.find((p) => p.every((c) => datesProblem(c, now) === undefined)) ?? paths[0];
  if (path === undefined) {
    if (!isSelfSigned(leaf))
      return refuse(
        "untrusted-chain",
        `no path from ${describe(leaf)} (issued by ${oneLine(leaf.issuer)}) to a CA in ${options.trust.source}`,
        names,
      );
    if (options.mode !== "selfsigned_peer")
      return refuse("self-signed", `${describe(leaf)} is self-signed and not trusted`, names);
    path = [leaf];
  }

  for (const cert of path) {
    const problem = datesProblem(cert, now);
    if (problem !== undefined) {
      const whose =
        cert === leaf ? describe(leaf) : `CA ${oneLine(cert.subject)} in the chain of ${describe(leaf)}`;
      return refuse(problem.reason, `${whose} ${problem.detail}`, names);
    }
  }

  const ekuProblem = extendedKeyUsageProblem(leaf);
  if (ekuProblem !== undefined) return refuse("eku", `${describe(leaf)}: ${ekuProblem}`, names);

  if (!matchesDomain(ids, domain))
    return refuse(
      "name-mismatch",
      `cert names: ${names.length === 0 ? "(none)" : names.join(", ")}; expected ${domain}`,
      names,
    );
  return { ok: true, names };
}

/** `reason (detail)`, as kept on a connection and logged. */
export function formatVerdict(verdict: CertVerdict): string {
  return verdict.ok ? `ok (${verdict.names.join(", ")})` : `${verdict.reason} (${verdict.detail})`;
}

function refuse(reason: CertFailure, detail: string, names: string[]): CertVerdict {
  return { ok: false, reason, detail, names };
}

/**
 * Certification paths from `leaf` to a trust anchor, leaf first, anchor last: depth-first through the
 * certificates the peer sent, in any order. Stops at the first path whose dates are all valid
 * (usually the first path found at all).
 */
function findPaths(
  leaf: X509Certificate,
  sent: readonly X509Certificate[],
  anchors: AnchorIndex,
  now: Date,
): X509Certificate[][] {
  const found: X509Certificate[][] = [];
  let budget = SIGNATURE_BUDGET;
  /** RFC 5280 §6.1.3: `issuer` is a CA whose name and key (and key usage) issued `cert`. */
  const issuedBy = (cert: X509Certificate, issuer: X509Certificate): boolean => {
    // checkIssued is OpenSSL's X509_check_issued: names, key identifiers, keyCertSign if restricted.
    if (!issuer.ca || !cert.checkIssued(issuer)) return false;
    return budget-- > 0 && safeVerify(cert, issuer);
  };
  /** Records a complete path; true once the search can stop. */
  const done = (path: X509Certificate[]): boolean => {
    found.push(path);
    return path.every((c) => datesProblem(c, now) === undefined) || found.length >= 8;
  };
  const extend = (path: X509Certificate[]): boolean => {
    const current = path.at(-1);
    if (current === undefined || budget <= 0) return true;
    // A certificate that is itself in the store ends the path (the anchor, or a pinned leaf).
    if (anchors.fingerprints.has(current.fingerprint256)) return done(path);
    // Only an anchor whose subject is the certificate's issuer can have issued it.
    for (const anchor of anchors.bySubject.get(nameKey(current.issuer)) ?? [])
      if (issuedBy(current, anchor) && done([...path, anchor])) return true;
    if (path.length >= MAX_DEPTH) return false;
    for (const candidate of sent) {
      if (path.some((c) => sameCertificate(c, candidate)) || !issuedBy(current, candidate)) continue;
      if (extend([...path, candidate])) return true;
    }
    return false;
  };
  extend([leaf]);
  return found;
}

function safeVerify(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Self-issued (RFC 5280 §3.3: subject and issuer names equal) and signed by its own key. Not
 * checkIssued: a self-signed server certificate rarely has keyCertSign in its key usage.
 */
function isSelfSigned(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && safeVerify(cert, cert);
}

function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  return a === b || a.raw.equals(b.raw);
}

/** RFC 5280 §4.1.2.5: notBefore <= now <= notAfter (both inclusive). */
function datesProblem(
  cert: X509Certificate,
  now: Date,
): { reason: "expired" | "not-yet-valid"; detail: string } | undefined {
  const fields = readCertificateFields(cert.raw);
  const notBefore = fields?.notBefore ?? parseNodeDate(cert.validFrom);
  const notAfter = fields?.notAfter ?? parseNodeDate(cert.validTo);
  if (notBefore === undefined || notAfter === undefined)
    return { reason: "expired", detail: "has unreadable validity dates" };
  if (now.getTime() < notBefore.getTime())
    return { reason: "not-yet-valid", detail: `is not valid before ${notBefore.toISOString()}` };
  if (now.getTime() > notAfter.getTime())
    return { reason: "expired", detail: `expired at ${notAfter.toISOString()}` };
  return undefined;
}

function parseNodeDate(text: string): Date | undefined {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

const EKU = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  any: "2.5.29.37.0",
};

/**
 * RFC 5280 §4.2.1.12: no extension means any purpose. Either TLS purpose is enough in both
 * directions: public CAs no longer issue clientAuth, so a serverAuth-only certificate must be
 * accepted from a connecting peer too.
 */
function extendedKeyUsageProblem(leaf: X509Certificate): string | undefined {
  const fields = readCertificateFields(leaf.raw);
  const purposes = fields === undefined ? [] : fields.extendedKeyUsage;
  if (purposes === undefined) return undefined;
  if ([EKU.serverAuth, EKU.clientAuth, EKU.any].some((p) => purposes.includes(p))) return undefined;
  const listed = purposes.length === 0 ? "unreadable" : purposes.join(", ");
  return `extended key usage allows neither serverAuth nor clientAuth (${listed})`;
}

function describe(cert: X509Certificate): string {
  return cert.subject === "" ? "certificate (empty subject)" : `certificate ${oneLine(cert.subject)}`;
}

function oneLine(name: string): string {
  return name.split("\n").join(", ");
}
