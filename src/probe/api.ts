/**
 * The S2S probe HTTP API on `[[listen.http]]` (seed 002, issue 8). Every answer is JSON.
 *
 *   POST /api/xmpp-s2s/connect   {host, port=5269, fromDomain?, toDomain=host, useTLS=true,
 *                                 directTLS=(port 5270), timeout=15000, verifyCertificate=false}
 *   POST /api/xmpp-s2s/ping      the same; fromDomain (default: the first hosted domain) must be
 *                                 a domain this server hosts, so the remote can verify dialback
 *   POST /api/xmpp-s2s/diagnose  {domain, fromDomain?, requireTls?, timeout=10000 (per stream)}
 *
 * Statuses:
 *   200  the probe ran: connect/ping `success` true or false (then `error`, `code`, `phase`),
 *        diagnose `ok` true or false with `problems`. A remote failure is never an HTTP error.
 *   400  the request is wrong: `{error, field}` names the field (`body` for size or JSON).
 *   403  `{success: false, code: "address_private", error}`: the address is private or loopback and
 *        `probe_private` is off for this listener.
 *   429  `{code: "rate_limited"}` per client address (every request with a readable body counts);
 *        503 `{code: "busy"}` when the concurrent probes are at their bound. Both with Retry-After.
 *   405  any other method.
 * The API opens connections for whoever reaches the listener: like the rest of [[listen.http]], keep
 * it on loopback or behind an authenticating proxy.
 * Failure codes: dns_nxdomain, dns_error, tcp_refused, tcp_timeout, tcp_unreachable, tls_failed,
 * cert_invalid, stream_error:<condition>, stream_closed, connection_closed, no_stream_id,
 * no_auth_method, sasl_failed, dialback_invalid, dialback_error, timeout (with `phase`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../config/schema.js";
import { listenerOf, type HttpRoutes } from "../admin/http.js";
import type { Logger } from "../log.js";
import type { IqReplies } from "../routing/iqReplies.js";
import type { IssuedKeys } from "../s2s/issuedKeys.js";
import type { Trust } from "../s2s/trust.js";
import { probeConnect } from "./connect.js";
import { diagnose } from "./diagnose.js";
import { AddressRefused } from "./failure.js";
import { ProbeLimits, type LimitSettings } from "./limits.js";
import { probePing } from "./ping.js";
import { probeEnv, type ProbeEnv } from "./probeEnv.js";
import {
  MAX_BODY_BYTES,
  parseBody,
  validateDiagnoseRequest,
  validateStreamRequest,
  type Validated,
} from "./validate.js";

export interface ProbeApiOptions {
  config: Config;
  log: Logger;
  /** The server's trust layer: our certificates (SASL EXTERNAL) and the outgoing certificate checks. */
  trust: Trust;
  /** The table the server's hostedDomains hands iq replies to (ping answers arrive there). */
  replies: IqReplies;
  /** The server's sent dialback keys: the probe's keys go there too, so the remote's check succeeds. */
  issuedKeys?: IssuedKeys;
  /** Overrides of the concurrency bound and per-client rate (tests). */
  limits?: Partial<LimitSettings>;
}

type Json = Record<string, unknown>;

const PATHS = {
  connect: "/api/xmpp-s2s/connect",
  ping: "/api/xmpp-s2s/ping",
  diagnose: "/api/xmpp-s2s/diagnose",
} as const;

export function registerProbeApi(routes: HttpRoutes, options: ProbeApiOptions): void {
  const limits = new ProbeLimits(options.limits);
  const log = options.log.child("HTTP", "probe");
  const hosts = options.config.general.hosts;
  const envFor = (req: IncomingMessage): ProbeEnv =>
    probeEnv(options.config, {
      trust: options.trust,
      log: options.log,
      replies: options.replies,
      // `probe_private` of the [[listen.http]] the request came in on.
      allowPrivate: listenerOf(req).probePrivate,
      dialbackVerifiable: true,
      issuedKeys: options.issuedKeys,
    });
  /** fromDomain for ping and diagnose: hosted here, so the remote's db:verify comes back to us. */
  const hostedFrom = (from: string | undefined): Validated<string> => {
    const domain = from ?? hosts[0] ?? "";
    return hosts.includes(domain)
      ? { ok: true, value: domain }
      : {
          ok: false,
          field: "fromDomain",
          error: `fromDomain must be a domain this server hosts (${hosts.join(", ")})`,
        };
  };

  const endpoint =
    (run: (body: Json, req: IncomingMessage) => Promise<{ status: number; body: Json }>) =>
    async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      // The body first (at most 16 KiB, within BODY_TIMEOUT_MS): a slow sender holds no probe slot.
      const text = await readBody(req);
      if (!text.ok) {
        sendJson(res, 400, { error: text.error, field: text.field }, { connection: "close" });
        return;
      }
      const client = req.socket.remoteAddress ?? "unknown";
      const admission = limits.admit(client);
      if (!admission.ok) {
        const { status, error, code, retryAfterSeconds } = admission;
        sendJson(res, status, { success: false, error, code }, { "retry-after": String(retryAfterSeconds) });
        return;
      }
      try {
        const body = parseBody(text.value);
        const answer = body.ok ? await run(body.value, req) : badRequest(body);
        sendJson(res, answer.status, answer.body);
      } catch (err) {
        if (err instanceof AddressRefused) {
          sendJson(res, 403, { success: false, error: err.message, code: err.code });
          return;
        }
        log.error(`${req.url ?? "?"}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        sendJson(res, 500, { success: false, error: "internal error", code: "internal_error" });
      } finally {
        admission.release();
      }
    };

  const streamProbe = (kind: "connect" | "ping") =>
    endpoint(async (body, req) => {
      const request = validateStreamRequest(body);
      if (!request.ok) return badRequest(request);
      const from =
        kind === "ping"
          ? hostedFrom(request.value.fromDomain)
          : { ok: true as const, value: request.value.fromDomain ?? hosts[0] ?? "" };
      if (!from.ok) return badRequest(from);
      const env = envFor(req);
      const result =
        kind === "ping"
          ? await probePing(request.value, from.value, env)
          : await probeConnect(request.value, from.value, env);
      const { host, port } = request.value;
      log.info(
        `${kind} ${host}:${port} for ${req.socket.remoteAddress ?? "?"}: ${result.success ? "ok" : (result.code ?? "failed")}`,
      );
      return { status: 200, body: { ...result } };
    });

  const diagnoseProbe = endpoint(async (body, req) => {
    const request = validateDiagnoseRequest(body);
    if (!request.ok) return badRequest(request);
    const from = hostedFrom(request.value.fromDomain);
    if (!from.ok) return badRequest(from);
    const report = await diagnose(
      {
        domain: request.value.domain,
        fromDomain: from.value,
        requireTls: request.value.requireTls,
        timeout: request.value.timeout,
      },
      envFor(req),
    );
    log.info(
      `diagnose ${report.domain} for ${req.socket.remoteAddress ?? "?"}: ${report.ok ? "ok" : report.problems.map((p) => p.code).join(", ")}`,
    );
    return { status: 200, body: { ...report } };
  });

  const handlers = { connect: streamProbe("connect"), ping: streamProbe("ping"), diagnose: diagnoseProbe };
  for (const [name, path] of Object.entries(PATHS) as [keyof typeof PATHS, string][]) {
    routes.add({ method: "POST", path, handler: handlers[name] });
    for (const method of ["GET", "DELETE"] as const) {
      routes.add({
        method,
        path,
        handler: (_req, res) => {
          sendJson(
            res,
            405,
            { error: `${path} takes POST with a JSON body`, field: "method" },
            { allow: "POST" },
          );
        },
      });
    }
  }
}

function badRequest(refusal: { error: string; field: string }): { status: number; body: Json } {
  return { status: 400, body: { error: refusal.error, field: refusal.field } };
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: Json,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res
    .writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      "content-length": String(Buffer.byteLength(text)),
      ...headers,
    })
    .end(text);
}

/** How long a client may take to send its body. */
const BODY_TIMEOUT_MS = 10_000;

/**
 * The body as text: at most MAX_BODY_BYTES (refused as soon as it is known to be larger), within
 * BODY_TIMEOUT_MS. Never rejects; an aborted request gives a refusal nobody reads.
 */
function readBody(req: IncomingMessage): Promise<Validated<string>> {
  const refuse = (error: string): Validated<string> => ({ ok: false, field: "body", error });
  const tooLarge = refuse(`the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers["content-length"] ?? "0") > MAX_BODY_BYTES) {
    req.resume(); // the connection closes after the answer; nothing more is kept in memory
    return Promise.resolve(tooLarge);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: Validated<string>): void => {
      clearTimeout(timer);
      req.off("data", onData);
      resolve(result);
    };
    const timer = setTimeout(() => {
      req.resume();
      finish(refuse(`the body did not arrive within ${BODY_TIMEOUT_MS / 1000} s`));
    }, BODY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.resume();
        finish(tooLarge);
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => {
      finish({ ok: true, value: Buffer.concat(chunks).toString("utf8") });
    });
    req.once("error", () => {
      finish(refuse("the request was aborted"));
    });
    req.once("close", () => {
      finish(refuse("the request was aborted"));
    });
  });
}
