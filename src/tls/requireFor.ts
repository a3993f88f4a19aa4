/**
 * The secure-relaying list, `[s2s] outgoing.tls.require_for` (seed 001's "Send Encrypted (SSL/TLS) to
 * Domains"): which remote domains get stanzas only over verified TLS, and which get no TLS at all.
 *
 * Patterns are globs on the whole domain name, case-insensitive: `*` stands for any run of
 * characters, dots included, so `*.corp.example` covers `a.corp.example` and `a.b.corp.example` but
 * not `corp.example` itself (list both for both). A `!` prefix makes an exception — CommuniGate's
 * "do not try TLS with that server at all" — and an exception wins over any positive entry, whatever
 * the order.
 */

/**
 * - `required`: send only over TLS with a certificate verified for the domain (or its relay name);
 *   otherwise bounce, never send in clear.
 * - `never`: do not try TLS with that server (it advertises STARTTLS but cannot complete it).
 * - `opportunistic`: try TLS where offered, fall back to clear where it is not.
 */
export type TlsRequirement = "required" | "never" | "opportunistic";

export type RequireFor = (domain: string) => TlsRequirement;

/** Compiles the list; throws naming the first invalid entry (`require_for[i]`). */
export function compileRequireFor(patterns: readonly string[]): RequireFor {
  const required: RegExp[] = [];
  const never: RegExp[] = [];
  patterns.forEach((entry, i) => {
    const exception = entry.startsWith("!");
    const body = exception ? entry.slice(1) : entry;
    const problem = invalidPattern(body);
    if (problem !== undefined) {
      throw new Error(`require_for[${i}]: invalid entry ${JSON.stringify(entry)}: ${problem}`);
    }
    (exception ? never : required).push(globToRegExp(normalize(body)));
  });
  return (domain) => {
    const name = normalize(domain);
    if (never.some((re) => re.test(name))) return "never";
    if (required.some((re) => re.test(name))) return "required";
    return "opportunistic";
  };
}

function invalidPattern(body: string): string | undefined {
  if (body.length === 0) return "empty pattern";
  if (/\s/u.test(body)) return "contains whitespace";
  if (body.startsWith("!")) return "more than one leading !";
  if (body.includes("!")) return "! is allowed only as the first character";
  if (body.startsWith(".") || body.endsWith(".") || body.includes("..")) return "empty label";
  return undefined;
}

/** Domains compare lower-cased and without a trailing root dot. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/u, "");
}

function globToRegExp(glob: string): RegExp {
  const source = glob
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/gu, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`, "u");
}
