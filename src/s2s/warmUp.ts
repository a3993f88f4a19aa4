/**
 * Start-up warm-up of the link set-up path. The first link of a fresh process used to take twice as
 * long as the next ones (issue 9: ~27 ms cold against ~16 ms warm): every function on the way —
 * XState's interpreter, the stream machines, the XML parser and serializer, dialback keys, TLS and
 * certificate checks — was compiled and run for the first time while a peer waited.
 *
 * So before the first real link, Ferry runs complete links in-process: queue → s2sOut → s2sIn →
 * dialback verification → answer → a stanza delivered, over loopback, between made-up domains,
 * with STARTTLS or direct TLS when our configuration uses them. Everything is throwaway and
 * invisible: its own registry (no metrics, no link history, no /debug/actors), its own transports,
 * listeners on 127.0.0.1 port 0 closed afterwards, no log lines (one at debug level).
 */
import { randomBytes } from "node:crypto";
import type { Server, Socket } from "node:net";
import type { Config } from "../config/schema.js";
import { silentLogger, type Logger } from "../log.js";
import { StanzaCounters } from "../metrics/stanzaCounters.js";
import { listenTcp, stopListening } from "../net/listen.js";
import { XmppTransport } from "../net/transport.js";
import type { TransportTable } from "../net/transportActor.js";
import { ComponentTable } from "../routing/components.js";
import { ActorRegistry } from "../routing/registry.js";
import { StanzaRouter } from "../routing/stanzaRouter.js";
import { el } from "../xml/element.js";
import { Jid } from "../xmpp/jid.js";
import { NS } from "../xmpp/namespaces.js";
import { resolveTargets, type ResolveOptions } from "../dns/resolve.js";
import type { DnsClient } from "../dns/query.js";
import { provideS2sIn } from "./incoming.js";
import { IssuedKeys } from "./issuedKeys.js";
import { OutgoingLinks, provideS2sOut } from "./outgoing.js";
import type { Trust } from "./trust.js";
import type { ServerSecureOptions } from "../tls/certificates.js";

export interface WarmUpOptions {
  config: Config;
  trust: Trust;
  log: Logger;
  /** Links set up one after the other (the first compiles, the next ones settle the code). */
  links?: number;
  /** Everything is torn down after this long, whatever state it is in. */
  timeoutMs?: number;
}

/** `.invalid` (RFC 2606): these names can never be real peers. */
const ORIGINATING = "a.warm-up.ferry.invalid";
const receiving = (n: number): string => `b${n}.warm-up.ferry.invalid`;

const newId = (): string => randomBytes(16).toString("hex");

/** Runs the warm-up links; never throws (a failure only means the first real link stays cold). */
export async function warmUpLinks(options: WarmUpOptions): Promise<void> {
  const started = performance.now();
  const links = options.links ?? 8;
  const world = new WarmUpWorld(options, links);
  const deadline = setTimeout(() => {
    world.abandon();
  }, options.timeoutMs ?? 2000);
  deadline.unref();
  try {
    await resolveOnce(options.config);
    await world.listen();
    let delivered = 0;
    for (let n = 0; n < links && !world.abandoned; n++) if (await world.link(n)) delivered++;
    options.log.debug(
      `S2S warm-up: ${delivered} of ${links} in-process link(s) delivered in ${Math.round(performance.now() - started)} ms`,
    );
  } catch (err) {
    options.log.debug(`S2S warm-up stopped: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(deadline);
    await world.close();
  }
}

/** DNS answers as a resolver would give them, without asking any server. */
const fakeDns: DnsClient = {
  resolveSrv: (name) =>
    name.startsWith("_xmpp-server.")
      ? Promise.resolve([{ name: "xmpp.warm-up.ferry.invalid", port: 5269, priority: 0, weight: 5 }])
      : Promise.reject(Object.assign(new Error("queryNxdomain"), { code: "ENOTFOUND" })),
  resolve4: () => Promise.resolve(["127.0.0.1"]),
  resolve6: () => Promise.reject(Object.assign(new Error("queryNodata"), { code: "ENODATA" })),
  getServers: () => ["127.0.0.1"],
  cancel: () => undefined,
};

/** The SRV and A/AAAA handling of a resolution (the links below use address overrides). */
async function resolveOnce(config: Config): Promise<void> {
  const outgoing = config.s2s.outgoing;
  const options: ResolveOptions = {
    port: outgoing.port,
    ipVersions: outgoing.ip_versions,
    overrides: [],
    timeoutMs: 1000,
    retries: 1,
    directTls: false,
    resolver: fakeDns,
  };
  await resolveTargets(receiving(0), options);
}

class WarmUpWorld {
  abandoned = false;
  private readonly transports: TransportTable = new Map();
  private readonly registry = new ActorRegistry({ log: silentLogger, drainTimeoutMs: 200 });
  private readonly servers: Server[] = [];
  private readonly hosts: Set<string>;
  private outgoing: OutgoingLinks | undefined;
  /** Told whether the stanza of the current link arrived (or came back bounced). */
  private settle: ((delivered: boolean) => void) | undefined;
  private readonly stopped: Promise<void>;

  constructor(
    private readonly options: WarmUpOptions,
    links: number,
  ) {
    this.hosts = new Set(Array.from({ length: links }, (_, n) => receiving(n)));
    this.stopped = new Promise((resolve) => {
      this.registry.router.subscribe({
        complete: () => {
          resolve();
        },
        error: () => {
          resolve();
        },
      });
    });
  }

  /**
   * Two listeners on loopback: the receiving domains' server, and the originating domain's (its
   * authoritative server, which the verification reaches), with the TLS of our first listener
   * that has some, as a real peer would meet it.
   */
  async listen(): Promise<void> {
    const { config, trust } = this.options;
    const index = config.listen.s2s.findIndex((l) => l.tls !== undefined);
    const secure = index === -1 ? undefined : trust.certificates.serverSecureOptions(index);
    const direct =
      index !== -1 && config.s2s.outgoing.tls.mode === "tls"
        ? trust.certificates.serverOptions(index)
        : undefined;
    // Listening first (the overrides below need the ports), accepting once the logics exist.
    const logics: ReturnType<typeof provideS2sIn>[] = [];
    const ports: number[] = [];
    for (const side of [0, 1]) {
      const server = await listenTcp(
        { port: 0, host: "127.0.0.1", ...(direct === undefined ? {} : { tls: direct }) },
        (socket: Socket) => {
          const logic = logics[side];
          if (logic === undefined) socket.destroy();
          else this.accept(socket, logic, secure, direct !== undefined);
        },
      );
      server.unref();
      this.servers.push(server);
      const address = server.address();
      ports.push(typeof address === "object" && address !== null ? address.port : 0);
    }

    const [receivingPort, originatingPort] = ports;
    const address: Config["s2s"]["outgoing"]["address"] = [
      { host: ORIGINATING, ip_address: "127.0.0.1", port: originatingPort },
      ...[...this.hosts].map((host) => ({ host, ip_address: "127.0.0.1", port: receivingPort })),
    ];
    const counters = new StanzaCounters();
    const issuedKeys = new IssuedKeys();
    const outgoing = {
      ...config.s2s.outgoing,
      address,
      // Both ends share these slots here: the link holds one while its verification takes another.
      max_connecting: Math.max(4, config.s2s.outgoing.max_connecting),
      connection_timeout: 1000,
      state_timeout: 1000,
      shaper: "none",
    };
    const warmConfig: Config = { ...config, s2s: { ...config.s2s, outgoing } };
    const s2sOut = provideS2sOut({
      config: warmConfig,
      transports: this.transports,
      log: silentLogger,
      newId,
      trust,
      counters,
      issuedKeys,
    });
    const delivered = (): void => {
      this.settle?.(true);
    };
    const bounced = (): void => {
      this.settle?.(false);
    };
    const incoming = (isLocal: (domain: string) => boolean, router: StanzaRouter) =>
      provideS2sIn({
        config: warmConfig,
        registry: this.registry,
        transports: this.transports,
        router,
        policy: () => true,
        isLocal,
        s2sOut,
        trust,
        check: trust.incoming(Math.max(0, index)),
        counters,
        issuedKeys,
      });
    const router = (hosts: ReadonlySet<string>) =>
      new StanzaRouter(
        new ComponentTable(),
        { has: (d) => hosts.has(d), deliver: delivered },
        counters,
        silentLogger,
      );
    logics.push(
      incoming((domain) => this.hosts.has(domain), router(this.hosts)),
      incoming((domain) => domain === ORIGINATING, router(new Set([ORIGINATING]))),
    );
    this.outgoing = new OutgoingLinks({
      config: warmConfig,
      registry: this.registry,
      transports: this.transports,
      log: silentLogger,
      policy: () => true,
      isLocal: (domain) => domain === ORIGINATING,
      // A link that fails (say, TLS required but not configured) bounces: that ends it too.
      bounce: bounced,
      newId,
      s2sOut,
      trust,
      counters,
    });
  }

  /** An incoming stream, as server.ts makes one of an accepted socket. */
  private accept(
    socket: Socket,
    logic: ReturnType<typeof provideS2sIn>,
    secure: ServerSecureOptions | undefined,
    direct: boolean,
  ): void {
    const streamId = newId();
    this.transports.set(
      streamId,
      new XmppTransport({
        id: streamId,
        socket,
        defaultNs: NS.SERVER,
        maxStanzaSize: this.options.config.s2s.outgoing.max_stanza_size,
        log: silentLogger,
        ...(secure === undefined ? {} : { serverTls: () => secure, secure: direct }),
      }),
    );
    this.registry.start({
      key: `in:${streamId}`,
      kind: "s2sIn",
      logic,
      input: {
        connectionId: streamId,
        streamId,
        hosts: [],
        stateTimeoutMs: 1000,
        streamTimeoutMs: 60_000,
        starttls: secure === undefined || direct ? "none" : "optional",
        secureAuth: false,
        directTls: direct,
      },
      restartable: false,
      release: () => {
        this.transports.get(streamId)?.destroy();
        this.transports.delete(streamId);
      },
    });
  }

  /** One link to a new receiving domain, up to the stanza's delivery (true) or bounce. */
  async link(n: number): Promise<boolean> {
    const from = Jid.parse(`warm-up@${ORIGINATING}`);
    const to = Jid.parse(`warm-up@${receiving(n)}`);
    const settled = new Promise<boolean>((resolve) => {
      this.settle = resolve;
    });
    const body = el("body", {}, "warm-up");
    this.outgoing?.deliver(
      el("message", { from: from.toString(), to: to.toString(), type: "chat", id: `w${n}` }, body),
      from,
      to,
    );
    return settled;
  }

  abandon(): void {
    this.abandoned = true;
    this.settle?.(false);
  }

  async close(): Promise<void> {
    for (const server of this.servers) stopListening(server);
    this.registry.shutdown();
    const cut = new Promise<void>((resolve) => setTimeout(resolve, 500).unref());
    await Promise.race([this.stopped, cut]);
    for (const transport of this.transports.values()) transport.destroy();
    this.transports.clear();
  }
}
