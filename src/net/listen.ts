/**
 * TCP listeners. Each `[[listen.*]]` entry becomes one `net.Server`; what happens to an accepted
 * socket is the caller's business. `max_connections` is enforced by the server itself
 * (`server.maxConnections` refuses beyond it), as MongooseIM's listener option does.
 */
import net from "node:net";
import tls from "node:tls";

export interface ListenOptions {
  port: number;
  host: string;
  backlog?: number;
  maxConnections?: number;
  /** TLS from the first byte (XEP-0368 direct TLS) with this certificate. */
  tls?: tls.SecureContextOptions;
}

export async function listenTcp(
  options: ListenOptions,
  onSocket: (socket: net.Socket) => void,
): Promise<net.Server> {
  const server =
    options.tls === undefined
      ? net.createServer({ noDelay: true }, onSocket)
      : // The peer's certificate is asked for (SASL EXTERNAL) and checked by src/tls, not OpenSSL.
        tls.createServer(
          {
            ...options.tls,
            ALPNProtocols: ["xmpp-server"],
            requestCert: true,
            rejectUnauthorized: false,
            // As on plain listeners: Nagle would hold each negotiation step back (up to 40 ms).
            noDelay: true,
          },
          onSocket,
        );
  if (options.maxConnections !== undefined && Number.isFinite(options.maxConnections)) {
    server.maxConnections = options.maxConnections;
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: options.port, host: options.host, backlog: options.backlog }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

/**
 * Stops accepting at once. (`server.close()`'s callback would wait for every accepted socket to end;
 * those belong to actors that the router drains separately.)
 */
export function stopListening(server: net.Server): void {
  if (server.listening) server.close();
}
