// tests/bench/changes.test.ts — the change set of the "1% of files changed" network re-run
// benchmark (bench/lib/changes.ts): deterministic, exactly 1% (rounded, at least one),
// distinct names from the input, independent of listing order, another set each round; and
// applying it really changes those files (and only those) in a way a size+mtime check sees,
// while checkRestored tells a restored tree from one that is not.

import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyChanges, changeCount, changeSet, checkRestored, MTIME_SHIFT_S } from "../../bench/lib/changes.ts";

const tmp = mkdtempSync(join(tmpdir(), "uring-sync-bench-changes-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `d${i % 97}/f${i}`);

describe("changeSet", () => {
  test("1% of 100,000 files is exactly 1,000 distinct names from the list, sorted", () => {
    const files = names(100_000);
    const set = changeSet(files, 0.01, 42, 0);
    expect(set.length).toBe(1000);
    expect(new Set(set).size).toBe(1000);
    const all = new Set(files);
    for (const f of set) expect(all.has(f)).toBe(true);
    expect([...set].sort()).toEqual(set);
  });

  test("deterministic: same names, seed and round give the same set, whatever the listing order", () => {
    const files = names(10_000);
    const shuffled = [...files].reverse();
    expect(changeSet(shuffled, 0.01, 7, 3)).toEqual(changeSet(files, 0.01, 7, 3));
    expect(changeSet(files, 0.01, 7, 3)).toEqual(changeSet(files, 0.01, 7, 3));
  });

  test("another round or seed picks another set", () => {
    const files = names(10_000);
    const a = changeSet(files, 0.01, 7, 0);
    const b = changeSet(files, 0.01, 7, 1);
    const c = changeSet(files, 0.01, 8, 0);
    expect(b).not.toEqual(a);
    expect(c).not.toEqual(a);
    // Uniform-ish: two independent 1% samples of 10,000 overlap in about one file, not most.
    expect(a.filter((x) => b.includes(x)).length).toBeLessThan(20);
  });

  test("counts: rounding, at least one file, the whole list at 100%, nothing from nothing", () => {
    expect(changeCount(100_000, 0.01)).toBe(1000);
    expect(changeCount(150, 0.01)).toBe(2);
    expect(changeCount(10, 0.01)).toBe(1);
    expect(changeCount(0, 0.01)).toBe(0);
    expect(changeSet(names(50), 1, 1, 0).length).toBe(50);
    expect(changeSet([], 0.01, 1, 0)).toEqual([]);
    expect(() => changeCount(10, 0)).toThrow(RangeError);
    expect(() => changeCount(10, 1.5)).toThrow(RangeError);
  });
});

describe("applyChanges / checkRestored", () => {
  test("the chosen files change (content, same size, mtime +1 h), the others do not; a copy back restores them", () => {
    const src = join(tmp, "src");
    const dst = join(tmp, "dst");
    mkdirSync(join(src, "a"), { recursive: true });
    const files: string[] = [];
    for (let i = 0; i < 200; i++) {
      const rel = `a/f${i}`;
      writeFileSync(join(src, rel), i === 0 ? "" : Buffer.alloc(10 + i * 13, i));
      utimesSync(join(src, rel), 1_600_000_000 + i, 1_600_000_000 + i);
      files.push(rel);
    }
    cpSync(src, dst, { recursive: true, preserveTimestamps: true });
    const set = changeSet(files, 0.05, 1, 0);
    if (!set.includes("a/f0")) set.push("a/f0"); // the empty file too
    expect(checkRestored(src, dst, set)).toBeUndefined();
    applyChanges(src, dst, set);
    for (const rel of files) {
      const a = readFileSync(join(src, rel));
      const b = readFileSync(join(dst, rel));
      const changed = set.includes(rel);
      expect(b.equals(a), rel).toBe(!changed);
      if (changed && a.length > 0) expect(b.length).toBe(a.length);
      const shift = Math.round((statSync(join(dst, rel)).mtimeMs - statSync(join(src, rel)).mtimeMs) / 1000);
      expect(shift, rel).toBe(changed ? MTIME_SHIFT_S : 0);
    }
    expect(checkRestored(src, dst, set)).toMatch(/not restored|mtime/);
    // Restore content only: the mtime is still off, and that is reported too.
    for (const rel of set) writeFileSync(join(dst, rel), readFileSync(join(src, rel)));
    expect(checkRestored(src, dst, set)).toMatch(/mtime/);
    for (const rel of set) {
      const t = statSync(join(src, rel)).mtimeMs / 1000;
      utimesSync(join(dst, rel), t, t);
    }
    expect(checkRestored(src, dst, set)).toBeUndefined();
    rmSync(join(dst, set[0]));
    expect(checkRestored(src, dst, set)).toMatch(/missing/);
  });
});
