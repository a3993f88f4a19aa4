import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfigFile, loadConfigText, type ConfigProblem } from "../../src/config/load.js";

const MINIMAL = `[general]\nhosts = ["localhost"]\n`;

/** Loads text that must fail and returns the error. */
function failure(text: string, file = "ferry.toml"): ConfigError {
  try {
    loadConfigText(text, file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail("the configuration loaded");
}

function problemAt(err: ConfigError, path: string): ConfigProblem {
  const found = err.problems.find((p) => p.path === path);
  assert.ok(found, `no problem for ${path} in:\n${err.message}`);
  return found;
}

describe("loadConfigText: errors", () => {
  it("names option, file:line and a suggestion for a typo", () => {
    const err = failure(`${MINIMAL}\n[s2s.outgoing]\nport = 5269\nconection_timeout = 5000\n`);
    const p = problemAt(err, "s2s.outgoing.conection_timeout");
    assert.equal(p.line, 6);
    assert.match(
      err.message,
      /ferry\.toml:6: s2s\.outgoing\.conection_timeout: unknown option "conection_timeout" \(did you mean "connection_timeout"\?\)/,
    );
  });

  it("suggests the right table for an option one table too high", () => {
    const err = failure(`${MINIMAL}[s2s]\nmax_retry_delay = 60\n`);
    assert.match(problemAt(err, "s2s.max_retry_delay").message, /did you mean "outgoing\.max_retry_delay"/);
  });

  it("knows MongooseIM's other spellings", () => {
    const err = failure(
      `${MINIMAL}[[listen.service]]\npassword = "p"\nshaper = "fast"\n[[listen.c2s]]\nport = 5222\n`,
    );
    assert.match(problemAt(err, "listen.service[0].shaper").message, /shaper_rule/);
    assert.match(problemAt(err, "listen.c2s").message, /serves no clients/);
  });

  it("says what is allowed for a wrong type, with the offending value", () => {
    const err = failure(
      [
        MINIMAL.trimEnd(),
        "[[listen.s2s]]",
        'port = "5269"',
        "[[listen.s2s]]",
        "port = 5270",
        "tls.certfile = 42",
        "[s2s]",
        'outgoing.connection_timeout = "10s"',
        "outgoing.ip_versions = [4, 5]",
        'outgoing.tls.mode = "ssl"',
        "outgoing.dns.retries = 1.5",
        'outgoing.dns.servers = ["localhost:53"]',
        'default_policy = "maybe"',
      ].join("\n"),
    );
    const expectations: [string, number, RegExp][] = [
      ["listen.s2s[0].port", 4, /expected a port number \(0-65535, 0 = any free port\), got "5269"/],
      ["listen.s2s[1].tls.certfile", 7, /expected a file path, got 42/],
      ["s2s.outgoing.connection_timeout", 9, /expected a positive integer or "infinity", got "10s"/],
      ["s2s.outgoing.ip_versions[1]", 10, /expected 4 or 6, got 5/],
      ["s2s.outgoing.tls.mode", 11, /expected "tls", "starttls" or "starttls_required", got "ssl"/],
      ["s2s.outgoing.dns.retries", 12, /expected a positive integer, got 1\.5/],
      ["s2s.outgoing.dns.servers[0]", 13, /expected an IP address with optional port/],
      ["s2s.default_policy", 14, /expected "allow" or "deny", got "maybe"/],
    ];
    for (const [path, line, message] of expectations) {
      const p = problemAt(err, path);
      assert.equal(p.line, line, path);
      assert.match(p.message, message);
      assert.ok(err.message.includes(`ferry.toml:${line}: ${path}: `), path);
    }
    assert.equal(err.problems.length, expectations.length, err.message);
  });

  it("names the listener whose password is missing", () => {
    const err = failure(
      `${MINIMAL}[[listen.service]]\nport = 8888\npassword = "a"\n\n[[listen.service]]\nport = 8889\n`,
    );
    const p = problemAt(err, "listen.service[1].password");
    assert.equal(p.line, 7, "the line of the listener's [[listen.service]] header");
    assert.match(
      err.message,
      /ferry\.toml:7: listen\.service\[1\]\.password: missing mandatory option "password"/,
    );
  });

  it("requires general.hosts", () => {
    const err = failure(`[general]\nloglevel = "info"\n`);
    assert.equal(problemAt(err, "general.hosts").line, 1);
    assert.match(
      failure(`[general]\nhosts = []\n`).message,
      /general\.hosts: expected a non-empty array of domain names/,
    );
    assert.match(
      failure(`[general]\nhosts = ["bad domain"]\n`).message,
      /general\.hosts\[0\]: expected a domain name/,
    );
  });

  it("rejects a shaper that is not defined", () => {
    const err = failure(
      `${MINIMAL}[shaper.normal]\nmax_rate = 1000\n[[listen.s2s]]\nshaper = "fast"\n[s2s]\noutgoing.shaper = "normal"\n`,
    );
    const p = problemAt(err, "listen.s2s[0].shaper");
    assert.equal(p.line, 6);
    assert.match(p.message, /unknown shaper "fast".*\[shaper\.fast\] or "none".*defined shapers: normal/);
    assert.equal(err.problems.length, 1);
  });

  it('rejects an access list that is not defined, unless it is "all"', () => {
    const err = failure(
      `${MINIMAL}[access]\nglobal = ["admin@localhost"]\n[[listen.service]]\npassword = "p"\naccess = "components"\n`,
    );
    assert.match(
      problemAt(err, "listen.service[0].access").message,
      /unknown access list "components".*defined lists: global/,
    );
    assert.doesNotThrow(() =>
      loadConfigText(`${MINIMAL}[[listen.service]]\npassword = "p"\naccess = "all"\n`, "f"),
    );
  });

  it("rejects listeners on the same port and address", () => {
    const err = failure(
      `${MINIMAL}[[listen.s2s]]\nport = 5269\n[[listen.service]]\npassword = "p"\nport = 5269\nip_address = "127.0.0.1"\n[[listen.http]]\nport = 8888\nip_address = "::1"\n`,
    );
    assert.match(
      problemAt(err, "listen.service[0].port").message,
      /port 5269 on 127\.0\.0\.1 is already used by listen\.s2s\[0\] \(0\.0\.0\.0\)/,
    );
    assert.equal(err.problems.length, 1, "8888 on ::1 and on 0.0.0.0 do not collide");
  });

  it("rejects an ip_version that contradicts ip_address", () => {
    const err = failure(`${MINIMAL}[[listen.s2s]]\nip_address = "::"\nip_version = 4\n`);
    assert.match(problemAt(err, "listen.s2s[0].ip_version").message, /contradicts/);
  });

  it("lists every problem, sorted by line", () => {
    const err = failure(`[general]\nhosts = ["a.example"]\nloglevel = 3\n[s2s]\nshared = ""\nbogus = 1\n`);
    assert.deepEqual(
      err.problems.map((p) => [p.line, p.path]),
      [
        [3, "general.loglevel"],
        [5, "s2s.shared"],
        [6, "s2s.bogus"],
      ],
    );
    assert.match(err.message, /^invalid configuration \(3 problems\):\n {2}ferry\.toml:3: /);
  });

  it("gives TOML syntax errors a file:line", () => {
    const err = failure(`[general]\nhosts = ["a"\nloglevel = "info"\n`, "conf/ferry.toml");
    assert.equal(err.problems[0]?.line, 3);
    assert.match(err.message, /^conf\/ferry\.toml:3:\d+: TOML syntax error: /);
    const dup = failure(`[general]\nhosts = ["a"]\nhosts = ["b"]\n`);
    assert.equal(dup.problems[0]?.line, 3);
  });
});

describe("loadConfigText: warnings", () => {
  it("accepts MongooseIM options that mean nothing in Node, with a warning naming option and line", () => {
    const { config, warnings } = loadConfigText(
      [
        MINIMAL.trimEnd(),
        "[[listen.s2s]]",
        "num_acceptors = 100",
        "hibernate_after = 0",
        'proto = "tcp"',
        "reuse_port = true",
        'tls.certfile = "c.pem"',
        'tls.module = "fast_tls"',
        'tls.dhfile = "dh.pem"',
        "[[listen.http]]",
        'proto = "tcp"',
        "[s2s]",
        'outgoing.tls.protocol_options = ["no_sslv3"]',
      ].join("\n"),
      "ferry.toml",
    );
    assert.deepEqual(
      warnings.map((w) => [w.line, w.path]),
      [
        [4, "listen.s2s[0].num_acceptors"],
        [5, "listen.s2s[0].hibernate_after"],
        [6, "listen.s2s[0].proto"],
        [7, "listen.s2s[0].reuse_port"],
        [9, "listen.s2s[0].tls.module"],
        [10, "listen.s2s[0].tls.dhfile"],
        [12, "listen.http[0].proto"],
        [14, "s2s.outgoing.tls.protocol_options"],
      ],
    );
    assert.match(
      warnings[0]?.text ?? "",
      /^ferry\.toml:4: listen\.s2s\[0\]\.num_acceptors: option "num_acceptors" is accepted for MongooseIM compatibility and ignored: /,
    );
    assert.equal(config.listen.s2s[0]?.tls?.certfile, "c.pem");
    assert.ok(!Object.hasOwn(config.listen.s2s[0], "num_acceptors"));
  });

  it("refuses proxy_protocol = true rather than misreading PROXY headers as XML", () => {
    const err = failure(`${MINIMAL}[[listen.s2s]]\nproxy_protocol = true\n`);
    const problem = problemAt(err, "listen.s2s[0].proxy_protocol");
    assert.equal(problem.line, 4);
    assert.match(problem.message, /PROXY protocol is not supported/);
  });
});

describe("loadConfigText: values", () => {
  it('turns "infinity" into Infinity and fills defaults', () => {
    const { config } = loadConfigText(
      `${MINIMAL}[s2s]\noutgoing.state_timeout = "infinity"\noutgoing.max_stanza_size = 65536\n`,
      "f",
    );
    assert.equal(config.s2s.outgoing.state_timeout, Infinity);
    assert.equal(config.s2s.outgoing.max_stanza_size, 65536);
    assert.equal(config.s2s.outgoing.stream_timeout, 600_000);
  });

  it("freezes the result deeply", () => {
    const { config } = loadConfigText(`${MINIMAL}[[listen.s2s]]\n`, "f");
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.general.hosts));
    assert.ok(Object.isFrozen(config.listen.s2s[0]));
    assert.ok(Object.isFrozen(config.s2s.outgoing.ip_versions));
  });

  it("generates a fresh random dialback secret when shared is unset", () => {
    const a = loadConfigText(MINIMAL, "f").config.s2s.shared;
    const b = loadConfigText(MINIMAL, "f").config.s2s.shared;
    assert.match(a, /^[0-9a-f]{20}$/);
    assert.notEqual(a, b);
    assert.equal(loadConfigText(`${MINIMAL}[s2s]\nshared = "secret"\n`, "f").config.s2s.shared, "secret");
  });

  it("derives listener addresses the way MongooseIM does", () => {
    const { config } = loadConfigText(
      `${MINIMAL}[[listen.s2s]]\nip_version = 6\n[[listen.s2s]]\nport = 5270\nip_address = "::1"\n[[listen.http]]\nip_version = 6\n`,
      "f",
    );
    assert.deepEqual(
      config.listen.s2s.map((l) => [l.ip_address, l.ip_version]),
      [
        ["::", 6],
        ["::1", 6],
      ],
    );
    assert.equal(config.listen.http[0]?.ip_address, "::1");
  });

  it("normalizes domains to lower-case ASCII and derives the introspection address", () => {
    const { config } = loadConfigText(`[general]\nhosts = ["Bücher.Example", "b.example"]\n`, "f");
    assert.deepEqual(config.general.hosts, ["xn--bcher-kva.example", "b.example"]);
    assert.equal(config.s2s.introspection.address, "s2s.xn--bcher-kva.example");
  });

  it("accepts issue 5's TLS options and secure-relaying list", () => {
    const { config } = loadConfigText(
      `${MINIMAL}[s2s]\nsecure_auth = true\noutgoing.tls.require_for = ["*.corp.example", "partner.example", "!broken.example"]\noutgoing.tls.verify_mode = "selfsigned_peer"\noutgoing.address = [{host = "x.example", ip_address = "127.0.0.2", tls_name = "relay.example"}]\n`,
      "f",
    );
    assert.deepEqual(config.s2s.outgoing.tls.require_for, [
      "*.corp.example",
      "partner.example",
      "!broken.example",
    ]);
    assert.equal(config.s2s.outgoing.address[0]?.tls_name, "relay.example");
    assert.equal(config.s2s.outgoing.address[0].port, undefined);
  });

  it("accepts [access] JID lists, [metrics] and [debug]", () => {
    const { config } = loadConfigText(
      `${MINIMAL}[access]\nglobal = ["admin@localhost", "ops@localhost/laptop"]\ns2s = ["*@partner.example"]\n[metrics]\nper_domain = ["partner.example"]\n[debug]\ninspector = { port = 5281 }\n`,
      "f",
    );
    assert.deepEqual(config.access.s2s, ["*@partner.example"]);
    assert.equal(config.debug.inspector?.port, 5281);
    assert.equal(loadConfigText(MINIMAL, "f").config.debug.inspector, undefined);
    assert.match(
      failure(`${MINIMAL}[access]\nglobal = ["not a jid"]\n`).message,
      /access\.global\[0\]: expected a JID/,
    );
  });
});

describe("loadConfigFile", () => {
  it("reads a file and names it in errors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-config-"));
    try {
      const file = join(dir, "ferry.toml");
      await writeFile(file, `${MINIMAL}[s2s]\ndefault_policy = "nope"\n`);
      await assert.rejects(loadConfigFile(file), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.ok(err.message.includes(`${file}:4: s2s.default_policy`), err.message);
        return true;
      });
      await writeFile(file, MINIMAL);
      assert.deepEqual((await loadConfigFile(file)).config.general.hosts, ["localhost"]);
      await assert.rejects(loadConfigFile(join(dir, "missing.toml")), /cannot read the file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
