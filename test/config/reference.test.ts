import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { optionRows } from "../../src/config/introspect.js";
import {
  extractReferenceSection,
  generateConfigReference,
  README_PATH,
  replaceReferenceSection,
} from "../../src/config/reference.js";
import { configSchema } from "../../src/config/schema.js";

describe("configuration reference", () => {
  it("README.md's section is the one generated from the schema (run `npm run docs:config`)", async () => {
    const readme = await readFile(README_PATH, "utf8");
    assert.equal(extractReferenceSection(readme), generateConfigReference());
  });

  it("documents every option with a meaning", () => {
    const rows = optionRows(configSchema);
    assert.ok(rows.length > 50);
    for (const { option, info } of rows) {
      assert.ok((info.description ?? "").length > 0, `${option} has no description`);
    }
    const names = rows.map((r) => r.option);
    for (const option of [
      "general.hosts",
      "listen.service.password",
      "s2s.outgoing.dns.timeout",
      "shaper.NAME.max_rate",
    ]) {
      assert.ok(names.includes(option), option);
    }
  });

  it("shows defaults in TOML spelling", () => {
    const table = generateConfigReference();
    assert.match(table, /\| `s2s\.outgoing\.stream_timeout` +\| `600_000` +\|/);
    assert.match(table, /\| `s2s\.outgoing\.max_stanza_size` +\| `"infinity"` +\|/);
    assert.match(table, /\| `listen\.service\.password` +\| required +\|/);
  });

  it("rewrites only the text between the markers", () => {
    const readme = "intro\n<!-- config-reference:start -->\nold\n<!-- config-reference:end -->\noutro\n";
    const updated = replaceReferenceSection(readme, "NEW");
    assert.equal(
      updated,
      "intro\n<!-- config-reference:start -->\n\nNEW\n\n<!-- config-reference:end -->\noutro\n",
    );
    assert.equal(extractReferenceSection(updated), "NEW");
    assert.throws(() => replaceReferenceSection("no markers", "x"), /markers/);
  });
});
