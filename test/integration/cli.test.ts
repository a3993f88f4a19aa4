/**
 * The `ferry` command as an operator runs it: the file package.json's bin.ferry names, started with
 * --config, answering on its S2S port, refusing a bad config with option and line, and stopping on
 * SIGTERM within 2 s with exit code 0.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { S2S_HEADER, WirePeer, freePort } from "../helpers/wire.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));

async function ferryBin(): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as {
    bin: { ferry: string };
  };
  return path.join(root, pkg.bin.ferry);
}

async function withConfig<T>(text: string, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "ferry-cli-"));
  const file = path.join(dir, "ferry.toml");
  await writeFile(file, text);
  try {
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runToEnd(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [await ferryBin(), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { code, stdout, stderr };
}

describe("ferry command", () => {
  it("runs with --config, answers a jabber:server header, and exits 0 within 2 s of SIGTERM", async () => {
    const port = await freePort();
    await withConfig(
      `[general]\nhosts = ["example.org"]\nloglevel = "info"\n\n[[listen.s2s]]\nport = ${port}\nip_address = "127.0.0.1"\n`,
      async (file) => {
        const child = spawn(process.execPath, [await ferryBin(), "--config", file], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
        try {
          // Wait until the listener is up.
          const peer = await WirePeer.connectWhenListening(port, () => stderr);
          peer.send(S2S_HEADER("example.org", "remote.example"));
          const got = await peer.waitFor(/<\/stream:features>/);
          assert.match(got, /<stream:stream [^>]*from=['"]example\.org['"]/);
          assert.match(got, /urn:xmpp:features:dialback/);

          const signalled = Date.now();
          child.kill("SIGTERM");
          const code = await exited;
          assert.equal(code, 0, stderr);
          assert.ok(Date.now() - signalled < 2000, `took ${Date.now() - signalled} ms`);
          assert.match(
            peer.received,
            /<system-shutdown xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/,
          );
          assert.match(stderr, /XMPPI in:[0-9a-f]{32}/, "log lines carry the tag and the actor id");
        } finally {
          child.kill("SIGKILL");
        }
      },
    );
  });

  it("reloads certificates on SIGHUP without dropping an established stream", async () => {
    const port = await freePort();
    const dir = await mkdtemp(path.join(tmpdir(), "ferry-hup-"));
    const cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    const makeCert = (cn: string): void => {
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          key,
          "-out",
          cert,
          "-days",
          "2",
          "-subj",
          `/CN=${cn}`,
          "-addext",
          `subjectAltName=DNS:${cn}`,
        ],
        { stdio: "ignore" },
      );
    };
    makeCert("example.org");
    const file = path.join(dir, "ferry.toml");
    await writeFile(
      file,
      `[general]\nhosts = ["example.org"]\nloglevel = "notice"\n\n[[listen.s2s]]\nport = ${port}\nip_address = "127.0.0.1"\ntls.certfile = "${cert}"\ntls.keyfile = "${key}"\n`,
    );
    const child = spawn(process.execPath, [await ferryBin(), "--config", file], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const peer = await WirePeer.connectWhenListening(port, () => stderr);
      peer.send(S2S_HEADER("example.org", "remote.example"));
      await peer.waitFor(/<\/stream:features>/);
      makeCert("example.org");
      child.kill("SIGHUP");
      const until = Date.now() + 5000;
      while (!/certificates reloaded/.test(stderr) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      assert.match(stderr, /SIGHUP: certificates reloaded/);
      assert.equal(peer.closed, false, "the established stream is still open");
      // A broken certificate file: the old certificates stay, the server keeps running.
      await writeFile(cert, "not a certificate");
      child.kill("SIGHUP");
      const until2 = Date.now() + 5000;
      while (!/certificates not reloaded/.test(stderr) && Date.now() < until2)
        await new Promise((r) => setTimeout(r, 50));
      assert.match(stderr, /SIGHUP: certificates not reloaded, the old ones stay in use: .*cert\.pem/);
      const second = await WirePeer.connect(port);
      second.send(S2S_HEADER("example.org", "remote.example"));
      await second.waitFor(/<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]/);
      second.destroy();
      child.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
    } finally {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a config with a typo, naming the option and the file line", async () => {
    await withConfig(
      `[general]\nhosts = ["example.org"]\n\n[s2s]\noutgoing.conection_timeout = 5000\n`,
      async (file) => {
        const run = await runToEnd(["--config", file]);
        assert.equal(run.code, 1);
        assert.match(run.stderr, /conection_timeout/);
        assert.match(run.stderr, /ferry\.toml:5/);
        assert.match(run.stderr, /connection_timeout/, "suggests the right name");
      },
    );
  });

  it("check-config prints the effective config with defaults and hides secrets", async () => {
    await withConfig(
      `[general]\nhosts = ["example.org"]\n\n[s2s]\nshared = "do-not-print-me"\n`,
      async (file) => {
        const run = await runToEnd(["check-config", file]);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /connection_timeout = 10000|connection_timeout = 10_000/);
        assert.doesNotMatch(run.stdout, /do-not-print-me/);
      },
    );
  });

  it("check-config reports a missing file clearly", async () => {
    const run = await runToEnd(["check-config", "/nonexistent/ferry.toml"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /\/nonexistent\/ferry\.toml/);
  });

  it("rejects unknown commands with usage and exit code 2", async () => {
    const run = await runToEnd(["frobnicate"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /usage:/);
  });
});
