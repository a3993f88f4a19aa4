/**
 * A light XML element tree: what the stream parser produces for every depth-1 element and what
 * the serializer writes. Deliberately small (no DOM): stanzas are routed, not edited.
 *
 * `name` is the qualified name as written (`db:result`, `message`). `attrs` holds the attributes as
 * written, namespace declarations included, so that serializing an element reproduces its meaning
 * on any stream. `ns` is the resolved namespace URI: set by the parser; for elements built in code it
 * is taken from their own `xmlns`/`xmlns:prefix` attribute, or "" meaning "the stream's content
 * namespace" (jabber:server, jabber:component:accept, jabber:client).
 *
 * A depth-1 element from the parser also keeps `source`, its text exactly as received, which the
 * serializer writes back unchanged: a routed stanza is neither re-escaped nor rebuilt. Change a
 * parsed element only through `deleteAttr` and `append`, which drop `source`.
 */
export type Node = Element | string;

export class Element {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: Node[];
  readonly ns: string;
  /** The element's text as received (a depth-1 element from the stream parser), while unchanged. */
  source: string | undefined;

  constructor(
    name: string,
    attrs: Record<string, string> = {},
    children: Node[] = [],
    ns?: string,
    source?: string,
  ) {
    this.name = name;
    this.attrs = attrs;
    this.children = children;
    this.ns = ns ?? declaredNamespace(name, attrs);
    this.source = source;
  }

  /** The local part of the name (`result` for `db:result`). */
  get local(): string {
    const colon = this.name.indexOf(":");
    return colon === -1 ? this.name : this.name.slice(colon + 1);
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** First child element with this local name and (when given) namespace. */
  getChild(local: string, ns?: string): Element | undefined {
    for (const child of this.children) {
      if (typeof child !== "string" && child.local === local && (ns === undefined || child.ns === ns)) {
        return child;
      }
    }
    return undefined;
  }

  getChildren(local?: string, ns?: string): Element[] {
    const found: Element[] = [];
    for (const child of this.children) {
      if (
        typeof child !== "string" &&
        (local === undefined || child.local === local) &&
        (ns === undefined || child.ns === ns)
      ) {
        found.push(child);
      }
    }
    return found;
  }

  /** Concatenated character data of the direct children. */
  text(): string {
    let text = "";
    for (const child of this.children) if (typeof child === "string") text += child;
    return text;
  }

  /** Appends a child and returns this element, for building trees in code. */
  append(...nodes: Node[]): this {
    this.children.push(...nodes);
    this.source = undefined;
    return this;
  }

  /** Removes an attribute (the element no longer reads as it was received). */
  deleteAttr(name: string): void {
    if (!(name in this.attrs)) return;
    Reflect.deleteProperty(this.attrs, name);
    this.source = undefined;
  }
}

function declaredNamespace(name: string, attrs: Record<string, string>): string {
  const colon = name.indexOf(":");
  if (colon === -1) return attrs.xmlns ?? "";
  return attrs[`xmlns:${name.slice(0, colon)}`] ?? "";
}

/** Shorthand for building trees in code: `el("iq", { type: "get" }, el("ping", { xmlns: NS.PING }))`. */
export function el(name: string, attrs: Record<string, string> = {}, ...children: Node[]): Element {
  return new Element(name, attrs, children);
}
