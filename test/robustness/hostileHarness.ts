/**
 * Shared pieces of the hostile-input suite (issue 10, "Hostile input"): an in-process Ferry with a
 * logger that keeps what it was told, fake peers (a dialback authoritative server, a wildcard DNS,
 * a TCP server that counts concurrent connections), raw S2S and component sessions, and the
 * measurements the tests assert on (event-loop stalls, memory after a full GC, crashes).
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import net from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { loadConfigText } from "../../src/config/load.js";
import type { Logger, LogLevel, LogTag } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import type { Element } from "../../src/xml/element.js";
import { StreamParser } from "../../src/xml/streamParser.js";
import { dialbackKey } from "../../src/xmpp/dialback.js";
import { NS } from "../../src/xmpp/namespaces.js";
import { COMPONENT_HEADER, digest } from "../helpers/component.js";
import { S2S_HEADER, WirePeer } from "../helpers/wire.js";

// ---- logs and crashes ---------------------------------------------------------------------------

export interface LogLine {
  level: LogLevel;
  tag: LogTag;
  actor: string | undefined;
  message: string;
}

/** Keeps the last lines it was given (all levels), and every line that says something crashed. */
export class RecordingLogger implements Logger {
  constructor(
    private readonly sink: { lines: LogLine[]; crashes: LogLine[] } = { lines: [], crashes: [] },
    private readonly tag: LogTag = "SYS",
    private readonly actor?: string,
  ) {}

  get lines(): readonly LogLine[] {
    return this.sink.lines;
  }

  /** Lines that report an actor, the router or an inspector failing: Ferry threw somewhere. */
  get crashes(): readonly LogLine[] {
    return this.sink.crashes;
  }

  log(level: LogLevel, message: string): void {
    const line: LogLine = { level, tag: this.tag, actor: this.actor, message };
    if (/crashed|inspector failed/i.test(message)) this.sink.crashes.push(line);
    this.sink.lines.push(line);
    if (this.sink.lines.length > 20_000) this.sink.lines.splice(0, 10_000);
  }
  error(message: string): void {
    this.log("error", message);
  }
  warning(message: string): void {
    this.log("warning", message);
  }
  notice(message: string): void {
    this.log("notice", message);
  }
  info(message: string): void {
    this.log("info", message);
  }
  debug(message: string): void {
    this.log("debug", message);
  }
  child(tag: LogTag, actor?: string): Logger {
    return new RecordingLogger(this.sink, tag, actor);
  }
  isDebug(): boolean {
    return false;
  }
}

/** Collects uncaught exceptions and unhandled rejections while installed. */
export class CrashWatch {
  readonly errors: string[] = [];
  private readonly onError = (err: unknown): void => {
    this.errors.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
  };

  install(): this {
    process.on("uncaughtException", this.onError);
    process.on("unhandledRejection", this.onError);
    return this;
  }

  uninstall(): void {
    process.off("uncaughtException", this.onError);
    process.off("unhandledRejection", this.onError);
  }
}

// ---- measurements ------------------------------------------------------------------------------

setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

export interface MemorySample {
  rss: number;
  heapUsed: number;
}

/** Memory after full garbage collections (several: weak maps and finalizers need more than one). */
export async function settledMemory(): Promise<MemorySample> {
  // V8 keeps the last regexp subject alive (RegExp.input): a test's scan of what it received would
  // otherwise be counted as Ferry's heap.
  /x/.exec("x");
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

export const MiB = 1024 * 1024;

/** Watches the event loop: the longest time a timer due every `everyMs` waited past its due time. */
export class StallMonitor {
  longestMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;

  start(everyMs = 10): this {
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.longestMs = Math.max(this.longestMs, now - this.last - everyMs);
      this.last = now;
    }, everyMs);
    return this;
  }

  stop(): number {
    clearInterval(this.timer);
    return this.longestMs;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- Ferry -------------------------------------------------------------------------------------

export interface RunningFerry {
  server: FerryServer;
  log: RecordingLogger;
  s2sPort: number;
  componentPort: number;
}

/** Starts Ferry in this process from a TOML text, with a recording logger. */
export async function startFerry(toml: string): Promise<RunningFerry> {
  const log = new RecordingLogger();
  const { config } = loadConfigText(toml, "hostile.toml");
  const server = await startServer(config, log, { drainTimeoutMs: 500 });
  return {
    server,
    log,
    s2sPort: server.addresses.s2s[0]?.port ?? 0,
    componentPort: server.addresses.service[0]?.port ?? 0,
  };
}

// ---- byte-exact expectations -------------------------------------------------------------------

/** A stream error exactly as Ferry writes it: the condition element, then an optional text. */
export const streamErrorBytes = (condition: string): RegExp =>
  new RegExp(
    `<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
      `(?:<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>[^<]*</text>)?</stream:error></stream:stream>$`,
  );

/** The stream error conditions a received text ends with (none when it has no stream error). */
export function streamErrorOf(received: string): string | undefined {
  return /<stream:error><([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/.exec(received)?.[1];
}

// ---- sessions ----------------------------------------------------------------------------------

export const LOCAL = "a.example";
export const REMOTE = "remote.example";

/** Opens an S2S stream to Ferry and waits for its features; returns the peer and the stream id. */
export async function openS2s(
  port: number,
  to = LOCAL,
  from = REMOTE,
): Promise<{ peer: WirePeer; streamId: string }> {
  const peer = await WirePeer.connect(port);
  peer.send(S2S_HEADER(to, from));
  const got = await peer.waitFor(/<\/stream:features>/);
  const streamId = / id='([0-9a-f]+)'/.exec(got)?.[1];
  if (streamId === undefined) throw new Error(`no stream id in ${got}`);
  return { peer, streamId };
}

/** Opens a component stream and completes the handshake. */
export async function openComponent(port: number, domain: string, secret: string): Promise<WirePeer> {
  const peer = await WirePeer.connect(port);
  peer.send(COMPONENT_HEADER(domain));
  const got = await peer.waitFor(/<stream:stream [^>]*>/);
  const streamId = / id='([^']+)'/.exec(got)?.[1] ?? "";
  peer.send(`<handshake>${digest(streamId, secret)}</handshake>`);
  await peer.waitFor(/<handshake\/>/);
  peer.received = peer.received.slice(peer.received.indexOf("<handshake/>") + "<handshake/>".length);
  return peer;
}

/** The key an honest `from` server sends on a stream Ferry gave `streamId` (XEP-0185, REMOTE_SECRET). */
export const goodKey = (streamId: string, from = REMOTE, to = LOCAL): string =>
  dialbackKey(REMOTE_SECRET, to, from, streamId);

/** How the fake authoritative server of every remote domain judges keys: XEP-0185 with REMOTE_SECRET. */
export const judgeKey = (request: VerifyRequest): "valid" | "invalid" =>
  request.key === dialbackKey(REMOTE_SECRET, request.from, request.to, request.id) ? "valid" : "invalid";

/**
 * Dialback for the pair (`from`, `to`) on an open stream; resolves once Ferry said valid. The
 * default receiving domain is the canary component's, so that stanzas to it are allowed.
 */
export async function authenticate(
  peer: WirePeer,
  streamId: string,
  from = REMOTE,
  to = CANARY_COMPONENT,
): Promise<void> {
  peer.send(`<db:result from='${from}' to='${to}'>${goodKey(streamId, from, to)}</db:result>`);
  const dot = /\./g;
  await peer.waitFor(
    new RegExp(`<db:result from='${to.replace(dot, "\\.")}' to='${from.replace(dot, "\\.")}' type='valid'/>`),
    5000,
  );
}

/**
 * A well-behaved S2S peer from start to finish: dialback for `from`, one message delivered to the
 * canary component, then an orderly close.
 */
export async function canaryS2s(ferry: RunningFerry, component: WirePeer, from = REMOTE): Promise<void> {
  const { peer, streamId } = await openS2s(ferry.s2sPort, LOCAL, from);
  await authenticate(peer, streamId, from);
  const id = `canary-${Math.random().toString(36).slice(2)}`;
  peer.send(`<message from='u@${from}' to='x@${CANARY_COMPONENT}' id='${id}'><body>canary</body></message>`);
  await component.waitFor(new RegExp(`id='${id}'`), 5000);
  peer.send("</stream:stream>");
  await peer.waitFor(/<\/stream:stream>$/);
  await peer.waitClosed();
}

/** A component that connects, completes its handshake and leaves in good order. */
export async function canaryComponent(ferry: RunningFerry): Promise<void> {
  const peer = await openComponent(
    ferry.componentPort,
    `c${Math.random().toString(36).slice(2)}.example`,
    SECRET,
  );
  peer.send("</stream:stream>");
  await peer.waitFor(/<\/stream:stream>$/);
  await peer.waitClosed();
}

export const CANARY_COMPONENT = "canary.example";
export const SECRET = "s3cret";
export const DIALBACK_SECRET = "hostile-dialback-secret";
/** The dialback secret of every remote domain (known to the fake authoritative server). */
export const REMOTE_SECRET = "remote-dialback-secret";

// ---- fake peers --------------------------------------------------------------------------------

export interface VerifyRequest {
  from: string;
  to: string;
  id: string;
  key: string;
}

/**
 * The authoritative server of remote domains (dialback, XEP-0220 step 3): answers every
 * `<db:verify/>` as `decide` says, and keeps what it was asked and how many connections it got.
 */
export class FakeAuthoritative {
  readonly requests: VerifyRequest[] = [];
  connections = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    server: net.Server,
    readonly decide: (request: VerifyRequest) => "valid" | "invalid",
  ) {
    this.server = server;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  static async start(decide: (request: VerifyRequest) => "valid" | "invalid"): Promise<FakeAuthoritative> {
    const server = net.createServer();
    const fake = new FakeAuthoritative(server, decide);
    server.on("connection", (socket) => {
      fake.serve(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return fake;
  }

  private serve(socket: net.Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => undefined);
    const parser = new StreamParser(
      {
        onHeader: (header) => {
          socket.write(
            `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAM}' ` +
              `xmlns:db='jabber:server:dialback' from='${header.attrs.to ?? ""}' to='${header.attrs.from ?? ""}' ` +
              `id='auth${this.connections}' version='1.0'><stream:features><dialback xmlns='urn:xmpp:features:dialback'>` +
              `<errors/></dialback></stream:features>`,
          );
        },
        onElement: (element: Element) => {
          if (element.ns !== NS.DIALBACK || element.local !== "verify") return;
          const request: VerifyRequest = {
            from: element.attrs.from ?? "",
            to: element.attrs.to ?? "",
            id: element.attrs.id ?? "",
            key: element.text(),
          };
          this.requests.push(request);
          const type = this.decide(request);
          socket.write(
            `<db:verify from='${request.to}' to='${request.from}' id='${request.id}' type='${type}'/>`,
          );
        },
        onEnd: () => {
          socket.end("</stream:stream>");
        },
        onError: () => {
          socket.destroy();
        },
      },
      { maxStanzaSize: 1 << 20 },
    );
    socket.on("data", (chunk: Buffer) => {
      parser.write(chunk);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

/** A TCP server that accepts and then says nothing, counting concurrent and total connections. */
export class CountingServer {
  current = 0;
  max = 0;
  total = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.server = server;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  static async start(backlog = 2048): Promise<CountingServer> {
    const server = net.createServer();
    const counting = new CountingServer(server);
    server.on("connection", (socket) => {
      counting.current++;
      counting.total++;
      counting.max = Math.max(counting.max, counting.current);
      counting.sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        counting.current--;
        counting.sockets.delete(socket);
      });
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog }, resolve));
    return counting;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

/**
 * A DNS server on 127.0.0.1 that answers every A question with `address` (NOERROR without records
 * for any other type, NXDOMAIN for names `nxdomain` picks), and counts the questions per name.
 */
export class WildcardDns {
  readonly queries: string[] = [];
  private constructor(
    private readonly socket: UdpSocket,
    private readonly address: string,
    private readonly nxdomain: (name: string) => boolean,
  ) {}

  get server(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  static async start(
    address: string,
    nxdomain: (name: string) => boolean = () => false,
  ): Promise<WildcardDns> {
    const socket = createSocket("udp4");
    const dns = new WildcardDns(socket, address, nxdomain);
    socket.on("message", (msg: Buffer, peer: RemoteInfo) => {
      dns.answer(msg, peer);
    });
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    return dns;
  }

  private answer(msg: Buffer, peer: RemoteInfo): void {
    if (msg.length < 12) return;
    const labels: string[] = [];
    let offset = 12;
    for (;;) {
      const len = msg[offset];
      if (len === undefined || len > 63) return;
      offset += 1;
      if (len === 0) break;
      labels.push(msg.toString("latin1", offset, offset + len));
      offset += len;
    }
    if (offset + 4 > msg.length) return;
    const name = labels.join(".").toLowerCase();
    const qtype = msg.readUInt16BE(offset);
    const questionEnd = offset + 4;
    this.queries.push(
      `${qtype === 1 ? "A" : qtype === 28 ? "AAAA" : qtype === 33 ? "SRV" : String(qtype)} ${name}`,
    );
    const nx = this.nxdomain(name.replace(/^_xmpps?-server\._tcp\./, ""));
    const answers: Buffer[] = [];
    if (!nx && qtype === 1) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(4, 10);
      Buffer.from(this.address.split(".").map(Number)).copy(rr, 12);
      answers.push(rr);
    }
    // NXDOMAIN carries the zone's SOA (RFC 2308 §3): negative answers may be cached for 300 s.
    const authority: Buffer[] = [];
    if (nx) {
      const soa = Buffer.alloc(12 + 2 + 20);
      soa.writeUInt16BE(0xc00c, 0);
      soa.writeUInt16BE(6, 2);
      soa.writeUInt16BE(1, 4);
      soa.writeUInt32BE(300, 6);
      soa.writeUInt16BE(22, 10);
      // MNAME and RNAME: the root; then serial, refresh, retry, expire, minimum.
      soa.writeUInt32BE(1, 14);
      soa.writeUInt32BE(3600, 18);
      soa.writeUInt32BE(600, 22);
      soa.writeUInt32BE(86400, 26);
      soa.writeUInt32BE(300, 30);
      authority.push(soa);
    }
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | (nx ? 3 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    header.writeUInt16BE(authority.length, 8);
    this.socket.send(
      Buffer.concat([header, msg.subarray(12, questionEnd), ...answers, ...authority]),
      peer.port,
      peer.address,
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.close(() => {
        resolve();
      });
    });
  }
}

// ---- configuration -----------------------------------------------------------------------------

export interface FerryOptions {
  s2sPort: number;
  componentPort: number;
  authoritativePort: number;
  dnsServer: string;
  /** `outgoing.port`: where A-record targets are connected. */
  outgoingPort: number;
  stateTimeoutMs?: number;
  maxStanzaSize?: number;
  extra?: string;
}

/**
 * Ferry serving a.example with small timeouts: remote domains `*.remote.example`-style names listed
 * in `remotes` reach the fake authoritative server, everything else goes through the given DNS.
 */
export function ferryToml(options: FerryOptions, remotes: readonly string[]): string {
  const overrides = remotes
    .map((host) => `{host = "${host}", ip_address = "127.0.0.1", port = ${options.authoritativePort}}`)
    .join(", ");
  const state = options.stateTimeoutMs ?? 1500;
  return `[general]
hosts = ["${LOCAL}"]
loglevel = "info"

[[listen.s2s]]
port = ${options.s2sPort}
ip_address = "127.0.0.1"
max_stanza_size = ${options.maxStanzaSize ?? 65536}
state_timeout = ${state}

[[listen.service]]
port = ${options.componentPort}
ip_address = "127.0.0.1"
password = "${SECRET}"
max_stanza_size = ${options.maxStanzaSize ?? 65536}
state_timeout = ${state}

[s2s]
shared = "${DIALBACK_SECRET}"
outgoing.address = [${overrides}]
outgoing.port = ${options.outgoingPort}
outgoing.ip_versions = [4]
outgoing.connection_timeout = 1000
outgoing.state_timeout = ${state}
outgoing.stream_timeout = 4000
outgoing.max_retry_delay = 2
outgoing.dns.servers = ["${options.dnsServer}"]
outgoing.dns.timeout = 1
outgoing.dns.retries = 1
${options.extra ?? ""}
`;
}

export { S2S_HEADER, WirePeer };
