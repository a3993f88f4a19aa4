/**
 * What the server itself answers on its hosted domains: service discovery (RFC 6120 §10.x, XEP-0030)
 * listing the connected components and `[general] disco_items` (CommuniGate's "Supplementary
 * Discovery Items"), and XEP-0199 ping. There are no accounts yet (client connections come later),
 * so stanzas to `user@host` are answered as RFC 6121 §8.5 says for a missing account.
 */
import { el, type Element } from "../xml/element.js";
import { NS } from "../xmpp/namespaces.js";
import { stanzaKind, type StanzaErrorCondition } from "../xmpp/stanzaErrors.js";
import type { Jid } from "../xmpp/jid.js";
import type { StanzaCounters } from "../metrics/stanzaCounters.js";
import type { ComponentTable } from "./components.js";
import type { IqReplies } from "./iqReplies.js";
import type { HostedDomains } from "./stanzaRouter.js";

export interface HostedDomainOptions {
  hosts: readonly string[];
  discoItems: readonly string[];
  components: ComponentTable;
  counters: StanzaCounters;
  /** Sends a reply from the server (the router's `route`). */
  send: (stanza: Element, from: Jid, to: Jid) => void;
  bounce: (stanza: Element, condition: StanzaErrorCondition, text: string) => void;
  /** Replies the server itself awaits (the S2S probe's ping): taken before anything else. */
  replies?: IqReplies;
}

const SERVER_FEATURES = [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.PING];

export function hostedDomains(options: HostedDomainOptions): HostedDomains {
  const hosts = new Set(options.hosts);
  const { bounce, counters } = options;

  function answerIq(iq: Element, from: Jid, to: Jid): void {
    const type = iq.attrs.type;
    if (type === "result" || type === "error") {
      bounce(iq, "service-unavailable", "unexpected reply"); // counted: results are never bounced
      return;
    }
    // RFC 6120 §8.2.3: an IQ has a type of the four, an id, and a get or set exactly one child.
    if (type !== "get" && type !== "set") {
      bounce(iq, "bad-request", `an iq's type is get, set, result or error, not '${type ?? ""}'`);
      return;
    }
    const elements = iq.children.filter((child): child is Element => typeof child !== "string");
    if (iq.attrs.id === undefined || iq.attrs.id === "") {
      bounce(iq, "bad-request", "an iq needs an id");
      return;
    }
    if (elements.length !== 1) {
      bounce(
        iq,
        "bad-request",
        `an iq of type ${type} has exactly one child element, not ${elements.length}`,
      );
      return;
    }
    const payload = elements[0];
    const result = (...children: Element[]): Element =>
      el(
        "iq",
        { type: "result", id: iq.attrs.id ?? "", from: to.toString(), to: from.toString() },
        ...children,
      );
    if (type === "get" && payload?.local === "query" && payload.ns === NS.DISCO_INFO && !payload.attrs.node) {
      options.send(
        result(
          el(
            "query",
            { xmlns: NS.DISCO_INFO },
            el("identity", { category: "server", type: "im", name: "Ferry" }),
            ...SERVER_FEATURES.map((feature) => el("feature", { var: feature })),
          ),
        ),
        to,
        from,
      );
      return;
    }
    if (
      type === "get" &&
      payload?.local === "query" &&
      payload.ns === NS.DISCO_ITEMS &&
      !payload.attrs.node
    ) {
      const items = [...options.components.discoItems(to.domain), ...options.discoItems];
      options.send(
        result(el("query", { xmlns: NS.DISCO_ITEMS }, ...items.map((jid) => el("item", { jid })))),
        to,
        from,
      );
      return;
    }
    if (type === "get" && payload?.local === "ping" && payload.ns === NS.PING) {
      options.send(result(), to, from);
      return;
    }
    // RFC 6120 §8.4: a request the entity does not understand gets <service-unavailable/>.
    bounce(iq, "service-unavailable", "not supported by this server");
  }

  return {
    has: (domain) => hosts.has(domain),
    deliver: (stanza, from, to) => {
      const kind = stanzaKind(stanza);
      if (kind === "iq" && options.replies?.take(stanza) === true) return;
      if (kind === "presence") {
        // RFC 6121 §8.5.1/§8.5.2: presence to the server or a missing account is silently ignored.
        counters.drop("presence-ignored");
        return;
      }
      if (to.local === "" && kind === "iq") {
        answerIq(stanza, from, to);
        return;
      }
      bounce(
        stanza,
        "service-unavailable",
        to.local === "" ? "this server does not take messages" : `no account ${to.bare().toString()}`,
      );
    },
  };
}
