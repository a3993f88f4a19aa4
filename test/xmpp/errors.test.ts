import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type Element, el } from "../../src/xml/element.js";
import { NS } from "../../src/xmpp/namespaces.js";
import {
  STANZA_ERROR_TYPES,
  type StanzaErrorCondition,
  type StanzaErrorType,
  bounce,
  stanzaError,
  stanzaKind,
} from "../../src/xmpp/stanzaErrors.js";
import {
  STREAM_ERROR_CONDITIONS,
  type StreamErrorCondition,
  streamError,
} from "../../src/xmpp/streamErrors.js";

function childElements(element: Element): Element[] {
  return element.children.filter((c): c is Element => typeof c !== "string");
}

describe("streamError", () => {
  it("knows all 25 conditions of RFC 6120 §4.9.3", () => {
    assert.equal(STREAM_ERROR_CONDITIONS.length, 25);
    assert.equal(new Set(STREAM_ERROR_CONDITIONS).size, 25);
  });

  for (const condition of STREAM_ERROR_CONDITIONS) {
    it(`<${condition}/>`, () => {
      const error = streamError(condition);
      assert.equal(error.name, "stream:error");
      assert.equal(error.ns, NS.STREAM);
      assert.deepEqual(error.attrs, {}, "the stream prefix is not redeclared");
      const [child, ...rest] = childElements(error);
      assert.equal(rest.length, 0);
      assert.ok(child);
      assert.equal(child.name, condition);
      assert.equal(child.ns, NS.STREAM_ERRORS);
      assert.equal(child.children.length, 0);
    });
  }

  it("adds an English <text/> when given", () => {
    const error = streamError("policy-violation", "stanza too big");
    const text = error.getChild("text", NS.STREAM_ERRORS);
    assert.ok(text);
    assert.equal(text.attr("xml:lang"), "en");
    assert.equal(text.text(), "stanza too big");
    assert.equal(childElements(error)[0]?.name, "policy-violation", "the condition comes first");
  });

  it("omits an empty text", () => {
    assert.equal(streamError("reset", "").getChild("text"), undefined);
  });

  it("types the condition", () => {
    const condition: StreamErrorCondition = "see-other-host";
    assert.ok(STREAM_ERROR_CONDITIONS.includes(condition));
  });
});

describe("stanzaError", () => {
  const expected: [StanzaErrorCondition, StanzaErrorType][] = [
    ["bad-request", "modify"],
    ["conflict", "cancel"],
    ["feature-not-implemented", "cancel"],
    ["forbidden", "auth"],
    ["gone", "cancel"],
    ["internal-server-error", "cancel"],
    ["item-not-found", "cancel"],
    ["jid-malformed", "modify"],
    ["not-acceptable", "modify"],
    ["not-allowed", "cancel"],
    ["not-authorized", "auth"],
    ["policy-violation", "modify"],
    ["recipient-unavailable", "wait"],
    ["redirect", "modify"],
    ["registration-required", "auth"],
    ["remote-server-not-found", "cancel"],
    ["remote-server-timeout", "wait"],
    ["resource-constraint", "wait"],
    ["service-unavailable", "cancel"],
    ["subscription-required", "auth"],
    ["undefined-condition", "cancel"],
    ["unexpected-request", "wait"],
  ];

  it("knows all 22 conditions of RFC 6120 §8.3.3", () => {
    assert.equal(Object.keys(STANZA_ERROR_TYPES).length, 22);
    assert.deepEqual(new Set(Object.keys(STANZA_ERROR_TYPES)), new Set(expected.map(([c]) => c)));
  });

  for (const [condition, type] of expected) {
    it(`<${condition}/> is type ${type}`, () => {
      const error = stanzaError(condition);
      assert.equal(error.name, "error");
      assert.equal(error.ns, "", "<error/> is in the content namespace");
      assert.deepEqual(error.attrs, { type });
      const [child, ...rest] = childElements(error);
      assert.equal(rest.length, 0);
      assert.ok(child);
      assert.equal(child.name, condition);
      assert.equal(child.ns, NS.STANZA_ERRORS);
    });
  }

  it("takes an explicit type, text and by", () => {
    const error = stanzaError("policy-violation", { type: "wait", text: "slow down", by: "example.com" });
    assert.deepEqual(error.attrs, { type: "wait", by: "example.com" });
    const [condition, text] = childElements(error);
    assert.equal(condition?.name, "policy-violation");
    assert.ok(text);
    assert.equal(text.name, "text");
    assert.equal(text.ns, NS.STANZA_ERRORS);
    assert.equal(text.attr("xml:lang"), "en");
    assert.equal(text.text(), "slow down");
  });
});

describe("stanzaKind", () => {
  const cases: [Element, ReturnType<typeof stanzaKind>][] = [
    [el("message"), "message"],
    [el("presence"), "presence"],
    [el("iq"), "iq"],
    [el("message", { xmlns: NS.SERVER }), "message"],
    [el("iq", { xmlns: NS.CLIENT }), "iq"],
    [el("presence", { xmlns: NS.COMPONENT }), "presence"],
    [el("server:message", { "xmlns:server": NS.SERVER }), "message"],
    [el("message", { xmlns: "urn:example" }), undefined],
    [el("db:result", { "xmlns:db": NS.DIALBACK }), undefined],
    [el("starttls", { xmlns: NS.TLS }), undefined],
    [el("error"), undefined],
  ];
  for (const [element, kind] of cases) {
    it(`<${element.name} xmlns='${element.ns}'/> → ${String(kind)}`, () => {
      assert.equal(stanzaKind(element), kind);
    });
  }
});

describe("bounce", () => {
  it("swaps to and from, keeps id and payload, sets type=error and appends <error/>", () => {
    const body = el("body", {}, "hello");
    const stanza = el(
      "message",
      { to: "b@remote.example/r", from: "a@local.example/s", id: "m1", type: "chat", "xml:lang": "de" },
      body,
    );
    const reply = bounce(stanza, "remote-server-timeout", { text: "no answer", by: "local.example" });
    assert.ok(reply);
    assert.equal(reply.name, "message");
    assert.deepEqual(reply.attrs, {
      to: "a@local.example/s",
      from: "b@remote.example/r",
      id: "m1",
      type: "error",
      "xml:lang": "de",
    });
    const [first, error, ...rest] = childElements(reply);
    assert.equal(rest.length, 0);
    assert.equal(first, body);
    assert.equal(error?.name, "error");
    assert.deepEqual(error.attrs, { type: "wait", by: "local.example" });
    assert.equal(error.getChild("remote-server-timeout", NS.STANZA_ERRORS)?.name, "remote-server-timeout");
    assert.equal(error.getChild("text", NS.STANZA_ERRORS)?.text(), "no answer");
    // The original is untouched.
    assert.equal(stanza.attrs.type, "chat");
    assert.equal(stanza.children.length, 1);
  });

  it("keeps the element's name and namespace", () => {
    const stanza = el("iq", { xmlns: NS.SERVER, to: "b", from: "a", type: "get", id: "q" });
    const reply = bounce(stanza, "service-unavailable");
    assert.ok(reply);
    assert.equal(reply.ns, NS.SERVER);
    assert.equal(reply.attrs.xmlns, NS.SERVER);
  });

  it("works without to or from", () => {
    const reply = bounce(el("presence", { from: "a@x" }), "remote-server-not-found");
    assert.ok(reply);
    assert.deepEqual(reply.attrs, { to: "a@x", type: "error" });
  });

  const replies: [string, Record<string, string>][] = [
    ["message", {}],
    ["message", { type: "normal" }],
    ["message", { type: "groupchat" }],
    ["message", { type: "headline" }],
    ["presence", {}],
    ["presence", { type: "subscribe" }],
    ["presence", { type: "probe" }],
    ["presence", { type: "unavailable" }],
    ["iq", { type: "get" }],
    ["iq", { type: "set" }],
    ["iq", {}],
  ];
  for (const [name, attrs] of replies) {
    it(`bounces <${name} type='${attrs.type ?? ""}'/>`, () => {
      const reply = bounce(el(name, { ...attrs, to: "b", from: "a" }), "service-unavailable");
      assert.equal(reply?.attrs.type, "error");
    });
  }

  const noReply: Element[] = [
    el("message", { type: "error", to: "b", from: "a" }),
    el("presence", { type: "error", to: "b", from: "a" }),
    el("iq", { type: "error", to: "b", from: "a" }),
    el("iq", { type: "result", to: "b", from: "a" }),
    el("db:result", { "xmlns:db": NS.DIALBACK, to: "b", from: "a" }),
    el("message", { xmlns: "urn:example", to: "b", from: "a" }),
  ];
  for (const stanza of noReply) {
    it(`never bounces <${stanza.name} type='${stanza.attrs.type ?? ""}' xmlns='${stanza.ns}'/>`, () => {
      assert.equal(bounce(stanza, "service-unavailable"), undefined);
    });
  }
});
