/**
 * The hot path (plain functions, no statechart events): every stanza that entered Ferry with a
 * valid `from` and `to` is routed here, to a connected component, to the server's own domain
 * services, or out to a remote domain. Bounces come back through the same function, so an error
 * reply reaches its sender wherever that is; RFC 6120 §8.3.1's never-bounce cases are counted.
 */
import type { Element } from "../xml/element.js";
import { Jid } from "../xmpp/jid.js";
import { bounce, type StanzaErrorCondition } from "../xmpp/stanzaErrors.js";
import type { StanzaCounters } from "../metrics/stanzaCounters.js";
import type { Logger } from "../log.js";
import type { ComponentTable } from "./components.js";

/** Where stanzas for a domain this server neither hosts nor has a component for go. */
export interface RemoteRoute {
  deliver(stanza: Element, from: Jid, to: Jid): void;
}

/** The server's own domains (their services, later their accounts). */
export interface HostedDomains {
  has(domain: string): boolean;
  deliver(stanza: Element, from: Jid, to: Jid): void;
}

export class StanzaRouter {
  remote: RemoteRoute;

  constructor(
    private readonly components: ComponentTable,
    private readonly hosted: HostedDomains,
    private readonly counters: StanzaCounters,
    private readonly log: Logger,
    remote?: RemoteRoute,
  ) {
    this.remote = remote ?? {
      // Until outgoing S2S is configured, a remote domain cannot be reached: say so to the sender.
      deliver: (stanza, _from, to) => {
        this.bounce(stanza, "remote-server-not-found", `${to.domain} cannot be reached from this server`);
      },
    };
  }

  route(stanza: Element, from: Jid, to: Jid): void {
    const component = this.components.get(to.domain);
    if (component) {
      component.deliver(stanza, from);
      return;
    }
    if (this.hosted.has(to.domain)) {
      this.hosted.deliver(stanza, from, to);
      return;
    }
    if (this.components.isAway(to.domain)) {
      this.bounce(stanza, "service-unavailable", `${to.domain} is not connected`);
      return;
    }
    this.remote.deliver(stanza, from, to);
  }

  /**
   * Returns a stanza to its sender with a stanza error. Errors and iq results are never bounced
   * (RFC 6120 §8.3.1); they are counted instead.
   */
  bounce(stanza: Element, condition: StanzaErrorCondition, text: string): void {
    const reply = bounce(stanza, condition, { text });
    const to = reply === undefined ? undefined : Jid.tryParse(reply.attrs.to ?? "");
    const from = reply === undefined ? undefined : Jid.tryParse(reply.attrs.from ?? "");
    if (reply === undefined || to === undefined || from === undefined) {
      this.counters.drop("unbounceable");
      if (this.log.isDebug()) this.log.debug(`not bouncing ${stanza.name} (${condition}): ${text}`);
      return;
    }
    this.counters.bounce(condition);
    this.route(reply, from, to);
  }
}
