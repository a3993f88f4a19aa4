/**
 * RFC 6125 reference-identity matching for XMPP server domains, and the identities read from real
 * certificates.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, srvIdSan, xmppAddrSan } from "../helpers/testPki.js";
import {
  certificateIdentities,
  identityNames,
  matchesDomain,
  type CertificateIdentities,
} from "../../src/tls/identity.js";

const ids = (partial: Partial<CertificateIdentities>): CertificateIdentities => ({
  dns: [],
  xmppAddr: [],
  srv: [],
  ...partial,
});
const dns = (...names: string[]): CertificateIdentities => ids({ dns: names });

describe("matchesDomain: DNS-ID (RFC 6125 §6.4)", () => {
  it("compares case-insensitively, ignoring a trailing dot on either side", () => {
    assert.equal(matchesDomain(dns("a.example"), "a.example"), true);
    assert.equal(matchesDomain(dns("A.EXAMPLE"), "a.example"), true);
    assert.equal(matchesDomain(dns("a.example."), "A.Example"), true);
    assert.equal(matchesDomain(dns("a.example"), "a.example."), true);
    assert.equal(matchesDomain(dns("a.example"), "b.example"), false);
    assert.equal(matchesDomain(dns("a.example"), "x.a.example"), false);
    assert.equal(matchesDomain(dns("x.a.example"), "a.example"), false);
  });

  it("takes a wildcard only as the whole left-most label, for exactly one label", () => {
    const wild = dns("*.a.example");
    assert.equal(matchesDomain(wild, "b.a.example"), true);
    assert.equal(matchesDomain(wild, "B.A.EXAMPLE."), true);
    assert.equal(matchesDomain(wild, "a.example"), false);
    assert.equal(matchesDomain(wild, "b.c.a.example"), false);
    assert.equal(matchesDomain(wild, ".a.example"), false);
    assert.equal(matchesDomain(dns("b.*.example"), "b.a.example"), false);
    assert.equal(matchesDomain(dns("f*.a.example"), "foo.a.example"), false);
    assert.equal(matchesDomain(dns("*f.a.example"), "xf.a.example"), false);
    assert.equal(matchesDomain(dns("*"), "example"), false);
    assert.equal(matchesDomain(dns("*.*.example"), "a.b.example"), false);
  });

  it("never lets a wildcard cover a bare top-level domain", () => {
    assert.equal(matchesDomain(dns("*.com"), "example.com"), false);
    assert.equal(matchesDomain(dns("*.com."), "example.com"), false);
    assert.equal(matchesDomain(dns("*.example.com"), "a.example.com"), true);
  });

  it("compares A-labels, and a wildcard may stand for one", () => {
    assert.equal(matchesDomain(dns("xn--bcher-kva.example"), "XN--BCHER-KVA.example"), true);
    assert.equal(matchesDomain(dns("*.example"), "xn--bcher-kva.example"), false); // single label after *
    assert.equal(matchesDomain(dns("*.a.example"), "xn--bcher-kva.a.example"), true);
  });

  it("refuses an empty or wildcard reference domain", () => {
    assert.equal(matchesDomain(dns("*.a.example"), "*.a.example"), false);
    assert.equal(matchesDomain(dns(""), ""), false);
    assert.equal(matchesDomain(dns("a..example"), "a..example"), false);
  });
});

describe("matchesDomain: XmppAddr and SRV-ID", () => {
  it("matches an XmppAddr that is exactly the domain, U-labels converted", () => {
    assert.equal(matchesDomain(ids({ xmppAddr: ["A.example"] }), "a.example"), true);
    assert.equal(matchesDomain(ids({ xmppAddr: ["bücher.example"] }), "xn--bcher-kva.example"), true);
    assert.equal(matchesDomain(ids({ xmppAddr: ["user@a.example"] }), "a.example"), false);
    assert.equal(matchesDomain(ids({ xmppAddr: ["a.example/res"] }), "a.example"), false);
    assert.equal(matchesDomain(ids({ xmppAddr: ["*.example"] }), "a.example"), false);
  });

  it("matches only the _xmpp-server service, its domain like a DNS-ID", () => {
    assert.equal(matchesDomain(ids({ srv: ["_xmpp-server.a.example"] }), "a.example"), true);
    assert.equal(matchesDomain(ids({ srv: ["_XMPP-Server.A.example."] }), "a.example"), true);
    assert.equal(matchesDomain(ids({ srv: ["_xmpp-server.*.example.net"] }), "a.example.net"), true);
    assert.equal(matchesDomain(ids({ srv: ["_xmpp-client.a.example"] }), "a.example"), false);
    assert.equal(matchesDomain(ids({ srv: ["_xmpp-server"] }), "a.example"), false);
    assert.equal(matchesDomain(ids({ srv: ["a.example"] }), "a.example"), false);
  });

  it("uses a CN only when it is given (no subjectAltName)", () => {
    assert.equal(matchesDomain(ids({ cn: "a.example" }), "a.example"), true);
    assert.equal(matchesDomain(ids({ cn: "*.a.example" }), "b.a.example"), true);
    assert.equal(matchesDomain(ids({ cn: "Some Server" }), "a.example"), false);
  });

  it("lists every identity once", () => {
    const all = ids({
      dns: ["a.example", "*.a.example"],
      srv: ["_xmpp-server.a.example"],
      xmppAddr: ["a.example"],
    });
    assert.deepEqual(identityNames(all), ["a.example", "*.a.example", "_xmpp-server.a.example"]);
    assert.deepEqual(identityNames(ids({ cn: "c.example" })), ["c.example"]);
  });
});

describe("certificateIdentities", () => {
  let run: RunDir;
  let pki: TestPki;
  before(() => {
    run = RunDir.create("tls-identity");
    pki = new TestPki(run);
  });
  after(() => {
    run.remove();
  });

  it("reads dNSName, XmppAddr and SRVName entries, without the CN", () => {
    const cert = pki.issue("all", {
      cn: "cn.example",
      san: [
        "DNS:a.example",
        xmppAddrSan("x.example"),
        "email:admin@a.example",
        srvIdSan("s.example"),
        "URI:xmpp:u.example",
        "DNS:*.w.example",
        xmppAddrSan("user@y.example"),
        "IP:192.0.2.1",
      ],
    }).x509;
    assert.deepEqual(certificateIdentities(cert), {
      dns: ["a.example", "*.w.example"],
      xmppAddr: ["x.example", "user@y.example"],
      srv: ["_xmpp-server.s.example"],
    });
  });

  it("gives the CN only when there is no subjectAltName at all", () => {
    assert.deepEqual(certificateIdentities(pki.issue("cnOnly", { cn: "c.example" }).x509), {
      dns: [],
      xmppAddr: [],
      srv: [],
      cn: "c.example",
    });
    const emailOnly = pki.issue("emailOnly", { cn: "c.example", san: ["email:admin@c.example"] }).x509;
    assert.deepEqual(certificateIdentities(emailOnly), { dns: [], xmppAddr: [], srv: [] });
  });
});
