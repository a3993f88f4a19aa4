/**
 * The registry of root actors: a plain Map, as ARCHITECTURE.md principle 2 asks (thousands of
 * children spawned into one XState system are quadratic). Every actor is created here with the
 * shared inspect observer, supervised through `subscribe({ error, complete })`, and reported to the
 * router machine, whose emitted decisions (restart, release, drain, force stop) are carried out here.
 */
import { createActor, type AnyActorRef, type AnyStateMachine, type InputFrom, type Observer } from "xstate";
import type { InspectionEvent, StateValue } from "xstate";
import { routerMachine, type ChildKind, type RouterEmitted } from "../../machines/router.js";
import type { LogEmitted } from "../../machines/events.js";
import type { Logger, LogTag } from "../log.js";
import { flattenState, stateLabel } from "../../machines/stateLabel.js";
import { stateOf, viewOf, type ActorState, type ActorView } from "./actorViews.js";

export interface ChildSpec<TLogic extends AnyStateMachine> {
  key: string;
  kind: ChildKind;
  logic: TLogic;
  input: InputFrom<TLogic>;
  /** Queues can be restarted after a crash; a connection cannot (its socket is gone). */
  restartable: boolean;
  /** Frees what the child held outside the actor (socket, buffered stanzas to bounce). */
  release?: (reason: string) => void;
  /** Told the child's output when it reaches a final state (a verification's verdict). */
  onDone?: (output: unknown) => void;
}

/**
 * One incarnation of a root actor in its registry slot: its observer (XState binds the methods)
 * and its logger, made on first use. One small object instead of closures per actor (issue 9:
 * an idle link's memory).
 */
class Entry {
  private logger: Logger | undefined;

  constructor(
    private readonly registry: Supervisor,
    readonly spec: ChildSpec<AnyStateMachine>,
    readonly actor: AnyActorRef,
  ) {}

  get log(): Logger {
    const actor = this.actor;
    this.logger ??= this.registry.log.child(TAG_OF[this.spec.kind], this.spec.key, () => stateLabel(actor));
    return this.logger;
  }

  complete(): void {
    this.registry.childComplete(this);
  }

  error(err: unknown): void {
    this.registry.childFailed(this, err);
  }
}

/** At debug level, every state change of a root actor is logged too. */
class DebugEntry extends Entry {
  private previous: string | undefined;

  next(): void {
    const current = stateLabel(this.actor);
    if (current !== this.previous) this.log.debug(`state ${this.previous ?? "(start)"} -> ${current ?? "?"}`);
    this.previous = current;
  }
}

/** What an Entry reports to. */
interface Supervisor {
  readonly log: Logger;
  childComplete(entry: Entry): void;
  childFailed(entry: Entry, err: unknown): void;
}

const TAG_OF: Record<ChildKind, LogTag> = {
  s2sIn: "XMPPI",
  s2sOut: "XMPPO",
  queue: "XMPPO",
  dialbackVerify: "XMPPO",
  component: "COMP",
};

export interface RegistryOptions {
  log: Logger;
  /** Observers of every actor's inspection events (metrics, debug views). */
  inspectors?: ((event: InspectionEvent) => void)[];
  drainTimeoutMs?: number;
  /** Called once the drain is over (all children gone or timed out). */
  onStopped?: () => void;
  /** Called when the drain begins, before children are asked to close (close listeners here). */
  onDrain?: () => void;
}

export class ActorRegistry implements Supervisor {
  private readonly entries = new Map<string, Entry>();
  readonly log: Logger;
  private readonly inspect: Observer<InspectionEvent>;
  /** The one shared observer's listeners (metrics, debug views, the Stately inspector). */
  private readonly inspectors = new Set<(event: InspectionEvent) => void>();
  readonly router;

  constructor(private readonly options: RegistryOptions) {
    this.log = options.log;
    for (const inspector of options.inspectors ?? []) this.inspectors.add(inspector);
    // At debug level, invoked children (a queue's connection, a verification's) log their states too.
    if (this.log.isDebug()) {
      this.inspectors.add((event) => {
        this.logChildTransition(event);
      });
    }
    // Control events only reach machines (never stanzas), so one observer on every actor is cheap.
    this.inspect = {
      next: (event) => {
        for (const inspector of this.inspectors) {
          // An observer's bug must not break the actor being observed (XState calls us inside it).
          try {
            inspector(event);
          } catch (err) {
            this.log.error(`inspector failed: ${describe(err)}`);
          }
        }
      },
    };
    this.router = createActor(routerMachine, {
      input: { drainTimeoutMs: options.drainTimeoutMs ?? 1500 },
      inspect: this.inspect,
    });
    this.router.on("*", (effect) => {
      this.carryOut(effect);
    });
    this.router.subscribe({
      complete: () => options.onStopped?.(),
      error: (err) => {
        // A router crash is fatal (ARCHITECTURE: let it crash at the top; all state is soft).
        this.log.error(`router crashed: ${describe(err)}`);
        this.forceStopAll("router crashed");
        options.onStopped?.();
      },
    });
    this.router.start();
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): AnyActorRef | undefined {
    return this.entries.get(key)?.actor;
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  /** Adds a listener to the shared inspect observer; returns its removal. */
  addInspector(inspector: (event: InspectionEvent) => void): () => void {
    this.inspectors.add(inspector);
    return () => {
      this.inspectors.delete(inspector);
    };
  }

  /**
   * Every live root actor's machine and state (and its invoked children's), without contexts:
   * what metrics count at each scrape, far cheaper than views().
   */
  states(): ActorState[] {
    const states: ActorState[] = [];
    for (const entry of this.entries.values()) {
      const state = stateOf(entry.actor);
      if (state) states.push(state);
    }
    return states;
  }

  /** Every live root actor (and its invoked children) as the admin and debug views show them. */
  views(): ActorView[] {
    const views: ActorView[] = [];
    for (const [key, entry] of this.entries) {
      const view = viewOf(entry.actor, key);
      if (view) views.push(view);
    }
    return views;
  }

  /** The live root actors, for collectors that read their snapshots at scrape time. */
  actors(): IterableIterator<[string, AnyActorRef]> {
    const entries = this.entries;
    function* pairs(): Generator<[string, AnyActorRef]> {
      for (const [key, entry] of entries) yield [key, entry.actor];
    }
    return pairs();
  }

  /** The machines the registry has run, by machine id (for drawing statecharts). */
  machines(): Map<string, AnyStateMachine> {
    const machines = new Map<string, AnyStateMachine>();
    for (const entry of this.entries.values()) machines.set(entry.spec.logic.id, entry.spec.logic);
    return machines;
  }

  /** Creates, supervises and starts a root actor under `spec.key` (which must be free). */
  start<TLogic extends AnyStateMachine>(spec: ChildSpec<TLogic>): AnyActorRef {
    if (this.entries.has(spec.key)) throw new Error(`actor ${spec.key} already exists`);
    const entry = this.create(spec as ChildSpec<AnyStateMachine>);
    this.entries.set(spec.key, entry);
    this.router.send({ type: "CHILD_STARTED", key: spec.key, kind: spec.kind });
    entry.actor.start();
    return entry.actor;
  }

  shutdown(): void {
    this.router.send({ type: "SHUTDOWN" });
  }

  /** Root actors by session id, so that their children's inspection events can be told apart
   *  (kept at debug level only, where those are logged). */
  private readonly roots = new Map<string, Entry>();
  private readonly childStates = new WeakMap<object, string>();

  private logChildTransition(event: InspectionEvent): void {
    if (event.type !== "@xstate.snapshot" || event.actorRef.sessionId === event.rootId) return;
    const log = this.roots.get(event.rootId)?.log;
    const value = (event.snapshot as { value?: StateValue }).value;
    if (log === undefined || value === undefined) return;
    const current = flattenState(value);
    const previous = this.childStates.get(event.actorRef);
    if (current === previous) return;
    this.childStates.set(event.actorRef, current);
    const id = (event.actorRef as { id?: string }).id ?? "child";
    log.debug(`${id} state ${previous ?? "(start)"} -> ${current}`);
  }

  private create(spec: ChildSpec<AnyStateMachine>): Entry {
    const actor: AnyActorRef = createActor(spec.logic, {
      id: spec.key,
      input: spec.input as unknown,
      inspect: this.inspect,
    });
    // At debug level every state change is logged (control events only, so it costs little);
    // otherwise the observer has no `next` at all.
    const entry = this.log.isDebug() ? new DebugEntry(this, spec, actor) : new Entry(this, spec, actor);
    if (this.log.isDebug()) this.roots.set(actor.sessionId, entry);
    actor.on("log", (emitted: LogEmitted) => {
      entry.log.log(emitted.level, emitted.message);
    });
    actor.subscribe(entry);
    return entry;
  }

  /** For Entry.complete: the actor reached a final state or was stopped. */
  childComplete(entry: Entry): void {
    const { spec, actor } = entry;
    // Only the current incarnation of a key may report (a restart replaces the actor).
    if (this.entries.get(spec.key) !== entry) return;
    const snapshot = actor.getSnapshot() as { status: string; output?: unknown };
    if (snapshot.status === "done") spec.onDone?.(snapshot.output);
    this.router.send({ type: "CHILD_DONE", key: spec.key });
  }

  /** For Entry.error: the actor crashed. */
  childFailed(entry: Entry, err: unknown): void {
    const spec = entry.spec;
    entry.log.error(`actor crashed: ${describe(err)}`);
    if (this.entries.get(spec.key) === entry) {
      this.router.send({
        type: "CHILD_FAILED",
        key: spec.key,
        restartable: spec.restartable,
        error: describe(err),
      });
    }
  }

  private carryOut(effect: RouterEmitted): void {
    switch (effect.type) {
      case "restartChild": {
        const entry = this.entries.get(effect.key);
        if (!entry) return;
        this.log.warning(`restarting ${effect.key}`);
        this.roots.delete(entry.actor.sessionId);
        const next = this.create(entry.spec);
        this.entries.set(effect.key, next);
        next.actor.start();
        return;
      }
      case "releaseChild": {
        const entry = this.entries.get(effect.key);
        if (!entry) return;
        this.entries.delete(effect.key);
        this.roots.delete(entry.actor.sessionId);
        entry.spec.release?.(effect.reason);
        if (this.firstWave?.delete(effect.key) === true && this.firstWave.size === 0) this.drainRest?.();
        return;
      }
      case "drain": {
        if (effect.key === undefined) {
          this.options.onDrain?.();
          this.drainInOrder();
          return;
        }
        this.entries.get(effect.key)?.actor.send({ type: "SHUTDOWN" });
        return;
      }
      case "forceStop":
        this.forceStopAll("shutdown timed out");
        return;
    }
  }

  /** Queues and verifications still draining; the streams wait for them (see drainInOrder). */
  private firstWave: Set<string> | undefined;
  private drainRest: (() => void) | undefined;

  /**
   * Queues first: what they hold is bounced to its senders while the senders' streams (components,
   * incoming S2S) are still open to receive the errors; then every stream closes. The streams wait
   * at most half the drain time for the queues.
   */
  private drainInOrder(): void {
    const first = [...this.entries].filter(
      ([, e]) => e.spec.kind === "queue" || e.spec.kind === "dialbackVerify",
    );
    this.firstWave = new Set(first.map(([key]) => key));
    let timer: NodeJS.Timeout | undefined;
    const rest = (): void => {
      if (this.drainRest === undefined) return;
      this.drainRest = undefined;
      clearTimeout(timer);
      for (const [key, entry] of this.entries)
        if (!this.firstWave?.has(key)) entry.actor.send({ type: "SHUTDOWN" });
    };
    this.drainRest = rest;
    for (const [, entry] of first) entry.actor.send({ type: "SHUTDOWN" });
    if (this.firstWave.size === 0) rest();
    else timer = setTimeout(rest, (this.options.drainTimeoutMs ?? 1500) / 2);
  }

  private forceStopAll(reason: string): void {
    for (const [key, entry] of this.entries) {
      this.log.warning(`forcing ${key} to stop: ${reason}`);
      this.entries.delete(key);
      this.roots.delete(entry.actor.sessionId);
      entry.actor.stop();
      entry.spec.release?.(reason);
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
