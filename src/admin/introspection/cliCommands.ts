/**
 * `ferry connections` and `ferry link DOMAIN`: the introspection data of a running server, read
 * through its HTTP API (`GET /api/connections`, `GET /api/links/{domain}`) and printed as tables.
 * The URL and token come from `--url`/`--token`, else FERRY_API_TOKEN, else the first
 * `[[listen.http]]` with an `api_token` in the configuration file.
 */
import { parseArgs } from "node:util";
import { loadConfigFile } from "../../config/load.js";
import type { ConnectionJson, LinkAttemptJson } from "./introspection.js";

const USAGE = `usage:
  ferry connections [--config FILE | --url URL] [--token TOKEN] [--json]
  ferry link DOMAIN [--config FILE | --url URL] [--token TOKEN] [--json]`;

interface Target {
  url: string;
  token: string;
}

async function target(
  values: { url?: string; token?: string; config?: string },
  defaultConfig: string,
): Promise<Target> {
  const envToken = process.env.FERRY_API_TOKEN;
  if (values.url !== undefined) {
    const token = values.token ?? envToken;
    if (token === undefined) throw new UsageError("--url needs --token (or FERRY_API_TOKEN)");
    return { url: values.url.replace(/\/+$/, ""), token };
  }
  const file = values.config ?? defaultConfig;
  const { config } = await loadConfigFile(file);
  const listener = config.listen.http.find((l) => l.api_token !== undefined);
  if (listener?.api_token === undefined)
    throw new UsageError(
      `${file}: no [[listen.http]] has an api_token, so the admin API is off (or pass --url and --token)`,
    );
  const host = listener.ip_address.includes(":") ? `[${listener.ip_address}]` : listener.ip_address;
  const reachable = host === "0.0.0.0" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host;
  return {
    url: `http://${reachable}:${listener.port}`,
    token: values.token ?? envToken ?? listener.api_token,
  };
}

class UsageError extends Error {}

async function get(t: Target, path: string): Promise<unknown> {
  const response = await fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${t.token}` } });
  const body = (await response.json()) as { error?: string };
  if (!response.ok) throw new Error(`${t.url}${path}: HTTP ${response.status}: ${body.error ?? "?"}`);
  return body;
}

/** Columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const fieldOf = (c: ConnectionJson, name: string): string => {
  const value = c.fields.find((f) => f.var === name)?.value;
  return value === undefined ? "" : Array.isArray(value) ? value.join("; ") : value;
};

export function connectionsText(tree: { groups: { name: string; connections: ConnectionJson[] }[] }): string {
  return tree.groups
    .map((group) => {
      const rows = group.connections.map((c) => [
        c.id,
        c.name,
        fieldOf(c, "connection-state"),
        fieldOf(c, "ip-port"),
        fieldOf(c, "authentication"),
        fieldOf(c, "stanza-count") || fieldOf(c, "pending-stanzas"),
        fieldOf(c, "time-in-state"),
      ]);
      const body =
        rows.length === 0
          ? "(none)"
          : table(["ID", "NAME", "STATE", "IP/PORT", "AUTH", "STANZAS", "IN STATE"], rows);
      return `${group.name} (${group.connections.length})\n${body}`;
    })
    .join("\n\n");
}

export function linkText(history: { domain: string; attempts: LinkAttemptJson[] }): string {
  if (history.attempts.length === 0) return `no attempts recorded for ${history.domain}`;
  const rows = history.attempts.map((a, i) => [
    String(i + 1),
    a.time,
    a.local,
    a.result,
    a.states.join(" → "),
    a.error ?? "",
  ]);
  const [newest] = history.attempts;
  const details =
    newest === undefined
      ? ""
      : [
          "",
          `newest attempt (${newest.local} → ${newest.remote}, ${newest.purpose}):`,
          `  DNS:            ${newest.dns.join("\n                  ") || "not queried"}`,
          `  addresses:      ${newest.addresses.join("\n                  ") || "none"}`,
          `  TLS:            ${newest.tls}`,
          `  certificate:    ${newest.certificate}`,
          `  authentication: ${newest.authentication}`,
          `  error:          ${newest.error ?? "none"}`,
        ].join("\n");
  return `${history.domain}: last ${history.attempts.length} attempt(s)\n${table(["#", "TIME", "FROM", "RESULT", "STATES", "ERROR"], rows)}${details}`;
}

/** Runs `connections` or `link`; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function runIntrospectionCommand(
  command: "connections" | "link",
  argv: string[],
  defaultConfig: string,
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        url: { type: "string" },
        token: { type: "string" },
        json: { type: "boolean" },
      },
    });
    const expected = command === "link" ? 1 : 0;
    if (positionals.length !== expected)
      throw new UsageError(
        command === "link" ? "ferry link needs one DOMAIN" : "ferry connections takes no arguments",
      );
    const t = await target(values, defaultConfig);
    if (command === "connections") {
      const tree = (await get(t, "/api/connections")) as Parameters<typeof connectionsText>[0];
      process.stdout.write(
        `${values.json === true ? JSON.stringify(tree, null, 2) : connectionsText(tree)}\n`,
      );
    } else {
      const domain = positionals[0] ?? "";
      const history = (await get(t, `/api/links/${encodeURIComponent(domain)}`)) as Parameters<
        typeof linkText
      >[0];
      process.stdout.write(
        `${values.json === true ? JSON.stringify(history, null, 2) : linkText(history)}\n`,
      );
    }
    return 0;
  } catch (err) {
    const usage =
      err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true;
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}${usage ? `\n${USAGE}` : ""}\n`);
    return usage ? 2 : 1;
  }
}
