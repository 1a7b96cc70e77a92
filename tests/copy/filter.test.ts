// Unit tests for src/copy/filter.ts: --exclude/--include matching rules.
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { Filter } from "../../src/copy/filter.ts";

describe("Filter", () => {
  test("no patterns: nothing is excluded, and the filter says it is empty", () => {
    const f = new Filter();
    expect(f.empty).toBe(true);
    expect(f.excluded("a/b.log", false)).toBe(false);
  });

  test("a pattern without a slash matches the last component at any depth", () => {
    const f = new Filter(["*.log"]);
    expect(f.empty).toBe(false);
    expect(f.excluded("drop.log", false)).toBe(true);
    expect(f.excluded("sub/deep.log", false)).toBe(true);
    expect(f.excluded("a/b/c/x.log", false)).toBe(true);
    expect(f.excluded("keep.txt", false)).toBe(false);
    expect(f.excluded("logs.d/keep.txt", false)).toBe(false);
  });

  test("a plain name excludes entries with exactly that name, not prefixes or suffixes", () => {
    const f = new Filter(["cache"]);
    expect(f.excluded("cache", true)).toBe(true);
    expect(f.excluded("deep/cache", true)).toBe(true);
    expect(f.excluded("notcache", true)).toBe(false);
    expect(f.excluded("cache2", false)).toBe(false);
  });

  test("a pattern with a slash matches the whole relative path; a leading slash anchors it", () => {
    const f = new Filter(["sub/*.log", "/top.txt"]);
    expect(f.excluded("sub/deep.log", false)).toBe(true);
    expect(f.excluded("other/sub/deep.log", false)).toBe(false);
    expect(f.excluded("sub/x/deep.log", false)).toBe(false);
    expect(f.excluded("top.txt", false)).toBe(true);
    expect(f.excluded("d/top.txt", false)).toBe(false);
  });

  test("** crosses directories", () => {
    const f = new Filter(["build/**/*.o"]);
    expect(f.excluded("build/a/b/c.o", false)).toBe(true);
    expect(f.excluded("build/c.o", false)).toBe(true);
    expect(f.excluded("src/c.o", false)).toBe(false);
  });

  test("a trailing slash matches directories only", () => {
    const f = new Filter(["tmp/"]);
    expect(f.excluded("tmp", true)).toBe(true);
    expect(f.excluded("a/tmp", true)).toBe(true);
    expect(f.excluded("tmp", false)).toBe(false);
  });

  test("--include wins over --exclude whatever the order", () => {
    const a = new Filter(["*.log"], ["important.log"]);
    const b = new Filter(["*.log"], ["important.log"].reverse());
    for (const f of [a, b]) {
      expect(f.excluded("important.log", false)).toBe(false);
      expect(f.excluded("sub/important.log", false)).toBe(false);
      expect(f.excluded("other.log", false)).toBe(true);
    }
  });

  test("--include alone excludes nothing", () => {
    const f = new Filter([], ["*.txt"]);
    expect(f.empty).toBe(true);
    expect(f.excluded("a.bin", false)).toBe(false);
  });

  test("names with glob characters, spaces, newlines and UTF-8 are matched as data", () => {
    const f = new Filter(["*.tmp", "with space"]);
    expect(f.excluded("*?[glob].tmp", false)).toBe(true);
    expect(f.excluded("new\nline.tmp", false)).toBe(true);
    expect(f.excluded("é漢字🙂.tmp", false)).toBe(true);
    expect(f.excluded("d/with space", false)).toBe(true);
    expect(f.excluded("with  space", false)).toBe(false);
  });

  test("character classes and braces", () => {
    const f = new Filter(["[ab].txt", "{x,y}.bin"]);
    expect(f.excluded("a.txt", false)).toBe(true);
    expect(f.excluded("c.txt", false)).toBe(false);
    expect(f.excluded("y.bin", false)).toBe(true);
    expect(f.excluded("z.bin", false)).toBe(false);
  });

  test("empty patterns are usage errors", () => {
    expect(() => new Filter([""])).toThrow(UsageError);
    expect(() => new Filter(["/"])).toThrow(UsageError);
    expect(() => new Filter([], [""])).toThrow(UsageError);
  });
});
