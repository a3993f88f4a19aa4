/**
 * Prometheus metrics (ARCHITECTURE.md "Observability surfaces"):
 * - from state transitions, through the one shared inspect observer: ferry_transitions_total and
 *   ferry_state_duration_seconds, plus auth outcomes read off the transitions that mean them;
 * - at scrape time, from the live actors and the plain-integer counters of the stanza path:
 *   ferry_actors, queue depth, backoff links, connections, stanzas, bytes, bounces, drops…
 * Labels are bounded: machine ids, state names, event types, conditions — never a remote domain.
 */
import type { InspectionEvent } from "xstate";
import client from "prom-client";
import type { ActorRegistry } from "../routing/registry.js";
import { StateClock } from "../admin/introspection/stateClock.js";
import type { ComponentTable } from "../routing/components.js";
import type { StanzaCounters } from "./stanzaCounters.js";

const machineLabels = new Map<string, string>();

/** `s2sOut` → `s2s_out`, as label values (a handful of machine ids, computed once each). */
function machineLabel(id: string): string {
  let label = machineLabels.get(id);
  if (label === undefined) {
    label = id.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
    machineLabels.set(id, label);
  }
  return label;
}

/**
 * `compute` at most once per scrape: prom-client collects every metric of a scrape in one
 * synchronous run, so the value is dropped at the next microtask.
 */
function perScrape<T>(compute: () => T): () => T {
  let value: { current: T } | undefined;
  return () => {
    if (value === undefined) {
      value = { current: compute() };
      queueMicrotask(() => {
        value = undefined;
      });
    }
    return value.current;
  };
}

/** Event types as label values: XState's generated ones collapsed so that labels stay bounded. */
function eventLabel(type: string): string {
  if (type.startsWith("xstate.after")) return "after";
  if (type.startsWith("xstate.done.actor")) return "done.actor";
  if (type.startsWith("xstate.error.actor")) return "error.actor";
  if (type.startsWith("xstate.done.state")) return "done.state";
  return type;
}

export interface MetricsSources {
  registry: ActorRegistry;
  counters: StanzaCounters;
  components: ComponentTable;
  /** Current stanzas and bytes waiting in outgoing queues. */
  queued: () => { stanzas: number; bytes: number };
  /** Seconds until our certificate for each local domain expires. */
  certificateExpiry: () => Map<string, number>;
  /**
   * The actors' state clock, already fed by the registry: transitions are counted from it. Without
   * one, the metrics keep their own (fed through `observe`).
   */
  clock?: StateClock;
}

export interface FerryMetrics {
  registry: client.Registry;
  /** The inspect listener to add to the actor registry. */
  observe: (event: InspectionEvent) => void;
}

export function createMetrics(sources: MetricsSources): FerryMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  // prom-client names these gauges like counters, which promtool (rightly) refuses; the same
  // counts stay available, by type, as nodejs_active_handles / _requests / _resources.
  for (const name of [
    "nodejs_active_handles_total",
    "nodejs_active_requests_total",
    "nodejs_active_resources_total",
  ]) {
    registry.removeSingleMetric(name);
  }

  const transitions = new client.Counter({
    name: "ferry_transitions_total",
    help: "State changes of Ferry's actors, by machine, from-state, to-state and event.",
    labelNames: ["machine", "from", "to", "event"],
    registers: [registry],
  });
  const durations = new client.Histogram({
    name: "ferry_state_duration_seconds",
    help: "Time an actor spent in a state before leaving it (negotiation steps, backoff, idle…).",
    labelNames: ["machine", "state"],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  const auth = new client.Counter({
    name: "ferry_s2s_auth_total",
    help: "S2S authentications by direction, mechanism (dialback, external) and result.",
    labelNames: ["direction", "mechanism", "result"],
    registers: [registry],
  });
  const connectAttempts = new client.Counter({
    name: "ferry_s2s_connect_attempts_total",
    help: "Outgoing S2S connection attempts by result (DNS, TCP, TLS, certificate, authentication).",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      for (const [result, count] of sources.counters.connectAttempts) {
        this.labels({ result }).inc(count - (reported.get(`attempt ${result}`) ?? 0));
        reported.set(`attempt ${result}`, count);
      }
    },
  });
  // Counters fed from plain integers: prom-client counters only go up by increments, so what was
  // already handed over is remembered.
  const reported = new Map<string, number>();
  const exportCounter = (
    name: string,
    help: string,
    labelNames: string[],
    source: () => Map<string, number>,
  ): void => {
    new client.Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        for (const [key, count] of source()) {
          const values = key.split(" ");
          const labels = Object.fromEntries(labelNames.map((label, i) => [label, values[i] ?? ""]));
          const seen = reported.get(`${name} ${key}`) ?? 0;
          if (count > seen) this.labels(labels).inc(count - seen);
          reported.set(`${name} ${key}`, count);
        }
      },
    });
  };
  exportCounter(
    "ferry_stanzas_total",
    "Stanzas received and sent, by connection type, direction and kind.",
    ["conn_type", "direction", "kind"],
    () => sources.counters.stanzas,
  );
  exportCounter(
    "ferry_bytes_total",
    "Bytes received and sent, by connection type, direction and TLS.",
    ["conn_type", "direction", "tls"],
    () => sources.counters.bytes,
  );
  exportCounter(
    "ferry_s2s_domain_stanzas_total",
    "Stanzas exchanged with the remote domains listed in [metrics] per_domain, by domain and direction.",
    ["remote", "direction"],
    () => sources.counters.remoteStanzas,
  );
  exportCounter(
    "ferry_stanzas_bounced_total",
    "Stanzas returned to their sender with an error, by condition.",
    ["condition"],
    () => sources.counters.bounced,
  );
  exportCounter(
    "ferry_stanzas_dropped_total",
    "Stanzas that could be neither delivered nor bounced (RFC 6120 forbids it), by reason.",
    ["reason"],
    () => sources.counters.dropped,
  );

  // One walk over the actors and one over the queues serve every gauge of a scrape.
  const states = perScrape(() => sources.registry.states());
  const queuedNow = perScrape(sources.queued);

  new client.Gauge({
    name: "ferry_actors",
    help: "Live actors by machine and current state.",
    labelNames: ["machine", "state"],
    registers: [registry],
    collect() {
      this.reset();
      // Counted first, then one labels() per (machine, state) rather than one per actor.
      const counts = new Map<string, { machine: string; state: string; n: number }>();
      const stack = [...states()];
      for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
        const key = `${next.machine} ${next.state}`;
        const count = counts.get(key);
        if (count === undefined) counts.set(key, { machine: next.machine, state: next.state, n: 1 });
        else count.n++;
        for (const child of next.children) stack.push(child);
      }
      for (const { machine, state, n } of counts.values())
        this.labels({ machine: machineLabel(machine), state }).set(n);
    },
  });
  new client.Gauge({
    name: "ferry_s2s_queue_stanzas",
    help: "Stanzas waiting in outgoing S2S queues.",
    registers: [registry],
    collect() {
      this.set(queuedNow().stanzas);
    },
  });
  new client.Gauge({
    name: "ferry_s2s_queue_bytes",
    help: "Bytes of the stanzas waiting in outgoing S2S queues.",
    registers: [registry],
    collect() {
      this.set(queuedNow().bytes);
    },
  });
  new client.Gauge({
    name: "ferry_s2s_backoff_links",
    help: "Outgoing S2S queues backing off after a failure.",
    registers: [registry],
    collect() {
      // Queues are root actors.
      let backoff = 0;
      for (const root of states()) if (root.machine === "queue" && root.state === "backoff") backoff++;
      this.set(backoff);
    },
  });
  new client.Gauge({
    name: "ferry_components_connected",
    help: "XEP-0114 components connected.",
    registers: [registry],
    collect() {
      this.set(sources.components.links().length);
    },
  });
  new client.Gauge({
    name: "ferry_connections",
    help: "Open connections by kind (s2s_in, s2s_out, component).",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      this.reset();
      const open = { s2s_in: 0, s2s_out: 0, component: 0 };
      for (const root of states()) {
        if (root.machine === "s2sIn") open.s2s_in++;
        if (root.machine === "component") open.component++;
        for (const child of root.children)
          if (child.machine === "s2sOut" && child.state.includes("open")) open.s2s_out++;
      }
      for (const [kind, count] of Object.entries(open)) this.labels({ kind }).set(count);
    },
  });
  new client.Gauge({
    name: "ferry_tls_cert_expiry_seconds",
    help: "Seconds until our certificate for a local domain expires.",
    labelNames: ["domain"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [domain, seconds] of sources.certificateExpiry()) this.labels({ domain }).set(seconds);
    },
  });

  // State changes and the time spent in the state left, from the clock's one record per actor.
  const clock = sources.clock ?? new StateClock();
  clock.onTransition((event, from, to, seconds) => {
    const machineId = (event.actorRef as { logic?: { id?: unknown } }).logic?.id;
    if (typeof machineId !== "string") return;
    const machine = machineLabel(machineId);
    const trigger = event.event;
    const context = (event.snapshot as { context?: unknown }).context;
    durations.observe({ machine, state: from }, seconds);
    transitions.inc({ machine, from, to, event: eventLabel(trigger.type) });
    countOutcomes(machine, from, to, trigger, context);
  });
  // Without a clock of the caller's, the registry feeds ours through this listener.
  const observe = sources.clock === undefined ? clock.observe : (): void => undefined;

  /** Authentication and negotiation outcomes are transitions too; count them as such. */
  const countOutcomes = (
    machine: string,
    from: string,
    to: string,
    trigger: { type: string; result?: unknown },
    context: unknown,
  ): void => {
    if (machine === "s2s_in") {
      if (to.startsWith("connecting.saslRestart"))
        auth.inc({ direction: "in", mechanism: "external", result: "success" });
      if (trigger.type === "DIALBACK_VERIFIED") {
        const ok = trigger.result === "valid";
        auth.inc({ direction: "in", mechanism: "dialback", result: ok ? "success" : "failure" });
      }
      return;
    }
    if (machine !== "s2s_out") return;
    const segments = (state: string): string[] => state.split(/[.,]/);
    const entered = (name: string): boolean => segments(to).includes(name) && !segments(from).includes(name);
    if (entered("dialbackSucceeded"))
      auth.inc({ direction: "out", mechanism: "dialback", result: "success" });
    if (entered("dialbackFailed")) auth.inc({ direction: "out", mechanism: "dialback", result: "failure" });
    if (entered("saslSucceeded")) auth.inc({ direction: "out", mechanism: "external", result: "success" });
    if (entered("saslFailed")) auth.inc({ direction: "out", mechanism: "external", result: "failure" });
    // A connection that got past TCP and then failed: its reason is a connect-attempt result.
    if (entered("failed") || entered("droppedBySettings")) {
      const kind = (context as { failure?: { kind?: string } } | undefined)?.failure?.kind;
      if (kind !== undefined) connectAttempts.inc({ result: kind });
    }
  };

  return { registry, observe };
}
