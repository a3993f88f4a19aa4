// The part of xmpp.js's @xmpp/component (untyped JavaScript) that the interop tests use.
declare module "@xmpp/component" {
  import type { EventEmitter } from "node:events";

  export interface XmlElement {
    name: string;
    attrs: Record<string, string>;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): XmlElement | undefined;
    getChildText(name: string, xmlns?: string): string | null;
    toString(): string;
  }

  export interface Component extends EventEmitter {
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(element: XmlElement): Promise<void>;
    reconnect: { stop(): void };
  }

  export function component(options: { service: string; domain: string; password: string }): Component;
  export function xml(
    name: string,
    attrs?: Record<string, string>,
    ...children: (XmlElement | string)[]
  ): XmlElement;
}
