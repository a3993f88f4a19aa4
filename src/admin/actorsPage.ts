/**
 * /debug/actors (issue 6): every live actor grouped like jabberd14's s2s browser (seed 000), with
 * its state, sanitized context and statechart, updated live; the self-hosted alternative to the
 * Stately inspector (research/architecture.md §2.3).
 *
 *   GET /debug/actors         the page (self-contained HTML)
 *   GET /debug/actors.json    the same data: views, groups, statecharts
 *   GET /debug/actors/events  Server-Sent Events, one `actors` message per change (debounced)
 */
import type { HttpRoutes } from "./http.js";
import type { ActorRegistry } from "../routing/registry.js";
import { buildPayload } from "./actorGroups.js";
import { ActorsFeed } from "./actorsFeed.js";
import { actorsPage, PAGE_CSP } from "./actorsHtml.js";

export function registerActorsPage(routes: HttpRoutes, registry: ActorRegistry): ActorsFeed {
  const payload = () => buildPayload(registry);
  const feed = new ActorsFeed(registry, payload);
  routes
    .add({
      method: "GET",
      path: "/debug/actors",
      handler: (_req, res) => {
        res
          .writeHead(200, {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "content-security-policy": PAGE_CSP,
          })
          .end(actorsPage(payload()));
      },
    })
    .add({
      method: "GET",
      path: "/debug/actors.json",
      handler: (_req, res) => {
        res
          .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
          .end(JSON.stringify(payload()));
      },
    })
    .add({
      method: "GET",
      path: "/debug/actors/events",
      handler: (_req, res) => {
        feed.attach(res);
      },
    });
  return feed;
}
