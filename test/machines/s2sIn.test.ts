import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createActor, fromCallback } from "xstate";
import { s2sInMachine, type S2sInInput } from "../../machines/s2sIn.js";
import type { PeerStreamHeader, TransportCommand } from "../../machines/events.js";
import { el } from "../../src/xml/element.js";
import { NS } from "../../src/xmpp/namespaces.js";

/** The machine with a fake transport that records the commands it is given. */
function start(input: Partial<S2sInInput> = {}) {
  const commands: TransportCommand[] = [];
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
  });
  const actor = createActor(machine, {
    input: {
      streamId: "s1",
      hosts: ["a.example"],
      stateTimeoutMs: 50,
      streamTimeoutMs: 1000,
      starttls: "none",
      ...input,
    },
  });
  actor.start();
  return { actor, commands, transportStopped: () => stopped };
}

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
