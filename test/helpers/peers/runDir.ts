/**
 * A per-test run folder for real peers (configs, data, logs) and the processes started from it.
 * Every peer's command line names the run folder, so a PID is only ever signalled after
 * /proc/<pid>/cmdline proves it is still ours (PIDs are reused; never kill by name).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export class RunDir {
  readonly path: string;
  private readonly unregister: () => void;

  private constructor(dir: string) {
    this.path = dir;
    this.unregister = onAbnormalExit(() => {
      this.remove();
    });
  }

  /** Makes a fresh folder under os.tmpdir(); `label` only makes it recognisable. */
  static create(label = "peers"): RunDir {
    return new RunDir(mkdtempSync(path.join(os.tmpdir(), `ferry-${label}-`)));
  }

  /** Absolute path of a file or folder inside the run folder. */
  file(...parts: string[]): string {
    return path.join(this.path, ...parts);
  }

  /** Removes the folder, unless FERRY_KEEP_RUN is set (to read the peers' logs after a failure). */
  remove(): void {
    this.unregister();
    if (process.env.FERRY_KEEP_RUN !== undefined && process.env.FERRY_KEEP_RUN !== "") {
      process.stderr.write(`FERRY_KEEP_RUN: keeping ${this.path}\n`);
      return;
    }
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface SpawnOptions {
  runDir: RunDir;
  /** Short name: the log is `<run>/<name>.out`. */
  name: string;
  command: string;
  /** Must name the run folder somewhere, so stop() can recognise the process. */
  args: string[];
  env?: NodeJS.ProcessEnv;
}

/** Whether /proc says `pid` is alive and its command line names `marker`. */
function isOurs(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").includes(marker);
  } catch {
    return false;
  }
}

/** Peers still running in this test process: killed if the process exits without stopping them. */
const running = new Set<PeerProcess>();

export class PeerProcess {
  readonly name: string;
  readonly pid: number;
  /** File that receives the peer's stdout and stderr. */
  readonly logFile: string;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private readonly marker: string;

  constructor(options: SpawnOptions) {
    const { runDir, name, command, args, env } = options;
    // The cmdline check in stop() would otherwise refuse to ever stop this process.
    if (!args.some((a) => a.includes(runDir.path)))
      throw new Error(`${name}: arguments must name the run folder ${runDir.path}`);
    this.name = name;
    this.marker = runDir.path;
    this.logFile = runDir.file(`${name}.out`);
    const fd = openSync(this.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(command, args, { cwd: runDir.path, env: env ?? process.env, stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        running.delete(this);
        resolve();
      });
      // A spawn error (e.g. ENOENT) is followed by no exit event.
      child.once("error", () => {
        running.delete(this);
        resolve();
      });
    });
    if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
    this.pid = child.pid;
    running.add(this);
  }

  get running(): boolean {
    return running.has(this);
  }

  /** The peer's output so far (for error messages). */
  log(lastChars = 4000): string {
    try {
      return readFileSync(this.logFile, "utf8").slice(-lastChars);
    } catch {
      return "";
    }
  }

  /** Sends `signal` only if the PID still names the run folder. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.running || !isOurs(this.pid, this.marker)) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    // Refused only when the process already died (a zombie has an empty cmdline): it is about to
    // be reaped, and its PID cannot have been reused before that.
    const termed = this.signal("SIGTERM");
    if (!(await this.exitsWithin(graceMs)) && termed && this.signal("SIGKILL")) await this.exited;
  }

  private async exitsWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => {
        resolve(false);
      }, ms);
    });
    const exited = await Promise.race([this.exited.then(() => true), timedOut]);
    clearTimeout(timer);
    return exited;
  }
}

export function spawnPeer(options: SpawnOptions): PeerProcess {
  return new PeerProcess(options);
}

/** Synchronous clean-ups owed if the process ends without its after-hooks (hosts lines, folders). */
const lastResorts = new Set<() => void>();

/** Registers `step` to run if the process exits or is killed first; returns its unregistration. */
export function onAbnormalExit(step: () => void): () => void {
  lastResorts.add(step);
  return () => {
    lastResorts.delete(step);
  };
}

// Last resort when a test process ends without its after-hooks (crash, runner timeout, ^C): no peer
// may outlive it and hold its loopback address and ports, nor its lines stay in /etc/hosts.
function runLastResorts(): void {
  for (const peer of running) peer.signal("SIGKILL");
  for (const step of [...lastResorts].reverse()) {
    try {
      step();
    } catch {
      // best effort: the others must still run
    }
  }
  lastResorts.clear();
}
process.once("exit", runLastResorts);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    runLastResorts();
    process.kill(process.pid, sig); // our listener is gone now: default action
  });
}

/**
 * Resolves once something accepts TCP connections on host:port. With `peer`, fails as soon as that
 * process exits, with its log in the message.
 */
export async function waitForPort(
  host: string,
  port: number,
  timeoutMs: number,
  peer?: PeerProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (peer !== undefined && !peer.running)
      throw new Error(
        `${peer.name} exited (code ${String(peer.exitCode)}, signal ${String(peer.exitSignal)}) before listening on ${host}:${port}:\n${peer.log()}`,
      );
    if (await canConnect(host, port)) return;
    if (Date.now() >= deadline)
      throw new Error(
        `nothing listens on ${host}:${port} after ${timeoutMs} ms${peer === undefined ? "" : `; ${peer.name} log:\n${peer.log()}`}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Resolves once `file` contains `text` (for peers that accept TCP connections before they are
 * ready); fails as soon as `peer` exits.
 */
export async function waitForLog(
  file: string,
  text: string,
  timeoutMs: number,
  peer: PeerProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let content = "";
    try {
      content = readFileSync(file, "utf8");
    } catch {
      // not written yet
    }
    if (content.includes(text)) return;
    const logs = `${file}:\n${content.slice(-3000)}\n${peer.logFile}:\n${peer.log(3000)}`;
    if (!peer.running)
      throw new Error(
        `${peer.name} exited (code ${String(peer.exitCode)}, signal ${String(peer.exitSignal)}) before logging "${text}"; ${logs}`,
      );
    if (Date.now() >= deadline)
      throw new Error(`${peer.name} did not log "${text}" within ${timeoutMs} ms; ${logs}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Fails when something already accepts connections on host:port. Peers that cannot bind may keep
 * running (Prosody does), and a readiness check would then be answered by whoever holds the port —
 * e.g. a test file running in parallel with the same addresses.
 */
export async function assertFree(host: string, port: number): Promise<void> {
  if (await canConnect(host, port))
    throw new Error(
      `${host}:${port} is already in use (another test file's peer? give each its own address)`,
    );
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1000);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => {
      done(true);
    });
    socket.once("error", () => {
      done(false);
    });
    socket.once("timeout", () => {
      done(false);
    });
  });
}

export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Cleanup steps collected as a test starts things, run newest first from an after/afterEach hook;
 * every step runs even when an earlier one fails.
 */
export class Teardown {
  private steps: (() => unknown)[] = [];

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  /**
   * Awaits peers started in parallel and registers one step stopping (in parallel) every one that
   * started, even when another failed; then rethrows the first failure.
   */
  async startAll<T extends readonly Stoppable[]>(starts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
    const settled = await Promise.allSettled(starts as readonly Promise<Stoppable>[]);
    const started = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    if (started.length > 0) this.add(() => Promise.all(started.map((peer) => peer.stop())));
    for (const r of settled) if (r.status === "rejected") throw r.reason;
    return started as unknown as T;
  }

  /** Runs the steps registered since the last run. */
  async run(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    const errors: unknown[] = [];
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "teardown failed");
  }
}
