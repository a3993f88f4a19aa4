/**
 * `[access]` lists: who may do something (send to a component, browse S2S links). A list holds JIDs:
 * `user@domain/resource` (exactly), `user@domain` (any resource), `*@domain` (any account there) or
 * `domain` (anything at that domain, the domain itself included). `"all"` allows everybody.
 */
import { Jid } from "../xmpp/jid.js";

export type AccessCheck = (sender: Jid) => boolean;

export const allowAll: AccessCheck = () => true;

export function compileAccess(rule: string, lists: Readonly<Record<string, readonly string[]>>): AccessCheck {
  if (rule === "all") return allowAll;
  const entries = lists[rule];
  if (entries === undefined) throw new Error(`unknown access list "${rule}"`);
  const matchers = entries.map(compileEntry);
  return (sender) => matchers.some((matches) => matches(sender));
}

function compileEntry(entry: string): AccessCheck {
  if (entry.startsWith("*@")) {
    const domain = Jid.parse(entry.slice(2)).domain;
    return (sender) => sender.local !== "" && sender.domain === domain;
  }
  const pattern = Jid.parse(entry);
  if (pattern.local === "" && pattern.resource === "") return (sender) => sender.domain === pattern.domain;
  if (pattern.resource === "") return (sender) => sender.bare().equals(pattern);
  return (sender) => sender.equals(pattern);
}
