/**
 * The introspection address (`[s2s] introspection.address`, default `s2s.<first host>`), as
 * jabberd14 1.6's dialback component answered it (seed 000): XEP-0030 disco#items/#info over the
 * four connection groups, each connection and each of its nodes, plus the `links` history and
 * the XEP-0050 commands. Only JIDs in `[access] global` or `[access] s2s` get answers; everyone
 * else gets <forbidden/> for everything, and so learns nothing (not even the group names).
 */
import { el, type Element } from "../../xml/element.js";
import { NS } from "../../xmpp/namespaces.js";
import { stanzaKind, type StanzaErrorCondition } from "../../xmpp/stanzaErrors.js";
import type { Jid } from "../../xmpp/jid.js";
import type { AccessCheck } from "../../routing/access.js";
import type { StanzaCounters } from "../../metrics/stanzaCounters.js";
import { GROUPS, type Connection, type GroupId } from "./connectionTree.js";
import type { Introspection } from "./introspection.js";
import { AdHocCommands, COMMANDS } from "./adhoc.js";
import { dataForm } from "./dataForm.js";
import type { LinkAttempt } from "./linkHistory.js";

export const CONNECTION_FORM = "urn:xmpp:ferry:s2s:connection";
export const ATTEMPT_FORM = "urn:xmpp:ferry:s2s:link-attempt";
const LINKS = { node: "links", name: "Links" };

export interface DiscoServiceOptions {
  address: string;
  introspection: Introspection;
  mayBrowse: AccessCheck;
  counters: StanzaCounters;
  send: (stanza: Element, from: Jid, to: Jid) => void;
  bounce: (stanza: Element, condition: StanzaErrorCondition, text: string) => void;
}

/** What a disco query on a node answers, or undefined when the node does not exist. */
interface NodeAnswer {
  identity: { category: string; type: string; name: string };
  features?: string[];
  form?: Element;
  items: { node: string; name: string }[];
}

export class IntrospectionService {
  private readonly commands: AdHocCommands;

  constructor(private readonly options: DiscoServiceOptions) {
    this.commands = new AdHocCommands(options.introspection);
  }

  deliver(stanza: Element, from: Jid, to: Jid): void {
    const { bounce } = this.options;
    const kind = stanzaKind(stanza);
    const type = stanza.attrs.type;
    if (kind === "presence") {
      this.options.counters.drop("presence-ignored");
      return;
    }
    if (type === "error" || (kind === "iq" && type === "result")) {
      this.options.counters.drop("unbounceable"); // we ask nothing, so no reply is expected
      return;
    }
    if (!this.options.mayBrowse(from)) {
      bounce(stanza, "forbidden", "only [access] global and s2s may browse the S2S connections");
      return;
    }
    const payload = stanza.children.find((c): c is Element => typeof c !== "string");
    if (kind !== "iq" || payload === undefined) {
      bounce(stanza, "service-unavailable", "this address answers service discovery and ad-hoc commands");
      return;
    }
    const node = payload.attrs.node ?? "";
    const result = (...children: Element[]): void => {
      this.options.send(
        el(
          "iq",
          { type: "result", id: stanza.attrs.id ?? "", from: to.toString(), to: from.toString() },
          ...children,
        ),
        to,
        from,
      );
    };
    if (
      type === "get" &&
      payload.local === "query" &&
      (payload.ns === NS.DISCO_INFO || payload.ns === NS.DISCO_ITEMS)
    ) {
      const answer = this.answer(node);
      if (answer === undefined) {
        bounce(stanza, "item-not-found", `no node ${node}`);
        return;
      }
      const attrs: Record<string, string> = { xmlns: payload.ns, ...(node === "" ? {} : { node }) };
      if (payload.ns === NS.DISCO_ITEMS) {
        const jid = to.toString();
        result(
          el("query", attrs, ...answer.items.map((i) => el("item", { jid, node: i.node, name: i.name }))),
        );
        return;
      }
      result(
        el(
          "query",
          attrs,
          el("identity", answer.identity),
          ...(answer.features ?? []).map((f) => el("feature", { var: f })),
          ...(answer.form === undefined ? [] : [answer.form]),
        ),
      );
      return;
    }
    if (type === "set" && payload.local === "command" && payload.ns === NS.COMMANDS) {
      const outcome = this.commands.handle(payload, from);
      if ("error" in outcome) bounce(stanza, outcome.error, outcome.text);
      else result(outcome.reply);
      return;
    }
    bounce(stanza, "service-unavailable", "not supported by this address");
  }

  private answer(node: string): NodeAnswer | undefined {
    const intro = this.options.introspection;
    if (node === "") {
      return {
        identity: { category: "component", type: "s2s", name: "Ferry S2S connections" },
        features: [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.COMMANDS],
        items: [...GROUPS.map((g) => ({ node: g.id, name: g.name })), LINKS],
      };
    }
    if (node === NS.COMMANDS) {
      return {
        identity: { category: "automation", type: "command-list", name: "Commands" },
        items: COMMANDS.map((c) => ({ node: c.node, name: c.name })),
      };
    }
    if (AdHocCommands.isCommand(node)) {
      const name = COMMANDS.find((c) => c.node === node)?.name ?? node;
      return {
        identity: { category: "automation", type: "command-node", name },
        features: [NS.COMMANDS, NS.DATA],
        items: [],
      };
    }
    const group = GROUPS.find((g) => g.id === node);
    if (group !== undefined) {
      return {
        identity: { category: "hierarchy", type: "branch", name: group.name },
        features: [NS.DISCO_ITEMS],
        items: intro.group(group.id).map((c) => ({ node: c.node, name: c.name })),
      };
    }
    if (node === LINKS.node) {
      return {
        identity: { category: "hierarchy", type: "branch", name: LINKS.name },
        features: [NS.DISCO_ITEMS],
        items: intro.history.list().map((domain) => ({ node: `links/${domain}`, name: domain })),
      };
    }
    if (node.startsWith("links/")) return this.linkNode(node.slice("links/".length));
    const slash = node.indexOf("/");
    if (slash === -1 || !GROUPS.some((g) => g.id === (node.slice(0, slash) as GroupId))) return undefined;
    const connection = intro.byNode(node);
    if (connection !== undefined) return connectionNode(connection);
    // A connection's node `<group>/<id>/<field>`.
    const cut = node.lastIndexOf("/");
    const owner = intro.byNode(node.slice(0, cut));
    const field = owner?.fields.find((f) => f.var === node.slice(cut + 1));
    if (owner === undefined || field === undefined) return undefined;
    return {
      identity: { category: "hierarchy", type: "leaf", name: `${field.label}: ${field.values.join("; ")}` },
      form: dataForm("result", CONNECTION_FORM, [{ ...field, type: fieldType(field.values) }]),
      items: [],
    };
  }

  private linkNode(rest: string): NodeAnswer | undefined {
    const [domain = "", index] = rest.split("/");
    const attempts = this.options.introspection.history.of(domain);
    if (attempts.length === 0) return undefined;
    if (index === undefined) {
      return {
        identity: { category: "hierarchy", type: "branch", name: domain },
        features: [NS.DISCO_ITEMS],
        items: attempts.map((a, i) => ({
          node: `links/${domain}/${i + 1}`,
          name: `${new Date(a.time).toISOString()} ${a.local} → ${a.remote}: ${a.result}`,
        })),
      };
    }
    const attempt = attempts[Number(index) - 1];
    if (attempt === undefined || !/^[1-9][0-9]*$/.test(index)) return undefined;
    return {
      identity: { category: "hierarchy", type: "leaf", name: `${domain}: ${attempt.result}` },
      form: dataForm("result", ATTEMPT_FORM, attemptFields(attempt)),
      items: [],
    };
  }
}

const fieldType = (values: string[]): "text-single" | "text-multi" =>
  values.length > 1 ? "text-multi" : "text-single";

function connectionNode(connection: Connection): NodeAnswer {
  return {
    identity: { category: "hierarchy", type: "branch", name: connection.name },
    features: [NS.DISCO_ITEMS],
    form: dataForm(
      "result",
      CONNECTION_FORM,
      connection.fields.map((f) => ({ ...f, type: fieldType(f.values) })),
    ),
    items: connection.fields.map((f) => ({
      node: `${connection.node}/${f.var}`,
      name: `${f.label}: ${f.values.join("; ")}`,
    })),
  };
}

function attemptFields(
  a: LinkAttempt,
): { var: string; label: string; values: string[]; type: "text-single" | "text-multi" }[] {
  const fields = [
    { var: "time", label: "Time", values: [new Date(a.time).toISOString()] },
    { var: "local", label: "Local domain", values: [a.local] },
    { var: "purpose", label: "Purpose", values: [a.purpose] },
    { var: "result", label: "Result", values: [a.result] },
    { var: "states", label: "States", values: [a.states.join(" → ") || "none"] },
    { var: "dns", label: "DNS", values: a.dns.length > 0 ? a.dns : ["not queried"] },
    { var: "addresses", label: "Addresses tried", values: a.addresses.length > 0 ? a.addresses : ["none"] },
    { var: "tls", label: "TLS", values: [a.tls] },
    { var: "certificate", label: "Certificate", values: [a.certificate] },
    { var: "authentication", label: "Authentication", values: [a.authentication] },
    { var: "error", label: "Error", values: [a.error ?? "none"] },
    ...(a.endedAt === undefined
      ? []
      : [{ var: "ended", label: "Ended", values: [new Date(a.endedAt).toISOString()] }]),
  ];
  return fields.map((f) => ({ ...f, type: fieldType(f.values) }));
}
