// tests/net/listed-paths.test.ts — the receiver's compact set of listed paths for --delete
// (src/net/listed-paths.ts): every added path is found (so nothing listed is ever deleted),
// paths never added are not (so extraneous entries do go), through growth, with
// duplicates and non-ASCII names, in a bounded number of bytes per path; and the delete
// pass keeps an entry the set claims (the direction a hash collision can err in), also
// when it runs in the smallest slices it can (the receiver runs it between completions).

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cstr, libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/structs.ts";
import { Filter } from "../../src/copy/filter.ts";
import { DeletePass, deletePass, type DeletePassOptions } from "../../src/net/delete.ts";
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
  }, 30_000);

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

  test("a path found as a string is found as its UTF-8 bytes, and the other way round; invalid UTF-8 matches nothing", () => {
    const s = new ListedPaths();
    const enc = new TextEncoder();
    const paths = ["plain/ascii.txt", "ß/ñ/é", "日本/語", "😀/🎉x", "mixé😀日/a", "lone\ud800/x", "lone\udc00", "end\ud83d"];
    for (const p of paths) s.add(p);
    for (const p of paths) {
      const b = enc.encode(p);
      const padded = new Uint8Array(b.length + 5);
      padded.set(b);
      expect(s.hasBytes(padded, b.length)).toBe(true);
      expect(s.hasBytes(padded, b.length - 1)).toBe(false);
    }
    // A byte string that is not UTF-8 (Latin-1 "é") is not the listed "é".
    expect(s.hasBytes(new Uint8Array([0xdf, 0x2f, 0xf1, 0x2f, 0xe9]), 5)).toBe(false);
    // Added as bytes' decoding, found as bytes: the two encodings agree for every code point class.
    const t = new ListedPaths();
    for (let cp = 1; cp < 0x11000; cp += 97) t.add(`x/${String.fromCodePoint(cp)}`);
    for (let cp = 1; cp < 0x11000; cp += 97) {
      const b = enc.encode(`x/${String.fromCodePoint(cp)}`);
      expect(t.hasBytes(b, b.length)).toBe(true);
    }
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

  function run(seen: DeletePassOptions["seen"], extra: Partial<DeletePassOptions> = {}): string[] {
    const fd = libc.open(cstr(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    const out: string[] = [];
    try {
      deletePass(fd, { seen, filter: undefined, ownPrefix: ".own-", dryRun: false, onDeleted: (r) => out.push(r), onError: (r, e) => out.push(`error ${r} ${e.message}`), ...extra });
    } finally {
      libc.close(fd);
    }
    return out.sort();
  }

  test("removes what was not listed, keeps what was, and keeps what the set claims by mistake", () => {
    dir = mkdtempSync("/tmp/usync-listed-");
    mkdirSync(join(dir, "keep/inner"), { recursive: true });
    mkdirSync(join(dir, "gone/inner"), { recursive: true });
    mkdirSync(join(dir, "keep/.own-staged"), { recursive: true });
    for (const f of ["keep/a", "keep/b", "keep/inner/c", "gone/inner/d", "top", "collides", "keep/.own-staged/n"]) writeFileSync(join(dir, f), "x");
    // A name that is not UTF-8 (Latin-1 "é"): never listed.
    writeFileSync(Buffer.from(`${dir}/keep/caf\xe9`, "latin1"), "x");
    const s = new ListedPaths();
    for (const p of ["keep", "keep/a", "keep/inner", "keep/inner/c"]) s.add(p);
    // A set that errs the only way a 64-bit collision can: "collides" looks listed.
    const seen = { hasBytes: (b: Uint8Array, len: number): boolean => new TextDecoder().decode(b.subarray(0, len)) === "collides" || s.hasBytes(b, len) };
    // A dry run reports and removes nothing.
    expect(run(seen, { dryRun: true })).toEqual(["gone", "keep/b", "keep/caf\ufffd", "top"]);
    expect(existsSync(join(dir, "top"))).toBe(true);
    expect(run(seen)).toEqual(["gone", "keep/b", "keep/caf\ufffd", "top"]);
    for (const f of ["keep/a", "keep/inner/c", "collides", "keep/.own-staged/n"]) expect(existsSync(join(dir, f))).toBe(true);
    for (const f of ["keep/b", "gone", "top"]) expect(existsSync(join(dir, f))).toBe(false);
    expect(readdirSync(join(dir, "keep")).sort()).toEqual([".own-staged", "a", "inner"]);
  });

  test("a directory larger than one read buffer: removals while it is being read skip nothing; excluded paths stay", () => {
    dir = mkdtempSync("/tmp/usync-listed-");
    const s = new ListedPaths();
    s.add("big");
    mkdirSync(join(dir, "big"));
    // About 56 bytes a record: several getdents64 fills of 64 KiB.
    const N = 2500;
    for (let i = 0; i < N; i++) {
      const name = `entry-with-a-longish-name-${i}${i % 3 === 0 ? ".cache" : ""}`;
      writeFileSync(join(dir, "big", name), "");
      if (i % 2 === 0) s.add(`big/${name}`);
    }
    const filter = new Filter(["*.cache"], []);
    const deleted = run(s, { filter });
    // Odd entries go unless excluded (*.cache: every i divisible by 3).
    const expected: string[] = [];
    for (let i = 1; i < N; i += 2) if (i % 3 !== 0) expected.push(`big/entry-with-a-longish-name-${i}`);
    expect(deleted).toEqual(expected.sort());
    const left = readdirSync(join(dir, "big"));
    expect(left.length).toBe(N - expected.length);
    for (let i = 0; i < N; i += 2) expect(existsSync(join(dir, "big", `entry-with-a-longish-name-${i}${i % 3 === 0 ? ".cache" : ""}`))).toBe(true);
  }, 30_000);

  test("in slices whose deadline has always passed: the same removals as in one call, and close() stops it cleanly", () => {
    dir = mkdtempSync("/tmp/usync-listed-");
    const s = new ListedPaths();
    const tree = (root: string): void => {
      for (let d = 0; d < 6; d++) {
        s.add(`${root}/keep${d}`);
        mkdirSync(join(dir, root, `keep${d}`, "gone/deep"), { recursive: true });
        mkdirSync(join(dir, root, `gone${d}/a/b`), { recursive: true });
        for (let i = 0; i < 150; i++) {
          writeFileSync(join(dir, root, `keep${d}`, `f${i}`), "");
          if (i % 5 === 0) s.add(`${root}/keep${d}/f${i}`);
          writeFileSync(join(dir, root, `keep${d}`, "gone/deep", `g${i}`), "");
          writeFileSync(join(dir, root, `gone${d}/a/b`, `h${i}`), "");
        }
      }
    };
    s.add("one");
    s.add("sliced");
    tree("one");
    tree("sliced");
    const fd = libc.open(cstr(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    try {
      const opts = (out: string[]): DeletePassOptions => ({
        seen: { hasBytes: (b, len) => s.hasBytes(b, len) }, filter: undefined, ownPrefix: ".own-", dryRun: false,
        onDeleted: (r) => out.push(r), onError: (r, e) => out.push(`error ${r} ${e.message}`),
      });
      // The same tree twice under two roots: once in one call, once in slices of (at least) one step each.
      const whole: string[] = [];
      const sliced: string[] = [];
      const only = (root: string, out: string[]): DeletePassOptions => {
        const o = opts(out);
        return { ...o, seen: { hasBytes: (b, len) => new TextDecoder().decode(b.subarray(0, len)).split("/")[0] !== root || o.seen.hasBytes(b, len) } };
      };
      new DeletePass(fd, only("one", whole)).step(Infinity);
      const pass = new DeletePass(fd, only("sliced", sliced));
      let steps = 0;
      while (!pass.step(0)) steps++;
      expect(pass.done).toBe(true);
      expect(steps).toBeGreaterThan(20);
      const strip = (list: string[], root: string): string[] => list.map((p) => p.slice(root.length + 1)).sort();
      expect(strip(sliced, "sliced")).toEqual(strip(whole, "one"));
      // 6 x (gone<d>, keep<d>/gone, 120 unlisted files of keep<d>)
      expect(whole.length).toBe(6 * 122);
      for (const root of ["one", "sliced"]) {
        for (let d = 0; d < 6; d++) {
          expect(readdirSync(join(dir, root)).sort()).toEqual(["keep0", "keep1", "keep2", "keep3", "keep4", "keep5"]);
          expect(readdirSync(join(dir, root, `keep${d}`)).length).toBe(30);
        }
      }
      // Stopped early, in the middle of a removal: nothing more goes, and no descriptor is left open.
      mkdirSync(join(dir, "late/x/y"), { recursive: true });
      for (let i = 0; i < 500; i++) writeFileSync(join(dir, "late/x/y", `z${i}`), "");
      const fdsBefore = readdirSync("/proc/self/fd").length;
      const stopped: string[] = [];
      const early = new DeletePass(fd, opts(stopped));
      for (let i = 0; i < 3; i++) early.step(0);
      early.close();
      expect(early.done).toBe(true);
      expect(stopped).toEqual([]);
      expect(readdirSync("/proc/self/fd").length).toBe(fdsBefore);
      expect(existsSync(join(dir, "late"))).toBe(true);
    } finally {
      libc.close(fd);
    }
  }, 30_000);
});
