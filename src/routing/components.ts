/**
 * Connected XEP-0114 components as the stanza path sees them: a table from domain to the live
 * link, and per link the delivery queue that `max_fsm_queue` bounds. Stanzas are written straight
 * to the component's socket while it keeps up; when its buffer is full they wait here, and beyond
 * `max_fsm_queue` they are bounced with `resource-constraint`; above HIGH_WATER the streams feeding
 * the queue stop being read until it drains. Nothing queued is ever dropped: when
 * the link goes away its queue goes to the session that replaced it, or back to the senders.
 */
import type { Element } from "../xml/element.js";
import type { XmppTransport } from "../net/transport.js";
import type { StanzaErrorCondition } from "../xmpp/stanzaErrors.js";
import type { Jid } from "../xmpp/jid.js";
import type { AccessCheck } from "./access.js";
import type { StanzaCounters } from "../metrics/stanzaCounters.js";
import {
  HIGH_WATER,
  LOW_WATER,
  handedTo,
  holdCurrentSource,
  releaseHolds,
  type Flushable,
  type Holds,
} from "./backpressure.js";

export type Bounce = (stanza: Element, condition: StanzaErrorCondition, text: string) => void;

export interface ComponentLinkOptions {
  /** The registry key of the session's actor. */
  key: string;
  /** The domain from the stream header, and every domain served (with `is_subdomain`). */
  domain: string;
  domains: readonly string[];
  isSubdomain: boolean;
  hidden: boolean;
  maxQueue: number;
  access: AccessCheck;
  bounce: Bounce;
  counters: StanzaCounters;
}

export class ComponentLink implements Flushable {
  readonly key: string;
  readonly domain: string;
  readonly domains: readonly string[];
  readonly isSubdomain: boolean;
  readonly hidden: boolean;
  /** Stanzas received from the component, and delivered to it. */
  stanzasIn = 0;
  stanzasOut = 0;
  private queue: Element[] = [];
  /** Stanzas taken off the queue so far, and who waits for a queue position to be flushed. */
  private dequeued = 0;
  private flushWaiters: { at: number; done: () => void }[] = [];
  /** The streams held while the component does not keep up (see HIGH_WATER). */
  private held: Holds;
  private open = true;
  private readonly options: ComponentLinkOptions;

  constructor(
    private readonly transport: XmppTransport,
    options: ComponentLinkOptions,
  ) {
    this.options = options;
    this.key = options.key;
    this.domain = options.domain;
    this.domains = options.domains;
    this.isSubdomain = options.isSubdomain;
    this.hidden = options.hidden;
    transport.onDrain(() => {
      this.flush();
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  serves(domain: string): boolean {
    return this.domains.includes(domain);
  }

  /** Delivers a stanza routed to this component (`from` already parsed by the router). */
  deliver(stanza: Element, from: Jid): void {
    if (!this.options.access(from)) {
      this.options.bounce(stanza, "not-allowed", `${from.toString()} may not send to ${this.domain}`);
      return;
    }
    if (!this.open) {
      this.options.bounce(stanza, "service-unavailable", `${this.domain} is not connected`);
      return;
    }
    if (this.queue.length === 0 && !this.transport.congested) {
      this.write(stanza);
      handedTo(this);
      return;
    }
    if (this.queue.length >= this.options.maxQueue) {
      this.options.bounce(stanza, "resource-constraint", `${this.domain} is not keeping up (max_fsm_queue)`);
      return;
    }
    this.queue.push(stanza);
    // Without max_fsm_queue the queue would grow as fast as the senders send: slow them down instead.
    if (this.queue.length >= HIGH_WATER) this.held = holdCurrentSource(this.held);
    handedTo(this);
  }

  /** Calls `done` once every stanza accepted so far has been written and has left the process. */
  afterFlush(done: () => void): void {
    if (this.queue.length === 0) this.transport.afterFlush(done);
    else this.flushWaiters.push({ at: this.dequeued + this.queue.length, done });
  }

  /** Sends an error reply straight back to the component (not through routing: `from` may be bogus). */
  reply(stanza: Element): void {
    this.transport.send(stanza);
  }

  /**
   * kick_old: the new session takes over what the old one had not yet written. The new session is
   * registered while its machine enters `established`, and XState sends the `<handshake/>` reply
   * (a transport command) only after that entry's own actions: flush on the next microtask, so the
   * inherited stanzas follow the handshake reply instead of preceding it.
   */
  takeOver(old: ComponentLink): void {
    const inherited = old.queue;
    const waiters = old.flushWaiters;
    old.queue = [];
    old.flushWaiters = [];
    old.held = releaseHolds(old.held);
    old.open = false;
    this.queue.push(...inherited);
    for (const waiter of waiters) this.afterFlush(waiter.done);
    queueMicrotask(() => {
      this.flush();
    });
  }

  /** The session ended: whatever is still queued goes back to its senders. */
  close(reason: string): void {
    this.open = false;
    const left = this.queue;
    const waiters = this.flushWaiters;
    this.queue = [];
    this.flushWaiters = [];
    this.held = releaseHolds(this.held);
    for (const stanza of left) this.options.bounce(stanza, "service-unavailable", reason);
    for (const waiter of waiters) waiter.done();
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.transport.congested) {
      const stanza = this.queue.shift();
      this.dequeued++;
      if (stanza !== undefined) this.write(stanza);
    }
    if (this.held !== undefined && this.queue.length <= LOW_WATER) this.held = releaseHolds(this.held);
    const waiters = this.flushWaiters;
    while (waiters.length > 0 && (waiters[0]?.at ?? Infinity) <= this.dequeued) {
      const waiter = waiters.shift();
      if (waiter !== undefined) this.transport.afterFlush(waiter.done);
    }
  }

  private write(stanza: Element): void {
    if (this.transport.send(stanza)) {
      this.stanzasOut++;
      this.options.counters.stanza("component", "out", stanza.local);
    } else this.options.bounce(stanza, "service-unavailable", `${this.domain} is disconnecting`);
  }
}

export class ComponentTable {
  private readonly byDomain = new Map<string, ComponentLink>();
  /** Domains a component has served since start: while it is away they are "unavailable", not remote. */
  private readonly known = new Set<string>();

  get(domain: string): ComponentLink | undefined {
    return this.byDomain.get(domain);
  }

  /** A component served this domain before and is not connected now. */
  isAway(domain: string): boolean {
    return this.known.has(domain) && !this.byDomain.has(domain);
  }

  /** The live links that already hold any of these domains. */
  holders(domains: readonly string[]): ComponentLink[] {
    const found = new Set<ComponentLink>();
    for (const domain of domains) {
      const link = this.byDomain.get(domain);
      if (link) found.add(link);
    }
    return [...found];
  }

  add(link: ComponentLink): void {
    for (const domain of link.domains) {
      this.byDomain.set(domain, link);
      this.known.add(domain);
    }
  }

  /** Removes the link's routes, unless another link has taken them over meanwhile. */
  remove(link: ComponentLink): void {
    for (const domain of link.domains) {
      if (this.byDomain.get(domain) === link) this.byDomain.delete(domain);
    }
  }

  links(): ComponentLink[] {
    return [...new Set(this.byDomain.values())];
  }

  /** What disco#items on a hosted domain lists: visible components, `is_subdomain` ones under it. */
  discoItems(host: string): string[] {
    const items: string[] = [];
    for (const link of this.links()) {
      if (link.hidden) continue;
      items.push(link.isSubdomain ? `${link.domain}.${host}` : link.domain);
    }
    return items;
  }
}
