// tests/bench/harness.test.ts — the re-run mode of the benchmark harness (bench/lib/harness.ts
// runRounds with keepDst), with local `rsync -a` as the tool so nothing here needs servers:
// each destination is filled once untimed and then kept between runs (never deleted before a
// re-run), beforeRun/afterRun see every warm-up and timed round in order, every run is
// verified (a destination that no longer mirrors the source drops an optional tool and aborts
// on a competitor), and destinations are removed at the end. No timing is asserted.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CompetitorFailure, roundOrder, runRounds, type Tool } from "../../bench/lib/harness.ts";
import type { BenchFs } from "../../bench/lib/mount.ts";
import { timedRun } from "../../bench/lib/run.ts";
import { treeStats } from "../../bench/lib/verify.ts";

// A plain temp dir is fine: nothing is timed here.
const tmp = mkdtempSync("/tmp/uring-sync-bench-harness-");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const src = join(tmp, "src");
mkdirSync(join(src, "d"), { recursive: true });
for (let i = 0; i < 30; i++) writeFileSync(join(src, "d", `f${i}`), `file ${i}\n`.repeat(i + 1));
const expected = treeStats(src);
const fs: BenchFs = { kind: "dir", dir: tmp, description: "test dir" };

function rsyncTool(id: string, optional: boolean, runs: string[]): Tool {
  return {
    id,
    label: id,
    display: "rsync -a SRC/ DST/",
    optional,
    run: async (s, d) => {
      runs.push(existsSync(d) ? "kept" : "fresh");
      return await timedRun(["rsync", "-a", `${s}/`, `${d}/`]);
    },
  };
}

const base = { src, runs: 2, warmup: 1, mode: "warm" as const, expected, fs, trimEvery: 0, log: () => undefined };

describe("runRounds with keepDst", () => {
  test("fills each destination once, then re-runs into the kept destination; hooks see rounds 0..2; removed at the end", async () => {
    const dstRoot = join(tmp, "keep");
    const runsA: string[] = [];
    const runsB: string[] = [];
    const before: string[] = [];
    const after: string[] = [];
    const out = await runRounds({
      ...base,
      title: "t",
      dstRoot,
      tools: [rsyncTool("a", false, runsA), rsyncTool("b", true, runsB)],
      keepDst: true,
      beforeRun: (t, dst, round) => {
        expect(existsSync(join(dst, "d", "f3")), "the destination is kept, filled, before a re-run").toBe(true);
        before.push(`${t.id}:${round}`);
      },
      afterRun: (t, _dst, round) => {
        after.push(`${t.id}:${round}`);
        return undefined;
      },
    });
    // One fill (the destination did not exist), then warm-up + 2 timed re-runs into it.
    expect(runsA).toEqual(["fresh", "kept", "kept", "kept"]);
    expect(runsB).toEqual(["fresh", "kept", "kept", "kept"]);
    expect(before.sort()).toEqual(["a:0", "a:1", "a:2", "b:0", "b:1", "b:2"]);
    expect(after.sort()).toEqual(before.sort());
    expect(out.map((o) => o.samples.length)).toEqual([2, 2]);
    expect(out.every((o) => o.skipped === undefined)).toBe(true);
    expect(existsSync(join(dstRoot, "a"))).toBe(false);
    expect(existsSync(join(dstRoot, "b"))).toBe(false);
  });

  test("every re-run is verified: a destination with a stray file drops an optional tool with the reason", async () => {
    const runs: string[] = [];
    const out = await runRounds({
      ...base,
      title: "t",
      dstRoot: join(tmp, "stray"),
      tools: [rsyncTool("opt", true, runs)],
      keepDst: true,
      // rsync without --delete leaves it there, so the copy no longer mirrors the source.
      beforeRun: (_t, dst, round) => {
        if (round === 1) writeFileSync(join(dst, "stray"), "x");
      },
    });
    expect(out[0].skipped).toMatch(/incomplete copy/);
    expect(out[0].samples.length).toBe(0); // round 0 was the warm-up, round 1 failed
    expect(runs.length).toBe(3); // fill, warm-up, the failing run; nothing after
  });

  test("an afterRun problem aborts on a competitor (CompetitorFailure)", async () => {
    await expect(
      runRounds({
        ...base,
        title: "t",
        dstRoot: join(tmp, "abort"),
        tools: [rsyncTool("comp", false, [])],
        keepDst: true,
        afterRun: (_t, _d, round) => (round === 2 ? "not restored" : undefined),
      }),
    ).rejects.toBeInstanceOf(CompetitorFailure);
  });

  test("without keepDst every run starts from a deleted destination", async () => {
    const runs: string[] = [];
    const dstRoot = join(tmp, "fresh");
    const out = await runRounds({ ...base, title: "t", dstRoot, tools: [rsyncTool("f", false, runs)] });
    expect(runs).toEqual(["fresh", "fresh", "fresh"]);
    expect(out[0].samples.length).toBe(2);
    expect(statSync(dstRoot).isDirectory()).toBe(true);
    expect(existsSync(join(dstRoot, "f"))).toBe(false);
  });
});

describe("roundOrder", () => {
  test("every round runs each tool once, and each tool follows more than one predecessor", () => {
    const n = 5;
    const before = new Map<number, Set<number>>();
    for (let round = 0; round < 2 * n; round++) {
      const order = Array.from({ length: n }, (_, k) => roundOrder(round, k, n));
      expect([...order].sort()).toEqual([0, 1, 2, 3, 4]);
      for (let k = 1; k < n; k++) {
        const set = before.get(order[k]) ?? new Set<number>();
        set.add(order[k - 1]);
        before.set(order[k], set);
      }
    }
    for (let t = 0; t < n; t++) expect(before.get(t)!.size).toBeGreaterThanOrEqual(2);
  });
});
