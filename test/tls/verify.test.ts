/**
 * verifyPeerCertificate against certificates made by a test CA: one case per verdict, chains
 * through intermediates, the three modes, and the trust-store loaders.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import type { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, srvIdSan, xmppAddrSan, type IssuedCertificate } from "../helpers/testPki.js";
import {
  formatVerdict,
  loadTrustStore,
  trustStoreFromPem,
  verifyPeerCertificate,
  type CertVerdict,
  type TrustStore,
  type VerifyMode,
} from "../../src/tls/verify.js";

const DAY = 86_400_000;
const BOTH = "serverAuth,clientAuth";

let run: RunDir;
let trust: TrustStore;
const certs: Record<string, IssuedCertificate> = {};

/** The peer's chain, by certificate name, leaf first. */
function chain(...names: string[]): X509Certificate[] {
  return names.map((name) => {
    const cert = certs[name];
    if (cert === undefined) throw new Error(`no test certificate ${name}`);
    return cert.x509;
  });
}

function verify(
  names: string[],
  domain = "a.example",
  mode: VerifyMode = "peer",
  store = trust,
): CertVerdict {
  return verifyPeerCertificate(chain(...names), domain, { trust: store, mode });
}

function assertRefused(verdict: CertVerdict, reason: string, detail?: RegExp): void {
  assert.equal(verdict.ok, false, `expected ${reason}, got ${formatVerdict(verdict)}`);
  assert.equal(verdict.reason, reason, formatVerdict(verdict));
  if (detail !== undefined) assert.match(verdict.detail, detail);
}

function assertAccepted(verdict: CertVerdict): void {
  assert.equal(verdict.ok, true, formatVerdict(verdict));
}

before(() => {
  run = RunDir.create("tls-verify");
  const pki = new TestPki(run);
  const now = Date.now();
  const root = (certs.root = pki.issue("root", { ca: true, cn: "Ferry test root" }));
  const inter = (certs.inter = pki.issue("inter", { ca: true, cn: "Ferry test intermediate", issuer: root }));
  const other = (certs.otherRoot = pki.issue("otherRoot", { ca: true, cn: "Ferry untrusted root" }));
  const leaf = (name: string, options: Parameters<TestPki["issue"]>[1] = {}): void => {
    certs[name] = pki.issue(name, {
      cn: "a.example",
      san: ["DNS:a.example"],
      eku: BOTH,
      issuer: root,
      ...options,
    });
  };
  leaf("good");
  leaf("twoNames", { san: ["DNS:a.example", "DNS:*.b.example"] });
  leaf("wildcard", { cn: "*.a.example", san: ["DNS:*.a.example"] });
  leaf("wildcardTld", { cn: "*.com", san: ["DNS:*.com"] });
  leaf("xmppAddrOnly", { cn: "Some Server", san: [xmppAddrSan("a.example")] });
  leaf("srvOnly", { cn: "Some Server", san: [srvIdSan("a.example")] });
  leaf("srvClientOnly", { cn: "Some Server", san: [srvIdSan("a.example", "_xmpp-client")] });
  leaf("cnOnly", { san: [] });
  leaf("cnButOtherSan", { san: ["DNS:other.example"] });
  leaf("expired", { notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) });
  leaf("notYetValid", { notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) });
  leaf("viaInter", { issuer: inter });
  // Same subject as the real intermediate, another key.
  certs.impostorInter = pki.issue("impostorInter", { ca: true, cn: "Ferry test intermediate", issuer: root });
  leaf("untrustedCa", { issuer: other });
  leaf("serverAuthOnly", { eku: "serverAuth" });
  leaf("clientAuthOnly", { eku: "clientAuth" });
  leaf("codeSigning", { eku: "codeSigning" });
  leaf("noEku", { eku: undefined });
  certs.expiredInter = pki.issue("expiredInter", {
    ca: true,
    cn: "Ferry expired intermediate",
    issuer: root,
    notBefore: new Date(now - 10 * DAY),
    notAfter: new Date(now - DAY),
  });
  leaf("viaExpiredInter", { issuer: certs.expiredInter });
  // A leaf (CA:FALSE) cannot issue certificates.
  leaf("viaLeaf", { issuer: certs.good });
  leaf("selfSigned", { issuer: undefined });
  leaf("selfSignedExpired", {
    issuer: undefined,
    notBefore: new Date(now - 10 * DAY),
    notAfter: new Date(now - DAY),
  });
  leaf("selfSignedOtherName", { issuer: undefined, cn: "b.example", san: ["DNS:b.example"] });
  trust = trustStoreFromPem(root.pem, "test root");
});

after(() => {
  run.remove();
});

describe("verifyPeerCertificate: names (RFC 6125)", () => {
  it("accepts a DNS-ID, case-insensitively and ignoring a trailing dot", () => {
    assert.deepEqual(verify(["good"]), { ok: true, names: ["a.example"] });
    assertAccepted(verify(["good"], "A.Example."));
  });

  it("refuses a wrong name, listing the certificate's names", () => {
    const verdict = verify(["twoNames"], "c.example");
    assertRefused(verdict, "name-mismatch", /^cert names: a\.example, \*\.b\.example\b/);
    assert.deepEqual(verdict.names, ["a.example", "*.b.example"]);
    assert.match(formatVerdict(verdict), /^name-mismatch \(cert names: a\.example, \*\.b\.example/);
  });

  it("accepts a left-most wildcard for exactly one label", () => {
    assertAccepted(verify(["wildcard"], "b.a.example"));
    assertRefused(verify(["wildcard"], "a.example"), "name-mismatch");
    assertRefused(verify(["wildcard"], "b.c.a.example"), "name-mismatch");
  });

  it("refuses a wildcard over a public suffix", () => {
    assertRefused(verify(["wildcardTld"], "example.com"), "name-mismatch");
  });

  it("accepts an XmppAddr or an _xmpp-server SRV-ID alone", () => {
    assert.deepEqual(verify(["xmppAddrOnly"]), { ok: true, names: ["a.example"] });
    assert.deepEqual(verify(["srvOnly"]), { ok: true, names: ["_xmpp-server.a.example"] });
    assertRefused(verify(["srvClientOnly"]), "name-mismatch", /_xmpp-client\.a\.example/);
  });

  it("falls back to the CN only when there is no subjectAltName", () => {
    assertAccepted(verify(["cnOnly"]));
    const verdict = verify(["cnButOtherSan"]);
    assertRefused(verdict, "name-mismatch", /^cert names: other\.example;/);
  });
});

describe("verifyPeerCertificate: chain and dates", () => {
  it("refuses an expired or not yet valid certificate", () => {
    assertRefused(verify(["expired"]), "expired", /expired at /);
    assertRefused(verify(["notYetValid"]), "not-yet-valid", /not valid before /);
  });

  it("checks the dates against `now`", () => {
    const inAYear = new Date(Date.now() + 365 * DAY);
    const verdict = verifyPeerCertificate(chain("good"), "a.example", { trust, mode: "peer", now: inAYear });
    assertRefused(verdict, "expired");
  });

  it("builds the chain through the intermediates the peer sent, in any order", () => {
    assertAccepted(verify(["viaInter", "inter"]));
    assertAccepted(verify(["viaInter", "root", "good", "inter"]));
    assertAccepted(verify(["viaInter", "impostorInter", "inter"]));
    assertRefused(verify(["viaInter", "impostorInter"]), "untrusted-chain");
  });

  it("refuses a chain whose intermediate is missing or not trusted", () => {
    assertRefused(verify(["viaInter"]), "untrusted-chain", /Ferry test intermediate.*test root/);
    assertRefused(verify(["untrustedCa", "otherRoot"]), "untrusted-chain");
    assertRefused(verify(["viaLeaf", "good"]), "untrusted-chain");
  });

  it("refuses an expired intermediate, naming it", () => {
    assertRefused(verify(["viaExpiredInter", "expiredInter"]), "expired", /Ferry expired intermediate/);
  });

  it("finds the anchor in a large store", () => {
    const store = trustStoreFromPem([...tls.rootCertificates, certs.root!.pem], "node roots + test root");
    assertAccepted(verify(["viaInter", "inter"], "a.example", "peer", store));
  });

  it("trusts an intermediate placed in the store itself", () => {
    const store = trustStoreFromPem([certs.inter!.pem], "intermediate only");
    assertAccepted(verify(["viaInter"], "a.example", "peer", store));
  });
});

describe("verifyPeerCertificate: self-signed and modes", () => {
  it("refuses a self-signed certificate in `peer` mode", () => {
    assertRefused(verify(["selfSigned"]), "self-signed");
  });

  it("accepts it in `selfsigned_peer` mode, names and dates still checked", () => {
    assertAccepted(verify(["selfSigned"], "a.example", "selfsigned_peer"));
    assertRefused(verify(["selfSignedOtherName"], "a.example", "selfsigned_peer"), "name-mismatch");
    assertRefused(verify(["selfSignedExpired"], "a.example", "selfsigned_peer"), "expired");
    assertRefused(verify(["untrustedCa", "otherRoot"], "a.example", "selfsigned_peer"), "untrusted-chain");
  });

  it("accepts a self-signed certificate that is itself in the store", () => {
    const pinned = trustStoreFromPem(certs.selfSigned!.pem, "pinned");
    assertAccepted(verify(["selfSigned"], "a.example", "peer", pinned));
  });

  it("accepts anything in `none` mode, still reporting the names", () => {
    assert.deepEqual(verify(["selfSignedExpired"], "c.example", "none"), { ok: true, names: ["a.example"] });
    assert.deepEqual(verifyPeerCertificate([], "a.example", { trust, mode: "none" }), {
      ok: true,
      names: [],
    });
  });

  it("refuses a missing certificate", () => {
    assertRefused(verifyPeerCertificate([], "a.example", { trust, mode: "peer" }), "no-certificate");
    assertRefused(
      verifyPeerCertificate([], "a.example", { trust, mode: "selfsigned_peer" }),
      "no-certificate",
    );
  });
});

describe("verifyPeerCertificate: extended key usage", () => {
  it("accepts serverAuth only, clientAuth only, both, or no EKU extension", () => {
    for (const name of ["serverAuthOnly", "clientAuthOnly", "good", "noEku"]) assertAccepted(verify([name]));
  });

  it("refuses an EKU with neither serverAuth nor clientAuth", () => {
    assertRefused(verify(["codeSigning"]), "eku", /1\.3\.6\.1\.5\.5\.7\.3\.3/);
  });
});

describe("loadTrustStore", () => {
  it("reads a PEM bundle", () => {
    const file = run.file("bundle.pem");
    writeFileSync(file, `${certs.root!.pem}\n${certs.otherRoot!.pem}`);
    const store = loadTrustStore(file);
    assert.equal(store.anchors.length, 2);
    assert.equal(store.source, file);
    assertAccepted(verify(["good"], "a.example", "peer", store));
  });

  it("refuses a file without certificates", () => {
    const file = run.file("empty.pem");
    writeFileSync(file, "nothing here\n");
    assert.throws(() => loadTrustStore(file), /no PEM certificate/);
  });

  it("defaults to Node's root certificates, which do not include the test CA", () => {
    const store = loadTrustStore();
    assert.ok(store.anchors.length > 50);
    assertRefused(verify(["good"], "a.example", "peer", store), "untrusted-chain");
  });
});
