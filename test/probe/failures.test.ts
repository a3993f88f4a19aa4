/**
 * Every way a probe fails has its stable code, its phase and a sentence: a closed port, a name that
 * does not resolve, a DNS failure, a server that accepts and never answers, one that sends garbage,
 * a client port, a stream error, a refused dialback. And scripted servers prove the details: the
 * stream id is the server's, the dialback key is XEP-0185's over it, a pre-1.0 server, a reply sent
 * on the probe stream itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dialbackKey } from "../../src/xmpp/dialback.js";
import { startFakeDns, type FakeDnsServer } from "../dns/fakeDnsServer.js";
import { freePort } from "../helpers/wire.js";
import { startFerry, startProber, type Prober, type RunningFerry } from "./probeFerry.js";
import { scriptedServer, serverHeader, type Scripted } from "./scriptedServer.js";

const SECRET = "probe-test-secret";

describe("probe failures and what the server really sent", () => {
  let dns: FakeDnsServer;
  let failingDns: FakeDnsServer;
  let prober: Prober;
  let brokenDnsProber: Prober;
  let target: RunningFerry;
  const scripts: Scripted[] = [];

  before(async () => {
    dns = await startFakeDns({ records: { "exists.example": [{ type: "A", address: "127.0.0.1" }] } });
    failingDns = await startFakeDns({ servfail: ["broken.example"] });
    prober = await startProber({ hosts: ["prober.example"], dnsServers: [dns.address], shared: SECRET });
    brokenDnsProber = await startProber({ hosts: ["prober.example"], dnsServers: [failingDns.address] });
    target = await startFerry({ hosts: ["target.example"] });
  });

  after(async () => {
    await Promise.all([
      prober.stop(),
      brokenDnsProber.stop(),
      target.stop(),
      dns.close(),
      failingDns.close(),
    ]);
    await Promise.all(scripts.map((s) => s.close()));
  });

  const script = async (step: Parameters<typeof scriptedServer>[0]): Promise<Scripted> => {
    const s = await scriptedServer(step);
    scripts.push(s);
    return s;
  };

  const connect = (body: Record<string, unknown>, p: Prober = prober) =>
    p.post("/api/xmpp-s2s/connect", {
      host: "127.0.0.1",
      fromDomain: "prober.example",
      toDomain: "target.example",
      useTLS: false,
      timeout: 2000,
      ...body,
    });

  it("a closed port: tcp_refused", async () => {
    const { status, json } = await connect({ port: await freePort() });
    assert.equal(status, 200);
    assert.equal(json.success, false);
    assert.equal(json.code, "tcp_refused");
    assert.equal(json.phase, "tcp");
    assert.match(String(json.error), /refused the connection/);
    assert.equal(typeof (json.timings as Record<string, number>).dns, "number");
  });

  it("a name that does not exist: dns_nxdomain", async () => {
    const { json } = await connect({ host: "nowhere.example", toDomain: "nowhere.example" });
    assert.equal(json.success, false);
    assert.equal(json.code, "dns_nxdomain");
    assert.equal(json.phase, "dns");
    assert.match(String(json.error), /nowhere\.example does not exist \(NXDOMAIN\)/);
    assert.ok(dns.queries.includes("A nowhere.example"), dns.queries.join(", "));
  });

  it("a name resolved through outgoing.dns.servers reaches the server", async () => {
    const { json } = await connect({ host: "exists.example", port: target.s2sPort });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.host, "exists.example");
    assert.equal(json.address, `127.0.0.1:${target.s2sPort}`);
  });

  it("a DNS server that fails: dns_error", async () => {
    const { json } = await connect({ host: "broken.example", toDomain: "broken.example" }, brokenDnsProber);
    assert.equal(json.code, "dns_error");
    assert.match(String(json.error), /SERVFAIL/);
  });

  it("a server that accepts and never answers: timeout, while waiting for the stream", async () => {
    const silent = await script(() => undefined);
    const started = Date.now();
    const { json } = await connect({ port: silent.port, timeout: 500 });
    assert.equal(json.success, false);
    assert.equal(json.code, "timeout");
    assert.equal(json.phase, "stream");
    assert.match(String(json.error), /within 500 ms \(waiting for the stream header and features\)/);
    assert.ok(Date.now() - started < 2000);
    // It was sent a proper stream header.
    assert.match(
      silent.received[0] ?? "",
      /<stream:stream xmlns='jabber:server'[^>]* from='prober\.example' to='target\.example' version='1\.0'>/,
    );
  });

  it("a server that sends garbage: stream_error:not-well-formed, and it gets that stream error", async () => {
    const garbage = await script((socket) => {
      socket.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    const { json } = await connect({ port: garbage.port });
    assert.equal(json.success, false);
    assert.equal(json.code, "stream_error:not-well-formed");
    assert.equal(json.phase, "stream");
    assert.match(String(json.error), /not an XMPP stream/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(
      garbage.received[0] ?? "",
      /<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><\/stream:error><\/stream:stream>$/,
    );
  });

  it("a client port: stream_error:invalid-namespace, said in words", async () => {
    const client = await script((socket) => {
      socket.write(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='c2s-1' from='target.example' version='1.0'>",
      );
    });
    const { json } = await connect({ port: client.port });
    assert.equal(json.code, "stream_error:invalid-namespace");
    assert.match(String(json.error), /this port serves clients, not servers/);
  });

  it("the server's own stream error: stream_error:<condition>", async () => {
    const { json } = await connect({ port: target.s2sPort, toDomain: "unknown.example" });
    assert.equal(json.success, false);
    assert.equal(json.code, "stream_error:host-unknown");
    assert.match(String(json.error), /<host-unknown\/>/);
  });

  it("the stream id reported is exactly the server's, and each stream has its own", async () => {
    const server = await script((socket, received, connection) => {
      const state = socket as { answered?: boolean };
      if (state.answered !== true && received.includes("<stream:stream")) {
        state.answered = true;
        socket.write(
          serverHeader(`scripted-${connection + 1}-x7Q`, "target.example", "prober.example") +
            "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/><sm xmlns='urn:xmpp:sm:3'/>" +
            "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms>" +
            "</stream:features>",
        );
      }
    });
    const first = await connect({ port: server.port });
    const second = await connect({ port: server.port });
    assert.equal(first.json.streamId, "scripted-1-x7Q");
    assert.equal(second.json.streamId, "scripted-2-x7Q");
    assert.deepEqual(first.json.features, ["DIALBACK", "SM", "SASL-SCRAM-SHA-1"]);
  });

  it("a pre-XMPP-1.0 server: no features, no version", async () => {
    const old = await script((socket, received) => {
      const state = socket as { answered?: boolean };
      if (state.answered !== true && received.includes("<stream:stream")) {
        state.answered = true;
        socket.write(serverHeader("old-1", "target.example", "prober.example", null));
      }
    });
    const { json } = await connect({ port: old.port });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.streamId, "old-1");
    assert.deepEqual(json.features, []);
  });

  it("ping: the dialback key is XEP-0185's over the server's stream id, and a reply on the probe stream counts", async () => {
    const streamId = "scripted-ping-9Fz";
    const server = await script((socket, received) => {
      const state = socket as { step?: number };
      state.step ??= 0;
      if (state.step === 0 && received.includes("<stream:stream")) {
        state.step = 1;
        socket.write(
          serverHeader(streamId, "target.example", "prober.example") +
            "<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>",
        );
      }
      if (state.step === 1 && /<db:result[^>]*>[^<]+<\/db:result>/.test(received)) {
        state.step = 2;
        socket.write("<db:result from='target.example' to='prober.example' type='valid'/>");
      }
      const iq = /<iq [^>]*id='([^']+)'/.exec(received);
      if (state.step === 2 && iq !== null) {
        state.step = 3;
        socket.write(`<iq type='result' id='${iq[1] ?? ""}' from='target.example' to='prober.example'/>`);
      }
    });
    const { json } = await prober.post("/api/xmpp-s2s/ping", {
      host: "127.0.0.1",
      port: server.port,
      fromDomain: "prober.example",
      toDomain: "target.example",
      useTLS: false,
      timeout: 3000,
    });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.streamId, streamId);
    const key = dialbackKey(SECRET, "target.example", "prober.example", streamId);
    assert.match(
      server.received[0] ?? "",
      new RegExp(`<db:result from='prober\\.example' to='target\\.example'>${key}</db:result>`),
    );
    assert.match(
      server.received[0] ?? "",
      /<iq type='get' id='probe-[0-9a-f]{24}' from='prober\.example' to='target\.example'><ping xmlns='urn:xmpp:ping'\/><\/iq>/,
    );
    assert.match(
      (json.stanzas as string[])[0]!,
      /^<iq type='result' id='probe-[0-9a-f]{24}' from='target\.example' to='prober\.example'\/>$/,
    );
    // The stream was closed politely.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(server.received[0] ?? "", /<\/stream:stream>$/);
  });

  it("ping: a dialback error answer is dialback_error", async () => {
    const server = await script((socket, received) => {
      const state = socket as { step?: number };
      state.step ??= 0;
      if (state.step === 0 && received.includes("<stream:stream")) {
        state.step = 1;
        socket.write(
          serverHeader("db-err", "target.example", "prober.example") +
            "<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>",
        );
      }
      if (state.step === 1 && received.includes("</db:result>")) {
        state.step = 2;
        socket.write(
          "<db:result from='target.example' to='prober.example' type='error'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
        );
      }
    });
    const { json } = await prober.post("/api/xmpp-s2s/ping", {
      host: "127.0.0.1",
      port: server.port,
      toDomain: "target.example",
      useTLS: false,
      timeout: 3000,
    });
    assert.equal(json.code, "dialback_error");
    assert.match(String(json.error), /<remote-server-not-found\/>/);
  });
});
