/**
 * A state value as one label: `{ connecting: "waitForStream" }` → `connecting.waitForStream`.
 * Logs, metrics and the admin views all name states this way.
 */
import type { AnyActorRef, StateValue } from "xstate";

export function flattenState(value: StateValue): string {
  if (typeof value === "string") return value;
  return Object.entries(value)
    .map(([key, child]) => (child === undefined ? key : `${key}.${flattenState(child)}`))
    .join(",");
}

/** The current state of an actor, or undefined for actors that have no state value. */
export function stateLabel(actor: AnyActorRef): string | undefined {
  const snapshot: unknown = actor.getSnapshot();
  if (typeof snapshot !== "object" || snapshot === null || !("value" in snapshot)) return undefined;
  return flattenState(snapshot.value as StateValue);
}
