/**
 * Logging: winston with syslog levels (MongooseIM's `loglevel` names map onto them) and a tag per
 * line in the manner of CommuniGate Pro's System Log, so an operator can grep one kind of traffic:
 *   XMPPI incoming S2S, XMPPO outgoing S2S, XMPPS client, COMP component, plus our own SYS/HTTP.
 * Each line also carries the actor id and that actor's current state when there is one.
 */
import winston from "winston";

export type LogTag = "XMPPI" | "XMPPO" | "XMPPS" | "COMP" | "SYS" | "HTTP" | "CONF";
export type LogFormat = "text" | "json";
/** MongooseIM's `[general] loglevel` values. */
export type MongooseLogLevel =
  | "none"
  | "emergency"
  | "alert"
  | "critical"
  | "error"
  | "warning"
  | "notice"
  | "info"
  | "debug"
  | "all"
  // CommuniGate Pro's names (seed 001): Problems, Major, Low-Level, All Info.
  | "problems"
  | "major"
  | "low-level"
  | "all-info";
export type LogLevel = "emerg" | "alert" | "crit" | "error" | "warning" | "notice" | "info" | "debug";

const LEVEL_OF: Record<MongooseLogLevel, LogLevel | "silent"> = {
  none: "silent",
  emergency: "emerg",
  alert: "alert",
  critical: "crit",
  error: "error",
  warning: "warning",
  notice: "notice",
  info: "info",
  debug: "debug",
  all: "debug",
  problems: "warning",
  major: "info",
  "low-level": "debug",
  "all-info": "debug",
};

export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  warning(message: string, fields?: Record<string, unknown>): void;
  notice(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  /** A logger for one actor: every line names it and, through `state()`, its current state. */
  child(tag: LogTag, actor?: string, state?: () => string | undefined): Logger;
  isDebug(): boolean;
}

/** The fields every line may carry, as `wrap` below puts them there. */
interface LineFields {
  level: string;
  message: unknown;
  timestamp?: string;
  tag?: string;
  actor?: string;
  state?: string;
  [field: string]: unknown;
}

const textFormat = winston.format.printf((info) => {
  const { level, message, timestamp, tag, actor, state, ...rest } = info as LineFields;
  const head = [timestamp ?? "", level.toUpperCase().padEnd(7), tag ?? "SYS"];
  if (actor !== undefined) head.push(actor);
  if (state !== undefined) head.push(`[${state}]`);
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
  return `${head.join(" ")} ${String(message)}${extra}`;
});

export interface LogOptions {
  level: MongooseLogLevel;
  format: LogFormat;
  /** Defaults to stderr, so stdout stays free for `check-config` output. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LogOptions): Logger {
  const level = LEVEL_OF[options.level];
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console({ stderrLevels: Object.keys(winston.config.syslog.levels) });
  const winstonLogger = winston.createLogger({
    levels: winston.config.syslog.levels,
    level: level === "silent" ? "emerg" : level,
    silent: level === "silent",
    format: winston.format.combine(
      winston.format.timestamp(),
      options.format === "json" ? winston.format.json() : textFormat,
    ),
    // winston's transports are typed against a second copy of winston-transport's class.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [transport],
  });
  return new ActorLogger(winstonLogger, "SYS", undefined, undefined, winstonLogger.isLevelEnabled("debug"));
}

/**
 * Methods on the prototype, not closures per instance: every connection and queue has a logger of
 * its own, and eight closures made per logger cost about 0.6 KiB per link (issue 9).
 */
class ActorLogger implements Logger {
  constructor(
    private readonly target: winston.Logger,
    private readonly tag: LogTag,
    private readonly actor: string | undefined,
    private readonly state: (() => string | undefined) | undefined,
    private readonly debugEnabled: boolean,
  ) {}

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (!this.target.isLevelEnabled(level)) return;
    const current = this.state?.();
    this.target.log({
      level,
      message,
      tag: this.tag,
      ...(this.actor === undefined ? {} : { actor: this.actor }),
      ...(current === undefined ? {} : { state: current }),
      ...fields,
    });
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.log("error", message, fields);
  }
  warning(message: string, fields?: Record<string, unknown>): void {
    this.log("warning", message, fields);
  }
  notice(message: string, fields?: Record<string, unknown>): void {
    this.log("notice", message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.log("info", message, fields);
  }
  debug(message: string, fields?: Record<string, unknown>): void {
    this.log("debug", message, fields);
  }
  child(tag: LogTag, actor?: string, state?: () => string | undefined): Logger {
    return new ActorLogger(this.target, tag, actor, state ?? this.state, this.debugEnabled);
  }
  isDebug(): boolean {
    return this.debugEnabled;
  }
}

/** A logger that drops everything: for unit tests that do not look at logs. */
export const silentLogger: Logger = createLogger({ level: "none", format: "text" });
