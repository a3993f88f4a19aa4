import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Shaper } from "../../src/net/shaper.js";

describe("shaper (max_rate, bytes per second)", () => {
  it("lets a second's worth of traffic through at once, then paces the rest to max_rate", () => {
    const shaper = new Shaper(1000, 0);
    assert.equal(shaper.update(1000, 0), 0);
    // 500 bytes more right away: half a second's pause keeps the average at 1000 B/s.
    assert.equal(shaper.update(500, 0), 500);
  });

  it("refills with time, never beyond one second's worth", () => {
    const shaper = new Shaper(1000, 0);
    assert.equal(shaper.update(1000, 0), 0);
    assert.equal(shaper.update(400, 400), 0, "400 ms refilled 400 bytes");
    assert.equal(shaper.update(2000, 60_000), 1000, "a long idle time still allows only a 1 s burst");
  });
});
