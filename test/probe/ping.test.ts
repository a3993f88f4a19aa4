/**
 * POST /api/xmpp-s2s/ping between two Ferry servers: dialback (the target verifies our key with
 * the prober's own s2s listener), SASL EXTERNAL over STARTTLS with certificates from a shared CA,
 * the reply arriving over the target's own connection back; a refused dialback key; a fromDomain
 * the prober does not host.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, type IssuedCertificate } from "../helpers/testPki.js";
import { freePort } from "../helpers/wire.js";
import { startFerry, startProber, negotiation, type Prober, type RunningFerry } from "./probeFerry.js";

describe("POST /api/xmpp-s2s/ping between Ferry servers", () => {
  let run: RunDir;
  let prober: Prober;
  let tlsProber: Prober;
  let target: RunningFerry;
  let tlsTarget: RunningFerry;
  let impostor: RunningFerry;
  let fooled: RunningFerry;
  const certs: Record<string, IssuedCertificate> = {};

  before(async () => {
    run = RunDir.create("probe-ping");
    const pki = new TestPki(run);
    const ca = pki.issue("ca", { ca: true, cn: "Probe Test CA" });
    for (const domain of ["prober.example", "target.example"]) {
      certs[domain] = pki.issue(domain, { issuer: ca, san: [`DNS:${domain}`], eku: "serverAuth,clientAuth" });
    }
    // Each side finds the other through outgoing.address: the target to verify our key and to send
    // its reply, the prober to verify the target's key on that reply link.
    const [targetPort, tlsTargetPort] = [await freePort(), await freePort()];
    prober = await startProber({
      hosts: ["prober.example"],
      routes: { "target.example": `127.0.0.1:${targetPort}` },
    });
    tlsProber = await startProber({
      hosts: ["prober.example"],
      cert: certs["prober.example"]!,
      clientCert: true,
      ca: ca.certFile,
      routes: { "target.example": `127.0.0.1:${tlsTargetPort}` },
    });
    target = await startFerry({
      hosts: ["target.example"],
      port: targetPort,
      routes: { "prober.example": prober.s2s },
    });
    tlsTarget = await startFerry({
      hosts: ["target.example"],
      port: tlsTargetPort,
      cert: certs["target.example"]!,
      clientCert: true,
      ca: ca.certFile,
      routes: { "prober.example": tlsProber.s2s },
    });
    // A server that says it is prober.example but has another dialback secret.
    impostor = await startFerry({ hosts: ["prober.example"], shared: "another-secret" });
    fooled = await startFerry({ hosts: ["target.example"], routes: { "prober.example": impostor.s2s } });
  });

  after(async () => {
    await Promise.all([prober, tlsProber, target, tlsTarget, impostor, fooled].map((f) => f.stop()));
    run.remove();
  });

  const ping = (p: Prober, t: RunningFerry, extra: Record<string, unknown> = {}) =>
    p.post("/api/xmpp-s2s/ping", {
      host: "127.0.0.1",
      port: t.s2sPort,
      fromDomain: "prober.example",
      toDomain: "target.example",
      useTLS: false,
      timeout: 8000,
      ...extra,
    });

  it("dialback, then the ping's result, which came back over the target's own connection", async () => {
    const { status, json } = await ping(prober, target);
    assert.equal(status, 200);
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.auth, "dialback");
    assert.equal(json.reply, "result");
    const stanzas = json.stanzas as string[];
    assert.equal(stanzas.length, 1);
    assert.match(stanzas[0]!, /^<iq /);
    assert.match(stanzas[0]!, /type='result'/);
    assert.match(stanzas[0]!, /from='target\.example'/);
    assert.match(stanzas[0]!, /to='prober\.example'/);
    assert.match(stanzas[0]!, /id='probe-[0-9a-f]{24}'/);
    assert.match(String(json.streamId), /^[0-9a-f]{32}$/);
    assert.deepEqual(negotiation(json.features), ["DIALBACK"]);
    assert.equal(typeof json.rtt, "number");
    const timings = json.timings as Record<string, number>;
    for (const phase of ["dns", "tcp", "stream", "auth", "ping", "total"]) {
      assert.equal(typeof timings[phase], "number", phase);
    }
    assert.equal(json.rtt, timings.ping);
    // The reply came through the target's outgoing link (S2S streams are one-way).
    assert.ok(
      target.server.registry.get("out:target.example:prober.example"),
      "the target opened its own link",
    );
    assert.equal(prober.replies.size, 0, "nothing left waiting");
  });

  it("SASL EXTERNAL over STARTTLS when our certificate is valid and offered", async () => {
    const { json } = await ping(tlsProber, tlsTarget, { useTLS: true });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.auth, "sasl-external");
    assert.deepEqual(negotiation(json.features), ["SASL-EXTERNAL", "DIALBACK"]);
    assert.equal((json.tls as { mode: string }).mode, "starttls");
    assert.match((json.stanzas as string[])[0]!, /type='result'/);
  });

  it("a dialback key the remote cannot confirm: dialback_invalid", async () => {
    const { status, json } = await ping(prober, fooled);
    assert.equal(status, 200);
    assert.equal(json.success, false);
    assert.equal(json.code, "dialback_invalid");
    assert.equal(json.phase, "auth");
    assert.match(String(json.error), /did not accept our dialback key for prober\.example/);
    assert.match(String(json.streamId), /^[0-9a-f]{32}$/);
  });

  it("fromDomain must be a domain the prober hosts", async () => {
    const { status, json } = await ping(prober, target, { fromDomain: "elsewhere.example" });
    assert.equal(status, 400);
    assert.equal(json.field, "fromDomain");
    assert.match(String(json.error), /prober\.example/);
  });

  it("fromDomain defaults to the first hosted domain", async () => {
    const { json } = await prober.post("/api/xmpp-s2s/ping", {
      host: "127.0.0.1",
      port: target.s2sPort,
      toDomain: "target.example",
      useTLS: false,
    });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.match((json.stanzas as string[])[0]!, /to='prober\.example'/);
  });
});
