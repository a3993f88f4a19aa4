/**
 * XmppTransport.sweepIdle(): a stream that read nothing for a whole sweep period gives back its
 * parser state (issue 9), and the next read carries on as if nothing happened.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { describe, it } from "node:test";

import type { TransportEvent } from "../../machines/events.js";
import { silentLogger } from "../../src/log.js";
import { XmppTransport } from "../../src/net/transport.js";
import { NS } from "../../src/xmpp/namespaces.js";

const HEADER =
  `<stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAM}' xmlns:db='jabber:server:dialback' ` +
  `from='a.example' to='b.example' version='1.0'>`;

async function pair(): Promise<{ transport: XmppTransport; peer: net.Socket; close: () => void }> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, "connection") as Promise<[net.Socket]>;
  const peer = net.connect(port, "127.0.0.1");
  const [socket] = await accepted;
  const transport = new XmppTransport({
    id: "t1",
    socket,
    defaultNs: NS.SERVER,
    maxStanzaSize: 65536,
    log: silentLogger,
  });
  return {
    transport,
    peer,
    close: () => {
      transport.destroy();
      peer.destroy();
      server.close();
    },
  };
}

function until(events: TransportEvent[], count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000;
    const poll = (): void => {
      if (events.length >= count) resolve();
      else if (Date.now() > deadline)
        reject(new Error(`only ${events.length} events: ${JSON.stringify(events)}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

describe("XmppTransport.sweepIdle", () => {
  it("suspends the parser of a stream idle for a sweep period, and reads on afterwards", async () => {
    const { transport, peer, close } = await pair();
    try {
      const events: TransportEvent[] = [];
      transport.attach((event) => events.push(event));
      peer.write(HEADER);
      await until(events, 1);
      assert.equal(events[0]?.type, "STREAM_HEADER");

      const parser = (transport as unknown as { parser: { suspended: boolean } }).parser;
      transport.sweepIdle(); // data was read since the last sweep: not yet
      assert.equal(parser.suspended, false);
      transport.sweepIdle();
      assert.equal(parser.suspended, true);

      peer.write("<db:result from='a.example' to='b.example' type='valid'/>");
      await until(events, 2);
      assert.equal(parser.suspended, false);
      const event = events[1];
      assert.ok(event?.type === "ELEMENT");
      assert.equal(event.element.local, "result");
      assert.equal(event.element.ns, "jabber:server:dialback");

      transport.sweepIdle();
      transport.sweepIdle();
      assert.equal(parser.suspended, true);
      peer.write("</stream:stream>");
      await until(events, 3);
      assert.equal(events[2]?.type, "STREAM_END");
    } finally {
      close();
    }
  });
});
