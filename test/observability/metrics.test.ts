/**
 * /metrics and /healthz while two Ferry servers federate and while a link fails: the transition
 * counters and time-in-state histograms move, the failure shows its reason, per-stanza counters
 * count, and /healthz follows the server's life.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { connectComponent } from "../helpers/component.js";
import { freePort, type WirePeer } from "../helpers/wire.js";

function config(
  host: string,
  s2s: number,
  comp: number,
  http: number,
  peers: Record<string, number>,
  extra = "",
): string {
  const overrides = Object.entries(peers)
    .map(([name, port]) => `{host = "${name}", ip_address = "127.0.0.1", port = ${port}}`)
    .join(", ");
  return `[general]
hosts = ["${host}"]
[[listen.s2s]]
port = ${s2s}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${comp}
ip_address = "127.0.0.1"
password = "secret"
[[listen.http]]
port = ${http}
ip_address = "127.0.0.1"
[s2s]
outgoing.address = [${overrides}]
outgoing.connection_timeout = 1000
${extra}`;
}

/** `name{labels} value` lines of a scrape, as a map from the series text to its value. */
function series(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const at = line.lastIndexOf(" ");
    found.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return found;
}

describe("metrics and health over HTTP", () => {
  let a: FerryServer;
  let b: FerryServer;
  let httpA: number;
  let compA: WirePeer;
  let compB: WirePeer;

  before(async () => {
    const [aS2s, aComp, bS2s, bComp, deadPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    httpA = await freePort();
    const httpB = await freePort();
    a = await startServer(
      loadConfigText(
        config(
          "a.example",
          aS2s,
          aComp,
          httpA,
          {
            "svc.b.example": bS2s,
            "b.example": bS2s,
            "dead.example": deadPort,
          },
          `[metrics]\nper_domain = ["svc.b.example"]\n`,
        ),
        "a.toml",
      ).config,
      silentLogger,
    );
    b = await startServer(
      loadConfigText(
        config("b.example", bS2s, bComp, httpB, { "svc.a.example": aS2s, "a.example": aS2s }),
        "b.toml",
      ).config,
      silentLogger,
    );
    compA = await connectComponent(aComp, "svc.a.example", "secret");
    compB = await connectComponent(bComp, "svc.b.example", "secret");
  });

  after(async () => {
    compA.destroy();
    compB.destroy();
    await Promise.all([a.stop(), b.stop()]);
  });

  const scrape = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${httpA}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    return res.text();
  };

  it("/healthz answers 200 while the listeners are up", async () => {
    const res = await fetch(`http://127.0.0.1:${httpA}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "running\n");
  });

  it("counts transitions and time in state while a link comes up and carries stanzas", async () => {
    compA.send("<message from='x@svc.a.example' to='y@svc.b.example' id='m1'><body>hi</body></message>");
    await compB.waitFor(/<body>hi<\/body>/, 10_000);
    const text = await scrape();
    const transitions = series(text, "ferry_transitions_total");
    assert.ok(
      [...transitions.keys()].some(
        (k) => k.includes('machine="s2s_out"') && k.includes('to="link.open.dialbackSucceeded'),
      ),
      "the outgoing link's dialback success is a transition",
    );
    const durations = series(text, "ferry_state_duration_seconds_count");
    assert.ok(
      [...durations.entries()].some(
        ([k, v]) => k.includes('state="link.open.dialbackSent,dialback.sent"') && v >= 1,
      ),
      "time spent waiting for the dialback result is observed",
    );
    assert.equal(
      series(text, "ferry_stanzas_total").get(
        'ferry_stanzas_total{conn_type="s2s",direction="out",kind="message"}',
      ),
      1,
    );
    assert.equal(
      series(text, "ferry_s2s_auth_total").get(
        'ferry_s2s_auth_total{direction="out",mechanism="dialback",result="success"}',
      ),
      1,
    );
    assert.equal(series(text, "ferry_actors").get('ferry_actors{machine="queue",state="link.sending"}'), 1);
    // A's link out and A's component, counted from the same walk as ferry_actors.
    const connections = series(text, "ferry_connections");
    assert.equal(connections.get('ferry_connections{kind="s2s_out"}'), 1);
    assert.equal(connections.get('ferry_connections{kind="component"}'), 1);
    assert.equal(series(text, "ferry_s2s_queue_stanzas").get("ferry_s2s_queue_stanzas"), 0);
    assert.ok(
      (series(text, "ferry_bytes_total").get(
        'ferry_bytes_total{conn_type="s2s",direction="out",tls="none"}',
      ) ?? 0) > 0,
    );
    assert.match(text, /^nodejs_eventloop_lag_seconds /m, "Node's process metrics are there");
  });

  it("shows a failing link's reason and the bounce it caused", async () => {
    compA.send("<message from='x@svc.a.example' to='y@dead.example' id='d1'><body>lost?</body></message>");
    await compA.waitFor(/id=['"]d1['"][\s\S]*?<\/message>/, 10_000);
    const text = await scrape();
    assert.equal(
      series(text, "ferry_s2s_connect_attempts_total").get(
        'ferry_s2s_connect_attempts_total{result="tcp_refused"}',
      ),
      1,
    );
    assert.equal(
      series(text, "ferry_stanzas_bounced_total").get(
        'ferry_stanzas_bounced_total{condition="remote-server-timeout"}',
      ),
      1,
    );
    assert.equal(series(text, "ferry_s2s_backoff_links").get("ferry_s2s_backoff_links"), 1);
    assert.ok(
      [...series(text, "ferry_transitions_total").keys()].some(
        (k) => k.includes('machine="queue"') && k.includes('to="backoff"'),
      ),
    );
    assert.doesNotMatch(text, /dead\.example/, "no remote domain in any label…");
    const labelled = text.split("\n").filter((line) => line.includes("svc.b.example"));
    assert.ok(labelled.length > 0);
    assert.ok(
      labelled.every((line) => line.startsWith("ferry_s2s_domain_stanzas_total{")),
      "…but those listed in [metrics] per_domain, in their own series",
    );
    assert.equal(
      series(text, "ferry_s2s_domain_stanzas_total").get(
        'ferry_s2s_domain_stanzas_total{remote="svc.b.example",direction="out"}',
      ),
      1,
    );
  });

  it("/healthz answers 503 while draining", async () => {
    const port = await freePort();
    const http = await freePort();
    const server = await startServer(
      loadConfigText(config("c.example", port, await freePort(), http, {}), "c.toml").config,
      silentLogger,
    );
    const peer = await connectComponent(
      (server.addresses.service[0] ?? { port: 0 }).port,
      "svc.c.example",
      "secret",
    );
    // The component ignores the shutdown, so the drain lasts until its timeout.
    const stopping = server.stop();
    const res = await fetch(`http://127.0.0.1:${http}/healthz`);
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "draining\n");
    peer.destroy();
    await stopping;
  });
});
