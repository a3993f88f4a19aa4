import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { serialize } from "../../src/xml/serialize.js";
import { HEADER, parse, prng } from "./support.js";

const VALID_STREAMS = [
  HEADER +
    `<db:result from='a.example' to='b.example'>0123456789abcdef</db:result>\n` +
    `<db:verify from='b.example' to='a.example' id='s1' type='valid'/>` +
    `<message from='u@a.example' to='v@b.example' type='chat' id='m1'><body>héllo &amp; &lt;wörld&gt; 😀 ` +
    `&#x263A;</body><active xmlns='http://jabber.org/protocol/chatstates'/></message> ` +
    `<presence from='u@a.example/r' xml:lang='en'><show>away</show><status>out &apos;n about</status>` +
    `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>` +
    `<iq type='get' id='q1' to='b.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>` +
    `</stream:stream>`,
  `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' ` +
    `to='c.example'><handshake>aabbcc</handshake><message><body><![CDATA[<not a tag> & ]]>€</body>` +
    `<x xmlns='urn:x' xmlns:y='urn:y'><y:z y:attr="1&quot;2"/></x></message>\r\n\t </stream:stream>`,
  HEADER +
    `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>` +
    `<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>` +
    `<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
    `<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>𝄞 bad</text></stream:error>`,
].map((s) => Buffer.from(s));

const INSERTS = [
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
  "<?x?>",
  "<?xml version='1.0'?>",
  "<!DOCTYPE x [<!ENTITY a 'b'>]>",
  "<![CDATA[",
  "&amp;",
  "&#x0;",
  "&#xD800;",
  "&lol;",
  "xmlns:p=''",
  "<p:q>",
  "é",
  "😀",
  "\r",
  "\u0000",
].map((s) => Buffer.from(s));

function mutate(input: Buffer, rand: () => number): Buffer {
  let bytes = Buffer.from(input);
  const pick = (n: number): number => Math.floor(rand() * n);
  const mutations = 1 + pick(4);
  for (let m = 0; m < mutations; m++) {
    const at = pick(bytes.length + 1);
    switch (pick(6)) {
      case 0: // flip a byte to anything
        if (bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = pick(256);
        break;
      case 1: // insert markup fragments
        bytes = Buffer.concat([bytes.subarray(0, at), INSERTS[pick(INSERTS.length)]!, bytes.subarray(at)]);
        break;
      case 2: // insert random bytes
        bytes = Buffer.concat([
          bytes.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + pick(4) }, () => pick(256))),
          bytes.subarray(at),
        ]);
        break;
      case 3: // delete a range
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + pick(20))]);
        break;
      case 4: // duplicate a range
        bytes = Buffer.concat([bytes.subarray(0, at + pick(40)), bytes.subarray(at)]);
        break;
      default: // truncate
        bytes = bytes.subarray(0, at);
    }
  }
  return bytes;
}

function split(bytes: Buffer, rand: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length;) {
    const size = rand() < 0.3 ? 1 + Math.floor(rand() * 3) : 1 + Math.floor(rand() * 300);
    chunks.push(bytes.subarray(i, i + size));
    i += size;
  }
  return chunks;
}

const LIMITS = [Infinity, Infinity, 64, 300, 4096];

describe("StreamParser fuzzing", () => {
  it("parses valid streams identically however they are split", () => {
    const rand = prng(1);
    for (const stream of VALID_STREAMS) {
      const whole = parse(stream);
      assert.deepEqual(whole.errors, []);
      for (let i = 0; i < 200; i++) {
        assert.deepEqual(parse(split(stream, rand)).events, whole.events);
      }
    }
  });

  it("survives thousands of random mutations: no exception, no hang, at most one error", () => {
    const rand = prng(0x5eed);
    let slowest = 0;
    let errors = 0;
    const ITERATIONS = 4000;
    for (let i = 0; i < ITERATIONS; i++) {
      const input = mutate(VALID_STREAMS[i % VALID_STREAMS.length]!, rand);
      const chunks = split(input, rand);
      const limit = LIMITS[Math.floor(rand() * LIMITS.length)]!;
      const started = process.hrtime.bigint();
      const rec = parse(chunks, limit); // parse() throws if write() does
      slowest = Math.max(slowest, Number(process.hrtime.bigint() - started) / 1e6);

      const context = `iteration ${i}: ${JSON.stringify(input.toString("latin1"))} limit ${limit}`;
      assert.ok(rec.errors.length <= 1, context);
      assert.ok(rec.ends <= 1, context);
      assert.ok(rec.headers.length <= 1, context);
      assert.ok(rec.errors.length + rec.ends <= 1, context);
      // Nothing after an error or the end, and nothing before the header.
      const last = rec.events.findIndex((e) => e === "end" || e.startsWith("error:"));
      assert.ok(last === -1 || last === rec.events.length - 1, context);
      if (rec.elements.length > 0) assert.equal(rec.events[0], "header", context);
      // Whatever was accepted re-serializes to XML that parses back to the same thing.
      for (const element of rec.elements) {
        const again = parse(HEADER + serialize(element));
        assert.deepEqual(again.errors, [], context);
        assert.equal(serialize(again.elements[0]!), serialize(element), context);
      }
      errors += rec.errors.length;
    }
    assert.ok(slowest < 250, `slowest run took ${slowest} ms`);
    // Most mutations break the stream; a fuzzer that never reaches an error tests nothing.
    assert.ok(errors > ITERATIONS / 2, `only ${errors} errors`);
  });
});
