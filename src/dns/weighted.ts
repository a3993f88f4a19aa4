/**
 * RFC 2782 ordering of SRV records: priority ascending, and within one priority a weighted random
 * order ("Select an element as specified above, in the description of Weight").
 */

export interface Weighted {
  readonly priority: number;
  readonly weight: number;
}

/** A uniform random number in [0, 1), like `Math.random`; injectable so tests are deterministic. */
export type Random = () => number;

/** The records in the order to try them; the input is not modified. */
export function orderByPriorityAndWeight<T extends Weighted>(
  records: readonly T[],
  random: Random = Math.random,
): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  return priorities.flatMap((p) =>
    weightedOrder(
      records.filter((r) => r.priority === p),
      random,
    ),
  );
}

/**
 * RFC 2782: weight-0 records go first in the running-sum list, a number is drawn from 0..sum and
 * the first record whose running sum reaches it is taken; repeat with the rest. The RFC's draw
 * includes 0 so that weight-0 records keep "a very small chance" (1 in sum+1) of coming first. When
 * there are no weight-0 records, 0 would only favour whichever record happens to be listed first,
 * so the draw is then 1..sum and positive weights get exactly proportional chances. When every
 * weight is 0 the RFC gives no rule; those are taken uniformly at random.
 */
function weightedOrder<T extends Weighted>(records: readonly T[], random: Random): T[] {
  const pending = [...records.filter((r) => r.weight === 0), ...records.filter((r) => r.weight > 0)];
  const ordered: T[] = [];
  while (pending.length > 0) {
    const sum = pending.reduce((s, r) => s + r.weight, 0);
    let index: number;
    if (sum === 0) {
      index = draw(random, 0, pending.length - 1);
    } else {
      const hasZero = pending[0]?.weight === 0;
      const pick = draw(random, hasZero ? 0 : 1, sum);
      let running = 0;
      index = pending.findIndex((r) => (running += r.weight) >= pick);
    }
    ordered.push(...pending.splice(index, 1));
  }
  return ordered;
}

/** A uniform integer in [min, max]; clamped in case `random` returns exactly 1. */
function draw(random: Random, min: number, max: number): number {
  return Math.min(max, min + Math.floor(random() * (max - min + 1)));
}
