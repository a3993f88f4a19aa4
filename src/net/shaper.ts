/**
 * A traffic shaper (`[shaper.NAME] max_rate`, bytes per second) in the manner of MongooseIM's
 * `mongoose_shaper`: a token bucket holding at most one second of traffic. `update()` is told how
 * many bytes just arrived and answers how long reading must pause to keep the average at max_rate.
 */
export class Shaper {
  private tokens: number;
  private last: number;

  constructor(
    private readonly maxRate: number,
    now: number = performance.now(),
  ) {
    this.tokens = maxRate;
    this.last = now;
  }

  /** Milliseconds to pause reading (0 = go on). */
  update(bytes: number, now: number = performance.now()): number {
    this.tokens = Math.min(this.maxRate, this.tokens + ((now - this.last) * this.maxRate) / 1000);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.maxRate);
  }
}

/** A fresh shaper for one connection from `[shaper.NAME]`, or none for "none". */
export function shaperFor(
  shapers: Readonly<Record<string, { max_rate: number }>>,
  name: string,
): Shaper | undefined {
  const shaper = name === "none" ? undefined : shapers[name];
  return shaper === undefined ? undefined : new Shaper(shaper.max_rate);
}
