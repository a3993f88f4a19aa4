/**
 * Issue 9/10: a component bursting far more stanzas than an outgoing queue holds (10,000) over a
 * live link is slowed down (its stream stops being read while the queue is congested), not
 * bounced: every stanza arrives, in order, and none comes back with <resource-constraint/>.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { freePort, type WirePeer } from "../helpers/wire.js";
import { connectComponent } from "../helpers/component.js";

const TOTAL = 30_000;

const config = (host: string, s2s: number, comp: number, peer: string, peerPort: number): string => `[general]
hosts = ["${host}"]
[[listen.s2s]]
port = ${s2s}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${comp}
ip_address = "127.0.0.1"
password = "secret"
[s2s]
outgoing.address = [{host = "${peer}", ip_address = "127.0.0.1", port = ${peerPort}}]
`;

describe("a burst of 30,000 stanzas over one live link", () => {
  let a: FerryServer;
  let b: FerryServer;
  let alice: WirePeer;
  let bob: WirePeer;

  before(async () => {
    const [aS2s, aComp, bS2s, bComp] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    a = await startServer(
      loadConfigText(config("a.test", aS2s, aComp, "svc.b.test", bS2s), "a.toml").config,
      silentLogger,
    );
    b = await startServer(
      loadConfigText(config("b.test", bS2s, bComp, "svc.a.test", aS2s), "b.toml").config,
      silentLogger,
    );
    alice = await connectComponent(aComp, "svc.a.test", "secret");
    bob = await connectComponent(bComp, "svc.b.test", "secret");
  });

  after(async () => {
    alice.destroy();
    bob.destroy();
    await Promise.all([a.stop(), b.stop()]);
  });

  it("delivers every stanza in order; the sender is slowed, not bounced", async () => {
    alice.send("<message from='x@svc.a.test' to='y@svc.b.test' id='warm'/>");
    await bob.waitFor(/id='warm'/, 10_000);
    const parts: string[] = [];
    for (let i = 0; i < TOTAL; i++)
      parts.push(
        `<message from='x@svc.a.test' to='y@svc.b.test' id='b${i}'><body>${"x".repeat(100)}</body></message>`,
      );
    alice.send(parts.join(""));
    const last = new RegExp(`id='b${TOTAL - 1}'`);
    await bob.waitFor(last, 60_000);
    const ids = [...bob.received.matchAll(/id='b(\d+)'/g)].map((m) => Number(m[1]));
    assert.equal(ids.length, TOTAL);
    assert.deepEqual(ids.filter((id, i) => id !== i).slice(0, 5), [], "in order, none missing");
    assert.doesNotMatch(alice.received, /type='error'/, "nothing bounced");
  });
});
