/** What every probe operation needs from Ferry's configuration and running parts. */
import type { IssuedKeys } from "../s2s/issuedKeys.js";
import type { Config } from "../config/schema.js";
import { resolveOptionsFromConfig, type ResolveOptions } from "../dns/resolve.js";
import type { Logger } from "../log.js";
import type { IqReplies } from "../routing/iqReplies.js";
import type { Trust } from "../s2s/trust.js";

export interface ProbeEnv {
  /** `general.hosts`: the domains a ping or diagnose may authenticate as (through the API). */
  hosts: readonly string[];
  /** `[s2s] shared`: dialback keys are made with it, so Ferry's db:verify handler confirms them. */
  secret: string;
  /** Our certificates (SASL EXTERNAL) and how remote ones are judged (`outgoing.tls`). */
  trust: Pick<Trust, "certificates" | "outgoing" | "requireFor">;
  /** `outgoing.dns.*`, `ip_versions`, `port`, `address`: where and how to look names up. */
  resolve: ResolveOptions;
  maxStanzaSize: number;
  /** `outgoing.tls.mode`: with anything but "starttls", a server without TLS cannot be reached. */
  tlsMode: Config["s2s"]["outgoing"]["tls"]["mode"];
  log: Logger;
  /**
   * The table the server hands iq replies to (hostedDomains), when the probe runs inside a server:
   * a remote answers a ping over its own connection to us. Without it (the CLI) no ping is sent.
   */
  replies: IqReplies | undefined;
  /** Connect to private and loopback addresses (`probe_private`; always for the CLI). */
  allowPrivate: boolean;
  /**
   * Whether a remote asking our domain's server to verify a dialback key gets an answer made with
   * this secret: true inside the server (which remembers the probe's keys as sent); never from the CLI.
   */
  dialbackVerifiable: boolean;
  /** The server's table of dialback keys it sent (its db:verify answers confirm only those). */
  issuedKeys?: IssuedKeys | undefined;
}

export function probeEnv(
  config: Config,
  parts: Pick<ProbeEnv, "trust" | "log" | "replies" | "allowPrivate" | "dialbackVerifiable" | "issuedKeys">,
): ProbeEnv {
  const outgoing = config.s2s.outgoing;
  return {
    hosts: config.general.hosts,
    secret: config.s2s.shared,
    resolve: resolveOptionsFromConfig(outgoing),
    maxStanzaSize: outgoing.max_stanza_size,
    tlsMode: outgoing.tls.mode,
    ...parts,
  };
}
