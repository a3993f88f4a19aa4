/**
 * Issue 10, peer faults, each counted stanza by stanza: a component hands Ferry N stanzas for a
 * remote domain whose server misbehaves — it never answers TCP, accepts and never sends a byte,
 * stops mid-dialback, stops reading, closes without `</stream:stream>`, or its DNS times out.
 * Each stanza must be delivered (the fake peer saw it and acknowledged it, XEP-0198) or bounced to
 * its sender with a remote-server error (RFC 6120 §8.3.3): delivered + bounced = N, none twice.
 * Then the peer behaves again and the link comes back by itself.
 */
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawn } from "node:child_process";
import v8 from "node:v8";
import vm from "node:vm";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { freePort, type WirePeer } from "../helpers/wire.js";
import { connectComponent } from "../helpers/component.js";
import { startFakeDns, type FakeDnsServer } from "../dns/fakeDnsServer.js";

const N = 300;

/** A full garbage collection, then the heap in use (V8's gc exposed for this measurement only). */
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

function heapAfterGc(): number {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  // V8 keeps the last regexp subject alive (RegExp.input); the test's own scan of 12 MB of bounces
  // would be counted as Ferry's heap.
  /x/.exec("x");
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
type Mode = "well" | "silent" | "midDialback" | "stopReading" | "dropAfter";

/**
 * A remote S2S server for `remote.test` whose behaviour can be switched: "well" answers dialback
 * at once (no verification: it is the receiving side and trusts us) and acknowledges every stanza
 * with XEP-0198; the others misbehave as named.
 */
class FakePeer {
  mode: Mode = "well";
  readonly received = new Set<string>();
  private readonly server = net.createServer((socket) => {
    this.serve(socket);
  });
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  close(): void {
    this.switchTo("well");
    this.server.close();
  }

  /** New connections behave as `mode`; the current ones are cut (after their last acks). */
  switchTo(mode: Mode): void {
    this.mode = mode;
    for (const s of this.sockets) s.destroy();
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.setEncoding("utf8");
    const mode = this.mode;
    if (mode === "silent") return; // accepts TCP, never sends a byte
    let buffer = "";
    let handled = 0;
    let opened = false;
    let authorized = false;
    let smOn = false;
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      if (!opened && buffer.includes("<stream:stream")) {
        opened = true;
        socket.write(
          "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
            "xmlns:db='jabber:server:dialback' id='fake-1' version='1.0'><stream:features>" +
            "<dialback xmlns='urn:xmpp:features:dialback'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>",
        );
      }
      if (mode === "midDialback") return; // got our db:result, never answers
      const result =
        /<db:result [^>]*from=['"]([^'"]+)['"][^>]*to=['"]([^'"]+)['"][^>]*>[^<]*<\/db:result>/.exec(buffer);
      if (result && !authorized) {
        authorized = true;
        socket.write(`<db:result from='${result[2] ?? ""}' to='${result[1] ?? ""}' type='valid'/>`);
      }
      if (!smOn && buffer.includes("<enable xmlns='urn:xmpp:sm:3'/>")) {
        smOn = true;
        socket.write("<enabled xmlns='urn:xmpp:sm:3'/>");
      }
      // Count each stanza once, and acknowledge what was counted (cut the handled text away).
      let match: RegExpExecArray | null;
      const stanza = /<message [^>]*id=['"]s(\d+)['"][^>]*>.*?<\/message>/g;
      let consumed = 0;
      while ((match = stanza.exec(buffer)) !== null) {
        this.received.add(match[1] ?? "");
        handled++;
        consumed = stanza.lastIndex;
        if (mode === "dropAfter" && handled === N / 3) {
          socket.write(`<a xmlns='urn:xmpp:sm:3' h='${handled}'/>`);
          socket.destroy(); // no </stream:stream>
          return;
        }
        if (mode === "stopReading" && handled === N / 3) {
          socket.write(`<a xmlns='urn:xmpp:sm:3' h='${handled}'/>`);
          socket.pause(); // never reads again; its acks stop too
          return;
        }
      }
      if (consumed > 0) {
        // Keep only what follows the last whole stanza (a stanza cut by the TCP read stays whole).
        buffer = buffer.slice(consumed);
        socket.write(`<a xmlns='urn:xmpp:sm:3' h='${handled}'/>`);
      }
    });
  }
}

/**
 * A TCP port that never completes a handshake: a listener (outside Node, which accepts at once)
 * that never calls accept(), whose queue is kept full, so the kernel drops further SYNs.
 */
async function blackHole(): Promise<{ port: number; close: () => void }> {
  const child = spawn(
    "python3",
    [
      "-c",
      "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)",
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const port = await new Promise<number>((resolve) => {
    child.stdout.once("data", (d: Buffer) => {
      resolve(Number(d.toString().trim()));
    });
  });
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 4; i++) fillers.push(net.connect(port, "127.0.0.1").on("error", () => undefined));
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    port,
    close: () => {
      for (const f of fillers) f.destroy();
      child.kill("SIGKILL");
    },
  };
}

describe("peer faults: every stanza delivered or bounced, and the link recovers", () => {
  let ferry: FerryServer;
  let sender: WirePeer;
  let peer: FakePeer;
  let dns: FakeDnsServer;
  let hole: Awaited<ReturnType<typeof blackHole>>;
  let batch = 0;
  let baseline = 0;

  before(async () => {
    peer = new FakePeer();
    await peer.listen();
    hole = await blackHole();
    dns = await startFakeDns({ silent: true });
    const comp = await freePort();
    ferry = await startServer(
      loadConfigText(
        `[general]
hosts = ["local.test"]
[[listen.s2s]]
port = ${await freePort()}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${comp}
ip_address = "127.0.0.1"
password = "secret"
[s2s]
outgoing.connection_timeout = 600
outgoing.state_timeout = 600
outgoing.max_retry_delay = 1
outgoing.stream_timeout = 2000
outgoing.dns.servers = ["${dns.address}"]
outgoing.dns.timeout = 1
outgoing.dns.retries = 1
outgoing.address = [
  {host = "remote.test", ip_address = "127.0.0.1", port = ${peer.port}},
  {host = "hole.test", ip_address = "127.0.0.1", port = ${hole.port}},
]
`,
        "faults.toml",
      ).config,
      silentLogger,
    );
    sender = await connectComponent(comp, "svc.local.test", "secret");
    // The link up once, so that the baseline includes a live connection, as the end will.
    sender.send(`<message from='a@svc.local.test' to='b@remote.test' id='s999999'><body/></message>`);
    while (!peer.received.has("999999")) await new Promise((resolve) => setTimeout(resolve, 20));
    baseline = heapAfterGc();
  });

  after(async () => {
    sender.destroy();
    peer.close();
    hole.close();
    await dns.close();
    await ferry.stop();
  });

  /** Sends N stanzas to `domain`; resolves with what was delivered and bounced once all are accounted. */
  async function run(
    domain: string,
    t: TestContext,
  ): Promise<{ delivered: string[]; bounced: string[]; conditions: Set<string> }> {
    // Let Ferry see a cut connection end before the next stanzas come.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return runNow(domain, t);
  }

  async function runNow(
    domain: string,
    t: TestContext,
  ): Promise<{ delivered: string[]; bounced: string[]; conditions: Set<string> }> {
    const first = batch * N;
    batch++;
    peer.received.clear();
    sender.received = "";
    let xml = "";
    for (let i = first; i < first + N; i++)
      xml += `<message from='a@svc.local.test' to='b@${domain}' id='s${i}'><body>${i}</body></message>`;
    sender.send(xml);
    const ids = Array.from({ length: N }, (_, k) => String(first + k));
    const until = Date.now() + 15_000;
    let peakRss = 0;
    for (;;) {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      const bounced = [...sender.received.matchAll(/<message [^>]*id='s(\d+)'[^>]*type='error'/g)].map(
        (m) => m[1] ?? "",
      );
      const delivered = ids.filter((id) => peer.received.has(id));
      const accounted = new Set([...delivered, ...bounced]);
      if (ids.every((id) => accounted.has(id)) || Date.now() > until) {
        const conditions = new Set(
          [...sender.received.matchAll(/<(remote-server-[a-z-]+|resource-constraint) xmlns/g)].map(
            (m) => m[1] ?? "",
          ),
        );
        const lost = ids.filter((id) => !accounted.has(id));
        t.diagnostic(
          `sent ${N}, delivered ${delivered.length}, bounced ${bounced.length} (${[...conditions].join(", ") || "-"}), ` +
            `lost ${lost.length}; peak RSS of this process (Ferry and the test) ${mib(peakRss)} MiB`,
        );
        assert.deepEqual(lost.slice(0, 10), [], `${lost.length} of ${N} lost`);
        assert.equal(new Set(bounced).size, bounced.length, "none bounced twice");
        assert.deepEqual(
          delivered.filter((id) => bounced.includes(id)),
          [],
          "none both delivered and bounced",
        );
        return { delivered, bounced, conditions };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The peer behaves again: a new stanza gets through without anyone's help. */
  async function recovers(): Promise<void> {
    peer.switchTo("well");
    const until = Date.now() + 10_000;
    for (let i = 0; ; i++) {
      sender.send(
        `<message from='a@svc.local.test' to='b@remote.test' id='s${900_000 + i}'><body/></message>`,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      if ([...peer.received].length > 0) return;
      assert.ok(Date.now() < until, "the link did not come back by itself");
    }
  }

  it("a well-behaved peer gets all of them (the baseline)", async (t) => {
    const { delivered, bounced } = await run("remote.test", t);
    assert.equal(delivered.length, N);
    assert.equal(bounced.length, 0);
  });

  it("never answers TCP: bounced with remote-server-timeout after connection_timeout", async (t) => {
    const { delivered, bounced, conditions } = await run("hole.test", t);
    assert.equal(delivered.length, 0);
    assert.equal(bounced.length, N);
    assert.deepEqual([...conditions], ["remote-server-timeout"]);
  });

  it("accepts TCP and never sends a byte: bounced after state_timeout, then recovers", async (t) => {
    peer.switchTo("silent");
    const { bounced, conditions } = await run("remote.test", t);
    assert.equal(bounced.length, N);
    assert.deepEqual([...conditions], ["remote-server-timeout"]);
    await recovers();
  });

  it("stops mid-dialback: bounced after state_timeout, then recovers", async (t) => {
    peer.switchTo("midDialback");
    const { bounced } = await run("remote.test", t);
    assert.equal(bounced.length, N);
    await recovers();
  });

  it("closes without </stream:stream> after a third: the acknowledged are delivered, the rest resent or bounced", async (t) => {
    peer.switchTo("dropAfter");
    const { delivered, bounced } = await run("remote.test", t);
    assert.ok(delivered.length >= N / 3, `${delivered.length} delivered`);
    assert.equal(delivered.length + bounced.length, N);
    await recovers();
  });

  it("stops reading after a third: the unacknowledged come back when the idle stream is closed", async (t) => {
    peer.switchTo("stopReading");
    const { delivered, bounced } = await run("remote.test", t);
    assert.ok(delivered.length >= N / 3, `${delivered.length} delivered`);
    assert.equal(delivered.length + bounced.length, N);
    await recovers();
  });

  it("its DNS times out: bounced with remote-server-not-found or -timeout", async (t) => {
    const { bounced, conditions } = await run("unresolvable.test", t);
    assert.equal(bounced.length, N);
    assert.ok(
      [...conditions].every((c) => c.startsWith("remote-server-")),
      [...conditions].join(),
    );
  });

  it("a component flooding a remote that stopped reading: held, bounded, then every stanza accounted for", async (t) => {
    const FLOOD = 50_000;
    const first = 2_000_000;
    peer.switchTo("stopReading");
    await new Promise((resolve) => setTimeout(resolve, 200));
    peer.received.clear();
    sender.received = "";
    const parts: string[] = [];
    for (let i = first; i < first + FLOOD; i++)
      parts.push(
        `<message from='a@svc.local.test' to='b@remote.test' id='s${i}'><body>${i}</body></message>`,
      );
    sender.send(parts.join(""));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Bounded: the outgoing queue (10,000 stanzas at most), the ack window (1,000) and what the
    // sockets hold (the component's own unsent bytes, about 4 MB, are in this process too).
    const growth = heapAfterGc() - baseline;
    const floodRss = process.memoryUsage.rss();
    assert.ok(
      growth < 48 * 1024 * 1024,
      `heap grew by ${Math.round(growth / 1024 / 1024)} MiB during the flood`,
    );
    peer.switchTo("well");
    const ids = Array.from({ length: FLOOD }, (_, k) => String(first + k));
    const until = Date.now() + 60_000;
    let bounced: string[];
    for (;;) {
      bounced = [...sender.received.matchAll(/<message [^>]*id='s(\d+)'[^>]*type='error'/g)].map(
        (m) => m[1] ?? "",
      );
      const accounted = new Set([...bounced, ...ids.filter((id) => peer.received.has(id))]);
      if (accounted.size >= FLOOD || Date.now() > until) {
        const missing = ids.filter((id) => !accounted.has(id));
        assert.equal(
          accounted.size,
          FLOOD,
          `${FLOOD - accounted.size} of ${FLOOD} lost, e.g. ${missing.slice(0, 12).join(", ")}`,
        );
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const conditions = new Set(
      [...sender.received.matchAll(/<([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/>/g)].map(
        (m) => m[1],
      ),
    );
    for (const c of conditions)
      assert.ok(c === "resource-constraint" || c?.startsWith("remote-server-"), String(c));
    assert.equal(new Set(bounced).size, bounced.length, "none bounced twice");
    t.diagnostic(
      `sent ${FLOOD}, delivered ${FLOOD - bounced.length}, bounced ${bounced.length} (${[...conditions].join(", ") || "-"}), lost 0; ` +
        `heap +${mib(growth)} MiB while held, RSS ${mib(floodRss)} MiB (Ferry and the test)`,
    );
    sender.received = "";
    peer.received.clear();
  });

  it("returns to its memory baseline once the faults are over", async (t) => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    sender.received = "";
    const growth = heapAfterGc() - baseline;
    t.diagnostic(`heap ${Math.round(growth / 1024)} KiB above the baseline after the faults`);
    assert.ok(growth < 8 * 1024 * 1024, `heap grew by ${Math.round(growth / 1024)} KiB`);
  });
});
