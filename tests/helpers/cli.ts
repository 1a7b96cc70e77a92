/**
 * Runs the uring-sync CLI as a user would: a child process with its own working directory
 * (a temp dir, never the repo), stdin closed, stdout/stderr captured, and a timeout that
 * kills the child and fails the test, so a hang is reported as a hang.
 *
 * Which program runs: `URING_SYNC_BIN` when set (the compiled binary, e.g. dist/uring-sync;
 * split on whitespace like bench/lib/cli.ts), otherwise `bun src/cli/main.ts` with the bun
 * that runs the tests. Owns: spawning and collecting; never decides what a result means.
 */
import type { Subprocess } from "bun";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dir, "..", "..");
export const MAIN_TS = join(REPO_ROOT, "src", "cli", "main.ts");
export const DIST_BIN = join(REPO_ROOT, "dist", "uring-sync");

/** Default time a single CLI run may take before it is killed and the test fails. */
export const DEFAULT_TIMEOUT_MS = 40_000;

export interface RunOptions {
  /** Working directory of the child. Default: a private empty temp dir that must stay empty (removed after). */
  cwd?: string;
  /** Kill the child (SIGKILL) and throw after this long. */
  timeoutMs?: number;
  /** Extra environment (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  /** Run as this unprivileged user (via setpriv; the test process must be root). */
  user?: { uid: number; gid: number };
  /** The command to run instead of the default (e.g. [DIST_BIN]). */
  command?: string[];
}

export interface RunResult {
  argv: string[];
  /** Exit status, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** The command prefix that runs uring-sync: URING_SYNC_BIN or `bun src/cli/main.ts`. */
export function cliCommand(): string[] {
  const env = process.env.URING_SYNC_BIN;
  if (env !== undefined && env.trim() !== "") {
    // The child runs in a temp dir: a relative program path is relative to where the tests started.
    const [prog, ...rest] = env.trim().split(/\s+/);
    return [prog.includes("/") ? resolve(prog) : prog, ...rest];
  }
  return [process.execPath, MAIN_TS];
}

/**
 * A shared working directory outside the repo for children that need no private one
 * (used by tests/helpers/net.ts). Fixed path, so nothing piles up: bun test runs no exit
 * hooks to remove a per-process one.
 */
export function defaultCwd(): string {
  const d = "/tmp/uring-sync-e2e-cwd";
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o755);
  return d;
}

let unprivileged: string[] | undefined;

/**
 * What an unprivileged user can run: the checkout (and bun in its node_modules) may sit in
 * a directory only root can enter (a 0700 temp dir, /root...), so copy the compiled binary
 * into a world-readable place. Built first if it is missing.
 */
function unprivilegedCommand(): string[] {
  if (process.env.URING_SYNC_BIN !== undefined) return cliCommand();
  if (unprivileged !== undefined) return unprivileged;
  if (!existsSync(DIST_BIN)) {
    const b = Bun.spawnSync([process.execPath, join(REPO_ROOT, "scripts", "build.ts")], { stdout: "ignore", stderr: "inherit" });
    if (b.exitCode !== 0) throw new Error("could not build dist/uring-sync for the unprivileged runs");
  }
  const dir = mkdtempSync("/tmp/uring-sync-unpriv-");
  chmodSync(dir, 0o755);
  const bin = join(dir, "uring-sync");
  copyFileSync(DIST_BIN, bin);
  chmodSync(bin, 0o755);
  if ((statSync(bin).mode & 0o005) !== 0o005) throw new Error(`${bin} is not world-executable`);
  unprivileged = [bin];
  return unprivileged;
}

/** A fresh, empty, world-traversable directory for one run (an unprivileged child can start there too). */
function privateCwd(): string {
  const d = mkdtempSync("/tmp/uring-sync-e2e-cwd-");
  chmodSync(d, 0o755);
  return d;
}

export interface Running {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  argv: string[];
  /** Resolves when the child ends (or rejects on timeout, after killing it). */
  result: Promise<RunResult>;
}

/** Start the CLI without waiting; for tests that signal it mid-run. */
export function startCli(args: readonly string[], opts: RunOptions = {}): Running {
  const cwd = opts.cwd ?? privateCwd();
  const base = opts.command ?? (opts.user === undefined ? cliCommand() : unprivilegedCommand());
  const prefix = opts.user === undefined
    ? []
    : ["setpriv", `--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, "--clear-groups", "--"];
  const argv = [...prefix, ...base, ...args];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  delete env.URING_SYNC_DEBUG; // stack traces would change what a user sees
  env.NO_COLOR = "1";
  if (opts.user !== undefined) env.HOME = cwd;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const started = performance.now();
  const proc = Bun.spawn(argv, { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const result = (async (): Promise<RunResult> => {
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    clearTimeout(timer);
    const r: RunResult = {
      argv,
      code: proc.exitCode,
      signal: proc.signalCode === null ? null : String(proc.signalCode),
      stdout,
      stderr,
      elapsedMs: Math.round(performance.now() - started),
    };
    const left = opts.cwd === undefined ? readdirSync(cwd) : [];
    if (opts.cwd === undefined) rmSync(cwd, { recursive: true, force: true });
    if (timedOut) throw new Error(`HANG: did not finish within ${timeoutMs} ms, killed.\n${formatResult(r)}`);
    if (left.length > 0) throw new Error(`the CLI wrote into its working directory: ${JSON.stringify(left)}\n${formatResult(r)}`);
    return r;
  })();
  return { proc, argv, result };
}

/** Run the CLI to completion. Throws (failing the test) if it has to be killed for hanging. */
export async function runCli(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return await startCli(args, opts).result;
}

/** Everything about a run, for assertion messages. */
export function formatResult(r: RunResult): string {
  const cmd = r.argv.map((a) => (/^[\w./=:@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
  return [
    `$ ${cmd}`,
    `exit: ${r.code ?? `signal ${r.signal}`} (${r.elapsedMs} ms)`,
    `--- stdout ---\n${clip(r.stdout)}`,
    `--- stderr ---\n${clip(r.stderr)}`,
  ].join("\n");
}

function clip(s: string): string {
  return s.length > 4000 ? `${s.slice(0, 2000)}\n[...${s.length - 4000} chars...]\n${s.slice(-2000)}` : s;
}

/** Throw at once if the run only said "not built yet" (exit 5), whatever the test expected next. */
export function failIfNotBuilt(r: RunResult): void {
  if (r.code === 5) throw new Error(`exit 5 = 'not built yet': the copy engine is missing\n${formatResult(r)}`);
}

/** Throw (with the whole run in the message) unless the CLI exited with `code`. */
export function expectExit(r: RunResult, code: number): void {
  if (r.code !== code) {
    const hint = r.code === 5 ? " [exit 5 = 'not built yet': the copy engine is missing]" : "";
    throw new Error(`expected exit ${code}, got ${r.code ?? `signal ${r.signal}`}${hint}\n${formatResult(r)}`);
  }
}

/** Non-empty lines of a stream. */
export function lines(s: string): string[] {
  return s.split("\n").filter((l) => l.trim() !== "");
}

/** Parse stdout as the single JSON document --json promises. */
export function parseJson(r: RunResult): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(r.stdout);
  } catch (e) {
    throw new Error(`--json: stdout is not one JSON document (${(e as Error).message})\n${formatResult(r)}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`--json: expected an object\n${formatResult(r)}`);
  return v as Record<string, unknown>;
}

/** Fail loudly (never skip) when a test needs root and does not have it. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`this test must run as root (${what}); it cannot be checked as uid ${process.getuid?.()}`);
  }
}

/** Wait until `cond()` is true, polling every `everyMs`; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string, everyMs = 1): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}
