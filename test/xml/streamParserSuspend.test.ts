/**
 * StreamParser.suspend(): an idle stream gives back its parsing state and gets it back on its next
 * input (issue 9). Whatever is suspended between chunks, the parser must report exactly what it
 * reports without suspending.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NS } from "../../src/xmpp/namespaces.js";
import { HEADER, parse, prng, record, type Recording } from "./support.js";

const STANZAS = [
  "<message from='a@a.example' to='b@b.example' id='1'><body>hello</body></message>",
  "  \n",
  "<db:result from='a.example' to='b.example' type='valid'/>",
  "<iq type='get' id='2'><query xmlns='jabber:iq:version'/></iq>",
  "<message id='3'><body>h\u00e9llo \u{1F600} &amp; &lt;</body></message>",
  "<presence/>",
];

/** Writes each chunk, trying suspend() after every one; returns the recording and how many took. */
function parseSuspending(chunks: (string | Buffer)[], maxStanzaSize = Infinity): [Recording, number] {
  const rec = record(maxStanzaSize);
  let suspended = 0;
  for (const chunk of chunks) {
    rec.parser.write(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    if (rec.parser.suspend()) suspended++;
  }
  return [rec, suspended];
}

describe("StreamParser.suspend", () => {
  it("is refused before the header, inside a stanza, and with bytes held back", () => {
    const rec = record();
    assert.equal(rec.parser.suspend(), false);
    rec.parser.write(Buffer.from(HEADER));
    rec.parser.write(Buffer.from("<message><body>hel"));
    assert.equal(rec.parser.suspend(), false);
    rec.parser.write(Buffer.from("lo</body></message><pres"));
    assert.equal(rec.parser.suspend(), false, "a '<' was seen");
    rec.parser.write(Buffer.from("ence/>"));
    rec.parser.write(Buffer.from([0xc3])); // half of "é"
    assert.equal(rec.parser.suspend(), false);
    rec.parser.write(Buffer.from([0xa9]));
    assert.equal(rec.errors.length, 1, "text at the top level");
    assert.equal(rec.parser.suspend(), false, "halted");
  });

  it("reports the same elements, stream end and errors as an unsuspended parser", () => {
    const inputs: string[][] = [
      [HEADER, ...STANZAS, "</stream:stream>"],
      [`<s:stream xmlns:s='${NS.STREAM}' xmlns='jabber:server'>`, ...STANZAS, "</s:stream>"],
      [
        `<stream:stream xmlns:stream='${NS.STREAM}' xmlns:x='urn:x'>`,
        "<x:a/>",
        "<x:b><x:c/></x:b>",
        "</stream:stream>",
      ],
      [HEADER, STANZAS[0]!, "</stream:stream >", "<late/>"],
      [HEADER, STANZAS[0]!, "</stream>"],
      [HEADER, STANZAS[0]!, "text"],
      [HEADER, STANZAS[0]!, "<?xml version='1.0'?>"],
      [HEADER, STANZAS[0]!, "<a></b>"],
      [HEADER, STANZAS[0]!, "<unbound:a/>"],
    ];
    for (const chunks of inputs) {
      const reference = parse(chunks);
      const [rec, suspended] = parseSuspending(chunks);
      assert.ok(suspended > 0, `never suspended: ${chunks.join("")}`);
      assert.deepEqual(rec.events, reference.events, chunks.join(""));
      assert.deepEqual(
        rec.errors.map((e) => e.condition),
        reference.errors.map((e) => e.condition),
      );
      assert.deepEqual(
        rec.elements.map((e) => e.attrs),
        reference.elements.map((e) => e.attrs),
      );
    }
  });

  it("reports the header once, and keeps elements resolving the header's prefixes", () => {
    const [rec, suspended] = parseSuspending([HEADER, STANZAS[2]!, STANZAS[2]!]);
    assert.equal(suspended, 3);
    assert.equal(rec.headers.length, 1);
    assert.equal(rec.elements.length, 2);
    for (const el of rec.elements) assert.equal(el.ns, "jabber:server:dialback");
  });

  it("still applies max_stanza_size after waking", () => {
    const big = `<message><body>${"x".repeat(400)}</body></message>`;
    const [rec] = parseSuspending([HEADER, "<presence/>", big], 300);
    assert.equal(rec.elements.length, 1);
    assert.deepEqual(
      rec.errors.map((e) => e.condition),
      ["policy-violation"],
    );
  });

  it("after reset() waits for a new stream header", () => {
    const rec = record();
    rec.parser.write(Buffer.from(HEADER));
    assert.equal(rec.parser.suspend(), true);
    assert.equal(rec.parser.suspended, true);
    rec.parser.reset();
    assert.equal(rec.parser.suspended, false);
    rec.parser.write(Buffer.from(`${HEADER}<presence/>`));
    assert.equal(rec.headers.length, 2);
    assert.equal(rec.elements.length, 1);
    assert.deepEqual(rec.errors, []);
  });

  it("matches an unsuspended parser however the input is cut (fuzz)", () => {
    const text = `${HEADER}${STANZAS.join("")}${STANZAS.join("\n")}</stream:stream>`;
    const bytes = Buffer.from(text);
    const reference = parse(text);
    for (let seed = 1; seed <= 200; seed++) {
      const random = prng(seed);
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length;) {
        const next = Math.min(bytes.length, at + 1 + Math.floor(random() * 40));
        chunks.push(bytes.subarray(at, next));
        at = next;
      }
      const [rec] = parseSuspending(chunks);
      assert.deepEqual(rec.events, reference.events, `seed ${seed}`);
    }
  });
});
