/**
 * A running Ferry: listeners, the transports table, the actor registry with its router, and the
 * machines provided with their real I/O. `startServer` resolves once every listener is bound;
 * `stop()` drains (streams end with <system-shutdown/>) and resolves when everything is closed.
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo, Server, Socket } from "node:net";
import { s2sInMachine } from "../machines/s2sIn.js";
import type { Config } from "./config/schema.js";
import type { Logger } from "./log.js";
import { listenTcp, stopListening } from "./net/listen.js";
import { XmppTransport } from "./net/transport.js";
import { transportActor, type TransportTable } from "./net/transportActor.js";
import { ActorRegistry } from "./routing/registry.js";
import { NS } from "./xmpp/namespaces.js";

export interface FerryServer {
  readonly registry: ActorRegistry;
  /** Bound addresses per listener kind, in config order (port 0 in tests gets a real port here). */
  readonly addresses: { s2s: AddressInfo[] };
  /** Drains and closes everything; resolves when done. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** How long streams get to close on shutdown before their sockets are cut. */
  drainTimeoutMs?: number;
}

/** RFC 6120 §4.7.3: stream ids must be unpredictable; 128 bits, hex like jabberd14's listing. */
function newStreamId(): string {
  return randomBytes(16).toString("hex");
}

export async function startServer(
  config: Config,
  log: Logger,
  options: ServerOptions = {},
): Promise<FerryServer> {
  const transports: TransportTable = new Map();
  const servers: Server[] = [];
  const hosts = config.general.hosts;
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });

  const registry = new ActorRegistry({
    log,
    drainTimeoutMs: options.drainTimeoutMs ?? 1500,
    onDrain: () => {
      for (const server of servers) stopListening(server);
    },
    onStopped: () => {
      for (const server of servers) stopListening(server);
      for (const transport of transports.values()) transport.destroy();
      transports.clear();
      resolveStopped();
    },
  });

  const s2sIn = s2sInMachine.provide({ actors: { transport: transportActor(transports) } });

  const addresses: { s2s: AddressInfo[] } = { s2s: [] };
  try {
    for (const listener of config.listen.s2s) {
      const server = await listenTcp(
        {
          port: listener.port,
          host: listener.ip_address,
          backlog: listener.backlog,
          maxConnections: listener.max_connections,
        },
        (socket: Socket) => {
          const streamId = newStreamId();
          const transport = new XmppTransport({
            id: streamId,
            socket,
            defaultNs: NS.SERVER,
            maxStanzaSize: listener.max_stanza_size,
            log: log.child("XMPPI", `in:${streamId}`),
          });
          transports.set(streamId, transport);
          log
            .child("XMPPI", `in:${streamId}`)
            .debug(
              `accepted ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0} on ${listener.ip_address}:${listener.port}`,
            );
          registry.start({
            key: `in:${streamId}`,
            kind: "s2sIn",
            logic: s2sIn,
            input: { streamId, hosts, stateTimeoutMs: listener.state_timeout, starttls: "none" },
            restartable: false,
            release: () => {
              transports.get(streamId)?.destroy();
              transports.delete(streamId);
            },
          });
        },
      );
      servers.push(server);
      addresses.s2s.push(server.address() as AddressInfo);
      log.notice(`S2S listener on ${listener.ip_address}:${(server.address() as AddressInfo).port}`);
    }
  } catch (err) {
    for (const server of servers) stopListening(server);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    registry,
    addresses,
    stop: () => {
      if (!stopping) {
        log.notice("shutting down");
        registry.shutdown();
        stopping = stopped;
      }
      return stopping;
    },
  };
}
