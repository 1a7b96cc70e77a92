#!/usr/bin/env node
/**
 * The npm package's command (`npx uring-sync`, `bunx uring-sync`, `npm i -g uring-sync`).
 *
 * uring-sync is a Bun program (bun:ffi, TypeScript sources), but npx and a global npm
 * install run this file with Node. So it is plain JavaScript that Node and Bun both load:
 *   - under Bun: loads the CLI in this process (no second process);
 *   - under Node: runs the CLI with the Bun from the `bun` npm package this package
 *     depends on (or a `bun` on PATH), passing argv, stdio, signals and the exit status
 *     through, so a user with only Node + npm gets a working command on the first try.
 * Owns: finding a Bun and handing over to it. Never parses uring-sync's own arguments.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.ts");

if (process.versions.bun !== undefined) {
  await import(MAIN);
} else {
  runWithBun(findBun());
}

/** True if `path` starts like a native executable (the `bun` package ships a shell-script stub until its postinstall ran). */
function isExecutableBinary(path) {
  let fd;
  try {
    fd = openSync(path, "r");
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])) || head.readUInt32LE(0) === 0xfeedfacf; // ELF or Mach-O 64
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The Bun to run: the `bun` dependency, its platform package (postinstall skipped), then PATH. */
function findBun() {
  const require = createRequire(import.meta.url);
  const candidates = [];
  try {
    const bunDir = dirname(require.resolve("bun/package.json"));
    // The postinstall put the binary for this CPU here (it checked that it runs).
    const installed = join(bunDir, "bin", "bun.exe");
    if (isExecutableBinary(installed)) return installed;
    // With --ignore-scripts (or a package manager that skips the postinstall) bin/bun.exe is a stub;
    // the real binary is still in the platform package, next to `bun` or inside it.
    const fromBun = createRequire(join(bunDir, "package.json"));
    const arch = process.arch === "arm64" ? "aarch64" : process.arch;
    for (const suffix of ["", "-baseline", "-musl", "-musl-baseline"]) {
      try {
        candidates.push(join(dirname(fromBun.resolve(`@oven/bun-${process.platform}-${arch}${suffix}/package.json`)), "bin", "bun"));
      } catch {
        // not installed for this platform
      }
    }
  } catch {
    // no `bun` package next to this one
  }
  for (const c of candidates) {
    if (isExecutableBinary(c) && spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0) return c;
  }
  const onPath = spawnSync("bun", ["--version"], { stdio: "ignore" });
  if (onPath.status === 0) return "bun";
  process.stderr.write(
    "uring-sync: needs Bun (https://bun.sh), and none was found: the `bun` package it depends on is missing or\n" +
      "its install script did not run. Fix: `npm i -g bun` (or https://bun.sh), or use the single-file\n" +
      "binary (dist/uring-sync from a release), which needs neither Node nor Bun.\n",
  );
  process.exit(3);
}

/** Run the CLI with `bun` and mirror its outcome; signals sent to this process are passed on. */
function runWithBun(bun) {
  // Bun reads bunfig.toml (whose preload runs code) and .env from the working directory;
  // uring-sync runs in arbitrary directories and must not take code or settings from them.
  const args = ["--config=/dev/null", "--no-env-file", MAIN, ...process.argv.slice(2)];
  const child = spawn(bun, args, { stdio: "inherit" });
  const forward = (sig) => child.kill(sig);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, forward);
  child.on("error", (e) => {
    process.stderr.write(`uring-sync: could not start ${bun}: ${e.message}\n`);
    process.exit(3);
  });
  child.on("exit", (code, signal) => {
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.off(sig, forward);
    if (signal !== null) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

