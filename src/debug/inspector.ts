/**
 * The optional Stately inspector (`[debug] inspector = { port = 5281 }`): `@statelyai/inspect`'s
 * WebSocket relay on that port, fed by the registry's shared inspect observer. Off by default, and
 * when off nothing is attached. Contexts and events are sanitized: no dialback keys, passwords or
 * stanza contents reach the inspector (a negotiation element is shown by its name only).
 */
import { createWebSocketInspector } from "@statelyai/inspect";
import { createInspectorServer } from "@statelyai/inspect/server";
import type { AnyEventObject, MachineContext } from "xstate";
import type { Logger } from "../log.js";
import type { ActorRegistry } from "../routing/registry.js";
import { sanitize } from "../routing/actorViews.js";

function sanitizeEvent(event: AnyEventObject): AnyEventObject {
  const { element, header, ...rest } = event as AnyEventObject & {
    element?: { name?: unknown };
    header?: unknown;
  };
  return {
    ...(sanitize(rest) as AnyEventObject),
    ...(element === undefined ? {} : { element: String(element.name) }),
    ...(header === undefined ? {} : { header: "(stream header)" }),
  };
}

export function startStatelyInspector(port: number, registry: ActorRegistry, log: Logger): { stop(): void } {
  const relay = createInspectorServer({ port, autoOpen: false });
  const inspector = createWebSocketInspector({
    url: `ws://127.0.0.1:${port}`,
    sanitizeContext: (context: MachineContext) => sanitize(context) as MachineContext,
    sanitizeEvent,
  });
  const detach = registry.addInspector((event) => {
    inspector.inspect.next?.(event);
  });
  log.notice(
    `Stately inspector relay on port ${port}: open http://127.0.0.1:${port}/ in a browser (needs internet for the UI)`,
  );
  return {
    stop: () => {
      detach();
      inspector.stop();
      relay.stop();
    },
  };
}
