import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createActor, fromCallback } from "xstate";
import { componentDomains, componentMachine, type ComponentInput } from "../../machines/component.js";
import type { PeerStreamHeader, TransportCommand } from "../../machines/events.js";
import { el } from "../../src/xml/element.js";
import { NS } from "../../src/xmpp/namespaces.js";

interface Fakes {
  secretOk?: boolean;
  taken?: boolean;
}

function start(input: Partial<ComponentInput> = {}, fakes: Fakes = {}) {
  const commands: TransportCommand[] = [];
  const routes: string[] = [];
  const machine = componentMachine.provide({
    actors: {
      transport: fromCallback<TransportCommand, { connectionId: string }>(({ receive }) => {
        receive((command) => commands.push(command));
      }),
    },
    guards: {
      validHandshake: () => fakes.secretOk ?? true,
      nameTaken: () => fakes.taken ?? false,
    },
    actions: {
      registerRoutes: ({ context }) => routes.push(`+${componentDomains(context).join(",")}`),
      unregisterRoutes: ({ context }) => routes.push(`-${componentDomains(context).join(",")}`),
    },
  });
  const actor = createActor(machine, {
    input: {
      streamId: "c1",
      hosts: ["a.example", "b.example"],
      stateTimeoutMs: 50,
      conflictBehaviour: "disconnect",
      ...input,
    },
  });
  actor.start();
  return { actor, commands, routes };
}

function header(to: string | undefined, attrs: Record<string, string> = {}): PeerStreamHeader {
  return {
    ns: NS.STREAM,
    defaultNs: NS.COMPONENT,
    prefixes: { stream: NS.STREAM },
    attrs: { ...(to === undefined ? {} : { to }), ...attrs },
    ...(to === undefined ? {} : { to }),
  };
}

function closeCondition(commands: TransportCommand[]): string | undefined {
  const close = commands.find((c) => c.type === "CLOSE_STREAM");
  assert.ok(close, "expected the stream to be closed");
  return close.error?.condition;
}

describe("component machine", () => {
  it("walks awaitingStream → awaitingHandshake → established and registers its routes", () => {
    const { actor, commands, routes } = start();
    assert.equal(actor.getSnapshot().value, "awaitingStream");
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    assert.equal(actor.getSnapshot().value, "awaitingHandshake");
    const open = commands[0];
    assert.ok(open?.type === "OPEN_STREAM");
    assert.deepEqual(open.attrs, { defaultNs: NS.COMPONENT, from: "svc.a.example", id: "c1" });
    actor.send({ type: "ELEMENT", element: el("handshake", {}, "digest") });
    assert.equal(actor.getSnapshot().value, "established");
    const handshake = commands[1];
    assert.ok(handshake?.type === "SEND");
    assert.equal(handshake.element.name, "handshake");
    assert.deepEqual(routes, ["+svc.a.example"]);
  });

  it("serves <name>.<each host> too with is_subdomain", () => {
    const { actor, routes } = start();
    actor.send({ type: "STREAM_HEADER", header: header("muc", { is_subdomain: "true" }) });
    actor.send({ type: "ELEMENT", element: el("handshake", {}, "d") });
    assert.deepEqual(routes, ["+muc,muc.a.example,muc.b.example"]);
  });

  it("refuses a wrong secret with <not-authorized/>", () => {
    const { actor, commands, routes } = start({}, { secretOk: false });
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    actor.send({ type: "ELEMENT", element: el("handshake", {}, "wrong") });
    assert.equal(closeCondition(commands), "not-authorized");
    assert.deepEqual(routes, []);
  });

  it("refuses anything but a handshake before authentication", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    actor.send({ type: "ELEMENT", element: el("message", { to: "x@a.example" }) });
    assert.equal(closeCondition(commands), "not-authorized");
  });

  it("refuses a header without a domain with <host-unknown/>", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header(undefined) });
    assert.equal(closeCondition(commands), "host-unknown");
  });

  it("refuses a hosted domain with <conflict/>", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: header("a.example") });
    assert.equal(closeCondition(commands), "conflict");
  });

  it("refuses a stream in another namespace with <invalid-namespace/>", () => {
    const { actor, commands } = start();
    actor.send({ type: "STREAM_HEADER", header: { ...header("svc.a.example"), defaultNs: NS.SERVER } });
    assert.equal(closeCondition(commands), "invalid-namespace");
  });

  it("disconnect: a second session for a taken name gets <conflict/>", () => {
    const { actor, commands, routes } = start({ conflictBehaviour: "disconnect" }, { taken: true });
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    actor.send({ type: "ELEMENT", element: el("handshake", {}, "d") });
    assert.equal(closeCondition(commands), "conflict");
    assert.deepEqual(routes, []);
  });

  it("kick_old: the new session is established despite the taken name", () => {
    const { actor, routes } = start({ conflictBehaviour: "kick_old" }, { taken: true });
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    actor.send({ type: "ELEMENT", element: el("handshake", {}, "d") });
    assert.equal(actor.getSnapshot().value, "established");
    assert.deepEqual(routes, ["+svc.a.example"]);
  });

  it("a replaced session ends with <conflict/> and gives up its routes", () => {
    const { actor, commands, routes } = start();
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    actor.send({ type: "ELEMENT", element: el("handshake", {}, "d") });
    actor.send({ type: "REPLACED" });
    assert.equal(actor.getSnapshot().value, "replaced");
    assert.equal(closeCondition(commands), "conflict");
    assert.deepEqual(routes, ["+svc.a.example", "-svc.a.example"]);
    actor.send({ type: "SOCKET_CLOSED" });
    assert.equal(actor.getSnapshot().status, "done");
  });

  it("times out without a handshake with <connection-timeout/>", async () => {
    const { actor, commands } = start({ stateTimeoutMs: 20 });
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(closeCondition(commands), "connection-timeout");
  });

  it("unregisters when the established stream is lost", () => {
    const { actor, routes } = start();
    actor.send({ type: "STREAM_HEADER", header: header("svc.a.example") });
    actor.send({ type: "ELEMENT", element: el("handshake", {}, "d") });
    actor.send({ type: "SOCKET_CLOSED" });
    assert.deepEqual(routes, ["+svc.a.example", "-svc.a.example"]);
    assert.equal(actor.getSnapshot().status, "done");
  });
});
