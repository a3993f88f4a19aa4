/**
 * Replies Ferry itself waits for: an iq sent from a hosted domain (the S2S probe's XEP-0199 ping)
 * is answered over the remote's own outgoing connection, since S2S streams are one-way, so the
 * result reaches the hosted domain through the normal incoming path. `hostedDomains` hands each iq
 * result or error to `take` first; one that matches a waiting id and its remote domain is consumed
 * here instead of being dropped.
 */
import type { Element } from "../xml/element.js";
import { domainOf } from "../xmpp/jid.js";
import { stanzaKind } from "../xmpp/stanzaErrors.js";

export class IqReplyTimeout extends Error {
  constructor(
    readonly id: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to iq ${id} within ${timeoutMs} ms`);
  }
}

interface Waiter {
  /** The remote domain the reply must come from. */
  from: string;
  resolve: (reply: Element) => void;
  timer: NodeJS.Timeout;
}

export class IqReplies {
  private readonly waiting = new Map<string, Waiter>();

  /**
   * Resolves with the result or error iq whose id is `id` and whose `from` is in domain `from`;
   * rejects with IqReplyTimeout after `timeoutMs`. Ids must be unguessable: a matching reply is
   * believed, and one remote must not be able to answer for a probe of another.
   */
  expect(id: string, from: string, timeoutMs: number): Promise<Element> {
    if (this.waiting.has(id)) return Promise.reject(new Error(`iq ${id} is already awaited`));
    return new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new IqReplyTimeout(id, timeoutMs));
      }, timeoutMs);
      // A probe waiting for its answer must not keep a stopping process alive.
      timer.unref();
      this.waiting.set(id, { from: from.toLowerCase(), resolve, timer });
    });
  }

  /** Hands a matching result/error iq to its waiter; false for anything else. */
  take(stanza: Element): boolean {
    if (stanzaKind(stanza) !== "iq") return false;
    const { type, id, from } = stanza.attrs;
    if ((type !== "result" && type !== "error") || id === undefined) return false;
    const waiter = this.waiting.get(id);
    if (waiter === undefined || from === undefined || domainOf(from) !== waiter.from) return false;
    this.waiting.delete(id);
    clearTimeout(waiter.timer);
    waiter.resolve(stanza);
    return true;
  }

  /** Stops waiting for `id` (its promise then never settles). */
  cancel(id: string): void {
    const waiter = this.waiting.get(id);
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    this.waiting.delete(id);
  }

  get size(): number {
    return this.waiting.size;
  }
}
