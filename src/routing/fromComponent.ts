/**
 * Stanzas a component sends (XEP-0114 §3: every stanza carries `from` and `to`; `from` must be in the
 * component's domain). A bad address gets a stanza error straight back on the component's stream,
 * as MongooseIM's `check_from` does. (Anything that is not a stanza goes to the machine.)
 */
import { enterSource, leaveSource, type Pausable } from "./backpressure.js";
import type { Element } from "../xml/element.js";
import { CONTENT_NAMESPACES } from "../xmpp/namespaces.js";
import { Jid } from "../xmpp/jid.js";
import { bounce, type StanzaErrorCondition } from "../xmpp/stanzaErrors.js";
import type { ComponentLink } from "./components.js";
import type { StanzaRouter } from "./stanzaRouter.js";
import type { StanzaCounters } from "../metrics/stanzaCounters.js";

export function componentIngress(
  link: ComponentLink,
  router: StanzaRouter,
  checkFrom: boolean,
  counters: StanzaCounters,
  /** The component's stream: held while a queue it feeds is congested. */
  source: Pausable,
): (stanza: Element) => void {
  const refuse = (stanza: Element, condition: StanzaErrorCondition, text: string): void => {
    const reply = bounce(stanza, condition, { text });
    if (reply) link.reply(reply);
  };
  return (stanza) => {
    link.stanzasIn++;
    counters.stanza("component", "in", stanza.local);
    // The stanza leaves the jabber:component:accept stream: let it take the next stream's namespace.
    const ns = stanza.attrs.xmlns;
    if (ns !== undefined && CONTENT_NAMESPACES.has(ns)) stanza.deleteAttr("xmlns");

    const from = Jid.tryParse(stanza.attrs.from ?? "");
    if (from === undefined) {
      refuse(stanza, "jid-malformed", "a component's stanzas need a valid 'from'");
      return;
    }
    if (checkFrom && !link.serves(from.domain)) {
      refuse(stanza, "bad-request", `'from' must be in ${link.domains.join(" or ")} (check_from)`);
      return;
    }
    const to = Jid.tryParse(stanza.attrs.to ?? "");
    if (to === undefined) {
      // The error comes from the server, not from an address that does not exist.
      const given = stanza.attrs.to;
      stanza.deleteAttr("to");
      const shown =
        given === undefined ? "none" : `'${given.length > 64 ? `${given.slice(0, 64)}…` : given}'`;
      refuse(stanza, "jid-malformed", `a component's stanzas need a valid 'to' (got ${shown})`);
      return;
    }
    const previous = enterSource(source);
    try {
      router.route(stanza, from, to);
    } finally {
      leaveSource(previous);
    }
  };
}
