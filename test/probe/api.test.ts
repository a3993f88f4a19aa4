/**
 * The probe API's gatekeeping over HTTP: 400 naming the field for every malformed request, JSON
 * for every answer (405 too), private addresses refused without probe_private (also when a domain's
 * DNS points inside), the per-client rate limit (429) and the concurrency bound (503), each with
 * Retry-After.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFakeDns, type FakeDnsServer } from "../dns/fakeDnsServer.js";
import { postJson, request, startProber, type Prober } from "./probeFerry.js";
import { scriptedServer, type Scripted } from "./scriptedServer.js";

describe("probe API: requests, refusals and limits", () => {
  let prober: Prober;
  let closed: Prober;
  let limited: Prober;
  let narrow: Prober;
  let dns: FakeDnsServer;
  let silent: Scripted;

  before(async () => {
    dns = await startFakeDns({
      records: {
        "inside.example": [{ type: "A", address: "10.1.2.3" }],
        "_xmpp-server._tcp.inside.example": [
          { type: "SRV", priority: 0, weight: 0, port: 5269, target: "xmpp.inside.example" },
        ],
        "xmpp.inside.example": [{ type: "A", address: "192.168.7.7" }],
      },
    });
    silent = await scriptedServer(() => undefined);
    prober = await startProber({ hosts: ["prober.example"] });
    closed = await startProber({ hosts: ["prober.example"], probePrivate: false, dnsServers: [dns.address] });
    limited = await startProber({ hosts: ["prober.example"] }, { burst: 2, perMinute: 1 });
    narrow = await startProber(
      { hosts: ["prober.example"] },
      { maxConcurrent: 1, burst: 100, perMinute: 100 },
    );
  });

  after(async () => {
    await Promise.all([prober, closed, limited, narrow].map((p) => p.stop()));
    await Promise.all([dns.close(), silent.close()]);
  });

  const refusedField = async (path: string, body: unknown, field: string, error?: RegExp): Promise<void> => {
    const { status, json, headers } = await prober.post(path, body);
    assert.equal(status, 400, JSON.stringify(json));
    assert.match(String(headers["content-type"]), /^application\/json/);
    assert.equal(json.field, field, JSON.stringify(json));
    assert.equal(typeof json.error, "string");
    if (error !== undefined) assert.match(String(json.error), error);
  };

  const CONNECT = "/api/xmpp-s2s/connect";

  it("host: missing, not a string, not a host name", async () => {
    await refusedField(CONNECT, { fromDomain: "prober.example" }, "host", /missing/);
    await refusedField(CONNECT, { host: 42 }, "host");
    await refusedField(CONNECT, { host: "not a host!" }, "host");
    await refusedField(CONNECT, { host: "" }, "host");
  });

  it("port outside 1–65535 or not an integer", async () => {
    for (const port of [0, 65536, -1, 5269.5, "5269"]) {
      await refusedField(CONNECT, { host: "127.0.0.1", port }, "port", /from 1 to 65535/);
    }
  });

  it("timeout outside 100–60000 ms", async () => {
    for (const timeout of [99, 60_001, "15000"]) {
      await refusedField(CONNECT, { host: "127.0.0.1", timeout }, "timeout", /from 100 to 60000/);
    }
  });

  it("malformed domains, booleans, unknown fields", async () => {
    await refusedField(CONNECT, { host: "127.0.0.1", fromDomain: "a..b" }, "fromDomain");
    await refusedField(CONNECT, { host: "127.0.0.1", toDomain: "bad domain" }, "toDomain");
    await refusedField(CONNECT, { host: "127.0.0.1", useTLS: "yes" }, "useTLS");
    await refusedField(CONNECT, { host: "127.0.0.1", usetls: true }, "usetls", /unknown field/);
    await refusedField("/api/xmpp-s2s/diagnose", {}, "domain", /missing/);
    await refusedField("/api/xmpp-s2s/diagnose", { domain: "-bad-" }, "domain");
    await refusedField(
      "/api/xmpp-s2s/diagnose",
      { domain: "x.example", fromDomain: "other.example" },
      "fromDomain",
    );
  });

  it("a body that is not JSON, not an object, or larger than 16 KiB", async () => {
    await refusedField(CONNECT, "{host:", "body", /not JSON/);
    await refusedField(CONNECT, "[1,2]", "body", /JSON object/);
    await refusedField(
      CONNECT,
      JSON.stringify({ host: "127.0.0.1", pad: "x".repeat(17 * 1024) }),
      "body",
      /16384 bytes/,
    );
    // Also when the size is not announced in advance (chunked).
    const { status, json } = await postJson(`${prober.url}${CONNECT}`, "x".repeat(20_000), {
      "transfer-encoding": "chunked",
    });
    assert.equal(status, 400);
    assert.equal(json.field, "body");
  });

  it("other methods get a JSON 405", async () => {
    const { status, json, headers } = await request(`${prober.url}${CONNECT}`, "GET");
    assert.equal(status, 405);
    assert.equal(headers.allow, "POST");
    assert.match(String(json.error), /POST/);
  });

  it("without probe_private, loopback and private addresses are refused before any connection", async () => {
    for (const host of ["127.0.0.1", "10.0.0.1", "::1", "fd00::1", "169.254.1.1", "::ffff:192.168.1.1"]) {
      const { status, json } = await closed.post(CONNECT, { host });
      assert.equal(status, 403, host);
      assert.equal(json.code, "address_private", host);
      assert.equal(json.success, false);
      assert.match(String(json.error), /probe_private/);
    }
    // After DNS too: a public-looking name whose records point inside.
    const named = await closed.post(CONNECT, { host: "inside.example" });
    assert.equal(named.status, 403);
    assert.match(String(named.json.error), /10\.1\.2\.3 is a private address/);
    const diagnosed = await closed.post("/api/xmpp-s2s/diagnose", { domain: "inside.example" });
    assert.equal(diagnosed.status, 403);
    assert.match(String(diagnosed.json.error), /192\.168\.7\.7 is a private address/);
  });

  it("rate-limited per client: 429 with Retry-After", async () => {
    const body = { host: "127.0.0.1", port: silent.port, timeout: 100 };
    assert.equal((await limited.post(CONNECT, body)).status, 200);
    assert.equal((await limited.post(CONNECT, body)).status, 200);
    const third = await limited.post(CONNECT, body);
    assert.equal(third.status, 429);
    assert.equal(third.json.code, "rate_limited");
    assert.ok(Number(third.headers["retry-after"]) >= 1, String(third.headers["retry-after"]));
  });

  it("concurrent probes are bounded: 503 busy with Retry-After", async () => {
    const connections = silent.received.length;
    const slow = narrow.post(CONNECT, { host: "127.0.0.1", port: silent.port, timeout: 2000 });
    // Once the silent server has its connection, the first probe holds the only slot.
    while (silent.received.length === connections) await new Promise((resolve) => setTimeout(resolve, 10));
    const second = await narrow.post(CONNECT, { host: "127.0.0.1", port: silent.port, timeout: 100 });
    assert.equal(second.status, 503);
    assert.equal(second.json.code, "busy");
    assert.equal(second.headers["retry-after"], "1");
    const first = await slow;
    assert.equal(first.json.code, "timeout");
    // The slot is free again.
    assert.equal(
      (await narrow.post(CONNECT, { host: "127.0.0.1", port: silent.port, timeout: 100 })).status,
      200,
    );
  });
});
