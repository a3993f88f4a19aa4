/**
 * fast-check arbitraries for XMPP streams (valid ones, and the bytes an attacker sends instead) and a
 * recorder that runs the stream parser over them and notes every rule it breaks: a callback after
 * the stream ended or failed, an element before the header, a second header, an exception.
 */
import fc from "fast-check";
import { serialize } from "../../src/xml/serialize.js";
import { type ParserErrorCondition, StreamParser } from "../../src/xml/streamParser.js";
import { NS } from "../../src/xmpp/namespaces.js";

// ---- characters and text -----------------------------------------------------------------------

/** One character XML allows, biased towards the ones parsers get wrong. */
const xmlChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("a", "b", " ", "z", "0", "-", ".", "_") },
  { weight: 2, arbitrary: fc.constantFrom("\t", "\n", "\r", "\r\n", "&", "<", ">", "'", '"', "]]>", "]") },
  { weight: 2, arbitrary: fc.constantFrom("é", "ß", "€", "😀", "𝄞", "\u2028", "\uFEFF", "\uFFFD", "\u00A0") },
  { weight: 1, arbitrary: fc.integer({ min: 0x20, max: 0xd7ff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0xe000, max: 0xfffd }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
);

export const xmlText: fc.Arbitrary<string> = fc.array(xmlChar, { maxLength: 12 }).map((cs) => cs.join(""));

const escapeText = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const escapeAttr = (s: string): string => escapeText(s).replace(/'/g, "&apos;").replace(/"/g, "&quot;");

/** Character data as a peer may write it: escaped text, references, CDATA. */
const charData: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: xmlText.map(escapeText) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("&amp;", "&lt;", "&gt;", "&apos;", "&quot;", "&#x263A;", "&#65;", "&#x1F600;"),
  },
  { weight: 1, arbitrary: xmlText.map((t) => `<![CDATA[${t.replace(/]]>/g, "]] >")}]]>`) },
);

// ---- elements ----------------------------------------------------------------------------------

const LOCAL_NAMES = [
  "message",
  "presence",
  "iq",
  "body",
  "x",
  "a",
  "query",
  "item",
  "_",
  "n-1",
  "é",
] as const;
const ATTR_NAMES = ["to", "from", "id", "type", "xml:lang", "a", "b", "c1"] as const;

export interface Tree {
  xml: string;
  /** Open elements down to the deepest leaf (for truncation tests). */
  depth: number;
}

/** A well-formed element with namespaces declared where prefixes are used. */
export const element: fc.Arbitrary<Tree> = fc.letrec<{ el: Tree }>((tie) => ({
  el: fc
    .record({
      local: fc.constantFrom(...LOCAL_NAMES),
      prefixed: fc.boolean(),
      defaultNs: fc.option(
        fc.constantFrom("jabber:server", "urn:x", "urn:y:z", "http://jabber.org/protocol/disco#info"),
      ),
      attrs: fc.uniqueArray(fc.tuple(fc.constantFrom(...ATTR_NAMES), xmlText), {
        maxLength: 4,
        selector: ([name]) => name,
      }),
      prefixedAttr: fc.option(xmlText),
      children: fc.array(fc.oneof({ weight: 2, arbitrary: charData }, { weight: 1, arbitrary: tie("el") }), {
        maxLength: 3,
        depthIdentifier: "tree",
      }),
      quote: fc.constantFrom("'", '"'),
      ws: fc.constantFrom("", " ", "\n\t"),
    })
    .map((r) => {
      const name = r.prefixed ? `p:${r.local}` : r.local;
      let start = `<${name}`;
      if (r.prefixed || r.prefixedAttr !== null) start += ` xmlns:p=${r.quote}urn:p${r.quote}`;
      if (r.defaultNs !== null) start += ` xmlns=${r.quote}${r.defaultNs}${r.quote}`;
      for (const [attr, value] of r.attrs) start += ` ${attr}=${r.quote}${escapeAttr(value)}${r.quote}`;
      if (r.prefixedAttr !== null) start += ` p:attr=${r.quote}${escapeAttr(r.prefixedAttr)}${r.quote}`;
      const children = r.children.map((c) => (typeof c === "string" ? c : c.xml));
      const depth = 1 + Math.max(0, ...r.children.map((c) => (typeof c === "string" ? 0 : c.depth)));
      if (children.length === 0) return { xml: `${start}${r.ws}/>`, depth };
      return { xml: `${start}${r.ws}>${children.join("")}</${name}${r.ws}>`, depth };
    }),
})).el;

// ---- streams -----------------------------------------------------------------------------------

export const S2S_STREAM_HEADER =
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAM}' ` +
  `xmlns:db='jabber:server:dialback' from='remote.example' to='a.example' version='1.0'>`;

/** Stream headers of the kinds peers send: S2S, component, with or without declaration, BOM. */
export const streamHeader: fc.Arbitrary<string> = fc.constantFrom(
  S2S_STREAM_HEADER,
  `<stream:stream xmlns='jabber:component:accept' xmlns:stream='${NS.STREAM}' to='svc.example'>`,
  `\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<stream:stream xmlns:stream="${NS.STREAM}" xmlns="jabber:server">`,
  `<s:stream xmlns:s='${NS.STREAM}' xmlns='jabber:server' xml:lang='en' to='a.example'  >`,
);

/** Top-level stanzas, dialback elements, whitespace keepalives. */
const topLevel: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: element.map((t) => t.xml) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      `<db:result xmlns:db='jabber:server:dialback' from='remote.example' to='a.example'>0123456789abcdef</db:result>`,
      `<db:verify xmlns:db='jabber:server:dialback' from='a.example' to='remote.example' id='s1' type='valid'/>`,
      `<stream:features xmlns:stream='${NS.STREAM}'><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`,
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(" ", "\n", "\r\n", "\t \n") },
);

export interface ValidStream {
  header: string;
  items: string[];
  footer: boolean;
}

export const validStream: fc.Arbitrary<ValidStream> = fc.record({
  header: streamHeader,
  items: fc.array(topLevel, { maxLength: 6 }),
  footer: fc.boolean(),
});

/** The end tag matching a header's root element (`</stream:stream>`, `</s:stream>`). */
export const footerOf = (header: string): string =>
  `</${/<([\w:]*stream)[\s>]/.exec(header)?.[1] ?? "stream:stream"}>`;

export const streamText = (s: ValidStream): string =>
  s.header + s.items.join("") + (s.footer ? footerOf(s.header) : "");

/** How many depth-1 elements a valid stream carries. */
export const elementCount = (s: ValidStream): number => s.items.filter((i) => i.trim() !== "").length;

// ---- hostile bytes -----------------------------------------------------------------------------

/** Fragments that break parsers: markup, forbidden XML, entity bombs, bad UTF-8, NUL, controls. */
export const HOSTILE_FRAGMENTS: readonly Buffer[] = [
  "<",
  ">",
  "&",
  ";",
  "]]>",
  "</",
  "/>",
  "'",
  '"',
  "=",
  ":",
  "<!--",
  "-->",
  "<!-- c -->",
  "<?x?>",
  "<?xml version='1.0'?>",
  "<?xml version='1.0' encoding='UTF-16'?>",
  "<!DOCTYPE x [<!ENTITY a 'b'>]>",
  `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>`,
  `<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`,
  "<!ENTITY a 'b'>",
  "<![CDATA[",
  "&amp;",
  "&lol1;",
  "&xxe;",
  "&#x0;",
  "&#xD800;",
  "&#xFFFE;",
  "&#1114112;",
  "xmlns:p=''",
  "xmlns='urn:x'",
  "xmlns:xmlns='urn:x'",
  "<p:q>",
  "<xmlns:a/>",
  "</stream:stream>",
  "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
  "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
  "é",
  "😀",
  "\r",
  "\u0000",
  "\u0001",
  "\u000B",
  "\uFFFE",
].map((s) => Buffer.from(s));

export const INVALID_UTF8: readonly Buffer[] = [
  [0x80],
  [0xbf],
  [0xc0, 0xbc],
  [0xc1, 0xbf],
  [0xc3, 0x28],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfe],
  [0xff],
  [0xe2, 0x82],
].map((b) => Buffer.from(b));

export type Mutation =
  | { kind: "flip"; at: number; byte: number }
  | { kind: "insert"; at: number; fragment: number }
  | { kind: "utf8"; at: number; fragment: number }
  | { kind: "random"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "duplicate"; at: number; length: number }
  | { kind: "truncate"; at: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), fragment: fc.nat() }),
  fc.record({ kind: fc.constant("utf8" as const), at: fc.nat(), fragment: fc.nat() }),
  fc.record({
    kind: fc.constant("random" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 30 }) }),
  fc.record({
    kind: fc.constant("duplicate" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 60 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

export function applyMutations(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let bytes = input;
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % (bytes.length + 1);
    const head = bytes.subarray(0, at);
    const tail = bytes.subarray(at);
    switch (m.kind) {
      case "flip":
        if (bytes.length > 0) {
          bytes = Buffer.from(bytes);
          bytes[Math.min(at, bytes.length - 1)] = m.byte;
        }
        break;
      case "insert":
        bytes = Buffer.concat([head, HOSTILE_FRAGMENTS[m.fragment % HOSTILE_FRAGMENTS.length]!, tail]);
        break;
      case "utf8":
        bytes = Buffer.concat([head, INVALID_UTF8[m.fragment % INVALID_UTF8.length]!, tail]);
        break;
      case "random":
        bytes = Buffer.concat([head, m.bytes, tail]);
        break;
      case "delete":
        bytes = Buffer.concat([head, bytes.subarray(at + m.length)]);
        break;
      case "duplicate":
        bytes = Buffer.concat([bytes.subarray(0, at + m.length), tail]);
        break;
      case "truncate":
        bytes = head;
        break;
    }
  }
  return bytes;
}

/** Chunk sizes, cycled over the input: lots of 1–3 byte pieces, some larger ones. */
export const chunking: fc.Arbitrary<number[]> = fc.array(
  fc.oneof(
    fc.integer({ min: 1, max: 3 }),
    fc.integer({ min: 1, max: 400 }),
    fc.integer({ min: 1, max: 40_000 }),
  ),
  { minLength: 1, maxLength: 12 },
);

export function split(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const size = sizes[k % sizes.length] ?? bytes.length;
    chunks.push(bytes.subarray(i, i + size));
    i += size;
  }
  return chunks;
}

// ---- running the parser ------------------------------------------------------------------------

export const PARSER_CONDITIONS: ReadonlySet<string> = new Set<ParserErrorCondition>([
  "restricted-xml",
  "not-well-formed",
  "policy-violation",
  "invalid-namespace",
  "bad-format",
  "unsupported-encoding",
]);

export interface Outcome {
  /** "header", "el:<serialized>", "end", "error:<condition>" in order. */
  events: string[];
  elements: string[];
  terminal: string | undefined;
  errorText: string | undefined;
  /** Bytes written up to and including the chunk during which the stream ended or failed. */
  bytesAtTerminal: number;
  /** Every rule the parser broke (empty when it behaved). */
  violations: string[];
}

/** Writes the chunks (all of them, also after the end or an error) and records what happens. */
export function feed(chunks: readonly Buffer[], maxStanzaSize: number): Outcome {
  const out: Outcome = {
    events: [],
    elements: [],
    terminal: undefined,
    errorText: undefined,
    bytesAtTerminal: -1,
    violations: [],
  };
  let written = 0;
  let headers = 0;
  const after = (what: string): void => {
    if (out.terminal !== undefined) out.violations.push(`${what} after ${out.terminal}`);
  };
  const parser = new StreamParser(
    {
      onHeader() {
        after("header");
        headers++;
        if (headers > 1) out.violations.push("second header");
        out.events.push("header");
      },
      onElement(element) {
        after("element");
        if (headers === 0) out.violations.push("element before the header");
        const xml = serialize(element);
        out.elements.push(xml);
        out.events.push(`el:${xml}`);
      },
      onEnd() {
        after("end");
        out.terminal ??= "end";
        out.bytesAtTerminal = written;
        out.events.push("end");
      },
      onError(condition, text) {
        after(`error ${condition}`);
        if (!PARSER_CONDITIONS.has(condition)) out.violations.push(`unknown condition ${condition}`);
        out.terminal ??= condition;
        out.errorText ??= text;
        out.bytesAtTerminal = written;
        out.events.push(`error:${condition}`);
      },
    },
    { maxStanzaSize },
  );
  for (const chunk of chunks) {
    written += chunk.length;
    try {
      parser.write(chunk);
    } catch (err) {
      out.violations.push(
        `write() threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      break;
    }
  }
  return out;
}
