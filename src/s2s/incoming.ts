/**
 * Incoming federation: the s2sIn machine provided with its real I/O — the dialback secret
 * (answering db:verify as the authoritative server), verifications (a dialbackVerify actor per
 * db:result), the federation policy, and, once a domain is authorized, the stanza path.
 */
import { randomBytes } from "node:crypto";
import { assign, type AnyActorRef } from "xstate";
import { s2sInMachine, pairKey, type S2sInContext } from "../../machines/s2sIn.js";
import {
  dialbackVerifyMachine,
  type DialbackVerdictEmitted,
  type DialbackVerifyOutput,
} from "../../machines/dialbackVerify.js";
import type { Config } from "../config/schema.js";
import type { Element } from "../xml/element.js";
import { CONTENT_NAMESPACES } from "../xmpp/namespaces.js";
import { Jid } from "../xmpp/jid.js";
import { dbVerifyAnswer, dbVerifyError, dialbackKeyMatches, readDialback } from "../xmpp/dialback.js";
import type { XmppTransport } from "../net/transport.js";
import { transportActor, type TransportTable } from "../net/transportActor.js";
import type { ActorRegistry } from "../routing/registry.js";
import type { StanzaRouter } from "../routing/stanzaRouter.js";
import type { FederationPolicy } from "./policy.js";
import type { provideS2sOut } from "./outgoing.js";
import type { CertificateCheck, Trust } from "./trust.js";
import type { StanzaCounters } from "../metrics/stanzaCounters.js";
import { SmInbound } from "./streamManagement.js";
import { enterSource, leaveSource } from "../routing/backpressure.js";
import type { IpLimits } from "./ipLimits.js";
import type { IssuedKeys } from "./issuedKeys.js";

export interface IncomingOptions {
  config: Config;
  registry: ActorRegistry;
  transports: TransportTable;
  router: StanzaRouter;
  policy: FederationPolicy;
  isLocal: (domain: string) => boolean;
  s2sOut: ReturnType<typeof provideS2sOut>;
  trust: Trust;
  /** How this listener judges the certificates of servers connecting to it. */
  check: CertificateCheck;
  counters: StanzaCounters;
  /** Keys this server sent: a verify for any other stream is answered invalid. */
  issuedKeys?: IssuedKeys;
  /** Per-IP bound on verifications under way (`max_verifications_per_ip`). */
  ipLimits?: IpLimits;
}

/**
 * Stanzas on an established incoming stream (RFC 6120 §8, §4.9.3): both addresses present, the
 * `to` domain ours (else <host-unknown/>), the (from, to) domain pair authorized by dialback on this
 * stream (else <invalid-from/>). No statechart event per stanza.
 */
export function remoteIngress(
  actor: AnyActorRef,
  transport: XmppTransport,
  router: StanzaRouter,
  isLocal: (domain: string) => boolean,
  counters: StanzaCounters,
): (stanza: Element) => void {
  return (stanza) => {
    counters.stanza("s2s", "in", stanza.local);
    const ns = stanza.attrs.xmlns;
    if (ns !== undefined && CONTENT_NAMESPACES.has(ns)) stanza.deleteAttr("xmlns");
    const from = Jid.tryParse(stanza.attrs.from ?? "");
    const to = Jid.tryParse(stanza.attrs.to ?? "");
    if (from === undefined || to === undefined) {
      transport.fail("improper-addressing", "stanzas between servers need valid 'from' and 'to' addresses");
      return;
    }
    if (!isLocal(to.domain)) {
      transport.fail("host-unknown", `${to.domain} is not served here`);
      return;
    }
    const context = (actor.getSnapshot() as { context: S2sInContext }).context;
    if (!context.authorized.includes(pairKey(from.domain, to.domain))) {
      transport.fail(
        "invalid-from",
        `${from.domain} is not authorized to send to ${to.domain} on this stream`,
      );
      return;
    }
    counters.remote(from.domain, "in");
    const previous = enterSource(transport);
    try {
      router.route(stanza, from, to);
    } finally {
      leaveSource(previous);
    }
    transport.smInbound?.handled();
  };
}

function isVerdict(emitted: unknown): emitted is DialbackVerdictEmitted {
  return typeof emitted === "object" && emitted !== null && "type" in emitted && emitted.type === "verdict";
}

/** A verification of this domain pair is still awaited on the incoming stream `actor`. */
function isPending(actor: AnyActorRef, pair: string): boolean {
  const context = (actor.getSnapshot() as { context?: S2sInContext }).context;
  return context?.pending.includes(pair) === true;
}

export function provideS2sIn(options: IncomingOptions) {
  const secret = options.config.s2s.shared;
  const outgoing = options.config.s2s.outgoing;
  const verifyLogic = dialbackVerifyMachine.provide({ actors: { conn: options.s2sOut } });
  const transportOf = (context: S2sInContext): XmppTransport | undefined =>
    options.transports.get(context.connectionId);

  return s2sInMachine.provide({
    actors: { transport: transportActor(options.transports) },
    guards: {
      // XEP-0344 style: over TLS, a certificate valid for the originating domain proves it.
      dbOriginCertified: ({ context, event }) => {
        const db = event.type === "ELEMENT" ? readDialback(event.element) : undefined;
        const transport = transportOf(context);
        return (
          context.secure &&
          db !== undefined &&
          transport !== undefined &&
          transport.verdict(db.from, options.check).ok
        );
      },
      headerTargetServed: ({ event }) =>
        event.type === "STREAM_HEADER" && options.isLocal((event.header.to ?? "").toLowerCase()),
      dbTargetServed: ({ event }) => {
        const db = event.type === "ELEMENT" ? readDialback(event.element) : undefined;
        return db !== undefined && options.isLocal(db.to);
      },
      dbOriginLocal: ({ event }) => {
        const db = event.type === "ELEMENT" ? readDialback(event.element) : undefined;
        return db !== undefined && options.isLocal(db.from);
      },
      dbOriginAllowed: ({ event }) => {
        const db = event.type === "ELEMENT" ? readDialback(event.element) : undefined;
        return db !== undefined && options.policy(db.from);
      },
    },
    actions: {
      checkCertificate: assign(({ context }) => {
        const transport = transportOf(context);
        if (!context.secure || context.remoteDomain === undefined || !transport) return {};
        return { certificate: transport.verdict(context.remoteDomain, options.check) };
      }),
      renewStreamId: assign({ streamId: () => randomBytes(16).toString("hex") }),
      // XEP-0220 step 3, as the authoritative server: is this our key for that stream?
      answerVerify: ({ context, event }) => {
        const db = event.type === "ELEMENT" ? readDialback(event.element) : undefined;
        if (db?.id === undefined) return;
        if (!options.isLocal(db.to)) {
          // XEP-0220 §2.2.2: not ours to vouch for: an <item-not-found/> dialback error.
          transportOf(context)?.send(
            dbVerifyError(db.to, db.from, db.id, "item-not-found", `${db.to} is not served here`),
          );
          return;
        }
        const valid =
          options.isLocal(db.to) &&
          (options.issuedKeys?.has(db.from, db.to, db.id) ?? true) &&
          dialbackKeyMatches(secret, db.from, db.to, db.id, db.key);
        transportOf(context)?.send(dbVerifyAnswer(db.to, db.from, db.id, valid ? "valid" : "invalid"));
      },
      // XEP-0220 step 2: ask the originating domain's authoritative server.
      startVerification: ({ context, event, self }) => {
        const db = event.type === "ELEMENT" ? readDialback(event.element) : undefined;
        if (db === undefined) return;
        const key = `verify:${context.streamId}:${db.from}:${db.to}`;
        if (options.registry.get(key)) return; // the same pair asked twice: one verification answers both
        const ip = transportOf(context)?.socket.remoteAddress ?? "?";
        const release = options.ipLimits === undefined ? () => undefined : options.ipLimits.verification(ip);
        if (release === undefined) {
          self.send({
            type: "DIALBACK_VERIFIED",
            remote: db.from,
            local: db.to,
            result: "failed",
            condition: "policy-violation",
            reason: `too many dialback verifications under way from ${ip} (max_verifications_per_ip)`,
          });
          return;
        }
        // The verdict goes back as soon as the authoritative server answers (not once its stream
        // is closed); at the end only a db:result for the same pair that came meanwhile still waits.
        let answered = false;
        const verification = options.registry.start({
          key,
          kind: "dialbackVerify",
          logic: verifyLogic,
          input: {
            streamId: context.streamId,
            local: db.to,
            remote: db.from,
            key: db.key,
            tlsMode: outgoing.tls.mode,
            stateTimeoutMs: outgoing.state_timeout,
            timeoutMs: outgoing.connection_timeout + 4 * outgoing.state_timeout,
            tlsPolicy: options.trust.requireFor(db.from),
          },
          restartable: false,
          // However the verification ends (a crash too), its place under the per-IP bound is freed.
          release: () => {
            release();
          },
          onDone: (output) => {
            release();
            if (answered && !isPending(self, pairKey(db.from, db.to))) return;
            const verdict = output as DialbackVerifyOutput;
            self.send({
              type: "DIALBACK_VERIFIED",
              remote: db.from,
              local: db.to,
              result: verdict.result,
              ...(verdict.reason === undefined ? {} : { reason: verdict.reason }),
            });
          },
        });
        verification.on("verdict", (emitted: unknown) => {
          if (answered || !isVerdict(emitted)) return;
          answered = true;
          self.send({ type: "DIALBACK_VERIFIED", remote: db.from, local: db.to, result: emitted.result });
        });
      },
      enableSm: ({ context }) => {
        const transport = transportOf(context);
        if (transport && transport.smInbound === undefined) transport.smInbound = new SmInbound(transport);
      },
      openStanzaPath: ({ context, self }) => {
        const transport = transportOf(context);
        if (transport) {
          transport.stanzaSink = remoteIngress(
            self,
            transport,
            options.router,
            options.isLocal,
            options.counters,
          );
        }
      },
    },
  });
}
