// tests/e2e/ci-recipe.test.ts — the CI recipe of docs/CI.md, run as written: the `run:`
// steps of docs/examples/github-actions.yml are executed the way a GitHub Actions runner
// would run them (bash -e, workflow/job/step env layered, ${{ secrets.* }} / ${{ vars.* }}
// filled in, $GITHUB_PATH honoured, one workspace and HOME per job, both jobs at the same
// time), over loopback against a temp tree, with the compiled dist/uring-sync served as the
// "release" through a file:// URL so the install step (download, sha256 check) runs too.
// Only the `Build` step is not run (it is the user's own; the test puts the tree in ./build).
// Then the --json summaries must parse and report the right counts and the trees must match;
// a second pipeline run on the same workspaces (an incremental build) must send only what
// changed and --delete what the build no longer makes.
// The same again with io_uring refused to every process of the steps (the seccomp fixture
// of tests/helpers/deny-uring.ts, EPERM like Docker's default profile, ENOSYS like gVisor):
// without --sync (automatic fallback), with the --sync steps docs/CI.md gives, and with
// URING_SYNC_BACKEND=sync; each must work and report the sync backend.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DIST_BIN, REPO_ROOT } from "../helpers/cli.ts";
import { denyUringLoader } from "../helpers/deny-uring.ts";
import { removeDir, workDir } from "../helpers/e2e.ts";
import { freePort } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeRandom, writeTree, type Snapshot } from "../helpers/tree.ts";

const WORKFLOW_PATH = join(REPO_ROOT, "docs", "examples", "github-actions.yml");
const CI_MD_PATH = join(REPO_ROOT, "docs", "CI.md");
/** The steps the test does not run, as job/step name: the user's own build. */
const NOT_RUN = ["send/Build"];
const STEP_TIMEOUT_MS = 90_000;
/** A PATH with the usual system tools (bash, curl, sha256sum) and no uring-sync. */
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

type Env = Record<string, string>;

interface Step {
  name?: string;
  run?: string;
  uses?: string;
  shell?: string;
  if?: string;
  env?: Env;
  with?: Record<string, string>;
}

interface Job {
  "runs-on": unknown;
  env?: Env;
  steps: Step[];
}

interface Workflow {
  env?: Env;
  jobs: Record<string, Job>;
}

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what}: expected a mapping`);
  return v as Record<string, unknown>;
}

function asEnv(v: unknown, what: string): Env | undefined {
  if (v === undefined) return undefined;
  const out: Env = {};
  for (const [k, x] of Object.entries(asRecord(v, what))) {
    if (typeof x !== "string" && typeof x !== "number") throw new Error(`${what}.${k}: expected a string`);
    out[k] = String(x);
  }
  return out;
}

function asStep(v: unknown, what: string): Step {
  const s = asRecord(v, what);
  for (const k of ["name", "run", "uses", "shell", "if"]) {
    if (s[k] !== undefined && typeof s[k] !== "string") throw new Error(`${what}.${k}: expected a string`);
  }
  const step = s as Step;
  if ((step.run === undefined) === (step.uses === undefined)) throw new Error(`${what}: a step has exactly one of run: and uses:`);
  step.env = asEnv(s.env, `${what}.env`);
  return step;
}

function parseWorkflow(text: string): Workflow {
  const w = asRecord(Bun.YAML.parse(text), "workflow");
  const jobs: Record<string, Job> = {};
  for (const [id, j] of Object.entries(asRecord(w.jobs, "jobs"))) {
    const job = asRecord(j, `jobs.${id}`);
    if (!Array.isArray(job.steps)) throw new Error(`jobs.${id}.steps: expected a list`);
    jobs[id] = {
      "runs-on": job["runs-on"],
      env: asEnv(job.env, `jobs.${id}.env`),
      steps: job.steps.map((s, i) => asStep(s, `jobs.${id}.steps[${i}]`)),
    };
  }
  return { env: asEnv(w.env, "env"), jobs };
}

/** The steps of the `<!-- ci-recipe: sync-steps -->` yaml block of docs/CI.md. */
function syncStepsFromDoc(md: string): Step[] {
  const m = /<!-- ci-recipe: sync-steps -->\n```yaml\n([\s\S]*?)\n```/.exec(md);
  if (m === null) throw new Error("docs/CI.md has no yaml block marked <!-- ci-recipe: sync-steps -->");
  const list = Bun.YAML.parse(m[1]);
  if (!Array.isArray(list)) throw new Error("the sync-steps block is not a list of steps");
  return list.map((s, i) => asStep(s, `sync-steps[${i}]`));
}

/** Fills in ${{ secrets.X }} and ${{ vars.X }}; any other expression is an error (the test would not know its value). */
function expand(v: string, ctx: { secrets: Env; vars: Env }, what: string): string {
  const out = v.replace(/\$\{\{\s*(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_m, kind: "secrets" | "vars", name: string) => {
    const val = ctx[kind][name];
    if (val === undefined) throw new Error(`${what}: ${kind}.${name} is not provided by the test`);
    return val;
  });
  if (out.includes("${{")) throw new Error(`${what}: an expression the test cannot evaluate: ${v}`);
  return out;
}

interface RunSetup {
  workflow: Workflow;
  /** Replace steps of the same name (docs/CI.md's --sync steps). */
  replace?: Step[];
  /** Prefix of every step's command (the seccomp loader). */
  wrapper?: string[];
  /** Extra job-level env (URING_SYNC_BACKEND=sync). */
  jobEnv?: Env;
  secrets: Env;
  /** Per-job secrets replacing `secrets` (a sender with the wrong secret). */
  jobSecrets?: Record<string, Env>;
  vars: Env;
  /** Test-only overrides of workflow env (the port: 7000 may be taken on a shared machine). */
  overrides: Env;
  root: string;
  /** Puts the user's build output into the send job's workspace. */
  build: (workspace: string) => void;
}

interface StepLog {
  job: string;
  step: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

interface JobRun {
  workspace: string;
  ran: string[];
  notRun: string[];
  uploads: string[];
  logs: StepLog[];
}

function describeLogs(logs: readonly StepLog[]): string {
  return logs.map((l) => `--- ${l.job}/${l.step}: exit ${l.code}\n${l.stdout.trim()}\n${l.stderr.trim()}`).join("\n");
}

function killGroup(proc: ReturnType<typeof Bun.spawn>): void {
  try {
    process.kill(-proc.pid, "SIGKILL");
  } catch {
    proc.kill("SIGKILL"); // the group is gone already, or was never made
  }
}

/** Runs one job's steps in order, like the runner: a failing step fails the job (the `if: always()` upload steps are only recorded). */
async function runJob(id: string, job: Job, s: RunSetup, stop: { killed: boolean; procs: Set<ReturnType<typeof Bun.spawn>> }, logs: StepLog[]): Promise<JobRun> {
  const base = join(s.root, id);
  const workspace = join(base, "workspace");
  const home = join(base, "home");
  const tmp = join(base, "runner-temp");
  for (const d of [workspace, home, tmp]) mkdirSync(d, { recursive: true });
  const githubPath = join(tmp, "github_path");
  writeFileSync(githubPath, "");
  const run: JobRun = { workspace, ran: [], notRun: [], uploads: [], logs };
  const byName = new Map((s.replace ?? []).map((st) => [st.name, st]));
  const ctx = { secrets: s.jobSecrets?.[id] ?? s.secrets, vars: s.vars };
  let n = 0;
  for (const original of job.steps) {
    const step = (original.name !== undefined ? byName.get(original.name) : undefined) ?? original;
    const name = step.name ?? step.uses ?? step.run ?? "";
    if (step.uses !== undefined) {
      if (step.uses.startsWith("actions/upload-artifact@")) run.uploads.push(expand(step.with?.path ?? "", ctx, `${id}/${name}`));
      continue;
    }
    if (NOT_RUN.includes(`${id}/${name}`)) {
      run.notRun.push(`${id}/${name}`);
      if (name === "Build") s.build(workspace);
      continue;
    }
    if (step.shell !== undefined && step.shell !== "bash") throw new Error(`${id}/${name}: shell ${step.shell} not emulated`);
    const script = step.run ?? "";
    if (script.includes("${{")) throw new Error(`${id}/${name}: \${{ }} inside run: (pass values through env: instead)`);
    const env: Env = { HOME: home, LANG: "C.UTF-8", RUNNER_TEMP: tmp, GITHUB_PATH: githubPath, GITHUB_WORKSPACE: workspace, CI: "true", GITHUB_ACTIONS: "true" };
    for (const layer of [s.workflow.env, job.env, s.jobEnv, step.env]) {
      for (const [k, v] of Object.entries(layer ?? {})) env[k] = expand(v, ctx, `${id}/${name} env ${k}`);
    }
    Object.assign(env, s.overrides);
    const added = readFileSync(githubPath, "utf8").split("\n").filter((l) => l.trim() !== "").reverse();
    env.PATH = [...added, SYSTEM_PATH].join(":");
    const file = join(tmp, `step-${n++}.sh`);
    writeFileSync(file, script);
    if (stop.killed) throw new Error(`${id}/${name}: not started, the other job failed`);
    // The runner's default for run: on Linux is `bash -e {0}`. Own process group, so a
    // stopped step takes its uring-sync child with it.
    const proc = Bun.spawn([...(s.wrapper ?? []), "bash", "-e", file], { cwd: workspace, env, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
    stop.procs.add(proc);
    const timer = setTimeout(() => killGroup(proc), STEP_TIMEOUT_MS);
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    clearTimeout(timer);
    stop.procs.delete(proc);
    logs.push({ job: id, step: name, code: proc.exitCode, stdout, stderr });
    if (proc.exitCode !== 0) throw new Error(`step ${id}/${name} failed (exit ${proc.exitCode ?? proc.signalCode})`);
    run.ran.push(`${id}/${name}`);
  }
  return run;
}

/**
 * Both jobs at once (like the two runners); if one fails, the other is stopped (its running
 * step killed), and the first failure is thrown with every step's output. `logs` collects
 * the steps' output either way.
 */
async function runWorkflow(s: RunSetup, logs: StepLog[] = []): Promise<{ receive: JobRun; send: JobRun; logs: StepLog[] }> {
  const stop = { killed: false, procs: new Set<ReturnType<typeof Bun.spawn>>() };
  const jobs = Object.keys(s.workflow.jobs);
  expect(jobs.sort()).toEqual(["receive", "send"]);
  let first: Error | undefined;
  const guard = (p: Promise<JobRun>): Promise<JobRun> =>
    p.catch((e: unknown) => {
      first ??= e as Error;
      stop.killed = true;
      for (const proc of stop.procs) killGroup(proc);
      throw e;
    });
  const [receive, send] = await Promise.allSettled([
    guard(runJob("receive", s.workflow.jobs.receive, s, stop, logs)),
    guard(runJob("send", s.workflow.jobs.send, s, stop, logs)),
  ]);
  if (first !== undefined || receive.status !== "fulfilled" || send.status !== "fulfilled") {
    throw new Error(`${first?.message ?? "a job failed"}\n${describeLogs(logs)}`);
  }
  return { receive: receive.value, send: send.value, logs };
}

/** The user's "build": every kind of entry the recipe must carry. */
function makeBuild(dir: string): void {
  writeTree(dir, {
    "app.js": "console.log('built');\n",
    "assets/style.css": "body { margin: 0 }\n",
    "assets/empty.txt": "",
    "lib/deep/nested/module.wasm": randomBytes(4096),
  });
  writeRandom(join(dir, "bundle.bin"), 3 * MiB + 17);
  mkdirSync(join(dir, "cache"));
  symlinkSync("app.js", join(dir, "latest.js"));
  linkSync(join(dir, "app.js"), join(dir, "lib", "app-hardlink.js"));
  chmodSync(join(dir, "app.js"), 0o755);
}

/** What the build contains, counted the way the summaries count. */
const BUILD = {
  files: 5, // app.js, style.css, empty.txt, module.wasm, bundle.bin (the hard link is counted apart)
  hardlinks: 1,
  symlinks: 1,
  dirs: 5, // assets, lib, lib/deep, lib/deep/nested, cache (the root is DST itself)
  bytes: "console.log('built');\n".length + "body { margin: 0 }\n".length + 0 + 4096 + 3 * MiB + 17,
};

let root = "";
let releaseDir = "";
let deny = "";
let workflowText = "";
let docText = "";

beforeAll(() => {
  if (!existsSync(DIST_BIN)) {
    const b = Bun.spawnSync([process.execPath, join(REPO_ROOT, "scripts", "build.ts")], { stdout: "ignore", stderr: "inherit" });
    if (b.exitCode !== 0) throw new Error("could not build dist/uring-sync");
  }
  root = workDir("ci-recipe");
  // The "release": the compiled binary and its checksum, served through file:// to curl.
  releaseDir = join(root, "release");
  mkdirSync(releaseDir);
  copyFileSync(DIST_BIN, join(releaseDir, "uring-sync"));
  const sum = createHash("sha256").update(readFileSync(join(releaseDir, "uring-sync"))).digest("hex");
  writeFileSync(join(releaseDir, "uring-sync.sha256"), `${sum}  uring-sync\n`);
  deny = denyUringLoader();
  workflowText = readFileSync(WORKFLOW_PATH, "utf8");
  docText = readFileSync(CI_MD_PATH, "utf8");
});

afterAll(() => {
  if (root !== "") removeDir(root);
});

interface RecipeRun {
  send: Record<string, unknown>;
  recv: Record<string, unknown>;
  /** The build as it was when sent. */
  before: Snapshot;
  logs: StepLog[];
}

interface RecipeOptions {
  wrapper?: string[];
  replace?: Step[];
  jobEnv?: Env;
}

/**
 * One run of the workflow in `root/name` (workspaces and HOMEs persist between runs of the
 * same name, like a self-hosted runner's): `build` makes or changes ./build in the send job's
 * workspace. Checks every step ran, the summaries were written, the installed release ran,
 * and the receiver's ./artifacts now equals the build; returns the summaries.
 */
async function runRecipe(name: string, opts: RecipeOptions, build: (dir: string) => void): Promise<RecipeRun> {
  const secret = randomBytes(24).toString("base64url");
  const port = await freePort();
  let before: Snapshot | undefined;
  const { receive, send, logs } = await runWorkflow({
    workflow: parseWorkflow(workflowText),
    replace: opts.replace,
    wrapper: opts.wrapper,
    jobEnv: opts.jobEnv,
    secrets: { URING_SYNC_SECRET: secret },
    vars: { URING_SYNC_RECEIVER: "127.0.0.1", URING_SYNC_RELEASE_URL: `file://${releaseDir}` },
    overrides: { URING_SYNC_PORT: String(port) },
    root: join(root, name),
    build: (ws) => {
      build(join(ws, "build"));
      before = snapshotTree(join(ws, "build"));
    },
  });
  const context = describeLogs(logs);
  // Every run: step ran except the user's build; both summaries were written for upload.
  expect([...receive.notRun, ...send.notRun]).toEqual(NOT_RUN);
  expect(receive.ran).toEqual(["receive/Install uring-sync", "receive/Receive the build"]);
  expect(send.ran).toEqual(["send/Install uring-sync", "send/Wait for the receiver", "send/Send the build"]);
  expect(receive.uploads).toEqual(["recv.json"]);
  expect(send.uploads).toEqual(["send.json"]);
  // The installed binary is the release: the receive step printed its version.
  expect(logs.find((l) => l.step === "Receive the build")?.stdout ?? "").toMatch(/^uring-sync \d+\.\d+\.\d+ \(commit /);
  if (before === undefined) throw new Error("the build step never ran");
  expectNetCopy(before, join(receive.workspace, "artifacts"), `${name}: ./artifacts on the receiver`, context);
  const parse = (path: string): Record<string, unknown> => {
    const text = readFileSync(path, "utf8");
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${path} is not JSON (${(e as Error).message}): ${text.slice(0, 500)}\n${context}`);
    }
  };
  const recv = parse(join(receive.workspace, "recv.json"));
  const sent = parse(join(send.workspace, "send.json"));
  // Encrypted by default: the recipe never asks for --plaintext.
  expect(sent.crypto).not.toBe("none");
  expect(recv.cipher).toBe(sent.cipher as string);
  return { send: sent, recv, before, logs };
}

/** A first run into an empty ./artifacts: everything is sent and counted. */
async function firstRun(name: string, opts: RecipeOptions = {}): Promise<RecipeRun> {
  const r = await runRecipe(name, opts, makeBuild);
  expect(r.send).toMatchObject({
    filesSent: BUILD.files,
    filesUnchanged: 0,
    filesDeleted: 0,
    filesFailed: 0,
    dirs: BUILD.dirs,
    symlinks: BUILD.symlinks,
    hardlinks: BUILD.hardlinks,
    bytes: BUILD.bytes,
    bytesSent: BUILD.bytes,
    receiver: { files: BUILD.files + BUILD.symlinks + BUILD.hardlinks, bytes: BUILD.bytes },
    failures: [],
  });
  expect(r.recv).toMatchObject({
    filesReceived: BUILD.files, // as the sender counts: a hard link is in hardlinks only (src/net/receiver.ts RecvStats)
    filesUnchanged: 0,
    filesDeleted: 0,
    filesFailed: 0,
    dirs: BUILD.dirs,
    symlinks: BUILD.symlinks,
    hardlinks: BUILD.hardlinks,
    bytes: BUILD.bytes,
    failures: [],
  });
  return r;
}

const CHANGED_CSS = "body { margin: 1px; padding: 0 }\n";
const ADDED = "added by the second build\n";

/**
 * The next pipeline run on the same runners (an incremental build: one output rewritten,
 * one gone, one new; the rest untouched): only the changed and new files travel, and
 * --delete removes the one the build no longer makes.
 */
async function secondRun(name: string, opts: RecipeOptions = {}): Promise<RecipeRun> {
  const r = await runRecipe(name, opts, (dir) => {
    writeFileSync(join(dir, "assets", "style.css"), CHANGED_CSS);
    rmSync(join(dir, "assets", "empty.txt"));
    writeFileSync(join(dir, "assets", "added.txt"), ADDED);
  });
  const bytesSent = CHANGED_CSS.length + ADDED.length;
  expect(r.send).toMatchObject({ filesSent: 2, filesDeleted: 1, filesFailed: 0, bytesSent, failures: [] });
  expect(r.recv).toMatchObject({ filesDeleted: 1, filesFailed: 0, failures: [] });
  // Unchanged: app.js, module.wasm, bundle.bin, on both ends (app.js's hard link is counted in hardlinks).
  expect(r.send.filesUnchanged).toBe(3);
  expect(r.recv.filesUnchanged).toBe(3);
  expect(r.recv.hardlinks).toBe(BUILD.hardlinks);
  expect(existsSync(join(root, name, "receive", "workspace", "artifacts", "assets", "empty.txt"))).toBe(false);
  return r;
}

describe("the CI recipe (docs/CI.md, docs/examples/github-actions.yml)", () => {
  test("the workflow has the documented shape: secret via env only, no expressions in run:, summaries uploaded", () => {
    const w = parseWorkflow(workflowText);
    for (const [id, job] of Object.entries(w.jobs)) {
      for (const step of job.steps) {
        expect(step.run ?? "").not.toContain("${{");
        expect(step.run ?? "").not.toContain("--secret ");
        if (step.env?.URING_SYNC_SECRET !== undefined) expect(step.env.URING_SYNC_SECRET).toBe("${{ secrets.URING_SYNC_SECRET }}");
      }
      // The secret is not given to whole jobs (the build step must not see it).
      expect(job.env?.URING_SYNC_SECRET).toBeUndefined();
      expect(id === "receive" || id === "send").toBe(true);
    }
    expect(w.env?.URING_SYNC_SECRET).toBeUndefined();
    const runs = Object.values(w.jobs).flatMap((j) => j.steps.map((s) => s.run ?? "")).join("\n");
    expect(runs).toContain(`uring-sync recv ./artifacts --listen "0.0.0.0:$URING_SYNC_PORT" --json > recv.json`);
    expect(runs).toContain(`uring-sync send ./build "$URING_SYNC_RECEIVER:$URING_SYNC_PORT" --delete --json > send.json`);
    // The doc links the workflow and says how to run where io_uring is blocked.
    expect(docText).toContain("(examples/github-actions.yml)");
    expect(docText).toContain("URING_SYNC_BACKEND");
    expect(syncStepsFromDoc(docText).map((s) => s.name)).toEqual(["Receive the build", "Send the build"]);
    // The recipe relies on send --delete: the binary must still offer it.
    const help = Bun.spawnSync([DIST_BIN, "send", "--help"], { env: { PATH: SYSTEM_PATH }, stdout: "pipe" }).stdout.toString();
    expect(help).toContain("--delete");
    // The test must not find uring-sync before the install step puts it on the PATH.
    expect(Bun.which("uring-sync", { PATH: SYSTEM_PATH })).toBeNull();
  });

  test("as written: the build arrives, both --json summaries report it (io_uring available)", async () => {
    const r = await firstRun("plain");
    // On this machine io_uring works, so neither end fell back.
    expect(["liburing", "raw"]).toContain(r.send.backend as string);
    expect(["liburing", "raw"]).toContain(r.recv.backend as string);
    const again = await secondRun("plain");
    expect(["liburing", "raw"]).toContain(again.send.backend as string);
  }, 240_000);

  test("io_uring refused with EPERM (Docker's default seccomp profile), no --sync: falls back to the sync backend and works", async () => {
    const r = await firstRun("seccomp-eperm", { wrapper: [deny, "1"] });
    expect(r.send.backend).toBe("sync");
    expect(r.recv.backend).toBe("sync");
  }, 240_000);

  test("io_uring refused with EPERM, with docs/CI.md's --sync steps: works, sync backend", async () => {
    const replace = syncStepsFromDoc(docText);
    for (const s of replace) expect(s.run ?? "").toContain("--sync");
    const r = await firstRun("seccomp-sync", { wrapper: [deny, "1"], replace });
    expect(r.send.backend).toBe("sync");
    expect(r.recv.backend).toBe("sync");
    const again = await secondRun("seccomp-sync", { wrapper: [deny, "1"], replace });
    expect(again.send.backend).toBe("sync");
    expect(again.recv.backend).toBe("sync");
  }, 240_000);

  test("io_uring refused with ENOSYS (gVisor-like), URING_SYNC_BACKEND=sync for the jobs: works, sync backend", async () => {
    const r = await firstRun("seccomp-env", { wrapper: [deny, "38"], jobEnv: { URING_SYNC_BACKEND: "sync" } });
    expect(r.send.backend).toBe("sync");
    expect(r.recv.backend).toBe("sync");
  }, 240_000);

  test("a sender with a different secret: the send step fails with exit 4 while the receiver keeps waiting", async () => {
    const logs: StepLog[] = [];
    const port = await freePort();
    const run = runWorkflow(
      {
        workflow: parseWorkflow(workflowText),
        secrets: { URING_SYNC_SECRET: randomBytes(24).toString("base64url") },
        jobSecrets: { send: { URING_SYNC_SECRET: randomBytes(24).toString("base64url") } },
        vars: { URING_SYNC_RECEIVER: "127.0.0.1", URING_SYNC_RELEASE_URL: `file://${releaseDir}` },
        overrides: { URING_SYNC_PORT: String(port) },
        root: join(root, "wrong-secret"),
        build: (ws) => makeBuild(join(ws, "build")),
      },
      logs,
    );
    let err: Error | undefined;
    await run.catch((e: unknown) => {
      err = e as Error;
    });
    expect(err?.message ?? "").toStartWith("step send/Send the build failed (exit 4)");
    // The receiver was still running (stopped by the harness: no exit code of its own) and
    // had logged the failed connection.
    const recv = logs.find((l) => l.job === "receive" && l.step === "Receive the build");
    expect(recv === undefined ? "no log" : recv.code).toBeNull();
    expect(recv?.stderr ?? "").toContain("connection from 127.0.0.1");
    expect(existsSync(join(root, "wrong-secret", "receive", "workspace", "artifacts", "bundle.bin"))).toBe(false);
  }, 240_000);

  test("the seccomp fixture really refuses io_uring to the steps (a forced io_uring backend fails)", async () => {
    // Without this, the fallback tests above could pass on a machine where nothing was blocked.
    const p = Bun.spawnSync([deny, "1", DIST_BIN, "doctor"], { env: { PATH: SYSTEM_PATH, URING_SYNC_BACKEND: "liburing" }, stdout: "pipe", stderr: "pipe" });
    expect(`${p.stdout.toString()}${p.stderr.toString()}`).toContain("io_uring_setup");
    const q = Bun.spawnSync([deny, "1", DIST_BIN, "doctor"], { env: { PATH: SYSTEM_PATH }, stdout: "pipe", stderr: "pipe" });
    expect(q.stdout.toString()).toContain("io_uring_setup failed with EPERM");
  });
});
