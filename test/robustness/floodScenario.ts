/**
 * Run as its own process (test/robustness/floods.test.ts raises its file limit first): a Ferry
 * whose S2S listener has `max_connections = 500`, hit by 5,000 TCP connections opened at once from
 * one address. Prints one JSON line: how many got Ferry's stream header, how many were closed
 * without one, and whether a well-behaved stream opened during the flood was served.
 */
import net from "node:net";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer } from "../../src/server.js";
import { S2S_HEADER, WirePeer } from "../helpers/wire.js";

const FLOOD = Number(process.argv[2] ?? 5000);
const MAX = 500;

async function main(): Promise<void> {
  const ferry = await startServer(
    loadConfigText(
      `[general]
hosts = ["flood.test"]
[[listen.s2s]]
port = 0
ip_address = "127.0.0.1"
max_connections = ${MAX}
max_connections_per_ip = "infinity"
connection_rate_per_ip = "infinity"
state_timeout = 60000
`,
      "flood.toml",
    ).config,
    silentLogger,
  );
  const port = ferry.addresses.s2s[0]?.port ?? 0;
  let answered = 0;
  let closedUnanswered = 0;
  let errors = 0;
  const sockets: net.Socket[] = [];
  await Promise.all(
    Array.from(
      { length: FLOOD },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(port, "127.0.0.1");
          sockets.push(socket);
          let got = false;
          socket.setEncoding("utf8");
          socket.on("connect", () => socket.write(S2S_HEADER("flood.test", "attacker.test")));
          socket.on("data", (chunk: string) => {
            if (!got && chunk.includes("<stream:stream")) {
              got = true;
              answered++;
              resolve();
            }
          });
          socket.on("error", () => {
            errors++;
          });
          socket.on("close", () => {
            if (!got) closedUnanswered++;
            resolve();
          });
          setTimeout(resolve, 10_000);
        }),
    ),
  );
  // Once some of the admitted connections close, a well-behaved peer is served again.
  for (const s of sockets.slice(0, 100)) s.destroy();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const peer = await WirePeer.connect(port);
  peer.send(S2S_HEADER("flood.test", "good.test"));
  const served = await peer.waitFor(/<stream:features>/, 5000).then(
    () => true,
    () => false,
  );
  peer.destroy();
  for (const s of sockets) s.destroy();
  const heapMb = Math.round(process.memoryUsage().heapUsed / 1e6);
  await ferry.stop();
  process.stdout.write(
    `${JSON.stringify({ flood: FLOOD, max: MAX, answered, closedUnanswered, errors, served, heapMb })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
