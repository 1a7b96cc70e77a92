// Engine-level tests: src/copy/engine.ts copy() on real temp trees, checked with the
// kernel's own view (lstat with ns times, `stat -c %b` for allocation, inode numbers).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import {
  chmodSync, chownSync, closeSync, existsSync, ftruncateSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync,
  readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, writeSync,
} from "node:fs";
import { join } from "node:path";
import { dlopen, ptr } from "bun:ffi";
import { UsageError } from "../../src/errors.ts";
import { copy, type ChangeAction } from "../../src/copy/engine.ts";
import { diffTrees, snapshotTree } from "../helpers/tree.ts";

const C = dlopen("libc.so.6", { utimensat: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" } }).symbols;
/** Set atime/mtime with nanoseconds, not following symlinks. */
function setTimes(path: string, a: [number, number], m: [number, number]): void {
  const ts = new BigInt64Array([BigInt(a[0]), BigInt(a[1]), BigInt(m[0]), BigInt(m[1])]);
  if (C.utimensat(-100, Buffer.from(`${path}\0`), ptr(ts), 0x100) !== 0) throw new Error(`utimensat ${path}`);
}
const blocks = (p: string): number => Number(spawnSync("stat", ["-c", "%b", p]).stdout.toString().trim());
const st = (p: string) => lstatSync(p, { bigint: true });

let d = "";
let src = "";
beforeAll(() => {
  d = mkdtempSync("/tmp/uring-sync-engine-");
  src = join(d, "src");
  mkdirSync(join(src, "sub/deeper"), { recursive: true });
  mkdirSync(join(src, "empty"));
  writeFileSync(join(src, "empty.txt"), "");
  writeFileSync(join(src, "small.txt"), "hello\n");
  writeFileSync(join(src, "sub/medium.bin"), randomBytes(300_000));
  writeFileSync(join(src, "sub/deeper/big.bin"), randomBytes(3 * 1024 * 1024 + 7));
  writeFileSync(join(src, "suid"), "#!/bin/sh\n");
  chmodSync(join(src, "suid"), 0o4755);
  writeFileSync(join(src, "secret"), "s");
  chmodSync(join(src, "secret"), 0o600);
  // Sparse: 32 MiB with 64 KiB of data in the middle.
  const fd = openSync(join(src, "sparse.img"), "w");
  writeSync(fd, randomBytes(65536), 0, 65536, 16 * 1024 * 1024);
  ftruncateSync(fd, 32 * 1024 * 1024);
  closeSync(fd);
  symlinkSync("small.txt", join(src, "rel-link"));
  symlinkSync("/nonexistent/target", join(src, "dangling"));
  linkSync(join(src, "small.txt"), join(src, "sub/hard.txt"));
  setTimes(join(src, "small.txt"), [1_000_000_001, 111_111_111], [1_500_000_000, 999_999_999]);
  setTimes(join(src, "rel-link"), [1_100_000_000, 5], [1_200_000_000, 7]);
  chmodSync(join(src, "sub/deeper"), 0o750);
  setTimes(join(src, "sub/deeper"), [1_300_000_000, 1], [1_400_000_000, 2]);
  setTimes(join(src, "sub"), [1_300_000_000, 3], [1_400_000_000, 4]);
});
afterAll(() => rmSync(d, { recursive: true, force: true }));

describe("copy() on a real tree", () => {
  let dst = "";
  test("bytes, modes, ns times, symlinks, hard links and holes arrive", async () => {
    dst = join(d, "dst");
    const r = await copy({ src, dst, jobs: 2 });
    expect(r.errors).toEqual([]);
    expect(r.filesFailed).toBe(0);
    expect(r.dryRun).toBe(false);
    // 8 regular names (hard link included) + 2 symlinks.
    expect(r.filesCopied).toBe(10);
    expect(r.symlinks).toBe(2);
    expect(r.hardlinks).toBe(1);
    expect(st(join(dst, "suid")).mode & 0o7777n).toBe(0o4755n);
    expect(st(join(dst, "secret")).mode & 0o7777n).toBe(0o600n);
    expect(st(join(dst, "sub/deeper")).mode & 0o7777n).toBe(0o750n);
    expect(st(join(dst, "small.txt")).mtimeNs).toBe(1_500_000_000_999_999_999n);
    expect(st(join(dst, "small.txt")).atimeNs).toBe(1_000_000_001_111_111_111n);
    expect(st(join(dst, "sub/deeper")).mtimeNs).toBe(1_400_000_000_000_000_002n);
    expect(st(join(dst, "sub")).mtimeNs).toBe(1_400_000_000_000_000_004n);
    // Content last: reading bumps atimes (relatime).
    for (const f of ["empty.txt", "small.txt", "sub/medium.bin", "sub/deeper/big.bin", "suid", "secret"]) {
      expect(readFileSync(join(dst, f)).equals(readFileSync(join(src, f))), f).toBe(true);
    }
    expect(readlinkSync(join(dst, "rel-link"))).toBe("small.txt");
    expect(readlinkSync(join(dst, "dangling"))).toBe("/nonexistent/target");
    expect(st(join(dst, "rel-link")).mtimeNs).toBe(1_200_000_000_000_000_007n);
    expect(lstatSync(join(dst, "sub/hard.txt")).ino).toBe(lstatSync(join(dst, "small.txt")).ino);
    expect(lstatSync(join(dst, "sparse.img")).size).toBe(32 * 1024 * 1024);
    expect(blocks(join(dst, "sparse.img"))).toBeLessThanOrEqual(blocks(join(src, "sparse.img")) + 64);
    expect(readFileSync(join(dst, "sparse.img")).equals(readFileSync(join(src, "sparse.img")))).toBe(true);
    expect(readdirSync(join(dst, "empty"))).toEqual([]);
    // No temp names left anywhere.
    const all = spawnSync("find", [dst]).stdout.toString();
    expect(all).not.toContain(".usync-");
  });

  test("a second run copies nothing and rewrites nothing", async () => {
    const inode = lstatSync(join(dst, "sub/medium.bin")).ino;
    const r = await copy({ src, dst, jobs: 1 });
    expect(r.filesCopied).toBe(0);
    expect(r.filesSkipped).toBe(10);
    expect(r.bytes).toBe(0);
    expect(lstatSync(join(dst, "sub/medium.bin")).ino).toBe(inode);
    expect(existsSync(join(dst, "src"))).toBe(false); // never nests
  });

  test("a dry run reports what would change and changes nothing", async () => {
    writeFileSync(join(src, "added.txt"), "new");
    writeFileSync(join(dst, "stale.txt"), "old");
    const changes: [ChangeAction, string][] = [];
    const r = await copy({ src, dst, dryRun: true, delete: true }, { onChange: (a, p) => changes.push([a, p]) });
    expect(r.dryRun).toBe(true);
    expect(changes).toContainEqual(["copy", "added.txt"]);
    expect(changes).toContainEqual(["delete", "stale.txt"]);
    expect(changes.some(([, p]) => p === "small.txt")).toBe(false);
    expect(existsSync(join(dst, "added.txt"))).toBe(false);
    expect(existsSync(join(dst, "stale.txt"))).toBe(true);
  });

  test("--delete removes what SRC does not have; updates replace files with new inodes", async () => {
    writeFileSync(join(src, "small.txt"), "hello, changed\n");
    const old = lstatSync(join(dst, "small.txt")).ino;
    const r = await copy({ src, dst, delete: true });
    expect(r.errors).toEqual([]);
    expect(r.deleted).toBe(1);
    expect(existsSync(join(dst, "stale.txt"))).toBe(false);
    expect(readFileSync(join(dst, "added.txt"), "utf8")).toBe("new");
    expect(readFileSync(join(dst, "small.txt"), "utf8")).toBe("hello, changed\n");
    expect(lstatSync(join(dst, "small.txt")).ino).not.toBe(old);
    // The hard link follows the new content, as one inode again.
    expect(lstatSync(join(dst, "sub/hard.txt")).ino).toBe(lstatSync(join(dst, "small.txt")).ino);
  });

  test("filters: excluded paths are neither copied nor deleted", async () => {
    const out = join(d, "filtered");
    mkdirSync(join(out, "sub/deeper"), { recursive: true });
    writeFileSync(join(out, "sub/deeper/keep-me.bin"), "excluded dir content in DST");
    const r = await copy({ src, dst: out, exclude: ["deeper/", "*.img"], include: ["secret"], delete: true });
    expect(r.errors).toEqual([]);
    expect(existsSync(join(out, "sparse.img"))).toBe(false);
    expect(existsSync(join(out, "sub/deeper/big.bin"))).toBe(false);
    expect(existsSync(join(out, "sub/deeper/keep-me.bin"))).toBe(true);
    expect(existsSync(join(out, "secret"))).toBe(true);
  });

  test("progress is reported while copying, with totals once the scan is done", async () => {
    const seen: { scanning: boolean; filesTotal: number }[] = [];
    const r = await copy({ src, dst: join(d, "progress") }, { onProgress: (p) => seen.push({ scanning: p.scanning, filesTotal: p.filesTotal }), progressMs: 1 });
    expect(r.filesFailed).toBe(0);
    // The run may be faster than the first tick; when it is not, the totals are sane.
    for (const s of seen) expect(s.filesTotal).toBeGreaterThanOrEqual(0);
  });

  test("reading subdirectories ahead (forced on) changes nothing: a name it looks up that exists, long names, deep trees", async () => {
    const tree = join(d, "ahead");
    const long = "d".repeat(255);
    mkdirSync(join(tree, "a/b/c"), { recursive: true });
    mkdirSync(join(tree, long, "x"), { recursive: true });
    mkdirSync(join(tree, "has-name"));
    // The name prefetchDir looks up, present as a file and as a directory.
    writeFileSync(join(tree, "has-name/.usync-prefetch"), "a real file\n");
    mkdirSync(join(tree, "a/.usync-prefetch"));
    writeFileSync(join(tree, "a/.usync-prefetch/inner"), "inner\n");
    for (const sub of ["a", "a/b", "a/b/c", long, `${long}/x`]) writeFileSync(join(tree, sub, "f"), `${sub}\n`);
    symlinkSync("a/b", join(tree, "link-to-dir"));
    setTimes(join(tree, "a/b"), [1_300_000_000, 5], [1_400_000_000, 6]);
    const before = snapshotTree(tree);
    const out = join(d, "ahead-out");
    const saved = process.env.URING_SYNC_PREFETCH;
    process.env.URING_SYNC_PREFETCH = "always";
    try {
      const r = await copy({ src: tree, dst: out, jobs: 2 });
      expect(r.errors).toEqual([]);
      expect(r.filesCopied).toBe(8); // 7 regular files and the symlink
    } finally {
      if (saved === undefined) delete process.env.URING_SYNC_PREFETCH;
      else process.env.URING_SYNC_PREFETCH = saved;
    }
    expect(diffTrees(before, snapshotTree(out))).toEqual([]);
    expect(readFileSync(join(out, "has-name/.usync-prefetch"), "utf8")).toBe("a real file\n");
  });

  test("a big flat directory (split into chunk tasks) arrives whole, its times set after all of it", async () => {
    const flat = join(d, "flat");
    mkdirSync(flat);
    for (let i = 0; i < 1500; i++) writeFileSync(join(flat, `f${i}`), `file ${i}\n`);
    setTimes(flat, [1_000_000_000, 10], [1_100_000_000, 20]);
    const out = join(d, "flat-out");
    const r = await copy({ src: flat, dst: out, jobs: 2, queueDepth: 64 });
    expect(r.errors).toEqual([]);
    expect(r.filesCopied).toBe(1500);
    expect(r.threads.reduce((a, b) => a + b, 0)).toBe(1500);
    const names = readdirSync(out);
    expect(names.length).toBe(1500);
    for (const i of [0, 749, 1499]) expect(readFileSync(join(out, `f${i}`), "utf8")).toBe(`file ${i}\n`);
    expect(st(out).mtimeNs).toBe(1_100_000_000_000_000_020n);
  });

  test("as root, owners are right even in a setgid DST whose group new entries would inherit", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test must run as root (chown)");
    const s2 = join(d, "sgid-src");
    mkdirSync(join(s2, "sub/deeper"), { recursive: true });
    writeFileSync(join(s2, "a.txt"), "a");
    writeFileSync(join(s2, "sub/b.txt"), "b");
    writeFileSync(join(s2, "sub/deeper/c.txt"), "c");
    const out = join(d, "sgid-dst");
    mkdirSync(out);
    chownSync(out, 0, 4321);
    chmodSync(out, 0o2775);
    const r = await copy({ src: s2, dst: out });
    expect(r.errors).toEqual([]);
    for (const p of ["a.txt", "sub", "sub/b.txt", "sub/deeper", "sub/deeper/c.txt", "."]) {
      const e = lstatSync(join(out, p));
      expect([p, e.uid, e.gid], p).toEqual([p, 0, 0]);
    }
    // The root takes SRC's mode (no setgid), like everything else.
    expect(lstatSync(out).mode & 0o7777).toBe(lstatSync(s2).mode & 0o7777);
  });

  test("refusals are UsageErrors, raised before anything is written", async () => {
    let err: unknown;
    try {
      await copy({ src, dst: join(src, "inside") });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect(existsSync(join(src, "inside"))).toBe(false);
  });

  test("a single file to a new name keeps mode and times", async () => {
    const out = join(d, "one.txt");
    const r = await copy({ src: join(src, "secret"), dst: out });
    expect(r.filesCopied).toBe(1);
    expect(st(out).mode & 0o7777n).toBe(0o600n);
    expect(st(out).mtimeNs).toBe(st(join(src, "secret")).mtimeNs);
  });
});
