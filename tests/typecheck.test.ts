// tests/typecheck.test.ts — the whole tree (src, ffi, tests, scripts, bench, bin) passes the
// strict TypeScript check of tsconfig.json. Bun runs TypeScript without checking types, so
// without this a type error only shows up in an editor.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { REPO_ROOT } from "./helpers/cli.ts";

test("tsc --noEmit finds no type errors", () => {
  const tsc = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
  const r = Bun.spawnSync([process.execPath, tsc, "--noEmit", "-p", REPO_ROOT], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  expect(`${r.stdout.toString()}${r.stderr.toString()}`).toBe("");
  expect(r.exitCode).toBe(0);
}, 180_000);
