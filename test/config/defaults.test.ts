import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfigFile, loadConfigText } from "../../src/config/load.js";

const SHIPPED = fileURLToPath(new URL("../../../ferry.toml", import.meta.url));

// The smallest file that has one listener of each kind, so every default shows.
const { config } = loadConfigText(
  `[general]\nhosts = ["localhost"]\n[[listen.s2s]]\n[[listen.service]]\npassword = "secret"\n[[listen.http]]\n`,
  "minimal.toml",
);
const s2s = config.s2s;
const out = config.s2s.outgoing;
const [s2sListener] = config.listen.s2s;
const [service] = config.listen.service;
const [http] = config.listen.http;

/** [option, effective value, MongooseIM's documented default (seed and doc quoted)]. */
const MONGOOSEIM_DEFAULTS: [string, unknown, unknown][] = [
  // doc/configuration/general.md
  ["general.loglevel", config.general.loglevel, "warning"],
  // seed 004: MongooseIM [s2s]
  ["s2s.default_policy", s2s.default_policy, "allow"],
  ["s2s.host_policy", s2s.host_policy, []], // "not set, default_policy is used"
  ["s2s.outgoing.address", out.address, []], // "not set"
  ["s2s.outgoing.connection_timeout", out.connection_timeout, 10_000],
  ["s2s.outgoing.dns.retries", out.dns.retries, 2],
  ["s2s.outgoing.dns.timeout", out.dns.timeout, 10],
  ["s2s.outgoing.ip_versions", out.ip_versions, [4, 6]],
  ["s2s.outgoing.max_retry_delay", out.max_retry_delay, 300],
  ["s2s.outgoing.max_stanza_size", out.max_stanza_size, Infinity], // "infinity"
  ["s2s.outgoing.port", out.port, 5269],
  ["s2s.outgoing.shaper", out.shaper, "none"],
  ["s2s.outgoing.state_timeout", out.state_timeout, 5000],
  ["s2s.outgoing.stream_timeout", out.stream_timeout, 600_000],
  ["s2s.outgoing.tls.mode", out.tls.mode, "starttls"],
  // outgoing-connections.md, TLS options (s2s.outgoing.tls has "the same semantics")
  ["s2s.outgoing.tls.verify_mode", out.tls.verify_mode, "peer"],
  // seed 003: MongooseIM [[listen.service]]
  ["listen.service.port", service?.port, 8888], // "the recommended port number … is 8888"
  ["listen.service.access", service?.access, "all"],
  ["listen.service.shaper_rule", service?.shaper_rule, "none"],
  ["listen.service.check_from", service?.check_from, true],
  ["listen.service.hidden_components", service?.hidden_components, false],
  ["listen.service.conflict_behaviour", service?.conflict_behaviour, "disconnect"],
  ["listen.service.max_fsm_queue", service?.max_fsm_queue, undefined], // "not set - no limit"
  // doc/configuration/listen.md: general and XMPP listener options
  ["listen.s2s.port", s2sListener?.port, 5269], // "the recommended port number … is 5269"
  ["listen.s2s.ip_address", s2sListener?.ip_address, "0.0.0.0"], // "all-zeros address"
  ["listen.s2s.ip_version", s2sListener?.ip_version, 4],
  ["listen.s2s.backlog", s2sListener?.backlog, 1024],
  ["listen.s2s.proxy_protocol", s2sListener?.proxy_protocol, false],
  ["listen.s2s.max_stanza_size", s2sListener?.max_stanza_size, Infinity],
  ["listen.s2s.max_connections", s2sListener?.max_connections, Infinity],
  ["listen.s2s.state_timeout", s2sListener?.state_timeout, 5000],
  ["listen.s2s.shaper", s2sListener?.shaper, "none"],
  ["listen.service.ip_address", service?.ip_address, "0.0.0.0"],
  ["listen.service.backlog", service?.backlog, 1024],
  ["listen.service.state_timeout", service?.state_timeout, 5000],
  ["listen.service.max_stanza_size", service?.max_stanza_size, Infinity],
];

/** Ferry's own options (issues 2 and 5-8). */
const FERRY_DEFAULTS: [string, unknown, unknown][] = [
  ["listen.http.port", http?.port, 5280],
  ["listen.http.ip_address", http?.ip_address, "127.0.0.1"],
  ["listen.http.probe_private", http?.probe_private, false],
  ["listen.http.api_token", http?.api_token, undefined],
  ["s2s.outgoing.dns.servers", out.dns.servers, []],
  ["s2s.outgoing.tls.versions", out.tls.versions, ["tlsv1.2", "tlsv1.3"]],
  ["s2s.outgoing.tls.require_for", out.tls.require_for, []],
  ["s2s.secure_auth", s2s.secure_auth, false],
  ["s2s.introspection.address", s2s.introspection.address, "s2s.localhost"],
  ["access", config.access, {}],
  ["shaper", config.shaper, {}],
  ["metrics.per_domain", config.metrics.per_domain, []],
  ["debug.inspector", config.debug.inspector, undefined],
];

const show = (v: unknown): string => (v === undefined ? "not set" : JSON.stringify(v));

describe("defaults", () => {
  for (const [option, actual, expected] of MONGOOSEIM_DEFAULTS) {
    it(`${option} defaults to MongooseIM's ${show(expected)}`, () => {
      assert.deepEqual(actual, expected);
    });
  }
  for (const [option, actual, expected] of FERRY_DEFAULTS) {
    it(`${option} defaults to ${show(expected)}`, () => {
      assert.deepEqual(actual, expected);
    });
  }
  it("s2s.shared defaults to 10 strong random bytes, hex-encoded", () => {
    assert.match(s2s.shared, /^[0-9a-f]{20}$/);
  });
  it("a listener without a tls table offers no TLS", () => {
    assert.equal(s2sListener?.tls, undefined);
  });
});

describe("the shipped ferry.toml", () => {
  it("loads without warnings and says what issue 2 asks for", async () => {
    const { config: shipped, warnings } = await loadConfigFile(SHIPPED);
    assert.deepEqual(warnings, []);
    assert.deepEqual(shipped.general.hosts, ["localhost"]);
    assert.deepEqual(
      shipped.listen.s2s.map((l) => l.port),
      [5269],
    );
    assert.deepEqual(
      shipped.listen.service.map((l) => [l.ip_address, l.port]),
      [["127.0.0.1", 8888]],
    );
    assert.deepEqual(
      shipped.listen.http.map((l) => [l.ip_address, l.port]),
      [["127.0.0.1", 5280]],
    );
    assert.match(shipped.s2s.shared, /^[0-9a-f]{20}$/, "no shared secret: a random one");
  });
});
