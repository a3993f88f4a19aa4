/**
 * POST /api/xmpp-s2s/connect against Ferry itself: plain, STARTTLS (the protected stream's
 * features, SASL EXTERNAL among them only after TLS), direct TLS (explicit, and by port 5270), and
 * the certificate verdicts a user sees for a good, a wrongly named, a self-signed and an expired one.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { captureLog, type CapturedLog } from "../helpers/federation.js";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, type IssuedCertificate } from "../helpers/testPki.js";
import { startFerry, startProber, negotiation, type Prober, type RunningFerry } from "./probeFerry.js";

const DAY = 86_400_000;
/** The direct TLS target listens on XEP-0368's conventional port, on an address of its own. */
const DIRECT_ADDRESS = "127.0.0.78";

interface Certificate {
  ok: boolean;
  reason?: string;
  covered: boolean;
  name: string;
}

const tlsOf = (json: Record<string, unknown>) =>
  json.tls as
    | {
        mode: string;
        version: string;
        cipher: string;
        certificate: { names: string[]; chain: string; daysLeft: number; verdicts: Certificate[] };
      }
    | undefined;

describe("POST /api/xmpp-s2s/connect against Ferry", () => {
  let run: RunDir;
  let ca: IssuedCertificate;
  const certs: Record<string, IssuedCertificate> = {};
  const targets: Record<string, RunningFerry> = {};
  let plainLog: CapturedLog;
  let prober: Prober;
  let proberWithCert: Prober;

  before(async () => {
    run = RunDir.create("probe-connect");
    const pki = new TestPki(run);
    ca = pki.issue("ca", { ca: true, cn: "Probe Test CA" });
    const leaf = (name: string, domain: string, extra: Parameters<TestPki["issue"]>[1] = {}): void => {
      certs[name] = pki.issue(name, {
        issuer: ca,
        san: [`DNS:${domain}`],
        eku: "serverAuth,clientAuth",
        ...extra,
      });
    };
    leaf("target", "target.example");
    leaf("prober", "prober.example");
    leaf("wrong", "other.example");
    leaf("expired", "target.example", {
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    certs.self = pki.issue("self", { san: ["DNS:target.example"], eku: "serverAuth" });

    plainLog = captureLog("debug");
    const hosts = ["target.example"];
    targets.plain = await startFerry({ hosts }, plainLog.logger);
    targets.starttls = await startFerry({ hosts, cert: certs.target!, ca: ca.certFile });
    targets.direct = await startFerry({ hosts, cert: certs.target!, tlsMode: "tls" });
    targets.port5270 = await startFerry({
      hosts,
      cert: certs.target!,
      tlsMode: "tls",
      address: DIRECT_ADDRESS,
      port: 5270,
    });
    targets.wrong = await startFerry({ hosts, cert: certs.wrong! });
    targets.self = await startFerry({ hosts, cert: certs.self });
    targets.expired = await startFerry({ hosts, cert: certs.expired! });
    prober = await startProber({ hosts: ["prober.example"], ca: ca.certFile });
    proberWithCert = await startProber({
      hosts: ["prober.example"],
      ca: ca.certFile,
      cert: certs.prober!,
      clientCert: true,
    });
  });

  after(async () => {
    await Promise.all([prober, proberWithCert, ...Object.values(targets)].map((f) => f.stop()));
    run.remove();
  });

  const connect = (p: Prober, target: RunningFerry, extra: Record<string, unknown> = {}) =>
    p.post("/api/xmpp-s2s/connect", {
      host: "127.0.0.1",
      port: target.s2sPort,
      fromDomain: "prober.example",
      toDomain: "target.example",
      timeout: 5000,
      ...extra,
    });

  it("plain: the server's own stream id, its features, rtt and phase timings", async () => {
    const { status, json, headers } = await connect(prober, targets.plain!, { useTLS: false });
    assert.equal(status, 200);
    assert.match(String(headers["content-type"]), /^application\/json/);
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.host, "127.0.0.1");
    assert.equal(json.port, targets.plain!.s2sPort);
    assert.match(String(json.streamId), /^[0-9a-f]{32}$/);
    // The id Ferry drew for the stream it accepted (its actor is `in:<id>`), not one made up.
    assert.ok(
      plainLog.grep(new RegExp(`in:${String(json.streamId)} .*accepted`)).length === 1,
      `target log has no stream ${String(json.streamId)}`,
    );
    assert.deepEqual(negotiation(json.features), ["DIALBACK"]);
    assert.equal(json.tls, undefined);
    assert.equal(typeof json.rtt, "number");
    const timings = json.timings as Record<string, number>;
    for (const phase of ["dns", "tcp", "stream"]) assert.equal(typeof timings[phase], "number", phase);
    assert.equal(timings.tls, undefined);
  });

  it("each connection reports the id of its own stream", async () => {
    const [a, b] = await Promise.all([
      connect(prober, targets.plain!, { useTLS: false }),
      connect(prober, targets.plain!, { useTLS: false }),
    ]);
    assert.notEqual(a.json.streamId, b.json.streamId);
  });

  it("useTLS false on a STARTTLS server: STARTTLS among the features, no TLS done", async () => {
    const { json } = await connect(prober, targets.starttls!, { useTLS: false });
    assert.equal(json.success, true);
    assert.deepEqual(negotiation(json.features), ["STARTTLS", "DIALBACK"]);
    assert.equal(json.tls, undefined);
  });

  it("STARTTLS: the protected stream's features, TLS version, cipher and a valid certificate", async () => {
    const { json } = await connect(prober, targets.starttls!, { useTLS: true });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.deepEqual(negotiation(json.featuresBeforeTls), ["STARTTLS", "DIALBACK"]);
    assert.deepEqual(negotiation(json.features), ["DIALBACK"]);
    assert.match(String(json.streamId), /^[0-9a-f]{32}$/);
    const tls = tlsOf(json);
    assert.ok(tls);
    assert.equal(tls.mode, "starttls");
    assert.match(tls.version, /^TLSv1\.[23]$/);
    assert.match(tls.cipher, /^TLS_/);
    assert.deepEqual(tls.certificate.names, ["target.example"]);
    assert.equal(tls.certificate.chain, "ok");
    assert.deepEqual(tls.certificate.verdicts, [{ name: "target.example", covered: true, ok: true }]);
    assert.equal(typeof (json.timings as Record<string, number>).tls, "number");
  });

  it("SASL EXTERNAL is offered only on the protected stream, to a prober whose certificate verifies", async () => {
    const { json } = await connect(proberWithCert, targets.starttls!, { useTLS: true });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.deepEqual(negotiation(json.featuresBeforeTls), ["STARTTLS", "DIALBACK"]);
    assert.deepEqual(negotiation(json.features), ["SASL-EXTERNAL", "DIALBACK"]);
  });

  it("direct TLS when asked: TLS from the first byte", async () => {
    const { json } = await connect(prober, targets.direct!, { directTLS: true });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(tlsOf(json)?.mode, "direct");
    assert.deepEqual(negotiation(json.features), ["DIALBACK"]);
    assert.equal(json.featuresBeforeTls, undefined);
    assert.equal(tlsOf(json)?.certificate.verdicts[0]?.ok, true);
  });

  it("direct TLS by default on port 5270", async () => {
    const { json } = await connect(prober, targets.port5270!, { host: DIRECT_ADDRESS, port: 5270 });
    assert.equal(json.success, true, JSON.stringify(json));
    assert.equal(json.port, 5270);
    assert.equal(tlsOf(json)?.mode, "direct");
  });

  it("a certificate for another name: connected, with the verdict name-mismatch", async () => {
    const { json } = await connect(prober, targets.wrong!);
    assert.equal(json.success, true, JSON.stringify(json));
    const cert = tlsOf(json)?.certificate;
    assert.ok(cert);
    assert.deepEqual(cert.names, ["other.example"]);
    assert.equal(cert.chain, "ok");
    assert.deepEqual(cert.verdicts[0], {
      name: "target.example",
      covered: false,
      ok: false,
      reason: "name-mismatch",
      detail: "cert names: other.example; expected target.example",
    });
  });

  it("verifyCertificate turns a bad certificate into the failure cert_invalid", async () => {
    const { status, json } = await connect(prober, targets.wrong!, { verifyCertificate: true });
    assert.equal(status, 200);
    assert.equal(json.success, false);
    assert.equal(json.code, "cert_invalid");
    assert.equal(json.phase, "tls");
    assert.match(String(json.error), /not valid for target\.example: name-mismatch/);
    // What was learnt before the failure is still reported.
    assert.match(String(json.streamId), /^[0-9a-f]{32}$/);
  });

  it("a self-signed certificate", async () => {
    const { json } = await connect(prober, targets.self!);
    const cert = tlsOf(json)?.certificate;
    assert.ok(cert);
    assert.equal(cert.chain, "self-signed");
    assert.equal(cert.verdicts[0]?.reason, "self-signed");
    assert.equal(cert.verdicts[0].covered, true);
  });

  it("an expired certificate: the verdict and how long ago", async () => {
    const { json } = await connect(prober, targets.expired!);
    const cert = tlsOf(json)?.certificate;
    assert.ok(cert);
    assert.equal(cert.chain, "expired");
    assert.equal(cert.verdicts[0]?.reason, "expired");
    assert.ok(cert.daysLeft < 0, `daysLeft ${cert.daysLeft}`);
    const failed = await connect(prober, targets.expired!, { verifyCertificate: true });
    assert.equal(failed.json.code, "cert_invalid");
  });
});
