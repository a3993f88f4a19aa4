/**
 * One serialized stanza back to an element tree. Queues and the XEP-0198 window keep stanzas as
 * text only (a tree per waiting stanza would be most of their memory, and would outlive V8's young
 * generation); the tree is rebuilt in the rare case that one has to be bounced.
 */
import { NS } from "../xmpp/namespaces.js";
import type { Element } from "./element.js";
import { StreamParser } from "./streamParser.js";

/** Text this server wrote itself: self-contained, unqualified stanzas in the server namespace. */
const HEADER = Buffer.from(`<stream:stream xmlns='${NS.SERVER}' xmlns:stream='${NS.STREAM}'>`);

export function parseStanza(xml: string): Element {
  let parsed: Element | undefined;
  let problem = "";
  const parser = new StreamParser(
    {
      onHeader: () => undefined,
      onElement: (element) => {
        parsed ??= element;
      },
      onEnd: () => undefined,
      onError: (condition, text) => {
        problem = `${condition}: ${text}`;
      },
    },
    { maxStanzaSize: Infinity },
  );
  parser.write(HEADER);
  parser.write(Buffer.from(xml));
  if (parsed === undefined) throw new Error(`not a serialized stanza (${problem || "incomplete"})`);
  return parsed;
}
