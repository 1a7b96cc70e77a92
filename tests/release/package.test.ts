// tests/release/package.test.ts — the npm package as users get it. `npm pack` must hold only
// what the program needs (file list, every imported file and package, size bounds), and the
// packed tarball must run from a fresh directory: with `npx` where only Node + npm exist (no
// Bun on PATH: the package's `bun` dependency supplies it), with `bunx` where only Bun exists
// (no Node on PATH), with bunx when both exist, after an install that skipped install
// scripts, and with no usable Bun at all (one clear error, exit 3).
//
// Hermetic: npm and Bun use caches owned by this test (.tmp/release-cache/, kept between runs
// so only the first run downloads the `bun` dependency from the registry; the per-package
// install directories npx/bunx make there are removed), never the user's caches.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { expectExit, formatResult, REPO_ROOT, runCli, type RunOptions, type RunResult } from "../helpers/cli.ts";
import { expectSameTree, removeDir } from "../helpers/e2e.ts";
import { MiB, snapshotTree, writeRandom, writeTree } from "../helpers/tree.ts";

/** Upper bounds for the package. Today it is ~0.2 MiB packed, ~0.7 MiB unpacked: TypeScript
 * sources, the man page, README. The bounds leave room to grow 2-3x while catching anything
 * big slipping in (a dist/ binary is ~105 MiB, bench data and node_modules are larger still). */
const MAX_PACKED = 512 * 1024;
const MAX_UNPACKED = 2 * MiB;

/** Files the package may contain; anything else (tests/, bench/, scripts/, docs/, dist/...) fails. */
const ALLOWED = /^(package\.json|README\.md|LICENSE(\.md|\.txt)?|bin\/uring-sync\.js|man\/uring-sync\.1|(src|ffi)\/[\w./-]+\.ts)$/;
/** Worker entry points (scripts/build.ts WORKERS): loaded by path, so not reached from main.ts by import. */
const ENTRY_POINTS = ["src/cli/main.ts", "src/copy/worker.ts"];

const NPM = Bun.which("npm");
const NPX = Bun.which("npx");
const NODE = Bun.which("node");
const VERSION_LINE = /^uring-sync \d+\.\d+\.\d+\S* \(commit \S+, built \S+\)\n$/;

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
  name: string; version: string; bin: Record<string, string>; man?: string | string[]; files: string[];
  dependencies: Record<string, string>;
};
const cacheRoot = join(REPO_ROOT, ".tmp", "release-cache");
const npmCache = join(cacheRoot, "npm");
const bunCache = join(cacheRoot, "bun");
let work: string;
let tarball: string;

interface PackInfo { filename: string; size: number; unpackedSize: number; files: { path: string; size: number }[] }

function npm(args: string[], cwd: string): string {
  if (NPM === null) throw new Error("npm is not on PATH: the package tests need Node + npm (scripts/setup.sh expects them)");
  const r = Bun.spawnSync([NPM, ...args], { cwd, env: npmEnv(), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`npm ${args.join(" ")} failed (exit ${r.exitCode})\n${r.stdout}\n${r.stderr}`);
  return r.stdout.toString();
}

/** Directories of PATH without any that hold `name` (to take Bun or Node away from a child). */
function pathWithout(...names: string[]): string {
  return (process.env.PATH ?? "").split(":").filter((d) => d !== "" && !names.some((n) => existsSync(join(d, n)))).join(":");
}

/** The test's environment minus npm/bun settings inherited from whoever started it, plus the given ones. */
function envFor(set: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const k of Object.keys(process.env)) if (/^(npm_|bun_)/i.test(k)) env[k] = undefined;
  env.URING_SYNC_SECRET = undefined;
  return { ...env, ...set };
}

function npmEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(envFor({ npm_config_cache: npmCache, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false", ...extra }))) {
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** A fresh directory with a small tree `src` in it; returns the directory. */
function freshDirWithTree(name: string): string {
  const dir = join(work, name);
  writeTree(join(dir, "src"), { "a.txt": "alpha\n", "sub/b.txt": "beta\n" });
  writeRandom(join(dir, "src", "sub", "random.bin"), MiB + 3);
  return dir;
}

/** --version, --help and a local copy through `command`, from `dir` (made by freshDirWithTree). */
async function versionHelpCopy(command: string[], dir: string, env: Record<string, string | undefined>, what: string): Promise<void> {
  const opts: RunOptions = { command, cwd: dir, env, timeoutMs: 300_000 };
  const v = await runCli(["--version"], opts); // the first run installs: allow for the download
  expectExit(v, 0);
  expect(v.stdout, `${what} --version\n${formatResult(v)}`).toMatch(VERSION_LINE);
  expect(v.stdout).toContain(` ${pkg.version} `);

  const h = await runCli(["--help"], { ...opts, timeoutMs: 60_000 });
  expectExit(h, 0);
  expect(h.stdout, formatResult(h)).toContain("uring-sync recv");

  const before = snapshotTree(join(dir, "src"));
  const c = await runCli(["src", "dst"], { ...opts, timeoutMs: 60_000 });
  expectExit(c, 0);
  expectSameTree(before, join(dir, "dst"), {}, c, `${what}: copy`);
}

/** Remove the per-package install directories npx and bunx keep in the caches (the downloads stay). */
function dropInstalls(): void {
  rmSync(join(npmCache, "_npx"), { recursive: true, force: true });
  if (existsSync(bunCache)) for (const d of readdirSync(bunCache)) if (d.startsWith(".bunx")) rmSync(join(bunCache, d), { recursive: true, force: true });
}

beforeAll(() => {
  mkdirSync(npmCache, { recursive: true });
  mkdirSync(bunCache, { recursive: true });
  dropInstalls();
  work = mkdtempSync("/tmp/uring-sync-package-");
  const out = npm(["pack", "--pack-destination", work, "--json", "--loglevel=error"], REPO_ROOT);
  tarball = join(work, (JSON.parse(out) as PackInfo[])[0].filename);
}, 120_000);
afterAll(() => {
  dropInstalls();
  removeDir(work);
}, 60_000);

describe("npm package contents", () => {
  let info: PackInfo;
  beforeAll(() => {
    info = (JSON.parse(npm(["pack", "--dry-run", "--json", "--loglevel=error"], REPO_ROOT)) as PackInfo[])[0];
  });

  test("only what the program needs: no tests, bench, scripts, docs, dist or node_modules", () => {
    const stray = info.files.map((f) => f.path).filter((p) => !ALLOWED.test(p));
    expect(stray).toEqual([]);
    const paths = new Set(info.files.map((f) => f.path));
    for (const must of ["package.json", "README.md", pkg.bin["uring-sync"], ...ENTRY_POINTS]) expect(paths.has(must), must).toBe(true);
    const man = pkg.man === undefined ? [] : Array.isArray(pkg.man) ? pkg.man : [pkg.man];
    for (const m of man) expect(paths.has(m.replace(/^\.\//, "")), `man page ${m} (package.json "man")`).toBe(true);
  });

  test("every file the program imports is packed, and every package it imports is a dependency", async () => {
    const b = await Bun.build({ entrypoints: ENTRY_POINTS.map((e) => join(REPO_ROOT, e)), root: REPO_ROOT, target: "bun", packages: "external", metafile: true, throw: false });
    expect(b.success, b.logs.join("\n")).toBe(true);
    const inputs = b.metafile!.inputs;
    const paths = new Set(info.files.map((f) => f.path));
    const local = Object.keys(inputs).filter((p) => !p.startsWith("node:") && !p.startsWith("bun:"));
    expect(local.length).toBeGreaterThan(20);
    expect(local.filter((p) => !paths.has(p))).toEqual([]);
    const packages = new Set<string>();
    for (const i of Object.values(inputs)) {
      for (const imp of i.imports) {
        if (imp.external !== true || /^(node|bun):/.test(imp.path) || builtinModules.includes(imp.path)) continue;
        packages.add(imp.path.startsWith("@") ? imp.path.split("/").slice(0, 2).join("/") : imp.path.split("/")[0]);
      }
    }
    expect(packages.size).toBeGreaterThan(0);
    expect([...packages].filter((p) => pkg.dependencies[p] === undefined)).toEqual([]);
  });

  test(`size: at most ${MAX_PACKED / 1024} KiB packed, ${MAX_UNPACKED / MiB} MiB unpacked`, () => {
    expect(info.size).toBeLessThanOrEqual(MAX_PACKED);
    expect(info.unpackedSize).toBeLessThanOrEqual(MAX_UNPACKED);
  });

  test("the command is a Node-compatible launcher, and Bun is a dependency so Node-only users get one", () => {
    const launcher = readFileSync(join(REPO_ROOT, pkg.bin["uring-sync"]), "utf8");
    expect(launcher.split("\n")[0]).toBe("#!/usr/bin/env node");
    expect(pkg.dependencies.bun).toBeDefined();
    if (NODE === null) throw new Error("node is not on PATH");
    const syntax = Bun.spawnSync([NODE, "--check", join(REPO_ROOT, pkg.bin["uring-sync"])], { stderr: "pipe" });
    expect(syntax.exitCode, `node --check: ${syntax.stderr}`).toBe(0);
  });
});

describe("the packed tarball runs from a fresh directory", () => {
  test("npx with Node + npm only (no Bun on PATH): --version, --help, a local copy", async () => {
    if (NPX === null) throw new Error("npx is not on PATH");
    const env = { ...envFor({ npm_config_cache: npmCache, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" }), PATH: pathWithout("bun") };
    const command = [NPX, "--yes", "--prefer-offline", "--package", tarball, "--", "uring-sync"];
    await versionHelpCopy(command, freshDirWithTree("npx"), env, "npx");

    // The launcher starts Bun so that it takes no bunfig.toml (preload code) or .env from the working directory.
    const hostile = join(work, "npx-hostile");
    writeTree(hostile, {
      "bunfig.toml": 'preload = ["./preload.ts"]\n',
      "preload.ts": `require("node:fs").writeFileSync(${JSON.stringify(join(work, "PRELOAD-RAN"))}, "x");\n`,
      ".env": "URING_SYNC_NO_LIBURING=1\n",
    });
    const d = await runCli(["doctor", "--json"], { command, cwd: hostile, env, timeoutMs: 60_000 });
    expectExit(d, 0);
    expect(existsSync(join(work, "PRELOAD-RAN")), "bunfig.toml preload ran").toBe(false);
    expect(d.stdout, ".env was loaded").not.toContain("disabled by URING_SYNC_NO_LIBURING");
  }, 600_000);

  test("bunx with Bun only (no Node on PATH): --version, --help, a local copy", async () => {
    const only = join(work, "only-bun");
    mkdirSync(only);
    symlinkSync(process.execPath, join(only, "bun"));
    symlinkSync(process.execPath, join(only, "bunx"));
    const env = envFor({ BUN_INSTALL_CACHE_DIR: bunCache, PATH: only });
    await versionHelpCopy([join(only, "bunx"), `${pkg.name}@file:${tarball}`], freshDirWithTree("bunx"), env, "bunx (Bun only)");
  }, 600_000);

  test("bunx with Node on PATH too (the launcher runs under Node and starts the dependency's Bun)", async () => {
    if (NODE === null) throw new Error("node is not on PATH");
    const env = envFor({ BUN_INSTALL_CACHE_DIR: bunCache, PATH: pathWithout("bun") });
    const r = await runCli([`${pkg.name}@file:${tarball}`, "--version"], { command: [process.execPath, "x"], cwd: mkdtempSync(join(work, "bunx-node-")), env, timeoutMs: 300_000 });
    expectExit(r, 0);
    expect(r.stdout, formatResult(r)).toMatch(VERSION_LINE);
  }, 600_000);

  test("installed with --ignore-scripts (bun's postinstall skipped) into a git project: runs, and claims no commit", async () => {
    const proj = join(work, "ignore-scripts");
    mkdirSync(proj);
    writeFileSync(join(proj, "package.json"), "{}\n");
    // The user's project is a git repository: its HEAD is not uring-sync's commit.
    for (const a of [["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "user project"]]) {
      expect(Bun.spawnSync(["git", ...a], { cwd: proj, stderr: "pipe" }).exitCode).toBe(0);
    }
    npm(["install", "--ignore-scripts", "--prefer-offline", "--loglevel=error", tarball], proj);
    const stub = readFileSync(join(proj, "node_modules", "bun", "bin", "bun.exe"));
    expect(stub.length, "bun.exe is still the stub the postinstall would replace").toBeLessThan(4096);
    const r = await runCli(["--version"], { command: [join(proj, "node_modules", ".bin", "uring-sync")], env: { PATH: pathWithout("bun") }, timeoutMs: 60_000 });
    expectExit(r, 0);
    expect(r.stdout, formatResult(r)).toMatch(VERSION_LINE);
    expect(r.stdout, "the project's commit must not be reported as uring-sync's").toContain("(commit unknown,");
  }, 600_000);

  test("no usable Bun anywhere (optional platform packages omitted, scripts skipped): one clear error, exit 3", async () => {
    const proj = join(work, "no-bun");
    mkdirSync(proj);
    writeFileSync(join(proj, "package.json"), "{}\n");
    npm(["install", "--ignore-scripts", "--omit=optional", "--prefer-offline", "--loglevel=error", tarball], proj);
    const r: RunResult = await runCli(["--version"], { command: [join(proj, "node_modules", ".bin", "uring-sync")], env: { PATH: pathWithout("bun") }, timeoutMs: 60_000 });
    expectExit(r, 3);
    expect(r.stdout).toBe("");
    expect(r.stderr, formatResult(r)).toContain("uring-sync: needs Bun");
    expect(r.stderr).toContain("npm i -g bun");
  }, 600_000);
});
