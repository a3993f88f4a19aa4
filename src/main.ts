/**
 * Running the server as a process: load the configuration, start, and stop cleanly on SIGINT or
 * SIGTERM (streams end with <system-shutdown/>, then exit code 0). A second signal while draining
 * exits at once.
 */
import { ConfigError, loadConfigFile } from "./config/load.js";
import { createLogger, type LogFormat } from "./log.js";
import { startIdleCollector } from "./memory/idleCollector.js";
import { startServer } from "./server.js";

export async function runServer(configFile: string, logFormat: LogFormat): Promise<number> {
  let loaded;
  try {
    loaded = await loadConfigFile(configFile);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const log = createLogger({ level: config.general.loglevel, format: logFormat });
  const confLog = log.child("CONF");
  for (const warning of warnings) confLog.warning(warning.text);

  let server;
  try {
    server = await startServer(config, log);
  } catch (err) {
    log.error(`cannot start: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  log.notice(`Ferry serving ${config.general.hosts.join(", ")} (config ${configFile})`);
  const stopCollector = startIdleCollector(log);

  const running = server;
  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        log.warning(`${signal} again: exiting without waiting for streams to close`);
        process.exit(1);
      }
      signalled = true;
      stopCollector();
      log.notice(`${signal} received`);
      void running.stop().then(() => {
        log.notice("stopped");
        // Anything still holding the event loop open after a full drain is not worth waiting for.
        setTimeout(() => process.exit(0), 200).unref();
        resolve(0);
      });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    // SIGHUP: new certificates for new streams; established streams are not dropped.
    process.on("SIGHUP", () => {
      const result = running.reloadCertificates();
      if (result.ok) log.notice("SIGHUP: certificates reloaded");
      else log.error(`SIGHUP: certificates not reloaded, the old ones stay in use: ${result.error}`);
    });
  });
}
