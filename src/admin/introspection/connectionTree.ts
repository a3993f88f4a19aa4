/**
 * The live S2S connections as jabberd14 1.6 showed them (seed 000): four groups, members named as
 * the seed names them, and for each member the seed's nodes for its group with their true values,
 * plus what the seed lacks (TLS version and cipher, certificate verdict, authentication method,
 * time in the current state). Read from the actors' snapshots, their transports, the outgoing
 * buffers and the connect steps' progress at the time of the request: nothing is kept twice.
 */
import type { AnyActorRef } from "xstate";
import type { S2sInContext } from "../../../machines/s2sIn.js";
import type { S2sOutContext } from "../../../machines/s2sOut.js";
import { machineOf } from "../../routing/actorViews.js";
import type { ActorRegistry } from "../../routing/registry.js";
import type { TransportTable } from "../../net/transportActor.js";
import type { XmppTransport } from "../../net/transport.js";
import type { ConnectProgress } from "../../s2s/connect.js";
import type { StateClock } from "./stateClock.js";
import {
  DIALBACK_STATE,
  INCOMING_STATE,
  OUTGOING_STATE,
  certificateText,
  duration,
  ipPort,
  leafOf,
  tlsText,
  utc,
} from "./wording.js";

export const GROUPS = [
  { id: "connecting-incoming", name: "Connecting incoming connections" },
  { id: "connecting-outgoing", name: "Connecting outgoing connections" },
  { id: "established-incoming", name: "Established incoming connections" },
  { id: "established-outgoing", name: "Established outgoing connections" },
] as const;

export type GroupId = (typeof GROUPS)[number]["id"];

export interface Field {
  var: string;
  label: string;
  values: string[];
}

export interface Connection {
  group: GroupId;
  /** The connection's id (HTTP `DELETE /api/connections/{id}`). */
  id: string;
  /** Its disco node: `<group>/<id>` (an incoming stream with several authorized pairs has several). */
  node: string;
  /** As seed 000 lists it in its group. */
  name: string;
  fields: Field[];
  /** Closes it in an orderly way (`</stream:stream>`); `by` is said in the log. */
  close(by: string): void;
}

export interface TreeSources {
  registry: ActorRegistry;
  transports: TransportTable;
  clock: StateClock;
  progress: ConnectProgress;
  /** Stanzas waiting in the (local, remote) queue. */
  pendingStanzas(local: string, remote: string): number;
  now?: () => number;
}

interface Snapshot<TContext> {
  value?: unknown;
  status?: string;
  context: TContext;
  children?: Record<string, AnyActorRef | undefined>;
}

function smText(transport: XmppTransport | undefined): string {
  const sm = transport?.smOutbound;
  if (sm === undefined || sm.state === "off") return "off";
  return `${sm.state === "on" ? "on" : "requested"} (XEP-0198), ${sm.pending} unacknowledged`;
}

const field = (name: string, label: string, ...values: string[]): Field => ({ var: name, label, values });

/** Every live S2S connection, in the group it belongs to now. */
export function connections(sources: TreeSources): Connection[] {
  const found: Connection[] = [];
  for (const [, actor] of sources.registry.actors()) {
    const machine = machineOf(actor)?.id;
    if (machine === "s2sIn") found.push(...incoming(actor, sources));
    if (machine === "queue" || machine === "dialbackVerify") {
      const conn = (actor.getSnapshot() as Snapshot<unknown>).children?.conn;
      if (conn !== undefined) {
        const entry = outgoing(conn, sources, machine === "queue");
        if (entry) found.push(entry);
      }
    }
  }
  return found;
}

function common(
  actor: AnyActorRef,
  transport: XmppTransport | undefined,
  sources: TreeSources,
  state: string,
): Field[] {
  const now = sources.now?.() ?? Date.now();
  const clock = sources.clock.of(actor);
  return [
    field(
      "ip-port",
      "IP/port",
      transport === undefined ? "not connected yet" : ipPort(transport.endpoints()),
    ),
    field(
      "time-in-state",
      "Time in state",
      clock === undefined ? "?" : `${duration(now - clock.since)} (${state})`,
    ),
  ];
}

function incoming(actor: AnyActorRef, sources: TreeSources): Connection[] {
  const snapshot = actor.getSnapshot() as Snapshot<S2sInContext>;
  const context = snapshot.context;
  const state = leafOf(snapshot.value);
  if (state === "closed" || snapshot.status !== "active") return [];
  const transport = sources.transports.get(context.connectionId);
  const endpoints = transport?.endpoints();
  const [ipPortField, timeField] = common(actor, transport, sources, state);
  const shared = (): Field[] => [
    field(
      "addresses",
      "Addresses",
      `local: ${context.localDomain ?? "not known yet (no stream root)"}`,
      `remote: ${context.remoteDomain ?? "not given by the peer (no 'from' on its stream root)"}`,
    ),
    ...(ipPortField === undefined ? [] : [ipPortField]),
    field("xmpp-version", "XMPP version", context.version ?? "not known yet (no stream root)"),
    field("stream-id", "Stream ID", context.streamId),
    field("connection-start", "Connection start", transport === undefined ? "?" : utc(transport.startedAt)),
    field("connection-state", "Connection state", INCOMING_STATE[state] ?? state),
    field("tls", "TLS", tlsText(transport?.tls ?? "none", endpoints)),
    field("certificate", "Certificate", certificateText(context.certificate, context.secure)),
  ];
  const close = (by: string): void => {
    actor.send({ type: "ADMIN_CLOSE", by });
  };
  const id = context.connectionId;
  if (context.authorized.length === 0) {
    return [
      {
        group: "connecting-incoming",
        id,
        node: `connecting-incoming/${id}`,
        name: context.streamId,
        fields: [
          ...shared(),
          field(
            "authentication",
            "Authentication",
            context.pending.length > 0
              ? `dialback verification under way for ${context.pending.map((p) => p.replace(" ", " → ")).join(", ")}`
              : "none yet",
          ),
          field("pending-verifies", "Pending verifies", String(context.pending.length)),
          ...(timeField === undefined ? [] : [timeField]),
        ],
        close,
      },
    ];
  }
  // seed 000: one member per authorized domain, `<streamid>@<destination domain>/<authorized domain>`.
  return context.authorized.map((pair, index) => {
    const [remote = "", local = ""] = pair.split(" ");
    return {
      group: "established-incoming" as const,
      id,
      node: `established-incoming/${id}${index === 0 ? "" : `.${index + 1}`}`,
      name: `${context.streamId}@${local}/${remote}`,
      fields: [
        ...shared(),
        field("authentication", "Authentication", context.authMethods[index] ?? "dialback"),
        field(
          "last-used",
          "Last used",
          transport?.lastStanzaAt === undefined ? "never" : utc(transport.lastStanzaAt),
        ),
        field("stanza-count", "Stanza count", String(transport?.stanzasIn ?? 0)),
        field(
          "stream-management",
          "Stream management",
          transport?.smInbound === undefined ? "off" : "on (XEP-0198 acks)",
        ),
        ...(timeField === undefined ? [] : [timeField]),
      ],
      close,
    };
  });
}

function outgoing(actor: AnyActorRef, sources: TreeSources, carriesStanzas: boolean): Connection | undefined {
  const snapshot = actor.getSnapshot() as Snapshot<S2sOutContext>;
  if (snapshot.status !== "active") return undefined;
  const context = snapshot.context;
  const value = snapshot.value as { link?: unknown; dialback?: unknown } | undefined;
  const state = leafOf(value?.link);
  if (state === "closed" || state === "failed") return undefined;
  const transport =
    context.connectionId === undefined ? undefined : sources.transports.get(context.connectionId);
  const progress = state === "connecting" ? sources.progress.of(snapshot.children?.connect ?? {}) : undefined;
  const id = context.connectionId ?? `pending-${actor.sessionId.replace(/\W/g, "")}`;
  const established = context.up && carriesStanzas;
  const group: GroupId = established ? "established-outgoing" : "connecting-outgoing";
  const clock = sources.clock.of(actor);
  const dialbackOffered = context.features === undefined ? undefined : context.features.dialback;
  const [ipPortField, timeField] = common(actor, transport, sources, state);
  const fields: Field[] = [
    field(
      "connection-results",
      "Connection results",
      ...(progress?.results ?? context.attempts).map((line) => line),
      ...(progress === undefined && context.attempts.length === 0 ? ["none yet"] : []),
    ),
    field("connection-start", "Connection start", clock === undefined ? "?" : utc(clock.startedAt)),
    field("connection-state", "Connection state", OUTGOING_STATE[state] ?? state),
    field(
      "dialback",
      "Dialback",
      dialbackOffered === undefined
        ? context.version === "0.9"
          ? "supported (pre-XMPP 1.0 peer)"
          : "not known yet (no stream features)"
        : dialbackOffered
          ? "supported"
          : "not supported",
    ),
    field(
      "dialback-state",
      "Dialback state",
      DIALBACK_STATE[leafOf(value?.dialback)] ?? leafOf(value?.dialback),
    ),
    field(
      "pending-verifies",
      "Pending verifies",
      String(context.verify !== undefined && !context.verifySent ? 1 : 0),
    ),
    field(
      "dropped",
      "Dropped because of settings",
      context.dropped ? `yes: ${context.failure?.text ?? "settings"}` : "no",
    ),
    ...(ipPortField === undefined ? [] : [ipPortField]),
    field(
      "pending-ips",
      "Pending IPs",
      ...(progress === undefined || progress.pending.length === 0 ? ["none"] : progress.pending),
    ),
    field(
      "pending-stanzas",
      "Pending stanzas",
      String(carriesStanzas ? sources.pendingStanzas(context.local, context.remote) : 0),
    ),
    field("stream-id", "Stream ID", context.streamId ?? "not received yet"),
    field("xmpp-version", "XMPP version", context.version ?? "not known yet (no stream root)"),
    field("tls", "TLS", tlsText(context.tls, transport?.endpoints())),
    field("certificate", "Certificate", certificateText(context.certificate, context.tls !== "none")),
    field(
      "authentication",
      "Authentication",
      context.auth === "external"
        ? "SASL EXTERNAL"
        : context.auth === "dialback"
          ? "dialback"
          : carriesStanzas
            ? "not yet"
            : "none (only carries dialback verifies)",
    ),
  ];
  if (established) {
    fields.push(
      field(
        "last-used",
        "Last used",
        transport?.lastStanzaAt === undefined ? "never" : utc(transport.lastStanzaAt),
      ),
      field("stanza-count", "Stanza count", String(transport?.stanzasOut ?? 0)),
      field("stream-management", "Stream management", smText(transport)),
    );
  }
  if (timeField !== undefined) fields.push(timeField);
  return {
    group,
    id,
    node: `${group}/${id}`,
    // seed 000: connecting as `local/remote`, established as `<destination>/<authorized domain>`.
    name: established ? `${context.remote}/${context.local}` : `${context.local}/${context.remote}`,
    fields,
    close: (by) => {
      actor.send({ type: "ADMIN_CLOSE", by });
    },
  };
}
