// tests/net/dest.test.ts — the receiver's DST: directory listing (readNames) and staged
// directories whose final name was taken meanwhile (finishStaging).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Destination, readNames } from "../../src/net/dest.ts";

const base = mkdtempSync(join(tmpdir(), "usync-dest-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("readNames", () => {
  test("every name, NUL-terminated, without . and .., across several getdents64 fills", () => {
    const d = join(base, "many");
    mkdirSync(d);
    // ~2,000 records of 40+ bytes: more than the 32 KiB buffer holds at once.
    const want = Array.from({ length: 2000 }, (_, i) => `entry-${String(i).padStart(5, "0")}-${"x".repeat(20)}`);
    for (const n of want) writeFileSync(join(d, n), "");
    mkdirSync(join(d, "..."));
    want.push("...");
    const dest = new Destination(d);
    try {
      const names = readNames(dest.rootFd);
      for (const z of names) expect(z[z.length - 1]).toBe(0);
      const got = names.map((z) => Buffer.from(z.subarray(0, z.length - 1)).toString());
      expect(got.sort()).toEqual(want.sort());
    } finally {
      dest.close();
    }
  });
});

describe("finishStaging", () => {
  test("a staged directory whose name appeared meanwhile: rename fails with EEXIST, the staged tree is removed, the other directory is untouched", () => {
    const d = join(base, "staged");
    const dest = new Destination(d);
    try {
      const h = dest.makeDir("a", () => ".usync-tmp-a");
      dest.release(h);
      // Something inside the staged tree, so removing it needs a recursive walk.
      mkdirSync(join(d, ".usync-tmp-a", "sub"));
      writeFileSync(join(d, ".usync-tmp-a", "sub", "f"), "staged");
      symlinkSync("/", join(d, ".usync-tmp-a", "root-link"));
      // Meanwhile someone else made DST/a.
      mkdirSync(join(d, "a"));
      writeFileSync(join(d, "a", "theirs"), "theirs");
      const failed = dest.finishStaging();
      expect(failed.map((f) => [f.rel, f.error.syscall, f.error.code, f.error.path])).toEqual([["a", "rename", "EEXIST", "a"]]);
      expect(existsSync(join(d, ".usync-tmp-a"))).toBe(false);
      expect(readdirSync(d)).toEqual(["a"]);
      expect(readdirSync(join(d, "a"))).toEqual(["theirs"]);
      expect(readFileSync(join(d, "a", "theirs"), "utf8")).toBe("theirs");
    } finally {
      dest.close();
    }
  });

  test("without a clash the staged directory gets its real name", () => {
    const d = join(base, "clean");
    const dest = new Destination(d);
    try {
      dest.release(dest.makeDir("b", () => ".usync-tmp-b"));
      writeFileSync(join(d, ".usync-tmp-b", "f"), "mine");
      expect(dest.finishStaging()).toEqual([]);
      expect(readdirSync(d)).toEqual(["b"]);
      expect(readFileSync(join(d, "b", "f"), "utf8")).toBe("mine");
    } finally {
      dest.close();
    }
  });
});
