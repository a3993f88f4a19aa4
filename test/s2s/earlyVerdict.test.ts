/**
 * XEP-0220 on the receiving side: the verdict goes back to the originating server as soon as the
 * authoritative server answers the db:verify, not once that verification stream is closed (an
 * authoritative server that is slow to close, or never does, must not hold the link back).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { S2S_HEADER, WirePeer, freePort } from "../helpers/wire.js";

/** An authoritative server for b.example that answers every db:verify valid and never closes. */
function lingeringAuthority(): Promise<{ port: number; verifies: () => number; close: () => void }> {
  let verifies = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setEncoding("utf8");
    let seen = "";
    let opened = false;
    socket.on("data", (data: string) => {
      seen += data;
      if (!opened && seen.includes("<stream:stream")) {
        opened = true;
        socket.write(
          S2S_HEADER("a.example", "b.example").replace("<stream:stream ", "<stream:stream id='auth-1' ") +
            "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
        );
      }
      const verify = /<db:verify [^>]*id=['"]([^'"]+)['"][^>]*>[^<]*<\/db:verify>/.exec(seen);
      if (verify !== null) {
        seen = seen.replace(verify[0], "");
        verifies++;
        socket.write(`<db:verify from='b.example' to='a.example' id='${verify[1] ?? ""}' type='valid'/>`);
      }
    });
    socket.on("error", () => undefined);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        port,
        verifies: () => verifies,
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      });
    });
  });
}

describe("dialback verdict, receiving side", () => {
  let authority: Awaited<ReturnType<typeof lingeringAuthority>>;
  let server: FerryServer;
  let port: number;

  before(async () => {
    authority = await lingeringAuthority();
    port = await freePort();
    const { config } = loadConfigText(
      `[general]\nhosts = ["a.example"]\n[[listen.s2s]]\nport = ${port}\nip_address = "127.0.0.1"\n` +
        `[s2s]\noutgoing.address = [{host = "b.example", ip_address = "127.0.0.1", port = ${authority.port}}]\n`,
      "early-verdict.toml",
    );
    server = await startServer(config, silentLogger, { drainTimeoutMs: 200 });
  });
  after(async () => {
    authority.close();
    await server.stop();
  });

  it("is sent as soon as the authoritative server answers, while its stream is still open", async () => {
    const peer = await WirePeer.connect(port);
    peer.send(S2S_HEADER("a.example", "b.example"));
    await peer.waitFor(/<\/stream:features>/);
    peer.send("<db:result from='b.example' to='a.example'>any-key-the-authority-accepts</db:result>");
    const started = performance.now();
    // The verification stream's close would take closeGraceMs (1 s) with this authority.
    await peer.waitFor(/<db:result [^>]*type=['"]valid['"]/, 700);
    assert.ok(performance.now() - started < 700);
    assert.equal(authority.verifies(), 1);
    peer.destroy();
  });
});
