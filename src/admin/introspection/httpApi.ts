/**
 * The HTTP twin of the disco tree (issue 7), on `[[listen.http]]`: the same data as JSON and the
 * same two actions. Bearer-token protected (`api_token`); a listener without a token does not
 * serve these paths at all.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { listenerOf, type HttpHandler, type HttpRoutes } from "../http.js";
import { Jid } from "../../xmpp/jid.js";
import type { Introspection } from "./introspection.js";

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res
    .writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    })
    .end(`${JSON.stringify(body, null, 2)}\n`);
}

const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

/** RFC 6750: the token in `Authorization: Bearer …`, compared in constant time. */
function authorized(req: IncomingMessage, res: ServerResponse): boolean {
  const token = listenerOf(req).apiToken;
  if (token === undefined) {
    sendJson(res, 404, { error: "the admin API is off on this listener: set api_token in [[listen.http]]" });
    return false;
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  const given = match?.[1];
  if (given === undefined || !timingSafeEqual(digest(given), digest(token))) {
    sendJson(
      res,
      401,
      {
        error:
          given === undefined
            ? "missing bearer token (Authorization: Bearer <api_token>)"
            : "wrong bearer token",
      },
      { "www-authenticate": `Bearer realm="ferry"${given === undefined ? "" : ', error="invalid_token"'}` },
    );
    return false;
  }
  return true;
}

/** A domain as a path parameter: a JID with only a domain part. */
function domainParam(value: string | undefined): string | undefined {
  const jid = Jid.tryParse(value ?? "");
  return jid !== undefined && jid.local === "" && jid.resource === "" ? jid.domain : undefined;
}

/** An authorized request on a `{domain}` path; a malformed domain is a 400 naming the field. */
function withDomain(handle: (res: ServerResponse, domain: string) => void): HttpHandler {
  return (req, res, params) => {
    if (!authorized(req, res)) return;
    const domain = domainParam(params.domain);
    if (domain === undefined) {
      sendJson(res, 400, {
        error: `not a domain name: ${JSON.stringify(params.domain ?? "")}`,
        field: "domain",
      });
      return;
    }
    handle(res, domain);
  };
}

export function registerIntrospectionApi(routes: HttpRoutes, introspection: Introspection): void {
  routes
    .add({
      method: "GET",
      path: "/api/connections",
      handler: (req, res) => {
        if (authorized(req, res)) sendJson(res, 200, introspection.json());
      },
    })
    .add({
      method: "DELETE",
      path: "/api/connections/{id}",
      handler: (req, res, params) => {
        if (!authorized(req, res)) return;
        const id = params.id ?? "";
        if (!/^[A-Za-z0-9._-]{1,100}$/.test(id)) {
          sendJson(res, 400, { error: "id must be a connection id from GET /api/connections", field: "id" });
          return;
        }
        const result = introspection.close(id, `HTTP API (${req.socket.remoteAddress ?? "?"})`);
        sendJson(
          res,
          result.ok ? 202 : result.status,
          result.ok ? { ok: true, message: result.text } : { error: result.text },
        );
      },
    })
    .add({
      method: "GET",
      path: "/api/links",
      handler: (req, res) => {
        if (authorized(req, res)) sendJson(res, 200, { domains: introspection.history.list() });
      },
    })
    .add({
      method: "GET",
      path: "/api/links/{domain}",
      handler: withDomain((res, domain) => {
        sendJson(res, 200, introspection.linkJson(domain));
      }),
    })
    .add({
      method: "POST",
      path: "/api/links/{domain}/retry",
      handler: withDomain((res, domain) => {
        const result = introspection.retry(domain);
        sendJson(
          res,
          result.ok ? 202 : result.status,
          result.ok ? { ok: true, message: result.text } : { error: result.text },
        );
      }),
    });
}
