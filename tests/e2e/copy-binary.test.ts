// tests/e2e/copy-binary.test.ts — a subset of the copy e2e tests run against the compiled
// single executable (dist/uring-sync, or $URING_SYNC_BIN), from a temp working directory:
// the variety tree copied faithfully, a second run that copies nothing, error cases.
// The binary is built first (bun scripts/build.ts) if missing or older than the sources.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { expectExit, formatResult, lines, runCli, type RunOptions } from "../helpers/cli.ts";
import { ensureDistBinary } from "../helpers/dist.ts";
import { expectSameTree, lineWith, removeDir, summaryOf, workDir } from "../helpers/e2e.ts";
import { buildVarietyTree, diffTrees, MiB, snapshotTree, writeTree, type VarietyTree } from "../helpers/tree.ts";

const work = workDir("binary");
let bin: string[];
let V: VarietyTree;
const opts = (): RunOptions => ({ command: bin });

beforeAll(() => {
  const env = process.env.URING_SYNC_BIN;
  if (env !== undefined && env.trim() !== "") {
    bin = env.trim().split(/\s+/);
  } else {
    bin = [ensureDistBinary()];
  }
  V = buildVarietyTree(join(work, "variety"));
}, 180_000);
afterAll(() => removeDir(work), 120_000);

describe("compiled binary", () => {
  test("runs from a directory outside the repo (--version)", async () => {
    const r = await runCli(["--version"], opts());
    expectExit(r, 0);
    expect(r.stdout).toStartWith("uring-sync ");
  });

  test("copies the variety tree faithfully, then a second run copies nothing", async () => {
    const dst = join(work, "dst");
    const before = snapshotTree(V.root);
    const r1 = await runCli([V.root, dst, "--json"], opts());
    expectExit(r1, 0);
    const s1 = summaryOf(r1);
    const first = expectSameTree(before, dst, {}, r1, "binary: variety tree");
    expect(first.get(V.bigSparse!)!.blocks * 512, "4.5 GiB sparse file filled in").toBeLessThan(16 * MiB);
    expect(s1.filesCopied).toBeGreaterThanOrEqual(V.fileInodes);

    const r2 = await runCli([V.root, dst, "--json"], opts());
    expectExit(r2, 0);
    const s2 = summaryOf(r2);
    expect(s2.filesCopied, formatResult(r2)).toBe(0);
    expect(s2.filesSkipped, formatResult(r2)).toBe(s1.filesCopied);
    const second = snapshotTree(dst);
    expect(diffTrees(before, second, { ignoreAtime: true }), "after the second run").toEqual([]);
    for (const [rel, e] of first) if (e.type === "file") expect(second.get(rel)!.ino, `${rel} rewritten`).toBe(e.ino);
  }, 120_000);

  test("`uring-sync -- -x DST`: a SRC named like an option, after --", async () => {
    const cwd = join(work, "dash");
    writeTree(join(cwd, "-x"), { "a.txt": "a\n" });
    const before = snapshotTree(join(cwd, "-x"));
    const r = await runCli(["--", "-x", "out"], { ...opts(), cwd });
    expectExit(r, 0);
    expectSameTree(before, join(cwd, "out"), {}, r, "-- -x out");
  });

  test("SRC missing: non-zero exit, one line naming the path and ENOENT", async () => {
    const missing = join(work, "missing");
    const r = await runCli([missing, join(work, "never")], opts());
    expect([1, 2], formatResult(r)).toContain(r.code ?? -1);
    expect(lines(r.stderr).length, formatResult(r)).toBe(1);
    expect(lineWith(r.stderr, missing, "ENOENT"), formatResult(r)).toBeDefined();
    expect(existsSync(join(work, "never"))).toBe(false);
  });

  test("DST inside SRC: exit 2, nothing written", async () => {
    const before = snapshotTree(V.root, { content: false });
    const r = await runCli([V.root, join(V.root, "dir1", "inside")], opts());
    expectExit(r, 2);
    expect(existsSync(join(V.root, "dir1", "inside"))).toBe(false);
    expect(diffTrees(before, snapshotTree(V.root, { content: false }), { ignoreAtime: true })).toEqual([]);
  });
});
