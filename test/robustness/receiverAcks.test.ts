/**
 * Issue 10, "nothing lost" from the receiving side: Ferry's XEP-0198 acks on an incoming S2S
 * stream cover only stanzas that have left its memory. A stanza waiting in a slow component's
 * queue is not acknowledged yet: were Ferry killed then, the sender still holds it and bounces or
 * resends it, where an early ack would have let it vanish (peerKilled.test.ts kills the process).
 * And the queue stays bounded without max_fsm_queue: the S2S stream is no longer read meanwhile.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  authenticate,
  CANARY_COMPONENT,
  FakeAuthoritative,
  ferryToml,
  judgeKey,
  openComponent,
  openS2s,
  REMOTE,
  SECRET,
  startFerry,
  WildcardDns,
  type RunningFerry,
  type WirePeer,
} from "./hostileHarness.js";
import { freePort } from "../helpers/wire.js";
import { HIGH_WATER } from "../../src/routing/backpressure.js";

/** 5,000 stanzas of 4 KiB: 20 MiB, well beyond what loopback socket buffers absorb (about 10 MiB). */
const TOTAL = 5000;
const BODY = "x".repeat(4096);

/** The h of the last `<a/>` in `text`, if any. */
function lastAck(text: string): number | undefined {
  const acks = [...text.matchAll(/<a xmlns='urn:xmpp:sm:3' h='(\d+)'\/>/g)];
  const h = acks.at(-1)?.[1];
  return h === undefined ? undefined : Number(h);
}

describe("XEP-0198 acks from Ferry as the receiving server", () => {
  let ferry: RunningFerry;
  let auth: FakeAuthoritative;
  let dns: WildcardDns;

  before(async () => {
    auth = await FakeAuthoritative.start(judgeKey);
    dns = await WildcardDns.start("127.0.0.1");
    const [s2sPort, componentPort, outgoingPort] = [await freePort(), await freePort(), await freePort()];
    ferry = await startFerry(
      ferryToml(
        { s2sPort, componentPort, authoritativePort: auth.port, dnsServer: dns.server, outgoingPort },
        [REMOTE],
      ),
    );
  });

  after(async () => {
    await ferry.server.stop();
    await Promise.all([auth.close(), dns.close()]);
  });

  it("does not acknowledge what waits for a component that stopped reading, nor read more, and acknowledges all once written", async (t) => {
    const component: WirePeer = await openComponent(ferry.componentPort, CANARY_COMPONENT, SECRET);
    const { peer, streamId } = await openS2s(ferry.s2sPort);
    try {
      await authenticate(peer, streamId);
      peer.send("<enable xmlns='urn:xmpp:sm:3'/>");
      await peer.waitFor(/<enabled xmlns='urn:xmpp:sm:3'\/>/);
      component.pause();
      let batch = "";
      for (let i = 1; i <= TOTAL; i++) {
        batch += `<message from='u@${REMOTE}' to='x@${CANARY_COMPONENT}' id='m${i}'><body>${BODY}</body></message>`;
      }
      peer.send(batch);
      const link = ferry.server.components.get(CANARY_COMPONENT);
      assert.ok(link);
      // Until the queue has stopped growing: Ferry stops reading the stream at HIGH_WATER queued.
      const until = Date.now() + 20_000;
      let last = -1;
      while (link.queued < HIGH_WATER || link.queued !== last) {
        assert.ok(
          Date.now() < until,
          `queue never filled: ${link.stanzasOut} written, ${link.queued} queued`,
        );
        last = link.queued;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const held = lastAck(peer.received) ?? 0;
      t.diagnostic(
        `component not reading: ${link.stanzasOut} written to its socket, ${link.queued} queued, h=${held}`,
      );
      assert.ok(held <= link.stanzasOut, `h=${held} covers none of the ${link.queued} queued stanzas`);
      assert.ok(link.queued < HIGH_WATER + 100, `${link.queued} queued: the S2S stream is no longer read`);
      assert.ok(link.stanzasOut + link.queued < TOTAL, "the rest waits in the sender's socket");

      component.resume();
      await component.waitFor(new RegExp(`id='m${TOTAL}'`), 30_000);
      assert.equal(component.count(/<message /g), TOTAL, "every stanza delivered");
      const asked = peer.received.length;
      peer.send("<r xmlns='urn:xmpp:sm:3'/>");
      const deadline = Date.now() + 5000;
      while (lastAck(peer.received.slice(asked)) !== TOTAL && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(lastAck(peer.received.slice(asked)), TOTAL, "all acknowledged once written");
    } finally {
      peer.destroy();
      component.destroy();
    }
  });
});
