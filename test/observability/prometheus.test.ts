/**
 * The Grafana dashboard and the alert rules in grafana/, proven on a real Prometheus: two in-process
 * Ferry servers federate (SASL EXTERNAL one way, dialback the other, both over STARTTLS), one link
 * fails (connection refused, so a bounce), one outgoing link and one incoming stream hang in
 * negotiation. Prometheus scrapes both servers every second; every PromQL expression of the
 * dashboard and of the alert rules must be valid and return series. promtool checks the scraped
 * text and the rules file.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { connectComponent } from "../helpers/component.js";
import { RunDir, Teardown } from "../helpers/peers/runDir.js";
import {
  Prometheus,
  allPanels,
  dashboardExpressions,
  ensurePrometheus,
  promtool,
  readDashboard,
  withoutThresholds,
  type Expression,
  type QueryResult,
} from "../helpers/prometheus.js";
import { TestPki, type IssuedCertificate } from "../helpers/testPki.js";
import { S2S_HEADER, WirePeer, freePort } from "../helpers/wire.js";

// dist/test/observability → the repository root, where grafana/ lives (it is not compiled).
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DASHBOARD = path.join(ROOT, "grafana", "dashboard.json");
const ALERTS = path.join(ROOT, "grafana", "alerts.yml");

// Its own loopback address, so no other test file's peer can answer in its place.
const PROMETHEUS = { address: "127.0.0.61", port: 9090 };
const JOB = "ferry";

// How long a query that returns nothing yet is retried: histograms get a series only when an actor
// leaves a state, and rate() needs two samples after that.
const SETTLE_MS = 15_000;

// --- the two Ferry servers ---------------------------------------------------------------------------

interface Side {
  server: FerryServer;
  s2s: number;
  comp: number;
  http: number;
}

function ferryConfig(o: {
  host: string;
  s2s: number;
  comp: number;
  http: number;
  listenCert: IssuedCertificate;
  outgoingCert: IssuedCertificate;
  ca: string;
  peers: Record<string, number>;
}): string {
  const overrides = Object.entries(o.peers)
    .map(([host, port]) => `{host = "${host}", ip_address = "127.0.0.1", port = ${port}}`)
    .join(", ");
  // state_timeout outlasts the test, so the links left hanging on purpose are still negotiating when
  // Prometheus is asked about them.
  return `[general]
hosts = ["${o.host}"]

[[listen.s2s]]
port = ${o.s2s}
ip_address = "127.0.0.1"
state_timeout = 120000
tls.certfile = "${o.listenCert.certFile}"
tls.keyfile = "${o.listenCert.keyFile}"
tls.cacertfile = "${o.ca}"

[[listen.service]]
port = ${o.comp}
ip_address = "127.0.0.1"
password = "secret"

[[listen.http]]
port = ${o.http}
ip_address = "127.0.0.1"

[s2s]
outgoing.address = [${overrides}]
outgoing.connection_timeout = 2000
outgoing.max_retry_delay = 2
outgoing.state_timeout = 120000
outgoing.tls.certfile = "${o.outgoingCert.certFile}"
outgoing.tls.keyfile = "${o.outgoingCert.keyFile}"
outgoing.tls.cacertfile = "${o.ca}"
`;
}

const message = (from: string, to: string, body: string, id: string, type = "chat"): string =>
  `<message from='${from}' to='${to}' id='${id}' type='${type}'><body>${body}</body></message>`;

async function scrape(side: Side): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${side.http}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /metrics on port ${side.http}: ${res.status} ${text}`);
  return text;
}

/** Fails listing every item (one assertion for all, so one run shows every problem). */
function assertNone(items: string[], title: string): void {
  assert.ok(items.length === 0, `${title}:\n${items.join("\n")}`);
}

/**
 * Queries each expression; those that need series but return none are retried until SETTLE_MS has
 * passed. Returns the invalid ones and those still without the series they need.
 */
async function evaluate(
  prometheus: Prometheus,
  expressions: Expression[],
): Promise<{ invalid: string[]; empty: string[] }> {
  const results = new Map<Expression, QueryResult>();
  const deadline = Date.now() + SETTLE_MS;
  let pending = expressions;
  for (;;) {
    for (const e of pending) results.set(e, await prometheus.query(e.expr));
    pending = pending.filter((e) => {
      const r = results.get(e);
      return e.needsSeries && r?.ok === true && r.series.length === 0;
    });
    if (pending.length === 0 || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const invalid: string[] = [];
  const empty: string[] = [];
  for (const [e, r] of results) {
    if (!r.ok) invalid.push(`invalid: ${e.where}: ${r.error}\n    ${e.expr}`);
    else if (e.needsSeries && r.series.length === 0) empty.push(`no series: ${e.where}\n    ${e.expr}`);
  }
  return { invalid, empty };
}

describe("Grafana dashboard and alert rules on a real Prometheus", () => {
  const teardown = new Teardown();
  let run: RunDir;
  let a: Side;
  let b: Side;
  let prometheus: Prometheus;

  before(
    async () => {
      ensurePrometheus();
      run = RunDir.create("prometheus");
      teardown.add(() => {
        run.remove();
      });

      // A's certificates verify, so A → B authenticates with SASL EXTERNAL; B presents an expired
      // client certificate, so B → A falls back to dialback. Both links start with STARTTLS.
      const pki = new TestPki(run);
      const ca = pki.issue("ca", { ca: true, cn: "Ferry Test CA" });
      const leaf = (name: string, domain: string, notAfter?: Date): IssuedCertificate =>
        pki.issue(name, {
          issuer: ca,
          san: [`DNS:${domain}`, `DNS:*.${domain}`],
          eku: "serverAuth",
          ...(notAfter === undefined
            ? {}
            : { notBefore: new Date(notAfter.getTime() - 86_400_000), notAfter }),
        });
      const certA = leaf("a", "a.example");
      const certB = leaf("b", "b.example");
      const expiredB = leaf("b-expired", "b.example", new Date(Date.now() - 3_600_000));

      // A remote server that accepts TCP and never answers: A's link to it waits for a stream header.
      const silentSockets = new Set<net.Socket>();
      const silent = net.createServer((socket) => {
        silentSockets.add(socket);
        socket.on("error", () => undefined);
        // Read and discard: an unread socket never sees the peer's FIN, and close() would wait forever.
        socket.resume();
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      teardown.add(
        () =>
          new Promise<void>((resolve) => {
            for (const socket of silentSockets) socket.destroy();
            silent.close(() => {
              resolve();
            });
          }),
      );
      const accepted = new Promise<void>((resolve) => {
        silent.once("connection", () => {
          resolve();
        });
      });
      const silentPort = (silent.address() as net.AddressInfo).port;

      const [aS2s, aComp, aHttp, bS2s, bComp, bHttp, deadPort] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      const start = async (config: string, name: string): Promise<FerryServer> => {
        const server = await startServer(loadConfigText(config, name).config, silentLogger);
        teardown.add(() => server.stop());
        return server;
      };
      a = {
        server: await start(
          ferryConfig({
            host: "a.example",
            s2s: aS2s,
            comp: aComp,
            http: aHttp,
            listenCert: certA,
            outgoingCert: certA,
            ca: ca.certFile,
            peers: {
              "b.example": bS2s,
              "svc.b.example": bS2s,
              "down.example": deadPort,
              "stuck.example": silentPort,
            },
          }),
          "a.toml",
        ),
        s2s: aS2s,
        comp: aComp,
        http: aHttp,
      };
      b = {
        server: await start(
          ferryConfig({
            host: "b.example",
            s2s: bS2s,
            comp: bComp,
            http: bHttp,
            listenCert: certB,
            outgoingCert: expiredB,
            ca: ca.certFile,
            peers: { "a.example": aS2s, "svc.a.example": aS2s },
          }),
          "b.toml",
        ),
        s2s: bS2s,
        comp: bComp,
        http: bHttp,
      };

      // Scraping from the start, so counters are seen before and after they move.
      prometheus = await Prometheus.start({
        runDir: run,
        ...PROMETHEUS,
        job: JOB,
        targets: [a, b].map((side) => `127.0.0.1:${side.http}`),
        ruleFiles: [ALERTS],
      });
      teardown.add(() => prometheus.stop());

      const compA = await connectComponent(a.comp, "svc.a.example", "secret");
      const compB = await connectComponent(b.comp, "svc.b.example", "secret");
      teardown.add(() => {
        compA.destroy();
        compB.destroy();
      });
      // Messages, presence and iq both ways over federation.
      compA.send(message("alice@svc.a.example", "bob@svc.b.example", "over the ferry", "m1"));
      await compB.waitFor(/<body>over the ferry<\/body>/, 10_000);
      compB.send(message("bob@svc.b.example", "alice@svc.a.example", "and back", "m2"));
      await compA.waitFor(/<body>and back<\/body>/, 10_000);
      compA.send("<presence from='alice@svc.a.example' to='bob@svc.b.example'/>");
      await compB.waitFor(/<presence [^>]*from=['"]alice@svc\.a\.example['"]/, 10_000);
      compB.send(
        "<iq type='get' id='ping-a' from='bob@svc.b.example' to='a.example'><ping xmlns='urn:xmpp:ping'/></iq>",
      );
      await compB.waitFor(/<iq [^>]*id=['"]ping-a['"]/, 10_000);

      // A dead domain: connection refused, the message bounces.
      compA.send(message("alice@svc.a.example", "bob@down.example", "anyone?", "d1"));
      await compA.waitFor(/id=['"]d1['"][\s\S]*?<\/message>/, 10_000);
      // An error cannot be bounced (RFC 6120 §8.3.1): to the dead domain it is dropped, and counted.
      // (Not to an unknown domain: its DNS lookup could take seconds where there is no network.)
      compA.send(message("alice@svc.a.example", "bob@down.example", "undeliverable", "e1", "error"));

      // A message for the silent server waits in its queue while the link waits for a header.
      compA.send(message("alice@svc.a.example", "bob@stuck.example", "are you there?", "s1"));
      await accepted;
      // An incoming stream that never authenticates.
      const stuckIn = await WirePeer.connect(a.s2s);
      teardown.add(() => {
        stuckIn.destroy();
      });
      stuckIn.send(S2S_HEADER("a.example", "stuck.example"));
      await stuckIn.waitFor(/<\/stream:features>/, 10_000);

      // Two scrapes of both servers after the traffic, so rate() and increase() have their samples.
      const trafficDone = Date.now() / 1000;
      await prometheus.waitUntil(
        async () => {
          const r = await prometheus.query(`timestamp(up{job="${JOB}"} == 1)`);
          return (
            r.ok && r.series.length === 2 && r.series.every((s) => Number(s.value?.[1]) > trafficDone + 2)
          );
        },
        20_000,
        "scraping both Ferry servers",
      );
    },
    { timeout: 60_000 },
  );

  after(async () => {
    await teardown.run();
  });

  it("serves /metrics that `promtool check metrics` accepts, on both servers", async () => {
    const problems: string[] = [];
    for (const [name, side] of [["A", a] as const, ["B", b] as const]) {
      const r = await promtool(["check", "metrics"], await scrape(side));
      if (r.code !== 0) problems.push(`server ${name} (exit ${String(r.code)}):\n${r.stdout}${r.stderr}`);
    }
    assertNone(problems, "promtool check metrics");
  });

  it("has alert rules that `promtool check rules` accepts", async () => {
    const r = await promtool(["check", "rules", ALERTS]);
    assert.equal(r.code, 0, `promtool check rules:\n${r.stdout}${r.stderr}`);
  });

  it("is a well-formed dashboard: unique panel ids, every panel queries the datasource variable", () => {
    const dashboard = readDashboard(DASHBOARD);
    const panels = allPanels(dashboard.panels);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    // A datasource variable rather than a fixed uid: the dashboard works with whatever Prometheus
    // the operator has, imported or provisioned.
    const variable = (dashboard.templating?.list ?? []).find((v) => v.type === "datasource");
    assert.ok(variable, "a datasource variable picks the Prometheus");
    const problems = panels
      .filter((p) => p.type !== "row")
      .flatMap((p) => [
        ...((p.targets ?? []).length === 0 ? [`"${p.title ?? ""}" has no queries`] : []),
        ...(p.datasource?.uid === `\${${variable.name}}`
          ? []
          : [`"${p.title ?? ""}" uses another datasource`]),
      ]);
    assertNone(problems, "panels");
  });

  it("evaluates every dashboard expression: valid, and each returns series", async () => {
    const expressions = dashboardExpressions(readDashboard(DASHBOARD));
    assert.ok(expressions.length > 20, `only ${expressions.length} dashboard expressions found`);
    const { invalid, empty } = await evaluate(prometheus, expressions);
    assertNone([...invalid, ...empty], "dashboard expressions");
  });

  it("finds both servers for the dashboard's query variables", async () => {
    for (const v of readDashboard(DASHBOARD).templating?.list ?? []) {
      if (v.type !== "query") continue;
      // label_values(metric, label) is Grafana's; the same question in PromQL:
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.definition ?? "");
      assert.ok(m, `$${v.name}: expected label_values(metric, label), got ${v.definition ?? "nothing"}`);
      const r = await prometheus.query(`count by (${m[2]!}) (${m[1]!})`);
      assert.ok(r.ok, `$${v.name}: ${r.ok ? "" : r.error}`);
      assert.equal(r.series.length, 2, `$${v.name} lists both Ferry servers`);
    }
  });

  it("loads every alert rule; each evaluates cleanly and, without its threshold, returns series", async () => {
    const declared = (readFileSync(ALERTS, "utf8").match(/^\s*- alert:/gm) ?? []).length;
    // Prometheus evaluates every rule each second; wait until each has been evaluated once.
    let rules = await prometheus.rules();
    await prometheus.waitUntil(
      async () => {
        rules = await prometheus.rules();
        // Prometheus loads a rules file whole: once one rule is there, all are.
        return rules.length > 0 && rules.every((r) => r.health !== "unknown");
      },
      10_000,
      "evaluating the alert rules",
    );
    assert.equal(rules.length, declared, "Prometheus loaded every rule of grafana/alerts.yml");
    const unhealthy = rules.filter((r) => r.health !== "ok");
    assertNone(
      unhealthy.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ""}`),
      "rules that Prometheus failed to evaluate",
    );
    const { invalid, empty } = await evaluate(
      prometheus,
      rules.flatMap((r) => [
        // The condition itself may rightly be empty (nothing to alert about)…
        { where: r.name, expr: r.query, needsSeries: false },
        // …what it compares may not, or the alert could never fire.
        { where: `${r.name} without its threshold`, expr: withoutThresholds(r.query), needsSeries: true },
      ]),
    );
    assertNone([...invalid, ...empty], "alert expressions");
  });

  it("shows the failed link's reason, and the hanging links as alert conditions", async () => {
    const expectSeries = async (expr: string): Promise<void> => {
      const { invalid, empty } = await evaluate(prometheus, [{ where: "check", expr, needsSeries: true }]);
      assertNone([...invalid, ...empty], "expected series");
    };
    await expectSeries(`ferry_s2s_connect_attempts_total{job="${JOB}", result="tcp_refused"} > 0`);
    await expectSeries(`ferry_stanzas_bounced_total{job="${JOB}", condition="remote-server-timeout"} > 0`);
    await expectSeries(`ferry_s2s_connect_attempts_total{job="${JOB}", result="ok"} > 0`);
    const rules = await prometheus.rules();
    for (const name of ["FerryOutgoingLinkStuckNegotiating", "FerryIncomingStreamStuckNegotiating"]) {
      const rule = rules.find((r) => r.name === name);
      assert.ok(rule, `${name} is loaded`);
      // The condition holds now; `for: 5m` keeps it pending, which is as it should be.
      await expectSeries(rule.query);
    }
  });
});
