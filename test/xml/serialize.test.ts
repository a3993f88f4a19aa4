import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Element, el } from "../../src/xml/element.js";
import { STREAM_FOOTER, escapeAttr, escapeText, serialize, streamHeader } from "../../src/xml/serialize.js";
import { NS } from "../../src/xmpp/namespaces.js";
import { HEADER, parse } from "./support.js";

const SPECIAL = `a&b<c>d]]>e'f"g\th\ni\r\nj\rk &amp; 😀 é`;

describe("escapeText / escapeAttr", () => {
  it("escapes text", () => {
    assert.equal(escapeText(SPECIAL), `a&amp;b&lt;c&gt;d]]&gt;e'f"g\th\ni&#13;\nj&#13;k &amp;amp; 😀 é`);
  });

  it("escapes single-quoted attribute values, keeping whitespace characters as references", () => {
    assert.equal(
      escapeAttr(SPECIAL),
      `a&amp;b&lt;c&gt;d]]&gt;e&apos;f"g&#9;h&#10;i&#13;&#10;j&#13;k &amp;amp; 😀 é`,
    );
  });

  it("returns plain strings unchanged", () => {
    assert.equal(escapeText("hello wörld"), "hello wörld");
    assert.equal(escapeAttr(""), "");
  });
});

describe("serialize", () => {
  it("writes elements built in code, self-closing the empty ones", () => {
    const iq = el("iq", { type: "get", id: "1", to: "b.example" }, el("ping", { xmlns: NS.PING }));
    assert.equal(serialize(iq), `<iq type='get' id='1' to='b.example'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(serialize(el("br")), "<br/>");
  });

  it("writes mixed content in order, escaping text and attributes", () => {
    const body = el(
      "body",
      { "xml:lang": "en", title: "it's <b>" },
      "1 < 2 & ",
      el("b", {}, "bold"),
      " done",
    );
    assert.equal(
      serialize(body),
      `<body xml:lang='en' title='it&apos;s &lt;b&gt;'>1 &lt; 2 &amp; <b>bold</b> done</body>`,
    );
  });

  it("skips attributes whose value is undefined at run time", () => {
    const to: string | undefined = undefined;
    const attrs = { id: "x", to } as unknown as Record<string, string>;
    assert.equal(serialize(el("iq", attrs)), "<iq id='x'/>");
  });

  it("round-trips every special character in text and attributes through the parser", () => {
    const original = el(
      "message",
      { to: SPECIAL, "xmlns:x": "urn:x", "x:a": SPECIAL },
      el("body", {}, SPECIAL),
      el("x:y", {}, "]]>", el("z"), "]]"),
    );
    const rec = parse(HEADER + serialize(original));
    assert.deepEqual(rec.errors, []);
    const parsed = rec.elements[0]!;
    // The parser normalizes CRLF and CR in literal text; escaped as &#13; they survive.
    assert.deepEqual(parsed.attrs, original.attrs);
    assert.equal(parsed.getChild("body")!.text(), SPECIAL);
    assert.deepEqual(parsed.getChild("y", "urn:x")!.children, [
      "]]>",
      new Element("z", {}, [], NS.SERVER),
      "]]",
    ]);
    assert.equal(serialize(parsed), serialize(original));
  });

  it("serializes very deep trees without recursion", () => {
    const depth = 100_000;
    const root = el("a");
    let node = root;
    for (let i = 1; i < depth; i++) {
      const child = el("a");
      node.append(child);
      node = child;
    }
    node.append("leaf");
    const xml = serialize(root);
    assert.equal(xml, "<a>".repeat(depth) + "leaf" + "</a>".repeat(depth));
  });
});

describe("streamHeader / STREAM_FOOTER", () => {
  it("builds an XML declaration and an open stream:stream tag", () => {
    assert.equal(
      streamHeader({
        defaultNs: NS.SERVER,
        from: "a.example",
        to: "b.example",
        id: "x'1",
        version: "1.0",
        lang: "en",
        extraNamespaces: { db: NS.DIALBACK },
      }),
      `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAM}' ` +
        `xmlns:db='jabber:server:dialback' from='a.example' to='b.example' id='x&apos;1' version='1.0' ` +
        `xml:lang='en'>`,
    );
  });

  it("writes a version only when given one (pre-1.0 and component streams have none)", () => {
    assert.doesNotMatch(streamHeader({ defaultNs: NS.COMPONENT }), /<stream:stream[^>]* version=/);
    assert.match(streamHeader({ defaultNs: NS.SERVER, version: "1.0" }), / version='1.0'>$/);
    assert.match(streamHeader({ defaultNs: NS.SERVER, version: "1.1" }), /version='1.1'/);
  });

  it("produces a header our parser accepts, and a footer that ends the stream", () => {
    const header = streamHeader({
      defaultNs: NS.COMPONENT,
      to: "c.example",
      version: "1.0",
      extraNamespaces: { db: NS.DIALBACK },
    });
    const rec = parse(header + "<handshake>abc</handshake>" + STREAM_FOOTER);
    assert.deepEqual(rec.events, ["header", "el:<handshake>abc</handshake>", "end"]);
    assert.equal(rec.headers[0]!.defaultNs, NS.COMPONENT);
    assert.equal(rec.headers[0]!.attrs.to, "c.example");
    assert.equal(rec.headers[0]!.attrs["xmlns:db"], NS.DIALBACK);
    assert.equal(rec.headers[0]!.attrs.version, "1.0");
    assert.equal(rec.elements[0]!.ns, NS.COMPONENT);
  });
});
