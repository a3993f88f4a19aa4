/**
 * Ferry's HTTP listener (`[[listen.http]]`): a small router over node:http for the observability
 * endpoints and, later, the admin and probe APIs. Handlers are registered by path; each gets the
 * request and response and may be async. Unknown paths are 404, wrong methods 405.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.js";

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface HttpRoute {
  method: "GET" | "POST" | "DELETE";
  path: string;
  handler: HttpHandler;
}

export class HttpRoutes {
  private readonly routes = new Map<string, Map<string, HttpHandler>>();

  add(route: HttpRoute): this {
    let byMethod = this.routes.get(route.path);
    if (!byMethod) {
      byMethod = new Map();
      this.routes.set(route.path, byMethod);
    }
    byMethod.set(route.method, route.handler);
    return this;
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse, log: Logger): void {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const byMethod = this.routes.get(path);
    const handler = byMethod?.get(req.method ?? "GET");
    if (!byMethod) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    if (!handler) {
      res.writeHead(405, { "content-type": "text/plain", allow: [...byMethod.keys()].join(", ") }).end();
      return;
    }
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      log.error(`${req.method ?? "?"} ${path}: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error\n");
    });
  }
}

export async function listenHttp(
  options: { port: number; host: string },
  routes: HttpRoutes,
  log: Logger,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
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
