// Unit tests for src/copy/safety.ts: where a copy goes, and the refused combinations.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { SysError, UsageError } from "../../src/errors.ts";
import { isWithin, realTarget, resolveCopy } from "../../src/copy/safety.ts";

let d = "";
beforeAll(() => {
  d = mkdtempSync("/tmp/uring-sync-safety-");
  mkdirSync(join(d, "src/sub"), { recursive: true });
  writeFileSync(join(d, "src/a.txt"), "a");
  mkdirSync(join(d, "outer/inner"), { recursive: true });
  mkdirSync(join(d, "existing"));
  writeFileSync(join(d, "file.txt"), "f");
  symlinkSync(join(d, "src"), join(d, "link-to-src"));
  symlinkSync(join(d, "file.txt"), join(d, "link-to-file"));
});
afterAll(() => rmSync(d, { recursive: true, force: true }));

function refused(src: string, dst: string, what: RegExp): void {
  let err: unknown;
  try {
    resolveCopy(src, dst);
  } catch (e) {
    err = e;
  }
  expect(err, `${src} -> ${dst} should be refused`).toBeInstanceOf(UsageError);
  expect((err as Error).message).toMatch(what);
}

describe("isWithin", () => {
  test("component-wise, not string-prefix", () => {
    expect(isWithin("/a/b", "/a")).toBe(true);
    expect(isWithin("/a", "/a")).toBe(true);
    expect(isWithin("/ab", "/a")).toBe(false);
    expect(isWithin("/a-sibling/x", "/a")).toBe(false);
    expect(isWithin("/x", "/")).toBe(true);
  });
});

describe("realTarget", () => {
  test("resolves the existing prefix through symlinks and keeps the missing tail", () => {
    expect(realTarget(join(d, "link-to-src", "new", "deeper"))).toBe(join(d, "src", "new", "deeper"));
    expect(realTarget(join(d, "src", "sub", ".."))).toBe(join(d, "src"));
    expect(realTarget(`${join(d, "src")}/`)).toBe(join(d, "src"));
  });

  test("relative paths resolve against the given working directory", () => {
    expect(realTarget("src/sub", d)).toBe(join(d, "src", "sub"));
    expect(realTarget("missing/x", d)).toBe(join(d, "missing", "x"));
  });
});

describe("resolveCopy", () => {
  test("a directory into a new or existing DST: the contents land in DST itself", () => {
    const a = resolveCopy(join(d, "src"), join(d, "new-dst"));
    expect(a).toEqual({ kind: "dir", src: join(d, "src"), dst: join(d, "new-dst"), dstExists: false, dstParentExists: true });
    const b = resolveCopy(`${join(d, "src")}/`, join(d, "existing"));
    expect(b.dst).toBe(join(d, "existing"));
    expect(b.dstExists).toBe(true);
  });

  test("SRC through a symlink is the directory it points to", () => {
    expect(resolveCopy(join(d, "link-to-src"), join(d, "x")).src).toBe(join(d, "src"));
  });

  test("a single file: to a path, or into an existing directory (or DST/) under its own name", () => {
    expect(resolveCopy(join(d, "file.txt"), join(d, "copy.txt"))).toMatchObject({ kind: "file", dst: join(d, "copy.txt"), dstExists: false });
    expect(resolveCopy(join(d, "file.txt"), join(d, "existing")).dst).toBe(join(d, "existing", "file.txt"));
    expect(resolveCopy(join(d, "file.txt"), `${join(d, "not-yet")}/`)).toMatchObject({ dst: join(d, "not-yet", "file.txt"), dstParentExists: false });
  });

  test("DST inside SRC is refused (existing, new, through a symlink)", () => {
    refused(join(d, "src"), join(d, "src", "sub"), /inside SRC/);
    refused(join(d, "src"), join(d, "src", "newdst"), /inside SRC/);
    refused(join(d, "src"), join(d, "link-to-src", "newdst"), /inside SRC/);
    expect(existsSync(join(d, "src", "newdst"))).toBe(false);
  });

  test("SRC inside DST is refused", () => {
    refused(join(d, "outer", "inner"), join(d, "outer"), /inside DST/);
  });

  test("SRC equal to DST is refused, however it is spelled", () => {
    refused(join(d, "src"), join(d, "src"), /same/);
    refused(join(d, "src"), `${join(d, "src")}/`, /same/);
    refused(join(d, "src"), join(d, "src", "sub", ".."), /same/);
    refused(join(d, "src"), join(d, "link-to-src"), /same/);
    refused(join(d, "link-to-src"), join(d, "src"), /same/);
    refused(join(d, "file.txt"), join(d, "link-to-file"), /same file/);
    refused(join(d, "file.txt"), d, /same file/);
  });

  test("a directory onto an existing file is refused", () => {
    refused(join(d, "src"), join(d, "file.txt"), /not a directory/);
  });

  test("a missing SRC is a SysError naming the path and ENOENT", () => {
    let err: unknown;
    try {
      resolveCopy(join(d, "nope"), join(d, "x"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SysError);
    expect((err as SysError).code).toBe("ENOENT");
    expect((err as SysError).message).toContain(join(d, "nope"));
  });
});
