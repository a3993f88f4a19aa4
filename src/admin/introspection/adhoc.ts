/**
 * XEP-0050 ad-hoc commands on the introspection address: "close connection" and "retry link now".
 * Each is one form: `execute` answers with the form (a session), the submission runs the action
 * and completes with a note. A submission in the first request runs at once (single-stage use).
 */
import { randomBytes } from "node:crypto";
import { el, type Element } from "../../xml/element.js";
import { NS } from "../../xmpp/namespaces.js";
import { Jid } from "../../xmpp/jid.js";
import { dataForm, submittedValues } from "./dataForm.js";
import type { ActionResult, Introspection } from "./introspection.js";

export const COMMANDS = [
  { node: "close-connection", name: "Close connection" },
  { node: "retry-link", name: "Retry link now" },
] as const;

type CommandNode = (typeof COMMANDS)[number]["node"];

const SESSION_LIFETIME_MS = 10 * 60_000;
const MAX_SESSIONS = 100;

/** What the caller sends back: the `<command/>` reply, or a stanza error. */
export type CommandOutcome =
  { reply: Element } | { error: "bad-request" | "item-not-found" | "not-allowed"; text: string };

export class AdHocCommands {
  private readonly sessions = new Map<string, { node: CommandNode; requester: string; expires: number }>();

  constructor(private readonly introspection: Introspection) {}

  static isCommand(node: string): node is CommandNode {
    return COMMANDS.some((c) => c.node === node);
  }

  handle(command: Element, requester: Jid): CommandOutcome {
    const node = command.attrs.node ?? "";
    if (!AdHocCommands.isCommand(node)) return { error: "item-not-found", text: `no command ${node}` };
    const action = command.attrs.action ?? "execute";
    const sessionId = command.attrs.sessionid;
    const who = requester.toString();
    if (sessionId !== undefined) {
      const session = this.sessions.get(sessionId);
      if (
        session === undefined ||
        session.node !== node ||
        session.requester !== who ||
        session.expires < Date.now()
      )
        return { error: "bad-request", text: "unknown or expired sessionid (bad-sessionid)" };
      if (action === "cancel") {
        this.sessions.delete(sessionId);
        return { reply: reply(node, sessionId, "canceled") };
      }
    } else if (action === "cancel") return { error: "bad-request", text: "nothing to cancel" };
    if (action === "prev")
      return { error: "bad-request", text: "these commands have a single stage (bad-action)" };
    const values = submittedValues(command);
    if (values === undefined) {
      if (sessionId !== undefined)
        return { error: "bad-request", text: "submit the form to run the command" };
      const id = this.open(node, who);
      return { reply: this.form(node, id) };
    }
    if (sessionId !== undefined) this.sessions.delete(sessionId);
    const result = this.run(node, values, who);
    if ("error" in result) return result;
    return {
      reply: reply(node, sessionId ?? newSessionId(), "completed").append(
        el("note", { type: result.ok ? "info" : "error" }, result.text),
      ),
    };
  }

  private run(
    node: CommandNode,
    values: Map<string, string[]>,
    who: string,
  ): ActionResult | { error: "bad-request"; text: string } {
    if (node === "close-connection") {
      const id = values.get("connection")?.[0] ?? "";
      if (id === "") return { error: "bad-request", text: "field 'connection' is required" };
      return this.introspection.close(id, `${who} (ad-hoc command)`);
    }
    const domain = Jid.tryParse(values.get("domain")?.[0] ?? "");
    if (domain === undefined || domain.local !== "" || domain.resource !== "")
      return { error: "bad-request", text: "field 'domain' must be a domain name" };
    return this.introspection.retry(domain.domain);
  }

  private form(node: CommandNode, sessionId: string): Element {
    const command = reply(node, sessionId, "executing").append(
      el("actions", { execute: "complete" }, el("complete")),
    );
    if (node === "close-connection") {
      const options = this.introspection
        .connections()
        .map((c) => ({ label: `${c.name} (${c.group})`, value: c.node }));
      return command.append(
        dataForm(
          "form",
          undefined,
          [
            {
              var: "connection",
              label: "Connection",
              type: "list-single",
              values: [],
              options,
              required: true,
            },
          ],
          "Close connection",
          "The connection ends with </stream:stream>; a link may reconnect when it has stanzas to send.",
        ),
      );
    }
    return command.append(
      dataForm(
        "form",
        undefined,
        [
          {
            var: "domain",
            label: "Remote domain",
            type: "text-single",
            values: [],
            required: true,
          },
        ],
        "Retry link now",
        "Clears the backoff of the queues towards this domain and connects now.",
      ),
    );
  }

  private open(node: CommandNode, requester: string): string {
    const now = Date.now();
    for (const [id, session] of this.sessions) if (session.expires < now) this.sessions.delete(id);
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const id = newSessionId();
    this.sessions.set(id, { node, requester, expires: now + SESSION_LIFETIME_MS });
    return id;
  }
}

const newSessionId = (): string => randomBytes(8).toString("hex");

function reply(node: string, sessionId: string, status: "executing" | "completed" | "canceled"): Element {
  return el("command", { xmlns: NS.COMMANDS, node, sessionid: sessionId, status });
}
