/**
 * XEP-0114 components on the wire, as MongooseIM's `[[listen.service]]` options describe them: what a
 * component sees for a good or bad handshake, conflicts, spoofed `from`, slow reading, and what
 * senders get back when a component cannot take a stanza. Every stanza sent is accounted for.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { WirePeer, freePort } from "../helpers/wire.js";
import { COMPONENT_HEADER, connectComponent, digest, openComponent } from "../helpers/component.js";

const STREAM_ERROR = (condition: string): RegExp =>
  new RegExp(`<stream:error><${condition} xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/>`);
const STANZA_ERROR = (condition: string): RegExp =>
  new RegExp(`<${condition} xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]/>`);

const message = (from: string, to: string, body: string, id = "m1"): string =>
  `<message from='${from}' to='${to}' id='${id}'><body>${body}</body></message>`;

describe("XEP-0114 components", () => {
  let server: FerryServer;
  let main: number; // disconnect, check_from, access all
  let lenient: number; // kick_old, hidden, check_from = false, max_fsm_queue = 5
  let guarded: number; // access = "friends"

  before(async () => {
    [main, lenient, guarded] = [await freePort(), await freePort(), await freePort()];
    const { config } = loadConfigText(
      `[general]
hosts = ["a.example", "b.example"]
disco_items = ["rooms.elsewhere.example"]

[[listen.service]]
port = ${main}
ip_address = "127.0.0.1"
password = "secret"
state_timeout = 300

[[listen.service]]
port = ${lenient}
ip_address = "127.0.0.1"
password = "other"
conflict_behaviour = "kick_old"
hidden_components = true
check_from = false
max_fsm_queue = 5

[[listen.service]]
port = ${guarded}
ip_address = "127.0.0.1"
password = "p3"
access = "friends"

[access]
friends = ["svc.a.example"]
`,
      "components.toml",
    );
    server = await startServer(config, silentLogger);
  });

  after(async () => {
    await server.stop();
  });

  describe("handshake", () => {
    it("answers the header with from = the component's domain, a stream id and no version", async () => {
      const { peer, header, streamId } = await openComponent(main, "hs.a.example");
      assert.match(header, /xmlns=['"]jabber:component:accept['"]/);
      assert.match(header, /from=['"]hs\.a\.example['"]/);
      assert.doesNotMatch(header, /version=/);
      peer.send(`<handshake>${digest(streamId, "secret")}</handshake>`);
      await peer.waitFor(/<handshake\/>/);
      peer.destroy();
    });

    it("refuses a wrong secret with <not-authorized/>", async () => {
      const { peer, streamId } = await openComponent(main, "hs2.a.example");
      peer.send(`<handshake>${digest(streamId, "guess")}</handshake>`);
      await peer.waitFor(STREAM_ERROR("not-authorized"));
      await peer.waitClosed();
    });

    it("refuses a header without a domain with <host-unknown/>", async () => {
      const peer = await WirePeer.connect(main);
      peer.send(
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>",
      );
      await peer.waitFor(STREAM_ERROR("host-unknown"));
      await peer.waitClosed();
    });

    it("refuses a hosted domain with <conflict/>", async () => {
      const peer = await WirePeer.connect(main);
      peer.send(COMPONENT_HEADER("a.example"));
      await peer.waitFor(STREAM_ERROR("conflict"));
      await peer.waitClosed();
    });

    it("ends a session that never sends the handshake with <connection-timeout/>", async () => {
      const { peer } = await openComponent(main, "slow.a.example");
      await peer.waitFor(STREAM_ERROR("connection-timeout"), 2000);
      await peer.waitClosed();
    });
  });

  describe("routing", () => {
    it("round-trips messages between two components", async () => {
      const a = await connectComponent(main, "one.example", "secret");
      const b = await connectComponent(main, "two.example", "secret");
      a.send(message("alice@one.example/x", "bob@two.example", "hello &amp; welcome"));
      const got = await b.waitFor(/<\/message>/);
      assert.match(
        got,
        /<message from=['"]alice@one\.example\/x['"] to=['"]bob@two\.example['"] id=['"]m1['"]>/,
      );
      assert.match(got, /<body>hello &amp; welcome<\/body>/);
      b.send(message("bob@two.example", "alice@one.example/x", "hi back", "m2"));
      await a.waitFor(/<body>hi back<\/body>/);
      a.destroy();
      b.destroy();
    });

    it("check_from: a stanza from outside the component's domain gets an error and goes nowhere", async () => {
      const a = await connectComponent(main, "honest.example", "secret");
      const b = await connectComponent(main, "target.example", "secret");
      a.send(message("mallory@bank.example", "bob@target.example", "spoofed", "s1"));
      const got = await a.waitFor(/<\/message>/);
      assert.match(got, /type=['"]error['"]/);
      assert.match(got, STANZA_ERROR("bad-request"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(b.received, "", "the spoofed stanza was not routed");
      a.destroy();
      b.destroy();
    });

    it("check_from = false lets a component send for other domains", async () => {
      const a = await connectComponent(lenient, "gateway.example", "other");
      const b = await connectComponent(main, "dest.example", "secret");
      a.send(message("user@legacy.example", "bob@dest.example", "bridged"));
      await b.waitFor(/<body>bridged<\/body>/);
      a.destroy();
      b.destroy();
    });

    it("bounces with service-unavailable once a component is gone, and answers iq requests", async () => {
      const a = await connectComponent(main, "asker.example", "secret");
      const gone = await connectComponent(main, "gone.example", "secret");
      gone.end();
      await gone.waitClosed();
      a.send(message("a@asker.example", "x@gone.example", "anyone?"));
      a.send(
        "<iq type='get' id='q1' from='a@asker.example' to='gone.example'><query xmlns='jabber:iq:version'/></iq>",
      );
      await a.waitFor(/<\/iq>/);
      assert.match(a.received, /<message [^>]*type=['"]error['"][^>]*>[\s\S]*service-unavailable/);
      assert.match(
        a.received,
        /<iq [^>]*type=['"]error['"][^>]*id=['"]q1['"]|<iq [^>]*id=['"]q1['"][^>]*type=['"]error['"]/,
      );
      assert.equal(a.count(/<service-unavailable /g), 2);
      a.destroy();
    });

    it("is_subdomain: the component also serves <name>.<each hosted domain>", async () => {
      const muc = await connectComponent(main, "muc", "secret", " is_subdomain='true'");
      const a = await connectComponent(main, "client.example", "secret");
      a.send(message("a@client.example", "room@muc.b.example", "to the room"));
      await muc.waitFor(/to=['"]room@muc\.b\.example['"]/);
      muc.destroy();
      a.destroy();
    });

    it("access: only senders on the [access] list reach the component", async () => {
      const target = await connectComponent(guarded, "vault.example", "p3");
      const friend = await connectComponent(main, "svc.a.example", "secret");
      const stranger = await connectComponent(main, "stranger.example", "secret");
      friend.send(message("svc.a.example", "vault.example", "let me in"));
      stranger.send(message("x@stranger.example", "vault.example", "me too"));
      await target.waitFor(/let me in/);
      await stranger.waitFor(STANZA_ERROR("not-allowed"));
      assert.doesNotMatch(target.received, /me too/);
      for (const peer of [target, friend, stranger]) peer.destroy();
    });

    it("answers disco#items on a hosted domain with the visible components and disco_items", async () => {
      const visible = await connectComponent(main, "visible.example", "secret");
      const hidden = await connectComponent(lenient, "hidden.example", "other");
      visible.send(
        "<iq type='get' id='d1' from='visible.example' to='a.example'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
      );
      const got = await visible.waitFor(/<\/iq>/);
      assert.match(got, /type=['"]result['"]/);
      assert.match(got, /<item jid=['"]visible\.example['"]\/>/);
      assert.match(got, /<item jid=['"]rooms\.elsewhere\.example['"]\/>/);
      assert.doesNotMatch(got, /hidden\.example/);
      visible.destroy();
      hidden.destroy();
    });

    it("answers disco#info and ping on a hosted domain, service-unavailable for unknown requests", async () => {
      const c = await connectComponent(main, "prober.example", "secret");
      c.send(
        "<iq type='get' id='i1' from='prober.example' to='a.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
      );
      c.send(
        "<iq type='get' id='p1' from='prober.example' to='a.example'><ping xmlns='urn:xmpp:ping'/></iq>",
      );
      c.send(
        "<iq type='get' id='v1' from='prober.example' to='a.example'><query xmlns='jabber:iq:version'/></iq>",
      );
      await c.waitFor(/id=['"]v1['"][\s\S]*<\/iq>/);
      assert.match(c.received, /<identity category=['"]server['"] type=['"]im['"]/);
      assert.match(c.received, /<feature var=['"]urn:xmpp:ping['"]\/>/);
      assert.match(c.received, /<iq type=['"]result['"] id=['"]p1['"]/);
      assert.match(c.received, STANZA_ERROR("service-unavailable"));
      c.destroy();
    });

    it("answers an iq that breaks RFC 6120 §8.2.3 (no id, two payloads, none, an unknown type) with bad-request", async () => {
      const c = await connectComponent(main, "sloppy.example", "secret");
      const ping = "<ping xmlns='urn:xmpp:ping'/>";
      c.send(`<iq type='get' from='s@sloppy.example' to='a.example'>${ping}</iq>`);
      c.send(`<iq type='get' id='two' from='s@sloppy.example' to='a.example'>${ping}${ping}</iq>`);
      c.send(`<iq type='set' id='none' from='s@sloppy.example' to='a.example'/>`);
      c.send(`<iq type='bogus' id='bogus' from='s@sloppy.example' to='a.example'>${ping}</iq>`);
      c.send(`<iq type='get' id='fine' from='s@sloppy.example' to='a.example'>${ping}</iq>`);
      await c.waitFor(/id=['"]fine['"]/);
      const replies = c.received.split(/(?=<iq )/).filter((part) => part.startsWith("<iq "));
      const badRequest =
        /<error type=['"]modify['"]><bad-request xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]\/>/;
      assert.equal(replies.length, 5, c.received);
      const [noId, two, none, bogus, fine] = replies;
      assert.doesNotMatch(noId ?? "", /id=/, "no id to echo");
      assert.match(noId ?? "", /needs an id/);
      assert.match(two ?? "", /exactly one child element, not 2/);
      assert.match(none ?? "", /exactly one child element, not 0/);
      assert.match(bogus ?? "", /not 'bogus'/);
      for (const reply of [noId, two, none, bogus]) assert.match(reply ?? "", badRequest);
      assert.match(fine ?? "", /<iq type=['"]result['"] id=['"]fine['"]/);
      c.destroy();
    });

    it("answers a malformed 'to' with jid-malformed from the server, naming what it got", async () => {
      const c = await connectComponent(main, "typo.example", "secret");
      c.send(message("s@typo.example", "a@b@c", "hello?", "m1"));
      const got = await c.waitFor(/id=['"]m1['"][\s\S]*<\/message>/);
      assert.match(got, STANZA_ERROR("jid-malformed"));
      assert.match(got, /got 'a@b@c'/);
      assert.doesNotMatch(got, /from=['"]a@b@c['"]/, "an address that cannot exist sends nothing");
      c.destroy();
    });

    it("bounces a message to an account that does not exist, and to an unreachable remote domain", async () => {
      const c = await connectComponent(main, "sender.example", "secret");
      c.send(message("s@sender.example", "nobody@a.example", "hello?", "u1"));
      c.send(message("s@sender.example", "someone@far.example", "hello?", "r1"));
      await c.waitFor(/id=['"]r1['"][\s\S]*<\/message>/);
      await c.waitFor(/id=['"]u1['"][\s\S]*<\/message>/);
      assert.match(c.received, STANZA_ERROR("service-unavailable"));
      assert.match(c.received, STANZA_ERROR("remote-server-not-found"));
      c.destroy();
    });

    it("ends the stream with <unsupported-stanza-type/> on a non-stanza element", async () => {
      const c = await connectComponent(main, "odd.example", "secret");
      c.send("<foo/>");
      await c.waitFor(STREAM_ERROR("unsupported-stanza-type"));
      await c.waitClosed();
    });
  });

  describe("conflicts", () => {
    it("disconnect: the new connection gets <conflict/>, the old one keeps working", async () => {
      const first = await connectComponent(main, "dup.example", "secret");
      const { peer: second, streamId } = await openComponent(main, "dup.example");
      second.send(`<handshake>${digest(streamId, "secret")}</handshake>`);
      await second.waitFor(STREAM_ERROR("conflict"));
      await second.waitClosed();
      const sender = await connectComponent(main, "dupsender.example", "secret");
      sender.send(message("s@dupsender.example", "x@dup.example", "still there?"));
      await first.waitFor(/still there\?/);
      first.destroy();
      sender.destroy();
    });

    it("kick_old: the old connection gets <conflict/>, the new one takes over its queue; nothing is lost", async () => {
      const old = await connectComponent(lenient, "kick.example", "other");
      const sender = await connectComponent(main, "kicksender.example", "secret");
      old.pause();
      const total = 400;
      const body = "x".repeat(20_000);
      for (let i = 0; i < total; i++)
        sender.send(message("s@kicksender.example", "u@kick.example", body, `k${i}`));
      // Wait until Ferry has had to queue (and beyond max_fsm_queue, bounce) for the stalled component.
      await sender.waitFor(STANZA_ERROR("resource-constraint"), 10_000);
      const fresh = await connectComponent(lenient, "kick.example", "other");
      old.resume();
      await old.waitFor(STREAM_ERROR("conflict"), 10_000);
      await old.waitClosed();
      // Everything sent is now either with the old component, with the new one, or bounced.
      const accounted = (): number =>
        old.count(/<message /g) +
        fresh.count(/<message /g) +
        sender.count(/<message [^>]*type=['"]error['"]/g);
      const deadline = Date.now() + 10_000;
      while (accounted() < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(
        accounted(),
        total,
        `old ${old.count(/<message /g)}, new ${fresh.count(/<message /g)}, bounced ${sender.count(/<message [^>]*type=['"]error['"]/g)}`,
      );
      assert.ok(fresh.count(/<message /g) > 0, "the queued stanzas went to the new connection");
      fresh.destroy();
      sender.destroy();
    });
  });

  describe("max_fsm_queue", () => {
    it("bounces with resource-constraint beyond the queue of a component that stopped reading", async () => {
      const slow = await connectComponent(lenient, "slowreader.example", "other");
      const sender = await connectComponent(main, "flooder.example", "secret");
      slow.pause();
      const total = 400;
      const body = "y".repeat(20_000);
      for (let i = 0; i < total; i++)
        sender.send(message("s@flooder.example", "u@slowreader.example", body, `f${i}`));
      await sender.waitFor(STANZA_ERROR("resource-constraint"), 10_000);
      const bouncedWhileStalled = sender.count(/resource-constraint/g);
      assert.ok(bouncedWhileStalled > 0);
      slow.resume();
      const accounted = (): number =>
        slow.count(/<message /g) + sender.count(/<message [^>]*type=['"]error['"]/g);
      const deadline = Date.now() + 10_000;
      while (accounted() < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(accounted(), total, "every stanza was delivered or bounced");
      assert.ok(slow.count(/<message /g) > 5, "the component got what fitted its buffers and queue");
      slow.destroy();
      sender.destroy();
    });
  });
});
