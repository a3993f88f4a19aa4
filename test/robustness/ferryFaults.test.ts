/**
 * Issue 10, Ferry's own faults: an actor that throws is restarted by the router while every other
 * link keeps working; SIGTERM while links are busy drains — each queued stanza is delivered or
 * bounced to its sender before the streams close with `</stream:stream>`, within
 * `general.shutdown_timeout`, and the process exits 0.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setup } from "xstate";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { WirePeer, freePort } from "../helpers/wire.js";
import { connectComponent } from "../helpers/component.js";

const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

/** An S2S peer that opens its stream, offers dialback, then never answers: stanzas stay queued. */
async function mutePeer(): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.once("data", () => {
      socket.write(
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
          "xmlns:db='jabber:server:dialback' id='mute' version='1.0'><stream:features>" +
          "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function serverConfig(
  host: string,
  s2s: number,
  comp: number,
  routes: Record<string, number>,
  extra = "",
): string {
  const overrides = Object.entries(routes)
    .map(([domain, port]) => `{host = "${domain}", ip_address = "127.0.0.1", port = ${port}}`)
    .join(", ");
  return `[general]
hosts = ["${host}"]
loglevel = "notice"
${extra}
[[listen.s2s]]
port = ${s2s}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${comp}
ip_address = "127.0.0.1"
password = "secret"
[s2s]
outgoing.state_timeout = 60000
outgoing.address = [${overrides}]
`;
}

describe("Ferry's own faults", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-faults-"));
  let b: FerryServer;
  let bob: WirePeer;
  let mute: Awaited<ReturnType<typeof mutePeer>>;
  const ports = { aS2s: 0, aComp: 0, bS2s: 0, bComp: 0 };

  before(async () => {
    mute = await mutePeer();
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
    b = await startServer(
      loadConfigText(serverConfig("b.test", ports.bS2s, ports.bComp, { "svc.a.test": ports.aS2s }), "b.toml")
        .config,
      silentLogger,
    );
    bob = await connectComponent(ports.bComp, "svc.b.test", "secret");
  });

  after(async () => {
    bob.destroy();
    mute.close();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("an actor that throws is restarted by the router; the other links keep working", async () => {
    const a = await startServer(
      loadConfigText(serverConfig("a.test", ports.aS2s, ports.aComp, { "svc.b.test": ports.bS2s }), "a.toml")
        .config,
      silentLogger,
    );
    try {
      const alice = await connectComponent(ports.aComp, "svc.a.test", "secret");
      alice.send("<message from='x@svc.a.test' to='y@svc.b.test' id='before'><body>before</body></message>");
      await bob.waitFor(/id='before'/, 10_000);
      // The injected fault: a supervised, restartable actor whose action throws on CRASH.
      let starts = 0;
      const crashy = setup({ types: { events: {} as { type: "CRASH" } } }).createMachine({
        id: "crashy",
        entry: () => {
          starts++;
        },
        on: {
          CRASH: {
            actions: () => {
              throw new Error("injected fault");
            },
          },
        },
      });
      a.registry.start({ key: "crashy", kind: "queue", logic: crashy, input: undefined, restartable: true });
      const first = a.registry.get("crashy");
      first?.send({ type: "CRASH" });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(starts, 2, "restarted once");
      assert.notEqual(a.registry.get("crashy"), first, "a new incarnation under the same key");
      alice.send("<message from='x@svc.a.test' to='y@svc.b.test' id='after'><body>after</body></message>");
      await bob.waitFor(/id='after'/, 10_000);
      alice.destroy();
    } finally {
      await a.stop();
    }
  });

  it("SIGTERM with busy links: every queued stanza delivered or bounced, then </stream:stream>, exit 0", async (t) => {
    const file = path.join(dir, "a.toml");
    writeFileSync(
      file,
      serverConfig(
        "a.test",
        ports.aS2s,
        ports.aComp,
        { "svc.b.test": ports.bS2s, "mute.test": mute.port },
        "shutdown_timeout = 3000",
      ),
    );
    const child = spawn(process.execPath, [CLI, "--config", file], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr.resume();
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      child.once("exit", (code) => {
        resolve({ code, at: Date.now() });
      }),
    );
    try {
      (await WirePeer.connectWhenListening(ports.aComp, () => "Ferry A did not start")).destroy();
      const alice = await connectComponent(ports.aComp, "svc.a.test", "secret");
      bob.received = "";
      let batch = "";
      for (let i = 0; i < 200; i++) {
        const to = i % 2 === 0 ? "y@svc.b.test" : "z@mute.test"; // half deliverable, half stuck
        batch += `<message from='x@svc.a.test' to='${to}' id='t${i}'><body>${i}</body></message>`;
      }
      alice.send(batch);
      await bob.waitFor(/id='t198'/, 10_000);
      const signalled = Date.now();
      child.kill("SIGTERM");
      const { code, at } = await exited;
      assert.equal(code, 0);
      assert.ok(at - signalled < 3000 + 1000, `exited after ${at - signalled} ms (shutdown_timeout 3000)`);
      const delivered = new Set([...bob.received.matchAll(/id='t(\d+)'/g)].map((m) => m[1]));
      const bounced = new Set(
        [...alice.received.matchAll(/<message [^>]*id='t(\d+)'[^>]*type='error'/g)].map((m) => m[1]),
      );
      const lost = Array.from({ length: 200 }, (_, i) => String(i)).filter(
        (id) => !delivered.has(id) && !bounced.has(id),
      );
      t.diagnostic(
        `delivered ${delivered.size}, bounced ${bounced.size}, lost ${lost.length}; exit ${code} after ${at - signalled} ms`,
      );
      assert.deepEqual(lost, [], `delivered ${delivered.size}, bounced ${bounced.size}`);
      assert.equal(bounced.size, 100, "the stuck half was bounced to its sender");
      assert.match(
        alice.received,
        /<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>.*<\/stream:error><\/stream:stream>$/s,
      );
      // The bounce came before the stream's end.
      assert.ok(alice.received.lastIndexOf("type='error'") < alice.received.indexOf("<stream:error>"));
      alice.destroy();
    } finally {
      child.kill("SIGKILL");
    }
  });
});
