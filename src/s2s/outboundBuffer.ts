/**
 * The stanzas of one outgoing queue (ARCHITECTURE.md "The path of a stanza", out). While the queue's
 * connection is established and keeps up, a stanza is serialized straight onto it; otherwise it is
 * held here (bounded in count and bytes; beyond that bounced with `resource-constraint`) and only
 * the empty → non-empty change is an event for the queue actor.
 */
import type { Element } from "../xml/element.js";
import { parseStanza } from "../xml/parseStanza.js";
import { serialize } from "../xml/serialize.js";
import type { XmppTransport } from "../net/transport.js";
import type { StanzaErrorCondition } from "../xmpp/stanzaErrors.js";
import type { StanzaCounters } from "../metrics/stanzaCounters.js";
import {
  HIGH_WATER,
  LOW_WATER,
  holdCurrentSource,
  releaseHolds,
  type Holds,
} from "../routing/backpressure.js";
import type { Written } from "./streamManagement.js";

export interface BufferLimits {
  maxStanzas: number;
  maxBytes: number;
}

/** Generous enough for a burst while a link comes up, small enough that one dead peer cannot eat memory. */
export const DEFAULT_BUFFER_LIMITS: BufferLimits = { maxStanzas: 10_000, maxBytes: 16 * 1024 * 1024 };

export class OutboundBuffer {
  /** Waiting stanzas, serialized once: to measure them against maxBytes and to write them. */
  private items: Written[] = [];
  private bytes = 0;
  private writer: XmppTransport | undefined;
  private readonly flushOnDrain = (): void => {
    this.flush();
  };
  /** Stanzas written to the current and earlier connections (seed 000's "stanza count"). */
  sent = 0;
  lastUsed = 0;

  constructor(
    private readonly limits: BufferLimits,
    private readonly bounce: (stanza: Element, condition: StanzaErrorCondition, text: string) => void,
    /** Called when the buffer goes from empty to non-empty without a connection to write to. */
    private readonly wake: () => void,
    private readonly counters?: StanzaCounters,
    /** The target domain, for `[metrics] per_domain` series. */
    private readonly remote = "",
  ) {}

  get size(): number {
    return this.items.length;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  push(stanza: Element): void {
    const writer = this.writer;
    if (
      writer &&
      this.items.length === 0 &&
      writer.isOpen &&
      !writer.congested &&
      writer.smOutbound?.full !== true
    ) {
      this.write(writer, serialize(stanza), stanza.local);
      return;
    }
    const xml = serialize(stanza);
    const bytes = Buffer.byteLength(xml);
    if (this.items.length >= this.limits.maxStanzas || this.bytes + bytes > this.limits.maxBytes) {
      this.bounce(stanza, "resource-constraint", "too many stanzas waiting for this remote domain");
      return;
    }
    this.items.push({ xml, bytes, kind: stanza.local });
    this.bytes += bytes;
    if (writer !== undefined && this.items.length >= HIGH_WATER) this.held = holdCurrentSource(this.held);
    if (this.items.length === 1 && !writer) this.wake();
    if (writer) this.flush();
  }

  /** The queue's connection is established: write what waited, and keep writing directly. */
  attach(transport: XmppTransport): void {
    this.writer = transport;
    transport.onDrain(this.flushOnDrain);
    if (transport.smOutbound) transport.smOutbound.onRoom = this.flushOnDrain;
    this.flush();
  }

  /**
   * The connection is gone. With XEP-0198, what it did not acknowledge comes back to the front of
   * the queue: sent again on the next connection, or bounced if the queue gives up. Returns how many.
   */
  detach(): number {
    this.held = releaseHolds(this.held); // without a link, the limits apply instead
    const writer = this.writer;
    writer?.socket.off("drain", this.flushOnDrain);
    this.writer = undefined;
    const unacked = writer?.smOutbound?.takeUnacked() ?? [];
    if (unacked.length > 0) {
      this.items.unshift(...unacked);
      for (const item of unacked) this.bytes += item.bytes;
      this.sent -= unacked.length;
    }
    return unacked.length;
  }

  /** Hands every waiting stanza, in order, to another queue's buffer (a retired queue's successor). */
  moveTo(next: OutboundBuffer): void {
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    for (const item of items) next.push(parseStanza(item.xml));
  }

  /** The link failed (or the server stops): every waiting stanza goes back to its sender. */
  bounceAll(condition: StanzaErrorCondition, text: string): void {
    this.held = releaseHolds(this.held);
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    for (const { xml } of items) this.bounce(parseStanza(xml), condition, text);
  }

  /** The streams held while the link is congested (see HIGH_WATER). */
  private held: Holds;

  private flush(): void {
    const writer = this.writer;
    if (!writer) return;
    const waited = this.items.length > 0;
    while (this.items.length > 0 && writer.isOpen && !writer.congested && writer.smOutbound?.full !== true) {
      const item = this.items.shift();
      if (item === undefined) break;
      this.bytes -= item.bytes;
      this.write(writer, item.xml, item.kind, item.bytes);
    }
    // Drained: a fresh array, as a shifted-from one keeps the room it grew to (issue 9).
    if (waited && this.items.length === 0) this.items = [];
    writer.smOutbound?.scheduleAck();
    if (this.held !== undefined && this.items.length <= LOW_WATER) this.held = releaseHolds(this.held);
  }

  private write(writer: XmppTransport, xml: string, kind: string, bytes?: number): void {
    const written = writer.sendSerialized(xml);
    if (written > 0) {
      const sm = writer.smOutbound;
      if (sm !== undefined) {
        sm.track({ xml, bytes: written, kind });
        // A direct write (no flush follows to ask for acks).
        if (bytes === undefined) sm.scheduleAck();
      }
      this.sent++;
      this.counters?.stanza("s2s", "out", kind);
      this.counters?.remote(this.remote, "out");
      this.lastUsed = Date.now();
      writer.stanzasOut++;
      writer.lastStanzaAt = this.lastUsed;
    } else {
      // The connection is closing under us: keep the stanza for the next one.
      const size = bytes ?? Buffer.byteLength(xml);
      this.items.unshift({ xml, bytes: size, kind });
      this.bytes += size;
    }
  }
}
