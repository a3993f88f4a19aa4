/**
 * `ferry probe DOMAIN [--from DOMAIN] [--tls] [--json] [--config FILE] [--timeout MS]`: the
 * diagnosis of POST /api/xmpp-s2s/diagnose, run in this process with the configuration's DNS
 * servers, certificates and dialback secret, printed as a report (or JSON). Exit code 0 only when
 * federation would work, 1 otherwise (a configuration error included), 2 for bad usage.
 *
 * From the command line two things cannot be seen: a remote checks our dialback key by asking the
 * server that serves --from, which confirms it only if it is a Ferry with the same `[s2s] shared`;
 * and a ping's answer goes to that server, not to this command. Both are said so in the report.
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { normalizeDomain } from "../config/leaves.js";
import { ConfigError, loadConfigFile } from "../config/load.js";
import { createLogger } from "../log.js";
import { loadTrust } from "../s2s/trust.js";
import { diagnose } from "./diagnose.js";
import { probeEnv } from "./probeEnv.js";
import { formatReport } from "./report.js";
import { MAX_TIMEOUT_MS, MIN_TIMEOUT_MS } from "./validate.js";

export interface ProbeCommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** The configuration used without --config (default: the shipped ferry.toml). */
  defaultConfig: string;
}

const SHIPPED_CONFIG = fileURLToPath(new URL("../../../ferry.toml", import.meta.url));

const USAGE = `usage: ferry probe DOMAIN [--from DOMAIN] [--tls] [--json] [--config FILE] [--timeout MS]
  Diagnoses federation with DOMAIN: DNS (SRV), every address, TLS and certificate, authentication.
  --from DOMAIN   authenticate as DOMAIN (default: the first of general.hosts)
  --tls           count a server without TLS as a problem
  --json          print the diagnosis as JSON
  --config FILE   DNS servers, certificates and dialback secret from FILE (default: ferry.toml)
  --timeout MS    time each connection may take (default 10000)
Exit code: 0 when federation would work, 1 when not, 2 for bad usage.`;

/** `argv`: the arguments after the word "probe". */
export async function runProbeCommand(argv: string[], io: Partial<ProbeCommandIo> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        from: { type: "string" },
        tls: { type: "boolean" },
        json: { type: "boolean" },
        config: { type: "string", short: "c" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [target, ...extra] = positionals;
  if (target === undefined || extra.length > 0) {
    stderr.write(
      `${target === undefined ? "a DOMAIN to probe is missing" : `unexpected "${extra.join(" ")}"`}\n${USAGE}\n`,
    );
    return 2;
  }
  const domain = normalizeDomain(target.toLowerCase());
  const from = values.from === undefined ? undefined : normalizeDomain(values.from.toLowerCase());
  const timeout = values.timeout === undefined ? 10_000 : Number(values.timeout);
  const usageError =
    domain === undefined
      ? `"${target}" is not a valid domain name`
      : values.from !== undefined && from === undefined
        ? `--from "${values.from}" is not a valid domain name`
        : !Number.isInteger(timeout) || timeout < MIN_TIMEOUT_MS || timeout > MAX_TIMEOUT_MS
          ? `--timeout must be an integer from ${MIN_TIMEOUT_MS} to ${MAX_TIMEOUT_MS} (milliseconds)`
          : undefined;
  if (usageError !== undefined || domain === undefined) {
    stderr.write(`${usageError ?? ""}\n${USAGE}\n`);
    return 2;
  }

  const file = values.config ?? io.defaultConfig ?? SHIPPED_CONFIG;
  const log = createLogger({ level: "warning", format: "text", stream: stderr });
  let loaded;
  try {
    loaded = await loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`${err.message}\n`);
    return 1;
  }
  const { config } = loaded;
  let trust;
  try {
    trust = loadTrust(config, log);
  } catch (err) {
    stderr.write(`${file}: certificates: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const fromDomain = from ?? config.general.hosts[0] ?? "localhost";
  const env = probeEnv(config, {
    trust,
    log,
    replies: undefined,
    allowPrivate: true,
    dialbackVerifiable: false,
  });
  const report = await diagnose(
    { domain, fromDomain, requireTls: values.tls === true ? true : undefined, timeout },
    env,
  );
  stdout.write(values.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}
