/**
 * The compiled executable dist/uring-sync for the tests that run the real artifact: built
 * with scripts/build.ts when it is missing or older than the files it is built from.
 * Owns: deciding whether to rebuild. Never judges what the binary does.
 */
import { accessSync, constants, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DIST_BIN, REPO_ROOT } from "./cli.ts";

/** Newest mtime of the files the binary is built from. */
export function newestSource(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|js|json)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ["src", "ffi"]) walk(join(REPO_ROOT, d));
  for (const f of ["package.json", "scripts/build.ts"]) newest = Math.max(newest, statSync(join(REPO_ROOT, f)).mtimeMs);
  return newest;
}

/** dist/uring-sync, up to date with the sources (built here if not). Returns its path. */
export function ensureDistBinary(): string {
  if (!existsSync(DIST_BIN) || statSync(DIST_BIN).mtimeMs < newestSource()) {
    const cmd = [process.execPath, join(REPO_ROOT, "scripts", "build.ts")];
    const b = Bun.spawnSync(cmd, { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
    if (b.exitCode !== 0) throw new Error(`building the binary failed: ${cmd.join(" ")}\n${b.stdout}\n${b.stderr}`);
  }
  accessSync(DIST_BIN, constants.X_OK);
  return DIST_BIN;
}
