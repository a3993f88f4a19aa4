/**
 * Ferry's own certificates (issue 5): the default one of each `[[listen.s2s]] tls` table and of
 * `[s2s] outgoing.tls`, and one per hosted domain (`general.domain_certfile`), chosen by SNI on
 * incoming connections and by our domain on outgoing ones.
 *
 * Everything is read and checked at load (readable files, key matching certificate, domain
 * certificates naming their domain, usable cipher list), so a bad file stops the server with the
 * option and file in the message. `reload()` (SIGHUP) reads it all again and swaps it in only when
 * all of it is good. Contexts are looked up at handshake time and never kept by a connection, so
 * new handshakes use the new certificates and established streams are untouched.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  createSecureContext,
  type SecureContext,
  type SecureContextOptions,
  type SecureVersion,
  type Server,
  type TLSSocketOptions,
  type TlsOptions,
} from "node:tls";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";

type ListenerTls = NonNullable<Config["listen"]["s2s"][number]["tls"]>;
type TlsSide = ListenerTls | Config["s2s"]["outgoing"]["tls"];

export type StoreLog = Pick<Logger, "info" | "warning">;

/** What `tls.connect` needs to present our certificate and apply our TLS settings. */
export interface ClientTlsOptions {
  /**
   * The fields below, built into a context once per certificate at load: `tls.connect` would
   * otherwise build one per connection (about 1 ms: key, certificate, CA list parsed again).
   */
  secureContext: SecureContext;
  cert?: Buffer;
  key?: Buffer;
  /** From `cacertfile`; absent means Node's default trust store. */
  ca?: Buffer[];
  ciphers?: string;
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
}

/** What `new TLSSocket(socket, { isServer: true, ...these })` needs for a STARTTLS upgrade. */
export type ServerSecureOptions = Required<
  Pick<TLSSocketOptions, "secureContext" | "SNICallback" | "requestCert" | "rejectUnauthorized">
>;

export type ReloadResult = { ok: true } | { ok: false; error: string };

type SniCallback = NonNullable<TlsOptions["SNICallback"]>;

const PROTOCOL = { "tlsv1.2": "TLSv1.2", "tlsv1.3": "TLSv1.3" } as const;

/** RFC 6125: a wildcard only as the whole left-most label. */
const HOST_CHECK = { wildcards: true, partialWildcards: false } as const;

/** A certificate (chain) and its private key, read and checked. */
interface Credential {
  readonly certfile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly x509: X509Certificate;
}

/** A side's TLS settings, common to all of its certificates. */
interface Settings {
  readonly ca: Buffer[] | undefined;
  readonly ciphers: string | undefined;
  readonly minVersion: SecureVersion;
  readonly maxVersion: SecureVersion;
}

interface DomainCredential {
  readonly domain: string;
  readonly credential: Credential;
}

interface ServerSide {
  readonly settings: Settings;
  readonly requestCert: boolean;
  /** The listener's `certfile`, else the first domain certificate: for clients without (known) SNI. */
  readonly fallback: Credential;
  readonly fallbackContext: SecureContext;
  readonly domains: readonly (DomainCredential & { readonly context: SecureContext })[];
}

interface Material {
  readonly domains: readonly DomainCredential[];
  /** Indexed like `listen.s2s`; undefined for listeners without a `tls` table. */
  readonly listeners: readonly (ServerSide | undefined)[];
  readonly outgoing: {
    readonly settings: Settings;
    readonly fallback: Credential | undefined;
    /** The client context of each certificate we may present, and of none. */
    readonly contexts: ReadonlyMap<Credential | undefined, SecureContext>;
  };
}

export class CertificateStore {
  private material: Material;
  private readonly servers = new Map<Server, number>();

  private constructor(
    private readonly config: Config,
    private readonly log: StoreLog,
  ) {
    this.material = loadMaterial(config, log);
  }

  /** Reads and checks every certificate; throws naming the option path and file on bad input. */
  static load(config: Config, log: StoreLog): CertificateStore {
    return new CertificateStore(config, log);
  }

  /**
   * Options for `tls.createServer` on a direct-TLS listener: the listener's default certificate and
   * an SNICallback choosing the domain certificate. Pair with `attachServer` so that a reload also
   * reaches clients that send no SNI. Undefined when the listener has no `tls` table.
   */
  serverOptions(listenerIndex: number): TlsOptions | undefined {
    const side = this.material.listeners[listenerIndex];
    if (side === undefined) return undefined;
    return {
      ...contextOptions(side.settings, side.fallback),
      SNICallback: this.sniCallback(listenerIndex),
      requestCert: side.requestCert,
      rejectUnauthorized: false, // the trust layer judges the peer's certificate
    };
  }

  /** Keeps `server`'s default certificate current across reloads, until the server closes. */
  attachServer(listenerIndex: number, server: Server): void {
    this.servers.set(server, listenerIndex);
    server.once("close", () => this.servers.delete(server));
  }

  /** Options for the server side of a STARTTLS upgrade on this listener; undefined without `tls`. */
  serverSecureOptions(listenerIndex: number): ServerSecureOptions | undefined {
    const side = this.material.listeners[listenerIndex];
    if (side === undefined) return undefined;
    return {
      secureContext: side.fallbackContext,
      SNICallback: this.sniCallback(listenerIndex),
      requestCert: side.requestCert,
      rejectUnauthorized: false,
    };
  }

  /**
   * The context this listener presents for `servername`: the domain certificate for that exact
   * domain, else one whose certificate names it (wildcards included), else the listener's default.
   */
  serverContext(listenerIndex: number, servername?: string): SecureContext | undefined {
    const side = this.material.listeners[listenerIndex];
    if (side === undefined) return undefined;
    const name = servername === undefined ? undefined : normalizeName(servername);
    if (name === undefined || name === "") return side.fallbackContext;
    const chosen =
      side.domains.find((d) => d.domain === name) ??
      side.domains.find((d) => d.credential.x509.checkHost(name, HOST_CHECK) !== undefined);
    return chosen?.context ?? side.fallbackContext;
  }

  /**
   * What we present when connecting out as `localDomain` (for SASL EXTERNAL): its domain
   * certificate (exact, then one naming it), else `s2s.outgoing.tls.certfile`, else none.
   */
  clientOptions(localDomain: string): ClientTlsOptions {
    const { settings, contexts } = this.material.outgoing;
    const credential = this.clientCredential(normalizeName(localDomain));
    return {
      // Every credential clientCredential can choose got its context at load.
      secureContext: contexts.get(credential) ?? createSecureContext(contextOptions(settings, credential)),
      minVersion: settings.minVersion,
      maxVersion: settings.maxVersion,
      ...(settings.ciphers === undefined ? {} : { ciphers: settings.ciphers }),
      ...(settings.ca === undefined ? {} : { ca: settings.ca }),
      ...(credential === undefined ? {} : { cert: credential.cert, key: credential.key }),
    };
  }

  /** Whether the certificate `clientOptions(domain)` presents names `domain`. */
  hasCertificateFor(domain: string): boolean {
    const name = normalizeName(domain);
    return this.clientCredential(name)?.x509.checkHost(name, HOST_CHECK) !== undefined;
  }

  /**
   * Reads every file again. On any failure the old certificates stay in use and the error is
   * returned (a bad SIGHUP never takes TLS down).
   */
  reload(): ReloadResult {
    let next: Material;
    try {
      next = loadMaterial(this.config, this.log);
    } catch (err) {
      const error = messageOf(err);
      this.log.warning(`TLS certificates not reloaded, the previous ones stay in use: ${error}`);
      return { ok: false, error };
    }
    this.material = next;
    for (const [server, index] of this.servers) {
      const side = next.listeners[index];
      if (side !== undefined) server.setSecureContext(contextOptions(side.settings, side.fallback));
    }
    this.log.info("TLS certificates reloaded");
    return { ok: true };
  }

  /** Seconds until the certificate we present for each of these domains expires (ours only). */
  expiry(domains: readonly string[], now = Date.now()): Map<string, number> {
    const seconds = new Map<string, number>();
    for (const domain of domains) {
      const credential = this.clientCredential(domain);
      if (credential?.x509.checkHost(domain, HOST_CHECK) === undefined) continue;
      seconds.set(domain, Math.round((Date.parse(credential.x509.validTo) - now) / 1000));
    }
    return seconds;
  }

  private clientCredential(name: string): Credential | undefined {
    const { domains, outgoing } = this.material;
    const chosen =
      domains.find((d) => d.domain === name) ??
      domains.find((d) => d.credential.x509.checkHost(name, HOST_CHECK) !== undefined);
    return chosen?.credential ?? outgoing.fallback;
  }

  /** Looks the context up at handshake time, so a reload reaches new handshakes. */
  private sniCallback(listenerIndex: number): SniCallback {
    return (servername, callback) => {
      callback(null, this.serverContext(listenerIndex, servername));
    };
  }
}

// --- loading ----------------------------------------------------------------------------------------

function loadMaterial(config: Config, log: StoreLog): Material {
  const domains = config.general.domain_certfile.map((entry, i): DomainCredential => {
    const where = `general.domain_certfile[${i}]`;
    const credential = loadCredential(where, entry.certfile, entry.keyfile, log);
    if (credential.x509.checkHost(entry.domain, HOST_CHECK) === undefined) {
      throw new Error(
        `${where}.certfile: ${entry.certfile} does not name ${entry.domain} (it names ${certNames(credential.x509)})`,
      );
    }
    return { domain: entry.domain, credential };
  });
  const listeners = config.listen.s2s.map((listener, i) =>
    listener.tls === undefined
      ? undefined
      : loadServerSide(`listen.s2s[${i}].tls`, listener.tls, domains, log),
  );
  const out = config.s2s.outgoing.tls;
  const settings = loadSettings("s2s.outgoing.tls", out);
  const fallback =
    out.certfile === undefined
      ? undefined
      : loadCredential("s2s.outgoing.tls", out.certfile, out.keyfile, log);
  // Built here, once: tls.connect would build one per connection from these options.
  const contexts = new Map<Credential | undefined, SecureContext>();
  const clientContext = (credential: Credential | undefined, option: string): void => {
    if (contexts.has(credential)) return;
    try {
      contexts.set(credential, createSecureContext(contextOptions(settings, credential)));
    } catch (err) {
      const what = credential === undefined ? "its TLS settings" : credential.certfile;
      throw new Error(`${option}: cannot use ${what} for outgoing connections: ${messageOf(err)}`, {
        cause: err,
      });
    }
  };
  clientContext(fallback, "s2s.outgoing.tls");
  clientContext(undefined, "s2s.outgoing.tls");
  domains.forEach((d, i) => {
    clientContext(d.credential, `general.domain_certfile[${i}].certfile`);
  });
  return { domains, listeners, outgoing: { settings, fallback, contexts } };
}

function loadServerSide(
  where: string,
  tls: ListenerTls,
  domains: readonly DomainCredential[],
  log: StoreLog,
): ServerSide {
  const settings = loadSettings(where, tls);
  const fallback =
    tls.certfile === undefined
      ? domains[0]?.credential
      : loadCredential(where, tls.certfile, tls.keyfile, log);
  if (fallback === undefined) {
    throw new Error(`${where}.certfile: missing certificate (set it or general.domain_certfile)`);
  }
  const context = (credential: Credential, option: string): SecureContext => {
    try {
      return createSecureContext(contextOptions(settings, credential));
    } catch (err) {
      throw new Error(`${option}: cannot use ${credential.certfile}: ${messageOf(err)}`, { cause: err });
    }
  };
  return {
    settings,
    requestCert: tls.verify_mode !== "none",
    fallback,
    fallbackContext: context(fallback, `${where}.certfile`),
    domains: domains.map((d, i) => ({
      ...d,
      context: context(d.credential, `general.domain_certfile[${i}].certfile`),
    })),
  };
}

function loadSettings(where: string, tls: TlsSide): Settings {
  const versions = [...tls.versions].sort();
  const settings: Settings = {
    ca: tls.cacertfile === undefined ? undefined : loadCa(`${where}.cacertfile`, tls.cacertfile),
    ciphers: tls.ciphers,
    minVersion: PROTOCOL[versions[0] ?? "tlsv1.2"],
    maxVersion: PROTOCOL[versions.at(-1) ?? "tlsv1.3"],
  };
  if (tls.ciphers !== undefined) {
    try {
      createSecureContext({ ciphers: tls.ciphers });
    } catch (err) {
      throw new Error(`${where}.ciphers: ${JSON.stringify(tls.ciphers)}: ${messageOf(err)}`, { cause: err });
    }
  }
  return settings;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/gu;

/** The CA file, one buffer per certificate, each checked to parse. */
function loadCa(option: string, file: string): Buffer[] {
  const blocks = readFile(option, file).toString("latin1").match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error(`${option}: ${file} holds no PEM certificate`);
  return blocks.map((block, i) => {
    const pem = Buffer.from(block, "latin1");
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new Error(`${option}: certificate ${i + 1} in ${file}: ${messageOf(err)}`, { cause: err });
    }
    return pem;
  });
}

/** Reads a certificate (chain) and its key (from `keyfile`, else from `certfile`) and checks the pair. */
function loadCredential(
  where: string,
  certfile: string,
  keyfile: string | undefined,
  log: StoreLog,
): Credential {
  const cert = readFile(`${where}.certfile`, certfile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${where}.certfile: ${certfile} holds no usable PEM certificate: ${messageOf(err)}`, {
      cause: err,
    });
  }
  const [keyOption, keyPath] = keyfile === undefined ? ["certfile", certfile] : ["keyfile", keyfile];
  const key = keyfile === undefined ? cert : readFile(`${where}.keyfile`, keyfile);
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    const hint = keyfile === undefined ? " (set keyfile when the key is in another file)" : "";
    throw new Error(`${where}.${keyOption}: no usable private key in ${keyPath}${hint}: ${messageOf(err)}`, {
      cause: err,
    });
  }
  if (!matches) {
    throw new Error(
      `${where}.${keyOption}: the key in ${keyPath} does not match the certificate in ${certfile}`,
    );
  }
  warnIfOutOfDate(where, certfile, x509, log);
  return { certfile, cert, key, x509 };
}

function warnIfOutOfDate(where: string, certfile: string, x509: X509Certificate, log: StoreLog): void {
  const now = Date.now();
  if (Date.parse(x509.validTo) < now) {
    log.warning(`${where}.certfile: ${certfile} expired on ${x509.validTo}; peers will refuse it`);
  } else if (Date.parse(x509.validFrom) > now) {
    log.warning(`${where}.certfile: ${certfile} is not valid before ${x509.validFrom}; peers will refuse it`);
  }
}

function readFile(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    // "ENOENT: no such file or directory, open '/x.pem'" → "ENOENT: no such file or directory"
    const reason = messageOf(err).replace(/, \w+ '.*'$/u, "");
    throw new Error(`${option}: cannot read ${file}: ${reason}`, { cause: err });
  }
}

// --- helpers ----------------------------------------------------------------------------------------

/** Our TLS settings and the certificate we present (a client may present none). */
function contextOptions(settings: Settings, credential: Credential | undefined): SecureContextOptions {
  return {
    ...(credential === undefined ? {} : { cert: credential.cert, key: credential.key }),
    minVersion: settings.minVersion,
    maxVersion: settings.maxVersion,
    ...(settings.ciphers === undefined ? {} : { ciphers: settings.ciphers }),
    ...(settings.ca === undefined ? {} : { ca: settings.ca }),
  };
}

/** The names a certificate is for, for error messages. */
function certNames(x509: X509Certificate): string {
  return x509.subjectAltName ?? (x509.subject.replace(/\n/gu, ", ") || "nothing");
}

/** Host names compare lower-cased, without a trailing root dot. */
function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/u, "");
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
