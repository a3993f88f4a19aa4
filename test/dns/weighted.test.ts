import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { orderByPriorityAndWeight, type Random } from "../../src/dns/weighted.js";

interface Rec {
  name: string;
  priority: number;
  weight: number;
}

const rec = (name: string, priority: number, weight: number): Rec => ({ name, priority, weight });
const names = (rs: Rec[]) => rs.map((r) => r.name).join(",");

/** Returns the given numbers in turn. */
const scripted = (...values: number[]): Random => {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
};

/** mulberry32: a small seeded PRNG, so the distribution tests are reproducible. */
function seeded(seed: number): Random {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How often each name comes first over `n` orderings. */
function firstShares(records: Rec[], n: number, random: Random): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const first = orderByPriorityAndWeight(records, random)[0]!.name;
    counts.set(first, (counts.get(first) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, v]) => [k, v / n]));
}

describe("RFC 2782 order (orderByPriorityAndWeight)", () => {
  it("sorts by priority, lowest first, whatever the weights", () => {
    const input = [rec("c", 30, 100), rec("a", 10, 0), rec("b", 20, 5)];
    assert.equal(names(orderByPriorityAndWeight(input)), "a,b,c");
    assert.equal(names(input), "c,a,b", "the input is left as it was");
  });

  it("keeps every record of a priority level together, before the next level", () => {
    const input = [rec("b1", 2, 1), rec("a1", 1, 1), rec("b2", 2, 1), rec("a2", 1, 1)];
    const out = names(orderByPriorityAndWeight(input, seeded(1)));
    assert.match(out, /^a[12],a[12],b[12],b[12]$/);
  });

  it("selects by running sums of the weights", () => {
    // Draws are 1..60: 0.5 → 31 lands in c's range (31..60); then 1..30: 0.5 → 16 is b's (11..30).
    const out = orderByPriorityAndWeight([rec("a", 1, 10), rec("b", 1, 20), rec("c", 1, 30)], scripted(0.5));
    assert.equal(names(out), "c,b,a");
    // The lowest draw (1) takes the first record, the highest (60) the last.
    assert.equal(names(orderByPriorityAndWeight([rec("a", 1, 10), rec("b", 1, 50)], scripted(0))), "a,b");
    assert.equal(names(orderByPriorityAndWeight([rec("a", 1, 10), rec("b", 1, 50)], scripted(0.99))), "b,a");
  });

  it("puts weight-0 records first in the running sum, so a draw of 0 selects them", () => {
    const input = [rec("heavy", 1, 5), rec("zero", 1, 0)];
    assert.equal(names(orderByPriorityAndWeight(input, scripted(0))), "zero,heavy");
    assert.equal(names(orderByPriorityAndWeight(input, scripted(0.5))), "heavy,zero");
  });

  it("copes with a random source that returns exactly 1", () => {
    const out = orderByPriorityAndWeight([rec("a", 1, 1), rec("b", 1, 1), rec("z", 1, 0)], () => 1);
    assert.equal(out.length, 3);
    assert.equal(new Set(names(out).split(",")).size, 3);
  });

  it("gives positive weights proportional chances of coming first", () => {
    const shares = firstShares([rec("light", 1, 1), rec("heavy", 1, 3)], 20_000, seeded(42));
    assert.ok(Math.abs((shares.get("heavy") ?? 0) - 0.75) < 0.015, `heavy first: ${shares.get("heavy")}`);
  });

  it("gives weight 0 a small chance (1 in sum+1) of coming first", () => {
    const shares = firstShares([rec("zero", 1, 0), rec("nine", 1, 9)], 20_000, seeded(7));
    assert.ok(Math.abs((shares.get("zero") ?? 0) - 0.1) < 0.015, `zero first: ${shares.get("zero")}`);
  });

  it("orders records that all weigh 0 uniformly at random", () => {
    const shares = firstShares([rec("a", 1, 0), rec("b", 1, 0), rec("c", 1, 0)], 15_000, seeded(3));
    for (const n of ["a", "b", "c"]) {
      assert.ok(Math.abs((shares.get(n) ?? 0) - 1 / 3) < 0.02, `${n} first: ${shares.get(n)}`);
    }
  });
});
