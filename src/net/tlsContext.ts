/**
 * Certificates for incoming streams (`[[listen.s2s]] tls.*`): one secure context per listener,
 * loaded at start so that a missing or unreadable file stops the server with a clear message.
 * (Several certificates chosen by SNI, reload on SIGHUP and verification are the trust layer's.)
 */
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import type { Config } from "../config/schema.js";
import type { StartTlsOffer } from "../xmpp/features.js";

type ListenerTls = NonNullable<Config["listen"]["s2s"][number]["tls"]>;

const MIN_VERSION = { "tlsv1.2": "TLSv1.2", "tlsv1.3": "TLSv1.3" } as const;

/** A listener's certificate: as options (for a direct-TLS server) and as a ready context (STARTTLS). */
export interface ListenerCertificate {
  options: SecureContextOptions;
  context: SecureContext;
}

export function loadListenerTls(
  tls: ListenerTls | undefined,
  where: string,
): ListenerCertificate | undefined {
  if (tls?.certfile === undefined) return undefined;
  const read = (file: string, option: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(
        `${where}.tls.${option}: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
  };
  const cert = read(tls.certfile, "certfile");
  const key = tls.keyfile === undefined ? cert : read(tls.keyfile, "keyfile");
  const versions = [...tls.versions].sort();
  const options: SecureContextOptions = {
    cert,
    key,
    ...(tls.ciphers === undefined ? {} : { ciphers: tls.ciphers }),
    minVersion: MIN_VERSION[versions[0] ?? "tlsv1.2"],
    maxVersion: MIN_VERSION[versions.at(-1) ?? "tlsv1.3"],
  };
  try {
    return { options, context: createSecureContext(options) };
  } catch (err) {
    throw new Error(`${where}.tls: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** What the features say about STARTTLS on this listener. */
export function starttlsOffer(
  tls: ListenerTls | undefined,
  certificate: ListenerCertificate | undefined,
): StartTlsOffer {
  if (tls === undefined || certificate === undefined || tls.mode === "tls") return "none";
  return tls.required || tls.mode === "starttls_required" ? "required" : "optional";
}
