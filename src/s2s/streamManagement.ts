/**
 * XEP-0198 stream management on S2S streams, without resumption (s2s resumption is undefined):
 * the acknowledgements alone are what lets "nothing lost" hold when a peer dies with stanzas in
 * flight. Outgoing: every stanza written after `<enable/>` is kept until the peer's `<a h/>`
 * covers it; when the stream ends, those still unacknowledged go back to the queue, to be sent on
 * the next stream or bounced (never both, never neither). Incoming: we count the stanzas we
 * handled (routed) and answer `<r/>`, and also acknowledge after each burst we read, so that a
 * sender rarely holds a stanza we already delivered. An ack covers a stanza handed to a component
 * only once it is in the kernel's socket buffer: a crash of this process (SIGKILL) then cannot
 * lose a stanza its sender already let go of.
 *
 * Acks are per batch, never a statechart event per stanza. A sender asks after every ACK_BATCH
 * stanzas written, without waiting for the answer to its previous `<r/>` (answers overlap, each
 * acknowledging what the peer handled by then), else ACK_DELAY_MS after the first: a stanza at a
 * time (2,000/s) then costs no `<r/>` and `<a/>` pair of its own (issue 9). A peer that acks only
 * when asked (Prosody) is then never more than about a batch behind, which bounds the stanzas that
 * end up both delivered and bounced when it dies; a Ferry receiver also acks unasked.
 */
import { el, type Element } from "../xml/element.js";
import { NS } from "../xmpp/namespaces.js";
import type { Flushable } from "../routing/backpressure.js";

/** h is a 32-bit counter that wraps (XEP-0198 §4). */
const MOD = 2 ** 32;

/**
 * Unacknowledged stanzas allowed in flight: bounds the memory they hold and how many could end up
 * both delivered and bounced when a peer dies (its last acks are lost with the connection).
 */
export const SM_WINDOW = 1000;

/** Stanzas written since our last `<r/>` that make us ask again at once. */
const ACK_BATCH = 100;
/** Otherwise we ask this long after the first unacknowledged stanza. */
const ACK_DELAY_MS = 10;

/** A stanza as written: its text (no tree, see src/xml/parseStanza.ts), size and kind (metrics). */
export interface Written {
  xml: string;
  bytes: number;
  kind: string;
}

interface Writer {
  send(element: Element): boolean;
}

export class SmOutbound {
  /** "pending" after `<enable/>`, until `<enabled/>` or `<failed/>`. */
  state: "pending" | "on" | "off" = "pending";
  private unacked: Written[] = [];
  private acked = 0;
  /** Stanzas written since our last `<r/>`. */
  private sinceRequest = 0;
  /** Called when an ack frees room in the window (the queue writes what waited). */
  onRoom: (() => void) | undefined;

  constructor(
    private readonly writer: Writer,
    private readonly window = SM_WINDOW,
  ) {
    writer.send(el("enable", { xmlns: NS.SM }));
  }

  get pending(): number {
    return this.unacked.length;
  }

  /** The window is full: hold further stanzas until the peer acknowledges some. */
  get full(): boolean {
    return this.state !== "off" && this.unacked.length >= this.window;
  }

  /** A stanza was written after `<enable/>`: the peer counts it. */
  track(item: Written): void {
    if (this.state === "off") return;
    this.unacked.push(item);
    this.sinceRequest++;
  }

  /** Asks for an ack now, if anything was written since we last asked. */
  requestAck(): void {
    this.cancelTimer();
    if (this.state === "off" || this.sinceRequest === 0 || this.unacked.length === 0) return;
    this.sinceRequest = 0;
    this.writer.send(el("r", { xmlns: NS.SM }));
  }

  private timer: NodeJS.Timeout | undefined;

  /** After writes: asks at once when ACK_BATCH were written since the last `<r/>`, else within ACK_DELAY_MS. */
  scheduleAck(): void {
    if (this.state === "off" || this.sinceRequest === 0) return;
    if (this.sinceRequest >= ACK_BATCH) this.requestAck();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.requestAck();
      }, ACK_DELAY_MS);
      this.timer.unref();
    }
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** `<enabled/>`, `<failed/>`, `<a/>` or `<r/>` from the peer; false if it broke the protocol. */
  receive(element: Element): boolean {
    switch (element.local) {
      case "enabled":
        if (this.state === "pending") this.state = "on";
        this.requestAck();
        return true;
      case "failed":
        // Not enabled after all: what was written is as sent without stream management.
        this.state = "off";
        this.unacked = [];
        this.cancelTimer();
        this.onRoom?.();
        return true;
      case "a":
        return this.ack(element.attrs.h);
      case "r":
        // We receive no stanzas on an outgoing S2S stream.
        this.writer.send(el("a", { xmlns: NS.SM, h: "0" }));
        return true;
      default:
        return true;
    }
  }

  /** The stream is over: what the peer did not acknowledge, oldest first. */
  takeUnacked(): Written[] {
    const items = this.state === "off" ? [] : this.unacked;
    this.unacked = [];
    this.state = "off";
    this.cancelTimer();
    return items;
  }

  private ack(h: string | undefined): boolean {
    const value = Number(h);
    if (h === undefined || !/^\d+$/.test(h) || value >= MOD) return false;
    const count = (value - this.acked + MOD) % MOD;
    // XEP-0198 §4: acknowledging more than was sent is an <undefined-condition/> stream error.
    if (count > this.unacked.length) return false;
    const wasFull = this.full;
    // All acknowledged (the usual case once a burst is over): a fresh array, as a spliced one keeps
    // the room it grew to (up to 8 KiB for a full window) for the link's idle life (issue 9).
    if (count === this.unacked.length) this.unacked = [];
    else this.unacked.splice(0, count);
    this.acked = value;
    if (wasFull && this.unacked.length < this.window) this.onRoom?.();
    return true;
  }
}

/** Stanzas handled up to `count`, acknowledged once `waiting` sinks have flushed them. */
interface AckBatch {
  count: number;
  waiting: number;
}

export class SmInbound {
  private handledCount = 0;
  private lastAcked = 0;
  private scheduled = false;
  /** Sinks handed a stanza since the last batch was closed (usually one: the component). */
  private sinks: Flushable[] = [];
  /** Closed batches still waiting for a flush, oldest first; acks follow their order. */
  private batches: AckBatch[] = [];
  private acksSent = 0;

  constructor(private readonly writer: Writer) {
    writer.send(el("enabled", { xmlns: NS.SM }));
  }

  /** A stanza from the peer was routed (delivered, queued or bounced): it is ours now. */
  handled(): void {
    this.handledCount = (this.handledCount + 1) % MOD;
    if (this.scheduled) return;
    // Acknowledge once per burst read (same tick), unasked: XEP-0198 allows an <a/> at any time.
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.closeBatch();
    });
  }

  /** The stanza being handled went to `sink`: the ack covering it waits until the sink flushed it. */
  dependOn(sink: Flushable): void {
    const sinks = this.sinks;
    if (sinks.length === 0 || (sinks[sinks.length - 1] !== sink && !sinks.includes(sink))) sinks.push(sink);
  }

  receive(element: Element): boolean {
    if (element.local === "r") {
      // Answered at once (XEP-0198 §4): with what has left our memory, if not everything has yet.
      const sent = this.acksSent;
      this.closeBatch();
      if (this.acksSent === sent) this.sendAck(this.lastAcked);
      return true;
    }
    // Acks for us (we send no stanzas on an incoming stream) and a second <enable/> are ignored.
    if (element.local === "enable") {
      this.writer.send(el("failed", { xmlns: NS.SM }, el("unexpected-request", { xmlns: NS.STANZA_ERRORS })));
    }
    return true;
  }

  /**
   * What was handled so far becomes a batch, acknowledged once every sink it went to has flushed
   * it and every earlier batch has been acknowledged (h only grows, and never covers a stanza
   * still in our memory).
   */
  private closeBatch(): void {
    const sinks = this.sinks;
    if (sinks.length === 0) {
      // Nothing new to wait for: acknowledged now, or with the newest batch still waiting (which
      // keeps the list from growing under a flood of <r/>).
      const newest = this.batches.at(-1);
      if (newest === undefined) this.ackUpTo(this.handledCount);
      else newest.count = this.handledCount;
      return;
    }
    this.sinks = [];
    const batch: AckBatch = { count: this.handledCount, waiting: sinks.length };
    this.batches.push(batch);
    for (const sink of sinks) {
      sink.afterFlush(() => {
        batch.waiting--;
        this.ackFlushed();
      });
    }
  }

  /** Acknowledges the leading batches whose sinks have all flushed. */
  private ackFlushed(): void {
    let count: number | undefined;
    while (this.batches.length > 0 && this.batches[0]?.waiting === 0) count = this.batches.shift()?.count;
    if (count !== undefined) this.ackUpTo(count);
  }

  private ackUpTo(count: number): void {
    if (count !== this.lastAcked) this.sendAck(count);
  }

  private sendAck(count: number): void {
    this.acksSent++;
    this.lastAcked = count;
    this.writer.send(el("a", { xmlns: NS.SM, h: String(count) }));
  }
}
