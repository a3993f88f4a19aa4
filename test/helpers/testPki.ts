/**
 * Certificates for every verification verdict, made with `openssl ca` (which, unlike `req -x509` in
 * OpenSSL 3.0, takes explicit start and end dates): CAs, intermediates, leaves with chosen
 * subjectAltNames, extended key usages and validity windows, and self-signed certificates. EC P-256
 * keys, so a certificate takes milliseconds.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { RunDir } from "./peers/runDir.js";

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  /** PEM certificate. */
  pem: string;
  x509: X509Certificate;
}

export interface IssueOptions {
  /** Subject CN; default the certificate's file name. */
  cn?: string;
  /** subjectAltName entries in openssl syntax (`DNS:a.example`, xmppAddrSan(…), srvIdSan(…)); none by default. */
  san?: string[];
  /** extendedKeyUsage value in openssl syntax (`serverAuth`, `serverAuth,clientAuth`); none by default. */
  eku?: string;
  /** A CA certificate (basicConstraints CA:TRUE, keyCertSign) rather than a leaf. */
  ca?: boolean;
  /** Default: an hour ago. */
  notBefore?: Date;
  /** Default: two days from now. */
  notAfter?: Date;
  /** The signing CA; self-signed when absent. */
  issuer?: IssuedCertificate;
}

/** subjectAltName otherName id-on-xmppAddr (RFC 6120 §13.7.1.4). */
export const xmppAddrSan = (jid: string): string => `otherName:1.3.6.1.5.5.7.8.5;UTF8:${jid}`;

/** subjectAltName otherName id-on-dnsSRV (RFC 4985), `_xmpp-server.<domain>` by default. */
export const srvIdSan = (domain: string, service = "_xmpp-server"): string =>
  `otherName:1.3.6.1.5.5.7.8.7;IA5STRING:${service}.${domain}`;

const HOUR = 3600_000;

/** openssl's GeneralizedTime form, YYYYMMDDHHMMSSZ. */
function asn1Time(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace(/[-T:]/g, "")}Z`;
}

export class TestPki {
  private readonly runDir: RunDir;
  private readonly config: string;

  constructor(runDir: RunDir) {
    this.runDir = runDir;
    const database = runDir.file("pki-index.txt");
    writeFileSync(database, "");
    this.config = runDir.file("pki-ca.cnf");
    writeFileSync(
      this.config,
      [
        "[ca]",
        "default_ca = testca",
        "[testca]",
        `database = ${database}`,
        `new_certs_dir = ${runDir.path}`,
        "rand_serial = yes",
        "default_md = sha256",
        "policy = anything",
        "unique_subject = no",
        "copy_extensions = none",
        "[anything]",
        "commonName = optional",
        "",
      ].join("\n"),
    );
  }

  /** Makes `<name>.key` and `<name>.crt` in the run folder. */
  issue(name: string, options: IssueOptions = {}): IssuedCertificate {
    const keyFile = this.runDir.file(`${name}.key`);
    const certFile = this.runDir.file(`${name}.crt`);
    const csr = this.runDir.file(`${name}.csr`);
    const extFile = this.runDir.file(`${name}.ext`);
    const cn = options.cn ?? name;
    this.openssl([
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-noenc",
      "-keyout",
      keyFile,
      "-out",
      csr,
      "-subj",
      `/CN=${cn}`,
    ]);
    const ext = ["[ext]", "subjectKeyIdentifier = hash"];
    if (options.issuer !== undefined) ext.push("authorityKeyIdentifier = keyid");
    if (options.ca === true)
      ext.push("basicConstraints = critical,CA:TRUE", "keyUsage = critical,keyCertSign,cRLSign");
    else
      ext.push(
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical,digitalSignature,keyEncipherment",
      );
    if (options.san !== undefined && options.san.length > 0)
      ext.push(`subjectAltName = ${options.san.join(",")}`);
    if (options.eku !== undefined) ext.push(`extendedKeyUsage = ${options.eku}`);
    writeFileSync(extFile, `${ext.join("\n")}\n`);
    const now = Date.now();
    const signer =
      options.issuer === undefined
        ? ["-selfsign", "-keyfile", keyFile]
        : ["-cert", options.issuer.certFile, "-keyfile", options.issuer.keyFile];
    this.openssl([
      "ca",
      "-config",
      this.config,
      "-batch",
      "-notext",
      "-preserveDN",
      "-startdate",
      asn1Time(options.notBefore ?? new Date(now - HOUR)),
      "-enddate",
      asn1Time(options.notAfter ?? new Date(now + 48 * HOUR)),
      ...signer,
      "-in",
      csr,
      "-out",
      certFile,
      "-extfile",
      extFile,
      "-extensions",
      "ext",
    ]);
    const pem = readFileSync(certFile, "utf8");
    return { certFile, keyFile, pem, x509: new X509Certificate(pem) };
  }

  private openssl(args: string[]): void {
    try {
      execFileSync("openssl", args, { cwd: this.runDir.path, stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
      throw new Error(`openssl ${args.slice(0, 2).join(" ")} failed: ${stderr}`, { cause: err });
    }
  }
}
