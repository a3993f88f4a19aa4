import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";

import type { Element } from "../../src/xml/element.js";
import { serialize } from "../../src/xml/serialize.js";
import { StreamParser } from "../../src/xml/streamParser.js";
import { NS } from "../../src/xmpp/namespaces.js";
import { HEADER, onlyError, parse, record } from "./support.js";

const STREAM_ATTRS = `xmlns:stream='${NS.STREAM}'`;

describe("StreamParser: stream header", () => {
  it("reports the header's name, attributes as written, namespace and default namespace", () => {
    const rec = parse(HEADER);
    assert.deepEqual(rec.headers, [
      {
        name: "stream:stream",
        attrs: {
          xmlns: "jabber:server",
          "xmlns:stream": NS.STREAM,
          "xmlns:db": "jabber:server:dialback",
          from: "a.example",
          to: "b.example",
          version: "1.0",
        },
        ns: NS.STREAM,
        defaultNs: "jabber:server",
      },
    ]);
    assert.deepEqual(rec.errors, []);
  });

  it("accepts a header without XML declaration, with a BOM, and with no default namespace", () => {
    const rec = parse(`\uFEFF<stream:stream ${STREAM_ATTRS} xml:lang='en'>`);
    assert.equal(rec.headers.length, 1);
    assert.equal(rec.headers[0]!.defaultNs, "");
    assert.equal(rec.headers[0]!.attrs["xml:lang"], "en");
    assert.deepEqual(rec.errors, []);
  });

  it("accepts the stream namespace as default namespace, with any prefix or none", () => {
    const rec1 = parse(`<stream xmlns='${NS.STREAM}'>`);
    assert.equal(rec1.headers[0]!.name, "stream");
    assert.equal(rec1.headers[0]!.defaultNs, NS.STREAM);
    const rec2 = parse(`<s:stream xmlns:s='${NS.STREAM}' xmlns='jabber:component:accept'>`);
    assert.equal(rec2.headers[0]!.name, "s:stream");
    assert.equal(rec2.headers[0]!.defaultNs, "jabber:component:accept");
  });

  it("reports the header only once its start tag is complete, however it is split", () => {
    const rec = record();
    for (const ch of HEADER.slice(0, -1)) rec.parser.write(Buffer.from(ch));
    assert.equal(rec.headers.length, 0);
    rec.parser.write(Buffer.from(">"));
    assert.equal(rec.headers.length, 1);
  });

  for (const [label, root] of [
    ["a wrong stream namespace", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams/'>`],
    ["the content namespace on the root", `<stream xmlns='jabber:server'>`],
    ["a root in no namespace", `<stream>`],
    ["a root with another name", `<stream:features ${STREAM_ATTRS}>`],
  ] as const) {
    it(`gives invalid-namespace for ${label}`, () => {
      const rec = parse(`<?xml version='1.0'?>${root}<message/>`);
      assert.equal(onlyError(rec), "invalid-namespace");
      assert.deepEqual(rec.events, ["error:invalid-namespace"]);
    });
  }

  it("gives not-well-formed for an unbound stream prefix (saxes cannot resolve it)", () => {
    assert.equal(onlyError(parse(`<stream:stream xmlns='jabber:server'>`)), "not-well-formed");
  });
});

describe("StreamParser: stanzas", () => {
  it("emits each depth-1 element as a tree with resolved namespaces and decoded text", () => {
    const rec = parse(
      HEADER +
        `<message to='c@b.example' type='chat'><body>fish &amp; chips &lt;3 &#x41;&#66; ` +
        `<![CDATA[<raw> & ]]>é</body><x xmlns='urn:x' a="q'uote"><y/></x></message>` +
        `<iq type='get' id='1'/>`,
    );
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.elements.length, 2);
    const message = rec.elements[0]!;
    assert.equal(message.name, "message");
    assert.equal(message.ns, "jabber:server");
    assert.deepEqual(message.attrs, { to: "c@b.example", type: "chat" });
    assert.equal(message.getChild("body")!.text(), "fish & chips <3 AB <raw> & é");
    assert.deepEqual(message.getChild("body")!.children, ["fish & chips <3 AB <raw> & é"]);
    const x = message.getChild("x", "urn:x")!;
    assert.equal(x.attr("a"), "q'uote");
    assert.equal(x.getChild("y")!.ns, "urn:x");
    assert.deepEqual(rec.elements[1]!.attrs, { type: "get", id: "1" });
    assert.deepEqual(rec.elements[1]!.children, []);
  });

  it("keeps whitespace inside stanzas and normalizes CRLF, even split between chunks", () => {
    const rec = parse([HEADER + "<message><body>a\r", "\nb\rc</body>\n <x/>\n</message>"]);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.elements[0]!.getChild("body")!.children, ["a\nb\nc"]);
    assert.equal(rec.elements[0]!.children.length, 4);
  });

  it("emits elements as soon as they are complete, in order", () => {
    const rec = record();
    rec.parser.write(Buffer.from(HEADER + "<a/><b>x</b><c>"));
    assert.deepEqual(rec.events, ["header", "el:<a/>", "el:<b>x</b>"]);
    rec.parser.write(Buffer.from("</c>"));
    assert.deepEqual(rec.events.at(-1), "el:<c></c>"); // as received
  });

  it("keeps an attribute named __proto__", () => {
    const rec = parse(HEADER + "<iq __proto__='x' id='1'/>");
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.elements[0]!.attrs.__proto__, "x");
    assert.deepEqual(Object.keys(rec.elements[0]!.attrs), ["__proto__", "id"]);
  });

  it("ignores whitespace keepalives between stanzas, without buffering them", () => {
    const rec = record(1024);
    rec.parser.write(Buffer.from(HEADER));
    for (let i = 0; i < 100; i++) rec.parser.write(Buffer.from(" \n\t\r\n"));
    // Far more whitespace than max_stanza_size, in one chunk: keepalives never count as a stanza.
    rec.parser.write(Buffer.from(" ".repeat(100_000) + "<presence/>" + "\n".repeat(5000)));
    rec.parser.write(Buffer.from("<presence/>"));
    assert.deepEqual(rec.events, ["header", "el:<presence/>", "el:<presence/>"]);
  });

  for (const [label, input] of [
    ["text between stanzas", "<a/>hello<b/>"],
    ["text right after the header", "x"],
    ["an entity reference between stanzas", "<a/>&amp;"],
    ["a character reference between stanzas", "&#32;<a/>"],
    ["a CDATA section between stanzas", "<![CDATA[ ]]>"],
    ["text before the stream end", "<a/> . </stream:stream>"],
  ] as const) {
    it(`gives bad-format for ${label}`, () => {
      const rec = parse(HEADER + input);
      assert.equal(onlyError(rec), "bad-format");
      assert.equal(rec.ends, 0);
    });
  }

  it("finds top-level text split across chunks", () => {
    const rec = parse([HEADER + "<a/>   ", "   ", "  x", "<b/>"]);
    assert.deepEqual(rec.events, ["header", "el:<a/>", "error:bad-format"]);
  });
});

describe("StreamParser: stream end", () => {
  it("reports the end tag, and ignores anything after it", () => {
    const rec = parse([HEADER + "<a/>\n</stream:stream>", "<b/>garbage<"]);
    assert.deepEqual(rec.events, ["header", "el:<a/>", "end"]);
  });

  it("reports a self-closed stream header as header then end", () => {
    const rec = parse(`<stream:stream ${STREAM_ATTRS}/> junk <a/>`);
    assert.deepEqual(rec.events, ["header", "end"]);
  });

  it("does not report an end for a mismatched end tag, nor deliver an unclosed stanza", () => {
    assert.deepEqual(parse(HEADER + "<a/></stream:streamx>").events, [
      "header",
      "el:<a/>",
      "error:not-well-formed",
    ]);
    assert.deepEqual(parse(HEADER + "<message></stream:stream>").events, ["header", "error:not-well-formed"]);
    assert.deepEqual(parse(HEADER + "<message><body></message>").events, ["header", "error:not-well-formed"]);
  });
});

const BILLION_LAUGHS =
  `<?xml version="1.0"?>\n<!DOCTYPE stream:stream [\n <!ENTITY lol "lol">\n` +
  Array.from(
    { length: 9 },
    (_, i) => ` <!ENTITY lol${i + 1} "${`&lol${i === 0 ? "" : i};`.repeat(10)}">\n`,
  ).join("") +
  `]>\n<stream:stream xmlns='jabber:server' ${STREAM_ATTRS}><message><body>&lol9;</body></message>`;

describe("StreamParser: restricted XML (RFC 6120 §11.1)", () => {
  it("refuses a billion-laughs document without expanding anything, quickly", () => {
    const started = process.hrtime.bigint();
    const rec = parse(BILLION_LAUGHS);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(onlyError(rec), "restricted-xml");
    assert.deepEqual(rec.events, ["error:restricted-xml"]);
    assert.ok(ms < 500, `took ${ms} ms`);
  });

  it("refuses a billion-laughs DTD sent after the stream header", () => {
    const rec = parse(HEADER + BILLION_LAUGHS.slice(BILLION_LAUGHS.indexOf("<!DOCTYPE")));
    assert.deepEqual(rec.events, ["header", "error:restricted-xml"]);
  });

  it("never expands an entity, even one declared in a DTD split across chunks", () => {
    const doc = `<!DOCTYPE s [<!ENTITY x "EXPANDED">]><stream:stream ${STREAM_ATTRS}><m>&x;</m>`;
    const rec = parse(doc.split(""));
    assert.equal(onlyError(rec), "restricted-xml");
    assert.deepEqual(rec.elements, []);
  });

  const cases: [string, string][] = [
    ["a DOCTYPE without internal subset", `<!DOCTYPE stream:stream>${HEADER.slice(21)}`],
    [
      "a DOCTYPE with an external id",
      `<?xml version='1.0'?><!DOCTYPE s SYSTEM "file:///etc/passwd">${HEADER.slice(21)}`,
    ],
    ["a DOCTYPE with an internal subset", `<!DOCTYPE s [<!ELEMENT s ANY>]>${HEADER.slice(21)}`],
    ["an ENTITY declaration", `<!DOCTYPE s [<!ENTITY e SYSTEM "http://x/">]>${HEADER.slice(21)}`],
    ["a DOCTYPE after the header", `${HEADER}<!DOCTYPE s>`],
    ["an ENTITY declaration between stanzas", `${HEADER}<a/><!ENTITY e "x">`],
    ["an ENTITY declaration inside a stanza", `${HEADER}<a><!ENTITY e "x"></a>`],
    [
      "a processing instruction before the header",
      `<?xml version='1.0'?><?xml-stylesheet href='x'?>${HEADER.slice(21)}`,
    ],
    ["a processing instruction between stanzas", `${HEADER}<a/><?php echo 1; ?>`],
    ["a processing instruction inside a stanza", `${HEADER}<a><b><?pi?></b></a>`],
    ["an XML declaration between stanzas", `${HEADER}<a/><?xml version='1.0'?>`],
    ["an XML declaration inside a stanza", `${HEADER}<a><?xml version='1.0'?></a>`],
    ["an upper-case XML declaration", `${HEADER}<?XML version='1.0'?>`],
    ["a second XML declaration before the header", `<?xml version='1.0'?><?xml version='1.0'?>`],
    ["a comment before the header", `<?xml version='1.0'?><!-- hi -->${HEADER.slice(21)}`],
    ["a comment at depth 0 (between stanzas)", `${HEADER}<a/><!-- hi --><b/>`],
    ["a comment at depth 1", `${HEADER}<message><!-- hi --></message>`],
    ["a comment deeper", `${HEADER}<message><body><x><!----></x></body></message>`],
  ];
  for (const [label, input] of cases) {
    it(`gives restricted-xml for ${label}`, () => {
      const rec = parse(input);
      assert.equal(onlyError(rec), "restricted-xml");
      assert.ok(!rec.events.some((e) => e.startsWith("el:<b") || e.startsWith("el:<message")));
    });
  }

  it("delivers the stanza before a restricted construct, then the error, then nothing", () => {
    const rec = parse([HEADER + "<a/><!-- x --><b/>", "<c/>"]);
    assert.deepEqual(rec.events, ["header", "el:<a/>", "error:restricted-xml"]);
  });

  it("allows an XML declaration before the header only", () => {
    assert.deepEqual(parse(HEADER).errors, []);
    assert.equal(onlyError(parse(" " + HEADER)), "restricted-xml");
  });
});

describe("StreamParser: not-well-formed input", () => {
  const cases: [string, string | Buffer][] = [
    ["a mismatched end tag", "<message><body></bodyx></message>"],
    ["an end tag without start", "</a>"],
    ["an unbound element prefix", "<foo:bar/>"],
    ["an unbound attribute prefix", "<message foo:bar='1'/>"],
    ["a duplicate attribute", "<message to='a' to='b'/>"],
    ["a duplicate attribute through two prefixes", "<m xmlns:p='urn:p' xmlns:q='urn:p' p:a='1' q:a='2'/>"],
    ["an undefined entity", "<message><body>&nbsp;</body></message>"],
    ["an undefined entity in an attribute", "<message to='&foo;'/>"],
    ["a malformed character reference", "<message><body>&#xZZ;</body></message>"],
    ["a character reference to a forbidden character", "<message><body>&#0;</body></message>"],
    ["a forbidden control character", "<message><body>\u0001</body></message>"],
    ["']]>' in text", "<message><body>]]></body></message>"],
    ["an unquoted attribute", "<message to=a/>"],
    ["'<' in an attribute value", "<message to='<'/>"],
    ["an undefining namespace declaration", "<message xmlns:p=''/>"],
  ];
  for (const [label, stanza] of cases) {
    it(`gives not-well-formed for ${label}`, () => {
      const rec = parse([HEADER, stanza]);
      assert.equal(onlyError(rec), "not-well-formed");
      assert.deepEqual(rec.elements, []);
    });
  }

  const badUtf8: [string, Buffer][] = [
    ["a lone UTF-8 continuation byte", Buffer.from([0x3c, 0x61, 0x3e, 0x80, 0x3c, 0x2f, 0x61, 0x3e])],
    [
      "an overlong UTF-8 encoding",
      Buffer.concat([Buffer.from("<a>"), Buffer.from([0xc0, 0xbc]), Buffer.from("</a>")]),
    ],
    [
      "a truncated UTF-8 sequence",
      Buffer.concat([Buffer.from("<a>"), Buffer.from([0xe2, 0x82]), Buffer.from("</a>")]),
    ],
    [
      "a UTF-8 encoded surrogate",
      Buffer.concat([Buffer.from("<a>"), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from("</a>")]),
    ],
    ["a 0xFF byte", Buffer.concat([Buffer.from("<a>"), Buffer.from([0xff]), Buffer.from("</a>")])],
  ];
  for (const [label, stanza] of badUtf8) {
    it(`gives unsupported-encoding for ${label} (RFC 6120 §4.9.3.22)`, () => {
      const rec = parse([HEADER, stanza]);
      assert.equal(onlyError(rec), "unsupported-encoding");
      assert.deepEqual(rec.elements, []);
    });
  }

  it("gives not-well-formed for text before the header", () => {
    assert.equal(onlyError(parse("hello" + HEADER)), "not-well-formed");
  });

  it("gives unsupported-encoding for a declaration of another encoding", () => {
    const declared = (encoding: string): string =>
      HEADER.replace("<?xml version='1.0'?>", `<?xml version='1.0' encoding='${encoding}'?>`);
    assert.equal(onlyError(parse([declared("UTF-16")])), "unsupported-encoding");
    assert.deepEqual(parse([declared("utf-8")]).errors, []);
  });

  it("detects invalid UTF-8 split across chunks", () => {
    const rec = parse([HEADER + "<a>", Buffer.from([0xe2, 0x82]), "(</a>"]);
    assert.equal(onlyError(rec), "unsupported-encoding");
    assert.deepEqual(rec.elements, []);
  });

  it("accepts U+FFFD itself, validly encoded", () => {
    const rec = parse([HEADER, "<a>\uFFFD</a>"]);
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.elements[0]!.text(), "\uFFFD");
  });

  it("reports one error, then ignores every later write", () => {
    const rec = parse([HEADER, "<a></b>", "<c/>", "</stream:stream>", "&bad;"]);
    assert.deepEqual(rec.events, ["header", "error:not-well-formed"]);
  });
});

describe("StreamParser: max_stanza_size", () => {
  const FOUR_MB = 4 * 1024 * 1024;
  const big = `<message><body>${"x".repeat(FOUR_MB)}</body></message>`;

  it("accepts a 4 MB stanza without limit", () => {
    const rec = parse([HEADER, big, "<a/>"]);
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.elements.length, 2);
    assert.equal(rec.elements[0]!.getChild("body")!.text().length, FOUR_MB);
  });

  it("accepts a 4 MB stanza under a larger limit, in one chunk or many", () => {
    const limit = FOUR_MB + 1024;
    assert.deepEqual(parse([HEADER + big + "<a/>"], limit).errors, []);
    const buf = Buffer.from(big);
    const chunks: Buffer[] = [];
    for (let i = 0; i < buf.length; i += 1500) chunks.push(buf.subarray(i, i + 1500));
    const rec = parse([HEADER, ...chunks], limit);
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.elements.length, 1);
  });

  it("refuses a 4 MB stanza over a 64 KiB limit after reading about 64 KiB of it", () => {
    const limit = 64 * 1024;
    const rec = record(limit);
    rec.parser.write(Buffer.from(HEADER));
    const buf = Buffer.from(big);
    let fed = 0;
    while (rec.errors.length === 0 && fed < buf.length) {
      rec.parser.write(buf.subarray(fed, fed + 4096));
      fed += 4096;
    }
    assert.equal(onlyError(rec), "policy-violation");
    assert.deepEqual(rec.elements, []);
    assert.ok(fed <= limit + 16 * 1024 + 4096, `read ${fed} bytes before refusing`);
  });

  it("stops mid-chunk: a 4 MB chunk is refused without decoding past the limit", () => {
    // Invalid UTF-8 3 MB in: reading that far would have reported unsupported-encoding instead.
    const buf = Buffer.from(big);
    buf[3 * 1024 * 1024] = 0xff;
    const started = process.hrtime.bigint();
    const rec = parse([HEADER, buf], 64 * 1024);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(onlyError(rec), "policy-violation");
    assert.ok(ms < 200, `took ${ms} ms`);
  });

  it("counts bytes, not characters, exactly", () => {
    // 2-, 3- and 4-byte characters: 1 + 2 + 3 + 4 = 10 bytes for 5 UTF-16 units.
    const stanza = `<message><body>${"aé€😀".repeat(500)}</body></message>`;
    const size = Buffer.byteLength(stanza);
    assert.equal(size, 9 + 6 + 500 * 10 + 7 + 10);
    for (const chunking of [1, 7, 4096, 1 << 20]) {
      const buf = Buffer.from(HEADER + "\n " + stanza + "\n" + stanza);
      const chunks: Buffer[] = [];
      for (let i = 0; i < buf.length; i += chunking) chunks.push(buf.subarray(i, i + chunking));
      const ok = parse(chunks, size);
      assert.deepEqual(ok.errors, [], `chunks of ${chunking}`);
      assert.equal(ok.elements.length, 2);
      const refused = parse(chunks, size - 1);
      assert.equal(onlyError(refused), "policy-violation", `chunks of ${chunking}`);
      assert.deepEqual(refused.elements, []);
    }
  });

  it("never trips on many small stanzas in one big chunk", () => {
    const stanza = `<message to='x@y' id='abc'><body>héllo wörld €</body></message>`;
    const many = stanza.repeat(20_000);
    const rec = parse(HEADER + many, Buffer.byteLength(stanza));
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.elements.length, 20_000);
  });

  it("bounds the stream header and anything between stanzas by the same limit", () => {
    assert.equal(
      onlyError(parse(`<stream:stream ${STREAM_ATTRS} x='${"a".repeat(40_000)}'>`, 20_000)),
      "policy-violation",
    );
    const hugeComment = `${HEADER}<a/><!--${"-x".repeat(30_000)}`;
    assert.deepEqual(parse(hugeComment, 20_000).events, ["header", "el:<a/>", "error:policy-violation"]);
  });
});

describe("StreamParser: split UTF-8", () => {
  const text = "é€😀 ß中𝄞 ok ü";
  const stream = Buffer.from(`${HEADER}<message id='${text}'><body>${text}</body></message></stream:stream>`);
  const expected = parse(stream).events;

  it("parses the unsplit stream", () => {
    assert.equal(expected.length, 3);
    assert.equal(parse(stream).elements[0]!.getChild("body")!.text(), text);
    assert.equal(parse(stream).elements[0]!.attr("id"), text);
  });

  it("gives identical results when cut at every byte offset", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      for (const limit of [Infinity, 200]) {
        const rec = parse([stream.subarray(0, cut), stream.subarray(cut)], limit);
        assert.deepEqual(rec.events, expected, `cut at ${cut}, limit ${limit}`);
      }
    }
  });

  it("gives identical results when fed one byte at a time", () => {
    const chunks = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    assert.deepEqual(parse(chunks).events, expected);
  });
});

describe("StreamParser: namespace prefixes from the header", () => {
  const COMPONENT_HEADER = `<stream:stream xmlns='jabber:component:accept' ${STREAM_ATTRS} to='c.example'>`;

  it("re-declares a header prefix on the depth-1 element that uses it", () => {
    const rec = parse(HEADER + "<db:result from='a.example' to='b.example'>KEY</db:result>");
    const result = rec.elements[0]!;
    assert.equal(result.name, "db:result");
    assert.equal(result.ns, NS.DIALBACK);
    assert.deepEqual(result.attrs, { from: "a.example", to: "b.example", "xmlns:db": NS.DIALBACK });
  });

  it("round-trips db:result through serialize() onto a stream with another default namespace", () => {
    const first = parse(HEADER + "<db:result from='a.example' to='b.example'>KEY</db:result>").elements[0]!;
    const again = parse(COMPONENT_HEADER + serialize(first)).elements[0]!;
    assert.equal(again.name, "db:result");
    assert.equal(again.ns, NS.DIALBACK);
    assert.deepEqual(again.attrs, first.attrs);
    assert.equal(again.text(), "KEY");
  });

  it("leaves unqualified stanzas without xmlns, so they take the new stream's namespace", () => {
    const first = parse(HEADER + "<message to='x'><body>hi</body></message>").elements[0]!;
    assert.equal(first.ns, NS.SERVER);
    assert.deepEqual(first.attrs, { to: "x" });
    assert.equal(serialize(first), "<message to='x'><body>hi</body></message>");
    const again = parse(COMPONENT_HEADER + serialize(first)).elements[0]!;
    assert.equal(again.ns, NS.COMPONENT);
    assert.equal(again.getChild("body")!.ns, NS.COMPONENT);
  });

  it("lifts prefixes used deep inside, or on attributes, to the depth-1 element", () => {
    const rec = parse(
      HEADER +
        "<message><x xmlns='urn:x'><db:verify/></x></message>" +
        "<iq db:flag='1' xml:lang='en'/>" +
        "<stream:features><db:dialback xmlns:db='urn:other'/></stream:features>",
    );
    assert.deepEqual(
      rec.elements.map((e) => e.attrs),
      [
        { "xmlns:db": NS.DIALBACK },
        { "db:flag": "1", "xml:lang": "en", "xmlns:db": NS.DIALBACK },
        { "xmlns:stream": NS.STREAM },
      ],
    );
    const verify = rec.elements[0]!.getChild("x")!.getChild("verify")!;
    assert.equal(verify.ns, NS.DIALBACK);
    assert.deepEqual(verify.attrs, {});
    // Every element means the same after a trip through a stream that declares nothing.
    for (const el of rec.elements) {
      const again = parse(COMPONENT_HEADER + serialize(el));
      assert.deepEqual(again.errors, []);
      assert.equal(serialize(again.elements[0]!), serialize(el));
    }
  });

  it("does not lift a prefix the stanza declares itself", () => {
    const rec = parse(HEADER + "<message xmlns:db='urn:mine'><db:x/></message><db:y xmlns:db='urn:y'/>");
    assert.deepEqual(rec.elements[0]!.attrs, { "xmlns:db": "urn:mine" });
    assert.equal(rec.elements[0]!.getChild("x")!.ns, "urn:mine");
    assert.deepEqual(rec.elements[1]!.attrs, { "xmlns:db": "urn:y" });
  });
});

describe("StreamParser: reset() for stream restarts", () => {
  it("parses a fresh stream with its own XML declaration and header", () => {
    const rec = record();
    rec.parser.write(Buffer.from(HEADER + "<stream:features/><a>unfinished"));
    rec.parser.reset();
    rec.parser.write(Buffer.from(HEADER.replace("b.example", "c.example") + "<b/>"));
    assert.deepEqual(rec.events, [
      "header",
      "el:<stream:features xmlns:stream='" + NS.STREAM + "'/>",
      "header",
      "el:<b/>",
    ]);
    assert.equal(rec.headers[1]!.attrs.to, "c.example");
    assert.deepEqual(rec.errors, []);
  });

  it("refuses a second XML declaration without reset()", () => {
    const rec = parse([HEADER, HEADER]);
    assert.deepEqual(rec.events, ["header", "error:restricted-xml"]);
  });

  it("revives a parser after an error or the stream end", () => {
    const rec = record();
    rec.parser.write(Buffer.from(HEADER + "</stream:stream>"));
    rec.parser.reset();
    rec.parser.write(Buffer.from(HEADER + "<!-- -->"));
    rec.parser.reset();
    rec.parser.write(Buffer.from(HEADER + "<a/>"));
    assert.deepEqual(rec.events, ["header", "end", "header", "error:restricted-xml", "header", "el:<a/>"]);
  });

  it("called from onElement, drops the rest of that chunk (no pre-TLS injection into the new stream)", () => {
    const events: string[] = [];
    const parser: StreamParser = new StreamParser(
      {
        onHeader: (h) => events.push(`header ${h.attrs.to ?? ""}`),
        onElement: (e: Element) => {
          events.push(e.name);
          if (e.name === "starttls") parser.reset();
        },
        onEnd: () => events.push("end"),
        onError: (c) => events.push(`error ${c}`),
      },
      { maxStanzaSize: 10_000 },
    );
    const injected = HEADER.replace("b.example", "evil.example") + "<db:result>forged</db:result>";
    parser.write(Buffer.from(`${HEADER}<a/><starttls xmlns='${NS.TLS}'/>${injected}`));
    assert.deepEqual(events, ["header b.example", "a", "starttls"]);
    // What comes after the restart (here: over TLS) is a new stream.
    parser.write(Buffer.from(HEADER.replace("b.example", "tls.example") + "<b/>"));
    assert.deepEqual(events, ["header b.example", "a", "starttls", "header tls.example", "b"]);
  });

  it("called from onElement with the restart in the middle of a chunk of any size, never parses the tail", () => {
    const events: string[] = [];
    const parser: StreamParser = new StreamParser(
      {
        onHeader: () => events.push("header"),
        onElement: (e: Element) => {
          events.push(e.name);
          if (e.name === "success") parser.reset();
        },
        onEnd: () => events.push("end"),
        onError: (c) => events.push(`error ${c}`),
      },
      { maxStanzaSize: 10_000 },
    );
    const input = Buffer.from(`${HEADER}<a>é</a><success>€😀</success><x/></stream:stream>`);
    const restartAt = input.indexOf("<x/>");
    for (const size of [input.length, 1, 5, 64]) {
      events.length = 0;
      parser.reset();
      let offset = 0;
      for (; offset < restartAt; offset += size) parser.write(input.subarray(offset, offset + size));
      assert.deepEqual(events, ["header", "a", "success"], `chunks of ${size}`);
      // The chunk that held the restart was dropped from <success/> on; later ones are the new stream.
      parser.write(Buffer.from(HEADER + "<c/>"));
      assert.deepEqual(events, ["header", "a", "success", "header", "c"], `chunks of ${size}`);
    }
  });
});

describe("StreamParser: handler exceptions", () => {
  it("propagates an exception thrown by a handler and then ignores input until reset()", () => {
    let elements = 0;
    const parser = new StreamParser(
      {
        onHeader: () => undefined,
        onElement: () => {
          elements++;
          throw new Error("handler bug");
        },
        onEnd: () => undefined,
        onError: () => undefined,
      },
      { maxStanzaSize: Infinity },
    );
    assert.throws(() => {
      parser.write(Buffer.from(HEADER + "<a/><b/>"));
    }, /handler bug/);
    parser.write(Buffer.from("<c/>"));
    assert.equal(elements, 1);
  });
});

describe("StreamParser: speed guard", () => {
  it("keeps saxes' parser object in V8's fast-properties mode (else parsing is 4x slower)", () => {
    const module = new URL("../../src/xml/streamParser.js", import.meta.url).href;
    const script = `
      import { StreamParser } from ${JSON.stringify(module)};
      const noop = () => {};
      const parser = new StreamParser({ onHeader: noop, onElement: noop, onEnd: noop, onError: noop }, { maxStanzaSize: 1e6 });
      parser.write(Buffer.from(${JSON.stringify(HEADER + "<a x='1'><b>t</b><![CDATA[c]]></a>\n")}));
      process.stdout.write(String(%HasFastProperties(parser.st.sax)));`;
    const out = execFileSync(process.execPath, [
      "--allow-natives-syntax",
      "--input-type=module",
      "-e",
      script,
    ]);
    assert.equal(out.toString(), "true");
  });
});

describe("StreamParser: each stanza's text as received (Element.source)", () => {
  const stanzas = [
    `<message from="a@a.example" to='b@b.example' id="m1"><body>caf\u00e9 &amp; \u{1F600} &#x41;\r\n</body></message>`,
    "<presence/>",
    `<iq type='get' id='2'><query xmlns='jabber:iq:version'><![CDATA[<raw>]]></query></iq>`,
    `<message to='x@b.example'><body>${"z\u00e9".repeat(12_000)}</body></message>`,
  ];
  const input = HEADER + "\n " + stanzas.join("  \n") + "\t";

  function sources(rec: ReturnType<typeof record>): (string | undefined)[] {
    return rec.elements.map((el) => el.source);
  }

  it("keeps each stanza's exact text, quotes, references, CDATA and CRLF included", () => {
    const rec = parse(input);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(sources(rec), stanzas);
    assert.equal(serialize(rec.elements[0]!), stanzas[0]);
  });

  it("gives the same text however the bytes are cut: at every offset, and one byte at a time", () => {
    const bytes = Buffer.from(input);
    const small = Buffer.from(HEADER + stanzas.slice(0, 3).join(" "));
    for (let cut = 1; cut < small.length; cut++) {
      const rec = parse([small.subarray(0, cut), small.subarray(cut)]);
      assert.deepEqual(sources(rec), stanzas.slice(0, 3), `cut at ${cut}`);
    }
    const rec = record();
    for (let i = 0; i < small.length; i++) rec.parser.write(small.subarray(i, i + 1));
    assert.deepEqual(sources(rec), stanzas.slice(0, 3));
    // The long stanza spans several of the parser's 16 KiB slices, and chunks of odd sizes.
    for (const size of [7, 1000, 16 * 1024 - 1, 40_000]) {
      const chunked = record(1024 * 1024);
      for (let i = 0; i < bytes.length; i += size) chunked.parser.write(bytes.subarray(i, i + size));
      assert.deepEqual(sources(chunked), stanzas, `chunks of ${size}`);
    }
  });

  it("keeps none for a stanza that needed a header prefix declared on it (its text differs)", () => {
    const rec = parse(HEADER + "<db:result from='a.example' to='b.example'>k</db:result><message/>");
    assert.equal(rec.elements[0]!.source, undefined);
    assert.equal(rec.elements[0]!.attrs["xmlns:db"], "jabber:server:dialback");
    assert.equal(rec.elements[1]!.source, "<message/>");
  });

  it("drops it once the element is changed, so the change is what gets written", () => {
    const rec = parse(HEADER + "<message xmlns='jabber:server' to='b@b.example'><body>x</body></message>");
    const el = rec.elements[0]!;
    el.deleteAttr("xmlns");
    assert.equal(serialize(el), "<message to='b@b.example'><body>x</body></message>");
    const other = parse(HEADER + "<message/>").elements[0]!;
    other.append("y");
    assert.equal(serialize(other), "<message>y</message>");
  });
});
