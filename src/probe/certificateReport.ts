/**
 * A remote certificate in the terms an operator checks: who it names, until when, whether its chain
 * is trusted, and the verdict (RFC 6125, as Ferry's outgoing side judges it) for each name that
 * matters: the domain, and for a diagnose also the SRV target the domain delegates to.
 */
import type { TlsFacts } from "./probeSession.js";
import type { X509Certificate } from "node:crypto";
import { readCertificateFields } from "../tls/certFields.js";
import { certificateIdentities, identityNames, matchesDomain, type CertFailure } from "../tls/verify.js";
import type { CertificateCheck } from "../s2s/trust.js";

export interface NameVerdict {
  name: string;
  /** The certificate names it (DNS-ID, SRV-ID, XmppAddr, or CN without subjectAltName). */
  covered: boolean;
  /** Ferry would accept this certificate for this name. */
  ok: boolean;
  reason?: CertFailure;
  detail?: string;
}

export interface CertificateReport {
  subject: string;
  issuer: string;
  /** Every identity the certificate presents. */
  names: string[];
  notBefore?: string;
  notAfter?: string;
  /** Whole days until it expires (negative: expired that long ago). */
  daysLeft?: number;
  /** The chain, dates and key usage, names aside: "ok" or what is wrong with them. */
  chain: "ok" | CertFailure;
  chainDetail?: string;
  verdicts: NameVerdict[];
}

const DAY = 86_400_000;

export function certificateReport(
  chain: readonly X509Certificate[],
  names: readonly string[],
  check: CertificateCheck,
  now = Date.now(),
): CertificateReport {
  const leaf = chain[0];
  const verdicts = names.map((name): NameVerdict => {
    const verdict = check([...chain], name);
    const covered = leaf !== undefined && matchesDomain(certificateIdentities(leaf), name);
    return verdict.ok
      ? { name, covered, ok: true }
      : { name, covered, ok: false, reason: verdict.reason, detail: verdict.detail };
  });
  if (leaf === undefined) {
    return { subject: "", issuer: "", names: [], chain: "no-certificate", verdicts };
  }
  const fields = readCertificateFields(leaf.raw);
  const notBefore = fields?.notBefore ?? parse(leaf.validFrom);
  const notAfter = fields?.notAfter ?? parse(leaf.validTo);
  // Name checks come last (src/tls/verify.ts), so any other refusal is about the chain itself.
  const first = verdicts.find((v) => !v.ok && v.reason !== "name-mismatch");
  return {
    subject: oneLine(leaf.subject),
    issuer: oneLine(leaf.issuer),
    names: identityNames(certificateIdentities(leaf)),
    ...(notBefore === undefined ? {} : { notBefore: notBefore.toISOString() }),
    ...(notAfter === undefined
      ? {}
      : { notAfter: notAfter.toISOString(), daysLeft: Math.floor((notAfter.getTime() - now) / DAY) }),
    chain: first?.reason ?? "ok",
    ...(first?.detail === undefined ? {} : { chainDetail: first.detail }),
    verdicts,
  };
}

function parse(text: string): Date | undefined {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function oneLine(name: string): string {
  return name.split("\n").join(", ");
}

/** The TLS part of a probe's answer: mode, version, cipher, and the certificate judged per name. */
export function tlsReport(
  tls: TlsFacts,
  names: readonly string[],
  check: CertificateCheck,
): { mode: TlsFacts["mode"]; version: string; cipher: string; certificate: CertificateReport } {
  return {
    mode: tls.mode,
    version: tls.version,
    cipher: tls.cipher,
    certificate: certificateReport(tls.chain, names, check),
  };
}
