/**
 * Element trees and stream headers to XML text. Attribute values are written in single quotes, as
 * XMPP servers customarily do.
 */
import { NS } from "../xmpp/namespaces.js";
import type { Element } from "./element.js";

// Test before replacing: almost every string needs no escaping, and a regexp test is much cheaper
// than a replace that allocates.
const TEXT_SPECIAL = /[&<>\r]/;
const TEXT_SPECIAL_ALL = /[&<>\r]/g;
const ATTR_SPECIAL = /[&<>'\t\n\r]/;
const ATTR_SPECIAL_ALL = /[&<>'\t\n\r]/g;

const ENTITY: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "'": "&apos;",
  // Character references, because a parser normalizes literal \t \n \r in attribute values to
  // spaces, and \r (or \r\n) in text to \n.
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;",
};

const replaceSpecial = (c: string): string => ENTITY[c] ?? c;

/** Escapes character data: `&`, `<`, `>` (so `]]>` cannot appear), and `\r` (which parsers turn into `\n`). */
export function escapeText(text: string): string {
  return TEXT_SPECIAL.test(text) ? text.replace(TEXT_SPECIAL_ALL, replaceSpecial) : text;
}

/** Escapes a value for a single-quoted attribute, keeping tabs and line breaks intact through parsing. */
export function escapeAttr(value: string): string {
  return ATTR_SPECIAL.test(value) ? value.replace(ATTR_SPECIAL_ALL, replaceSpecial) : value;
}

function startTag(el: Element): string {
  let out = `<${el.name}`;
  const attrs = el.attrs;
  for (const name in attrs) {
    const value = attrs[name];
    // Records built in code may carry `undefined` for an absent optional attribute: skip it.
    if (value !== undefined) out += ` ${name}='${escapeAttr(value)}'`;
  }
  return out;
}

/**
 * Serializes an element and its subtree. Iterative, not recursive: a parsed stanza may nest tens of
 * thousands of levels within max_stanza_size, which must not overflow the call stack.
 */
export function serialize(root: Element): string {
  // Received text, unchanged since: already escaped, and means the same on any stream.
  if (root.source !== undefined) return root.source;
  let out = startTag(root);
  if (root.children.length === 0) return out + "/>";
  out += ">";
  const open: Element[] = [root];
  const next: number[] = [0];
  for (;;) {
    const top = open.length - 1;
    const el = open[top];
    const index = next[top];
    if (el === undefined || index === undefined) return out;
    if (index === el.children.length) {
      out += `</${el.name}>`;
      open.pop();
      next.pop();
      continue;
    }
    next[top] = index + 1;
    const child = el.children[index];
    if (typeof child === "string") {
      out += escapeText(child);
    } else if (child !== undefined) {
      out += startTag(child);
      if (child.children.length === 0) {
        out += "/>";
      } else {
        out += ">";
        open.push(child);
        next.push(0);
      }
    }
  }
}

export interface StreamHeaderOptions {
  /** The content namespace: jabber:server, jabber:component:accept… */
  defaultNs: string;
  from?: string;
  to?: string;
  id?: string;
  /** Omitted for pre-1.0 (dialback-only) and XEP-0114 component streams, which carry no version. */
  version?: string;
  lang?: string;
  /** More prefixes to declare, e.g. `{ db: NS.DIALBACK }`. */
  extraNamespaces?: Record<string, string>;
}

/** The XML declaration and the opening `<stream:stream>` tag (never self-closed). */
export function streamHeader(opts: StreamHeaderOptions): string {
  let out = `<?xml version='1.0'?><stream:stream xmlns='${escapeAttr(opts.defaultNs)}' xmlns:stream='${NS.STREAM}'`;
  if (opts.extraNamespaces !== undefined) {
    for (const [prefix, uri] of Object.entries(opts.extraNamespaces)) {
      out += ` xmlns:${prefix}='${escapeAttr(uri)}'`;
    }
  }
  if (opts.from !== undefined) out += ` from='${escapeAttr(opts.from)}'`;
  if (opts.to !== undefined) out += ` to='${escapeAttr(opts.to)}'`;
  if (opts.id !== undefined) out += ` id='${escapeAttr(opts.id)}'`;
  if (opts.version !== undefined) out += ` version='${escapeAttr(opts.version)}'`;
  if (opts.lang !== undefined) out += ` xml:lang='${escapeAttr(opts.lang)}'`;
  return out + ">";
}

export const STREAM_FOOTER = "</stream:stream>";
