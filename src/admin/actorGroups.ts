/**
 * What /debug/actors shows: the live actors sorted into jabberd14's connection groups (seed 000),
 * then queues, verifications and components, with the statecharts of their machines.
 */
import type { AnyActorRef, AnyStateMachine } from "xstate";
import { machineOf, type ActorView } from "../routing/actorViews.js";
import type { ActorRegistry } from "../routing/registry.js";
import { activePaths, chartOf, type ChartState } from "./statechart.js";

export type GroupId =
  | "connecting-incoming"
  | "established-incoming"
  | "connecting-outgoing"
  | "established-outgoing"
  | "queues"
  | "verifications"
  | "components"
  | "other";

export interface ActorCard {
  /** Registry key of the root actor. */
  key: string;
  /** The invoked child shown instead of the root (a queue's or a verification's `conn`). */
  child?: string;
  /** How seed 000 lists it: stream id, `local → remote`, … */
  title: string;
  /** Active state paths of the shown actor, for highlighting its statechart. */
  active: string[];
}

export interface ActorGroup {
  id: GroupId;
  title: string;
  cards: ActorCard[];
}

export interface StateChange {
  at: string;
  /** Registry key, or `key/child` for an invoked child. */
  id: string;
  machine: string;
  /** Undefined for an actor that just started. */
  from?: string;
  /** The new state, with the status when not active (`valid (done)`), or `(gone)`. */
  to: string;
}

export interface ActorsPayload {
  at: string;
  views: ActorView[];
  groups: ActorGroup[];
  /** Statecharts by machine id, for every machine in `views`. */
  machines: Record<string, ChartState>;
  /** On the event stream: state changes since the previous message. */
  changes?: StateChange[];
}

const TITLES: Record<GroupId, string> = {
  "connecting-incoming": "Connecting incoming",
  "established-incoming": "Established incoming",
  "connecting-outgoing": "Connecting outgoing",
  "established-outgoing": "Established outgoing",
  queues: "Queues",
  verifications: "Verifications",
  components: "Components",
  other: "Other actors",
};

export function buildPayload(registry: ActorRegistry): ActorsPayload {
  const views = registry.views();
  const machines: Record<string, ChartState> = {};
  for (const [id, machine] of liveMachines(registry)) machines[id] = chartOf(machine);
  return { at: new Date().toISOString(), views, groups: groupActors(views, machines), machines };
}

/** The machines of the live actors and of their invoked children (s2sOut runs only as a child). */
function liveMachines(registry: ActorRegistry): Map<string, AnyStateMachine> {
  const machines = registry.machines();
  const visit = (actor: AnyActorRef): void => {
    const machine = machineOf(actor);
    if (!machine) return;
    machines.set(machine.id, machine);
    const snapshot = actor.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> };
    for (const child of Object.values(snapshot.children ?? {})) if (child) visit(child);
  };
  for (const [, actor] of registry.actors()) visit(actor);
  return machines;
}

export function groupActors(views: ActorView[], machines: Record<string, ChartState>): ActorGroup[] {
  const groups = new Map<GroupId, ActorCard[]>(
    Object.keys(TITLES).map((id) => [id as GroupId, [] as ActorCard[]]),
  );
  const add = (group: GroupId, key: string, view: ActorView, title: string, child?: string): void => {
    const chart = machines[view.machine];
    groups.get(group)?.push({
      key,
      ...(child === undefined ? {} : { child }),
      title,
      active: chart ? activePaths(chart, view.state) : [],
    });
  };
  for (const view of views) {
    const ctx = view.context;
    const conn = view.children.find((child) => child.id === "conn");
    const pair = `${text(ctx.local)} → ${text(ctx.remote)}`;
    switch (view.machine) {
      case "s2sIn": {
        const stream = text(ctx.streamId ?? ctx.connectionId);
        if (view.state.startsWith("established")) {
          add(
            "established-incoming",
            view.id,
            view,
            `${stream}@${text(ctx.localDomain)}/${text(ctx.remoteDomain)}`,
          );
        } else {
          const domains = ctx.localDomain === undefined ? "" : ` (to ${text(ctx.localDomain)})`;
          add("connecting-incoming", view.id, view, `${stream}${domains}`);
        }
        break;
      }
      case "queue":
        if (conn) {
          const group = view.state === "link.sending" ? "established-outgoing" : "connecting-outgoing";
          add(group, view.id, conn, pair, conn.id);
        }
        add("queues", view.id, view, pair);
        break;
      case "dialbackVerify":
        if (conn) add("connecting-outgoing", view.id, conn, `${pair} (verify)`, conn.id);
        add("verifications", view.id, view, `${text(ctx.remote)} on stream ${text(ctx.streamId)}`);
        break;
      case "component":
        add("components", view.id, view, text(ctx.domain ?? ctx.streamId));
        break;
      default:
        add("other", view.id, view, view.id);
    }
  }
  return [...groups].map(([id, cards]) => ({ id, title: TITLES[id], cards }));
}

function text(value: unknown): string {
  return typeof value === "string" || typeof value === "number" ? String(value) : "?";
}
