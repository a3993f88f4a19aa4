/**
 * Throwaway certificates for STARTTLS tests: a CA and leaves it signs, made with the openssl CLI
 * (EC P-256: a key takes milliseconds, unlike RSA). Valid for two days.
 */
import { execFileSync } from "node:child_process";
import type { RunDir } from "./runDir.js";

export interface CertificateAuthority {
  /** PEM certificate: what a peer that should trust the leaves is given as CA file. */
  cert: string;
  key: string;
}

export interface LeafCertificate {
  cert: string;
  key: string;
  /** The signing CA's certificate. */
  ca: string;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc", "-days", "2"];

function openssl(runDir: RunDir, args: string[]): void {
  execFileSync("openssl", args, { cwd: runDir.path, stdio: ["ignore", "ignore", "pipe"] });
}

export function makeCa(runDir: RunDir, name = "ca"): CertificateAuthority {
  const cert = runDir.file(`${name}.pem`);
  const key = runDir.file(`${name}.key`);
  openssl(runDir, [
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    key,
    "-out",
    cert,
    "-subj",
    `/CN=Ferry test CA ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { cert, key };
}

/**
 * A leaf for `names` (subjectAltName DNS entries, e.g. `["p.fedtest", "*.p.fedtest"]`; the first is
 * also the CN), usable for both sides of S2S TLS.
 */
export function makeLeaf(
  runDir: RunDir,
  ca: CertificateAuthority,
  names: string[],
  fileName?: string,
): LeafCertificate {
  const first = names[0];
  if (first === undefined) throw new Error("makeLeaf needs at least one name");
  const base = fileName ?? first.replace(/\*/g, "_");
  const cert = runDir.file(`${base}.crt`);
  const key = runDir.file(`${base}.key`);
  openssl(runDir, [
    "req",
    "-x509",
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    ...EC_KEY,
    "-keyout",
    key,
    "-out",
    cert,
    "-subj",
    `/CN=${first}`,
    "-addext",
    `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "-addext",
    "extendedKeyUsage=serverAuth,clientAuth",
  ]);
  return { cert, key, ca: ca.cert };
}
