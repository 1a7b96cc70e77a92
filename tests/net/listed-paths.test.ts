// tests/net/listed-paths.test.ts — the receiver's compact set of listed paths for --delete
// (src/net/listed-paths.ts): every added path is found (so nothing listed is ever deleted),
// paths never added are not (so extraneous entries do go), through growth, with
// duplicates and non-ASCII names, in a bounded number of bytes per path; and the delete
// pass keeps an entry the set claims (the direction a hash collision can err in).

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cstr, libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/structs.ts";
import { deletePass } from "../../src/net/delete.ts";
import { ListedPaths } from "../../src/net/listed-paths.ts";

const listed = (i: number): string => `d${i % 997}/sub/f${i}.bin`;

describe("ListedPaths", () => {
  test("every added path is found, through many growths; others are not", () => {
    const s = new ListedPaths();
    const N = 200_000;
    for (let i = 0; i < N; i++) s.add(listed(i));
    expect(s.size).toBe(N);
    let missing = 0;
    for (let i = 0; i < N; i++) if (!s.has(listed(i))) missing++;
    expect(missing).toBe(0);
    // Near misses of listed paths: a prefix, a suffix, another directory, another case.
    let found = 0;
    for (let i = 0; i < N; i++) {
      const p = listed(i);
      if (s.has(`${p}x`) || s.has(p.slice(0, -1)) || s.has(`e${p.slice(1)}`) || s.has(p.toUpperCase())) found++;
      if (s.has(listed(i + N))) found++;
    }
    expect(found).toBe(0);
    // 8-byte slots at most 0.7 full: well under what a Set of strings costs.
    expect(s.bytes / s.size).toBeLessThanOrEqual(24);
  });

  test("duplicates count once; non-ASCII and astral names; the empty set and clear()", () => {
    const s = new ListedPaths();
    expect(s.has("a")).toBe(false);
    for (const p of ["a", "a", "é/ü", "e\u0301/u\u0308", "😀/x", "a/b", "a/b"]) s.add(p);
    expect(s.size).toBe(5);
    for (const p of ["a", "é/ü", "e\u0301/u\u0308", "😀/x", "a/b"]) expect(s.has(p)).toBe(true);
    for (const p of ["b", "a/", "/a", "😁/x", "a/b/c", ""]) expect(s.has(p)).toBe(false);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.has("a")).toBe(false);
  });

  test("two sets (each with its own random seeds) both find what they hold", () => {
    const x = new ListedPaths();
    const y = new ListedPaths();
    for (let i = 0; i < 5000; i++) {
      x.add(listed(i));
      y.add(listed(i));
    }
    for (let i = 0; i < 5000; i++) expect(x.has(listed(i)) && y.has(listed(i))).toBe(true);
  });
});

describe("deletePass with a hash set", () => {
  let dir = "";
  afterEach(() => {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
    dir = "";
  });

  test("removes what was not listed, keeps what was, and keeps what the set claims by mistake", () => {
    dir = mkdtempSync("/tmp/usync-listed-");
    mkdirSync(join(dir, "keep/inner"), { recursive: true });
    mkdirSync(join(dir, "gone/inner"), { recursive: true });
    for (const f of ["keep/a", "keep/b", "keep/inner/c", "gone/inner/d", "top", "collides"]) writeFileSync(join(dir, f), "x");
    const s = new ListedPaths();
    for (const p of ["keep", "keep/a", "keep/inner", "keep/inner/c"]) s.add(p);
    // A set that errs the only way a 64-bit collision can: "collides" looks listed.
    const seen = { has: (rel: string): boolean => rel === "collides" || s.has(rel) };
    const fd = libc.open(cstr(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    const deleted: string[] = [];
    try {
      deletePass(fd, { seen, filter: undefined, ownName: () => false, dryRun: false, onDeleted: (r) => deleted.push(r), onError: (r, e) => deleted.push(`error ${r} ${e.message}`) });
    } finally {
      libc.close(fd);
    }
    expect(deleted.sort()).toEqual(["gone", "keep/b", "top"]);
    for (const f of ["keep/a", "keep/inner/c", "collides"]) expect(existsSync(join(dir, f))).toBe(true);
    for (const f of ["keep/b", "gone", "top"]) expect(existsSync(join(dir, f))).toBe(false);
  });
});
