/**
 * Issue 10: stanzas for many unknown domains must not become a connection storm. Attempts under way
 * at once are bounded (`outgoing.max_connecting`), and a domain that did not resolve is remembered
 * (`outgoing.dns.negative_ttl`) instead of being asked again at every retry.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { ConnectSlots, NegativeDnsCache } from "../../src/s2s/connectLimits.js";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { freePort, type WirePeer } from "../helpers/wire.js";
import { connectComponent } from "../helpers/component.js";
import { startFakeDns, type FakeDnsServer, type FakeRecord } from "../dns/fakeDnsServer.js";

describe("ConnectSlots", () => {
  it("grants up to max at once, then in arrival order; an abandoned waiter leaves the line", async () => {
    const slots = new ConnectSlots(2);
    const never = new AbortController().signal;
    const a = await slots.acquire(never);
    await slots.acquire(never);
    const order: string[] = [];
    const giveUp = new AbortController();
    const c = slots.acquire(giveUp.signal).then(
      () => order.push("c"),
      () => order.push("c gave up"),
    );
    const d = slots.acquire(never).then((release) => {
      order.push("d");
      return release;
    });
    assert.equal(slots.queued, 2);
    giveUp.abort();
    a();
    a(); // releasing twice frees one slot only
    await Promise.all([c, d]);
    assert.deepEqual(order, ["c gave up", "d"]);
    assert.equal(slots.inUse, 2);
  });
});

describe("NegativeDnsCache", () => {
  it("remembers failures for the ttl only, never successes", () => {
    let now = 0;
    const cache = new NegativeDnsCache(30_000, 10, () => now);
    cache.remember("gone.example", { targets: [], notes: [], failure: "NXDOMAIN" });
    cache.remember("ok.example", {
      targets: [{ host: "192.0.2.1", port: 5269, directTls: false, via: "A" }],
      notes: [],
    });
    assert.equal(cache.get("gone.example")?.failure, "NXDOMAIN");
    assert.equal(cache.get("ok.example"), undefined);
    now = 30_000;
    assert.equal(cache.get("gone.example"), undefined);
  });
});

describe("stanzas to 200 distinct domains from one component", () => {
  const DOMAINS = 200;
  let ferry: FerryServer;
  let sender: WirePeer;
  let dns: FakeDnsServer;
  let counting: net.Server;
  let open = 0;
  let peak = 0;
  let accepted = 0;

  before(async () => {
    // Every domain resolves to a server that accepts and never answers: each attempt holds its
    // slot until state_timeout.
    // An attempt is under way from its TCP connection until Ferry ends the stream (its
    // </stream:stream> after state_timeout) or the socket closes, whichever comes first.
    counting = net.createServer((socket) => {
      accepted++;
      open++;
      peak = Math.max(peak, open);
      let ended = false;
      const end = (): void => {
        if (!ended) open--;
        ended = true;
      };
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        if (chunk.includes("</stream:stream>")) end();
      });
      socket.on("error", () => undefined);
      socket.on("close", end);
    });
    await new Promise<void>((resolve) => counting.listen(0, "127.0.0.1", resolve));
    const port = (counting.address() as net.AddressInfo).port;
    const records: Record<string, FakeRecord[]> = {};
    for (let i = 0; i < DOMAINS; i++)
      records[`_xmpp-server._tcp.d${i}.test`] = [
        { type: "SRV", priority: 0, weight: 0, port, target: "host.test" },
      ];
    records["host.test"] = [{ type: "A", address: "127.0.0.1" }];
    dns = await startFakeDns({ records });
    const comp = await freePort();
    ferry = await startServer(
      loadConfigText(
        `[general]
hosts = ["local.test"]
[[listen.service]]
port = ${comp}
ip_address = "127.0.0.1"
password = "secret"
[s2s]
outgoing.max_connecting = 8
outgoing.state_timeout = 300
outgoing.max_retry_delay = 60
outgoing.dns.servers = ["${dns.address}"]
outgoing.dns.timeout = 1
`,
        "storm.toml",
      ).config,
      silentLogger,
    );
    sender = await connectComponent(comp, "svc.local.test", "secret");
  });

  after(async () => {
    sender.destroy();
    counting.close();
    await dns.close();
    await ferry.stop();
  });

  it("never has more than max_connecting attempts under way, and bounces every stanza", async () => {
    let xml = "";
    for (let i = 0; i < DOMAINS; i++)
      xml += `<message from='a@svc.local.test' to='b@d${i}.test' id='x${i}'/>`;
    sender.send(xml);
    const until = Date.now() + 30_000;
    while ([...sender.received.matchAll(/type='error'/g)].length < DOMAINS) {
      assert.ok(
        Date.now() < until,
        `bounced ${[...sender.received.matchAll(/type='error'/g)].length} of ${DOMAINS}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(accepted, DOMAINS, "each domain was tried once");
    assert.ok(peak <= 8, `peak of ${peak} connections at once`);
    assert.ok(peak >= 2, "attempts did run in parallel");
  });

  it("asks DNS once for a domain that does not exist, however often it is retried", async () => {
    const before = dns.queries.filter((q) => q.endsWith("nowhere.test")).length;
    for (let i = 0; i < 3; i++) {
      sender.send(`<message from='a@svc.local.test' to='b@nowhere.test' id='n${i}'/>`);
      await sender.waitFor(new RegExp(`id='n${i}'[^>]*type='error'`), 5000);
      // The queue backs off after a failure; a retry clears it so each stanza is a new attempt.
      ferry.introspection.retry("nowhere.test");
    }
    const asked = dns.queries.filter((q) => q.endsWith("nowhere.test")).length - before;
    assert.ok(asked > 0 && asked <= 4, `${asked} questions (one resolution: SRV ×2 and A, AAAA)`);
  });
});
