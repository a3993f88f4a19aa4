/**
 * Issue 10, "no memory growth past the configured bounds": an outgoing S2S queue holds at most
 * `[general] max_fsm_queue` stanzas (as a component's queue does); a component sending to a remote
 * that does not answer gets the rest back at once with `resource-constraint`, and what the queue
 * held with `remote-server-timeout` when the attempt gives up. Every stanza is accounted for.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import {
  ferryToml,
  LOCAL,
  openComponent,
  SECRET,
  startFerry,
  WildcardDns,
  type RunningFerry,
} from "./hostileHarness.js";
import { freePort } from "../helpers/wire.js";

const BOUND = 50;
const SENT = 200;
const SILENT = "silent.example";

describe("[general] max_fsm_queue bounds an outgoing S2S queue", () => {
  let ferry: RunningFerry;
  let dns: WildcardDns;
  // Accepts TCP and never sends a byte: the queue waits for its link until state_timeout.
  const silent = net.createServer((socket) => {
    socket.on("error", () => undefined);
  });

  before(async () => {
    dns = await WildcardDns.start("127.0.0.1");
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const [s2sPort, componentPort, outgoingPort] = [await freePort(), await freePort(), await freePort()];
    const toml = ferryToml(
      { s2sPort, componentPort, authoritativePort: silentPort, dnsServer: dns.server, outgoingPort },
      [SILENT],
    )
      .replace("[general]\n", `[general]\nmax_fsm_queue = ${BOUND}\n`)
      // The sender's own queue takes every bounce: errors cannot be bounced when it overflows.
      .replace(`password = "${SECRET}"`, `password = "${SECRET}"\nmax_fsm_queue = 100000`);
    ferry = await startFerry(toml);
  });

  after(async () => {
    await ferry.server.stop();
    silent.close();
    await dns.close();
  });

  it(`holds ${BOUND} of ${SENT} stanzas for a remote that does not answer, bounces the rest at once, then those`, async (t) => {
    const sender = await openComponent(ferry.componentPort, `svc.${LOCAL}`, SECRET);
    try {
      let batch = "";
      for (let i = 1; i <= SENT; i++)
        batch += `<message from='a@svc.${LOCAL}' to='b@${SILENT}' id='q${i}'><body>${i}</body></message>`;
      sender.send(batch);
      const errors = (condition: string): string[] =>
        [
          ...sender.received.matchAll(
            new RegExp(
              `<message [^>]*id='q(\\d+)'[^>]*type='error'[^>]*>(?:(?!</message>).)*<${condition} `,
              "gs",
            ),
          ),
        ].map((m) => m[1] ?? "");
      // The overflow comes back at once, while the queue still waits for its link.
      await sender.waitFor(new RegExp(`id='q${SENT}'[^>]*type='error'`), 5000);
      const overflow = errors("resource-constraint");
      assert.deepEqual(
        overflow,
        Array.from({ length: SENT - BOUND }, (_, n) => String(BOUND + n + 1)),
        "the stanzas beyond the bound, in order",
      );
      // Then the held ones, when the attempt gives up (state_timeout 1.5 s).
      const until = Date.now() + 10_000;
      while (errors("remote-server-timeout").length < BOUND) {
        assert.ok(Date.now() < until, `held stanzas bounced: ${errors("remote-server-timeout").length}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const held = errors("remote-server-timeout");
      assert.deepEqual(
        held,
        Array.from({ length: BOUND }, (_, n) => String(n + 1)),
        "the first ones, in order",
      );
      t.diagnostic(
        `sent ${SENT}: ${overflow.length} resource-constraint at once, ${held.length} remote-server-timeout`,
      );
    } finally {
      sender.destroy();
    }
  });
});
