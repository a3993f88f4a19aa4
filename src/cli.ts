#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=20
/**
 * The `ferry` command.
 *   ferry [--config FILE] [--log-format text|json]   run the server (default: the shipped ferry.toml)
 *   ferry check-config FILE                            validate FILE, print the effective config
 *   ferry connections | ferry link DOMAIN              a running server's S2S connections / link history
 *   ferry probe DOMAIN [--from DOMAIN] [--tls] [--json] why federation with DOMAIN works or not
 * Exit codes: 0 success, 1 bad configuration or start-up failure, 2 bad usage.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfigFile } from "./config/load.js";
import { formatEffectiveConfig } from "./config/effective.js";
import { createLogger, type LogFormat } from "./log.js";
import { runServer } from "./main.js";
import { runIntrospectionCommand } from "./admin/introspection/cliCommands.js";
import { runProbeCommand } from "./probe/cli.js";

/** The embedded default configuration, shipped at the package root. */
export const DEFAULT_CONFIG = fileURLToPath(new URL("../../ferry.toml", import.meta.url));

const USAGE = `usage:
  ferry [--config FILE] [--log-format text|json]   run the server (default config: ${DEFAULT_CONFIG})
  ferry check-config FILE                            validate FILE and print the effective configuration
  ferry connections [--config FILE | --url URL] [--token TOKEN] [--json]
                                                     a running server's S2S connections (HTTP API)
  ferry link DOMAIN [--config FILE | --url URL] [--token TOKEN] [--json]
                                                     the recent link attempts towards DOMAIN
  ferry probe DOMAIN [--from DOMAIN] [--tls] [--json] [--config FILE]
                                                     diagnose federation with DOMAIN (exit 0: it works)
  ferry --help | --version`;

async function main(argv: string[]): Promise<number> {
  // Client commands have their own options.
  const [first, ...args] = argv;
  if (first === "connections" || first === "link")
    return runIntrospectionCommand(first, args, DEFAULT_CONFIG);
  if (first === "probe") return runProbeCommand(args, { defaultConfig: DEFAULT_CONFIG });
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        "log-format": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version === true) {
    process.stdout.write("ferry 0.1.0\n");
    return 0;
  }
  const logFormat = values["log-format"] ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    process.stderr.write(`--log-format must be "text" or "json", not "${logFormat}"\n`);
    return 2;
  }

  const [command, ...rest] = positionals;
  if (command === "check-config") {
    const file = rest[0] ?? values.config;
    if (file === undefined || rest.length > 1) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    return checkConfig(file);
  }
  if (command !== undefined) {
    process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  return runServer(values.config ?? DEFAULT_CONFIG, logFormat satisfies LogFormat);
}

async function checkConfig(file: string): Promise<number> {
  try {
    const { config, warnings } = await loadConfigFile(file);
    for (const warning of warnings) process.stderr.write(`warning: ${warning.text}\n`);
    process.stdout.write(formatEffectiveConfig(config));
    process.stderr.write(`${file}: configuration is valid\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // A running server sets its own exit code when it stops; only one-shot commands end here.
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    createLogger({ level: "error", format: "text" }).error(
      `fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exitCode = 1;
  },
);
