/**
 * /debug/actors/events: Server-Sent Events with the actors payload, sent when a state changes or
 * actors come and go (debounced). The registry's inspect observer is listened to only while at least
 * one client is connected, so the feed costs nothing otherwise.
 */
import type { ServerResponse } from "node:http";
import type { AnyActorRef, InspectionEvent, StateValue } from "xstate";
import { flattenState } from "../../machines/stateLabel.js";
import { machineOf, type ActorView } from "../routing/actorViews.js";
import type { ActorRegistry } from "../routing/registry.js";
import type { ActorsPayload, StateChange } from "./actorGroups.js";

const HEARTBEAT_MS = 15_000;
/** Changes kept for one message at most (a storm still sends its latest part). */
const MAX_CHANGES = 500;

export class ActorsFeed {
  private readonly clients = new Set<ServerResponse>();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Last state seen per actor (`key` or `key/child`). */
  private readonly states = new Map<string, Seen>();
  /** Registry key by root session id; roots that are not in the registry (the router) map to "". */
  private readonly roots = new Map<string, string>();
  private changes: StateChange[] = [];
  private sent = "";
  private messageId = 0;

  constructor(
    private readonly registry: ActorRegistry,
    private readonly payload: () => ActorsPayload,
    private readonly debounceMs = 100,
  ) {}

  /** Connected clients. */
  get size(): number {
    return this.clients.size;
  }

  /** Whether the inspect observer is listened to. */
  get subscribed(): boolean {
    return this.unsubscribe !== undefined;
  }

  attach(res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    if (this.clients.size === 0) this.subscribe();
    this.clients.add(res);
    res.on("close", () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.unsubscribeAll();
    });
    // Every client starts from the whole picture.
    this.write(res, { ...this.payload(), changes: [] });
  }

  private subscribe(): void {
    for (const [id, seen] of flatten(this.registry.views())) this.states.set(id, seen);
    this.unsubscribe = this.registry.addInspector((event) => {
      this.inspect(event);
    });
    this.heartbeat = setInterval(() => {
      for (const res of this.clients) res.write(": keepalive\n\n");
    }, HEARTBEAT_MS).unref();
  }

  private unsubscribeAll(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.heartbeat);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.states.clear();
    this.roots.clear();
    this.changes = [];
    this.sent = "";
  }

  private inspect(event: InspectionEvent): void {
    if (event.type === "@xstate.actor") this.schedule();
    if (event.type !== "@xstate.snapshot") return;
    this.schedule();
    const snapshot = event.snapshot as { value?: StateValue; status?: string };
    // Only machines have states (not the transports' callbacks or the connect promises).
    if (snapshot.value === undefined) return;
    const id = this.idOf(event.actorRef as AnyActorRef, event.rootId);
    if (id === undefined) return;
    const status = snapshot.status ?? "active";
    const to = flattenState(snapshot.value) + (status === "active" ? "" : ` (${status})`);
    const from = this.states.get(id)?.state;
    if (from === to) return;
    const machine = machineOf(event.actorRef as AnyActorRef)?.id ?? "?";
    this.states.set(id, { state: to, machine });
    this.record({ at: new Date().toISOString(), id, machine, ...(from === undefined ? {} : { from }), to });
  }

  private idOf(actor: AnyActorRef, rootId: string): string | undefined {
    let key = this.roots.get(rootId);
    if (key === undefined) {
      key = "";
      for (const [candidate, root] of this.registry.actors()) {
        if (root.sessionId === rootId) key = candidate;
      }
      this.roots.set(rootId, key);
    }
    if (key === "") return undefined;
    return actor.sessionId === rootId ? key : `${key}/${actor.id}`;
  }

  private record(change: StateChange): void {
    this.changes.push(change);
    if (this.changes.length > MAX_CHANGES) this.changes.splice(0, this.changes.length - MAX_CHANGES);
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.flush();
    }, this.debounceMs);
  }

  private flush(): void {
    this.timer = undefined;
    const payload = this.payload();
    const live = flatten(payload.views);
    // Actors that went away (released, stopped) without a last snapshot of their own.
    for (const [id, seen] of this.states) {
      if (live.has(id)) continue;
      this.states.delete(id);
      this.record({ at: payload.at, id, machine: seen.machine, from: seen.state, to: "(gone)" });
    }
    for (const [id, seen] of live) if (!this.states.has(id)) this.states.set(id, seen);
    // Forget the roots that are gone, and which sessions were not the registry's.
    const sessions = new Set([...this.registry.actors()].map(([, actor]) => actor.sessionId));
    for (const session of this.roots.keys()) if (!sessions.has(session)) this.roots.delete(session);

    const picture = JSON.stringify(payload.views);
    if (picture === this.sent && this.changes.length === 0) return;
    this.sent = picture;
    const message = { ...payload, changes: this.changes };
    this.changes = [];
    for (const res of this.clients) this.write(res, message);
  }

  private write(res: ServerResponse, payload: ActorsPayload): void {
    res.write(`id: ${++this.messageId}\nevent: actors\ndata: ${JSON.stringify(payload)}\n\n`);
  }
}

interface Seen {
  state: string;
  machine: string;
}

/** Every actor and invoked child of the views, by `key` or `key/child`, with its state. */
function flatten(views: ActorView[]): Map<string, Seen> {
  const states = new Map<string, Seen>();
  const visit = (view: ActorView, id: string): void => {
    const state = view.status === "active" ? view.state : `${view.state} (${view.status})`;
    states.set(id, { state, machine: view.machine });
    for (const child of view.children) visit(child, `${id}/${child.id}`);
  };
  for (const view of views) visit(view, view.id);
  return states;
}
