/**
 * How the admin views say things: seed 000's wording for the outgoing connection and dialback
 * states (the s2sOut machine's state names are the same words, ARCHITECTURE.md's table), and
 * the formats of its nodes ("IP/port" as `address;port`, times in UTC).
 */
import type { CertificateSummary } from "../../../machines/events.js";
import type { TransportEndpoints } from "../../net/transport.js";

/** seed 000 "Connection state", by the `link` region's leaf state of s2sOut. */
export const OUTGOING_STATE: Readonly<Record<string, string>> = {
  created: "created, not yet started to connect",
  connecting: "we started to connect, no connection yet",
  connected: "connected to the other host",
  gotStreamRoot: "we got peer's stream root",
  awaitingFeatures: "we are waiting for stream features",
  gotFeatures: "we got the stream features",
  tlsStarting: "we got the stream features, and are starting TLS",
  saslStarted: "we started to authenticate using sasl",
  saslFailed: "there was a SASL authentication failure",
  restarting: "successfully authenticated using SASL",
  authenticated: "successfully authenticated using SASL",
  ready: "we got the stream features (connection used to send dialback verifies)",
  dialbackSent: "we sent out a dialback request",
  dialbackSucceeded: "we had success with our dialback request",
  dialbackFailed: "dialback failed",
  closing: "closing the stream",
  droppedBySettings: "dropped because of settings",
  failed: "connection failed",
  closed: "closed",
};

/** seed 000 "Dialback state", by the `dialback` region's state of s2sOut. */
export const DIALBACK_STATE: Readonly<Record<string, string>> = {
  noRequest: "no dialback request, just sending verifies",
  couldSend: "we could send dialback requests, if we want to",
  wantToSend: "we want to send dialback requests, but cannot do that yet",
  sent: "we have sent a dialback request",
  ended: "the connection has ended",
};

/** Ferry's words for the incoming stream's states (seed 000 has none for incoming streams). */
export const INCOMING_STATE: Readonly<Record<string, string>> = {
  waitForStream: "waiting for the peer's stream root",
  awaitingAuth: "waiting for authentication (dialback or SASL EXTERNAL)",
  saslRestart: "SASL EXTERNAL succeeded, waiting for the stream restart",
  tlsStarting: "TLS handshake under way",
  established: "authenticated: stanzas may flow",
  closing: "closing the stream",
  closed: "closed",
};

/** The innermost state name of a (possibly nested) state value. */
export function leafOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null) {
    const [first] = Object.entries(value as Record<string, unknown>);
    return first === undefined ? "" : leafOf(first[1]);
  }
  return "";
}

export const utc = (ms: number): string => new Date(ms).toISOString();

export function duration(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** seed 000 "IP/port": local then remote, `address;port`, and whether TLS protects it. */
export function ipPort(endpoints: TransportEndpoints): string {
  const { local, remote, tls } = endpoints;
  return `${local.address};${local.port} <-> ${remote.address};${remote.port} (${
    tls === undefined ? "no TLS" : `TLS ${tls.version} ${tls.cipher}`
  })`;
}

export function tlsText(
  mode: "none" | "starttls" | "direct",
  endpoints: TransportEndpoints | undefined,
): string {
  if (mode === "none" || endpoints?.tls === undefined)
    return mode === "none" ? "none" : `${mode} (handshake under way)`;
  return `${mode === "direct" ? "direct TLS (XEP-0368)" : "STARTTLS"}, ${endpoints.tls.version}, ${endpoints.tls.cipher}`;
}

export function certificateText(certificate: CertificateSummary | undefined, encrypted: boolean): string {
  if (certificate === undefined) return encrypted ? "not checked" : "none (no TLS)";
  const names = certificate.names.length > 0 ? ` (names: ${certificate.names.join(", ")})` : "";
  if (certificate.ok) return `valid${names}`;
  return `invalid: ${certificate.reason ?? "?"}${certificate.detail === undefined ? "" : ` (${certificate.detail})`}${names}`;
}
