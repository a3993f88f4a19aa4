/** Shared fixtures for the XML layer tests: a parser that records everything it reports. */
import type { Element } from "../../src/xml/element.js";
import { serialize } from "../../src/xml/serialize.js";
import { type ParserErrorCondition, type StreamHeader, StreamParser } from "../../src/xml/streamParser.js";
import { NS } from "../../src/xmpp/namespaces.js";

export const HEADER =
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAM}' ` +
  `xmlns:db='jabber:server:dialback' from='a.example' to='b.example' version='1.0'>`;

export interface Recording {
  parser: StreamParser;
  headers: StreamHeader[];
  elements: Element[];
  errors: { condition: ParserErrorCondition; text: string }[];
  ends: number;
  /** Everything in order: "header", "el:<serialized>", "end", "error:<condition>". */
  events: string[];
}

export function record(maxStanzaSize = Infinity): Recording {
  const rec: Recording = {
    parser: undefined as unknown as StreamParser,
    headers: [],
    elements: [],
    errors: [],
    ends: 0,
    events: [],
  };
  rec.parser = new StreamParser(
    {
      onHeader(header) {
        rec.headers.push(header);
        rec.events.push("header");
      },
      onElement(element) {
        rec.elements.push(element);
        rec.events.push(`el:${serialize(element)}`);
      },
      onEnd() {
        rec.ends++;
        rec.events.push("end");
      },
      onError(condition, text) {
        rec.errors.push({ condition, text });
        rec.events.push(`error:${condition}`);
      },
    },
    { maxStanzaSize },
  );
  return rec;
}

/** Parses `input` (written in one chunk, or in the given chunks) and returns the recording. */
export function parse(input: string | Buffer | (string | Buffer)[], maxStanzaSize = Infinity): Recording {
  const rec = record(maxStanzaSize);
  const chunks = Array.isArray(input) ? input : [input];
  for (const chunk of chunks) rec.parser.write(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return rec;
}

/** The single error condition reported, failing if there were none or several. */
export function onlyError(rec: Recording): ParserErrorCondition {
  if (rec.errors.length !== 1) {
    throw new Error(`expected exactly one error, got ${JSON.stringify(rec.errors)}`);
  }
  return rec.errors[0]!.condition;
}

/** Deterministic PRNG (mulberry32) so that fuzz failures can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
