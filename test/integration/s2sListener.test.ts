/**
 * What a remote server sees on the wire when it connects to Ferry's S2S listener: the bytes Ferry
 * answers with for good and bad stream headers and for input RFC 6120 forbids.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { S2S_HEADER, WirePeer, freePort } from "../helpers/wire.js";

describe("S2S listener on the wire", () => {
  let server: FerryServer;
  let port: number;

  before(async () => {
    port = await freePort();
    const { config } = loadConfigText(
      `[general]
hosts = ["a.example", "b.example"]

[[listen.s2s]]
port = ${port}
ip_address = "127.0.0.1"
max_stanza_size = 65536
state_timeout = 300
`,
      "test.toml",
    );
    server = await startServer(config, silentLogger);
  });

  after(async () => {
    await server.stop();
  });

  it("answers a jabber:server header with its header and features offering dialback", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("a.example", "remote.example"));
    const got = await peer.waitFor(/<\/stream:features>/);
    const header = /<stream:stream [^>]*>/.exec(got)?.[0] ?? "";
    assert.match(header, /xmlns=['"]jabber:server['"]/);
    assert.match(header, /xmlns:stream=['"]http:\/\/etherx\.jabber\.org\/streams['"]/);
    assert.match(header, /xmlns:db=['"]jabber:server:dialback['"]/);
    assert.match(header, /from=['"]a\.example['"]/);
    assert.match(header, /to=['"]remote\.example['"]/);
    assert.match(header, /version=['"]1\.0['"]/);
    assert.match(header, /id=['"][0-9a-f]{32}['"]/);
    assert.match(got, /<dialback xmlns=['"]urn:xmpp:features:dialback['"]><errors\/><\/dialback>/);
    assert.doesNotMatch(got, /starttls/, "no STARTTLS offered without a certificate");
    peer.send("</stream:stream>");
    await peer.waitFor(/<\/stream:stream>$/);
    await peer.waitClosed();
  });

  it("answers a pre-1.0 (dialback-only) peer without version and without features", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("a.example", "remote.example", null));
    const got = await peer.waitFor(/<stream:stream [^>]*>/);
    assert.doesNotMatch(got, /<stream:stream [^>]*version=/);
    // Anything more would have come in the same write batch as the header.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.doesNotMatch(peer.received, /stream:features/);
    peer.destroy();
  });

  it("parses a UTF-8 character split across two TCP segments", async () => {
    const peer = await WirePeer.connect(port);
    const header = Buffer.from(S2S_HEADER("a.example", "r\u00e9mote.example"));
    const cut = header.indexOf(0xc3) + 1; // inside the two bytes of "é"
    peer.send(header.subarray(0, cut));
    await new Promise((resolve) => setTimeout(resolve, 50));
    peer.send(header.subarray(cut));
    const got = await peer.waitFor(/<\/stream:features>/);
    assert.match(got, /to=['"]r\u00e9mote\.example['"]/);
    peer.destroy();
  });

  it("gives every stream a different id", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const peer = await WirePeer.connect(port);
      peer.send(S2S_HEADER("b.example", "remote.example"));
      const got = await peer.waitFor(/<stream:features/);
      ids.add(/ id=['"]([^'"]+)['"]/.exec(got)?.[1] ?? "");
      peer.destroy();
    }
    assert.equal(ids.size, 3);
  });

  it("answers a domain it does not serve with a header, then <host-unknown/>", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("nobody.example", "remote.example"));
    const got = await peer.waitFor(/<\/stream:stream>/);
    assert.match(got, /^<\?xml version=['"]1\.0['"]\?><stream:stream /);
    assert.match(got, /<stream:error><host-unknown xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
    await peer.waitClosed();
  });

  it("ends the stream with <restricted-xml/> on a comment", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("a.example", "remote.example"));
    await peer.waitFor(/<\/stream:features>/);
    peer.send("<!-- hello -->");
    const got = await peer.waitFor(/<\/stream:stream>/);
    assert.match(got, /<restricted-xml xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
    await peer.waitClosed();
  });

  it("ends the stream with <not-well-formed/> on broken XML", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("a.example", "remote.example"));
    await peer.waitFor(/<\/stream:features>/);
    peer.send("<message><body></message>");
    const got = await peer.waitFor(/<\/stream:stream>/);
    assert.match(got, /<not-well-formed xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
  });

  it("ends the stream with <policy-violation/> on a stanza over max_stanza_size", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("a.example", "remote.example"));
    await peer.waitFor(/<\/stream:features>/);
    peer.send(`<message><body>${"x".repeat(100_000)}</body></message>`);
    const got = await peer.waitFor(/<\/stream:stream>/);
    assert.match(got, /<policy-violation xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
  });

  it("ends the stream with <not-authorized/> on a stanza before authentication", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("a.example", "remote.example"));
    await peer.waitFor(/<\/stream:features>/);
    peer.send("<message from='u@remote.example' to='v@a.example'><body>hi</body></message>");
    const got = await peer.waitFor(/<\/stream:stream>/);
    assert.match(got, /<not-authorized xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
  });

  it("times out a connection that sends no header within state_timeout", async () => {
    const peer = await WirePeer.connect(port);
    const got = await peer.waitFor(/<\/stream:stream>/, 2000);
    assert.match(got, /<connection-timeout xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
    await peer.waitClosed();
  });

  it("closes every open stream with <system-shutdown/> when stopped", async () => {
    const extraPort = await freePort();
    const { config } = loadConfigText(
      `[general]\nhosts = ["a.example"]\n[[listen.s2s]]\nport = ${extraPort}\nip_address = "127.0.0.1"\n`,
      "shutdown.toml",
    );
    const other = await startServer(config, silentLogger);
    const peers = await Promise.all([WirePeer.connect(extraPort), WirePeer.connect(extraPort)]);
    for (const peer of peers) peer.send(S2S_HEADER("a.example", "remote.example"));
    for (const peer of peers) await peer.waitFor(/<\/stream:features>/);
    const started = Date.now();
    await other.stop();
    assert.ok(Date.now() - started < 2000);
    for (const peer of peers) {
      assert.match(peer.received, /<system-shutdown xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
      assert.match(peer.received, /<\/stream:stream>$/);
      await peer.waitClosed();
    }
    await assert.rejects(WirePeer.connect(extraPort), "the listener is closed");
  });
});
