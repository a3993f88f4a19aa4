/**
 * In-process Ferry servers for the probe tests: a target (a Ferry the probe connects to) and a
 * prober (a Ferry serving the probe API), configured from a few options, and a JSON HTTP client.
 */
import http from "node:http";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger, type Logger } from "../../src/log.js";
import { registerProbeApi } from "../../src/probe/api.js";
import type { LimitSettings } from "../../src/probe/limits.js";
import type { IqReplies } from "../../src/routing/iqReplies.js";
import { startServer, type FerryServer } from "../../src/server.js";

export interface FerryOptions {
  hosts: string[];
  /** The S2S listener's address (default 127.0.0.1) and port (default: any free one). */
  address?: string;
  port?: number;
  /** A certificate for the S2S listener (STARTTLS, or direct TLS with `tlsMode = "tls"`). */
  cert?: { certFile: string; keyFile: string };
  tlsMode?: "starttls" | "starttls_required" | "tls";
  /** Also present `cert` on outgoing streams for the first host (SASL EXTERNAL). */
  clientCert?: boolean;
  /** CA file peers' certificates are checked against, both ways. */
  ca?: string;
  /** `outgoing.address` entries: domain → "ip:port". */
  routes?: Record<string, string>;
  dnsServers?: string[];
  shared?: string;
  probePrivate?: boolean;
  /** Extra lines for [s2s]. */
  s2sExtra?: string;
}

export function ferryToml(o: FerryOptions): string {
  const cert = o.cert;
  const first = o.hosts[0] ?? "localhost";
  const routes = Object.entries(o.routes ?? {}).map(([host, where]) => {
    const colon = where.lastIndexOf(":");
    return `{host = "${host}", ip_address = "${where.slice(0, colon)}", port = ${where.slice(colon + 1)}}`;
  });
  const listenerTls =
    cert === undefined
      ? ""
      : `tls.certfile = "${cert.certFile}"\ntls.keyfile = "${cert.keyFile}"\ntls.mode = "${o.tlsMode ?? "starttls"}"\n` +
        (o.ca === undefined ? "" : `tls.cacertfile = "${o.ca}"\n`);
  return `[general]
hosts = [${o.hosts.map((h) => `"${h}"`).join(", ")}]
${cert !== undefined && o.clientCert === true ? `domain_certfile = [{domain = "${first}", certfile = "${cert.certFile}", keyfile = "${cert.keyFile}"}]` : ""}

[[listen.s2s]]
port = ${o.port ?? 0}
ip_address = "${o.address ?? "127.0.0.1"}"
${listenerTls}
[[listen.http]]
port = 0
ip_address = "127.0.0.1"
probe_private = ${String(o.probePrivate ?? true)}

[s2s]
shared = "${o.shared ?? "probe-test-secret"}"
outgoing.connection_timeout = 3000
outgoing.max_retry_delay = 2
outgoing.dns.timeout = 1
outgoing.dns.retries = 1
outgoing.address = [${routes.join(", ")}]
${o.dnsServers === undefined ? "" : `outgoing.dns.servers = [${o.dnsServers.map((s) => `"${s}"`).join(", ")}]`}
${o.ca === undefined ? "" : `outgoing.tls.cacertfile = "${o.ca}"`}
${o.s2sExtra ?? ""}
`;
}

export interface RunningFerry {
  server: FerryServer;
  s2sPort: number;
  /** "ip:port" of the S2S listener. */
  s2s: string;
  stop(): Promise<void>;
}

export async function startFerry(o: FerryOptions, log: Logger = silentLogger): Promise<RunningFerry> {
  const server = await startServer(loadConfigText(ferryToml(o), "ferry.toml").config, log);
  const s2sPort = server.addresses.s2s[0]?.port ?? 0;
  return { server, s2sPort, s2s: `${o.address ?? "127.0.0.1"}:${s2sPort}`, stop: () => server.stop() };
}

export interface JsonAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: Record<string, unknown>;
}

export interface Prober extends RunningFerry {
  url: string;
  replies: IqReplies;
  post(path: string, body: unknown): Promise<JsonAnswer>;
}

/** A Ferry with the probe API on its HTTP listener. */
export async function startProber(
  o: FerryOptions,
  limits: Partial<LimitSettings> = { burst: 1000, perMinute: 1000 },
): Promise<Prober> {
  const config = loadConfigText(ferryToml(o), "prober.toml").config;
  const server = await startServer(config, silentLogger);
  // The server's own probe API, registered again with limits a test run does not hit.
  const replies = server.iqReplies;
  registerProbeApi(server.http, {
    config,
    log: silentLogger,
    trust: server.trust,
    replies,
    issuedKeys: server.issuedKeys,
    limits,
  });
  const url = `http://127.0.0.1:${server.addresses.http[0]?.port ?? 0}`;
  const s2sPort = server.addresses.s2s[0]?.port ?? 0;
  return {
    server,
    s2sPort,
    s2s: `${o.address ?? "127.0.0.1"}:${s2sPort}`,
    url,
    replies,
    stop: () => server.stop(),
    post: (path, body) => postJson(`${url}${path}`, typeof body === "string" ? body : JSON.stringify(body)),
  };
}

export function postJson(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  return call(url, "POST", body, { "content-type": "application/json", ...headers });
}

export function request(url: string, method: string): Promise<JsonAnswer> {
  return call(url, method);
}

function call(
  url: string,
  method: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            json: JSON.parse(text) as Record<string, unknown>,
          });
        } catch {
          reject(new Error(`not JSON (${res.statusCode ?? 0}): ${text}`));
        }
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * The features that decide TLS and authentication (STARTTLS, SASL-*, DIALBACK), in order: exact
 * assertions on those, whatever else Ferry offers (stream management…).
 */
export function negotiation(features: unknown): string[] {
  if (!Array.isArray(features)) return [];
  return features
    .map(String)
    .filter((name) => name === "STARTTLS" || name === "DIALBACK" || name.startsWith("SASL-"));
}
