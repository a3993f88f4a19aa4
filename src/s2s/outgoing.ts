/**
 * Outgoing federation: the RemoteRoute of the stanza router. One queue per (source domain, target
 * domain), as seed 001 describes, each a `queue` actor (machines/queue.ts) with its buffer here;
 * the machines are provided once with their real I/O (DNS + TCP, sockets, the dialback secret).
 */
import type { Element } from "../xml/element.js";
import type { Jid } from "../xmpp/jid.js";
import { dbResultRequest, dialbackKey } from "../xmpp/dialback.js";
import type { StanzaErrorCondition } from "../xmpp/stanzaErrors.js";
import { queueMachine } from "../../machines/queue.js";
import { s2sOutMachine } from "../../machines/s2sOut.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { resolveOptionsFromConfig } from "../dns/resolve.js";
import { transportActor, type TransportTable } from "../net/transportActor.js";
import type { ActorRegistry } from "../routing/registry.js";
import type { RemoteRoute } from "../routing/stanzaRouter.js";
import { connectActor, type ConnectProgress } from "./connect.js";
import { SmOutbound } from "./streamManagement.js";
import { ConnectSlots, NegativeDnsCache } from "./connectLimits.js";
import type { IssuedKeys } from "./issuedKeys.js";
import { shaperFor } from "../net/shaper.js";
import { DEFAULT_BUFFER_LIMITS, OutboundBuffer, type BufferLimits } from "./outboundBuffer.js";
import type { FederationPolicy } from "./policy.js";
import type { Trust } from "./trust.js";
import type { StanzaCounters } from "../metrics/stanzaCounters.js";
import { PairMap } from "./pairMap.js";
import { ownedString } from "../xml/ownedString.js";
import { assign } from "xstate";

export interface OutgoingOptions {
  config: Config;
  registry: ActorRegistry;
  transports: TransportTable;
  log: Logger;
  policy: FederationPolicy;
  /** Whether a domain is ours to send from (hosted, or a component's). */
  isLocal: (domain: string) => boolean;
  bounce: (stanza: Element, condition: StanzaErrorCondition, text: string) => void;
  newId: () => string;
  limits?: BufferLimits;
  /** The s2sOut machine with its I/O (see provideS2sOut), shared with dialback verifications. */
  s2sOut: ReturnType<typeof provideS2sOut>;
  trust: Trust;
  counters: StanzaCounters;
  /** Told when policy refuses a remote domain before any connection (for the link history). */
  onRefused?: (local: string, remote: string, text: string) => void;
}

/** The s2sOut machine with its real I/O, shared by queues and dialback verifications. */
export function provideS2sOut(options: {
  config: Config;
  transports: TransportTable;
  log: Logger;
  newId: () => string;
  trust: Trust;
  counters: StanzaCounters;
  progress?: ConnectProgress;
  /** Keys sent, so that only they are confirmed when a peer verifies them. */
  issuedKeys?: IssuedKeys;
}) {
  const { trust } = options;
  const outgoing = options.config.s2s.outgoing;
  const secret = options.config.s2s.shared;
  const slots = new ConnectSlots(outgoing.max_connecting);
  return s2sOutMachine.provide({
    actors: {
      connect: connectActor({
        resolve: resolveOptionsFromConfig(outgoing),
        connectionTimeoutMs: outgoing.connection_timeout,
        maxStanzaSize: outgoing.max_stanza_size,
        transports: options.transports,
        log: options.log,
        newId: options.newId,
        shaper: () => shaperFor(options.config.shaper, outgoing.shaper),
        clientTls: (local) => trust.certificates.clientOptions(local),
        counters: options.counters,
        checkCertificate: trust.outgoing,
        ...(options.progress === undefined ? {} : { progress: options.progress }),
        slots,
        negativeDns: new NegativeDnsCache(outgoing.dns.negative_ttl * 1000),
      }),
      transport: transportActor(options.transports),
    },
    actions: {
      // After STARTTLS: the remote certificate for its domain (or the relay name), RFC 6125.
      checkCertificate: assign(({ context }) => {
        const transport = options.transports.get(context.connectionId ?? "");
        if (!transport) return {};
        return { certificate: transport.verdict(context.tlsName ?? context.remote, trust.outgoing) };
      }),
      // Worked out (and kept by the transport) while our header travels and the peer answers, so
      // that checkCertificate finds it ready: ~1 ms less on each STARTTLS link's way.
      prepareCertificate: ({ context }) => {
        const transport = options.transports.get(context.connectionId ?? "");
        const domain = context.tlsName ?? context.remote;
        setImmediate(() => {
          if (transport?.isOpen === true) transport.verdict(domain, trust.outgoing);
        });
      },
      attemptSettled: ({ context }) => {
        slots.settle(context.connectionId ?? "");
      },
      // XEP-0198: only a queue's link carries stanzas; a verification's has nothing to count.
      enableSm: ({ context }) => {
        const transport = options.transports.get(context.connectionId ?? "");
        if (!transport || !context.authorize || context.features?.sm !== true) return;
        transport.smOutbound = new SmOutbound(transport);
      },
      // XEP-0220 step 1 with a XEP-0185 key over the stream id the receiving server gave us.
      sendDialbackKey: ({ context }) => {
        const transport = options.transports.get(context.connectionId ?? "");
        const key = dialbackKey(secret, context.remote, context.local, context.streamId ?? "");
        options.issuedKeys?.add(context.remote, context.local, context.streamId ?? "");
        transport?.send(dbResultRequest(context.local, context.remote, key));
      },
    },
  });
}

export class OutgoingLinks implements RemoteRoute {
  private readonly buffers = new PairMap<OutboundBuffer>();
  private readonly options: OutgoingOptions;
  private readonly queueLogic;

  constructor(options: OutgoingOptions) {
    this.options = options;
    const buffer = (context: { local: string; remote: string }): OutboundBuffer | undefined =>
      this.buffers.get(context.local, context.remote);
    this.queueLogic = queueMachine.provide({
      actors: { conn: options.s2sOut },
      guards: { hasPending: ({ context }) => (buffer(context)?.size ?? 0) > 0 },
      actions: {
        attachLink: ({ context }, { connectionId }) => {
          const transport = options.transports.get(connectionId);
          if (transport) buffer(context)?.attach(transport);
        },
        detachLink: ({ context }) => {
          const requeued = buffer(context)?.detach() ?? 0;
          if (requeued > 0) {
            options.log.notice(
              `${requeued} stanza(s) for ${context.remote} were not acknowledged (XEP-0198): queued again`,
            );
          }
        },
        bounceQueued: ({ context }, failure) => {
          const queued = buffer(context);
          if (queued && queued.size > 0) {
            options.log.notice(
              `bouncing ${queued.size} stanza(s) for ${context.remote} from ${context.local}: ${failure.text}`,
            );
          }
          queued?.bounceAll(failure.condition, failure.text);
        },
      },
    });
  }

  /** Everything waiting in outgoing queues (ferry_s2s_queue_stanzas / _bytes). */
  totals(): { stanzas: number; bytes: number } {
    let stanzas = 0;
    let bytes = 0;
    for (const [, , buffer] of this.buffers.entries()) {
      stanzas += buffer.size;
      bytes += buffer.queuedBytes;
    }
    return { stanzas, bytes };
  }

  /**
   * "Retry link now" (admin): each queue towards `remote` that is idle or backing off connects at
   * once; returns the local domains retried and those whose link is already connecting or up.
   */
  retry(remote: string): { started: string[]; busy: string[] } {
    const started: string[] = [];
    const busy: string[] = [];
    for (const [local, to] of this.buffers.entries()) {
      if (to !== remote) continue;
      const actor = this.options.registry.get(`out:${local}:${remote}`);
      const state = (actor?.getSnapshot() as { value?: unknown } | undefined)?.value;
      if (state === "backoff" || state === "idle") {
        actor?.send({ type: "RETRY" });
        started.push(local);
      } else busy.push(`${local} (${typeof state === "string" ? state : "link connecting or up"})`);
    }
    return { started, busy };
  }

  /** The buffer of a (local, remote) queue, for the admin views. */
  buffer(local: string, remote: string): OutboundBuffer | undefined {
    return this.buffers.get(local, remote);
  }

  deliver(stanza: Element, from: Jid, to: Jid): void {
    let queued = this.buffers.get(from.domain, to.domain);
    if (!queued) {
      if (!this.options.isLocal(from.domain)) {
        this.options.bounce(stanza, "not-allowed", `${from.domain} is not a domain of this server`);
        return;
      }
      if (!this.options.policy(to.domain)) {
        this.options.log.notice(`refusing to send to ${to.domain}: denied by default_policy/host_policy`);
        this.options.counters.connectAttempt("policy_denied");
        this.options.onRefused?.(
          from.domain,
          to.domain,
          `federation with ${to.domain} is not allowed (default_policy/host_policy)`,
        );
        this.options.bounce(
          stanza,
          "remote-server-not-found",
          `policy: federation with ${to.domain} is not allowed`,
        );
        return;
      }
      queued = this.open(from.domain, to.domain);
    }
    queued.push(stanza);
  }

  private open(localSlice: string, remoteSlice: string): OutboundBuffer {
    // Kept for the queue's life (keys, contexts, buffer), so not as slices of the stanza's chunk.
    const local = ownedString(localSlice);
    const remote = ownedString(remoteSlice);
    const actorKey = `out:${local}:${remote}`;
    const outgoing = this.options.config.s2s.outgoing;
    const queued = new OutboundBuffer(
      this.options.limits ?? DEFAULT_BUFFER_LIMITS,
      this.options.bounce,
      () => {
        this.options.registry.get(actorKey)?.send({ type: "NONEMPTY" });
      },
      this.options.counters,
      remote,
    );
    this.buffers.set(local, remote, queued);
    let retired = false;
    this.options.registry.start({
      key: actorKey,
      kind: "queue",
      logic: this.queueLogic,
      input: {
        local,
        remote,
        maxRetryDelayMs: outgoing.max_retry_delay * 1000,
        tlsMode: outgoing.tls.mode,
        stateTimeoutMs: outgoing.state_timeout,
        streamTimeoutMs: outgoing.stream_timeout,
        tlsPolicy: this.options.trust.requireFor(remote),
        ownCertificate: this.options.trust.certificates.hasCertificateFor(local),
        // Idle with nothing to send: forgotten after the longer wait the queue itself would have had.
        retireAfterMs: Math.min(outgoing.stream_timeout, outgoing.max_retry_delay * 1000),
      },
      restartable: true,
      onDone: (output) => {
        retired = (output as { retired?: boolean } | undefined)?.retired === true;
      },
      release: (reason) => {
        this.buffers.delete(local, remote);
        // A retired queue may have been handed a stanza just before it was released: a new
        // queue takes it on rather than bouncing it.
        if (reason === "done" && retired && queued.size > 0) {
          const next = this.open(local, remote);
          queued.moveTo(next);
          return;
        }
        queued.bounceAll("remote-server-timeout", `queue for ${remote} stopped: ${reason}`);
      },
    });
    return queued;
  }
}
