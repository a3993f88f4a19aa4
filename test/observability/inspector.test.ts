/**
 * The optional Stately inspector: with `[debug] inspector = { port }` a browser-side client of the
 * relay receives the actors' inspection events, sanitized (no dialback key, no password, no stanza
 * text); without it nothing listens on that port.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import WebSocket from "ws";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer } from "../../src/server.js";
import { connectComponent } from "../helpers/component.js";
import { freePort } from "../helpers/wire.js";

const config = (comp: number, inspector?: number): string => `[general]
hosts = ["a.example"]
[[listen.service]]
port = ${comp}
ip_address = "127.0.0.1"
password = "very-secret-password"
${inspector === undefined ? "" : `[debug]\ninspector = { port = ${inspector} }\n`}`;

describe("Stately inspector", () => {
  it("relays sanitized inspection events to a connected client", async () => {
    const [comp, port] = [await freePort(), await freePort()];
    const server = await startServer(loadConfigText(config(comp, port), "i.toml").config, silentLogger);
    const received: string[] = [];
    const client = new WebSocket(`ws://127.0.0.1:${port}`);
    await new Promise<void>((resolve, reject) => {
      client.on("open", () => {
        resolve();
      });
      client.on("error", reject);
    });
    client.on("message", (data: Buffer) => received.push(data.toString()));
    try {
      const peer = await connectComponent(comp, "svc.a.example", "very-secret-password");
      peer.send("<message from='x@svc.a.example' to='y@a.example'><body>stanza text</body></message>");
      const deadline = Date.now() + 5000;
      while (!received.some((m) => m.includes("awaitingHandshake")) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const all = received.join("\n");
      assert.match(all, /awaitingHandshake/, "the component actor's states reach the inspector");
      assert.doesNotMatch(all, /very-secret-password|stanza text/);
      peer.destroy();
    } finally {
      client.close();
      await server.stop();
    }
  });

  it("is off by default: nothing listens on the inspector port", async () => {
    const [comp, port] = [await freePort(), await freePort()];
    const server = await startServer(loadConfigText(config(comp), "i.toml").config, silentLogger);
    try {
      await assert.rejects(
        new Promise((resolve, reject) => {
          const socket = net.connect({ port, host: "127.0.0.1" }, () => {
            socket.destroy();
            resolve(undefined);
          });
          socket.once("error", reject);
        }),
      );
    } finally {
      await server.stop();
    }
  });
});
