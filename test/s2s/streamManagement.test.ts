/** XEP-0198 counters on S2S streams: what is sent on the wire, what is kept, what comes back. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SmInbound, SmOutbound } from "../../src/s2s/streamManagement.js";
import { Element } from "../../src/xml/element.js";
import { serialize } from "../../src/xml/serialize.js";
import { NS } from "../../src/xmpp/namespaces.js";

function writer(): { sent: string[]; send: (e: Element) => boolean } {
  const sent: string[] = [];
  return {
    sent,
    send: (e) => {
      sent.push(serialize(e));
      return true;
    },
  };
}

const sm = (name: string, attrs: Record<string, string> = {}): Element =>
  new Element(name, { xmlns: NS.SM, ...attrs }, [], NS.SM);
const stanza = (i: number) => {
  const xml = `<message id='m${i}'/>`;
  return { xml, bytes: xml.length, kind: "message" };
};

describe("SmOutbound (our outgoing stream)", () => {
  it("enables, asks only about stanzas written since its last <r/>, and forgets what the peer acknowledged", () => {
    const w = writer();
    const out = new SmOutbound(w, 4);
    assert.deepEqual(w.sent, ["<enable xmlns='urn:xmpp:sm:3'/>"]);
    for (let i = 1; i <= 3; i++) out.track(stanza(i));
    out.requestAck();
    out.requestAck();
    assert.equal(w.sent.filter((s) => s.startsWith("<r ")).length, 1, "nothing new to ask about");
    assert.ok(out.receive(sm("enabled")));
    assert.ok(out.receive(sm("a", { h: "2" })));
    assert.equal(out.pending, 1);
    assert.deepEqual(
      out.takeUnacked().map((u) => u.xml),
      ["<message id='m3'/>"],
    );
  });

  it("asks for an ack within 10 ms of a lone stanza, and at once when 100 wait", async () => {
    const w = writer();
    const out = new SmOutbound(w);
    out.receive(sm("enabled"));
    const asked = (): number => w.sent.filter((s) => s.startsWith("<r ")).length;
    out.track(stanza(1));
    out.scheduleAck();
    out.scheduleAck();
    assert.equal(asked(), 0, "not for every stanza");
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(asked(), 1, "within the delay");
    assert.ok(out.receive(sm("a", { h: "1" })));
    for (let i = 2; i <= 101; i++) {
      out.track(stanza(i));
      out.scheduleAck();
    }
    assert.equal(asked(), 2, "at once at 100 unacknowledged");
    // The next 100 are asked about at once too, though the previous <r/> is unanswered: a peer
    // that acks only when asked stays at most a batch behind.
    for (let i = 102; i <= 201; i++) {
      out.track(stanza(i));
      out.scheduleAck();
    }
    assert.equal(asked(), 3, "a second <r/> outstanding");
    assert.ok(out.receive(sm("a", { h: "101" })));
    assert.equal(out.pending, 100);
    assert.equal(out.takeUnacked().length, 100);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(asked(), 3, "nothing more once the stream is over");
  });

  it("is full at its window and says when there is room again", () => {
    const out = new SmOutbound(writer(), 2);
    let room = 0;
    out.onRoom = () => room++;
    out.track(stanza(1));
    out.track(stanza(2));
    assert.equal(out.full, true);
    out.receive(sm("a", { h: "1" }));
    assert.equal(out.full, false);
    assert.equal(room, 1);
  });

  it("refuses an ack for more than was sent, and a malformed h", () => {
    const out = new SmOutbound(writer());
    out.track(stanza(1));
    assert.equal(out.receive(sm("a", { h: "2" })), false);
    assert.equal(out.receive(sm("a", { h: "-1" })), false);
    assert.equal(out.receive(sm("a", { h: "4294967296" })), false);
  });

  it("keeps nothing when the peer answers <failed/> (the stanzas were sent as without acks)", () => {
    const out = new SmOutbound(writer());
    out.track(stanza(1));
    out.receive(sm("failed"));
    out.track(stanza(2));
    assert.deepEqual(out.takeUnacked(), []);
    assert.equal(out.full, false);
  });

  it("counts h modulo 2^32", () => {
    const out = new SmOutbound(writer());
    (out as unknown as { acked: number }).acked = 2 ** 32 - 1;
    out.track(stanza(1));
    out.track(stanza(2));
    assert.ok(out.receive(sm("a", { h: "1" })), "4294967295 → 1 acknowledges two");
    assert.equal(out.pending, 0);
  });
});

describe("SmInbound (a peer's stream to us)", () => {
  it("answers <enabled/>, acknowledges each burst unasked and every <r/>", async () => {
    const w = writer();
    const inbound = new SmInbound(w);
    assert.deepEqual(w.sent, ["<enabled xmlns='urn:xmpp:sm:3'/>"]);
    inbound.handled();
    inbound.handled();
    inbound.handled();
    await Promise.resolve();
    assert.deepEqual(w.sent.slice(1), ["<a xmlns='urn:xmpp:sm:3' h='3'/>"], "one ack for the burst");
    inbound.receive(sm("r"));
    assert.equal(w.sent.at(-1), "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    inbound.receive(sm("enable"));
    assert.match(w.sent.at(-1) ?? "", /^<failed xmlns='urn:xmpp:sm:3'><unexpected-request/);
  });
});

/** A component link as SmInbound sees it: flushes only when the test says so. */
class HeldSink {
  private waiting: (() => void)[] = [];
  afterFlush(done: () => void): void {
    this.waiting.push(done);
  }
  flush(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const done of waiting) done();
  }
}

describe("SmInbound: an ack never covers a stanza still in our memory", () => {
  it("acknowledges a burst handed to a sink only once the sink has flushed it", async () => {
    const w = writer();
    const inbound = new SmInbound(w);
    const sink = new HeldSink();
    for (let i = 0; i < 3; i++) {
      inbound.dependOn(sink);
      inbound.handled();
    }
    await Promise.resolve();
    assert.deepEqual(w.sent.slice(1), [], "not acknowledged while the sink holds them");
    inbound.receive(sm("r"));
    assert.deepEqual(w.sent.slice(1), ["<a xmlns='urn:xmpp:sm:3' h='0'/>"], "<r/> answered at once, with 0");
    sink.flush();
    assert.equal(w.sent.at(-1), "<a xmlns='urn:xmpp:sm:3' h='3'/>");
  });

  it("keeps h in order when a later burst's sink flushes first", async () => {
    const w = writer();
    const inbound = new SmInbound(w);
    const slow = new HeldSink();
    const fast = new HeldSink();
    inbound.dependOn(slow);
    inbound.handled();
    await Promise.resolve();
    inbound.dependOn(fast);
    inbound.handled();
    inbound.handled();
    await Promise.resolve();
    // A stanza no sink holds (bounced, or queued for another server) behind them.
    inbound.handled();
    await Promise.resolve();
    fast.flush();
    assert.deepEqual(w.sent.slice(1), [], "the first burst is still held");
    slow.flush();
    assert.deepEqual(w.sent.slice(1), ["<a xmlns='urn:xmpp:sm:3' h='4'/>"], "one ack, covering all four");
  });

  it("answers a flood of <r/> while a sink holds a burst without keeping anything per request", async () => {
    const w = writer();
    const inbound = new SmInbound(w);
    const sink = new HeldSink();
    inbound.dependOn(sink);
    inbound.handled();
    await Promise.resolve();
    for (let i = 0; i < 10_000; i++) inbound.receive(sm("r"));
    assert.equal(w.sent.length, 1 + 10_000, "each <r/> answered");
    assert.equal(w.sent.at(-1), "<a xmlns='urn:xmpp:sm:3' h='0'/>");
    assert.equal((inbound as unknown as { batches: unknown[] }).batches.length, 1, "one batch still waits");
    sink.flush();
    assert.equal(w.sent.at(-1), "<a xmlns='urn:xmpp:sm:3' h='1'/>");
  });
});
