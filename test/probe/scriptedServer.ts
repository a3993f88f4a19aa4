/**
 * A TCP server that plays a script instead of XMPP: it sees everything received so far on each
 * connection and may write back. For servers that never answer, send garbage, or say exactly what
 * the test needs (a known stream id, a dialback verdict, a reply on the same stream).
 */
import net from "node:net";

export interface Scripted {
  port: number;
  /** Everything each connection received, in connection order. */
  received: string[];
  close(): Promise<void>;
}

/** `step` is called after each chunk with all that connection has received, and its index. */
export async function scriptedServer(
  step: (socket: net.Socket, received: string, connection: number) => void,
): Promise<Scripted> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const index = received.length;
    received.push("");
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => {
      const all = (received[index] ?? "") + data;
      received[index] = all;
      step(socket, all, index);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A jabber:server stream header as a receiving server sends it. */
export const serverHeader = (id: string, from: string, to: string, version: string | null = "1.0"): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' ` +
  `xmlns:db='jabber:server:dialback' id='${id}' from='${from}' to='${to}'${version === null ? "" : ` version='${version}'`}>`;
