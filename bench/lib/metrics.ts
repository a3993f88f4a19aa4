/** Reads Ferry's Prometheus text from a `[[listen.http]]` listener. */

export type Samples = Map<string, number>;

/** Every sample as "name{labels}" → value (labels as Ferry writes them). */
export async function scrape(url: string): Promise<Samples> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const samples: Samples = new Map();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The value of `name` (no labels), or the sum of its series whose labels contain `labels`. */
export function sample(samples: Samples, name: string, labels = ""): number {
  let sum = 0;
  let found = false;
  for (const [key, value] of samples) {
    const brace = key.indexOf("{");
    const keyName = brace < 0 ? key : key.slice(0, brace);
    if (keyName !== name || (labels !== "" && !key.includes(labels))) continue;
    sum += value;
    found = true;
  }
  return found ? sum : Number.NaN;
}
