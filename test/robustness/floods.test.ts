/**
 * Issue 10, floods: 5,000 TCP connections at once against `max_connections` (seed 001's "Channels"),
 * one address opening too many connections or too fast (per-IP limits), and a dialback request
 * storm from one address that would aim Ferry at a victim domain (`max_verifications_per_ip`).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { S2S_HEADER, WirePeer, freePort } from "../helpers/wire.js";

const SCENARIO = fileURLToPath(new URL("./floodScenario.js", import.meta.url));

describe("5,000 connections at once against max_connections = 500", () => {
  it("serves at most 500, closes the others, and serves a well-behaved peer afterwards", async (t) => {
    // Its own process, with room for 10,000 sockets (both ends live in it).
    const { stdout } = await promisify(execFile)(
      "sh",
      [
        "-c",
        `ulimit -n 16384 2>/dev/null || ulimit -n $(ulimit -Hn); exec "${process.execPath}" "${SCENARIO}" 5000`,
      ],
      { timeout: 60_000 },
    );
    const result = JSON.parse(stdout.trim()) as {
      answered: number;
      closedUnanswered: number;
      served: boolean;
      heapMb: number;
    };
    t.diagnostic(
      `5,000 opened: ${result.answered} served, ${result.closedUnanswered} closed unanswered, a fresh peer served afterwards: ${result.served}`,
    );
    assert.ok(result.answered <= 500, `${result.answered} connections were served`);
    assert.ok(result.answered >= 400, `only ${result.answered} served: the limit is 500`);
    assert.ok(result.closedUnanswered >= 4500, `${result.closedUnanswered} refused`);
    assert.equal(result.served, true, "a fresh peer was served once the flood eased");
  });
});

describe("per-IP limits on an S2S listener", () => {
  let ferry: FerryServer;
  let port = 0;
  let victim: net.Server;
  let victimOpen = 0;
  let victimPeak = 0;
  let victimTotal = 0;

  before(async () => {
    // The "victim" domain's server: accepts and stays silent, so verifications stay under way.
    victim = net.createServer((socket) => {
      victimTotal++;
      victimOpen++;
      victimPeak = Math.max(victimPeak, victimOpen);
      socket.on("error", () => undefined);
      socket.on("close", () => victimOpen--);
    });
    await new Promise<void>((resolve) => victim.listen(0, "127.0.0.1", resolve));
    port = await freePort();
    ferry = await startServer(
      loadConfigText(
        `[general]
hosts = ["ferry.test"]
[[listen.s2s]]
port = ${port}
ip_address = "127.0.0.1"
max_connections_per_ip = 20
connection_rate_per_ip = 1000
max_verifications_per_ip = 5
[s2s]
outgoing.state_timeout = 2000
outgoing.address = [{host = "victim.test", ip_address = "127.0.0.1", port = ${(victim.address() as net.AddressInfo).port}}]
`,
        "limits.toml",
      ).config,
      silentLogger,
    );
  });

  after(async () => {
    victim.close();
    await ferry.stop();
  });

  it("refuses connections beyond max_connections_per_ip with <policy-violation/>", async () => {
    const peers: WirePeer[] = [];
    for (let i = 0; i < 20; i++) peers.push(await WirePeer.connect(port));
    const extra = await WirePeer.connect(port);
    const got = await extra.waitFor(/<\/stream:stream>/);
    assert.match(
      got,
      /<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text [^>]*>too many connections from 127\.0\.0\.1 \(max_connections_per_ip\)<\/text><\/stream:error><\/stream:stream>$/,
    );
    await extra.waitClosed();
    for (const p of peers) p.destroy();
    // Once they are gone, the address is served again.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = await WirePeer.connect(port);
    again.send(S2S_HEADER("ferry.test", "good.test"));
    await again.waitFor(/<stream:features>/);
    again.destroy();
  });

  it("a dialback storm from one address starts at most max_verifications_per_ip verifications", async (t) => {
    const attacker = await WirePeer.connect(port);
    attacker.send(S2S_HEADER("ferry.test", "victim.test"));
    await attacker.waitFor(/<stream:features>/);
    let storm = "";
    for (let i = 0; i < 50; i++) storm += `<db:result from='victim.test' to='ferry.test'>key${i}</db:result>`;
    // The same pair on one stream is verified once; a storm uses many streams (within the per-IP
    // connection limit) to ask for many verifications at once.
    attacker.send(storm);
    const others: WirePeer[] = [];
    for (let i = 0; i < 15; i++) {
      const p = await WirePeer.connect(port);
      p.send(S2S_HEADER("ferry.test", "victim.test"));
      await p.waitFor(/<stream:features>/);
      p.send(`<db:result from='victim.test' to='ferry.test'>k</db:result>`);
      others.push(p);
    }
    const refused = (): number => {
      let n = 0;
      for (const p of others) if (/type='error'[^>]*>.*policy-violation/s.test(p.received)) n++;
      return n;
    };
    const until = Date.now() + 5000;
    while (refused() < 10 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    t.diagnostic(
      `victim saw ${victimTotal} connections (at most ${victimPeak} at once); ${refused()} streams told policy-violation`,
    );
    assert.ok(victimPeak <= 5, `${victimPeak} connections to the victim at once`);
    assert.ok(victimTotal <= 5, `${victimTotal} connections to the victim in all`);
    assert.ok(refused() >= 10, `${refused()} streams told policy-violation`);
    assert.match(others.map((p) => p.received).join(""), /max_verifications_per_ip/);
    attacker.destroy();
    for (const p of others) p.destroy();
  });
});
