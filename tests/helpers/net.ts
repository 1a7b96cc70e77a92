/**
 * Network e2e plumbing: a `uring-sync recv` child on a free loopback port, a sender run
 * against it, and both results collected with timeouts that kill and fail (a hang is
 * reported as a hang, with everything both sides printed).
 *
 * Port choice: the CLI refuses port 0 (`--listen` wants 1..65535), so a free port is found
 * by binding port 0 and closing it; the receiver is started on it and is "listening" once
 * /proc/net/tcp{,6} shows a LISTEN socket on that port (no probe connection, which would
 * itself be a failed session). If the receiver dies with EADDRINUSE (another process took
 * the port in between) a new port is tried.
 *
 * Secrets reach children through URING_SYNC_SECRET (never argv) unless a test says
 * otherwise; the parent's URING_SYNC_SECRET / URING_SYNC_CRYPTO never leak into a child.
 * Owns: spawning, waiting, collecting. Never decides what a result means.
 */
import { afterAll, afterEach } from "bun:test";
import type { Subprocess } from "bun";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { cliCommand, defaultCwd, formatResult, parseJson, runCli, startCli, type RunResult } from "./cli.ts";
import { workDir } from "./e2e.ts";
import { writeRandom, writeTree } from "./tree.ts";

/** The shared secret the tests use unless a test picks another. */
export const TEST_SECRET = "correct horse battery staple: uring-sync tests";
/**
 * Environment knob for a short handshake timeout in tests. PROTOCOL.md section 10 gives the
 * default (10 s); the engine must honour this variable for the timeout tests to be quick
 * (if it does not, those tests still pass on the 10 s default, only slower).
 */
export const HANDSHAKE_TIMEOUT_ENV = "URING_SYNC_HANDSHAKE_TIMEOUT_MS";
/** Documented default handshake timeout (docs/PROTOCOL.md section 10). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export type Env = Record<string, string | undefined>;

/**
 * Environment for a CLI child: the secret via URING_SYNC_SECRET (string), or no secret at
 * all (null); nothing inherited that would change the behaviour under test.
 */
export function netEnv(secret: string | null | undefined, extra: Env = {}): Env {
  return {
    URING_SYNC_SECRET: secret === null ? undefined : (secret ?? TEST_SECRET),
    URING_SYNC_CRYPTO: undefined,
    [HANDSHAKE_TIMEOUT_ENV]: undefined,
    ...extra,
  };
}

/** `host:port`, with brackets for IPv6 literals. */
export function hostPortArg(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A port that was free a moment ago on `host` (bind 0, read, close). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const a = srv.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no port from listen(0)"))));
    });
  });
}

/** Socket inodes of LISTEN sockets on `port` (IPv4 and IPv6 tables). */
export function listeningInodes(port: number): number[] {
  const out: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = f[1];
      const p = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
      if (p === port && f[3] === "0A") out.push(Number(f[9]));
    }
  }
  return out;
}

/** Socket inodes open in process `pid` (threads share the table). */
function socketInodesOf(pid: number): Set<number> {
  const s = new Set<number>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) s.add(Number(m[1]));
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // process gone
  }
  return s;
}

export interface ReceiverOptions {
  /** Destination directory (recv's DST). */
  dst: string;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Builds the --listen value; default hostPortArg(host, port). */
  listen?: (host: string, port: number) => string;
  /** More recv arguments (e.g. --keep-listening, --crypto user, --json). */
  args?: string[];
  /** The secret (URING_SYNC_SECRET); null for none at all (recv then makes a one-time code). */
  secret?: string | null;
  env?: Env;
  /** The receiver is killed and its result rejects with HANG after this long. Default 120 s. */
  lifetimeMs?: number;
  /** Time allowed from spawn to LISTEN. Default 20 s (bun start-up on a loaded 2-core box). */
  startMs?: number;
  cwd?: string;
  /**
   * Return the (dead) receiver instead of throwing when it exits before listening, for
   * tests that expect it to refuse to start (e.g. --crypto kernel without kTLS).
   */
  earlyExitOk?: boolean;
  /** The program instead of cliCommand() (e.g. `env -i ... dist/uring-sync` for a clean environment). */
  command?: string[];
}

export interface Receiver {
  readonly argv: string[];
  readonly host: string;
  readonly port: number;
  /** What a sender is given: "127.0.0.1:PORT", "[::1]:PORT". */
  readonly address: string;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Output so far (live). */
  stdout(): string;
  stderr(): string;
  alive(): boolean;
  /** Resolves when the receiver ends; rejects (after SIGKILL) if it outlives lifetimeMs. */
  readonly result: Promise<RunResult>;
  /** The result if the receiver ends within `ms`, else null (still running). */
  waitExit(ms: number): Promise<RunResult | null>;
  /** Wait until stderr matches `re`; returns the matching line, or throws with the output. */
  waitStderr(re: RegExp, ms: number, what?: string): Promise<string>;
  /** Send a signal, wait for the end (SIGKILL after `graceMs`), return the result. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<RunResult>;
  /** Everything about the run so far, for failure messages. */
  describe(): string;
}

const live = new Set<Receiver>();
process.on("exit", () => {
  for (const r of live) {
    try {
      r.proc.kill("SIGKILL");
    } catch {
      // gone
    }
  }
});

/** Kill every receiver a test left running (call from afterEach/afterAll). */
export async function killAllReceivers(): Promise<void> {
  const all = [...live];
  live.clear();
  for (const r of all) {
    if (r.alive()) r.proc.kill("SIGKILL");
    await r.result.catch(() => undefined);
  }
}

function childEnvironment(extra: Env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  delete env.URING_SYNC_DEBUG;
  env.NO_COLOR = "1";
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Appends everything `stream` yields to `sink.text` (UTF-8), until it ends. */
export async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const dec = new TextDecoder();
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    sink.text += dec.decode(value, { stream: true });
  }
  sink.text += dec.decode();
}

function spawnReceiver(opts: ReceiverOptions, host: string, port: number): Receiver {
  const listen = (opts.listen ?? hostPortArg)(host, port);
  const cwd = opts.cwd ?? defaultCwd();
  const argv = [...(opts.command ?? cliCommand()), "recv", opts.dst, "--listen", listen, ...(opts.args ?? [])];
  const env = childEnvironment(netEnv(opts.secret, opts.env ?? {}));
  const started = performance.now();
  const proc = Bun.spawn(argv, { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const out = { text: "" };
  const err = { text: "" };
  const lifetimeMs = opts.lifetimeMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, lifetimeMs);
  let exited = false;
  const snapshot = (): RunResult => ({
    argv,
    code: proc.exitCode,
    signal: proc.signalCode === null ? null : String(proc.signalCode),
    stdout: out.text,
    stderr: err.text,
    elapsedMs: Math.round(performance.now() - started),
  });
  const result = (async (): Promise<RunResult> => {
    await Promise.all([collect(proc.stdout, out), collect(proc.stderr, err), proc.exited]);
    exited = true;
    clearTimeout(timer);
    const r = snapshot();
    if (timedOut) throw new Error(`HANG: the receiver was still running after ${lifetimeMs} ms, killed.\n${formatResult(r)}`);
    if (opts.cwd === undefined && existsSync(cwd)) {
      const left = readdirSync(cwd);
      if (left.length > 0) {
        rmSync(cwd, { recursive: true, force: true });
        throw new Error(`the receiver wrote into its working directory (${cwd}): ${JSON.stringify(left)}\n${formatResult(r)}`);
      }
    }
    return r;
  })();
  result.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
  const rcv: Receiver = {
    argv,
    host,
    port,
    address: hostPortArg(host, port),
    proc,
    stdout: () => out.text,
    stderr: () => err.text,
    alive: () => !exited && proc.exitCode === null && proc.signalCode === null,
    result,
    async waitExit(ms: number): Promise<RunResult | null> {
      let t: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((res) => {
        t = setTimeout(() => res(null), ms);
      });
      try {
        return await Promise.race([result, timeout]);
      } finally {
        clearTimeout(t);
      }
    },
    async waitStderr(re: RegExp, ms: number, what = `stderr matching ${re}`): Promise<string> {
      const end = performance.now() + ms;
      for (;;) {
        const line = err.text.split("\n").find((l) => re.test(l));
        if (line !== undefined) return line;
        if (performance.now() > end || exited) {
          // one last look after the streams drained
          const again = err.text.split("\n").find((l) => re.test(l));
          if (again !== undefined) return again;
          throw new Error(`receiver: no ${what} within ${ms} ms\n${formatResult(snapshot())}`);
        }
        await Bun.sleep(20);
      }
    },
    async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 5_000): Promise<RunResult> {
      if (rcv.alive()) proc.kill(signal);
      const r = await rcv.waitExit(graceMs);
      if (r !== null) return r;
      proc.kill("SIGKILL");
      const killed = await result;
      throw new Error(`receiver ignored ${signal} for ${graceMs} ms and was killed\n${formatResult(killed)}`);
    },
    describe: () => formatResult(snapshot()),
  };
  live.add(rcv);
  void result.finally(() => live.delete(rcv)).catch(() => undefined);
  return rcv;
}

/**
 * Start `uring-sync recv DST --listen HOST:PORT` on a free port and wait until it listens.
 * Throws, with the receiver's output, if it exits first (e.g. exit 5, "not built yet").
 */
export async function startReceiver(opts: ReceiverOptions): Promise<Receiver> {
  const host = opts.host ?? "127.0.0.1";
  const startMs = opts.startMs ?? 20_000;
  let lastFailure = "";
  for (let attempt = 0; attempt < 6; attempt++) {
    let port = await freePort(host);
    while (listeningInodes(port).length > 0) port = await freePort(host);
    const r = spawnReceiver(opts, host, port);
    const end = performance.now() + startMs;
    for (;;) {
      const inodes = listeningInodes(port);
      if (inodes.length > 0) {
        const mine = socketInodesOf(r.proc.pid);
        // Ours, or (if /proc/PID/fd is unreadable) the port we just found free.
        if (mine.size === 0 || inodes.some((i) => mine.has(i))) return r;
      }
      if (!r.alive()) {
        const res = await r.result;
        if (/EADDRINUSE|address already in use|in use/i.test(res.stderr)) {
          lastFailure = formatResult(res);
          break; // someone took the port: try another
        }
        if (opts.earlyExitOk) return r;
        throw new Error(`the receiver exited before listening on ${hostPortArg(host, port)}${res.code === 5 ? " [exit 5 = 'not built yet': the network engine is missing]" : ""}\n${formatResult(res)}`);
      }
      if (performance.now() > end) {
        r.proc.kill("SIGKILL");
        const res = await r.result.catch((e: Error) => e.message);
        throw new Error(`the receiver did not listen on ${hostPortArg(host, port)} within ${startMs} ms\n${typeof res === "string" ? res : formatResult(res)}`);
      }
      await Bun.sleep(15);
    }
  }
  throw new Error(`could not start a receiver: ports kept being taken\n${lastFailure}`);
}

export interface SenderOptions {
  args?: string[];
  secret?: string | null;
  env?: Env;
  timeoutMs?: number;
  cwd?: string;
  /** The program instead of cliCommand(). */
  command?: string[];
  /** Run the sender as this unprivileged user (the compiled binary, via setpriv: see RunOptions.user). */
  user?: { uid: number; gid: number };
}

/** `uring-sync send SRC ADDRESS [args]`, to completion (killed and failed on a hang). */
export async function runSender(src: string, address: string, opts: SenderOptions = {}): Promise<RunResult> {
  return await runCli(["send", src, address, ...(opts.args ?? [])], {
    env: netEnv(opts.secret, opts.env ?? {}),
    timeoutMs: opts.timeoutMs ?? 60_000,
    cwd: opts.cwd,
    command: opts.command,
    user: opts.user,
  });
}

/** Size of the receiver's kept partial of `name` in `dst` (.NAME.usync-partial), or -1. */
export function partialSize(dst: string, name: string): number {
  try {
    return statSync(join(dst, `.${name}.usync-partial`)).size;
  } catch {
    return -1;
  }
}

/**
 * Starts `send SRC ADDRESS -j JOBS --json` and SIGKILLs it (SIGSTOP first, so it sends
 * nothing more) once the receiver's partial of `name` has at least `atLeast` bytes, then
 * waits for the receiver to report the dropped session: the set-up of every resume test.
 */
export async function killSenderAt(rcv: Receiver, src: string, dst: string, name: string, atLeast: number, jobs: number): Promise<void> {
  const s = startCli(["send", src, rcv.address, "-j", String(jobs), "--json"], { env: netEnv(undefined), timeoutMs: 120_000 });
  const until = performance.now() + 60_000;
  while (partialSize(dst, name) < atLeast && performance.now() < until) await Bun.sleep(2);
  s.proc.kill("SIGSTOP");
  s.proc.kill("SIGKILL");
  await s.result.catch(() => undefined);
  await rcv.waitStderr(/failed/, 15_000, "the receiver reporting the dropped session");
}

/**
 * After a sender finished, the receiver must end on its own within `ms` (default one-shot
 * mode); throws with both sides' output if it does not.
 */
export async function receiverEnds(rcv: Receiver, ms = 15_000, sender?: RunResult): Promise<RunResult> {
  const r = await rcv.waitExit(ms);
  if (r !== null) return r;
  const running = rcv.describe();
  await rcv.stop("SIGKILL", 2_000).catch(() => undefined);
  throw new Error(`the receiver did not exit within ${ms} ms after the session${sender ? `\n--- sender ---\n${formatResult(sender)}` : ""}\n--- receiver ---\n${running}`);
}

export interface TransferOptions {
  src: string;
  dst: string;
  host?: string;
  /** Overrides the sender's address (e.g. "localhost:PORT"): built from the receiver's port. */
  senderAddress?: (port: number) => string;
  recvArgs?: string[];
  sendArgs?: string[];
  /** Both ends (default TEST_SECRET). */
  secret?: string | null;
  recvEnv?: Env;
  sendEnv?: Env;
  timeoutMs?: number;
  /** The program both ends run instead of cliCommand(). */
  command?: string[];
}

export interface TransferResult {
  recv: RunResult;
  send: RunResult;
  port: number;
}

/** One whole session: receiver up, sender run, receiver ends. Exit codes are not judged here. */
export async function transfer(o: TransferOptions): Promise<TransferResult> {
  const rcv = await startReceiver({ dst: o.dst, host: o.host, args: o.recvArgs, secret: o.secret, env: o.recvEnv, command: o.command });
  const address = o.senderAddress ? o.senderAddress(rcv.port) : rcv.address;
  let send: RunResult;
  try {
    send = await runSender(o.src, address, { args: o.sendArgs, secret: o.secret, env: o.sendEnv, timeoutMs: o.timeoutMs, command: o.command });
  } catch (e) {
    await rcv.stop("SIGKILL", 2_000).catch(() => undefined);
    throw new Error(`${(e as Error).message}\n--- receiver ---\n${rcv.describe()}`);
  }
  const recv = await receiverEnds(rcv, 15_000, send);
  return { recv, send, port: rcv.port };
}

/**
 * One session with --json on both ends (receiver --crypto user) and the same extra
 * environment on both (e.g. a short idle timeout); both JSON documents parsed.
 */
export async function transferJson(src: string, dst: string, sendArgs: string[], env: Env = {}, timeoutMs = 180_000) {
  const t = await transfer({
    src, dst, sendArgs: [...sendArgs, "--json"], recvArgs: ["--crypto", "user", "--json"], sendEnv: env, recvEnv: env, timeoutMs,
  });
  return { t, send: parseJson(t.send), recv: parseJson(t.recv) };
}

/** Both sides of a session, for assertion messages. */
export function formatBoth(t: { recv: RunResult; send: RunResult }): string {
  return `--- sender ---\n${formatResult(t.send)}\n--- receiver ---\n${formatResult(t.recv)}`;
}

/** Throw (with both runs) unless sender and receiver exited with the given codes. */
export function expectBothExit(t: { recv: RunResult; send: RunResult }, send: number, recv: number): void {
  if (t.send.code !== send || t.recv.code !== recv) {
    const hint = t.send.code === 5 || t.recv.code === 5 ? " [exit 5 = 'not built yet': the network engine is missing]" : "";
    throw new Error(`expected sender exit ${send} and receiver exit ${recv}, got ${t.send.code ?? t.send.signal} and ${t.recv.code ?? t.recv.signal}${hint}\n${formatBoth(t)}`);
  }
}

/** Signs that a process crashed instead of reporting an error: stack frames, JS engine errors. */
export const CRASH_SIGNS = /^\s+at .+:\d+:\d+\)?$|\b(TypeError|RangeError|ReferenceError|SyntaxError|AssertionError|Unhandled|uncaught|panic|Segmentation fault|core dumped|bun has crashed|internal error)\b/im;

/** Throw unless `text` is free of crash signs. */
export function expectNoCrash(text: string, what: string, full?: string): void {
  const m = CRASH_SIGNS.exec(text);
  if (m !== null) throw new Error(`${what} shows a crash or an internal error (${JSON.stringify(m[0].trim())}), not a clear one-line error\n${full ?? text}`);
}

/**
 * The one-time code `recv` printed on stderr when started without a secret. Accepts
 * `URING_SYNC_SECRET=CODE`, or a line that mentions a "code" followed by the code (after a
 * colon, or as the last word), quotes and backticks stripped.
 */
export function parseOneTimeCode(stderr: string): string | undefined {
  const env = /URING_SYNC_SECRET=(['"]?)([^\s'"]+)\1/.exec(stderr);
  if (env) return env[2];
  for (const line of stderr.split("\n")) {
    if (!/\bcode\b/i.test(line)) continue;
    const afterColon = line.slice(line.lastIndexOf(":") + 1).trim();
    const tokens = (afterColon !== "" ? afterColon : line).split(/\s+/).map((t) => t.replace(/^[`'"(<[]+|[`'")>\].,;]+$/g, ""));
    const code = tokens.filter((t) => /^[A-Za-z0-9][A-Za-z0-9_+/=.-]{5,}$/.test(t) && /[0-9-]/.test(t)).pop();
    if (code !== undefined) return code;
  }
  return undefined;
}

/**
 * A per-file work directory for e2e network tests, with the hooks every such file needs:
 * receivers still running are killed after each test, and at the end the directory goes
 * (rm -rf: node's recursive rmSync is slow on 10,000 files). `fresh(tag)` is a new path in it.
 */
export function netWorkDir(name: string): { work: string; fresh: (tag: string) => string } {
  const work = workDir(name);
  let n = 0;
  afterEach(async () => {
    await killAllReceivers();
  });
  afterAll(async () => {
    await killAllReceivers();
    Bun.spawnSync(["rm", "-rf", "--", work]);
  }, 60_000);
  return { work, fresh: (tag: string): string => join(work, `${tag}-${++n}`) };
}

/** Size of the big file in the resume tests' source tree. */
export const RESUME_BIG = 160 * 1024 * 1024;

/** The resume tests' source tree: `fresh(tag)` made with big.bin (RESUME_BIG random bytes) and small.txt. */
export function resumeSource(dir: string): string {
  mkdirSync(dir);
  writeRandom(join(dir, "big.bin"), RESUME_BIG);
  writeTree(dir, { "small.txt": "small\n" });
  return dir;
}
