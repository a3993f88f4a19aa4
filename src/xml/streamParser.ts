/**
 * Incremental XMPP stream parser: socket Buffers in; the stream header, each complete depth-1
 * element, the stream end, and at most one error out. saxes (with namespaces) does the XML; this
 * module adds UTF-8 validation, the RFC 6120 §11.1 restrictions, max_stanza_size in bytes, and the
 * element trees.
 *
 * Input is fed to StringDecoder and saxes in slices of at most SLICE_BYTES, so a size limit is
 * noticed at most one slice after it is passed, however large the socket chunk. Byte offsets are
 * derived from saxes' character positions only at stanza boundaries (and not at all when there is
 * no limit), so the hot path does no per-character work beyond saxes' own.
 */
import { isUtf8 } from "node:buffer";
import { StringDecoder } from "node:string_decoder";
import { SaxesParser, type SaxesTagNS } from "saxes";

import { NS } from "../xmpp/namespaces.js";
import { Element } from "./element.js";
import { ownedString } from "./ownedString.js";

export interface StreamHeader {
  /** Qualified name as written, e.g. "stream:stream". */
  name: string;
  /** Attributes as written, namespace declarations included. */
  attrs: Record<string, string>;
  /** Resolved namespace of the root element. */
  ns: string;
  /** Value of `xmlns` on the header, "" if none. */
  defaultNs: string;
}

/** Nesting allowed inside a stanza; real stanzas stay within a few dozen levels. */
export const MAX_DEPTH = 1000;

export type ParserErrorCondition =
  | "restricted-xml"
  | "not-well-formed"
  | "policy-violation"
  | "invalid-namespace"
  | "bad-format"
  /** RFC 6120 §4.9.3.22 / §11.6: bytes that are not UTF-8, or another declared encoding. */
  | "unsupported-encoding";

export interface StreamParserHandlers {
  onHeader(header: StreamHeader): void;
  onElement(element: Element): void;
  onEnd(): void;
  onError(condition: ParserErrorCondition, text: string): void;
}

export interface StreamParserOptions {
  /** Largest depth-1 element in bytes (before decoding); Infinity = no limit. */
  maxStanzaSize: number;
}

type Sax = SaxesParser<{ xmlns: true }>;

const SLICE_BYTES = 16 * 1024;

/** Thrown through saxes to stop it at once (error, stream end, reset); never escapes write(). */
const HALT = new Error("stream parser halted");

const EMPTY = Buffer.alloc(0);

/** Sticky: matched at a given index to find where a whitespace run ends, without slicing. */
const WHITESPACE_RUN = /[ \t\r\n]*/y;

/** saxes messages for constructs RFC 6120 §11.1 forbids, which saxes itself rejects. */
const RESTRICTED_MESSAGE =
  // A DOCTYPE after the root; an XML declaration or other PI where it cannot be; `<!` followed by
  // anything but `--`, `[CDATA[` or DOCTYPE, i.e. a DTD declaration such as <!ENTITY outside a DTD.
  /doctype|XML declaration must (?:be|appear) at the start|processing instruction|incorrect syntax/i;

/** saxes reports a mismatched end tag only after handing us the elements it popped. */
const MISMATCH_MESSAGE = /unexpected close tag|unmatched closing tag/;

/** Everything belonging to one stream; reset() replaces it whole. */
class StreamState {
  readonly decoder = new StringDecoder("utf8");
  halted = false;
  /** Undecoded trailing bytes of an incomplete UTF-8 sequence, validated with the next slice. */
  utf8Tail: Buffer = EMPTY;
  /** A trailing CR or high surrogate, kept back so saxes never carries characters between writes. */
  held = "";
  /** UTF-16 units and UTF-8 bytes given to saxes so far: saxes positions count the former. */
  chars = 0;
  bytes = 0;

  rootOpen = false;
  /** The root's qualified name and its own namespace declarations (saxes keeps both anyway), to
   *  restart a suspended stream. */
  rootName = "";
  rootNs: Record<string, string> | undefined;
  /** Open elements of the current depth-1 element (index 0), and their namespace declarations. */
  readonly stack: Element[] = [];
  readonly scopes: Record<string, string>[] = [];
  /** Byte offset of the current depth-1 element's `<`. */
  stanzaStart = 0;
  /** Char offset of that `<` (-1: unknown, the element keeps no source text), the element's text
   *  from earlier slices, and whether a prefix had to be declared on it (its text then differs). */
  sourceStart = -1;
  sourceHead = "";
  lifted = false;
  /** Between stanzas: where unchecked top-level text starts (chars), and the byte and char offsets
   *  of the next `<` once seen (-1 before). */
  gapStart = 0;
  markup = -1;
  markupChar = -1;

  /** A completed depth-1 element (or the stream end) is delivered at saxes' next event or at the
   *  end of the slice, so that a mismatched end tag reported right after it can cancel it. */
  pending: Element | null = null;
  pendingEnd = false;

  /** The slice saxes is reading, and a cursor mapping its character offsets to bytes. */
  str = "";
  charBase = 0;
  byteBase = 0;
  ascii = true;
  curChar = 0;
  curByte = 0;

  readonly sax: Sax;
  readonly onText: (text: string) => void;

  constructor(sax: Sax, onText: (text: string) => void) {
    this.sax = sax;
    this.onText = onText;
  }
}

export class StreamParser {
  private readonly handlers: StreamParserHandlers;
  private readonly limit: number;
  private st: StreamState;

  private feeding = false;
  /** True while a handler runs: an exception then is the caller's, not a parse error. */
  private inHandler = false;
  /** While suspended: the stream header to replay to a new saxes before the next input. */
  private resume: string | undefined;
  /** The replayed header is not reported again. */
  private replaying = false;

  constructor(handlers: StreamParserHandlers, options: StreamParserOptions) {
    this.handlers = handlers;
    this.limit = options.maxStanzaSize;
    this.st = this.newStream();
  }

  /**
   * Parses a chunk. Parse errors are reported through onError, never thrown; after an error or the
   * stream end, input is ignored until reset(). An exception thrown by a handler propagates (it is
   * a bug in the caller, not bad input), and the parser then ignores input until reset().
   */
  write(chunk: Buffer): void {
    if (this.feeding) throw new Error("StreamParser.write() called from one of its handlers");
    if (this.resume !== undefined) this.wake(this.resume);
    let offset = 0;
    while (offset < chunk.length && !this.st.halted) {
      const end = Math.min(chunk.length, offset + SLICE_BYTES);
      offset = this.writeSlice(chunk, offset, end);
    }
  }

  /**
   * Starts a fresh stream (RFC 6120 stream restart after STARTTLS or SASL): the next input must
   * begin with an optional XML declaration and a stream header. Called from a handler during
   * write(), the rest of that chunk is dropped, not parsed as the new stream: a peer may send
   * nothing after <starttls/> or <auth/> before our answer, and bytes that arrived before TLS must
   * never be taken as part of the protected stream (the STARTTLS injection of CVE-2011-0411).
   */
  reset(): void {
    this.resume = undefined;
    this.st.halted = true;
    this.st = this.newStream();
  }

  /**
   * Gives back the per-stream parsing state (saxes, decoder, buffers: about 4 KiB) of a stream
   * that sits between stanzas with nothing buffered, as most S2S streams do most of the time
   * (issue 9: memory per idle link). The next write() rebuilds it by replaying the root's name and
   * namespace declarations to a new saxes, so the stream goes on exactly as before. Returns whether
   * the state was released.
   */
  suspend(): boolean {
    const st = this.st;
    if (
      this.feeding ||
      st.halted ||
      !st.rootOpen ||
      st.rootNs === undefined ||
      st.stack.length > 0 ||
      st.markup >= 0 ||
      st.pending !== null ||
      st.pendingEnd ||
      st.held !== "" ||
      st.utf8Tail.length > 0
    )
      return false;
    this.resume = resumeHeader(st.rootName, st.rootNs);
    this.st = suspendedState();
    return true;
  }

  get suspended(): boolean {
    return this.resume !== undefined;
  }

  private wake(header: string): void {
    this.resume = undefined;
    this.st = this.newStream();
    const bytes = Buffer.from(header);
    this.replaying = true;
    try {
      this.writeSlice(bytes, 0, bytes.length);
    } finally {
      this.replaying = false;
    }
  }

  private newStream(): StreamState {
    const sax = newSax();
    const st = new StreamState(sax, (text) => {
      this.appendText(st, text);
    });
    sax.on("xmldecl", (decl) => {
      // RFC 6120 §11.6: UTF-8 only; saying otherwise is an unsupported encoding.
      if (decl.encoding !== undefined && decl.encoding.toLowerCase() !== "utf-8") {
        this.fail(st, "unsupported-encoding", `encoding '${decl.encoding}' declared; XMPP streams are UTF-8`);
      }
    });
    sax.on("opentag", (tag) => {
      this.onOpenTag(st, tag);
    });
    sax.on("closetag", () => {
      this.onCloseTag(st);
    });
    sax.on("cdata", (text) => {
      this.flush(st);
      if (st.stack.length === 0) this.fail(st, "bad-format", "CDATA at the top level of the stream");
      if (text.length > 0) this.appendText(st, text);
    });
    sax.on("doctype", () => {
      this.restricted(st, "DOCTYPE");
    });
    sax.on("processinginstruction", ({ target }) => {
      this.restricted(st, `processing instruction <?${target}?>`);
    });
    sax.on("comment", () => {
      this.restricted(st, "comment");
    });
    sax.on("error", (err) => {
      const message = err.message;
      if (MISMATCH_MESSAGE.test(message)) {
        st.pending = null;
        st.pendingEnd = false;
      } else {
        this.flush(st);
      }
      this.fail(st, RESTRICTED_MESSAGE.test(message) ? "restricted-xml" : "not-well-formed", message);
    });
    // The text handler is registered only inside depth-1 elements: between stanzas saxes then
    // buffers nothing (whitespace keepalives cost no memory) and top-level text is checked by
    // scanGap() instead.
    return st;
  }

  /** Parses chunk[start, end); returns where to continue in chunk. */
  private writeSlice(chunk: Buffer, start: number, end: number): number {
    const st = this.st;
    this.feeding = true;
    try {
      this.parseSlice(st, chunk.subarray(start, end));
    } catch (err) {
      if (err !== HALT) {
        if (this.inHandler) {
          this.inHandler = false;
          st.halted = true;
          throw err;
        }
        // saxes threw on its own (an internal assertion): still just bad input to us.
        this.report(st, "not-well-formed", err instanceof Error ? err.message : String(err));
      }
    } finally {
      this.feeding = false;
    }
    // After a reset() from a handler, the rest of the chunk belongs to no stream.
    return this.st === st ? end : chunk.length;
  }

  private parseSlice(st: StreamState, slice: Buffer): void {
    this.checkUtf8(st, slice);
    let text = st.decoder.write(slice);
    if (st.held !== "") {
      text = st.held + text;
      st.held = "";
    }
    const last = text.charCodeAt(text.length - 1);
    if (last === 0x0d || (last >= 0xd800 && last <= 0xdbff)) {
      st.held = text.slice(-1);
      text = text.slice(0, -1);
    }
    if (text.length === 0) return;
    const bytes = Buffer.byteLength(text);
    st.str = text;
    st.charBase = st.chars;
    st.byteBase = st.curByte = st.bytes;
    st.curChar = 0;
    st.ascii = bytes === text.length;
    st.sax.write(text);
    this.flush(st);
    st.chars += text.length;
    st.bytes += bytes;
    this.checkSliceEnd(st);
    // A stanza (or its start tag) continues in the next slice: keep its text so far.
    const from = st.stack.length > 0 ? st.sourceStart : st.rootOpen ? st.markupChar : -1;
    if (from >= 0) st.sourceHead += text.slice(Math.max(0, from - st.charBase));
  }

  /**
   * XML forbids malformed UTF-8, and StringDecoder would silently turn it into U+FFFD. isUtf8 is
   * native and fast; only an incomplete sequence at the end of the slice is held over.
   */
  private checkUtf8(st: StreamState, slice: Buffer): void {
    const bytes = st.utf8Tail.length === 0 ? slice : Buffer.concat([st.utf8Tail, slice]);
    const tail = incompleteUtf8Tail(bytes);
    if (!isUtf8(tail === 0 ? bytes : bytes.subarray(0, bytes.length - tail))) {
      this.fail(st, "unsupported-encoding", "the stream is not valid UTF-8 (RFC 6120 §11.6)");
    }
    st.utf8Tail = tail === 0 ? EMPTY : Buffer.from(bytes.subarray(bytes.length - tail));
  }

  /** Size and top-level text checks for what saxes has buffered but not reported yet. */
  private checkSliceEnd(st: StreamState): void {
    if (!st.rootOpen) {
      if (st.bytes > this.limit) {
        this.fail(st, "policy-violation", `no stream header within ${this.limit} bytes`);
      }
    } else if (st.stack.length === 0) {
      if (st.markup < 0) {
        const lt = this.scanGap(st);
        if (lt < 0) {
          st.gapStart = st.chars;
          return;
        }
        st.markup = this.byteAt(st, st.charBase + lt);
        st.markupChar = st.charBase + lt;
      }
      if (st.bytes - st.markup > this.limit) {
        this.fail(st, "policy-violation", `top-level element exceeds max_stanza_size (${this.limit} bytes)`);
      }
    } else if (st.bytes - st.stanzaStart > this.limit) {
      this.fail(st, "policy-violation", `stanza exceeds max_stanza_size (${this.limit} bytes)`);
    }
  }

  /**
   * Between stanzas only whitespace may appear (keepalives). Checks the current slice from gapStart
   * to the next `<` and returns that `<`'s index in the slice, or -1 if there is none.
   *
   * Non-whitespace is `bad-format`, not `not-well-formed`: text in the root element is well-formed
   * XML, it only breaks the XMPP stream grammar, for which RFC 6120 §4.9.3.1 has bad-format.
   */
  private scanGap(st: StreamState): number {
    const from = st.gapStart - st.charBase;
    const lt = st.str.indexOf("<", from);
    WHITESPACE_RUN.lastIndex = from;
    WHITESPACE_RUN.test(st.str);
    if (WHITESPACE_RUN.lastIndex < (lt < 0 ? st.str.length : lt)) {
      this.fail(st, "bad-format", "text at the top level of the stream");
    }
    return lt;
  }

  private onOpenTag(st: StreamState, tag: SaxesTagNS): void {
    this.flush(st);
    if (!st.rootOpen) {
      this.openStream(st, tag);
      return;
    }
    const attrs: Record<string, string> = {};
    let prefixedAttr = false;
    const source = tag.attributes;
    for (const name in source) {
      const attr = source[name];
      if (attr === undefined) continue;
      if (name === "__proto__") {
        // A legal XML name that a plain assignment would silently drop.
        Object.defineProperty(attrs, name, {
          value: attr.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        attrs[name] = attr.value;
      }
      if (attr.prefix !== "" && attr.prefix !== "xmlns" && attr.prefix !== "xml") prefixedAttr = true;
    }
    const stack = st.stack;
    // saxes resolves each element's namespace by walking the open elements: unbounded nesting would
    // cost quadratic time (and stall every stream on this process).
    if (stack.length >= MAX_DEPTH) {
      this.fail(st, "policy-violation", `elements nested deeper than ${MAX_DEPTH} levels`);
    }
    const el = new Element(tag.name, attrs, [], tag.uri);
    const parent = stack[stack.length - 1];
    if (parent === undefined) {
      this.startStanza(st);
    } else {
      parent.children.push(el);
    }
    stack.push(el);
    st.scopes.push(tag.ns);
    if (tag.prefix !== "" && tag.prefix !== "xml") this.liftPrefix(st, tag.prefix, tag.uri);
    if (prefixedAttr) {
      for (const name in source) {
        const attr = source[name];
        if (attr !== undefined && attr.prefix !== "" && attr.prefix !== "xmlns" && attr.prefix !== "xml") {
          this.liftPrefix(st, attr.prefix, attr.uri);
        }
      }
    }
  }

  private openStream(st: StreamState, tag: SaxesTagNS): void {
    const attrs: Record<string, string> = {};
    for (const name in tag.attributes) {
      const attr = tag.attributes[name];
      if (attr !== undefined && name !== "__proto__") attrs[name] = ownedString(attr.value);
    }
    // saxes keeps the root's start tag for the stream's life: keep only what it needs (the name to
    // match the end tag, the namespace declarations), in strings that do not hold the first chunk.
    tag.attributes = Object.create(null) as SaxesTagNS["attributes"];
    for (const prefix in tag.ns) tag.ns[prefix] = ownedString(tag.ns[prefix] ?? "");
    tag.name = ownedString(tag.name);
    tag.uri = ownedString(tag.uri);
    if (tag.local !== "stream" || tag.uri !== NS.STREAM) {
      this.fail(
        st,
        "invalid-namespace",
        `root element is {${tag.uri}}${tag.local}, expected {${NS.STREAM}}stream`,
      );
    }
    st.rootOpen = true;
    st.rootName = tag.name;
    st.rootNs = tag.ns;
    st.gapStart = st.sax.position;
    if (this.replaying) return;
    const header: StreamHeader = { name: tag.name, attrs, ns: tag.uri, defaultNs: tag.ns[""] ?? "" };
    this.inHandler = true;
    this.handlers.onHeader(header);
    this.inHandler = false;
    if (this.st !== st || st.halted) throw HALT;
  }

  private startStanza(st: StreamState): void {
    if (st.markup < 0) {
      const lt = this.scanGap(st);
      if (this.limit !== Infinity) {
        st.stanzaStart = this.byteAt(st, lt < 0 ? st.sax.position : st.charBase + lt);
      }
      st.sourceStart = lt < 0 ? -1 : st.charBase + lt;
      st.sourceHead = "";
    } else {
      // The `<` came in an earlier slice, whose text from there on is in sourceHead already.
      st.stanzaStart = st.markup;
      st.sourceStart = st.markupChar;
    }
    st.markup = -1;
    st.markupChar = -1;
    st.lifted = false;
    st.sax.on("text", st.onText);
  }

  /**
   * The tree must mean the same when serialized on another stream, so a prefix bound only on the
   * stream header (`db:` for dialback) is declared again on the depth-1 element. The default
   * namespace is not: an unqualified stanza must inherit the content namespace of the stream it is
   * written to.
   */
  private liftPrefix(st: StreamState, prefix: string, uri: string): void {
    const scopes = st.scopes;
    for (let i = scopes.length - 1; i >= 0; i--) {
      if (scopes[i]?.[prefix] !== undefined) return;
    }
    const stanza = st.stack[0];
    if (stanza !== undefined) stanza.attrs[`xmlns:${prefix}`] = uri;
    st.lifted = true;
  }

  private onCloseTag(st: StreamState): void {
    this.flush(st);
    const stack = st.stack;
    const el = stack.pop();
    st.scopes.pop();
    if (el === undefined) {
      // The root: the stream ends. (A self-closed root has no gap before its end.)
      if (st.markup < 0 && st.gapStart < st.sax.position) this.scanGap(st);
      st.pendingEnd = true;
      return;
    }
    if (stack.length > 0) return;
    const end = st.sax.position;
    if (this.limit !== Infinity && this.byteAt(st, end) - st.stanzaStart > this.limit) {
      this.fail(st, "policy-violation", `stanza exceeds max_stanza_size (${this.limit} bytes)`);
    }
    st.sax.off("text");
    if (st.sourceStart >= 0 && !st.lifted) {
      el.source = st.sourceHead + st.str.slice(Math.max(0, st.sourceStart - st.charBase), end - st.charBase);
    }
    st.sourceHead = "";
    st.pending = el;
    st.gapStart = end;
  }

  private appendText(st: StreamState, text: string): void {
    const top = st.stack[st.stack.length - 1];
    if (top === undefined) return;
    const children = top.children;
    const last = children.length - 1;
    const previous = children[last];
    if (typeof previous === "string") {
      children[last] = previous + text;
    } else {
      children.push(text);
    }
  }

  /** Delivers a completed depth-1 element or the stream end. */
  private flush(st: StreamState): void {
    const el = st.pending;
    if (el !== null) {
      st.pending = null;
      this.inHandler = true;
      this.handlers.onElement(el);
      this.inHandler = false;
      if (this.st !== st || st.halted) throw HALT;
    }
    if (st.pendingEnd) {
      st.pendingEnd = false;
      st.halted = true;
      this.inHandler = true;
      this.handlers.onEnd();
      this.inHandler = false;
      throw HALT;
    }
  }

  private restricted(st: StreamState, what: string): never {
    this.flush(st);
    this.fail(st, "restricted-xml", `${what} is not allowed in XMPP (RFC 6120 §11.1)`);
  }

  private fail(st: StreamState, condition: ParserErrorCondition, text: string): never {
    this.report(st, condition, text);
    throw HALT;
  }

  private report(st: StreamState, condition: ParserErrorCondition, text: string): void {
    if (st.halted) return;
    st.halted = true;
    this.inHandler = true;
    this.handlers.onError(condition, text);
    this.inHandler = false;
  }

  /** Byte offset in the stream of a saxes position inside the current slice. */
  private byteAt(st: StreamState, pos: number): number {
    const k = pos - st.charBase;
    if (st.ascii) return st.byteBase + k;
    if (k < st.curChar) {
      st.curChar = 0;
      st.curByte = st.byteBase;
    }
    if (k > st.curChar) {
      st.curByte += Buffer.byteLength(st.str.slice(st.curChar, k));
      st.curChar = k;
    }
    return st.curByte;
  }
}

/** saxes' private handler slots, as its on() names them. */
interface HandlerSlots {
  openTagHandler: unknown;
  closeTagHandler: unknown;
  textHandler: unknown;
  cdataHandler: unknown;
  doctypeHandler: unknown;
  piHandler: unknown;
  commentHandler: unknown;
  errorHandler: unknown;
}

/**
 * saxes' on() adds each handler slot with a keyed store, and past about six such additions V8
 * turns the parser into a dictionary-mode object: every field access in saxes' inner loop becomes
 * a hash lookup and parsing gets 4× slower. Creating the slots first with plain named stores keeps
 * the object fast. Only speed depends on these private names: on() still does the registering.
 */
function newSax(): Sax {
  const sax = new SaxesParser({ xmlns: true });
  const slots = sax as unknown as HandlerSlots;
  slots.openTagHandler = undefined;
  slots.closeTagHandler = undefined;
  slots.textHandler = undefined;
  slots.cdataHandler = undefined;
  slots.doctypeHandler = undefined;
  slots.piHandler = undefined;
  slots.commentHandler = undefined;
  slots.errorHandler = undefined;
  return sax;
}

/**
 * Length (0–3) of a trailing UTF-8 sequence whose lead byte announces more bytes than are present.
 * Anything else, valid or not, is left for isUtf8 to judge now.
 */
function incompleteUtf8Tail(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let i = 1; i <= 3 && i <= n; i++) {
    const b = bytes[n - i] ?? 0;
    if ((b & 0xc0) === 0x80) continue;
    const need = (b & 0xe0) === 0xc0 ? 2 : (b & 0xf0) === 0xe0 ? 3 : (b & 0xf8) === 0xf0 ? 4 : 1;
    return need > i ? i : 0;
  }
  return 0;
}

/** Stands in for the state of a suspended stream (never parsed with: write() wakes first). */
let suspended: StreamState | undefined;

function suspendedState(): StreamState {
  if (suspended === undefined) {
    suspended = new StreamState(newSax(), () => undefined);
    suspended.halted = true;
  }
  return suspended;
}

/** Replayed headers, shared: streams from the same kind of peer declare the same namespaces. */
const resumeHeaders = new Map<string, string>();

/** The root start tag with only its namespace declarations, as a suspended stream replays it. */
function resumeHeader(name: string, ns: Record<string, string>): string {
  let header = `<${name}`;
  for (const prefix in ns) {
    const uri = (ns[prefix] ?? "").replace(/[&<']/g, (c) =>
      c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&apos;",
    );
    header += prefix === "" ? ` xmlns='${uri}'` : ` xmlns:${prefix}='${uri}'`;
  }
  header += ">";
  const known = resumeHeaders.get(header);
  if (known !== undefined) return known;
  if (resumeHeaders.size < 256) resumeHeaders.set(header, header);
  return header;
}
