// Configuration problems: each names the file and line, the option path, and what is allowed.

export interface ConfigProblem {
  readonly file: string;
  /** 1-based; undefined when the option is not in the file at all (and no enclosing table is). */
  readonly line: number | undefined;
  /** Option path such as `listen.s2s[1].tls.certfile`; empty for problems with the whole file. */
  readonly path: string;
  readonly message: string;
}

export interface ConfigWarning extends ConfigProblem {
  /** `ferry.toml:7: listen.s2s[0].num_acceptors: …`, ready for a log line. */
  readonly text: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return p.path === "" ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";

  constructor(
    readonly problems: readonly ConfigProblem[],
    /** Overrides the generated message (TOML syntax errors carry the offending lines). */
    message?: string,
  ) {
    const [only] = problems;
    super(
      message ??
        (problems.length === 1 && only !== undefined
          ? `invalid configuration: ${formatProblem(only)}`
          : `invalid configuration (${problems.length} problems):\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`),
    );
  }
}
