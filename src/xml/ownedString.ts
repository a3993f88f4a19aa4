/**
 * A copy of `s` that shares no memory with the string it was cut from. V8 keeps a substring of 13
 * characters or more as a slice of its parent, so one domain name or stream id kept for a link's
 * life would keep the whole socket chunk it came in (up to 16 KiB) alive with it (issue 9). For
 * values kept long, not for the stanza path.
 */
export function ownedString(s: string): string {
  // JSON round-trips every string exactly (lone surrogates too) and returns a fresh flat one.
  return s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string);
}
