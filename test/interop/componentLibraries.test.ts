/**
 * Real component libraries through Ferry: xmpp.js's @xmpp/component (npm) and a slixmpp component
 * (Debian's python3-slixmpp) authenticate with the XEP-0114 handshake and exchange messages.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { component, xml, type Component, type XmlElement } from "@xmpp/component";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type FerryServer } from "../../src/server.js";
import { freePort } from "../helpers/wire.js";
import { ensureDebianPackage, runs } from "../helpers/debian.js";

const PYTHON = "/usr/bin/python3";
const ECHO = fileURLToPath(new URL("../../../test/interop/slixmpp_echo_component.py", import.meta.url));

/** Starts the slixmpp echo component and resolves once it has completed the handshake. */
function startSlixmpp(domain: string, secret: string, port: number): Promise<ChildProcess> {
  const child = spawn(PYTHON, [ECHO, domain, secret, "127.0.0.1", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`slixmpp component did not connect: ${output}`));
    }, 15_000);
    const onData = (data: Buffer): void => {
      output += data.toString();
      if (output.includes("READY")) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`slixmpp component exited with ${String(code)}: ${output}`));
    });
  });
}

async function startXmppJs(domain: string, password: string, port: number): Promise<Component> {
  const c = component({ service: `xmpp://127.0.0.1:${port}`, domain, password });
  c.on("error", () => undefined);
  await c.start();
  return c;
}

function nextMessage(c: Component, match: (el: XmlElement) => boolean): Promise<XmlElement> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error("no matching stanza within 10 s"));
    }, 10_000);
    const onStanza = (el: XmlElement): void => {
      if (!match(el)) return;
      clearTimeout(timer);
      c.off("stanza", onStanza);
      resolve(el);
    };
    c.on("stanza", onStanza);
  });
}

describe("component libraries through Ferry", () => {
  let server: FerryServer;
  let port: number;

  before(async () => {
    ensureDebianPackage("python3-slixmpp", () => runs(PYTHON, ["-c", "import slixmpp"]));
    port = await freePort();
    const { config } = loadConfigText(
      `[general]\nhosts = ["ferry.example"]\n\n[[listen.service]]\nport = ${port}\nip_address = "127.0.0.1"\npassword = "s3cret"\n`,
      "interop.toml",
    );
    server = await startServer(config, silentLogger);
  });

  after(async () => {
    await server.stop();
  });

  it("an xmpp.js component and a slixmpp component exchange messages", async () => {
    const slix = await startSlixmpp("echo.ferry.example", "s3cret", port);
    const js = await startXmppJs("js.ferry.example", "s3cret", port);
    try {
      const reply = nextMessage(js, (el) => el.is("message") && el.getChildText("body") !== null);
      await js.send(
        xml(
          "message",
          { to: "bot@echo.ferry.example", from: "user@js.ferry.example/r", type: "chat", id: "x1" },
          xml("body", {}, "hello <slixmpp> & co"),
        ),
      );
      const got = await reply;
      assert.equal(got.getChildText("body"), "echo: hello <slixmpp> & co");
      assert.equal(got.attrs.from, "bot@echo.ferry.example");
      assert.equal(got.attrs.to, "user@js.ferry.example/r");
    } finally {
      js.reconnect.stop();
      await js.stop();
      slix.kill("SIGTERM");
    }
  });

  it("two xmpp.js components round-trip an iq through Ferry, and one is refused a wrong password", async () => {
    const a = await startXmppJs("a.ferry.example", "s3cret", port);
    const b = await startXmppJs("b.ferry.example", "s3cret", port);
    try {
      b.on("stanza", (el: XmlElement) => {
        if (el.is("iq") && el.attrs.type === "get") {
          void b.send(
            xml("iq", {
              type: "result",
              id: el.attrs.id ?? "",
              from: el.attrs.to ?? "",
              to: el.attrs.from ?? "",
            }),
          );
        }
      });
      const result = nextMessage(a, (el) => el.is("iq") && el.attrs.id === "ping1");
      await a.send(
        xml(
          "iq",
          { type: "get", id: "ping1", to: "b.ferry.example", from: "a.ferry.example" },
          xml("ping", { xmlns: "urn:xmpp:ping" }),
        ),
      );
      assert.equal((await result).attrs.type, "result");

      const wrong = component({
        service: `xmpp://127.0.0.1:${port}`,
        domain: "c.ferry.example",
        password: "nope",
      });
      const refused = new Promise<string>((resolve) => {
        wrong.on("error", (err: Error) => {
          resolve(err.message);
        });
      });
      void wrong.start().catch(() => undefined);
      assert.match(await refused, /not-authorized/);
      wrong.reconnect.stop();
      await wrong.stop().catch(() => undefined);
    } finally {
      for (const c of [a, b]) {
        c.reconnect.stop();
        await c.stop();
      }
    }
  });
});
