/**
 * A light scanner for the top-level elements of an XMPP stream as our own peers see them: finds
 * each complete element's name and start tag without parsing XML (the generator and the fake S2S
 * responder must cost as little CPU as possible). Good enough for stanzas whose children never
 * repeat the top-level element's name, which holds for everything the benchmark sends.
 */

export type ElementHandler = (name: string, startTag: string, start: number, end: number) => void;

/** Calls `onElement` for each complete element in `buf` from `from`; returns where scanning stopped. */
export function scanElements(buf: string, from: number, onElement: ElementHandler): number {
  let pos = from;
  for (;;) {
    const start = buf.indexOf("<", pos);
    if (start < 0) return buf.length;
    if (buf.startsWith("</stream:stream>", start)) {
      onElement("/stream:stream", "", start, start + 16);
      pos = start + 16;
      continue;
    }
    if (buf.startsWith("<?", start)) {
      const end = buf.indexOf("?>", start);
      if (end < 0) return start;
      pos = end + 2;
      continue;
    }
    const tagEnd = buf.indexOf(">", start);
    if (tagEnd < 0) return start;
    let nameEnd = start + 1;
    for (; nameEnd < tagEnd; nameEnd++) {
      const c = buf.charCodeAt(nameEnd);
      if (c === 32 || c === 9 || c === 10 || c === 13 || c === 47 /* / */) break;
    }
    const name = buf.slice(start + 1, nameEnd);
    const startTag = buf.slice(start, tagEnd + 1);
    let end: number;
    if (name === "stream:stream") end = tagEnd + 1;
    else if (buf.charCodeAt(tagEnd - 1) === 47) end = tagEnd + 1;
    else {
      const close = buf.indexOf(`</${name}>`, tagEnd);
      if (close < 0) return start;
      end = close + name.length + 3;
    }
    onElement(name, startTag, start, end);
    pos = end;
  }
}

const patterns = new Map<string, RegExp>();

/** The value of attribute `name` in a start tag ("" when absent); either quote style. */
export function attribute(startTag: string, name: string): string {
  let pattern = patterns.get(name);
  if (pattern === undefined) {
    pattern = new RegExp(`\\s${name}=['"]`);
    patterns.set(name, pattern);
  }
  const at = startTag.search(pattern);
  if (at < 0) return "";
  const quote = startTag.charAt(at + name.length + 2);
  const valueStart = at + name.length + 3;
  const valueEnd = startTag.indexOf(quote, valueStart);
  return valueEnd < 0 ? "" : startTag.slice(valueStart, valueEnd);
}
