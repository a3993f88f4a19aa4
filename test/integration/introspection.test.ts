/**
 * Issue 7: the S2S introspection tree (seed 000) browsed by a real client library (xmpp.js's
 * @xmpp/component on Ferry itself), as an admin and as a stranger, with connections driven into
 * the documented states — a peer that stops answering mid dialback, a refused address, a policy
 * refusal, a drop because of settings — plus the ad-hoc commands and the HTTP twin.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { component, xml, type Component, type XmlElement } from "@xmpp/component";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { WirePeer, freePort } from "../helpers/wire.js";
import { connectComponent } from "../helpers/component.js";

const DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const COMMANDS = "http://jabber.org/protocol/commands";
const TOKEN = "s3cret-admin-token";
const MUTE_STREAM_ID = "mute-stream-0001";

interface Item {
  node: string;
  name: string;
}

function children(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((c): c is XmlElement => typeof c !== "string" && c.name === name);
}

/** A remote server that opens its stream, offers dialback, then never answers (mid dialback). */
function muteServer(): Promise<{ port: number; received: string[]; close: () => void }> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      received.push(chunk);
      if (chunk.includes("<stream:stream")) {
        socket.write(
          `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' id='${MUTE_STREAM_ID}' version='1.0'>` +
            `<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`,
        );
      }
    });
    socket.on("error", () => undefined);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        received,
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      });
    });
  });
}

describe("S2S introspection (seed 000): disco tree, ad-hoc commands, HTTP API", () => {
  let a: FerryServer;
  let b: FerryServer;
  let admin: Component;
  let stranger: Component;
  let remoteComponent: WirePeer;
  let mute: Awaited<ReturnType<typeof muteServer>>;
  let aS2s = 0;
  let bS2s = 0;
  let http = 0;
  let httpNoToken = 0;
  let configFile = "";
  const tmp = mkdtempSync(path.join(tmpdir(), "ferry-introspection-"));

  const request = async (who: Component, type: "get" | "set", payload: XmlElement): Promise<XmlElement> =>
    who.iqCaller.request(xml("iq", { type, to: "s2s.a.test" }, payload), 5000);

  const items = async (node?: string, who: Component = admin): Promise<Item[]> => {
    const result = await request(who, "get", xml("query", { xmlns: DISCO_ITEMS, ...(node ? { node } : {}) }));
    const query = result.getChild("query", DISCO_ITEMS);
    assert.ok(query, "disco#items result has a query");
    return children(query, "item").map((i) => ({ node: i.attrs.node ?? "", name: i.attrs.name ?? "" }));
  };

  /** The data form of a node's disco#info, as var → values. */
  const form = async (node: string): Promise<Map<string, string[]>> => {
    const result = await request(admin, "get", xml("query", { xmlns: DISCO_INFO, node }));
    const x = result.getChild("query", DISCO_INFO)?.getChild("x", "jabber:x:data");
    assert.ok(x, `a data form on ${node}`);
    const fields = new Map<string, string[]>();
    for (const f of children(x, "field"))
      fields.set(
        f.attrs.var ?? "",
        children(f, "value").map((v) => v.getText()),
      );
    return fields;
  };
  const value = (fields: Map<string, string[]>, name: string): string => {
    const values = fields.get(name);
    assert.ok(values, `field ${name} present (have ${[...fields.keys()].join(", ")})`);
    return values.join("\n");
  };

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 8000): Promise<T> => {
    const until = Date.now() + ms;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const member = (group: string, name: string | RegExp): Promise<Item> =>
    waitFor(`${name.toString()} in ${group}`, async () =>
      (await items(group)).find((i) => (typeof name === "string" ? i.name === name : name.test(i.name))),
    );
  const attempts = async (domain: string): Promise<Item[]> => items(`links/${domain}`).catch(() => []);

  const send = (to: string, body: string): Promise<void> =>
    admin.send(xml("message", { from: "admin.a.test", to, id: `m-${to}` }, xml("body", {}, body)));

  before(async () => {
    mute = await muteServer();
    const closed = await freePort(); // nothing listens there: connection refused
    [aS2s, bS2s, http, httpNoToken] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const aComp = await freePort();
    const bComp = await freePort();
    const configA = `[general]
hosts = ["a.test"]
[[listen.s2s]]
port = ${aS2s}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${aComp}
ip_address = "127.0.0.1"
password = "secret"
[[listen.http]]
port = ${http}
ip_address = "127.0.0.1"
api_token = "${TOKEN}"
[[listen.http]]
port = ${httpNoToken}
ip_address = "127.0.0.1"
[access]
s2s = ["admin.a.test"]
global = ["root@a.test"]
[s2s]
host_policy = [{host = "banned.test", policy = "deny"}]
outgoing.connection_timeout = 2000
outgoing.state_timeout = 60000
outgoing.max_retry_delay = 60
outgoing.tls.require_for = ["strict.test"]
outgoing.address = [
  {host = "b.test", ip_address = "127.0.0.1", port = ${bS2s}},
  {host = "svc.b.test", ip_address = "127.0.0.1", port = ${bS2s}},
  {host = "mute.test", ip_address = "127.0.0.1", port = ${mute.port}},
  {host = "strict.test", ip_address = "127.0.0.1", port = ${mute.port}},
  {host = "refused.test", ip_address = "127.0.0.1", port = ${closed}},
]
`;
    const configB = `[general]
hosts = ["b.test"]
[[listen.s2s]]
port = ${bS2s}
ip_address = "127.0.0.1"
[[listen.service]]
port = ${bComp}
ip_address = "127.0.0.1"
password = "secret"
[s2s]
outgoing.address = [
  {host = "a.test", ip_address = "127.0.0.1", port = ${aS2s}},
  {host = "admin.a.test", ip_address = "127.0.0.1", port = ${aS2s}},
]
`;
    configFile = path.join(tmp, "a.toml");
    writeFileSync(configFile, configA);
    a = await startServer(loadConfigText(configA, "a.toml").config, silentLogger);
    b = await startServer(loadConfigText(configB, "b.toml").config, silentLogger);
    admin = component({ service: `xmpp://127.0.0.1:${aComp}`, domain: "admin.a.test", password: "secret" });
    stranger = component({
      service: `xmpp://127.0.0.1:${aComp}`,
      domain: "other.a.test",
      password: "secret",
    });
    for (const c of [admin, stranger]) {
      c.on("error", () => undefined);
      await c.start();
    }
    remoteComponent = await connectComponent(bComp, "svc.b.test", "secret");
    // Both directions: admin.a.test → svc.b.test (A's outgoing) and back (A's incoming).
    await send("svc.b.test", "hello");
    await remoteComponent.waitFor(/<body>hello<\/body>/, 8000);
    remoteComponent.send("<message from='svc.b.test' to='admin.a.test' id='r1'><body>back</body></message>");
  });

  after(async () => {
    for (const c of [admin, stranger]) {
      c.reconnect.stop();
      await c.stop().catch(() => undefined);
    }
    remoteComponent.destroy();
    mute.close();
    await Promise.all([a.stop(), b.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it("lists seed 000's four groups and the links group at the introspection address", async () => {
    assert.deepEqual(await items(), [
      { node: "connecting-incoming", name: "Connecting incoming connections" },
      { node: "connecting-outgoing", name: "Connecting outgoing connections" },
      { node: "established-incoming", name: "Established incoming connections" },
      { node: "established-outgoing", name: "Established outgoing connections" },
      { node: "links", name: "Links" },
    ]);
    const info = await request(admin, "get", xml("query", { xmlns: DISCO_INFO }));
    const query = info.getChild("query", DISCO_INFO);
    assert.ok(query);
    assert.deepEqual(children(query, "identity")[0]?.attrs, {
      category: "component",
      type: "s2s",
      name: "Ferry S2S connections",
    });
    assert.ok(children(query, "feature").some((f) => f.attrs.var === COMMANDS));
  });

  it("shows an established outgoing connection as <destination>/<authorized domain> with true values", async () => {
    const item = await member("established-outgoing", "svc.b.test/admin.a.test");
    const fields = await form(item.node);
    assert.match(
      value(fields, "ip-port"),
      new RegExp(`^127\\.0\\.0\\.1;\\d+ <-> 127\\.0\\.0\\.1;${bS2s} \\(no TLS\\)$`),
    );
    assert.doesNotMatch(value(fields, "ip-port"), /0\.0\.0\.0;0/);
    assert.ok(Number(value(fields, "stanza-count")) >= 1);
    assert.match(value(fields, "last-used"), /^\d{4}-\d\d-\d\dT.*Z$/);
    assert.equal(value(fields, "authentication"), "dialback");
    assert.equal(value(fields, "connection-state"), "we had success with our dialback request");
    assert.match(value(fields, "stream-id"), /^[0-9a-f]{32}$/);
    assert.equal(value(fields, "tls"), "none");
    assert.match(value(fields, "time-in-state"), /^\d+\.\d s \(dialbackSucceeded\)$/);
    // Each field is also a node of its own, named "Label: value" (as jabberd14 showed them).
    const nodes = await items(item.node);
    assert.ok(
      nodes.some((n) => n.node === `${item.node}/stanza-count` && /^Stanza count: \d+$/.test(n.name)),
    );
  });

  it("shows an established incoming connection as <streamid>@<destination>/<authorized domain>", async () => {
    const item = await member("established-incoming", /@admin\.a\.test\/svc\.b\.test$/);
    const fields = await form(item.node);
    const streamId = value(fields, "stream-id");
    assert.equal(item.name, `${streamId}@admin.a.test/svc.b.test`);
    assert.match(
      value(fields, "ip-port"),
      new RegExp(`^127\\.0\\.0\\.1;${aS2s} <-> 127\\.0\\.0\\.1;\\d+ \\(no TLS\\)$`),
    );
    assert.equal(value(fields, "addresses"), "local: admin.a.test\nremote: svc.b.test");
    assert.equal(value(fields, "xmpp-version"), "1.0");
    assert.equal(Number(value(fields, "stanza-count")), 1);
    assert.ok(Date.now() - Date.parse(value(fields, "connection-start")) < 60_000);
    assert.equal(value(fields, "authentication"), "dialback");
  });

  it("shows a peer that stopped answering mid dialback in 'we sent out a dialback request'", async () => {
    await send("user@mute.test", "anyone?");
    const item = await member("connecting-outgoing", "admin.a.test/mute.test");
    const fields = await waitFor("dialbackSent", async () => {
      const f = await form(item.node);
      return f.get("connection-state")?.[0] === "we sent out a dialback request" ? f : undefined;
    });
    assert.equal(value(fields, "dialback-state"), "we have sent a dialback request");
    assert.equal(value(fields, "dialback"), "supported");
    assert.equal(value(fields, "stream-id"), MUTE_STREAM_ID);
    assert.equal(value(fields, "xmpp-version"), "1.0");
    assert.equal(value(fields, "pending-stanzas"), "1");
    assert.equal(value(fields, "pending-ips"), "none");
    assert.equal(value(fields, "dropped"), "no");
    assert.match(value(fields, "connection-results"), new RegExp(`^127\\.0\\.0\\.1:${mute.port}: connected`));
    assert.match(value(fields, "ip-port"), new RegExp(`<-> 127\\.0\\.0\\.1;${mute.port} \\(no TLS\\)$`));
    // The mute peer really got our db:result (the state is not made up).
    assert.match(mute.received.join(""), /<db:result [^>]*from=['"]admin\.a\.test['"]/);
  });

  it("keeps a refused address's attempt in the link history, with the reason", async () => {
    await send("user@refused.test", "hello?");
    const [newest] = await waitFor("an attempt", async () => {
      const list = await attempts("refused.test");
      return list.length > 0 && / failed$/.test(list[0]?.name ?? "") ? list : undefined;
    });
    assert.ok(newest);
    const fields = await form(newest.node);
    assert.equal(value(fields, "result"), "failed");
    assert.equal(value(fields, "states"), "created → connecting → failed");
    assert.match(value(fields, "addresses"), /ECONNREFUSED/);
    assert.match(value(fields, "error"), /could not connect to refused\.test/);
    assert.match(value(fields, "dns"), /outgoing\.address override for refused\.test/);
    assert.equal(value(fields, "local"), "admin.a.test");
  });

  it("records a policy refusal and a drop because of settings as attempts", async () => {
    await send("user@banned.test", "x");
    await send("user@strict.test", "x");
    const banned = await waitFor("banned attempt", async () => (await attempts("banned.test"))[0]);
    assert.equal(value(await form(banned.node), "result"), "refused by policy");
    const strict = await waitFor("strict attempt", async () => {
      const newest = (await attempts("strict.test"))[0];
      return newest && / dropped by settings$/.test(newest.name) ? newest : undefined;
    });
    const fields = await form(strict.node);
    assert.match(value(fields, "error"), /TLS is required/);
    assert.match(
      value(fields, "states"),
      /^created → connecting → connected → awaitingFeatures → gotFeatures → closing → droppedBySettings$/,
    );
    const links = await items("links");
    for (const domain of ["refused.test", "banned.test", "strict.test"])
      assert.ok(
        links.some((l) => l.node === `links/${domain}` && l.name === domain),
        domain,
      );
  });

  it("refuses a stranger everything, even the group names", async () => {
    const forbidden = async (payload: XmlElement, type: "get" | "set" = "get"): Promise<void> => {
      await assert.rejects(request(stranger, type, payload), (err: { condition?: string; type?: string }) => {
        assert.equal(err.condition, "forbidden");
        assert.equal(err.type, "auth");
        return true;
      });
    };
    await forbidden(xml("query", { xmlns: DISCO_ITEMS }));
    await forbidden(xml("query", { xmlns: DISCO_INFO }));
    await forbidden(xml("query", { xmlns: DISCO_ITEMS, node: "established-outgoing" }));
    await forbidden(xml("query", { xmlns: DISCO_ITEMS, node: COMMANDS }));
    await forbidden(xml("command", { xmlns: COMMANDS, node: "retry-link", action: "execute" }), "set");
  });

  it("closes a connection with the 'close connection' command (two stages, data forms)", async () => {
    const list = await items(COMMANDS);
    assert.deepEqual(
      list.map((c) => [c.node, c.name]),
      [
        ["close-connection", "Close connection"],
        ["retry-link", "Retry link now"],
      ],
    );
    const target = await member("established-incoming", /@admin\.a\.test\/svc\.b\.test$/);
    const first = await request(
      admin,
      "set",
      xml("command", { xmlns: COMMANDS, node: "close-connection", action: "execute" }),
    );
    const command = first.getChild("command", COMMANDS);
    assert.ok(command);
    assert.equal(command.attrs.status, "executing");
    const field = command.getChild("x", "jabber:x:data")?.getChild("field");
    assert.ok(field);
    const options = children(field, "option").map((o) => o.getChildText("value"));
    assert.ok(options.includes(target.node), `${target.node} offered in ${options.join(", ")}`);
    const done = await request(
      admin,
      "set",
      xml(
        "command",
        { xmlns: COMMANDS, node: "close-connection", sessionid: command.attrs.sessionid ?? "" },
        xml(
          "x",
          { xmlns: "jabber:x:data", type: "submit" },
          xml("field", { var: "connection" }, xml("value", {}, target.node)),
        ),
      ),
    );
    const completed = done.getChild("command", COMMANDS);
    assert.ok(completed);
    assert.equal(completed.attrs.status, "completed");
    assert.equal(completed.getChild("note")?.attrs.type, "info");
    await waitFor("the stream gone", async () =>
      (await items("established-incoming")).some((i) => i.name === target.name) ? undefined : true,
    );
  });

  it("retries a failed link at once with 'retry link now'", async () => {
    // Single stage: the submitted form comes with the first request.
    const retryLink = (domain: string): Promise<XmlElement> =>
      request(
        admin,
        "set",
        xml(
          "command",
          { xmlns: COMMANDS, node: "retry-link", action: "execute" },
          xml(
            "x",
            { xmlns: "jabber:x:data", type: "submit" },
            xml("field", { var: "domain" }, xml("value", {}, domain)),
          ),
        ),
      );
    const before = (await attempts("refused.test")).length;
    const done = await retryLink("refused.test");
    const note = done.getChild("command", COMMANDS)?.getChild("note");
    assert.equal(note?.attrs.type, "info", note?.getText());
    // The backoff (up to 60 s here) was cleared: a new attempt is made now.
    await waitFor("a new attempt", async () =>
      (await attempts("refused.test")).length > before ? true : undefined,
    );
    const unknown = await retryLink("never.test");
    assert.equal(unknown.getChild("command", COMMANDS)?.getChild("note")?.attrs.type, "error");
  });

  describe("HTTP twin", () => {
    const api = (path: string, init: RequestInit = {}, port = http): Promise<Response> =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(init.headers as Record<string, string> | undefined),
        },
      });

    it("requires the bearer token, and is off on a listener without one", async () => {
      const none = await fetch(`http://127.0.0.1:${http}/api/connections`);
      assert.equal(none.status, 401);
      assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
      const wrong = await api("/api/connections", { headers: { authorization: "Bearer nope" } });
      assert.equal(wrong.status, 401);
      assert.deepEqual(await wrong.json(), { error: "wrong bearer token" });
      const off = await api("/api/connections", {}, httpNoToken);
      assert.equal(off.status, 404);
      assert.match(((await off.json()) as { error: string }).error, /api_token/);
    });

    it("GET /api/connections returns the same tree as JSON", async () => {
      const response = await api("/api/connections");
      assert.equal(response.status, 200);
      const tree = (await response.json()) as {
        groups: {
          id: string;
          connections: { id: string; name: string; fields: { var: string; value: unknown }[] }[];
        }[];
      };
      assert.deepEqual(
        tree.groups.map((g) => g.id),
        ["connecting-incoming", "connecting-outgoing", "established-incoming", "established-outgoing"],
      );
      const out = tree.groups[3]?.connections.find((c) => c.name === "svc.b.test/admin.a.test");
      assert.ok(out, "the established outgoing link is listed");
      assert.match(
        String(out.fields.find((f) => f.var === "ip-port")?.value),
        new RegExp(`127\\.0\\.0\\.1;${bS2s}`),
      );
    });

    it("GET /api/links/{domain} returns the history; bad input is a 400 naming the field", async () => {
      const response = await api("/api/links/refused.test");
      assert.equal(response.status, 200);
      const history = (await response.json()) as {
        domain: string;
        attempts: { result: string; addresses: string[] }[];
      };
      assert.equal(history.domain, "refused.test");
      assert.ok(history.attempts.length >= 1);
      const [newest] = history.attempts;
      assert.ok(newest);
      assert.equal(newest.result, "failed");
      assert.match(newest.addresses.join(" "), /ECONNREFUSED/);
      const bad = await api("/api/links/not%20a%20domain");
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { field: string }).field, "domain");
    });

    it("POST /api/links/{domain}/retry and DELETE /api/connections/{id} act, or say why not", async () => {
      const retried = await api("/api/links/refused.test/retry", { method: "POST" });
      assert.ok([202, 409].includes(retried.status), String(retried.status));
      const unknown = await api("/api/links/never.test/retry", { method: "POST" });
      assert.equal(unknown.status, 404);
      assert.match(((await unknown.json()) as { error: string }).error, /no queue towards never\.test/);
      const missing = await api("/api/connections/0123abcd", { method: "DELETE" });
      assert.equal(missing.status, 404);
      const badId = await api("/api/connections/a%3Cb", { method: "DELETE" });
      assert.equal(badId.status, 400);
      const tree = (await (await api("/api/connections")).json()) as {
        groups: { connections: { id: string; name: string }[] }[];
      };
      const out = tree.groups[3]?.connections.find((c) => c.name === "svc.b.test/admin.a.test");
      assert.ok(out);
      const closed = await api(`/api/connections/${out.id}`, { method: "DELETE" });
      assert.equal(closed.status, 202);
      await waitFor("the link closed", async () =>
        (await items("established-outgoing")).some((i) => i.node.endsWith(out.id)) ? undefined : true,
      );
      // The queue reconnects when there is something to send again.
      await send("svc.b.test", "again");
      await remoteComponent.waitFor(/<body>again<\/body>/, 8000);
    });
  });

  describe("ferry connections / ferry link (through the HTTP API)", () => {
    const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));
    const ferry = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
          timeout: 10_000,
        });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
      }
    };

    it("prints the connections as tables, finding the API in the config file", async () => {
      await member("established-outgoing", "svc.b.test/admin.a.test");
      const { code, stdout } = await ferry("connections", "--config", configFile);
      assert.equal(code, 0);
      assert.match(stdout, /^Connecting incoming connections \(\d+\)$/m);
      assert.match(stdout, /^Established outgoing connections \(1\)$/m);
      assert.match(stdout, /^ID +NAME +STATE +IP\/PORT +AUTH +STANZAS +IN STATE$/m);
      assert.match(
        stdout,
        /svc\.b\.test\/admin\.a\.test +we had success with our dialback request +127\.0\.0\.1;\d+ <-> 127\.0\.0\.1;\d+ \(no TLS\) +dialback +\d+/,
      );
    });

    it("prints a link's history, and fails clearly on a wrong token", async () => {
      const { code, stdout } = await ferry(
        "link",
        "refused.test",
        "--url",
        `http://127.0.0.1:${http}`,
        "--token",
        TOKEN,
      );
      assert.equal(code, 0);
      assert.match(stdout, /^refused\.test: last \d+ attempt\(s\)$/m);
      assert.match(
        stdout,
        /^1 +\S+Z +admin\.a\.test +failed +created → connecting → failed +could not connect to refused\.test/m,
      );
      assert.match(stdout, /ECONNREFUSED/);
      const wrong = await ferry("connections", "--url", `http://127.0.0.1:${http}`, "--token", "nope");
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /HTTP 401: wrong bearer token/);
      const usage = await ferry("link");
      assert.equal(usage.code, 2);
    });
  });
});
