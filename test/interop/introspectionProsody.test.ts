/**
 * Issue 7 with a real client over federation: users of a Prosody 0.12 server, logged in with
 * slixmpp (Debian's python3-slixmpp), browse Ferry's S2S introspection tree (seed 000) at
 * `s2s.ferry.test` over XEP-0030 and run its XEP-0050 commands. The admin (in `[access] s2s`)
 * sees the live links with true values and a failed link's history; a stranger is refused.
 *
 * Addresses: Prosody (pros.test) 127.0.0.81, Ferry (ferry.test, s2s.ferry.test) 127.0.0.82, private
 * DNS 127.0.0.159. Prosody's resolver answers every `*.test` name NXDOMAIN itself (PEERS.md), so it
 * finds Ferry through its private hosts file; Ferry asks the private DNS server, where
 * `nowhere.test` does not exist.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { loadConfigText } from "../../src/config/load.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { el } from "../../src/xml/element.js";
import { Jid } from "../../src/xmpp/jid.js";
import { ensureDebianPackage, runs } from "../helpers/debian.js";
import { captureLog } from "../helpers/federation.js";
import { startDns } from "../helpers/peers/dns.js";
import { ensurePeerPackages } from "../helpers/peers/packages.js";
import { startProsody, type ProsodyPeer } from "../helpers/peers/prosody.js";
import { RunDir, Teardown } from "../helpers/peers/runDir.js";

const PYTHON = "/usr/bin/python3";
const BROWSE = fileURLToPath(new URL("../../../test/interop/slixmpp_disco_browse.py", import.meta.url));

const PROSODY_ADDRESS = "127.0.0.81";
const FERRY_ADDRESS = "127.0.0.82";
const DNS_ADDRESS = "127.0.0.159";
const PROS = "pros.test";
const FERRY = "ferry.test";
const S2S = "s2s.ferry.test";
const ADMIN = { user: "admin", password: "admin-secret" };
const STRANGER = { user: "stranger", password: "stranger-secret" };

const GROUPS: [string, string][] = [
  ["connecting-incoming", "Connecting incoming connections"],
  ["connecting-outgoing", "Connecting outgoing connections"],
  ["established-incoming", "Established incoming connections"],
  ["established-outgoing", "Established outgoing connections"],
  ["links", "Links"],
];

/** Field var → label: seed 000's nodes, then Ferry's own. */
const LABELS: Record<string, string> = {
  addresses: "Addresses",
  "ip-port": "IP/port",
  "xmpp-version": "XMPP version",
  "connection-results": "Connection results",
  "connection-start": "Connection start",
  "connection-state": "Connection state",
  dialback: "Dialback",
  "dialback-state": "Dialback state",
  "pending-verifies": "Pending verifies",
  dropped: "Dropped because of settings",
  "pending-ips": "Pending IPs",
  "pending-stanzas": "Pending stanzas",
  "stream-id": "Stream ID",
  "last-used": "Last used",
  "stanza-count": "Stanza count",
  tls: "TLS",
  certificate: "Certificate",
  authentication: "Authentication",
  "time-in-state": "Time in state",
  "stream-management": "Stream management",
};

/** Fields that change with every stanza (the disco#info and disco#items requests are two). */
const VOLATILE = new Set(["last-used", "stanza-count", "time-in-state", "stream-management"]);

/** Seed 000's connection states (outgoing connections). */
const SEED_STATES = [
  "created, not yet started to connect",
  "we started to connect, no connection yet",
  "connected to the other host",
  "we got peer's stream root",
  "we are waiting for stream features",
  "we got the stream features",
  "we sent out a dialback request",
  "we had success with our dialback request",
  "dialback failed",
  "we started to authenticate using sasl",
  "there was a SASL authentication failure",
  "successfully authenticated using SASL",
];

// What slixmpp_disco_browse.py prints.
interface StanzaError {
  type: string | null;
  condition: string | null;
  text: string | null;
}
interface Item {
  jid: string | null;
  node: string | null;
  name: string | null;
}
interface Field {
  var: string | null;
  type: string | null;
  label: string | null;
  values: string[];
  options: { label: string | null; value: string }[];
}
interface Form {
  type: string | null;
  title: string | null;
  instructions: string[];
  fields: Field[];
}
interface CommandStage {
  status: string | null;
  sessionid: string | null;
  actions: { execute: string | null; allowed: string[] } | null;
  notes: { type: string; text: string }[];
  form: Form | null;
}
interface Result {
  error?: StanzaError;
  items?: Item[];
  identities?: { category: string | null; type: string | null; name: string | null }[];
  features?: string[];
  forms?: Form[];
  first?: CommandStage;
  final?: CommandStage | { error: StanzaError } | null;
}
type Operation =
  | { op: "disco_info" | "disco_items"; jid: string; node?: string }
  | { op: "command_list"; jid: string }
  | { op: "command_execute"; jid: string; node: string; values: Record<string, string | string[]> }
  | { op: "sleep"; seconds: number };

const itemsOp = (node?: string): Operation =>
  node === undefined ? { op: "disco_items", jid: S2S } : { op: "disco_items", jid: S2S, node };
const infoOp = (node?: string): Operation =>
  node === undefined ? { op: "disco_info", jid: S2S } : { op: "disco_info", jid: S2S, node };

/** Logs in as `user`@pros.test on Prosody's c2s, runs `operations`, returns one result each. */
function browse(user: { user: string; password: string }, operations: Operation[]): Promise<Result[]> {
  const child = spawn(
    PYTHON,
    [BROWSE, `${user.user}@${PROS}/browser`, user.password, PROSODY_ADDRESS, "5222"],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(JSON.stringify(operations));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`slixmpp (${user.user}) did not finish within 60 s:\n${stdout}\n${stderr}`));
    }, 60_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      let output: { results?: Result[]; login_error?: string } | undefined;
      try {
        output = JSON.parse(stdout) as { results?: Result[]; login_error?: string };
      } catch {
        output = undefined;
      }
      if (code !== 0 || output?.results === undefined) {
        reject(new Error(`slixmpp (${user.user}) exited with ${String(code)}:\n${stdout}\n${stderr}`));
        return;
      }
      resolve(output.results);
    });
  });
}

function ok(result: Result | undefined, what: string): Result {
  assert.ok(result, `${what}: no result`);
  assert.equal(result.error, undefined, `${what}: error reply ${JSON.stringify(result.error)}`);
  return result;
}
const itemsOf = (result: Result | undefined, what: string): Item[] => ok(result, what).items ?? [];

/** The single data form of a disco#info reply, checked for its FORM_TYPE. */
function formOf(result: Result | undefined, formType: string, what: string): Form {
  const forms = ok(result, what).forms ?? [];
  assert.equal(forms.length, 1, `${what}: one data form expected, got ${JSON.stringify(forms)}`);
  const form = forms[0]!;
  assert.equal(form.type, "result", `${what}: form type`);
  const ft = form.fields.find((f) => f.var === "FORM_TYPE");
  assert.deepEqual(ft?.values, [formType], `${what}: FORM_TYPE`);
  return form;
}

function value(form: Form, name: string, what: string): string {
  const field = form.fields.find((f) => f.var === name);
  assert.ok(field, `${what}: no field ${name} in ${JSON.stringify(form.fields.map((f) => f.var))}`);
  assert.ok(field.values.length > 0, `${what}: field ${name} has no value`);
  return field.values.join("\n");
}

/** A UTC time written within the last `withinMs`. */
function assertRecentUtc(text: string, what: string, withinMs = 60_000): void {
  assert.match(text, /Z|UTC|\+00:?00/, `${what}: "${text}" does not say UTC`);
  let t = Date.parse(text);
  if (Number.isNaN(t)) t = Date.parse(text.replace(" UTC", "Z").replace(" ", "T"));
  assert.ok(!Number.isNaN(t), `${what}: "${text}" is not a time`);
  const age = Date.now() - t;
  assert.ok(age >= -5000 && age <= withinMs, `${what}: "${text}" is ${age} ms old`);
}

/**
 * The connection node's form and items agree: each field has its contract label and an item
 * `<node>/<var>` named "<Label>: <value>" (for the volatile fields, "<Label>: " and a value).
 */
function assertNodeMatchesForm(node: string, form: Form, items: Item[]): void {
  for (const field of form.fields) {
    if (field.var === "FORM_TYPE") continue;
    assert.ok(field.var !== null, `${node}: a field without var`);
    const label = LABELS[field.var];
    assert.ok(label !== undefined, `${node}: unexpected field ${field.var}`);
    assert.equal(field.label, label, `${node}: label of ${field.var}`);
    const item = items.find((i) => i.node === `${node}/${field.var!}`);
    assert.ok(item, `${node}: no item ${node}/${field.var} in ${JSON.stringify(items)}`);
    assert.equal(item.jid, S2S);
    if (field.values.length === 1 && !VOLATILE.has(field.var))
      assert.equal(item.name, `${label}: ${field.values[0]!}`);
    else assert.ok(item.name?.startsWith(`${label}: `), `${node}: item name ${String(item.name)}`);
  }
  assert.equal(
    items.length,
    form.fields.filter((f) => f.var !== "FORM_TYPE").length,
    `${node}: items vs fields`,
  );
}

/**
 * An IP/port value, `<local ip>;<port> <-> <remote ip>;<port> (<TLS>)`, as "ip:port" pairs; never
 * jabberd14's unknown "0.0.0.0;0".
 */
function ipPort(text: string, what: string): { local: string; remote: string; tls: string } {
  const m = /^([\d.]+);(\d+) <-> ([\d.]+);(\d+) \((.+)\)$/.exec(text);
  assert.ok(m, `${what}: IP/port "${text}" is not "<local ip>;<port> <-> <remote ip>;<port> (<TLS>)"`);
  const [localIp, localPort, remoteIp, remotePort, tls] = m.slice(1);
  for (const [ip, port] of [
    [localIp, localPort],
    [remoteIp, remotePort],
  ] as const)
    assert.ok(ip !== "0.0.0.0" && port !== "0", `${what}: IP/port "${text}" has an unknown address`);
  return { local: `${localIp!}:${localPort!}`, remote: `${remoteIp!}:${remotePort!}`, tls: tls! };
}

/** Whether the kernel has an established TCP connection `local` → `remote` owned by process `pid`. */
function tcpConnectionOf(pid: number, local: string, remote: string): boolean {
  const table = execFileSync("ss", ["-Htnp", "state", "established"], { encoding: "utf8" });
  return table.split("\n").some((line) => {
    const columns = line.trim().split(/\s+/);
    return columns[2] === local && columns[3] === remote && line.includes(`pid=${pid},`);
  });
}

function assertForbidden(result: Result | undefined, what: string): void {
  assert.ok(result, `${what}: no result`);
  assert.deepEqual(
    { type: result.error?.type, condition: result.error?.condition },
    { type: "auth", condition: "forbidden" },
    `${what}: expected <forbidden/> (auth), got ${JSON.stringify(result)}`,
  );
  const text = result.error?.text ?? "";
  assert.doesNotMatch(text, /connecting|established|links/i, `${what}: the error text reveals the tree`);
}

/** The live established incoming connection from Prosody to the introspection address. */
async function establishedIncoming(): Promise<{ node: string; streamId: string }> {
  const [group] = await browse(ADMIN, [itemsOp("established-incoming")]);
  const items = itemsOf(group, "established-incoming");
  const pattern = new RegExp(`^(.+)@${S2S.replaceAll(".", "\\.")}/${PROS.replaceAll(".", "\\.")}$`);
  const item = items.find((i) => pattern.test(i.name ?? ""));
  assert.ok(item, `no <streamid>@${S2S}/${PROS} among ${JSON.stringify(items)}`);
  assert.match(item.node ?? "", /^established-incoming\/[^/]+$/);
  return { node: item.node!, streamId: pattern.exec(item.name!)![1]! };
}

describe("S2S introspection browsed from Prosody over federation (issue 7)", () => {
  const teardown = new Teardown();
  const log = captureLog("debug");
  let server: FerryServer;
  let prosody: ProsodyPeer;

  before(async () => {
    ensurePeerPackages(["dnsmasq-base", "prosody", "lua-unbound"]);
    ensureDebianPackage("python3-slixmpp", () => runs(PYTHON, ["-c", "import slixmpp"]));
    const run = RunDir.create("introspection-prosody");
    teardown.add(() => {
      run.remove();
    });
    const dns = await startDns({
      runDir: run,
      address: DNS_ADDRESS,
      zones: ["test"],
      a: { [PROS]: PROSODY_ADDRESS, [FERRY]: FERRY_ADDRESS, [S2S]: FERRY_ADDRESS },
    });
    teardown.add(() => dns.stop());
    [prosody] = await teardown.startAll([
      startProsody({
        runDir: run,
        address: PROSODY_ADDRESS,
        domain: PROS,
        dnsResolvConf: dns.resolvConf,
        hosts: { [FERRY]: FERRY_ADDRESS, [S2S]: FERRY_ADDRESS },
        users: [ADMIN, STRANGER],
      }),
    ]);
    // Ferry's log, for reading after a failure (FERRY_KEEP_RUN keeps the run folder).
    teardown.add(() => {
      writeFileSync(run.file("ferry.log"), log.lines().join("\n") + "\n");
    });
    const toml = `[general]
hosts = ["${FERRY}"]

[[listen.s2s]]
port = 5269
ip_address = "${FERRY_ADDRESS}"

[s2s]
introspection.address = "${S2S}"
outgoing.dns.servers = ["${dns.server}"]
outgoing.dns.timeout = 2
outgoing.connection_timeout = 5000
outgoing.max_retry_delay = 2
outgoing.tls.mode = "starttls"

[access]
s2s = ["${ADMIN.user}@${PROS}"]
`;
    server = await startServer(loadConfigText(toml, "ferry.toml").config, log.logger);
    teardown.add(() => server.stop());
  });

  after(() => teardown.run());

  it("both users log in on Prosody and reach ferry.test over federation", async () => {
    for (const user of [ADMIN, STRANGER]) {
      const [info] = await browse(user, [{ op: "disco_info", jid: FERRY }]);
      const identities = ok(info, `${user.user}: disco#info ${FERRY}`).identities ?? [];
      assert.ok(identities.length > 0, `${FERRY} named no identity: ${JSON.stringify(info)}`);
    }
    assert.ok(prosody.c2sPort === 5222);
  });

  it("the admin browses the live connections: five groups, both links with true values", async () => {
    // The first request brings the federation with s2s.ferry.test up both ways.
    const [root] = await browse(ADMIN, [infoOp()]);
    const info = ok(root, "disco#info");
    assert.ok(
      info.identities?.some((i) => i.category === "component" && i.type === "s2s"),
      `identity component/s2s expected: ${JSON.stringify(info.identities)}`,
    );
    for (const feature of ["http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/commands"])
      assert.ok(
        info.features?.includes(feature),
        `feature ${feature} missing: ${JSON.stringify(info.features)}`,
      );

    const [top, incoming, outgoing] = await browse(ADMIN, [
      itemsOp(),
      itemsOp("established-incoming"),
      itemsOp("established-outgoing"),
    ]);
    assert.deepEqual(
      itemsOf(top, "disco#items").map((i) => [i.jid, i.node, i.name]),
      GROUPS.map(([node, name]) => [S2S, node, name]),
    );
    const inItems = itemsOf(incoming, "established-incoming");
    const inPattern = /^(.+)@s2s\.ferry\.test\/pros\.test$/;
    const inItem = inItems.find((i) => inPattern.test(i.name ?? ""));
    assert.ok(inItem, `no <streamid>@${S2S}/${PROS} in ${JSON.stringify(inItems)}`);
    assert.equal(inItem.jid, S2S);
    assert.match(inItem.node ?? "", /^established-incoming\/[^/]+$/);
    const streamId = inPattern.exec(inItem.name!)![1]!;
    const outItems = itemsOf(outgoing, "established-outgoing");
    const outItem = outItems.find((i) => i.name === `${PROS}/${S2S}`);
    assert.ok(outItem, `no ${PROS}/${S2S} in ${JSON.stringify(outItems)}`);
    assert.equal(outItem.jid, S2S);
    assert.match(outItem.node ?? "", /^established-outgoing\/[^/]+$/);

    const inNode = inItem.node!;
    const outNode = outItem.node!;
    const [inInfo, inFields, outInfo, outFields] = await browse(ADMIN, [
      infoOp(inNode),
      itemsOp(inNode),
      infoOp(outNode),
      itemsOp(outNode),
    ]);

    const inForm = formOf(inInfo, "urn:xmpp:ferry:s2s:connection", inNode);
    assertNodeMatchesForm(inNode, inForm, itemsOf(inFields, `${inNode} items`));
    // Prosody 0.12 does not bind its outgoing sockets: the kernel picks their source (127.0.0.1).
    const inIp = ipPort(value(inForm, "ip-port", inNode), inNode);
    assert.equal(`${inIp.local} ${inIp.tls}`, `${FERRY_ADDRESS}:5269 no TLS`, `${inNode} IP/port`);
    assert.ok(
      tcpConnectionOf(prosody.process.pid, inIp.remote, inIp.local),
      `${inNode}: Prosody has no connection ${inIp.remote} → ${inIp.local}`,
    );
    const addresses = value(inForm, "addresses", inNode);
    assert.ok(addresses.includes(S2S) && addresses.includes(PROS), `${inNode}: addresses "${addresses}"`);
    assert.equal(value(inForm, "xmpp-version", inNode), "1.0", `${inNode}: XMPP version`);
    assert.ok(Number(value(inForm, "stanza-count", inNode)) >= 1, `${inNode}: stanza count`);
    assertRecentUtc(value(inForm, "connection-start", inNode), `${inNode} connection start`);
    assertRecentUtc(value(inForm, "last-used", inNode), `${inNode} last used`);
    assert.equal(value(inForm, "stream-id", inNode), streamId, `${inNode}: stream id`);
    assert.match(value(inForm, "authentication", inNode), /dialback/i, `${inNode}: authentication`);
    assert.match(value(inForm, "tls", inNode), /no|none|plain|off/i, `${inNode}: TLS`);
    value(inForm, "time-in-state", inNode);

    const outForm = formOf(outInfo, "urn:xmpp:ferry:s2s:connection", outNode);
    assertNodeMatchesForm(outNode, outForm, itemsOf(outFields, `${outNode} items`));
    const outIp = ipPort(value(outForm, "ip-port", outNode), outNode);
    assert.equal(`${outIp.remote} ${outIp.tls}`, `${PROSODY_ADDRESS}:5269 no TLS`, `${outNode} IP/port`);
    assert.ok(
      tcpConnectionOf(process.pid, outIp.local, outIp.remote),
      `${outNode}: Ferry has no connection ${outIp.local} → ${outIp.remote}`,
    );
    assert.ok(Number(value(outForm, "stanza-count", outNode)) >= 1, `${outNode}: stanza count`);
    assertRecentUtc(value(outForm, "connection-start", outNode), `${outNode} connection start`);
    const state = value(outForm, "connection-state", outNode);
    assert.ok(SEED_STATES.includes(state), `${outNode}: "${state}" is not seed 000's wording`);
    assert.equal(state, "we had success with our dialback request", `${outNode}: connection state`);
    assert.match(value(outForm, "authentication", outNode), /dialback/i, `${outNode}: authentication`);
    assert.ok(value(outForm, "stream-id", outNode).length > 0);
    if (outForm.fields.some((f) => f.var === "connection-results"))
      assert.match(value(outForm, "connection-results", outNode), /127\.0\.0\.81/, `${outNode}: results`);
    value(outForm, "time-in-state", outNode);
  });

  it("a stranger is refused everything and learns nothing", async () => {
    const results = await browse(STRANGER, [
      itemsOp(),
      infoOp(),
      itemsOp("established-incoming"),
      infoOp("established-incoming"),
      itemsOp("links"),
      { op: "command_list", jid: S2S },
      { op: "command_execute", jid: S2S, node: "retry-link", values: { domain: "nowhere.test" } },
    ]);
    const names = [
      "disco#items",
      "disco#info",
      "items established-incoming",
      "info established-incoming",
      "items links",
      "commands list",
      "execute retry-link",
    ];
    names.forEach((what, i) => {
      assertForbidden(results[i], what);
    });
  });

  it("a failed link's history explains the failure", async () => {
    server.router.route(
      el("message", { from: FERRY, to: "nowhere.test" }),
      Jid.parse(FERRY),
      Jid.parse("nowhere.test"),
    );
    const deadline = Date.now() + 20_000;
    let links: Item[];
    for (;;) {
      const [result] = await browse(ADMIN, [itemsOp("links")]);
      links = itemsOf(result, "links");
      if (links.some((i) => i.node === "links/nowhere.test") || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const link = links.find((i) => i.node === "links/nowhere.test");
    assert.ok(link, `no links/nowhere.test in ${JSON.stringify(links)}`);
    assert.equal(link.name, "nowhere.test");
    assert.equal(link.jid, S2S);
    const prosLink = links.find((i) => i.node === `links/${PROS}`);
    assert.ok(prosLink, `no links/${PROS} in ${JSON.stringify(links)}`);

    const [attempts, newest, prosAttempts, prosNewest] = await browse(ADMIN, [
      itemsOp("links/nowhere.test"),
      infoOp("links/nowhere.test/1"),
      itemsOp(`links/${PROS}`),
      infoOp(`links/${PROS}/1`),
    ]);
    const attemptItems = itemsOf(attempts, "links/nowhere.test");
    assert.ok(
      attemptItems.some((i) => i.node === "links/nowhere.test/1"),
      `no links/nowhere.test/1 in ${JSON.stringify(attemptItems)}`,
    );
    for (const item of attemptItems) assert.match(item.node ?? "", /^links\/nowhere\.test\/\d+$/);
    const form = formOf(newest, "urn:xmpp:ferry:s2s:link-attempt", "links/nowhere.test/1");
    assert.equal(value(form, "result", "nowhere.test/1"), "failed");
    assert.match(value(form, "states", "nowhere.test/1"), /→.*failed/, "state path");
    assert.match(value(form, "error", "nowhere.test/1"), /nowhere\.test|dns|nxdomain|enotfound/i, "error");
    assertRecentUtc(value(form, "time", "nowhere.test/1"), "nowhere.test/1 time");
    for (const name of ["dns", "addresses", "tls", "certificate", "authentication"])
      assert.ok(
        form.fields.some((f) => f.var === name),
        `nowhere.test/1: no field ${name} in ${JSON.stringify(form.fields)}`,
      );

    // The link to Prosody was brought up by the previous tests: its newest attempt says so.
    assert.ok(itemsOf(prosAttempts, `links/${PROS}`).some((i) => i.node === `links/${PROS}/1`));
    const prosForm = formOf(prosNewest, "urn:xmpp:ferry:s2s:link-attempt", `links/${PROS}/1`);
    assert.equal(value(prosForm, "result", `${PROS}/1`), "up");
    assert.match(value(prosForm, "authentication", `${PROS}/1`), /dialback/i);
    assert.match(value(prosForm, "addresses", `${PROS}/1`), /127\.0\.0\.81/);
  });

  it("the admin runs the ad-hoc commands: retry a link, close a connection", async () => {
    const [list, retried, unknown] = await browse(ADMIN, [
      { op: "command_list", jid: S2S },
      { op: "command_execute", jid: S2S, node: "retry-link", values: { domain: "nowhere.test" } },
      { op: "command_execute", jid: S2S, node: "retry-link", values: { domain: "never-tried.test" } },
    ]);
    const commands = itemsOf(list, "commands").map((i) => [i.jid, i.node, i.name]);
    assert.deepEqual(
      commands.filter(([, node]) => node === "close-connection" || node === "retry-link"),
      [
        [S2S, "close-connection", "Close connection"],
        [S2S, "retry-link", "Retry link now"],
      ],
      `commands: ${JSON.stringify(commands)}`,
    );

    const retry = ok(retried, "retry-link nowhere.test");
    assert.equal(retry.first?.status, "executing", `retry-link first stage: ${JSON.stringify(retry)}`);
    const domainField = retry.first.form?.fields.find((f) => f.var === "domain");
    assert.equal(domainField?.type, "text-single", `retry-link form: ${JSON.stringify(retry.first.form)}`);
    const retryFinal = retry.final as CommandStage | null;
    assert.equal(retryFinal?.status, "completed", `retry-link final: ${JSON.stringify(retry.final)}`);
    assert.ok(
      retryFinal.notes.some((n) => n.type === "info"),
      `retry-link: an info note expected, got ${JSON.stringify(retryFinal.notes)}`,
    );

    const never = ok(unknown, "retry-link never-tried.test");
    const neverFinal = never.final as CommandStage | null;
    assert.equal(
      neverFinal?.status,
      "completed",
      `retry-link (no queue) final: ${JSON.stringify(never.final)}`,
    );
    assert.ok(
      neverFinal.notes.some((n) => n.type === "error"),
      `retry-link (no queue): an error note expected, got ${JSON.stringify(neverFinal.notes)}`,
    );

    const victim = await establishedIncoming();
    const [closed] = await browse(ADMIN, [
      { op: "command_execute", jid: S2S, node: "close-connection", values: { connection: victim.node } },
    ]);
    const close = ok(closed, "close-connection");
    assert.equal(close.first?.status, "executing", `close-connection first stage: ${JSON.stringify(close)}`);
    const connField = close.first.form?.fields.find((f) => f.var === "connection");
    assert.equal(
      connField?.type,
      "list-single",
      `close-connection form: ${JSON.stringify(close.first.form)}`,
    );
    assert.ok(
      connField.options.some((o) => o.value === victim.node),
      `close-connection: ${victim.node} not among ${JSON.stringify(connField.options)}`,
    );
    const closeFinal = close.final as CommandStage | null;
    assert.equal(closeFinal?.status, "completed", `close-connection final: ${JSON.stringify(close.final)}`);
    assert.ok(closeFinal.notes.length > 0, "close-connection: a note");

    // Prosody opens a new stream for the next request; the closed one is gone from the tree.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = await establishedIncoming();
    assert.notEqual(now.streamId, victim.streamId, "the closed connection is still listed");
    const [group] = await browse(ADMIN, [itemsOp("established-incoming")]);
    const names = itemsOf(group, "established-incoming").map((i) => i.name ?? "");
    assert.ok(
      !names.some((n) => n.startsWith(`${victim.streamId}@`)),
      `stream ${victim.streamId} still listed: ${JSON.stringify(names)}`,
    );
  });
});
