/**
 * A running Ferry: listeners, the transports table, the actor registry with its router, the
 * stanza router, and the machines provided with their real I/O. `startServer` resolves once every
 * listener is bound; `stop()` drains (streams end with <system-shutdown/>) and resolves when
 * everything is closed.
 */
import { randomBytes } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import { HttpRoutes, listenHttp } from "./admin/http.js";
import { createMetrics } from "./metrics/prometheus.js";
import { registerActorsPage } from "./admin/actorsPage.js";
import type { ActorsFeed } from "./admin/actorsFeed.js";
import type { AddressInfo, Server, Socket } from "node:net";
import { Server as TlsServer, type TLSSocketOptions, type TlsOptions } from "node:tls";
import type { AnyStateMachine, InputFrom } from "xstate";
import { componentDomains, componentMachine } from "../machines/component.js";
import type { ChildKind } from "../machines/router.js";
import type { Config } from "./config/schema.js";
import type { Logger, LogTag } from "./log.js";
import { StanzaCounters } from "./metrics/stanzaCounters.js";
import { listenTcp, stopListening } from "./net/listen.js";
import { shaperFor } from "./net/shaper.js";
import { XmppTransport } from "./net/transport.js";
import { transportActor, type TransportTable } from "./net/transportActor.js";
import { compileAccess } from "./routing/access.js";
import { ComponentLink, ComponentTable } from "./routing/components.js";
import { componentIngress } from "./routing/fromComponent.js";
import { hostedDomains } from "./routing/hostedDomains.js";
import { ActorRegistry } from "./routing/registry.js";
import { StanzaRouter } from "./routing/stanzaRouter.js";
import { handshakeMatches } from "./xmpp/handshake.js";
import { provideS2sIn } from "./s2s/incoming.js";
import { OutgoingLinks, provideS2sOut } from "./s2s/outgoing.js";
import { DEFAULT_BUFFER_LIMITS } from "./s2s/outboundBuffer.js";
import { warmUpLinks } from "./s2s/warmUp.js";
import { federationPolicy } from "./s2s/policy.js";
import { loadTrust, type Trust } from "./s2s/trust.js";
import type { StartTlsOffer } from "./xmpp/features.js";
import type { Element } from "./xml/element.js";
import type { Jid } from "./xmpp/jid.js";
import type { StanzaErrorCondition } from "./xmpp/stanzaErrors.js";
import { NS } from "./xmpp/namespaces.js";
import { STREAM_FOOTER, serialize, streamHeader } from "./xml/serialize.js";
import { streamError } from "./xmpp/streamErrors.js";
import { ConnectProgress } from "./s2s/connect.js";
import { StateClock } from "./admin/introspection/stateClock.js";
import { LinkHistory } from "./admin/introspection/linkHistory.js";
import { Introspection } from "./admin/introspection/introspection.js";
import { IntrospectionService } from "./admin/introspection/discoService.js";
import { registerIntrospectionApi } from "./admin/introspection/httpApi.js";
import { registerProbeApi } from "./probe/api.js";
import { IqReplies } from "./routing/iqReplies.js";
import { IpLimits } from "./s2s/ipLimits.js";
import { IssuedKeys } from "./s2s/issuedKeys.js";
import type { HostedDomains } from "./routing/stanzaRouter.js";

export interface FerryServer {
  readonly registry: ActorRegistry;
  readonly router: StanzaRouter;
  readonly components: ComponentTable;
  readonly counters: StanzaCounters;
  /** Bound addresses per listener kind, in config order (port 0 in tests gets a real port here). */
  readonly addresses: { s2s: AddressInfo[]; service: AddressInfo[]; http: AddressInfo[] };
  /** The HTTP endpoints of `[[listen.http]]`; later features add their routes here. */
  readonly http: HttpRoutes;
  /** The live feed behind /debug/actors (subscribed to the actors only while someone watches). */
  readonly actorsFeed: ActorsFeed;
  /** The S2S connections and link history behind the disco tree and /api/connections. */
  readonly introspection: Introspection;
  /** iq replies the server itself awaits (the probe API's pings). */
  readonly iqReplies: IqReplies;
  /** The dialback keys this server sent (only those are confirmed to a verifying peer). */
  readonly issuedKeys: IssuedKeys;
  /** Drains and closes everything; resolves when done. Safe to call more than once. */
  stop(): Promise<void>;
  /** Re-reads every certificate (SIGHUP); established streams keep theirs. */
  reloadCertificates(): { ok: true } | { ok: false; error: string };
  readonly trust: Trust;
}

export interface ServerOptions {
  /** How long streams get to close on shutdown before their sockets are cut. */
  drainTimeoutMs?: number;
}

/** RFC 6120 §4.7.3: stream ids must be unpredictable; 128 bits, hex like jabberd14's listing. */
function newStreamId(): string {
  return randomBytes(16).toString("hex");
}

/** What one listener's accepted sockets become. */
interface StreamKind<TLogic extends AnyStateMachine> {
  /** Our certificates: for STARTTLS upgrades, or for TLS from the first byte (XEP-0368). */
  tls?: {
    /** Looked up at each handshake, so that a SIGHUP reload applies to new streams only. */
    starttls: () => Pick<TLSSocketOptions, "secureContext" | "SNICallback">;
    direct?: TlsOptions;
    onListening?: (server: Server) => void;
  };
  kind: ChildKind;
  tag: LogTag;
  keyPrefix: string;
  defaultNs: string;
  logic: TLogic;
  input: (streamId: string) => InputFrom<TLogic>;
  /** Per-IP limits on connections (S2S listeners). */
  ipLimits?: IpLimits;
}

/** A connection over a per-IP limit: our stream header, `<policy-violation/>`, closed (RFC 6120 §4.9.1.1). */
function refuseConnection(socket: Socket, defaultNs: string, text: string): void {
  socket.on("error", () => undefined);
  socket.end(
    streamHeader({ defaultNs, version: "1.0" }) +
      serialize(streamError("policy-violation", text)) +
      STREAM_FOOTER,
  );
  socket.setTimeout(1000, () => socket.destroy());
}

/** How often idle streams are looked for: one without input for a whole period is suspended. */
const IDLE_SWEEP_MS = 1000;

export async function startServer(
  config: Config,
  log: Logger,
  options: ServerOptions = {},
): Promise<FerryServer> {
  const transports: TransportTable = new Map();
  // Streams idle for a sweep period give back their parser state (issue 9); a read restores it.
  const idleSweep = setInterval(() => {
    for (const transport of transports.values()) transport.sweepIdle();
  }, IDLE_SWEEP_MS);
  idleSweep.unref();
  const servers: Server[] = [];
  const hosts = config.general.hosts;
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });

  // /healthz: 200 only while every listener is up and the server is not draining.
  let phase: "starting" | "running" | "draining" = "starting";
  const http = new HttpRoutes().add({
    method: "GET",
    path: "/healthz",
    handler: (_req, res) => {
      res.writeHead(phase === "running" ? 200 : 503, { "content-type": "text/plain" }).end(`${phase}\n`);
    },
  });
  const httpServers: HttpServer[] = [];
  const closeHttp = (): void => {
    for (const server of httpServers) {
      server.close();
      server.closeAllConnections();
    }
  };

  const registry = new ActorRegistry({
    log,
    drainTimeoutMs: options.drainTimeoutMs ?? config.general.shutdown_timeout,
    onDrain: () => {
      phase = "draining";
      for (const server of servers) stopListening(server);
    },
    onStopped: () => {
      clearInterval(idleSweep);
      stately?.stop();
      closeHttp();
      for (const server of servers) stopListening(server);
      for (const transport of transports.values()) transport.destroy();
      transports.clear();
      resolveStopped();
    },
  });

  const counters = new StanzaCounters(new Set(config.metrics.per_domain));
  const components = new ComponentTable();
  // The router and the hosted domains refer to each other (replies are routed); bind late.
  const routeLog = log.child("SYS", "router");
  const send = (stanza: Element, from: Jid, to: Jid): void => {
    router.route(stanza, from, to);
  };
  const bounceLate = (stanza: Element, condition: StanzaErrorCondition, text: string): void => {
    router.bounce(stanza, condition, text);
  };
  // Replies the server itself waits for (the probe's pings come back over the peer's own stream).
  const iqReplies = new IqReplies();
  const hosted = hostedDomains({
    hosts,
    discoItems: config.general.disco_items,
    components,
    counters,
    send,
    bounce: bounceLate,
    replies: iqReplies,
  });
  // seed 000: the introspection address is served by the server itself, like its hosts.
  const introspectionAddress = config.s2s.introspection.address;
  // Built once the outgoing links exist (it reads their queues); the router needs this first.
  const late: { introspection?: IntrospectionService } = {};
  const served: HostedDomains = {
    has: (domain) => domain === introspectionAddress || hosted.has(domain),
    deliver: (stanza, from, to) => {
      const service = late.introspection;
      if (to.domain === introspectionAddress && service !== undefined) {
        if (to.local === "" && to.resource === "") service.deliver(stanza, from, to);
        else bounceLate(stanza, "service-unavailable", `no entity ${to.toString()}`);
      } else hosted.deliver(stanza, from, to);
    },
  };
  const router: StanzaRouter = new StanzaRouter(components, served, counters, routeLog);
  const bounce = bounceLate;

  async function serve<TLogic extends AnyStateMachine>(
    listener: Config["listen"]["s2s"][number] | Config["listen"]["service"][number],
    where: string,
    stream: StreamKind<TLogic>,
    shaper: string,
  ): Promise<AddressInfo> {
    let server: Server;
    try {
      server = await listenTcp(
        {
          port: listener.port,
          host: listener.ip_address,
          backlog: listener.backlog,
          maxConnections: listener.max_connections,
          ...(stream.tls?.direct === undefined ? {} : { tls: stream.tls.direct }),
        },
        (socket: Socket) => {
          let release: (() => void) | undefined;
          if (stream.ipLimits !== undefined) {
            const admitted = stream.ipLimits.admit(socket.remoteAddress ?? "?");
            if ("refused" in admitted) {
              refuseConnection(socket, stream.defaultNs, admitted.refused);
              log.child(stream.tag).notice(`refused a connection: ${admitted.refused}`);
              return;
            }
            release = admitted.release;
            socket.once("close", release);
          }
          const streamId = newStreamId();
          const key = `${stream.keyPrefix}:${streamId}`;
          const connLog = log.child(stream.tag, key);
          const transport = new XmppTransport({
            id: streamId,
            socket,
            defaultNs: stream.defaultNs,
            maxStanzaSize: listener.max_stanza_size,
            log: connLog,
            shaper: shaperFor(config.shaper, shaper),
            traffic: (direction, bytes, tls) => {
              counters.traffic(stream.kind === "component" ? "component" : "s2s", direction, tls, bytes);
            },
            ...(stream.tls === undefined
              ? {}
              : { serverTls: stream.tls.starttls, secure: stream.tls.direct !== undefined }),
          });
          transports.set(streamId, transport);
          connLog.debug(
            `accepted ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0} on ${listener.ip_address}:${listener.port}`,
          );
          registry.start({
            key,
            kind: stream.kind,
            logic: stream.logic,
            input: stream.input(streamId),
            restartable: false,
            release: () => {
              transports.get(streamId)?.destroy();
              transports.delete(streamId);
            },
          });
        },
      );
    } catch (err) {
      throw new Error(
        `${where}: cannot listen on ${listener.ip_address}:${listener.port}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    stream.tls?.onListening?.(server);
    servers.push(server);
    const address = server.address() as AddressInfo;
    log.notice(`${where} listening on ${listener.ip_address}:${address.port}`);
    return address;
  }

  // Federation: ours are the hosted domains and every domain a component serves (or served).
  const hostSet = new Set(hosts);
  const isLocal = (domain: string): boolean =>
    hostSet.has(domain) ||
    domain === introspectionAddress ||
    components.get(domain) !== undefined ||
    components.isAway(domain);
  const policy = federationPolicy(config.s2s);
  const trust = loadTrust(config, log);
  const progress = new ConnectProgress();
  const issuedKeys = new IssuedKeys();
  const s2sOut = provideS2sOut({
    config,
    transports,
    log,
    newId: newStreamId,
    trust,
    counters,
    progress,
    issuedKeys,
  });
  const clock = new StateClock();
  const linkHistory = new LinkHistory(config.s2s.introspection.history, transports);
  registry.addInspector(clock.observe);
  registry.addInspector(linkHistory.observe);
  const outgoingLinks = new OutgoingLinks({
    config,
    registry,
    transports,
    log: log.child("XMPPO"),
    policy,
    isLocal,
    bounce,
    newId: newStreamId,
    s2sOut,
    trust,
    counters,
    limits: {
      ...DEFAULT_BUFFER_LIMITS,
      maxStanzas: config.general.max_fsm_queue ?? DEFAULT_BUFFER_LIMITS.maxStanzas,
    },
    onRefused: (local, remote, text) => {
      linkHistory.refused(local, remote, text);
    },
  });
  router.remote = outgoingLinks;
  const introspection = new Introspection(
    {
      registry,
      transports,
      clock,
      progress,
      pendingStanzas: (local, remote) => outgoingLinks.buffer(local, remote)?.size ?? 0,
    },
    linkHistory,
    outgoingLinks,
  );
  const browsers = ["global", "s2s"]
    .filter((list) => Object.hasOwn(config.access, list))
    .map((list) => compileAccess(list, config.access));
  late.introspection = new IntrospectionService({
    address: introspectionAddress,
    introspection,
    mayBrowse: (jid) => browsers.some((allowed) => allowed(jid)),
    counters,
    send,
    bounce: bounceLate,
  });
  registerIntrospectionApi(http, introspection);
  registerProbeApi(http, { config, log, trust, replies: iqReplies, issuedKeys });

  const metrics = createMetrics({
    registry,
    clock,
    counters,
    components,
    queued: () => outgoingLinks.totals(),
    certificateExpiry: () => trust.certificates.expiry(hosts),
  });
  registry.addInspector(metrics.observe);
  const actorsFeed = registerActorsPage(http, registry);
  const inspectorPort = config.debug.inspector?.port;
  // Loaded only when configured: @statelyai/inspect and its WebSocket stack cost ~15 MB of RSS.
  const stately =
    inspectorPort === undefined
      ? undefined
      : (await import("./debug/inspector.js")).startStatelyInspector(inspectorPort, registry, log);
  http.add({
    method: "GET",
    path: "/metrics",
    handler: async (_req, res) => {
      const text = await metrics.registry.metrics();
      res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text);
    },
  });
  const addresses: FerryServer["addresses"] = { s2s: [], service: [], http: [] };
  // Before anything listens: the first real link then finds its code compiled (issue 9).
  await warmUpLinks({ config, trust, log });
  try {
    for (const [index, listener] of config.listen.http.entries()) {
      try {
        const server = await listenHttp(
          {
            port: listener.port,
            host: listener.ip_address,
            apiToken: listener.api_token,
            probePrivate: listener.probe_private,
          },
          http,
          log.child("HTTP"),
        );
        httpServers.push(server);
        addresses.http.push(server.address() as AddressInfo);
      } catch (err) {
        throw new Error(
          `listen.http[${index}]: cannot listen on ${listener.ip_address}:${listener.port}: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
    }
    for (const [index, listener] of config.listen.s2s.entries()) {
      const ipLimits = new IpLimits({
        maxConnections: listener.max_connections_per_ip,
        ratePerSecond: listener.connection_rate_per_ip,
        maxVerifications: listener.max_verifications_per_ip,
      });
      const s2sIn = provideS2sIn({
        ipLimits,
        issuedKeys,
        config,
        registry,
        transports,
        router,
        policy,
        isLocal,
        s2sOut,
        trust,
        check: trust.incoming(index),
        counters,
      });
      const certificates = trust.certificates;
      const secure = certificates.serverSecureOptions(index);
      const direct = listener.tls?.mode === "tls" ? certificates.serverOptions(index) : undefined;
      const starttls: StartTlsOffer =
        secure === undefined || direct !== undefined
          ? "none"
          : listener.tls?.required === true || listener.tls?.mode === "starttls_required"
            ? "required"
            : "optional";
      addresses.s2s.push(
        await serve(
          listener,
          `listen.s2s[${index}]`,
          {
            kind: "s2sIn",
            tag: "XMPPI",
            ipLimits,
            keyPrefix: "in",
            defaultNs: NS.SERVER,
            logic: s2sIn,
            ...(secure === undefined
              ? {}
              : {
                  tls: {
                    starttls: () => certificates.serverSecureOptions(index) ?? secure,
                    ...(direct === undefined
                      ? {}
                      : {
                          direct,
                          onListening: (server: Server) => {
                            if (server instanceof TlsServer) certificates.attachServer(index, server);
                          },
                        }),
                  },
                }),
            input: (streamId) => ({
              connectionId: streamId,
              streamId,
              hosts,
              stateTimeoutMs: listener.state_timeout,
              streamTimeoutMs: config.s2s.outgoing.stream_timeout,
              starttls,
              secureAuth: config.s2s.secure_auth,
              directTls: direct !== undefined,
            }),
          },
          listener.shaper,
        ),
      );
    }
    for (const [index, listener] of config.listen.service.entries()) {
      const links = new Map<string, ComponentLink>();
      const access = compileAccess(listener.access, config.access);
      const maxQueue = listener.max_fsm_queue ?? config.general.max_fsm_queue ?? Infinity;
      const logic = componentMachine.provide({
        actors: { transport: transportActor(transports) },
        guards: {
          validHandshake: ({ context, event }) =>
            event.type === "ELEMENT" &&
            handshakeMatches(context.streamId, listener.password, event.element.text()),
          nameTaken: ({ context }) => components.holders(componentDomains(context)).length > 0,
        },
        actions: {
          registerRoutes: ({ context }) => {
            const transport = transports.get(context.streamId);
            if (!transport || context.domain === undefined) return;
            const link = new ComponentLink(transport, {
              key: `comp:${context.streamId}`,
              domain: context.domain,
              domains: componentDomains(context),
              isSubdomain: context.isSubdomain,
              hidden: listener.hidden_components,
              maxQueue,
              access,
              bounce,
              counters,
            });
            // kick_old (the machine only gets here with a taken name under kick_old).
            for (const old of components.holders(link.domains)) {
              components.remove(old);
              link.takeOver(old);
              registry.get(old.key)?.send({ type: "REPLACED" });
            }
            components.add(link);
            links.set(context.streamId, link);
            transport.stanzaSink = componentIngress(link, router, listener.check_from, counters, transport);
          },
          unregisterRoutes: ({ context }) => {
            const link = links.get(context.streamId);
            if (!link) return;
            links.delete(context.streamId);
            components.remove(link);
            link.close(`${link.domain} disconnected`);
            const transport = transports.get(context.streamId);
            if (transport) transport.stanzaSink = undefined;
          },
        },
      });
      addresses.service.push(
        await serve(
          listener,
          `listen.service[${index}]`,
          {
            kind: "component",
            tag: "COMP",
            keyPrefix: "comp",
            defaultNs: NS.COMPONENT,
            logic,
            input: (streamId) => ({
              streamId,
              hosts,
              stateTimeoutMs: listener.state_timeout,
              conflictBehaviour: listener.conflict_behaviour,
            }),
          },
          listener.shaper_rule,
        ),
      );
    }
  } catch (err) {
    for (const server of servers) stopListening(server);
    closeHttp();
    stately?.stop();
    throw err;
  }
  phase = "running";

  let stopping: Promise<void> | undefined;
  return {
    registry,
    router,
    components,
    counters,
    addresses,
    http,
    actorsFeed,
    introspection,
    iqReplies,
    issuedKeys,
    trust,
    reloadCertificates: () => trust.certificates.reload(),
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
