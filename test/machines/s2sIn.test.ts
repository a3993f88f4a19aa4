import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { assign, createActor, fromCallback, type AnyActorRef } from "xstate";
import { pairKey, s2sInMachine, type S2sInInput } from "../../machines/s2sIn.js";
import type { CertificateSummary, PeerStreamHeader, TransportCommand } from "../../machines/events.js";
import { Element, el } from "../../src/xml/element.js";
import { dbResultRequest, dbVerifyRequest } from "../../src/xmpp/dialback.js";
import { NS } from "../../src/xmpp/namespaces.js";

interface S2sInFakes {
  /** dbTargetServed: is the db:result's receiving domain ours? */
  served?: boolean;
  /** dbOriginAllowed: may its originating domain federate with us? */
  allowed?: boolean;
  /** dbOriginCertified: does the stream's certificate verify for the originating domain? */
  certified?: boolean;
  /** What checkCertificate finds for the stream's `from` after TLS. */
  certificate?: CertificateSummary;
}

/** The machine with a fake transport that records the commands it is given. */
function start(input: Partial<S2sInInput> = {}, fakes: S2sInFakes = {}) {
  const commands: TransportCommand[] = [];
  const verifyAnswered: Element[] = [];
  const verifications: Element[] = [];
  let stanzaPaths = 0;
  let smEnabled = 0;
  let stopped = false;
  const machine = s2sInMachine.provide({
    actors: {
      transport: fromCallback<TransportCommand, { connectionId: string }>(({ receive }) => {
        receive((command) => commands.push(command));
        return () => {
          stopped = true;
        };
      }),
    },
    guards: {
      dbTargetServed: () => fakes.served ?? true,
      dbOriginAllowed: () => fakes.allowed ?? true,
      dbOriginCertified: () => fakes.certified ?? false,
    },
    actions: {
      answerVerify: ({ event }) => {
        if (event.type === "ELEMENT") verifyAnswered.push(event.element);
      },
      startVerification: ({ event }) => {
        if (event.type === "ELEMENT") verifications.push(event.element);
      },
      openStanzaPath: () => {
        stanzaPaths += 1;
      },
      enableSm: () => {
        smEnabled += 1;
      },
      checkCertificate: assign(() =>
        fakes.certificate === undefined ? {} : { certificate: fakes.certificate },
      ),
      renewStreamId: assign({ streamId: "s1-after-sasl" }),
    },
  });
  const actor = createActor(machine, {
    input: {
      connectionId: "s1",
      streamId: "s1",
      hosts: ["a.example"],
      stateTimeoutMs: 50,
      streamTimeoutMs: 1000,
      starttls: "none",
      ...input,
    },
  });
  actor.start();
  started.push(actor);
  return {
    actor,
    commands,
    verifyAnswered,
    verifications,
    smEnabled: () => smEnabled,
    stanzaPaths: () => stanzaPaths,
    transportStopped: () => stopped,
  };
}

const started: AnyActorRef[] = [];
afterEach(() => {
  for (const actor of started.splice(0)) actor.stop();
});

function header(attrs: Partial<PeerStreamHeader> = {}): PeerStreamHeader {
  return {
    ns: NS.STREAM,
    defaultNs: NS.SERVER,
    prefixes: { stream: NS.STREAM, db: NS.DIALBACK },
    attrs: {},
    to: "a.example",
    from: "b.example",
    version: "1.0",
    ...attrs,
  };
}

function closeCondition(commands: TransportCommand[]): string | undefined {
  const close = commands.find((c) => c.type === "CLOSE_STREAM");
  assert.ok(close, "expected the stream to be closed");
  return close.error?.condition;
}

describe("s2sIn machine", () => {
  it("answers a 1.0 header with its own header and features offering dialback", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header() });
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
    const [open, features] = commands;
    assert.ok(open?.type === "OPEN_STREAM");
    assert.deepEqual(open.attrs, {
      defaultNs: NS.SERVER,
      id: "s1",
      from: "a.example",
      to: "b.example",
      version: "1.0",
      extraNamespaces: { db: NS.DIALBACK },
    });
    assert.ok(features?.type === "SEND");
    const offered = features.element;
    assert.equal(offered.name, "stream:features");
    assert.ok(offered.getChild("dialback", NS.DIALBACK_FEATURE)?.getChild("errors"));
    assert.equal(offered.getChild("starttls", NS.TLS), undefined, "no STARTTLS without a certificate");
  });

  it("offers STARTTLS, marked required when the listener requires it", () => {
    const { actor, commands } = start({ starttls: "required" });
    actor.send({ type: "STREAM_HEADER", header: header() });
    const features = commands[1];
    assert.ok(features?.type === "SEND");
    assert.ok(features.element.getChild("starttls", NS.TLS)?.getChild("required"));
  });

  it("gives a pre-1.0 peer a header without version and no features", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header({ version: undefined }) });
    assert.equal(commands.length, 1);
    const open = commands[0];
    assert.ok(open?.type === "OPEN_STREAM");
    assert.equal(open.attrs.version, undefined);
    assert.equal(actor.getSnapshot().context.version, "0.9");
  });

  it("refuses a domain it does not host with <host-unknown/>", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header({ to: "elsewhere.example" }) });
    assert.equal(closeCondition(commands), "host-unknown");
    assert.equal(actor.getSnapshot().value, "closing");
  });

  it("matches the hosted domain case-insensitively", () => {
    const { actor } = start();
    actor.send({ type: "STREAM_HEADER", header: header({ to: "A.Example" }) });
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
  });

  it("refuses a stream in another content namespace with <invalid-namespace/>", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header({ defaultNs: NS.CLIENT }) });
    assert.equal(closeCondition(commands), "invalid-namespace");
  });

  it("refuses stanzas before authentication with <not-authorized/>", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header() });
    actor.send({ type: "ELEMENT", element: el("message", { from: "u@b.example", to: "v@a.example" }) });
    assert.equal(closeCondition(commands), "not-authorized");
  });

  it("times out with <connection-timeout/> when no header arrives within state_timeout", async () => {
    const { commands } = start({ stateTimeoutMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(closeCondition(commands), "connection-timeout");
  });

  it("turns parser errors into the matching stream error", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_ERROR", condition: "restricted-xml", text: "comment" });
    assert.equal(closeCondition(commands), "restricted-xml");
    assert.equal(actor.getSnapshot().context.closeReason, "restricted-xml");
  });

  it("answers the peer's </stream:stream> with its own and no error", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header() });
    actor.send({ type: "STREAM_END" });
    assert.equal(closeCondition(commands), undefined);
  });

  it("ADMIN_CLOSE ends the stream in order, without a stream error", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header() });
    actor.send({ type: "ADMIN_CLOSE", by: "admin@example.org" });
    assert.equal(closeCondition(commands), undefined);
    assert.equal(actor.getSnapshot().value, "closing");
    assert.equal(actor.getSnapshot().context.closeReason, "closed");
  });

  it("ends with <system-shutdown/> on SHUTDOWN and finishes when the socket closes", () => {
    const { actor, commands, transportStopped } = start();
    actor.send({ type: "STREAM_HEADER", header: header() });
    actor.send({ type: "SHUTDOWN" });
    assert.equal(closeCondition(commands), "system-shutdown");
    assert.equal(actor.getSnapshot().status, "active");
    actor.send({ type: "SOCKET_CLOSED" });
    assert.equal(actor.getSnapshot().status, "done");
    assert.ok(transportStopped(), "the transport is released when the stream is done");
  });
});

/** Elements as the parser delivers them: with their namespace resolved. */
const inNs = (element: Element, ns: string): Element =>
  new Element(element.name, element.attrs, element.children, ns);

/** XEP-0220 step 1 as received: `<db:result from=originating to=receiving>KEY</db:result>`. */
const dbResult = (from = "b.example", to = "a.example"): Element =>
  inNs(dbResultRequest(from, to, "k3y"), NS.DIALBACK);

function sentElements(commands: TransportCommand[]): Element[] {
  return commands.flatMap((c) => (c.type === "SEND" ? [c.element] : []));
}

/** The last `<db:result type=…/>` the machine sent back. */
function lastVerdict(commands: TransportCommand[]): Element {
  const verdict = sentElements(commands)
    .filter((e) => e.name === "db:result")
    .at(-1);
  assert.ok(verdict, "expected a <db:result/> answer");
  return verdict;
}

function opened(input: Partial<S2sInInput> = {}, fakes: S2sInFakes = {}) {
  const h = start(input, fakes);
  h.actor.send({ type: "STREAM_HEADER", header: header() });
  return h;
}

const verdict = (
  result: "valid" | "invalid" | "failed",
  remote = "b.example",
  local = "a.example",
  reason?: string,
) =>
  ({
    type: "DIALBACK_VERIFIED",
    remote,
    local,
    result,
    ...(reason === undefined ? {} : { reason }),
  }) as const;

describe("s2sIn machine: stream management (XEP-0198)", () => {
  const enable = new Element("enable", { xmlns: NS.SM }, [], NS.SM);

  it("offers urn:xmpp:sm:3 in its features", () => {
    const { commands } = opened();
    const features = sentElements(commands).find((e) => e.name === "stream:features");
    assert.ok(features?.getChild("sm", NS.SM));
  });

  it("refuses <enable/> before a domain is authorized (<unexpected-request/>), the stream goes on", () => {
    const { actor, commands } = opened();
    actor.send({ type: "ELEMENT", element: enable });
    const failed = sentElements(commands).at(-1);
    assert.equal(failed?.name, "failed");
    assert.ok(failed.getChild("unexpected-request", NS.STANZA_ERRORS));
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
  });

  it("enables it once established (src/'s enableSm counts from then on)", () => {
    const { actor, smEnabled } = opened();
    actor.send({ type: "ELEMENT", element: enable });
    assert.equal(smEnabled(), 0);
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    assert.equal(actor.getSnapshot().value, "established");
    actor.send({ type: "ELEMENT", element: enable });
    assert.equal(smEnabled(), 1);
  });
});

describe("s2sIn machine: dialback", () => {
  it("hands a <db:verify/> request to answerVerify (authoritative side)", () => {
    const { actor, commands, verifyAnswered, verifications } = opened();
    const before = commands.length;
    const request = inNs(dbVerifyRequest("b.example", "a.example", "their-stream", "k3y"), NS.DIALBACK);
    actor.send({ type: "ELEMENT", element: request });
    assert.deepEqual(verifyAnswered, [request]);
    assert.deepEqual(verifications, []);
    assert.equal(commands.length, before, "the answer is sent by the provided action, not the machine");
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
  });

  it("answers a <db:result/> for a domain it does not serve with type='error' and <item-not-found/>", () => {
    const { actor, commands, verifications } = opened({}, { served: false });
    actor.send({ type: "ELEMENT", element: dbResult("b.example", "elsewhere.example") });
    const answer = lastVerdict(commands);
    assert.deepEqual(answer.attrs, { from: "elsewhere.example", to: "b.example", type: "error" });
    const error = answer.getChild("error");
    assert.ok(error?.getChild("item-not-found", NS.STANZA_ERRORS));
    assert.deepEqual(verifications, []);
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" }, "the stream stays");
    assert.equal(
      commands.find((c) => c.type === "CLOSE_STREAM"),
      undefined,
    );
  });

  it("closes with <policy-violation/> when the originating domain is denied", () => {
    const { actor, commands, verifications } = opened({}, { allowed: false });
    actor.send({ type: "ELEMENT", element: dbResult("evil.example") });
    assert.equal(closeCondition(commands), "policy-violation");
    const close = commands.find((c) => c.type === "CLOSE_STREAM");
    assert.match(close?.type === "CLOSE_STREAM" ? (close.error?.text ?? "") : "", /evil\.example/);
    assert.equal(actor.getSnapshot().value, "closing");
    assert.deepEqual(verifications, []);
  });

  it("closes with <policy-violation/> when dialback comes before the STARTTLS the listener requires", () => {
    const { actor, commands, verifications } = opened({ starttls: "required" });
    actor.send({ type: "ELEMENT", element: dbResult() });
    assert.equal(closeCondition(commands), "policy-violation");
    assert.deepEqual(verifications, []);
  });

  it("starts a verification for an allowed <db:result/> and records it as pending", () => {
    const { actor, verifications } = opened();
    const request = dbResult();
    actor.send({ type: "ELEMENT", element: request });
    assert.deepEqual(verifications, [request]);
    assert.deepEqual(actor.getSnapshot().context.pending, ["b.example a.example"]);
    assert.deepEqual(actor.getSnapshot().context.authorized, []);
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
  });

  it("a pre-1.0 peer may do dialback too", () => {
    const { actor, verifications } = start();
    actor.send({ type: "STREAM_HEADER", header: header({ version: undefined }) });
    actor.send({ type: "ELEMENT", element: dbResult() });
    assert.equal(verifications.length, 1);
  });

  it("a valid verdict establishes the stream: stanza path, WATCH_IDLE, <db:result type='valid'/>", () => {
    const { actor, commands, stanzaPaths } = opened({ streamTimeoutMs: 4321 });
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    assert.equal(actor.getSnapshot().value, "established");
    assert.equal(stanzaPaths(), 1);
    assert.ok(commands.some((c) => c.type === "WATCH_IDLE" && c.ms === 4321));
    assert.deepEqual(lastVerdict(commands).attrs, { from: "a.example", to: "b.example", type: "valid" });
    assert.deepEqual(actor.getSnapshot().context.authorized, ["b.example a.example"]);
    assert.deepEqual(actor.getSnapshot().context.pending, []);
  });

  it("piggybacking: another valid pair while established is added to the authorized ones", () => {
    const { actor, commands, verifications, stanzaPaths } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    actor.send({ type: "ELEMENT", element: dbResult("c.example", "a.example") });
    assert.equal(verifications.length, 2);
    assert.deepEqual(actor.getSnapshot().context.pending, ["c.example a.example"]);
    actor.send(verdict("valid", "c.example"));
    assert.equal(actor.getSnapshot().value, "established");
    assert.deepEqual(actor.getSnapshot().context.authorized, ["b.example a.example", "c.example a.example"]);
    assert.deepEqual(lastVerdict(commands).attrs, { from: "a.example", to: "c.example", type: "valid" });
    assert.equal(stanzaPaths(), 1, "the stanza path is opened once");
    assert.equal(commands.filter((c) => c.type === "WATCH_IDLE").length, 1);
  });

  it("an invalid verdict is answered with type='invalid' and authorizes nothing", () => {
    const { actor, commands, stanzaPaths } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("invalid"));
    assert.deepEqual(lastVerdict(commands).attrs, { from: "a.example", to: "b.example", type: "invalid" });
    assert.deepEqual(actor.getSnapshot().context.authorized, []);
    assert.deepEqual(actor.getSnapshot().context.pending, []);
    assert.equal(actor.getSnapshot().value, "closing", "XEP-0220 §2.2.1: the stream is closed");
    assert.equal(closeCondition(commands), undefined, "after the invalid result, no stream error");
    assert.equal(stanzaPaths(), 0);
  });

  it("an invalid verdict on a stream another domain uses is a <forbidden/> dialback error; the stream stays", () => {
    const { actor, commands } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    actor.send({ type: "ELEMENT", element: dbResult("c.example") });
    actor.send(verdict("invalid", "c.example"));
    const answer = lastVerdict(commands);
    assert.deepEqual(answer.attrs, { from: "a.example", to: "c.example", type: "error" });
    assert.ok(answer.getChild("error")?.getChild("forbidden", NS.STANZA_ERRORS));
    assert.equal(actor.getSnapshot().value, "established");
  });

  it("refuses malformed dialback with <improper-addressing/> and a claim of our own domain with <invalid-from/>", () => {
    for (const [element, condition] of [
      [inNs(el("db:result", { to: "a.example" }, "k"), NS.DIALBACK), "improper-addressing"],
      [
        inNs(el("db:result", { from: "u@b.example", to: "a.example" }, "k"), NS.DIALBACK),
        "improper-addressing",
      ],
      [
        inNs(el("db:verify", { from: "b.example", to: "a.example" }, "k"), NS.DIALBACK),
        "improper-addressing",
      ],
      [dbResult("a.example", "a.example"), "invalid-from"],
      [inNs(el("foo", { xmlns: "urn:example" }), "urn:example"), "unsupported-stanza-type"],
    ] as const) {
      const { actor, commands, verifications } = opened();
      actor.send({ type: "ELEMENT", element });
      assert.equal(closeCondition(commands), condition, element.name);
      assert.deepEqual(verifications, [], "no verification started");
      assert.equal(actor.getSnapshot().value, "closing");
    }
  });

  it("a failed verification is answered with type='error' and <remote-server-timeout/>", () => {
    const { actor, commands } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("failed", "b.example", "a.example", "DNS: no SRV or A/AAAA records for b.example"));
    const answer = lastVerdict(commands);
    assert.deepEqual(answer.attrs, { from: "a.example", to: "b.example", type: "error" });
    const error = answer.getChild("error");
    assert.ok(error, "a dialback error carries an <error/>");
    assert.ok(error.getChild("remote-server-timeout", NS.STANZA_ERRORS));
    assert.equal(
      error.getChild("text", NS.STANZA_ERRORS)?.text(),
      "DNS: no SRV or A/AAAA records for b.example",
    );
    assert.deepEqual(actor.getSnapshot().context.authorized, []);
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
  });

  it("an invalid verdict for a piggybacked pair leaves the established ones alone", () => {
    const { actor } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    actor.send({ type: "ELEMENT", element: dbResult("c.example") });
    actor.send(verdict("invalid", "c.example"));
    assert.equal(actor.getSnapshot().value, "established");
    assert.deepEqual(actor.getSnapshot().context.authorized, ["b.example a.example"]);
  });

  // Machine bug (reported): the root DIALBACK_VERIFIED handler targets `.established` from any
  // state, so a verdict that arrives after the stream started closing re-opens it.
  it("a verdict arriving after the stream started closing does not establish it", () => {
    const { actor, stanzaPaths } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send({ type: "STREAM_END" });
    assert.equal(actor.getSnapshot().value, "closing");
    actor.send(verdict("valid"));
    assert.equal(actor.getSnapshot().value, "closing", "a closing stream stays closing");
    assert.equal(stanzaPaths(), 0, "no stanza path on a closing stream");
  });
});

describe("s2sIn machine: STARTTLS", () => {
  it("<starttls/> when offered: <proceed/>, START_TLS as server, then a new stream without STARTTLS", () => {
    const { actor, commands } = opened({ starttls: "optional" });
    const before = commands.length;
    actor.send({ type: "ELEMENT", element: inNs(el("starttls"), NS.TLS) });
    assert.deepEqual(actor.getSnapshot().value, { connecting: "tlsStarting" });
    const [proceed, startTls] = commands.slice(before);
    assert.ok(proceed?.type === "SEND");
    assert.equal(proceed.element.local, "proceed");
    assert.equal(proceed.element.ns, NS.TLS);
    assert.deepEqual(startTls, { type: "START_TLS", role: "server" });

    actor.send({ type: "TLS_ESTABLISHED", streamId: "s1-after-tls" });
    assert.deepEqual(actor.getSnapshot().value, { connecting: "waitForStream" });
    assert.equal(actor.getSnapshot().context.secure, true);

    const restart = commands.length;
    actor.send({ type: "STREAM_HEADER", header: header() });
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
    const [open, features] = commands.slice(restart);
    assert.ok(open?.type === "OPEN_STREAM");
    assert.equal(open.attrs.version, "1.0");
    assert.equal(open.attrs.id, "s1-after-tls", "RFC 6120 §4.7.3: a restarted stream gets a new id");
    assert.ok(features?.type === "SEND");
    assert.equal(features.element.getChild("starttls", NS.TLS), undefined, "no STARTTLS on a secure stream");
    assert.ok(features.element.getChild("dialback", NS.DIALBACK_FEATURE));
  });

  it("after the required STARTTLS, dialback is allowed", () => {
    const { actor, commands, verifications } = opened({ starttls: "required" });
    actor.send({ type: "ELEMENT", element: inNs(el("starttls"), NS.TLS) });
    actor.send({ type: "TLS_ESTABLISHED" });
    actor.send({ type: "STREAM_HEADER", header: header() });
    actor.send({ type: "ELEMENT", element: dbResult() });
    assert.equal(verifications.length, 1);
    assert.equal(
      commands.find((c) => c.type === "CLOSE_STREAM"),
      undefined,
    );
  });

  it("<starttls/> when not offered: <failure/> and the stream is closed", () => {
    const { actor, commands } = opened({ starttls: "none" });
    actor.send({ type: "ELEMENT", element: inNs(el("starttls"), NS.TLS) });
    const failure = sentElements(commands).at(-1);
    assert.equal(failure?.local, "failure");
    assert.equal(failure.ns, NS.TLS);
    assert.equal(closeCondition(commands), undefined);
    assert.equal(actor.getSnapshot().value, "closing");
  });

  it("<starttls/> a second time, on a secure stream: <failure/> and close", () => {
    const { actor, commands } = opened({ starttls: "optional" });
    actor.send({ type: "ELEMENT", element: inNs(el("starttls"), NS.TLS) });
    actor.send({ type: "TLS_ESTABLISHED" });
    actor.send({ type: "STREAM_HEADER", header: header() });
    actor.send({ type: "ELEMENT", element: inNs(el("starttls"), NS.TLS) });
    assert.equal(sentElements(commands).at(-1)?.local, "failure");
    assert.equal(actor.getSnapshot().value, "closing");
  });

  it("a failed TLS handshake closes the stream", () => {
    const { actor } = opened({ starttls: "optional" });
    actor.send({ type: "ELEMENT", element: inNs(el("starttls"), NS.TLS) });
    actor.send({ type: "TLS_FAILED", error: "no shared cipher" });
    assert.equal(actor.getSnapshot().value, "closing");
    assert.equal(actor.getSnapshot().context.closeReason, "TLS failed: no shared cipher");
    actor.send({ type: "SOCKET_CLOSED" });
    assert.equal(actor.getSnapshot().status, "done");
  });
});

describe("s2sIn machine: timeouts and stream ends", () => {
  it("awaitingAuth: <connection-timeout/> when nothing authenticates within state_timeout", async () => {
    const { commands } = opened({ stateTimeoutMs: 30 });
    await new Promise((resolve) => setTimeout(resolve, 15));
    assert.equal(
      commands.find((c) => c.type === "CLOSE_STREAM"),
      undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 45));
    assert.equal(closeCondition(commands), "connection-timeout");
  });

  it("awaitingAuth: no timeout while a verification is pending, and again once it is settled", async () => {
    const { actor, commands } = opened({ stateTimeoutMs: 30 });
    actor.send({ type: "ELEMENT", element: dbResult() });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(
      commands.find((c) => c.type === "CLOSE_STREAM"),
      undefined,
      "our own verification does not count against the peer",
    );
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
    actor.send(verdict("failed"));
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(closeCondition(commands), "connection-timeout");
  });

  it("established: IDLE closes the stream in order", () => {
    const { actor, commands } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    actor.send({ type: "IDLE" });
    assert.equal(actor.getSnapshot().value, "closing");
    assert.equal(closeCondition(commands), undefined);
    actor.send({ type: "SOCKET_CLOSED" });
    assert.equal(actor.getSnapshot().status, "done");
  });

  it("established: no state_timeout", async () => {
    const { actor, commands } = opened({ stateTimeoutMs: 20 });
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(actor.getSnapshot().value, "established");
    assert.equal(
      commands.find((c) => c.type === "CLOSE_STREAM"),
      undefined,
    );
  });

  it("a peer <stream:error/> is answered with </stream:stream> and no error of our own", () => {
    const { actor, commands } = opened();
    actor.send({
      type: "ELEMENT",
      element: inNs(el("stream:error", {}, el("host-unknown", { xmlns: NS.STREAM_ERRORS })), NS.STREAM),
    });
    assert.equal(actor.getSnapshot().value, "closing");
    assert.equal(closeCondition(commands), undefined);
  });

  it("a peer <stream:error/> on an established stream closes it too", () => {
    const { actor, commands } = opened();
    actor.send({ type: "ELEMENT", element: dbResult() });
    actor.send(verdict("valid"));
    actor.send({
      type: "ELEMENT",
      element: inNs(el("stream:error", {}, el("reset", { xmlns: NS.STREAM_ERRORS })), NS.STREAM),
    });
    assert.equal(actor.getSnapshot().value, "closing");
    assert.equal(closeCondition(commands), undefined);
  });
});

describe("s2sIn machine: trust", () => {
  const GOOD: CertificateSummary = { ok: true, names: ["b.example"] };
  const sasl = (local: string, text = "", attrs: Record<string, string> = {}) =>
    inNs(el(local, attrs, ...(text === "" ? [] : [text])), NS.SASL);

  /** A direct-TLS stream whose peer certificate is judged `certificate`, header received. */
  function secured(certificate: CertificateSummary, input: Partial<S2sInInput> = {}, fakes: S2sInFakes = {}) {
    return opened({ directTls: true, ...input }, { certificate, ...fakes });
  }

  it("offers SASL EXTERNAL only when the certificate verified for the stream's from", () => {
    const good = secured(GOOD);
    const offered = good.commands.find((c) => c.type === "SEND");
    assert.ok(offered?.type === "SEND");
    assert.ok(offered.element.getChild("mechanisms", NS.SASL));
    const bad = secured({ ok: false, reason: "expired", names: ["b.example"] });
    const notOffered = bad.commands.find((c) => c.type === "SEND");
    assert.ok(notOffered?.type === "SEND");
    assert.equal(notOffered.element.getChild("mechanisms", NS.SASL), undefined);
    assert.equal(bad.actor.getSnapshot().context.certificate?.reason, "expired");
  });

  it("EXTERNAL: <success/>, a restarted stream with a new id, then established for the pair", () => {
    const { actor, commands, stanzaPaths } = secured(GOOD);
    actor.send({ type: "ELEMENT", element: sasl("auth", "=", { mechanism: "EXTERNAL" }) });
    assert.deepEqual(actor.getSnapshot().value, { connecting: "saslRestart" });
    const success = commands.find((c) => c.type === "SEND" && c.element.local === "success");
    assert.ok(success, "<success/> sent");
    assert.ok(commands.some((c) => c.type === "RESET_PARSER"));
    const before = commands.length;
    actor.send({ type: "STREAM_HEADER", header: header() });
    assert.equal(actor.getSnapshot().value, "established");
    const open = commands.slice(before).find((c) => c.type === "OPEN_STREAM");
    assert.ok(open?.type === "OPEN_STREAM");
    assert.equal(open.attrs.id, "s1-after-sasl");
    assert.deepEqual(actor.getSnapshot().context.authorized, [pairKey("b.example", "a.example")]);
    assert.equal(stanzaPaths(), 1);
  });

  it("EXTERNAL with an authzid other than the stream's from gets <failure/>", () => {
    const { actor, commands } = secured(GOOD);
    actor.send({
      type: "ELEMENT",
      element: sasl("auth", Buffer.from("evil.example").toString("base64"), { mechanism: "EXTERNAL" }),
    });
    assert.ok(commands.some((c) => c.type === "SEND" && c.element.local === "failure"));
    assert.deepEqual(actor.getSnapshot().value, { connecting: "awaitingAuth" });
  });

  it("dialback over TLS with a certificate valid for the origin is accepted without a verify round trip", () => {
    const { actor, commands, verifications } = secured(GOOD, {}, { certified: true });
    actor.send({ type: "ELEMENT", element: dbResult("b.example", "a.example") });
    assert.deepEqual(verifications, [], "no dialbackVerify actor");
    assert.equal(actor.getSnapshot().value, "established");
    const answer = commands.find((c) => c.type === "SEND" && c.element.local === "result");
    assert.ok(answer?.type === "SEND");
    assert.equal(answer.element.attrs.type, "valid");
  });

  it("secure_auth: dialback without a certified origin ends the stream with <policy-violation/>", () => {
    const { actor, commands, verifications } = opened({ secureAuth: true });
    actor.send({ type: "ELEMENT", element: dbResult("b.example", "a.example") });
    assert.deepEqual(verifications, []);
    assert.equal(closeCondition(commands), "policy-violation");
  });
});
