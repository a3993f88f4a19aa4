/**
 * A machine definition as plain data for drawing its statechart (nested boxes on /debug/actors),
 * and the state paths a flattened state label (`link.open.gotFeatures,dialback.noRequest`) makes
 * active in it.
 */
import type { AnyStateMachine, AnyStateNode } from "xstate";

export interface ChartTransition {
  /** The event type, or `after <delay>`, `always`, `done <child>`, `error <child>`. */
  event: string;
  /** Dotted paths of the target states; empty for a transition that only runs actions. */
  targets: string[];
  guard?: string;
}

export interface ChartState {
  key: string;
  /** Dotted path from the machine root ("" for the root itself). */
  path: string;
  type: AnyStateNode["type"];
  /** Key of the initial child of a compound state. */
  initial?: string;
  /** Ids of the actors this state invokes. */
  invoke: string[];
  on: ChartTransition[];
  states: ChartState[];
}

const charts = new WeakMap<AnyStateMachine, ChartState>();

/** The statechart of a machine (computed once per machine). */
export function chartOf(machine: AnyStateMachine): ChartState {
  let chart = charts.get(machine);
  if (!chart) {
    chart = chartNode(machine.root);
    charts.set(machine, chart);
  }
  return chart;
}

function chartNode(node: AnyStateNode): ChartState {
  // Invocations without an id get a generated one ("0.s2sOut.link.connecting"): show their src.
  const invokes = new Map(
    node.invoke.map((invoke) => [
      invoke.id,
      /^\d+\./.test(invoke.id) && typeof invoke.src === "string" ? invoke.src : invoke.id,
    ]),
  );
  const delays = new Map(node.after.map((t) => [t.eventType, delayLabel(t.delay)]));
  const on: ChartTransition[] = [];
  for (const [eventType, transitions] of node.transitions) {
    const event = delays.get(eventType) ?? eventLabel(eventType, invokes);
    for (const t of transitions) on.push(transition(event, t));
  }
  for (const t of node.always ?? []) on.push(transition("always", t));
  const initial = node.type === "compound" ? node.initial.target[0]?.key : undefined;
  return {
    key: node.key,
    path: node.path.join("."),
    type: node.type,
    ...(initial === undefined ? {} : { initial }),
    invoke: [...invokes.values()],
    on,
    states: Object.values(node.states).map(chartNode),
  };
}

type AnyTransition = AnyStateNode["transitions"] extends Map<string, (infer T)[]> ? T : never;

function transition(event: string, t: AnyTransition): ChartTransition {
  const guard = guardLabel(t.guard);
  return {
    event,
    targets: (t.target ?? []).map((target) => target.path.join(".")),
    ...(guard === undefined ? {} : { guard }),
  };
}

function delayLabel(delay: unknown): string {
  if (typeof delay === "number") return `after ${delay} ms`;
  return typeof delay === "string" ? `after ${delay}` : "after (delay)";
}

function eventLabel(eventType: string, invokes: Map<string, string>): string {
  const done = /^xstate\.(done|error)\.actor\.(.+)$/.exec(eventType);
  if (done) return `${done[1] ?? ""} ${invokes.get(done[2] ?? "") ?? done[2] ?? ""}`;
  return eventType.startsWith("xstate.done.state.") ? "done" : eventType;
}

function guardLabel(guard: unknown): string | undefined {
  if (guard === undefined) return undefined;
  if (typeof guard === "string") return guard;
  if (typeof guard === "object" && guard !== null && "type" in guard && typeof guard.type === "string") {
    return guard.type;
  }
  return "(inline)";
}

/**
 * The active state paths (ancestors included, the root's "" left out) for a label made by
 * `flattenState`: `,` separates parallel regions, each relative to the nearest ancestor of the
 * previous region's leaf that has it as a child.
 */
export function activePaths(chart: ChartState, label: string): string[] {
  const active = new Set<string>();
  let chain: ChartState[] = [chart];
  for (const piece of label.split(",")) {
    if (piece === "") continue;
    const keys = piece.split(".");
    for (let depth = chain.length - 1; depth >= 0; depth--) {
      const from = chain[depth];
      const path = from === undefined ? undefined : descend(from, keys);
      if (!path) continue;
      chain = [...chain.slice(0, depth + 1), ...path];
      for (const node of path) active.add(node.path);
      break;
    }
  }
  return [...active];
}

function descend(node: ChartState, keys: string[]): ChartState[] | undefined {
  const path: ChartState[] = [];
  let current = node;
  for (const key of keys) {
    const next = current.states.find((state) => state.key === key);
    if (!next) return undefined;
    path.push(next);
    current = next;
  }
  return path;
}
