/**
 * What one probed address says about federation, in sentences: whether it answered, TLS, and the
 * certificate (RFC 6125 as Ferry's outgoing side judges it), for the diagnosis's findings.
 */
import type { CertificateReport, NameVerdict } from "./certificateReport.js";
import type { TlsSummary } from "./connect.js";
import type { Phase, Timings } from "./failure.js";
import type { Findings } from "./findings.js";
import { hostPort } from "./resolveHost.js";

export interface AddressReport {
  ip: string;
  family: 4 | 6;
  port: number;
  directTls: boolean;
  /** Where the address came from ("_xmpp-server → xmpp.example.org:5269", "A example.org …"). */
  via: string;
  /** It answered with an XMPP stream header. */
  answered: boolean;
  /** Not probed, and why (a private address with probe_private off). */
  skipped?: string;
  /** Milliseconds until the (protected) stream's features. */
  rtt?: number;
  streamId?: string;
  version?: string;
  features?: string[];
  featuresBeforeTls?: string[];
  tls?: TlsSummary;
  error?: string;
  code?: string;
  phase?: Phase;
  timings: Timings;
}

/** Certificates expiring sooner than this get a warning. */
const EXPIRY_WARNING_DAYS = 14;

export function addressFindings(
  report: AddressReport,
  domain: string,
  requireTls: boolean,
  findings: Findings,
): void {
  const where = `${hostPort(report.ip, report.port)} (IPv${report.family})`;
  if (report.skipped !== undefined) {
    findings.warning("address_private", `${where} was not probed: ${report.skipped}`);
    return;
  }
  if (!report.answered) {
    findings.warning("address_failed", `${where} did not answer: ${report.error ?? "no XMPP stream"}`);
    return;
  }
  if (report.code !== undefined) {
    findings.problem(report.code, `${where}: ${report.error ?? report.code}`);
  }
  if (report.version === undefined || !report.version.startsWith("1")) {
    findings.warning("pre_xmpp_1", `${where} speaks pre-XMPP-1.0 streams (no version): no TLS, no features`);
  }
  const tls = report.tls;
  if (tls === undefined) {
    if (report.code !== undefined) return;
    if (requireTls) {
      findings.problem("tls_required", `${domain} offers no TLS at ${where}, and TLS is required`);
    } else {
      findings.warning(
        "tls_not_offered",
        `${domain} offers no STARTTLS at ${where}: stanzas would travel in clear, and many servers refuse such peers`,
      );
    }
    return;
  }
  certificateFindings(tls.certificate, domain, findings);
}

export function certificateFindings(cert: CertificateReport, domain: string, findings: Findings): void {
  const verdict = cert.verdicts.find((v) => v.name === domain) ?? cert.verdicts[0];
  if (verdict !== undefined && !verdict.ok)
    findings.problem(
      `cert_${(verdict.reason ?? "invalid").replace(/-/g, "_")}`,
      certificateText(cert, verdict, domain),
    );
  if (
    cert.daysLeft !== undefined &&
    cert.daysLeft >= 0 &&
    cert.daysLeft < EXPIRY_WARNING_DAYS &&
    cert.notAfter !== undefined
  ) {
    findings.warning(
      "cert_expiring",
      `the certificate of ${domain} expires on ${day(cert.notAfter)}, in ${cert.daysLeft} day${cert.daysLeft === 1 ? "" : "s"}`,
    );
  }
}

/** The certificate's fault in one sentence. */
function certificateText(cert: CertificateReport, verdict: NameVerdict, domain: string): string {
  const names = cert.names.length === 0 ? "no names" : cert.names.join(", ");
  switch (verdict.reason) {
    case "name-mismatch": {
      const delegated = cert.verdicts.find((v) => v.name !== domain && v.covered);
      return (
        `the certificate does not cover ${domain} (it names ${names})` +
        (delegated === undefined
          ? ""
          : `; covering the SRV target ${delegated.name} is not enough: XMPP servers check the domain itself`)
      );
    }
    case "expired":
      return `the certificate of ${domain} expired on ${cert.notAfter === undefined ? "an unreadable date" : day(cert.notAfter)}`;
    case "not-yet-valid":
      return `the certificate of ${domain} is not valid before ${cert.notBefore === undefined ? "an unreadable date" : day(cert.notBefore)}`;
    case "self-signed":
      return `the certificate of ${domain} is self-signed (${cert.subject}): servers that verify certificates refuse it`;
    case "untrusted-chain":
      return `the certificate of ${domain} is not signed by a CA Ferry trusts (issued by ${cert.issuer}; a missing intermediate certificate?)`;
    case "eku":
      return `the certificate of ${domain} may not be used by TLS servers: ${verdict.detail ?? ""}`;
    case "no-certificate":
      return `${domain} presented no certificate`;
    default:
      return `the certificate of ${domain} is not valid: ${verdict.detail ?? verdict.reason ?? "unknown reason"}`;
  }
}

function day(iso: string): string {
  return iso.slice(0, 10);
}
