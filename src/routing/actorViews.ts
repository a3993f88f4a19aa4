/**
 * What the admin and debug views may see of an actor: its key, machine, state and context — with
 * secrets (dialback keys, passwords) and stanza bodies left out (ARCHITECTURE.md "Context vs outside").
 */
import type { AnyActorRef, AnyStateMachine, StateValue } from "xstate";
import { flattenState } from "../../machines/stateLabel.js";

export interface ActorView {
  /** Registry key (`in:…`, `out:local:remote`, `verify:…`, `comp:…`) or child id. */
  id: string;
  /** The machine's id: s2sIn, s2sOut, queue, dialbackVerify, component. */
  machine: string;
  state: string;
  status: string;
  context: Record<string, unknown>;
  children: ActorView[];
}

/** An actor's machine and state only (what metrics count): no context is copied. */
export interface ActorState {
  machine: string;
  state: string;
  children: ActorState[];
}

/** Context fields never shown: keys and anything that could carry a secret. */
const HIDDEN = new Set(["key", "verify", "password", "secret", "shared"]);

export function sanitize(value: unknown, depth = 0): unknown {
  if (depth > 4) return "…";
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => sanitize(v, depth + 1));
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [name, inner] of Object.entries(value)) {
      if (HIDDEN.has(name) || typeof inner === "function") continue;
      out[name] = sanitize(inner, depth + 1);
    }
    return out;
  }
  return value;
}

interface MachineSnapshot {
  value?: StateValue;
  status?: string;
  context?: unknown;
  children?: Record<string, AnyActorRef | undefined>;
}

export function machineOf(actor: AnyActorRef): AnyStateMachine | undefined {
  const logic = (actor as { logic?: unknown }).logic;
  return typeof logic === "object" && logic !== null && "root" in logic
    ? (logic as AnyStateMachine)
    : undefined;
}

export function viewOf(actor: AnyActorRef, id: string): ActorView | undefined {
  const machine = machineOf(actor);
  if (!machine) return undefined;
  const snapshot = actor.getSnapshot() as MachineSnapshot;
  const children: ActorView[] = [];
  for (const [childId, child] of Object.entries(snapshot.children ?? {})) {
    const view = child ? viewOf(child, childId) : undefined;
    if (view) children.push(view);
  }
  return {
    id,
    machine: machine.id,
    state: snapshot.value === undefined ? "" : flattenState(snapshot.value),
    status: snapshot.status ?? "active",
    context: (sanitize(snapshot.context ?? {}) ?? {}) as Record<string, unknown>,
    children,
  };
}

const NO_CHILDREN: ActorState[] = [];

export function stateOf(actor: AnyActorRef): ActorState | undefined {
  const machine = machineOf(actor);
  if (!machine) return undefined;
  const snapshot = actor.getSnapshot() as MachineSnapshot;
  let children = NO_CHILDREN;
  for (const id in snapshot.children) {
    const child = snapshot.children[id];
    const state = child ? stateOf(child) : undefined;
    if (state === undefined) continue;
    if (children === NO_CHILDREN) children = [];
    children.push(state);
  }
  return {
    machine: machine.id,
    state: snapshot.value === undefined ? "" : flattenState(snapshot.value),
    children,
  };
}
