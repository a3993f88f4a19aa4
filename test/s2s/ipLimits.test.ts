/** The per-IP bounds of an S2S listener: connections, their rate (token bucket), verifications. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IpLimits } from "../../src/s2s/ipLimits.js";

describe("IpLimits", () => {
  it("bounds simultaneous connections per address, and frees a place when one closes", () => {
    const limits = new IpLimits({ maxConnections: 2, ratePerSecond: 100, maxVerifications: 1 });
    const a = limits.admit("192.0.2.1");
    const b = limits.admit("192.0.2.1");
    assert.ok("release" in a && "release" in b);
    assert.deepEqual(limits.admit("192.0.2.1"), {
      refused: "too many connections from 192.0.2.1 (max_connections_per_ip)",
    });
    assert.ok("release" in limits.admit("192.0.2.2"), "another address is not affected");
    a.release();
    a.release();
    assert.ok("release" in limits.admit("192.0.2.1"));
    assert.deepEqual(limits.admit("192.0.2.1"), {
      refused: "too many connections from 192.0.2.1 (max_connections_per_ip)",
    });
  });

  it("refills the rate bucket with time (bursts of five seconds' worth)", () => {
    let now = 0;
    const limits = new IpLimits(
      { maxConnections: Infinity, ratePerSecond: 2, maxVerifications: 1 },
      () => now,
    );
    for (let i = 0; i < 10; i++) assert.ok("release" in limits.admit("192.0.2.1"), `burst ${i}`);
    assert.deepEqual(limits.admit("192.0.2.1"), {
      refused: "connecting too fast from 192.0.2.1 (connection_rate_per_ip)",
    });
    now = 1000;
    assert.ok("release" in limits.admit("192.0.2.1"));
    assert.ok("release" in limits.admit("192.0.2.1"));
    assert.ok("refused" in limits.admit("192.0.2.1"));
  });

  it("bounds verifications per address and forgets idle addresses", () => {
    let now = 0;
    const limits = new IpLimits({ maxConnections: 5, ratePerSecond: 10, maxVerifications: 1 }, () => now);
    const release = limits.verification("192.0.2.1");
    assert.ok(release);
    assert.equal(limits.verification("192.0.2.1"), undefined);
    release();
    assert.equal(limits.tracked, 0, "an address holding nothing with a full bucket is forgotten");
    const c = limits.admit("192.0.2.9");
    assert.ok("release" in c);
    c.release();
    assert.equal(limits.tracked, 1, "a used bucket is kept until it refills");
    now = 1000;
    assert.ok(limits.verification("192.0.2.9"));
  });
});

describe("IssuedKeys", () => {
  it("knows the keys sent, for their stream only, until they expire", async () => {
    const { IssuedKeys } = await import("../../src/s2s/issuedKeys.js");
    let now = 0;
    const keys = new IssuedKeys(1000, 2, () => now);
    keys.add("b.example", "a.example", "s1");
    assert.equal(keys.has("b.example", "a.example", "s1"), true);
    assert.equal(keys.has("b.example", "a.example", "s2"), false, "another stream id");
    assert.equal(keys.has("c.example", "a.example", "s1"), false, "another receiving domain");
    now = 1000;
    assert.equal(keys.has("b.example", "a.example", "s1"), false, "expired");
    keys.add("b.example", "a.example", "x");
    keys.add("b.example", "a.example", "y");
    keys.add("b.example", "a.example", "z");
    assert.equal(keys.has("b.example", "a.example", "x"), false, "the oldest went first");
    assert.equal(keys.has("b.example", "a.example", "z"), true);
  });
});
