/** XML namespaces Ferry speaks, named once. */
export const NS = {
  STREAM: "http://etherx.jabber.org/streams",
  SERVER: "jabber:server",
  CLIENT: "jabber:client",
  COMPONENT: "jabber:component:accept",
  DIALBACK: "jabber:server:dialback",
  DIALBACK_FEATURE: "urn:xmpp:features:dialback",
  STREAM_ERRORS: "urn:ietf:params:xml:ns:xmpp-streams",
  STANZA_ERRORS: "urn:ietf:params:xml:ns:xmpp-stanzas",
  TLS: "urn:ietf:params:xml:ns:xmpp-tls",
  SASL: "urn:ietf:params:xml:ns:xmpp-sasl",
  DISCO_INFO: "http://jabber.org/protocol/disco#info",
  DISCO_ITEMS: "http://jabber.org/protocol/disco#items",
  PING: "urn:xmpp:ping",
  COMMANDS: "http://jabber.org/protocol/commands",
  SM: "urn:xmpp:sm:3",
  DATA: "jabber:x:data",
  XML: "http://www.w3.org/XML/1998/namespace",
} as const;

/** The namespaces in which message/presence/iq are stanzas (RFC 6120 §4.9.3, XEP-0114). */
export const CONTENT_NAMESPACES: ReadonlySet<string> = new Set([NS.SERVER, NS.CLIENT, NS.COMPONENT]);
