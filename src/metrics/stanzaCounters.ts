/**
 * Per-stanza and per-byte counters as plain integers (a labelled prom-client increment per stanza
 * costs more than the rest of the hot path, ARCHITECTURE.md principle 3); exported at scrape time
 * by src/metrics/prometheus.ts.
 */
export type DropReason =
  /** RFC 6120 §8.3.1 / principle 4: an error or result that cannot be bounced had nowhere to go. */
  | "unbounceable"
  /** RFC 6121 §8.5: presence to an account or domain that does not take it is ignored. */
  | "presence-ignored";

export type ConnType = "s2s" | "component";
export type Direction = "in" | "out";
export type TlsLabel = "none" | "starttls" | "direct";

/** seed-style outcomes of one outgoing connection attempt (DNS, TCP, TLS, then negotiation). */
export type ConnectResult =
  | "ok"
  | "dns_nxdomain"
  | "dns_timeout"
  | "tcp_refused"
  | "tcp_timeout"
  | "tls_failed"
  | "cert_invalid"
  | "auth_failed"
  | "stream_error"
  | "policy_denied";

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** One counter map per connection type and direction, so the hot path builds no key strings. */
type Split = Record<ConnType, Record<Direction, Map<string, number>>>;

function split(): Split {
  return {
    s2s: { in: new Map(), out: new Map() },
    component: { in: new Map(), out: new Map() },
  };
}

/** The split counters under one "conn_type direction label" key each, for the scrape. */
function joined(counts: Split): Map<string, number> {
  const out = new Map<string, number>();
  for (const [connType, byDirection] of Object.entries(counts)) {
    for (const [direction, byLabel] of Object.entries(byDirection)) {
      for (const [label, n] of byLabel) out.set(`${connType} ${direction} ${label}`, n);
    }
  }
  return out;
}

export class StanzaCounters {
  readonly dropped = new Map<string, number>();
  readonly bounced = new Map<string, number>();
  private readonly stanzaCounts = split();
  private readonly byteCounts = split();
  readonly connectAttempts = new Map<string, number>();
  /** Keyed "remote direction", only for `[metrics] per_domain` domains. */
  readonly remoteStanzas = new Map<string, number>();

  /** `[metrics] per_domain`: the only remote domains that may appear in labels. */
  constructor(private readonly perDomain: ReadonlySet<string> = new Set()) {}

  /** Counts a stanza exchanged with a remote domain, if that domain was opted into its own series. */
  remote(domain: string, direction: Direction): void {
    if (this.perDomain.has(domain)) bump(this.remoteStanzas, `${domain} ${direction}`);
  }

  drop(reason: DropReason): void {
    bump(this.dropped, reason);
  }

  bounce(condition: string): void {
    bump(this.bounced, condition);
  }

  stanza(connType: ConnType, direction: Direction, kind: string): void {
    bump(this.stanzaCounts[connType][direction], kind);
  }

  traffic(connType: ConnType, direction: Direction, tls: TlsLabel, bytes: number): void {
    bump(this.byteCounts[connType][direction], tls, bytes);
  }

  /** Keyed "conn_type direction kind". */
  get stanzas(): Map<string, number> {
    return joined(this.stanzaCounts);
  }

  /** Keyed "conn_type direction tls". */
  get bytes(): Map<string, number> {
    return joined(this.byteCounts);
  }

  connectAttempt(result: ConnectResult): void {
    bump(this.connectAttempts, result);
  }
}
