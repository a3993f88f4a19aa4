/**
 * The trust layer's pieces that the stream machines are provided with: the certificates we present
 * (per domain, by SNI, reloadable), how peers' certificates are judged (RFC 6125 via src/tls, per
 * listener and for outgoing links), and `outgoing.tls.require_for`.
 */
import type { X509Certificate } from "node:crypto";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { CertificateStore } from "../tls/certificates.js";
import { compileRequireFor, type RequireFor } from "../tls/requireFor.js";
import { loadTrustStore, verifyPeerCertificate, type CertVerdict, type TrustStore } from "../tls/verify.js";

export type CertificateCheck = (chain: X509Certificate[], domain: string) => CertVerdict;

export interface Trust {
  certificates: CertificateStore;
  /** How certificates of servers we connect to are judged (`s2s.outgoing.tls`). */
  outgoing: CertificateCheck;
  /** How certificates of servers connecting to listener `index` are judged (`listen.s2s[i].tls`). */
  incoming: (index: number) => CertificateCheck;
  requireFor: RequireFor;
}

export function loadTrust(config: Config, log: Logger): Trust {
  const certificates = CertificateStore.load(config, log.child("CONF"));
  const outgoingTls = config.s2s.outgoing.tls;
  // One parsed store per CA file (or Node's root certificates when none is given).
  const stores = new Map<string | undefined, TrustStore>();
  const storeFor = (file: string | undefined): TrustStore => {
    let store = stores.get(file);
    if (store === undefined) {
      store = loadTrustStore(file);
      stores.set(file, store);
    }
    return store;
  };
  const outgoingStore = storeFor(outgoingTls.cacertfile);
  const outgoing: CertificateCheck = (chain, domain) =>
    verifyPeerCertificate(chain, domain, { trust: outgoingStore, mode: outgoingTls.verify_mode });
  const incomingChecks = config.listen.s2s.map((listener): CertificateCheck => {
    const tls = listener.tls;
    const store = storeFor(tls?.cacertfile);
    const mode = tls?.verify_mode ?? "peer";
    return (chain, domain) => verifyPeerCertificate(chain, domain, { trust: store, mode });
  });
  return {
    certificates,
    outgoing,
    incoming: (index) => incomingChecks[index] ?? outgoing,
    requireFor: compileRequireFor(outgoingTls.require_for),
  };
}
