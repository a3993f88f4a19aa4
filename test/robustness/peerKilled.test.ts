/**
 * Issue 10, peer faults: the remote server (a Ferry in its own process) is SIGKILLed while 5,000
 * stanzas are queued and in flight. With XEP-0198 acks on the S2S stream, every stanza the sender
 * handed Ferry is delivered (once) or bounced to its sender with a remote-server error
 * (RFC 6120 §8.3.3) — counted one by one — and the link comes back by itself when the peer does.
 * Without the acks, the stanzas written to the socket just before the kill would vanish; and
 * without B acknowledging only what has left its memory (receiverAcks.test.ts), so would those B
 * had acknowledged while they still waited to be written to its component (seen on a loaded CI).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { WirePeer, freePort } from "../helpers/wire.js";
import { connectComponent } from "../helpers/component.js";
import { SM_WINDOW } from "../../src/s2s/streamManagement.js";

const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));
const TOTAL = 5000;

const message = (i: number): string =>
  `<message from='alice@svc.a.test' to='bob@svc.b.test' id='m${i}'><body>${i}</body></message>`;

/** Every id in `text` matching `pattern` (first capture group), in order. */
function ids(text: string, pattern: RegExp): string[] {
  return [...text.matchAll(pattern)].map((m) => m[1] ?? "");
}

describe("peer killed mid-stream with 5,000 stanzas queued and in flight", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-killed-"));
  let a: FerryServer;
  let b: ChildProcess | undefined;
  let bS2s = 0;
  let bComp = 0;
  let sender: WirePeer;
  let bConfig = "";

  function startB(): ChildProcess {
    const child = spawn(process.execPath, [CLI, "--config", bConfig], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr.resume();
    return child;
  }

  before(async () => {
    const [aS2s, aComp] = [await freePort(), await freePort()];
    [bS2s, bComp] = [await freePort(), await freePort()];
    a = await startServer(
      loadConfigText(
        `[general]
hosts = ["a.test"]
[[listen.s2s]]
port = ${aS2s}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${aComp}
ip_address = "127.0.0.1"
password = "secret"
[s2s]
outgoing.connection_timeout = 1000
outgoing.max_retry_delay = 1
outgoing.address = [{host = "svc.b.test", ip_address = "127.0.0.1", port = ${bS2s}}]
`,
        "a.toml",
      ).config,
      silentLogger,
    );
    bConfig = path.join(dir, "b.toml");
    writeFileSync(
      bConfig,
      `[general]
hosts = ["b.test"]
loglevel = "warning"
[[listen.s2s]]
port = ${bS2s}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${bComp}
ip_address = "127.0.0.1"
password = "secret"
[s2s]
outgoing.address = [{host = "svc.a.test", ip_address = "127.0.0.1", port = ${aS2s}}]
`,
    );
    sender = await connectComponent(aComp, "svc.a.test", "secret");
  });

  after(async () => {
    b?.kill("SIGKILL");
    sender.destroy();
    await a.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("delivers or bounces every stanza (none lost, none delivered twice), and the link recovers", async (t) => {
    b = startB();
    const receiver = await WirePeer.connectWhenListening(bComp, () => "Ferry B did not start");
    receiver.destroy();
    const bob = await connectComponent(bComp, "svc.b.test", "secret");
    // Warm the link up, so that the kill hits a live stream with stanzas in flight.
    sender.send(message(0));
    await bob.waitFor(/id='m0'/, 10_000);
    let batch = "";
    for (let i = 1; i <= TOTAL; i++) batch += message(i);
    sender.send(batch);
    await bob.waitFor(/id='m1000'/, 10_000);
    b.kill("SIGKILL");
    await new Promise((resolve) => b?.once("exit", resolve));
    // Every stanza: delivered before the kill, or bounced once the link gave up.
    const settled = async (): Promise<{ delivered: string[]; bounced: string[] }> => {
      const until = Date.now() + 20_000;
      for (;;) {
        const delivered = ids(bob.received, /<message [^>]*id='m(\d+)'/g).filter((id) => id !== "0");
        const bounced = ids(sender.received, /<message [^>]*id='m(\d+)'[^>]*type='error'/g);
        if (delivered.length + bounced.length >= TOTAL || Date.now() > until) return { delivered, bounced };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const { delivered, bounced } = await settled();
    assert.equal(new Set(delivered).size, delivered.length, "no stanza delivered twice");
    assert.equal(new Set(bounced).size, bounced.length, "no stanza bounced twice");
    const accounted = new Set([...delivered, ...bounced]);
    const lost = Array.from({ length: TOTAL }, (_, n) => String(n + 1)).filter((id) => !accounted.has(id));
    assert.deepEqual(lost, [], "nothing lost: every stanza was delivered or bounced");
    // Acks the peer sent just before dying can be discarded with its connection (its RST drops
    // what we had not read yet): such stanzas were delivered and, unacknowledged, bounced too.
    // XEP-0198 without resumption cannot tell; the window of unacknowledged stanzas bounds them.
    const both = delivered.filter((id) => bounced.includes(id));
    t.diagnostic(
      `sent ${TOTAL}, delivered ${delivered.length}, bounced ${bounced.length}, both ${both.length}, ` +
        `lost ${lost.length}; RSS of this process (Ferry A and the test) ${(process.memoryUsage.rss() / 1048576).toFixed(1)} MiB`,
    );
    assert.ok(both.length <= SM_WINDOW, `${both.length} both delivered and bounced (window ${SM_WINDOW})`);
    assert.ok(bounced.length > 0, "the kill left stanzas to bounce");
    assert.match(
      sender.received,
      /<remote-server-(timeout|not-found) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/>/,
    );
    // Delivered in order (what was delivered is a prefix-ordered sequence).
    const numbers = delivered.map(Number);
    assert.deepEqual(
      numbers,
      [...numbers].sort((x, y) => x - y),
      "delivered in order",
    );

    // The peer comes back: the queue's retry (max_retry_delay = 1 s) finds it, with no operator.
    bob.destroy();
    b = startB();
    const probe = await WirePeer.connectWhenListening(bComp, () => "Ferry B did not restart");
    probe.destroy();
    const bob2 = await connectComponent(bComp, "svc.b.test", "secret");
    const until = Date.now() + 15_000;
    while (!/id='again'/.test(bob2.received)) {
      assert.ok(Date.now() < until, "the link came back");
      sender.send(
        `<message from='alice@svc.a.test' to='bob@svc.b.test' id='again'><body>back</body></message>`,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    bob2.destroy();
  });
});
