import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "smol-toml";
import { formatPath, locateLine, TomlLocator, type PathSegment } from "../../src/config/locate.js";

const DOC = `# comment with [brackets] and key = value
[general]
  hosts = ["a.example", "b.example"]   # trailing comment

[[listen.s2s]]
  port = 5269

[[listen.s2s]]
  port = 5270
  ip_address = "::"

[listen.s2s.tls]
  keyfile = "k.pem"

[[listen.service]]
  password = """
[not.a.header]
x = 1
"""
  access = 'all'

[s2s]
  shared = "s"
  outgoing.tls.mode = "tls"
  outgoing.dns = { retries = 3, timeout = 5 }
  host_policy = [
    {host = "good.example", policy = "allow"},
    { host = "bad.example",
      policy = "deny" },
  ]

[s2s.introspection]
  address = "s2s.a.example"

[shaper."fast.one"]
  max_rate = 1000
`;

describe("TomlLocator", () => {
  const locator = new TomlLocator(DOC);

  it("is tested on valid TOML", () => {
    assert.doesNotThrow(() => parse(DOC));
  });

  const cases: [PathSegment[], number | undefined][] = [
    [["general"], 2],
    [["general", "hosts"], 3],
    [["general", "hosts", 1], 3],
    [["listen", "s2s", 0], 5],
    [["listen", "s2s", 0, "port"], 6],
    [["listen", "s2s", 1], 8],
    [["listen", "s2s", 1, "port"], 9],
    [["listen", "s2s", 1, "ip_address"], 10],
    // A [table] under an array of tables belongs to its last element.
    [["listen", "s2s", 1, "tls", "keyfile"], 13],
    [["listen", "service", 0, "password"], 16],
    // Multi-line strings are skipped: their content is not a header or a key.
    [["listen", "service", 0, "access"], 20],
    [["not", "a", "header"], undefined],
    [["s2s", "shared"], 23],
    [["s2s", "outgoing", "tls", "mode"], 24],
    [["s2s", "outgoing", "dns", "timeout"], 25],
    [["s2s", "host_policy", 0, "policy"], 27],
    [["s2s", "host_policy", 1, "host"], 28],
    [["s2s", "host_policy", 1, "policy"], 29],
    [["s2s", "introspection", "address"], 33],
    [["shaper", "fast.one", "max_rate"], 36],
  ];
  for (const [path, line] of cases) {
    it(`${formatPath(path)} is on line ${String(line)}`, () => {
      assert.equal(locator.exactLine(path), line);
    });
  }

  it("falls back to the nearest enclosing table", () => {
    assert.equal(locator.line(["listen", "service", 0, "shaper_rule"]), 15);
    assert.equal(locator.line(["listen", "s2s", 1, "tls", "cacertfile"]), 12);
    assert.equal(locator.line(["general", "loglevel"]), 2);
    assert.equal(locator.line(["debug", "inspector"]), undefined);
  });

  it("points an explicit [table] header rather than the first dotted use of the table", () => {
    const text = "[s2s.outgoing]\nport = 1\n\n[s2s]\nshared = 'x'\n";
    assert.equal(locateLine(text, ["s2s", "default_policy"]), 4);
    assert.equal(locateLine(text, ["s2s", "outgoing", "shaper"]), 1);
  });

  it("handles CRLF line ends, escapes in strings and quoted dotted keys", () => {
    const text = '[a]\r\nx = "q\\"uo # te"\r\n"b.c".d = 1\r\n\'e\' = [\r\n  1,\r\n  2\r\n]\r\n';
    const l = new TomlLocator(text);
    assert.equal(l.exactLine(["a", "x"]), 2);
    assert.equal(l.exactLine(["a", "b.c", "d"]), 3);
    assert.equal(l.exactLine(["a", "e", 1]), 6);
  });

  it("never throws on text it does not understand", () => {
    for (const text of ["[", "[[a", "a = [1, {", "= 3", 'x = """never closed', "a.b.", "\u0000\u0001"]) {
      assert.doesNotThrow(() => new TomlLocator(text).line(["a", "b"]));
    }
  });
});

describe("formatPath", () => {
  it("writes indexes in brackets and quotes keys that are not bare", () => {
    assert.equal(formatPath(["listen", "s2s", 1, "tls", "certfile"]), "listen.s2s[1].tls.certfile");
    assert.equal(formatPath(["access", "a.b"]), 'access."a.b"');
    assert.equal(formatPath([]), "");
  });
});
