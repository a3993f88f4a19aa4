/**
 * Ferry's HTTP listener (`[[listen.http]]`): a small router over node:http for the observability
 * endpoints and, later, the admin and probe APIs. Handlers are registered by path; each gets the
 * request and response and may be async. Unknown paths are 404, wrong methods 405.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.js";

export type HttpHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  /** The `{name}` segments of the route's path, decoded. */
  params: Readonly<Record<string, string>>,
) => void | Promise<void>;

export interface HttpRoute {
  method: "GET" | "POST" | "DELETE";
  /** Exact, or with `{name}` segments (`/api/links/{domain}/retry`). */
  path: string;
  handler: HttpHandler;
}

/** What a request's listener allows (`[[listen.http]]` options). */
export interface HttpListenerInfo {
  apiToken?: string | undefined;
  probePrivate: boolean;
}

const listenerOfRequest = new WeakMap<http.IncomingMessage, HttpListenerInfo>();

/** The `[[listen.http]]` options of the listener a request came in on. */
export function listenerOf(req: http.IncomingMessage): HttpListenerInfo {
  return listenerOfRequest.get(req) ?? { probePrivate: false };
}

interface Template {
  segments: string[];
  byMethod: Map<string, HttpHandler>;
}

export class HttpRoutes {
  private readonly routes = new Map<string, Map<string, HttpHandler>>();
  private readonly templates: Template[] = [];

  add(route: HttpRoute): this {
    let byMethod: Map<string, HttpHandler> | undefined;
    if (route.path.includes("{")) {
      const segments = route.path.split("/");
      const existing = this.templates.find((t) => t.segments.join("/") === route.path);
      byMethod = existing?.byMethod ?? new Map<string, HttpHandler>();
      if (!existing) this.templates.push({ segments, byMethod });
    } else {
      byMethod = this.routes.get(route.path);
      if (!byMethod) {
        byMethod = new Map();
        this.routes.set(route.path, byMethod);
      }
    }
    byMethod.set(route.method, route.handler);
    return this;
  }

  private match(
    path: string,
  ): { byMethod: Map<string, HttpHandler>; params: Record<string, string> } | undefined {
    const exact = this.routes.get(path);
    if (exact) return { byMethod: exact, params: {} };
    const parts = path.split("/");
    for (const template of this.templates) {
      if (template.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const fits = template.segments.every((segment, i) => {
        const part = parts[i] ?? "";
        if (!segment.startsWith("{")) return segment === part;
        try {
          params[segment.slice(1, -1)] = decodeURIComponent(part);
        } catch {
          return false;
        }
        return part !== "";
      });
      if (fits) return { byMethod: template.byMethod, params };
    }
    return undefined;
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse, log: Logger): void {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const matched = this.match(path);
    if (!matched) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const { byMethod, params } = matched;
    const handler = byMethod.get(req.method ?? "GET");
    if (!handler) {
      res.writeHead(405, { "content-type": "text/plain", allow: [...byMethod.keys()].join(", ") }).end();
      return;
    }
    Promise.resolve(handler(req, res, params)).catch((err: unknown) => {
      log.error(`${req.method ?? "?"} ${path}: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error\n");
    });
  }
}

export async function listenHttp(
  options: { port: number; host: string } & Partial<HttpListenerInfo>,
  routes: HttpRoutes,
  log: Logger,
): Promise<http.Server> {
  const info: HttpListenerInfo = { apiToken: options.apiToken, probePrivate: options.probePrivate ?? false };
  const server = http.createServer((req, res) => {
    listenerOfRequest.set(req, info);
    routes.handle(req, res, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: options.port, host: options.host }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  log.notice(`HTTP listening on ${options.host}:${(server.address() as AddressInfo).port}`);
  return server;
}
