/**
 * Typed control events shared by the machines. Only control flow crosses these (stream headers,
 * negotiation elements, socket state, shutdown); stanzas on an established stream never do.
 */
import type { Element } from "../src/xml/element.js";
import type { StreamErrorCondition } from "../src/xmpp/streamErrors.js";

/** The attributes of a peer's stream header that negotiation looks at. */
export interface PeerStreamHeader {
  /** Content namespace (the header's default xmlns): jabber:server, jabber:component:accept… */
  defaultNs: string;
  /** Resolved namespace of the root element; must be http://etherx.jabber.org/streams. */
  ns: string;
  to?: string;
  from?: string;
  id?: string;
  version?: string;
  /** Namespace prefixes declared on the header, e.g. { db: "jabber:server:dialback" }. */
  prefixes: Record<string, string>;
  /** Every attribute as written (extensions such as MongooseIM's `is_subdomain` live here). */
  attrs: Record<string, string>;
}

/** What a transport (socket + parser, in src/net) tells the machine that owns it. */
export type TransportEvent =
  | { type: "STREAM_HEADER"; header: PeerStreamHeader }
  | { type: "ELEMENT"; element: Element }
  | { type: "STREAM_END" }
  /** The peer broke the stream (bad XML, or a protocol violation seen on the stanza path). */
  | { type: "STREAM_ERROR"; condition: StreamErrorCondition; text: string }
  | { type: "SOCKET_CLOSED"; error?: string }
  /** TLS is up; as the receiving side the transport also draws the restarted stream's new id. */
  | { type: "TLS_ESTABLISHED"; streamId?: string }
  | { type: "TLS_FAILED"; error: string }
  /** Nothing was sent or received for the WATCH_IDLE time (stream_timeout). */
  | { type: "IDLE" };

/** What a machine asks its transport to do. */
export type TransportCommand =
  | { type: "OPEN_STREAM"; attrs: StreamOpenAttrs }
  | { type: "SEND"; element: Element }
  /** Ends the stream: an optional stream error, then </stream:stream>, then the socket closes. */
  | { type: "CLOSE_STREAM"; error?: { condition: StreamErrorCondition; text?: string } }
  /** RFC 6120 stream restart: a fresh parser after TLS or SASL success. */
  | { type: "RESET_PARSER" }
  /** Upgrade the connection in place (after <proceed/>); the stream restarts. */
  | { type: "START_TLS"; role: "client" | "server"; servername?: string; identity?: string }
  /** Report IDLE after this long without traffic in either direction. */
  | { type: "WATCH_IDLE"; ms: number };

export interface StreamOpenAttrs {
  defaultNs: string;
  from?: string;
  to?: string;
  id?: string;
  /** Omitted for a pre-1.0 peer (RFC 6120 §4.7.5: answer with the lower version). */
  version?: string;
  extraNamespaces?: Record<string, string>;
}

/** Sent by the router to every child when the server stops. */
export interface ShutdownEvent {
  type: "SHUTDOWN";
}

/** An administrator closes this stream (seed 000's browse tree, the HTTP API): an orderly close. */
export interface AdminCloseEvent {
  type: "ADMIN_CLOSE";
  /** Who asked, for the log. */
  by: string;
}

/** What machines emit for the log (machines do no I/O; src/ writes these lines). */
export interface LogEmitted {
  type: "log";
  level: "error" | "warning" | "notice" | "info" | "debug";
  message: string;
}

/** A peer certificate's verdict, as kept on the connection (RFC 6125 checks made in src/tls). */
export interface CertificateSummary {
  ok: boolean;
  /** expired, not-yet-valid, self-signed, untrusted-chain, name-mismatch, eku, no-certificate */
  reason?: string;
  detail?: string;
  /** The identities the certificate names. */
  names: string[];
}
