import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatEffectiveConfig, REDACTED } from "../../src/config/effective.js";
import { loadConfigText } from "../../src/config/load.js";

const TEXT = `[general]
hosts = ["localhost"]
[[listen.s2s]]
[[listen.service]]
password = "component-secret"
[[listen.http]]
api_token = "api-secret"
[s2s]
shared = "dialback-secret"
host_policy = [{host = "bad.example", policy = "deny"}]
outgoing.state_timeout = "infinity"
[shaper.fast]
max_rate = 50_000
`;

describe("formatEffectiveConfig", () => {
  const { config } = loadConfigText(TEXT, "ferry.toml");
  const output = formatEffectiveConfig(config);

  it("redacts every secret", () => {
    for (const secret of ["component-secret", "api-secret", "dialback-secret"]) {
      assert.ok(!output.includes(secret), secret);
    }
    assert.match(output, new RegExp(`shared = "${REDACTED.replace(/[()]/g, "\\$&")}"`));
  });

  it('fills in defaults and spells Infinity "infinity"', () => {
    assert.match(output, /stream_timeout = 600000/);
    assert.match(output, /state_timeout = "infinity"/);
    assert.match(output, /conflict_behaviour = "disconnect"/);
    assert.match(output, /\[\[listen\.s2s\]\]\nport = 5269\nip_address = "0\.0\.0\.0"/);
  });

  it("is TOML that loads back to the same configuration, secrets aside", () => {
    const again = loadConfigText(output, "effective.toml");
    assert.deepEqual(again.warnings, []);
    const withoutSecrets = (c: typeof config) => ({
      ...c,
      s2s: { ...c.s2s, shared: "" },
      listen: {
        ...c.listen,
        service: c.listen.service.map((l) => ({ ...l, password: "" })),
        http: c.listen.http.map((l) => ({ ...l, api_token: "" })),
      },
    });
    assert.deepEqual(withoutSecrets(again.config), withoutSecrets(config));
  });
});
