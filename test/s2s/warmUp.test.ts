/**
 * The start-up warm-up (src/s2s/warmUp.ts): complete in-process links over loopback, plain, with
 * STARTTLS and with direct TLS, that leave nothing behind in the server that runs them.
 */
import { after, before, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { loadConfigText } from "../../src/config/load.js";
import { loadTrust } from "../../src/s2s/trust.js";
import { warmUpLinks } from "../../src/s2s/warmUp.js";
import { startServer } from "../../src/server.js";
import { captureLog } from "../helpers/federation.js";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, type IssuedCertificate } from "../helpers/testPki.js";

let run: RunDir;
let leaf: IssuedCertificate;

before(() => {
  run = RunDir.create("warm-up");
  const pki = new TestPki(run);
  const ca = pki.issue("ca", { ca: true });
  leaf = pki.issue("x", { issuer: ca, san: ["DNS:x.example"], eku: "serverAuth,clientAuth" });
});
after(() => {
  run.remove();
});

const listener = (mode: string) => `
[[listen.s2s]]
port = 5269
ip_address = "127.0.0.1"
tls.certfile = "${leaf.certFile}"
tls.keyfile = "${leaf.keyFile}"
tls.mode = "${mode}"
`;

async function warmUp(toml: string): Promise<string[]> {
  const { config } = loadConfigText(`[general]\nhosts = ["x.example"]\n${toml}`, "warm-up.toml");
  const log = captureLog("debug");
  const started = performance.now();
  await warmUpLinks({ config, trust: loadTrust(config, log.logger), log: log.logger });
  assert.ok(performance.now() - started < 2500, "bounded by its own deadline");
  return log.grep(/S2S warm-up/);
}

describe("S2S warm-up", () => {
  it("delivers a stanza over each of its plain dialback links", async () => {
    const lines = await warmUp("");
    assert.match(lines.join("\n"), /S2S warm-up: 8 of 8 in-process link\(s\) delivered in \d+ ms/);
  });

  it("uses STARTTLS when our listener offers it", async () => {
    const lines = await warmUp(
      `${listener("starttls_required")}\n[s2s]\noutgoing.tls.mode = "starttls_required"`,
    );
    assert.match(lines.join("\n"), /8 of 8 in-process link\(s\) delivered/);
  });

  it("uses direct TLS when outgoing links do (XEP-0368), without Nagle", async () => {
    // tls.connect has no noDelay option: the outgoing direct-TLS socket must ask for it.
    const setNoDelay = mock.method(net.Socket.prototype, "setNoDelay");
    try {
      const lines = await warmUp(`${listener("tls")}\n[s2s]\noutgoing.tls.mode = "tls"`);
      assert.match(lines.join("\n"), /8 of 8 in-process link\(s\) delivered/);
      assert.ok(setNoDelay.mock.calls.some((call) => call.arguments[0] === true));
    } finally {
      setNoDelay.mock.restore();
    }
  });

  it("ends quietly when its links cannot come up (TLS required, no certificate)", async () => {
    const lines = await warmUp(`[s2s]\noutgoing.tls.mode = "starttls_required"`);
    assert.match(lines.join("\n"), /0 of 8 in-process link\(s\) delivered/);
  });

  it("leaves no actor, connection or metric behind in the server", async () => {
    const { config } = loadConfigText(
      `[general]\nhosts = ["x.example"]\n[[listen.s2s]]\nport = 0\nip_address = "127.0.0.1"\n` +
        `[[listen.http]]\nport = 0\nip_address = "127.0.0.1"\n`,
      "warm-up.toml",
    );
    const log = captureLog("info");
    const server = await startServer(config, log.logger);
    try {
      assert.equal(server.registry.size, 0);
      assert.deepEqual(server.introspection.history.list(), []);
      const http = server.addresses.http[0];
      assert.ok(http !== undefined);
      const metrics = await (await fetch(`http://127.0.0.1:${http.port}/metrics`)).text();
      assert.doesNotMatch(metrics, /warm-up/);
      assert.doesNotMatch(metrics, /ferry_transitions_total\{machine="s2sOut"/);
      assert.deepEqual(log.grep(/warm-up/i), [], "nothing logged above debug");
    } finally {
      await server.stop();
    }
  });
});
