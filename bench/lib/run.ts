// bench/lib/run.ts — owns process execution for the benchmarks: timed runs of one argv
// (wall time by performance.now() around Bun.spawn, exit code + stderr captured), shell
// pipelines built from argv arrays, background processes, the warm/cold cache preparation
// before each run, and the untimed removal of destinations between runs.

import { writeFileSync } from "node:fs";

export type CacheMode = "warm" | "cold";

export interface RunResult {
  argv: readonly string[];
  /** Wall time in seconds from spawn to exit. */
  seconds: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Kill the process (SIGKILL) after this many milliseconds; default 30 minutes. */
  timeoutMs?: number;
}

export function ok(r: RunResult): boolean {
  return r.exitCode === 0 && !r.timedOut;
}

/** One line describing why a run failed (exit status + first stderr lines). */
export function failureNote(r: RunResult): string {
  const status = r.timedOut
    ? "timed out"
    : r.signal !== null
      ? `killed by ${r.signal}`
      : `exit ${r.exitCode}`;
  const err = r.stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(0, 2)
    .join(" / ");
  const short = err.length > 160 ? `${err.slice(0, 157)}...` : err;
  return short.length > 0 ? `${status}: ${short}` : status;
}

function mergedEnv(extra: Record<string, string | undefined> | undefined): Record<string, string | undefined> {
  return extra === undefined ? { ...process.env } : { ...process.env, ...extra };
}

// ---- Interruption (Ctrl-C / SIGTERM / SIGHUP): kill our children, run cleanups, exit. ----

interface Killable {
  kill(signal?: number | NodeJS.Signals): void;
}

const children = new Set<Killable>();
const cleanups = new Set<() => Promise<void>>();
let handlersInstalled = false;
let interruptedBy: string | undefined;

/** The signal that interrupted the benchmark, if any; the harness stops starting runs then. */
export function interrupted(): string | undefined {
  return interruptedBy;
}

/** Registers an async clean-up (stop servers, remove temp files) run on interruption. */
export function addCleanup(fn: () => Promise<void>): void {
  installHandlers();
  cleanups.add(fn);
}

export function removeCleanup(fn: () => Promise<void>): void {
  cleanups.delete(fn);
}

function signalChildren(sig: NodeJS.Signals): void {
  for (const c of children) {
    try {
      c.kill(sig);
    } catch {
      // already gone
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => signalChildren("SIGKILL"));
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (interruptedBy !== undefined) return;
      interruptedBy = sig;
      console.error(`\n${sig}: stopping child processes and servers`);
      signalChildren("SIGTERM");
      const all = [...cleanups].map((c) => c());
      void Promise.race([Promise.allSettled(all), sleep(5000)]).then(() => process.exit(sig === "SIGINT" ? 130 : 143));
    });
  }
}

function adopt(c: Killable, exited: Promise<unknown>): void {
  installHandlers();
  children.add(c);
  void exited.finally(() => children.delete(c));
}

/** Starts argv with stdout discarded and stderr piped; killed with the benchmark when it is interrupted. */
function spawnAdopted(argv: readonly string[], opts: RunOptions): Bun.Subprocess<"ignore", "ignore", "pipe"> {
  const proc = Bun.spawn([...argv], {
    cwd: opts.cwd,
    env: mergedEnv(opts.env),
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  adopt(proc, proc.exited);
  return proc;
}

/** Runs argv once and measures its wall time; never throws for a failing command. */
export async function timedRun(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const proc = spawnAdopted(argv, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs ?? 30 * 60 * 1000);
  const stderrP = new Response(proc.stderr).text();
  const exitCode = await proc.exited;
  const t1 = performance.now();
  clearTimeout(timer);
  const stderr = await stderrP;
  return {
    argv,
    seconds: (t1 - t0) / 1000,
    exitCode: proc.signalCode !== null ? null : exitCode,
    signal: proc.signalCode === null ? null : String(proc.signalCode),
    timedOut,
    stderr,
  };
}

/** Runs a short helper command synchronously; throws with its stderr if it fails. */
export function mustRunSync(argv: readonly string[], what?: string): string {
  const r = Bun.spawnSync([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    const err = r.stderr.toString().trim();
    throw new Error(`${what ?? argv.join(" ")} failed (exit ${r.exitCode})${err ? `: ${err}` : ""}`);
  }
  return r.stdout.toString();
}

/** Like mustRunSync but returns undefined instead of throwing. */
export function tryRunSync(argv: readonly string[]): string | undefined {
  try {
    const r = Bun.spawnSync([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    return r.exitCode === 0 ? r.stdout.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** POSIX shell quoting of one word. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

/** `a | b | ...` as an argv for bash with pipefail, so any stage's failure fails the run. */
export function pipeline(...stages: readonly (readonly string[])[]): string[] {
  return ["bash", "-c", `set -o pipefail; ${stages.map(shellJoin).join(" | ")}`];
}

/** Flushes dirty data (warm) and additionally drops the page cache, dentries and inodes (cold). */
export function prepareCache(mode: CacheMode): void {
  mustRunSync(["sync"]);
  if (mode === "cold") writeFileSync("/proc/sys/vm/drop_caches", "3\n");
}

/** rm -rf, untimed; refuses suspicious paths. */
export function removeTree(path: string): void {
  if (!path.startsWith("/") || path.split("/").filter((p) => p.length > 0).length < 3) {
    throw new Error(`refusing to remove ${JSON.stringify(path)}`);
  }
  mustRunSync(["rm", "-rf", "--one-file-system", "--", path]);
}

/** Sends SIGTERM, waits up to graceMs for the exit, then SIGKILL. */
export async function stopProcess(bg: Background, graceMs = 3000): Promise<void> {
  try {
    bg.proc.kill("SIGTERM");
  } catch {
    // gone
  }
  const r = await Promise.race([bg.done, sleep(graceMs).then(() => undefined)]);
  if (r === undefined) {
    bg.proc.kill("SIGKILL");
    await bg.done;
  }
}

export interface Background {
  proc: Bun.Subprocess<"ignore", "ignore", "pipe">;
  /** Resolves with the exit code and the time (performance.now()) the process was seen to exit. */
  done: Promise<{ exitCode: number | null; signal: string | null; at: number; stderr: string }>;
}

/** Starts a long-running process (server, receiver); stderr is collected; killed on interruption. */
export function spawnBackground(argv: readonly string[], opts: RunOptions = {}): Background {
  const proc = spawnAdopted(argv, opts);
  const stderrP = new Response(proc.stderr).text();
  const done = proc.exited.then(async (code) => {
    const at = performance.now();
    const signal = proc.signalCode === null ? null : String(proc.signalCode);
    return { exitCode: signal !== null ? null : code, signal, at, stderr: await stderrP };
  });
  return { proc, done };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
