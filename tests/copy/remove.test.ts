// tests/copy/remove.test.ts — removing a tree (src/copy/remove.ts): everything under the
// entry goes, a symlink is removed as a link (its target untouched), and the removal can
// stop at any entry and go on later (TreeRemover.step with a deadline), which is how the
// network receiver removes a huge directory without starving its connection.

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cstr, libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/structs.ts";
import { removeTree, TreeRemover } from "../../src/copy/remove.ts";

let dir = "";
afterEach(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
  dir = "";
});

/** A tree of nested directories with files, and a symlink out of it to `outside`. */
function plant(root: string, outside: string): void {
  for (let d = 0; d < 4; d++) {
    const deep = join(root, `d${d}`, "a", "b");
    mkdirSync(deep, { recursive: true });
    for (let i = 0; i < 300; i++) writeFileSync(join(deep, `f${i}`), "x");
    writeFileSync(join(root, `d${d}`, "top"), "y");
  }
  symlinkSync(outside, join(root, "d0", "a", "out"));
}

function withDir<T>(f: (fd: number) => T): T {
  const fd = libc.open(cstr(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
  try {
    return f(fd);
  } finally {
    libc.close(fd);
  }
}

describe("removeTree / TreeRemover", () => {
  test("in one call and in slices whose deadline has always passed: all gone, a symlink's target kept", () => {
    dir = mkdtempSync("/tmp/usync-remove-");
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "canary"), "keep me");
    plant(join(dir, "whole"), outside);
    plant(join(dir, "sliced"), outside);
    withDir((fd) => {
      const errors: string[] = [];
      expect(removeTree(fd, cstr("whole"), "whole", (s, e, p) => errors.push(`${s} ${e} ${p}`))).toBe(true);
      const t = new TreeRemover(fd, cstr("sliced"), "sliced", (s, e, p) => errors.push(`${s} ${e} ${p}`));
      let steps = 0;
      while (!t.step(0)) steps++;
      expect(errors).toEqual([]);
      expect(t.ok).toBe(true);
      expect(steps).toBeGreaterThan(10);
    });
    expect(readdirSync(dir)).toEqual(["outside"]);
    expect(readdirSync(outside)).toEqual(["canary"]);
  });

  test("a file or a symlink goes in the first step; a missing entry counts as removed", () => {
    dir = mkdtempSync("/tmp/usync-remove-");
    writeFileSync(join(dir, "f"), "x");
    symlinkSync("/", join(dir, "root-link"));
    withDir((fd) => {
      for (const name of ["f", "root-link", "never-there"]) {
        const t = new TreeRemover(fd, cstr(name), name, () => {
          throw new Error(`no error expected for ${name}`);
        });
        expect(t.step(0)).toBe(true);
        expect(t.ok).toBe(true);
      }
    });
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync("/etc")).toBe(true);
  });

  test("close() mid-way: what went stays gone, the rest stays, no descriptor is left open", () => {
    dir = mkdtempSync("/tmp/usync-remove-");
    plant(join(dir, "t"), "/nonexistent");
    const fdsBefore = readdirSync("/proc/self/fd").length;
    withDir((fd) => {
      const t = new TreeRemover(fd, cstr("t"), "t", () => {});
      expect(t.step(0)).toBe(false);
      expect(t.step(0)).toBe(false);
      t.close();
      expect(t.ok).toBe(false);
      expect(t.step(0)).toBe(true);
    });
    expect(readdirSync("/proc/self/fd").length).toBe(fdsBefore);
    expect(existsSync(join(dir, "t"))).toBe(true);
  });
});
