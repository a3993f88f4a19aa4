/**
 * What the disco tree (seed 000), its ad-hoc commands and the HTTP twin share: the live
 * connections, the link history, and the two actions ("close connection", "retry link now").
 */
import { connections, GROUPS, type Connection, type GroupId, type TreeSources } from "./connectionTree.js";
import type { LinkAttempt, LinkHistory } from "./linkHistory.js";

export type ActionResult = { ok: true; text: string } | { ok: false; status: 404 | 409; text: string };

export class Introspection {
  constructor(
    private readonly sources: TreeSources,
    readonly history: LinkHistory,
    /** The outgoing queues (OutgoingLinks), which know which of theirs go to a domain. */
    private readonly links: { retry(remote: string): { started: string[]; busy: string[] } },
  ) {}

  connections(): Connection[] {
    return connections(this.sources);
  }

  group(id: GroupId): Connection[] {
    return this.connections().filter((c) => c.group === id);
  }

  byNode(node: string): Connection | undefined {
    return this.connections().find((c) => c.node === node);
  }

  /** The tree as JSON (`GET /api/connections`). */
  json(): { groups: { id: GroupId; name: string; connections: ConnectionJson[] }[] } {
    const all = this.connections();
    return {
      groups: GROUPS.map((g) => ({
        id: g.id,
        name: g.name,
        connections: all.filter((c) => c.group === g.id).map(toJson),
      })),
    };
  }

  linkJson(domain: string): { domain: string; attempts: LinkAttemptJson[] } {
    return { domain, attempts: this.history.of(domain).map(attemptJson) };
  }

  close(id: string, by: string): ActionResult {
    const targets = this.connections().filter((c) => c.id === id || c.node === id);
    const first = targets[0];
    if (first === undefined) return { ok: false, status: 404, text: `no connection ${id}` };
    first.close(by);
    return { ok: true, text: `closing ${first.name} (${first.group})` };
  }

  /** Clears the backoff of every queue towards `domain` and connects now. */
  retry(domain: string): ActionResult {
    const { started, busy } = this.links.retry(domain);
    if (started.length === 0 && busy.length === 0)
      return { ok: false, status: 404, text: `no queue towards ${domain}: nothing has been sent there` };
    if (started.length === 0)
      return {
        ok: false,
        status: 409,
        text: `the link to ${domain} is already connecting or up: ${busy.join(", ")}`,
      };
    return { ok: true, text: `retrying the link to ${domain} from ${started.join(", ")} now` };
  }
}

export interface ConnectionJson {
  id: string;
  node: string;
  name: string;
  fields: { var: string; label: string; value: string | string[] }[];
}

function toJson(c: Connection): ConnectionJson {
  return {
    id: c.id,
    node: c.node,
    name: c.name,
    fields: c.fields.map((f) => ({
      var: f.var,
      label: f.label,
      value: f.values.length === 1 ? (f.values[0] ?? "") : f.values,
    })),
  };
}

export type LinkAttemptJson = Omit<LinkAttempt, "time" | "endedAt"> & { time: string; endedAt?: string };

function attemptJson(a: LinkAttempt): LinkAttemptJson {
  const { time, endedAt, ...rest } = a;
  return {
    ...rest,
    states: [...a.states],
    time: new Date(time).toISOString(),
    ...(endedAt === undefined ? {} : { endedAt: new Date(endedAt).toISOString() }),
  };
}
