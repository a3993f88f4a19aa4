/**
 * A real Prometheus (Debian's `prometheus` package) for tests: started by PID from a config and data
 * folder in a RunDir on its own loopback address, queried through its HTTP API; and `promtool`.
 * Also the PromQL to ask it: a Grafana dashboard's queries with their variables substituted, and
 * alert conditions without their thresholds.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { ensureDebianPackage } from "./debian.js";
import { assertFree, spawnPeer, waitForPort, type PeerProcess, type RunDir } from "./peers/runDir.js";

export const PROMETHEUS_BIN = "/usr/bin/prometheus";
export const PROMTOOL_BIN = "/usr/bin/promtool";

/** Installs Debian's `prometheus` (it ships both binaries) when either is missing. */
export function ensurePrometheus(): void {
  ensureDebianPackage("prometheus", () => existsSync(PROMETHEUS_BIN) && existsSync(PROMTOOL_BIN));
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with `args`, feeding `stdin` (e.g. a scraped /metrics text for `check metrics`). */
export function promtool(args: string[], stdin = ""): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL_BIN, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => {
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

/** One series of an instant query: its labels and, for vectors, its value. */
export interface Series {
  metric: Record<string, string>;
  value?: [number, string];
}

export type QueryResult = { ok: true; resultType: string; series: Series[] } | { ok: false; error: string };

/** A rule as `/api/v1/rules` reports it once Prometheus has loaded and evaluated it. */
export interface LoadedRule {
  group: string;
  name: string;
  type: "alerting" | "recording";
  /** The expression as Prometheus prints it back (normalized spacing and quoting). */
  query: string;
  health: string;
  lastError?: string;
}

interface ApiResponse<T> {
  status: "success" | "error";
  data?: T;
  errorType?: string;
  error?: string;
}

export interface PrometheusOptions {
  runDir: RunDir;
  /** A loopback address no other test file uses, e.g. 127.0.0.61. */
  address: string;
  port: number;
  job: string;
  /** host:port of each /metrics endpoint. */
  targets: string[];
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval. */
  interval?: string;
}

export class Prometheus {
  readonly url: string;

  private constructor(
    private readonly process: PeerProcess,
    address: string,
    port: number,
  ) {
    this.url = `http://${address}:${port}`;
  }

  /** Writes prometheus.yml and a data folder into the run folder, starts Prometheus, waits until ready. */
  static async start(options: PrometheusOptions): Promise<Prometheus> {
    const { runDir, address, port, job, targets, ruleFiles = [], interval = "1s" } = options;
    await assertFree(address, port);
    // JSON is YAML: no YAML writer needed.
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: ruleFiles,
      scrape_configs: [{ job_name: job, static_configs: [{ targets }] }],
    };
    const configFile = runDir.file("prometheus.yml");
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const data = runDir.file("prometheus-data");
    mkdirSync(data, { recursive: true });
    const process = spawnPeer({
      runDir,
      name: "prometheus",
      command: PROMETHEUS_BIN,
      args: [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${data}`,
        `--web.listen-address=${address}:${port}`,
        "--log.level=warn",
      ],
    });
    const prometheus = new Prometheus(process, address, port);
    try {
      await waitForPort(address, port, 20_000, process);
      await prometheus.waitUntil(async () => (await fetch(`${prometheus.url}/-/ready`)).ok, 20_000, "ready");
    } catch (err) {
      await process.stop();
      throw err;
    }
    return prometheus;
  }

  /** Prometheus's own output so far, for failure messages. */
  log(): string {
    return this.process.log();
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }

  /** An instant query at the current time; an invalid expression is a result, not an exception. */
  async query(expr: string): Promise<QueryResult> {
    const body = await this.api<{ resultType: string; result: unknown }>("/api/v1/query", { query: expr });
    if (body.status !== "success" || body.data === undefined)
      return { ok: false, error: `${body.errorType ?? "error"}: ${body.error ?? "no data"}` };
    const { resultType, result } = body.data;
    // Vectors and matrices are arrays of series; a scalar or string is one value.
    const series: Series[] = Array.isArray(result)
      ? (result as Series[])
      : [{ metric: {}, value: result as [number, string] }];
    return { ok: true, resultType, series };
  }

  /** Every rule Prometheus loaded from `rule_files`, with its health after the last evaluation. */
  async rules(): Promise<LoadedRule[]> {
    const body = await this.api<{
      groups: { name: string; rules: Omit<LoadedRule, "group">[] }[];
    }>("/api/v1/rules", {});
    if (body.status !== "success" || body.data === undefined)
      throw new Error(`/api/v1/rules: ${body.error ?? "no data"}`);
    return body.data.groups.flatMap((g) => g.rules.map((r) => ({ ...r, group: g.name })));
  }

  /** Polls `check` every 250 ms until it is true; the error names `what` and carries Prometheus's log. */
  async waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      try {
        if (await check()) return;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err); // not up yet
      }
      if (!this.process.running) throw new Error(`prometheus exited before ${what}:\n${this.log()}`);
      if (Date.now() >= deadline)
        throw new Error(
          `prometheus: not ${what} within ${timeoutMs} ms${last === "" ? "" : ` (${last})`}:\n${this.log()}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  private async api<T>(path: string, params: Record<string, string>): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.url}${path}?${new URLSearchParams(params).toString()}`);
    // Errors (400 bad_data, 422 execution) come with a JSON body saying why.
    return (await res.json()) as ApiResponse<T>;
  }
}

// --- PromQL of a Grafana dashboard ----------------------------------------------------------------

/**
 * Grafana's built-in variables as Grafana sets them for a 1 s scrape interval: $__rate_interval is
 * at least four scrape intervals, so every rate() window holds enough samples.
 */
export const GRAFANA_BUILTINS: Record<string, string> = {
  __rate_interval: "30s",
  __interval: "5s",
  __interval_ms: "5000",
  __range: "5m",
  __range_s: "300",
  __range_ms: "300000",
};

export interface Target {
  expr?: string;
  refId?: string;
}

export interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  /** Panels of a collapsed row. */
  panels?: Panel[];
}

export interface TemplateVariable {
  name: string;
  type: string;
  includeAll?: boolean;
  allValue?: string | null;
  definition?: string;
  current?: { value?: string | string[] };
}

export interface Dashboard {
  panels: Panel[];
  templating?: { list: TemplateVariable[] };
}

export interface Expression {
  /** Where it comes from, for failure messages. */
  where: string;
  expr: string;
  /** Must return series (an alert condition with its threshold may rightly be empty). */
  needsSeries: boolean;
}

export function readDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(file, "utf8")) as Dashboard;
}

export function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Values for the dashboard's own variables: "All" (its allValue) where offered, else the current value. */
function dashboardVariables(dashboard: Dashboard): Record<string, string> {
  const values: Record<string, string> = {};
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type === "datasource") continue; // names a data source, never used inside PromQL
    if (v.includeAll === true) values[v.name] = v.allValue ?? ".*";
    else {
      const current = v.current?.value;
      const value = Array.isArray(current) ? current[0] : current;
      if (value === undefined) throw new Error(`dashboard variable $${v.name} has no value to test with`);
      values[v.name] = value;
    }
  }
  return values;
}

/**
 * Replaces Grafana variables ($name, ${name}, ${name:format}, [[name]]) as Grafana would. Names start
 * with a letter or underscore, so label_replace's "$1" is left alone; an unknown name is an error.
 */
function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(
    /\$\{([A-Za-z_]\w*)(?::[^}]*)?\}|\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]|\$([A-Za-z_]\w*)/g,
    (whole, braced?: string, bracketed?: string, bare?: string) => {
      const name = braced ?? bracketed ?? bare ?? "";
      const value = values[name];
      if (value === undefined) throw new Error(`unknown variable ${whole} in ${expr}`);
      return value;
    },
  );
}

/** Every panel target's expr (rows' panels included), with the variables substituted. */
export function dashboardExpressions(
  dashboard: Dashboard,
  builtins: Record<string, string> = GRAFANA_BUILTINS,
): Expression[] {
  const values = { ...builtins, ...dashboardVariables(dashboard) };
  return allPanels(dashboard.panels).flatMap((panel) =>
    (panel.targets ?? []).map((t) => {
      const where = `panel ${String(panel.id)} "${panel.title ?? ""}" target ${t.refId ?? "?"}`;
      if (t.expr === undefined || t.expr.trim() === "") throw new Error(`${where} has no expr`);
      return { where, expr: substitute(t.expr, values), needsSeries: true };
    }),
  );
}

// --- PromQL of alert rules -------------------------------------------------------------------------

const NUMBER = String.raw`(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?`;
/** A comparison with a constant: `> 0.05`, `< 14 * 24 * 3600`, `>= bool 1`. */
const THRESHOLD = new RegExp(
  String.raw`\s*(?:[<>]=?|[!=]=)\s*(?:bool\s+)?-?${NUMBER}(?:\s*[-+*/]\s*${NUMBER})*(?![\w.])`,
  "gi",
);

/**
 * An alert condition without its threshold comparisons: what it compares must exist even when the
 * alert does not fire (normally it is empty), or the alert could never fire.
 */
export function withoutThresholds(expr: string): string {
  return expr.replace(THRESHOLD, "");
}
