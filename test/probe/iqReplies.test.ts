/**
 * IqReplies: a result or error iq with an awaited id from the awaited domain is handed over (once),
 * anything else is left to the normal path; hostedDomains consults it first for iq replies.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StanzaCounters } from "../../src/metrics/stanzaCounters.js";
import { ComponentTable } from "../../src/routing/components.js";
import { hostedDomains } from "../../src/routing/hostedDomains.js";
import { IqReplies, IqReplyTimeout } from "../../src/routing/iqReplies.js";
import { el, type Element } from "../../src/xml/element.js";
import { Jid } from "../../src/xmpp/jid.js";

const iq = (attrs: Record<string, string>): Element => el("iq", attrs);

describe("IqReplies", () => {
  it("hands a result from the awaited domain to its waiter, once", async () => {
    const replies = new IqReplies();
    const waiting = replies.expect("abc", "Remote.Example", 1000);
    assert.equal(
      replies.take(iq({ type: "result", id: "abc", from: "remote.example", to: "local.example" })),
      true,
    );
    const reply = await waiting;
    assert.equal(reply.attrs.from, "remote.example");
    assert.equal(replies.take(iq({ type: "result", id: "abc", from: "remote.example" })), false);
    assert.equal(replies.size, 0);
  });

  it("takes error replies, and replies from a JID of the domain", async () => {
    const replies = new IqReplies();
    const waiting = replies.expect("e1", "remote.example", 1000);
    assert.equal(replies.take(iq({ type: "error", id: "e1", from: "svc@remote.example/r" })), true);
    assert.equal((await waiting).attrs.type, "error");
  });

  it("leaves requests, other ids, other domains and non-iq stanzas alone", () => {
    const replies = new IqReplies();
    void replies.expect("x", "remote.example", 1000).catch(() => undefined);
    assert.equal(replies.take(iq({ type: "get", id: "x", from: "remote.example" })), false);
    assert.equal(replies.take(iq({ type: "result", id: "y", from: "remote.example" })), false);
    assert.equal(replies.take(iq({ type: "result", id: "x", from: "impostor.example" })), false);
    assert.equal(replies.take(iq({ type: "result", id: "x" })), false);
    assert.equal(replies.take(el("message", { type: "result", id: "x", from: "remote.example" })), false);
    assert.equal(replies.size, 1);
    replies.cancel("x");
    assert.equal(replies.size, 0);
  });

  it("rejects with IqReplyTimeout and forgets the id", async () => {
    const replies = new IqReplies();
    // Its timer does not keep a process alive (a stopping server must not wait for it): this does.
    const alive = setTimeout(() => undefined, 1000);
    await assert.rejects(replies.expect("t", "remote.example", 20), IqReplyTimeout);
    clearTimeout(alive);
    assert.equal(replies.size, 0);
  });

  it("refuses to await the same id twice", async () => {
    const replies = new IqReplies();
    void replies.expect("d", "remote.example", 1000).catch(() => undefined);
    await assert.rejects(replies.expect("d", "remote.example", 1000), /already awaited/);
    replies.cancel("d");
  });
});

describe("hostedDomains with replies", () => {
  const setup = () => {
    const replies = new IqReplies();
    const bounced: string[] = [];
    const sent: Element[] = [];
    const hosted = hostedDomains({
      hosts: ["local.example"],
      discoItems: [],
      components: new ComponentTable(),
      counters: new StanzaCounters(),
      send: (stanza) => sent.push(stanza),
      bounce: (stanza, condition) => bounced.push(`${stanza.attrs.id ?? ""} ${condition}`),
      replies,
    });
    return { replies, bounced, sent, hosted };
  };
  const from = Jid.parse("remote.example");
  const to = Jid.parse("local.example");

  it("an awaited ping result is taken instead of being dropped", async () => {
    const { replies, bounced, hosted } = setup();
    const waiting = replies.expect("p1", "remote.example", 1000);
    hosted.deliver(iq({ type: "result", id: "p1", from: "remote.example", to: "local.example" }), from, to);
    assert.equal((await waiting).attrs.id, "p1");
    assert.deepEqual(bounced, []);
  });

  it("other results still take the old path, and requests are still answered", () => {
    const { bounced, sent, hosted } = setup();
    hosted.deliver(
      iq({ type: "result", id: "stray", from: "remote.example", to: "local.example" }),
      from,
      to,
    );
    assert.deepEqual(bounced, ["stray service-unavailable"]);
    hosted.deliver(
      el(
        "iq",
        { type: "get", id: "q", from: "remote.example", to: "local.example" },
        el("ping", { xmlns: "urn:xmpp:ping" }),
      ),
      from,
      to,
    );
    assert.equal(sent[0]?.attrs.type, "result");
  });
});
