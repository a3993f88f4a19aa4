/**
 * The last attempts per remote domain (issue 7's `links` group): a failed link that has no live
 * connection any more is still explainable. Each outgoing stream (s2sOut actor, a queue's or a
 * dialback verification's) becomes one attempt, updated from the registry's inspection events
 * while it runs; refusals by policy are attempts too. Bounded: `history` attempts per domain and
 * at most MAX_DOMAINS domains (the oldest domain is forgotten first).
 */
import type { AnyActorRef, InspectionEvent } from "xstate";
import type { S2sOutContext } from "../../../machines/s2sOut.js";
import { machineOf } from "../../routing/actorViews.js";
import type { TransportTable } from "../../net/transportActor.js";
import { certificateText, leafOf, tlsText } from "./wording.js";

const MAX_DOMAINS = 1000;

export interface LinkAttempt {
  /** When the attempt started (ms since the epoch). */
  time: number;
  local: string;
  remote: string;
  /** A queue's link carries stanzas; a verification's connection only asks db:verify. */
  purpose: "stanzas" | "dialback verification";
  /** "closed": it was up (or the verification was answered) and has ended since. */
  result: "connecting" | "up" | "failed" | "closed" | "dropped by settings" | "refused by policy";
  /** The `link` region's states, in order. */
  states: string[];
  dns: string[];
  addresses: string[];
  tls: string;
  certificate: string;
  authentication: string;
  error?: string;
  endedAt?: number;
}

export class LinkHistory {
  private readonly domains = new Map<string, LinkAttempt[]>();
  private readonly attempts = new WeakMap<object, LinkAttempt>();

  constructor(
    private readonly size: number,
    private readonly transports: TransportTable,
    private readonly now: () => number = Date.now,
  ) {}

  /** Remote domains with attempts, most recently tried first. */
  list(): string[] {
    return [...this.domains.keys()].reverse();
  }

  /** Newest first. */
  of(domain: string): readonly LinkAttempt[] {
    return this.domains.get(domain) ?? [];
  }

  /** Outgoing federation refused before any connection (default_policy / host_policy). */
  refused(local: string, remote: string, text: string): void {
    const newest = this.domains.get(remote)?.[0];
    if (newest?.result === "refused by policy" && newest.local === local) {
      newest.time = this.now(); // one entry per refusal streak, not one per stanza
      return;
    }
    this.add({
      time: this.now(),
      local,
      remote,
      purpose: "stanzas",
      result: "refused by policy",
      states: [],
      dns: [],
      addresses: [],
      tls: "none",
      certificate: "none (no connection)",
      authentication: "none",
      error: text,
      endedAt: this.now(),
    });
  }

  readonly observe = (event: InspectionEvent): void => {
    // Microsteps too: eventless steps (created → connecting, gotFeatures → …) belong in the path.
    if (event.type !== "@xstate.snapshot" && event.type !== "@xstate.microstep") return;
    if (machineOf(event.actorRef as AnyActorRef)?.id !== "s2sOut") return;
    const snapshot = event.snapshot as { value?: unknown; status?: string; context?: S2sOutContext };
    const context = snapshot.context;
    if (context === undefined) return;
    let attempt = this.attempts.get(event.actorRef);
    if (attempt === undefined) {
      attempt = {
        time: this.now(),
        local: context.local,
        remote: context.remote,
        purpose: context.authorize ? "stanzas" : "dialback verification",
        result: "connecting",
        // The machine's initial state, left by an eventless transition before any snapshot.
        states: ["created"],
        dns: [],
        addresses: [],
        tls: "none",
        certificate: "none (no TLS)",
        authentication: "none",
      };
      this.attempts.set(event.actorRef, attempt);
      this.add(attempt);
    }
    const state = leafOf((snapshot.value as { link?: unknown } | undefined)?.link);
    if (event.type === "@xstate.microstep") {
      if (state !== "" && attempt.states.at(-1) !== state) attempt.states = attempt.states.concat(state);
      return;
    }
    this.update(attempt, state, snapshot.status, context);
  };

  private update(
    attempt: LinkAttempt,
    state: string,
    status: string | undefined,
    context: S2sOutContext,
  ): void {
    // Arrays of their exact size (concat, slice): a pushed-to array keeps room for 17 (issue 9).
    if (state !== "" && attempt.states.at(-1) !== state) attempt.states = attempt.states.concat(state);
    attempt.dns = context.dns ?? attempt.dns;
    attempt.addresses = context.attempts;
    const transport = this.transports.get(context.connectionId ?? "");
    // Read while the socket exists; the last reading stays once it is gone.
    if (transport !== undefined) attempt.tls = tlsText(context.tls, transport.endpoints());
    if (context.certificate !== undefined || context.tls !== "none")
      attempt.certificate = certificateText(context.certificate, context.tls !== "none");
    if (context.auth !== undefined)
      attempt.authentication = context.auth === "external" ? "SASL EXTERNAL" : "dialback";
    if (context.failure !== undefined) attempt.error = context.failure.text;
    else if (context.closeReason !== undefined && !context.up) attempt.error = context.closeReason;
    if (context.up && attempt.result === "connecting") attempt.result = "up";
    if (status === "done" || status === "stopped" || status === "error") {
      // The attempt outlives the connection: keep its own exact copies of the context's lists.
      attempt.dns = attempt.dns.slice();
      attempt.addresses = attempt.addresses.slice();
      attempt.endedAt ??= this.now();
      if (context.dropped) attempt.result = "dropped by settings";
      else if (context.failure !== undefined || !context.up) attempt.result = "failed";
      else attempt.result = "closed";
      if (attempt.result === "failed") attempt.error ??= "the connection closed before it was authorized";
    }
  }

  private add(attempt: LinkAttempt): void {
    const list = this.domains.get(attempt.remote);
    if (list === undefined) {
      if (this.domains.size >= MAX_DOMAINS) {
        const oldest = this.domains.keys().next().value;
        if (oldest !== undefined) this.domains.delete(oldest);
      }
    } else this.domains.delete(attempt.remote); // re-inserted: most recent last
    // Newest first, at most `size`, in an array of its exact size.
    this.domains.set(attempt.remote, [attempt].concat((list ?? []).slice(0, Math.max(0, this.size - 1))));
  }
}
