/** The probe's small parts: address ranges, request validation, limits, feature names. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nonPublicRange, refusal } from "../../src/probe/addressGuard.js";
import { featureNames } from "../../src/probe/featureNames.js";
import { ProbeLimits } from "../../src/probe/limits.js";
import { parseBody, validateDiagnoseRequest, validateStreamRequest } from "../../src/probe/validate.js";
import { el } from "../../src/xml/element.js";
import { NS } from "../../src/xmpp/namespaces.js";

describe("addressGuard", () => {
  it("names the kind of every non-public range, IPv4-mapped IPv6 included", () => {
    const cases: [string, string | undefined][] = [
      ["127.0.0.1", "loopback"],
      ["127.200.1.1", "loopback"],
      ["10.20.30.40", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["172.32.0.1", undefined],
      ["192.168.1.1", "private"],
      ["100.64.0.1", "shared (carrier-grade NAT)"],
      ["169.254.169.254", "link-local"],
      ["0.0.0.0", "unspecified"],
      ["224.0.0.1", "multicast"],
      ["::1", "loopback"],
      ["::", "unspecified"],
      ["fe80::1", "link-local"],
      ["fd12:3456::1", "unique local (ULA)"],
      ["::ffff:10.0.0.1", "private"],
      ["::ffff:127.0.0.1", "loopback"],
      ["64:ff9b::a00:1", "NAT64"],
      ["8.8.8.8", undefined],
      ["2001:4860:4860::8888", undefined],
    ];
    for (const [ip, kind] of cases) assert.equal(nonPublicRange(ip), kind, ip);
  });

  it("refuses only without probe_private", () => {
    assert.equal(refusal("127.0.0.1", true), undefined);
    assert.match(
      refusal("127.0.0.1", false) ?? "",
      /127\.0\.0\.1 is a loopback address.*probe_private = false/,
    );
    assert.equal(refusal("93.184.216.34", false), undefined);
  });
});

describe("validate", () => {
  const valid = (body: Record<string, unknown>) => {
    const result = validateStreamRequest(body);
    assert.ok(result.ok, JSON.stringify(result));
    return result.value;
  };

  it("seed 002's defaults: port 5269, toDomain = host, timeout 15000, useTLS", () => {
    assert.deepEqual(valid({ host: "jabber.org" }), {
      host: "jabber.org",
      port: 5269,
      fromDomain: undefined,
      toDomain: "jabber.org",
      useTLS: true,
      directTLS: false,
      timeout: 15_000,
      verifyCertificate: false,
    });
  });

  it("direct TLS on 5270 unless said otherwise; directTLS implies TLS", () => {
    assert.equal(valid({ host: "a.example", port: 5270 }).directTLS, true);
    assert.equal(valid({ host: "a.example", port: 5270, directTLS: false }).directTLS, false);
    assert.equal(valid({ host: "a.example", directTLS: true, useTLS: false }).useTLS, true);
  });

  it("IP hosts, IDN domains, case", () => {
    assert.equal(valid({ host: "[2001:db8::1]" }).host, "2001:db8::1");
    assert.equal(valid({ host: "2001:db8::1" }).toDomain, "[2001:db8::1]");
    assert.equal(valid({ host: "Bücher.Example" }).host, "xn--bcher-kva.example");
    assert.equal(valid({ host: "a.example", fromDomain: "B.Example" }).fromDomain, "b.example");
  });

  it("names the field of each refusal", () => {
    const field = (body: Record<string, unknown>): string => {
      const result = validateStreamRequest(body);
      return result.ok ? "" : result.field;
    };
    assert.equal(field({}), "host");
    assert.equal(field({ host: "a.example", port: 70_000 }), "port");
    assert.equal(field({ host: "a.example", timeout: 10 }), "timeout");
    assert.equal(field({ host: "a.example", verifyCertificate: 1 }), "verifyCertificate");
    assert.equal(field({ host: "a.example", extra: 1 }), "extra");
    const diag = validateDiagnoseRequest({ domain: "a.example", requireTls: "no" });
    assert.equal(diag.ok ? "" : diag.field, "requireTls");
    const body = parseBody("null");
    assert.equal(body.ok ? "" : body.field, "body");
  });
});

describe("ProbeLimits", () => {
  it("a burst per client, refilled at perMinute, with the wait in Retry-After", () => {
    let now = 0;
    const limits = new ProbeLimits({ burst: 2, perMinute: 6, maxConcurrent: 100 }, () => now);
    const a1 = limits.admit("a");
    const a2 = limits.admit("a");
    assert.ok(a1.ok && a2.ok);
    const a3 = limits.admit("a");
    assert.equal(a3.ok, false);
    assert.ok(!a3.ok);
    assert.equal(a3.status, 429);
    assert.equal(a3.retryAfterSeconds, 10);
    assert.ok(limits.admit("b").ok, "another client is not affected");
    now += 10_000;
    assert.ok(limits.admit("a").ok, "one token back after 10 s at 6/min");
  });

  it("bounds concurrent probes; release frees the slot (once)", () => {
    const limits = new ProbeLimits({ maxConcurrent: 1, burst: 10, perMinute: 60 });
    const first = limits.admit("a");
    const second = limits.admit("b");
    assert.equal(!second.ok && second.status, 503);
    assert.ok(first.ok);
    first.release();
    first.release();
    assert.equal(limits.active, 0);
    assert.ok(limits.admit("b").ok);
  });

  it("forgets the least recently seen client beyond maxClients", () => {
    let now = 0;
    const limits = new ProbeLimits({ burst: 1, perMinute: 1, maxClients: 2, maxConcurrent: 100 }, () => now);
    assert.ok(limits.admit("a").ok);
    assert.ok(limits.admit("b").ok);
    assert.ok(limits.admit("c").ok); // "a" is forgotten
    now += 1;
    assert.ok(limits.admit("a").ok, "a starts with a fresh bucket");
    assert.equal(limits.admit("c").ok, false);
  });
});

describe("featureNames", () => {
  it("names features as seed 002 does", () => {
    const features = el(
      "stream:features",
      {},
      el("starttls", { xmlns: NS.TLS }, el("required")),
      el(
        "mechanisms",
        { xmlns: NS.SASL },
        el("mechanism", {}, "EXTERNAL"),
        el("mechanism", {}, "SCRAM-SHA-1"),
      ),
      el("dialback", { xmlns: NS.DIALBACK_FEATURE }, el("errors")),
      el("bind", { xmlns: "urn:ietf:params:xml:ns:xmpp-bind" }),
      el("session", { xmlns: "urn:ietf:params:xml:ns:xmpp-session" }),
      el("something", { xmlns: "urn:example:new" }),
    );
    assert.deepEqual(featureNames(features), [
      "STARTTLS",
      "SASL-EXTERNAL",
      "SASL-SCRAM-SHA-1",
      "DIALBACK",
      "BIND",
      "SESSION",
      "SOMETHING",
    ]);
  });
});
