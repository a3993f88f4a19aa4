/**
 * /debug/actors in a real browser (issue 6): two in-process Ferry servers federate through their
 * components while headless Chromium (Debian's, driven by playwright-core) watches A's page. The
 * link must appear in "established outgoing" and its state changes must arrive live, without a
 * reload; the JSON and the event stream are checked with plain fetch; no key, secret, password or
 * stanza body may show anywhere. A screenshot is kept as a test artifact.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import type { ActorsFeed } from "../../src/admin/actorsFeed.js";
import { groupActors, type ActorsPayload } from "../../src/admin/actorGroups.js";
import { renderGroups } from "../../src/admin/actorsRender.js";
import { activePaths, chartOf } from "../../src/admin/statechart.js";
import { queueMachine } from "../../machines/queue.js";
import { s2sOutMachine } from "../../machines/s2sOut.js";
import type { ActorView } from "../../src/routing/actorViews.js";
import { dialbackKey } from "../../src/xmpp/dialback.js";
import { connectComponent } from "../helpers/component.js";
import { ensureDebianPackage, runs } from "../helpers/debian.js";
import { freePort, type WirePeer } from "../helpers/wire.js";

const CHROMIUM = "/usr/bin/chromium";
const SHARED = { a: "dialback-secret-of-a-5e0c17", b: "dialback-secret-of-b-9d42a8" };
const PASSWORD = "component-password-71f3c2";
const LINK = "out:svc.a.example:svc.b.example";
const BODY = "over the ferry, watched";
const SCREENSHOT = path.join(tmpdir(), "ferry-artifacts", "debug-actors.png");

interface Side {
  server: FerryServer;
  comp: number;
}

function config(host: string, ports: { s2s: number; comp: number; http?: number }, peer: number): string {
  const other = host === "a.example" ? "b.example" : "a.example";
  const http =
    ports.http === undefined ? "" : `[[listen.http]]\nport = ${ports.http}\nip_address = "127.0.0.1"\n`;
  return `[general]
hosts = ["${host}"]

[[listen.s2s]]
port = ${ports.s2s}
ip_address = "127.0.0.1"

[[listen.service]]
port = ${ports.comp}
ip_address = "127.0.0.1"
password = "${PASSWORD}"

${http}
[s2s]
shared = "${host === "a.example" ? SHARED.a : SHARED.b}"
outgoing.address = [{host = "${other}", ip_address = "127.0.0.1", port = ${peer}}, {host = "svc.${other}", ip_address = "127.0.0.1", port = ${peer}}]
outgoing.connection_timeout = 2000
`;
}

async function pair(): Promise<[Side, Side]> {
  const [aS2s, aComp, aHttp, bS2s, bComp] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const start = (text: string, name: string): Promise<FerryServer> =>
    startServer(loadConfigText(text, name).config, silentLogger);
  const a = await start(config("a.example", { s2s: aS2s!, comp: aComp!, http: aHttp! }, bS2s!), "a.toml");
  const b = await start(config("b.example", { s2s: bS2s!, comp: bComp! }, aS2s!), "b.toml");
  return [
    { server: a, comp: aComp! },
    { server: b, comp: bComp! },
  ];
}

const message = (from: string, to: string, body: string): string =>
  `<message from='${from}' to='${to}' type='chat'><body>${body}</body></message>`;

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A plain-fetch client of the event stream: every `actors` message, and the raw text. */
class EventsClient {
  readonly messages: ActorsPayload[] = [];
  text = "";
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(
    url: string,
    readonly onHeaders: (res: Response) => void = () => undefined,
  ) {
    this.done = this.read(url).catch((err: unknown) => {
      if (!this.abort.signal.aborted) throw err;
    });
  }

  private async read(url: string): Promise<void> {
    const res = await fetch(url, { signal: this.abort.signal });
    this.onHeaders(res);
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of res.body ?? []) {
      const text = decoder.decode(chunk as Uint8Array, { stream: true });
      this.text += text;
      pending += text;
      let end: number;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (!/^event: actors$/m.test(block)) continue;
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data !== undefined) this.messages.push(JSON.parse(data) as ActorsPayload);
      }
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

function cardsOf(payload: ActorsPayload, group: string): string[] {
  return payload.groups.find((g) => g.id === group)?.cards.map((card) => card.key) ?? [];
}

function findView(views: ActorView[], predicate: (view: ActorView) => boolean): ActorView[] {
  return views.flatMap((view) => [...(predicate(view) ? [view] : []), ...findView(view.children, predicate)]);
}

describe("/debug/actors", () => {
  let a: Side;
  let b: Side;
  let compA: WirePeer;
  let compB: WirePeer;
  let feed: ActorsFeed;
  let base: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const foreignRequests: string[] = [];
  /** Everything the server handed out, for the leak check. */
  const served: string[] = [];

  before(async () => {
    ensureDebianPackage("chromium", () => existsSync(CHROMIUM) && runs(CHROMIUM, ["--version"]));
    [a, b] = await pair();
    feed = a.server.actorsFeed;
    const http = a.server.addresses.http[0];
    assert.ok(http, "A has an HTTP listener");
    base = `http://127.0.0.1:${http.port}`;
    compA = await connectComponent(a.comp, "svc.a.example", PASSWORD);
    compB = await connectComponent(b.comp, "svc.b.example", PASSWORD);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("console", (msg) => {
      if (msg.type() === "error") pageErrors.push(msg.text());
    });
    page.on("request", (req) => {
      if (!req.url().startsWith(base)) foreignRequests.push(req.url());
    });
  });

  after(async () => {
    await browser.close();
    compA.destroy();
    compB.destroy();
    await Promise.all([a.server.stop(), b.server.stop()]);
  });

  it("shows the federation link appear and change state live, in Chromium", async (t) => {
    const response = await page.goto(`${base}/debug/actors`);
    assert.equal(response?.status(), 200);
    assert.match(response.headers()["content-security-policy"] ?? "", /default-src 'none'/);
    served.push(await response.text());
    await until(
      "the page to follow the event stream",
      async () => (await page.textContent("#live"))?.startsWith("live") === true,
    );
    assert.equal(feed.subscribed, true, "the inspector is listened to while the page is open");
    const components = page.locator('section[data-group="components"] article[data-machine="component"]');
    assert.equal(await components.count(), 1, "A's component");
    assert.equal(await page.locator(`article[data-key="${LINK}"]`).count(), 0, "no link before a message");
    await page.evaluate("window.ferryNoReload = 1");

    compA.send(message("alice@svc.a.example", "bob@svc.b.example", BODY));
    await compB.waitFor(/over the ferry, watched/, 10_000);

    const established = page.locator(
      `section[data-group="established-outgoing"] article[data-key="${LINK}"][data-machine="s2sOut"]`,
    );
    await established.waitFor({ timeout: 10_000 });
    assert.match((await established.getAttribute("data-state")) ?? "", /^link\.open\.dialbackSucceeded/);
    assert.equal(
      await established.locator('.st.leaf[data-path="link.open.dialbackSucceeded"]').count(),
      1,
      "the connection's statechart highlights its current state",
    );
    const queue = page.locator(`section[data-group="queues"] article[data-key="${LINK}"]`);
    assert.equal(await queue.getAttribute("data-state"), "link.sending");
    assert.equal(await queue.locator('.st.on[data-path="link"]').count(), 1);
    assert.equal(await queue.locator('.st.leaf[data-path="link.sending"]').count(), 1);
    // The queue's way through its states arrived as live changes (the page was not reloaded).
    for (const state of ["link.connecting", "link.sending"]) {
      await page.locator(`#changes li[data-id="${LINK}"][data-to="${state}"]`).waitFor({ timeout: 5_000 });
    }
    assert.equal(await page.evaluate("window.ferryNoReload"), 1, "no reload happened");

    // The answer back makes A verify B (a verification, then an established incoming stream).
    compB.send(message("bob@svc.b.example", "alice@svc.a.example", "and back"));
    await compA.waitFor(/and back/, 10_000);
    await page
      .locator('section[data-group="established-incoming"] article[data-machine="s2sIn"]')
      .first()
      .waitFor({ timeout: 10_000 });
    await page.locator('#changes li[data-id^="verify:"][data-to="valid (done)"]').waitFor({ timeout: 5_000 });
    assert.deepEqual(pageErrors, [], "no script errors on the page");
    assert.deepEqual(foreignRequests, [], "the page loads nothing from elsewhere");

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.diagnostic(`screenshot: ${SCREENSHOT}`);
    served.push(await page.content());
  });

  it("serves the same data as JSON", async () => {
    const res = await fetch(`${base}/debug/actors.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const text = await res.text();
    served.push(text);
    const payload = JSON.parse(text) as ActorsPayload;
    assert.deepEqual(
      payload.groups.map((g) => g.id),
      [
        "connecting-incoming",
        "established-incoming",
        "connecting-outgoing",
        "established-outgoing",
        "queues",
        "verifications",
        "components",
        "other",
      ],
    );
    assert.deepEqual(cardsOf(payload, "established-outgoing"), [LINK]);
    assert.ok(cardsOf(payload, "queues").includes(LINK));
    assert.equal(cardsOf(payload, "components").length, 1);
    const queue = payload.views.find((view) => view.id === LINK);
    assert.equal(queue?.state, "link.sending");
    assert.equal(queue.children[0]?.machine, "s2sOut");
    for (const machine of ["queue", "s2sOut", "s2sIn", "component"]) {
      assert.ok(payload.machines[machine], `statechart of ${machine}`);
    }
    assert.equal(payload.machines.queue?.initial, "idle");
  });

  it("streams changes as Server-Sent Events, listening to actors only while someone watches", async () => {
    const events = new EventsClient(`${base}/debug/actors/events`, (res) => {
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    });
    try {
      await until("the first message", () => events.messages.length > 0);
      assert.deepEqual(cardsOf(events.messages[0]!, "established-outgoing"), [LINK]);
      // An actor comes: a third component connects to A.
      const compC = await connectComponent(a.comp, "svc2.a.example", PASSWORD);
      await until("the component's arrival", () =>
        events.messages.some((m) =>
          m.changes?.some((c) => c.machine === "component" && c.from === undefined),
        ),
      );
      // …and goes.
      compC.destroy();
      await until("the component's departure", () =>
        events.messages.some((m) => m.changes?.some((c) => c.machine === "component" && c.to === "(gone)")),
      );
      assert.equal(cardsOf(events.messages.at(-1)!, "components").length, 1);
    } finally {
      await events.close();
      served.push(events.text);
    }
    await page.close();
    await until("the last client to leave", () => feed.size === 0);
    assert.equal(feed.subscribed, false, "no inspector once nobody watches");
  });

  it("shows no dialback key, secret, password or stanza body anywhere", async () => {
    const res = await fetch(`${base}/debug/actors.json`);
    const text = await res.text();
    served.push(text);
    const payload = JSON.parse(text) as ActorsPayload;
    // The keys of these streams: A's to B (over B's stream id) and B's to A (over A's).
    const outIds = findView(payload.views, (v) => v.machine === "s2sOut").map((v) => v.context.streamId);
    const inIds = findView(payload.views, (v) => v.machine === "s2sIn").map((v) => v.context.streamId);
    assert.ok(outIds.length > 0 && inIds.length > 0, "streams to derive the keys from");
    const secrets = [
      SHARED.a,
      SHARED.b,
      createHash("sha256").update(SHARED.a).digest("hex"),
      createHash("sha256").update(SHARED.b).digest("hex"),
      PASSWORD,
      BODY,
      ...outIds.map((id) => dialbackKey(SHARED.a, "svc.b.example", "svc.a.example", String(id))),
      ...inIds.map((id) => dialbackKey(SHARED.b, "svc.a.example", "svc.b.example", String(id))),
    ];
    assert.ok(served.length >= 4, "the page, its live state, the JSON and the event stream were kept");
    for (const text of served) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `leaked: ${secret}`);
    }
  });
});

describe("statecharts and groups", () => {
  it("draws a machine from its definition and finds the active states of a flattened label", () => {
    const chart = chartOf(s2sOutMachine);
    assert.equal(chart.type, "parallel");
    assert.deepEqual(
      chart.states.map((s) => s.key),
      ["link", "dialback"],
    );
    assert.deepEqual(activePaths(chart, "link.open.saslSucceeded.restarting,dialback.couldSend").sort(), [
      "dialback",
      "dialback.couldSend",
      "link",
      "link.open",
      "link.open.saslSucceeded",
      "link.open.saslSucceeded.restarting",
    ]);
    const queue = chartOf(queueMachine);
    const backoff = queue.states.find((s) => s.key === "backoff");
    assert.ok(backoff?.on.some((t) => t.event === "after retryDelay" && t.guard === "hasPending"));
    assert.deepEqual(activePaths(queue, "nowhere.at.all"), []);
  });

  it("groups connections like jabberd14 and escapes what peers control", () => {
    const view = (
      id: string,
      machine: string,
      state: string,
      context: Record<string, unknown>,
    ): ActorView => ({
      id,
      machine,
      state,
      status: "active",
      context,
      children: [],
    });
    const hostile = "<img src=x onerror=alert(1)>";
    const views = [
      view("in:s1", "s2sIn", "connecting.waitForStream", { streamId: "s1" }),
      view("in:s2", "s2sIn", "established", {
        streamId: "s2",
        localDomain: "a.example",
        remoteDomain: hostile,
      }),
      {
        ...view("out:a.example:b.example", "queue", "link.connecting", {
          local: "a.example",
          remote: "b.example",
        }),
        children: [view("conn", "s2sOut", "link.connecting,dialback.noRequest", {})],
      },
    ];
    const machines = { queue: chartOf(queueMachine), s2sOut: chartOf(s2sOutMachine) };
    const groups = groupActors(views, machines);
    const payload: ActorsPayload = { at: new Date().toISOString(), views, groups, machines };
    assert.deepEqual(cardsOf(payload, "connecting-incoming"), ["in:s1"]);
    assert.deepEqual(cardsOf(payload, "established-incoming"), ["in:s2"]);
    assert.deepEqual(cardsOf(payload, "connecting-outgoing"), ["out:a.example:b.example"]);
    assert.deepEqual(cardsOf(payload, "established-outgoing"), []);
    assert.equal(groups.find((g) => g.id === "connecting-outgoing")?.cards[0]?.child, "conn");
    const html = renderGroups(payload);
    assert.ok(!html.includes(hostile));
    assert.ok(html.includes("&#60;img src=x onerror=alert(1)&#62;"));
  });
});
