// The part of xmpp.js's @xmpp/component (untyped JavaScript) that the interop tests use.
declare module "@xmpp/component" {
  import type { EventEmitter } from "node:events";

  export interface XmlElement {
    name: string;
    attrs: Record<string, string>;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): XmlElement | undefined;
    getChildText(name: string, xmlns?: string): string | null;
    getChildren(name: string, xmlns?: string): XmlElement[];
    getText(): string;
    children: (XmlElement | string)[];
    toString(): string;
  }

  export interface Component extends EventEmitter {
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(element: XmlElement): Promise<void>;
    reconnect: { stop(): void };
    /** Sends an iq and resolves with its result; rejects with a StanzaError (`condition`, `type`). */
    iqCaller: {
      request(stanza: XmlElement, timeoutMs?: number): Promise<XmlElement>;
    };
  }

  export function component(options: { service: string; domain: string; password: string }): Component;
  export function xml(
    name: string,
    attrs?: Record<string, string>,
    ...children: (XmlElement | string)[]
  ): XmlElement;
}
