// "did you mean" for unknown options.

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ("prot" → "port"). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

function threshold(word: string): number {
  return word.length <= 4 ? 1 : word.length <= 10 ? 2 : 3;
}

/**
 * The closest candidate, if close enough. Candidates may be dotted (`outgoing.port`): an unknown key
 * equal to, or close to, the last part of one suggests the dotted form (an option put one table too high).
 */
export function closestMatch(unknown: string, candidates: readonly string[]): string | undefined {
  const key = unknown.toLowerCase().replaceAll("-", "_");
  let best: { candidate: string; score: number } | undefined;
  for (const candidate of candidates) {
    const last = candidate.slice(candidate.lastIndexOf(".") + 1);
    const depthPenalty = candidate === last ? 0 : 0.5;
    const score = Math.min(editDistance(key, candidate), editDistance(key, last) + depthPenalty);
    if (score <= threshold(key) && (best === undefined || score < best.score)) best = { candidate, score };
  }
  return best?.candidate;
}

/** Known misplacements: other servers' or older MongooseIM names for an option Ferry has elsewhere. */
export const OPTION_HINTS: Readonly<Record<string, string>> = {
  "listen.c2s":
    "Ferry serves no clients; its listeners are [[listen.s2s]], [[listen.service]] and [[listen.http]]",
  "listen.component":
    'MongooseIM 6.4 renamed [[listen.service]] to [[listen.component]]; Ferry uses "listen.service"',
  "listen.service.shaper": 'did you mean "shaper_rule"? (the [[listen.service]] name for the shaper)',
  "s2s.use_starttls": 'use "outgoing.tls.mode" (and a [listen.s2s] tls table for incoming streams)',
  "s2s.certfile": 'use "outgoing.tls.certfile" and [[listen.s2s]] "tls.certfile"',
};
