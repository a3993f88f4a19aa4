/**
 * How a probe fails: a stable `code` for programs (documented in api.ts), the phase it failed in,
 * and a sentence for people. Codes: dns_nxdomain, dns_error, tcp_refused, tcp_timeout,
 * tcp_unreachable, tls_failed, cert_invalid, stream_error:<condition>, stream_closed,
 * connection_closed, no_stream_id, no_auth_method, sasl_failed, dialback_invalid, dialback_error,
 * timeout.
 */
export type Phase = "dns" | "tcp" | "tls" | "stream" | "auth" | "ping";

/** Milliseconds spent in each phase (absent: the phase did not happen), and in all. */
export type Timings = Partial<Record<Phase | "total", number>>;

export class ProbeFailure extends Error {
  constructor(
    readonly code: string,
    readonly phase: Phase,
    message: string,
  ) {
    super(message);
  }
}

/** An address the API may not connect to (private range and `probe_private` off). */
export class AddressRefused extends Error {
  readonly code = "address_private";
}

/** Milliseconds since `start`, rounded (performance.now() based). */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}
