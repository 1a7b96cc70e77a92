// tests/e2e/copy.test.ts — the local copy command (issue 3) run as a user would run it:
// fidelity (content, modes, owners, ns times, symlinks, hard links, holes, odd names),
// where the contents land, incremental re-runs, --checksum, --ignore-times, --delete,
// --dry-run, --exclude/--include, --json/--quiet/-v, the seed's flags, --no-owner,
// --xattrs and special files. Black box: only the CLI, the file system and its output.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { expectExit, formatResult, lines, requireRoot, runCli } from "../helpers/cli.ts";
import { expectNoDiff, expectSameTree, lineWith, removeDir, summaryOf, workDir } from "../helpers/e2e.ts";
import { listXattrs, makeUnixSocket, setTimesNs, setXattr } from "../helpers/sys.ts";
import {
  BIG_SPARSE_SIZE,
  buildVarietyTree,
  diffTrees,
  MiB,
  OTHER_GID,
  OTHER_UID,
  pathsOf,
  snapshotTree,
  writeRandom,
  writeSparse,
  writeTree,
  type VarietyTree,
} from "../helpers/tree.ts";

const work = workDir("copy");
let V: VarietyTree; // the full variety tree, with the 4.5 GiB sparse file
let M: VarietyTree; // the same without the big sparse file, for the many flag variants
let n = 0;
/** A fresh, not yet existing destination path. */
const freshDst = (tag: string): string => join(work, `dst-${tag}-${++n}`);

beforeAll(() => {
  V = buildVarietyTree(join(work, "variety"));
  M = buildVarietyTree(join(work, "medium"), { bigSparse: false });
}, 60_000);
afterAll(() => removeDir(work), 120_000);

/** Copy with `args` into a new DST; the copy must match the source as it was just before. */
async function copyFaithfully(src: string, extra: string[] = [], tag = "c"): Promise<{ dst: string; out: Awaited<ReturnType<typeof runCli>> }> {
  const dst = freshDst(tag);
  const before = snapshotTree(src);
  const out = await runCli([src, dst, ...extra]);
  expectExit(out, 0);
  expectSameTree(before, dst, {}, out, `uring-sync ${extra.join(" ")}`);
  return { dst, out };
}

describe("fidelity", () => {
  test("the suite runs as root (owners, setuid, specials, unprivileged and mount tests need it)", () => {
    requireRoot("the e2e copy suite is specified for root");
    expect(M.chowned.length).toBeGreaterThan(0);
  });

  test("a new DST gets every file byte for byte, with modes, owners, ns times, symlinks, hard links and holes", async () => {
    const src = V.root;
    const dst = freshDst("variety");
    const before = snapshotTree(src);
    const r = await runCli([src, dst]);
    expectExit(r, 0);
    const after = expectSameTree(before, dst, {}, r, "variety tree");
    // The sparse files stay sparse; the 4.5 GiB one is nowhere near fully allocated.
    const big = after.get(V.bigSparse!)!;
    expect(big.size).toBe(BIG_SPARSE_SIZE);
    expect(big.blocks * 512, "4.5 GiB sparse file: the copy allocated its holes").toBeLessThan(16 * MiB);
    for (const rel of V.sparse) {
      expect(after.get(rel)!.blocks * 512, `${rel} allocated`).toBeLessThanOrEqual(before.get(rel)!.blocks * 512 + 32 * 1024);
    }
    // Symlinks are links in the copy, never followed (a followed link to a dir would be a dir).
    for (const rel of V.symlinks) expect(after.get(rel)!.type, rel).toBe("symlink");
    expect(after.get("sym/abs-into-src")!.target).toBe(join(src, "small.txt"));
    // Hard links: one inode per group in the copy too.
    for (const group of V.hardLinkGroups) {
      expect(new Set(group.map((p) => after.get(p)!.ino)).size, group.join(", ")).toBe(1);
    }
    // The source was only read (times put back by the snapshot; atime may move on reading).
    expectNoDiff(diffTrees(before, snapshotTree(src), { ignoreAtime: true }), "the source after the copy");
  }, 120_000);

  test("an existing empty DST receives the contents of SRC (no SRC/ level inside)", async () => {
    const dst = freshDst("existing");
    mkdirSync(dst, { mode: 0o700 });
    const before = snapshotTree(M.root);
    const r = await runCli([M.root, dst]);
    expectExit(r, 0);
    expectSameTree(before, dst, {}, r); // root attributes too, like cp -a SRC/. DST
  });

  test("`uring-sync copy SRC DST` does what `uring-sync SRC DST` does", async () => {
    await copyFaithfully(M.root, [], "plain");
    const dst = freshDst("copyword");
    const before = snapshotTree(M.root);
    const r = await runCli(["copy", M.root, dst]);
    expectExit(r, 0);
    expectSameTree(before, dst, {}, r, "uring-sync copy SRC DST");
  });

  test("relative SRC and DST resolve against the working directory; SRC/ and SRC copy the same", async () => {
    const cwd = join(work, "rel");
    writeTree(join(cwd, "src"), { "a.txt": "alpha\n", "d/b.txt": "beta\n", "d/e/c.txt": "" });
    const before = snapshotTree(join(cwd, "src"));
    const r1 = await runCli(["src", "out"], { cwd });
    expectExit(r1, 0);
    expectSameTree(before, join(cwd, "out"), {}, r1, "src -> out");
    const before2 = snapshotTree(join(cwd, "src")); // the first copy's reads may have moved atimes
    const r2 = await runCli(["src/", "out-slash"], { cwd });
    expectExit(r2, 0);
    expectSameTree(before2, join(cwd, "out-slash"), {}, r2, "src/ -> out-slash");
    // A SRC whose name starts with "-", after "--".
    writeTree(join(cwd, "-src"), { "-x": "dash\n" });
    const before3 = snapshotTree(join(cwd, "-src"));
    const r3 = await runCli(["copy", "--", "-src", "out-dash"], { cwd });
    expectExit(r3, 0);
    expectSameTree(before3, join(cwd, "out-dash"), {}, r3, "copy -- -src out-dash");
    expect(readdirSync(cwd).sort()).toEqual(["-src", "out", "out-dash", "out-slash", "src"]);
  });

  const VARIANTS: string[][] = [
    ["-j", "1"],
    ["-j", "4"],
    ["-j", "64"],
    ["--sync"],
    ["-q", "1"],
    ["-c", "4K"],
    ["-c", "64M"],
    ["--no-splice"],
    ["--fsync"],
    ["-j", "4", "-q", "2", "-c", "4K", "--sync"],
  ];
  test.each(VARIANTS.map((f) => [f.join(" "), f] as const))("with %s: an identical tree", async (_label, flags) => {
    await copyFaithfully(M.root, [...flags], flags.join("").replace(/\W/g, ""));
  });

  test("--sync reports a synchronous backend in --json; the default one is io_uring, not that", async () => {
    const a = await runCli([M.root, freshDst("be-sync"), "--sync", "--json"]);
    expectExit(a, 0);
    const b = await runCli([M.root, freshDst("be-default"), "--json"]);
    expectExit(b, 0);
    const sync = summaryOf(a).backend;
    const dflt = summaryOf(b).backend;
    expect(sync, "--sync backend").toMatch(/sync/i);
    expect(dflt, "default backend should be the io_uring one").not.toBe(sync);
  });

  test("many directories in parallel (-j 4), with hard links across them", async () => {
    const src = join(work, "wide");
    for (let d = 0; d < 24; d++) for (let f = 0; f < 20; f++) writeRandom(join(src, `d${d}`, `f${f}`), (d * 131 + f * 17) % 3000);
    for (let d = 1; d < 24; d += 3) linkSync(join(src, "d0", "f1"), join(src, `d${d}`, "hl"));
    await copyFaithfully(src, ["-j", "4"], "wide");
  });

  test("file names that are not valid UTF-8 are copied byte for byte", async () => {
    const src = join(work, "bytes-src");
    const dst = freshDst("bytes");
    const dirName = Buffer.from([0x64, 0xe9, 0x2d, 0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31]); // "dé-latin1" in Latin-1
    const fileName = Buffer.from([0x62, 0xff, 0xfe, 0x2e, 0x74]);
    const at = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from("/"), Buffer.from(p)])));
    mkdirSync(at(src, dirName), { recursive: true });
    writeFileSync(at(src, fileName), "bytes\n");
    writeFileSync(at(src, dirName, fileName), "nested\n");
    const r = await runCli([src, dst]);
    expectExit(r, 0);
    const names = readdirSync(dst, { encoding: "buffer" }).map((b) => b.toString("hex")).sort();
    expect(names).toEqual([dirName.toString("hex"), fileName.toString("hex")].sort());
    expect(readFileSync(at(dst, fileName), "utf8")).toBe("bytes\n");
    expect(readFileSync(at(dst, dirName, fileName), "utf8")).toBe("nested\n");
  });

  test("a single file: to a new path, into an existing directory, then a re-run copies nothing", async () => {
    const d = join(work, "single");
    mkdirSync(join(d, "into"), { recursive: true });
    const file = join(d, "file.bin");
    writeRandom(file, 300_000);
    chmodSync(file, 0o640);
    setTimesNs(file, 1_111_111_111_222_333_444n, 1_000_000_000_123_456_789n);
    const before = snapshotTree(file);
    const r1 = await runCli([file, join(d, "out.bin")]);
    expectExit(r1, 0);
    expectNoDiff(diffTrees(before, snapshotTree(join(d, "out.bin"))), "file -> new path", r1);
    const r2 = await runCli([file, join(d, "into")]);
    expectExit(r2, 0);
    expect(readdirSync(join(d, "into")), "a file copied into an existing directory").toEqual(["file.bin"]);
    expectNoDiff(diffTrees(before, snapshotTree(join(d, "into", "file.bin")), { ignoreAtime: true }), "file -> dir/", r2);
    const ino = lstatSync(join(d, "out.bin")).ino;
    const r3 = await runCli([file, join(d, "out.bin"), "--json"]);
    expectExit(r3, 0);
    const s = summaryOf(r3);
    expect(s.filesCopied, formatResult(r3)).toBe(0);
    expect(s.filesSkipped, formatResult(r3)).toBe(1);
    expect(lstatSync(join(d, "out.bin")).ino, "re-run rewrote the file").toBe(ino);
    // An older DST file is replaced.
    writeFileSync(join(d, "old.bin"), "an older, shorter version\n");
    const r4 = await runCli([file, join(d, "old.bin")]);
    expectExit(r4, 0);
    expectNoDiff(diffTrees(before, snapshotTree(join(d, "old.bin")), { ignoreAtime: true }), "file -> older file", r4);
  });

  test("file sizes around every chunk and threshold boundary copy exactly, with default, -c 4K and -c 64K", async () => {
    const src = join(work, "sizes");
    const sizes = [0, 1, 511, 512, 4095, 4096, 4097, 65535, 65536, 65537, 131072, MiB - 1, MiB, MiB + 1, 2 * MiB, 4 * MiB + 1, 8 * MiB + 4097];
    for (const size of sizes) writeRandom(join(src, `s${size}.bin`), size);
    for (const flags of [[], ["-c", "4K"], ["-c", "64K"], ["--sync", "-c", "64K"]]) await copyFaithfully(src, flags, "sizes");
  });

  test("small sparse files stay sparse too (holes under 1 MiB, a file that is all hole, data only at the end)", async () => {
    const src = join(work, "small-sparse");
    writeSparse(join(src, "ends-900k.bin"), 900 * 1024, [[0, 4096], [900 * 1024 - 4096, 4096]]);
    writeSparse(join(src, "all-hole-256k.bin"), 256 * 1024, []);
    writeSparse(join(src, "tail-only-512k.bin"), 512 * 1024, [[512 * 1024 - 4096, 4096]]);
    writeSparse(join(src, "mid-2m.bin"), 2 * MiB, [[MiB, 8192]]);
    const before = snapshotTree(src);
    for (const rel of ["ends-900k.bin", "all-hole-256k.bin", "tail-only-512k.bin", "mid-2m.bin"]) {
      expect(before.get(rel)!.blocks * 512, `${rel} is not sparse in the source`).toBeLessThanOrEqual(8192);
    }
    const { dst } = await copyFaithfully(src, [], "small-sparse");
    const after = snapshotTree(dst);
    for (const [rel, e] of after) {
      if (e.type === "file") expect(e.blocks * 512, `${rel}: the copy allocated its holes`).toBeLessThanOrEqual(before.get(rel)!.blocks * 512 + 4096);
    }
  });

  test("5,000 files in one directory, and 150 nested levels (-j 4)", async () => {
    const src = join(work, "flat-deep");
    mkdirSync(join(src, "flat"), { recursive: true });
    for (let i = 0; i < 5000; i++) writeFileSync(join(src, "flat", `f${i}`), i % 7 === 0 ? "" : `file ${i}\n`);
    let deep = join(src, "deep");
    for (let i = 0; i < 150; i++) deep = join(deep, `l${i}`);
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, "bottom.txt"), "bottom\n");
    const { dst } = await copyFaithfully(src, ["-j", "4"], "flat-deep");
    removeDir(dst);
    removeDir(src);
  }, 120_000);

  test("DST given as a symlink to a directory: the contents land in that directory, the link stays", async () => {
    const src = join(work, "dstlink-src");
    const real = join(work, "dstlink-real");
    const link = join(work, "dstlink");
    writeTree(src, { "a.txt": "a\n", "d/b.txt": "b\n" });
    mkdirSync(real);
    symlinkSync(real, link);
    const before = snapshotTree(src);
    const r = await runCli([src, link]);
    expectExit(r, 0);
    expect(lstatSync(link).isSymbolicLink(), "DST symlink replaced").toBe(true);
    expectSameTree(before, real, {}, r, "through a DST symlink");
  });

  test("SRC a directory and DST an existing file: refused, the file untouched", async () => {
    const src = join(work, "dirfile-src");
    writeTree(src, { "a.txt": "a\n" });
    const file = join(work, "dirfile-dst");
    writeFileSync(file, "precious\n");
    const r = await runCli([src, file]);
    expect([1, 2], formatResult(r)).toContain(r.code ?? -1);
    expect(readFileSync(file, "utf8")).toBe("precious\n");
    expect(lines(r.stderr).some((l) => l.includes("dirfile-dst")), formatResult(r)).toBe(true);
  });

  test("across file systems: to a tmpfs and back (no shared-extent or same-fs shortcut to lean on)", async () => {
    requireRoot("mount -t tmpfs");
    const mnt = join(work, "xfs-mnt");
    mkdirSync(mnt);
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256M,mode=0755", "tmpfs", mnt]);
    if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`);
    try {
      const before = snapshotTree(M.root);
      const r1 = await runCli([M.root, join(mnt, "copy")]);
      expectExit(r1, 0);
      expectSameTree(before, join(mnt, "copy"), {}, r1, "ext4 -> tmpfs");
      const mid = snapshotTree(join(mnt, "copy"));
      const back = freshDst("back");
      const r2 = await runCli([join(mnt, "copy"), back]);
      expectExit(r2, 0);
      expectSameTree(mid, back, {}, r2, "tmpfs -> ext4");
    } finally {
      spawnSync("umount", ["-l", mnt]);
    }
  }, 90_000);
});

describe("incremental", () => {
  test("a second identical run copies nothing, does not nest, and leaves DST as it was", async () => {
    const dst = freshDst("rerun");
    const before = snapshotTree(V.root);
    const r1 = await runCli([V.root, dst, "--json"]);
    expectExit(r1, 0);
    const s1 = summaryOf(r1);
    const first = expectSameTree(before, dst, {}, r1, "first run");
    // Every regular file was copied: each inode at least once, at most every name (+ symlinks).
    expect(s1.filesCopied, formatResult(r1)).toBeGreaterThanOrEqual(V.fileInodes);
    expect(s1.filesCopied, formatResult(r1)).toBeLessThanOrEqual(V.files.length + V.symlinks.length);
    expect(s1.filesSkipped).toBe(0);
    expect(s1.filesFailed).toBe(0);
    expect(s1.errors).toEqual([]);

    const r2 = await runCli([V.root, dst, "--json"]);
    expectExit(r2, 0);
    const s2 = summaryOf(r2);
    expect(s2.filesCopied, `second run copied files\n${formatResult(r2)}`).toBe(0);
    expect(s2.filesSkipped, `second run should skip what the first copied\n${formatResult(r2)}`).toBe(s1.filesCopied);
    expect(s2.filesFailed).toBe(0);
    expect(s2.bytes, "second run wrote bytes").toBe(0);
    const second = snapshotTree(dst);
    expect(pathsOf(second), "second run nested or added entries").toEqual(pathsOf(first));
    for (const [rel, e] of first) {
      if (e.type === "file") expect(second.get(rel)!.ino, `${rel} was rewritten by the second run`).toBe(e.ino);
    }
    expectNoDiff(diffTrees(before, second, { ignoreAtime: true }), "after the second run", r2);
  }, 120_000);

  test("older versions in DST are replaced atomically (new inode), whatever their mtime; no temp files left", async () => {
    const src = join(work, "upd-src");
    const dst = freshDst("upd");
    const holder = join(work, "upd-holder");
    mkdirSync(holder);
    writeTree(src, { "a.txt": "new version of a, longer\n", "same-size.txt": "NEW!", "sub/b.txt": "b v2\n", "sub/c.txt": "unchanged\n" });
    writeTree(dst, { "a.txt": "old a\n", "same-size.txt": "old!", "sub/b.txt": "b v1 old\n" });
    chmodSync(join(dst, "sub/b.txt"), 0o444);
    setTimesNs(join(src, "same-size.txt"), 1_000_000_000_000_000_000n, 1_000_000_000_000_000_000n);
    setTimesNs(join(dst, "same-size.txt"), 1_600_000_000_000_000_000n, 1_600_000_000_000_000_000n); // newer in DST
    linkSync(join(dst, "a.txt"), join(holder, "old-a")); // sees the old inode's content
    const before = snapshotTree(src);
    const r = await runCli([src, dst]);
    expectExit(r, 0);
    expectSameTree(before, dst, {}, r, "updated DST"); // also: no extra (temp) names anywhere
    expect(readFileSync(join(holder, "old-a"), "utf8"), "the old file was overwritten in place, not replaced by rename").toBe("old a\n");
  });

  test("--ignore-times copies every file again", async () => {
    const dst = freshDst("ignore-times");
    const r1 = await runCli([M.root, dst, "--json"]);
    expectExit(r1, 0);
    const s1 = summaryOf(r1);
    const first = snapshotTree(dst);
    const before = snapshotTree(M.root);
    const r2 = await runCli([M.root, dst, "--ignore-times", "--json"]);
    expectExit(r2, 0);
    const s2 = summaryOf(r2);
    expect(s2.filesCopied, formatResult(r2)).toBe(s1.filesCopied);
    expect(s2.filesSkipped, formatResult(r2)).toBe(0);
    const after = expectSameTree(before, dst, {}, r2, "after --ignore-times");
    for (const [rel, e] of first) {
      if (e.type === "file") expect(after.get(rel)!.ino, `${rel} not rewritten by --ignore-times`).not.toBe(e.ino);
    }
  });

  test("--checksum catches a same-size, same-mtime change that the size+mtime check skips", async () => {
    const src = join(work, "sum-src");
    const dst = freshDst("sum");
    writeTree(src, { "doc.txt": "hello world, version 1\n", "touched.txt": "same content\n", "other.txt": "other\n" });
    const r1 = await runCli([src, dst]);
    expectExit(r1, 0);
    // Change one byte, keep size and times.
    const st = lstatSync(join(src, "doc.txt"), { bigint: true });
    writeFileSync(join(src, "doc.txt"), "hello world, version 2\n");
    setTimesNs(join(src, "doc.txt"), st.atimeNs, st.mtimeNs);
    // Same content, other mtime.
    setTimesNs(join(src, "touched.txt"), 1_500_000_000_000_000_001n, 1_400_000_000_000_000_001n);

    const r2 = await runCli([src, dst]);
    expectExit(r2, 0);
    expect(readFileSync(join(dst, "doc.txt"), "utf8"), "plain mode should skip a file whose size and mtime match").toBe("hello world, version 1\n");
    expect(lstatSync(join(dst, "touched.txt"), { bigint: true }).mtimeNs, "mtime change not applied").toBe(1_400_000_000_000_000_001n);

    const before = snapshotTree(src);
    const r3 = await runCli([src, dst, "--checksum", "--json"]);
    expectExit(r3, 0);
    expect(readFileSync(join(dst, "doc.txt"), "utf8"), "--checksum missed a content change").toBe("hello world, version 2\n");
    expect(summaryOf(r3).filesCopied, formatResult(r3)).toBe(1);
    expectSameTree(before, dst, { ignoreAtime: true }, r3, "after --checksum");
  });

  test("a re-run links names that became hard links in SRC; a link to outside the tree is a plain file", async () => {
    const src = join(work, "relink-src");
    const outside = join(work, "relink-outside");
    const dst = freshDst("relink");
    writeTree(src, { "a.txt": "same bytes\n", "b.txt": "same bytes\n", "solo.txt": "linked from outside\n" });
    mkdirSync(outside);
    linkSync(join(src, "solo.txt"), join(outside, "other-name"));
    setTimesNs(join(src, "a.txt"), 1_100_000_000_000_000_000n, 1_000_000_000_000_000_000n);
    setTimesNs(join(src, "b.txt"), 1_100_000_000_000_000_000n, 1_000_000_000_000_000_000n);
    const r1 = await runCli([src, dst]);
    expectExit(r1, 0);
    expect(lstatSync(join(dst, "solo.txt")).nlink, "solo.txt (2 links, one outside) should be a plain file in DST").toBe(1);
    // b.txt becomes a second name of a.txt: same size, same mtime as the DST's b.txt.
    rmSync(join(src, "b.txt"));
    linkSync(join(src, "a.txt"), join(src, "b.txt"));
    const before = snapshotTree(src);
    const r2 = await runCli([src, dst]);
    expectExit(r2, 0);
    expectSameTree(before, dst, { ignoreAtime: true }, r2, "after b.txt became a hard link to a.txt");
  });

  test("a re-run applies metadata-only changes: mode, owner, times, symlink target", async () => {
    requireRoot("chown");
    const src = join(work, "meta-src");
    const dst = freshDst("meta");
    writeTree(src, { "f.txt": "file\n", "d/g.txt": "g\n" });
    symlinkSync("aaa", join(src, "link"));
    const r1 = await runCli([src, dst]);
    expectExit(r1, 0);
    chmodSync(join(src, "f.txt"), 0o600);
    chmodSync(join(src, "d"), 0o750);
    lchownSync(join(src, "d/g.txt"), 4321, 8765);
    setTimesNs(join(src, "d"), 1_300_000_000_000_000_007n, 1_200_000_000_000_000_007n);
    const lst = lstatSync(join(src, "link"), { bigint: true });
    rmSync(join(src, "link"));
    symlinkSync("bbb", join(src, "link")); // same length, same times: only the target differs
    setTimesNs(join(src, "link"), lst.atimeNs, lst.mtimeNs);
    const before = snapshotTree(src);
    const r2 = await runCli([src, dst]);
    expectExit(r2, 0);
    expectSameTree(before, dst, { ignoreAtime: true }, r2, "after a metadata-only change");
  });

  test("--delete removes what is not in SRC, files and directories, and nothing outside DST", async () => {
    const src = join(work, "del-src");
    const dst = join(work, "del-dst");
    const outside = join(work, "del-outside");
    writeTree(src, { "keep.txt": "keep\n", "sub/keep2.txt": "keep2\n", "sub/inner/k3.txt": "k3\n" });
    writeTree(outside, { "precious.txt": "do not touch\n", "dir/also.txt": "also\n" });
    writeTree(`${dst}-sibling`, { "keep.txt": "sibling\n" });
    writeTree(`${dst}2`, { "keep.txt": "prefix sibling\n" });
    const r1 = await runCli([src, dst]);
    expectExit(r1, 0);
    writeTree(dst, { "extra.txt": "x\n", "extra-dir/nested/deep.txt": "d\n", "sub/extra-in-sub.txt": "s\n", "sub/inner/extra.bin": "b" });
    mkdirSync(join(dst, "sub/empty-extra-dir"));
    symlinkSync(outside, join(dst, "extra-link-to-dir"));
    symlinkSync(join(outside, "precious.txt"), join(dst, "extra-link-to-file"));
    symlinkSync(join(outside, "dir"), join(dst, "sub", "inner", "extra-link"));

    const r2 = await runCli([src, dst]);
    expectExit(r2, 0);
    expect(existsSync(join(dst, "extra.txt")), "without --delete, extra files must stay").toBe(true);

    const before = snapshotTree(src);
    const r3 = await runCli([src, dst, "--delete"]);
    expectExit(r3, 0);
    expectSameTree(before, dst, { ignoreAtime: true }, r3, "after --delete");
    expect(readFileSync(join(outside, "precious.txt"), "utf8")).toBe("do not touch\n");
    expect(readFileSync(join(outside, "dir/also.txt"), "utf8")).toBe("also\n");
    expect(readFileSync(join(`${dst}-sibling`, "keep.txt"), "utf8")).toBe("sibling\n");
    expect(readFileSync(join(`${dst}2`, "keep.txt"), "utf8")).toBe("prefix sibling\n");
  });

  test("entries of another type in DST are replaced, and nothing is ever written through a symlink in DST", async () => {
    const src = join(work, "types-src");
    const dst = join(work, "types-dst");
    const victim = join(work, "types-victim");
    writeTree(src, { "f": "regular in SRC\n", "d/inner.txt": "inner\n" });
    writeTree(victim, { "target.txt": "victim content\n", "dir/existing.txt": "existing\n" });
    mkdirSync(dst);
    symlinkSync(join(victim, "target.txt"), join(dst, "f")); // DST f is a link to a file outside
    symlinkSync(join(victim, "dir"), join(dst, "d")); // DST d is a link to a dir outside
    const before = snapshotTree(src);
    const r = await runCli([src, dst]);
    expectExit(r, 0);
    expect(readFileSync(join(victim, "target.txt"), "utf8"), "wrote through a symlink in DST").toBe("victim content\n");
    expect(readdirSync(join(victim, "dir")), "created files through a symlinked dir in DST").toEqual(["existing.txt"]);
    expectSameTree(before, dst, {}, r, "symlinks in DST replaced");

    // With --delete, a directory where SRC has a file, and a file where SRC has a directory.
    const src2 = join(work, "types-src2");
    const dst2 = join(work, "types-dst2");
    writeTree(src2, { "x": "x is a file now\n", "y/z.txt": "y is a dir now\n" });
    writeTree(dst2, { "x/old.txt": "old dir content\n", "y": "old file\n" });
    const before2 = snapshotTree(src2);
    const r2 = await runCli([src2, dst2, "--delete"]);
    expectExit(r2, 0);
    expectSameTree(before2, dst2, { ignoreAtime: true }, r2, "type changes with --delete");
  });

  test("--dry-run changes nothing, not even creating DST, and lists what would change", async () => {
    const src = join(work, "dry-src");
    const dst = join(work, "dry-dst");
    writeTree(src, { "unchanged-zz.txt": "same\n", "changed.txt": "v1\n", "sub/deep-unchanged-yy.txt": "same\n" });
    const r0 = await runCli([src, dst, "--dry-run"]);
    expectExit(r0, 0);
    expect(existsSync(dst), "--dry-run created DST").toBe(false);
    expect(r0.stdout + r0.stderr, "a dry run into a new DST should list the files").toContain("changed.txt");

    const r1 = await runCli([src, dst]);
    expectExit(r1, 0);
    writeFileSync(join(src, "changed.txt"), "version 2\n");
    writeFileSync(join(src, "added.txt"), "new\n");
    writeFileSync(join(dst, "stale.txt"), "only in DST\n");
    for (const flags of [["--dry-run"], ["-n", "--delete"], ["--dry-run", "--checksum"], ["--dry-run", "--ignore-times", "--delete"]]) {
      const srcBefore = snapshotTree(src);
      const dstBefore = snapshotTree(dst);
      const r = await runCli([src, dst, ...flags]);
      expectExit(r, 0);
      // Reading DST directories may bump their atime; --checksum also reads DST files.
      const dstOpts = flags.includes("--checksum") ? { ignoreAtime: true } : { ignoreDirAtime: true };
      expectNoDiff(diffTrees(dstBefore, snapshotTree(dst), dstOpts), `DST after ${flags.join(" ")}`, r);
      expectNoDiff(diffTrees(srcBefore, snapshotTree(src), { ignoreAtime: true }), `SRC after ${flags.join(" ")}`, r);
      const out = r.stdout + r.stderr;
      expect(out, `${flags.join(" ")}: a changed file`).toContain("changed.txt");
      expect(out, `${flags.join(" ")}: a new file`).toContain("added.txt");
      if (flags.includes("--delete")) expect(out, `${flags.join(" ")}: a file it would delete`).toContain("stale.txt");
      if (!flags.includes("--ignore-times")) expect(out, `${flags.join(" ")}: listed an unchanged file`).not.toContain("unchanged-zz.txt");
    }
  });

  test.each([
    ["exclude before include", ["--exclude", "*.log", "--include", "important.log", "--exclude", "sub/*.log", "--exclude", "cache"]],
    ["include before exclude", ["--include", "important.log", "--exclude", "*.log", "--exclude", "cache", "--exclude", "sub/*.log"]],
  ])("--exclude skips matching paths (relative to SRC), --include overrides it (%s)", async (_label, flags) => {
    const src = join(work, `filter-src-${++n}`);
    const dst = freshDst("filter");
    writeTree(src, {
      "keep.txt": "k\n",
      "drop.log": "d\n",
      "important.log": "i\n",
      "sub/deep.log": "d\n",
      "sub/keep.txt": "k\n",
      "cache/big.bin": "c",
      "cache/sub/x": "x",
      "notcache/y.txt": "y\n",
    });
    const before = snapshotTree(src);
    const r = await runCli([src, dst, ...(flags as string[])]);
    expectExit(r, 0);
    const expected = new Map([...before].filter(([k]) => !["drop.log", "sub/deep.log", "cache", "cache/big.bin", "cache/sub", "cache/sub/x"].includes(k)));
    expectSameTree(expected, dst, {}, r, `filters ${(flags as string[]).join(" ")}`);
  });
});

describe("filters, as documented in copy --help", () => {
  test("documented glob rules: a pattern without / matches at any depth; a trailing / matches directories only", async () => {
    const src = join(work, "globs-src");
    const dst = freshDst("globs");
    writeTree(src, { "a.log": "", "x/y/b.log": "", "keep.txt": "", "build/out.o": "", "other/build": "file named build\n" });
    const before = snapshotTree(src);
    const r = await runCli([src, dst, "--exclude", "*.log", "--exclude", "build/"]);
    expectExit(r, 0);
    const gone = ["a.log", "x/y/b.log", "build", "build/out.o"];
    expectSameTree(new Map([...before].filter(([k]) => !gone.includes(k))), dst, {}, r, "--exclude '*.log' --exclude build/");
  });
});

describe("interface", () => {
  const simple = (): string => {
    const src = join(work, `simple-${++n}`);
    writeTree(src, { "a.txt": Buffer.alloc(10, 1), "d/b.bin": Buffer.alloc(2000, 2), "d/e/c.bin": Buffer.alloc(70000, 3) });
    mkdirSync(join(src, "empty"));
    return src;
  };

  test("--json writes one JSON document with the documented fields and the right counts", async () => {
    const src = simple();
    const dst = freshDst("json");
    const r = await runCli([src, dst, "--json"]);
    expectExit(r, 0);
    const s = summaryOf(r);
    expect(s.filesCopied).toBe(3);
    expect(s.filesSkipped).toBe(0);
    expect(s.filesFailed).toBe(0);
    expect(s.bytes).toBe(72010);
    expect(s.errors).toEqual([]);
    const r2 = await runCli([src, dst, "--json"]);
    expectExit(r2, 0);
    const again = summaryOf(r2);
    expect([again.filesCopied, again.filesSkipped, again.bytes]).toEqual([0, 3, 0]);
  });

  test("without --quiet, a successful run ends with a one-line summary (no progress when not a terminal)", async () => {
    const r = await runCli([simple(), freshDst("summary")]);
    expectExit(r, 0);
    const all = lines(r.stdout + r.stderr);
    expect(all.length, `expected exactly one summary line\n${formatResult(r)}`).toBe(1);
    expect(all[0], "the summary should say how many files were copied").toMatch(/\b3\b/);
  });

  test("the summary counts in words: 1 file, 2 files", async () => {
    const src = freshDst("plural-src");
    writeTree(src, { "one.txt": Buffer.alloc(5, 1) });
    const one = await runCli([src, freshDst("plural-1")]);
    expectExit(one, 0);
    expect(one.stdout + one.stderr).toMatch(/^uring-sync: copied 1 file \(5 B\) in [0-9.]+ s, skipped 0 unchanged, 0 failed/);
    writeTree(src, { "two.txt": Buffer.alloc(5, 2) });
    const two = await runCli([src, freshDst("plural-2")]);
    expectExit(two, 0);
    expect(two.stdout + two.stderr).toMatch(/^uring-sync: copied 2 files \(10 B\) in /);
  });

  test("--quiet prints nothing on success", async () => {
    const src = simple();
    const dst = freshDst("quiet");
    const before = snapshotTree(src);
    const r = await runCli([src, dst, "--quiet"]);
    expectExit(r, 0);
    expect(r.stdout, "stdout").toBe("");
    expect(r.stderr, "stderr").toBe("");
    expectSameTree(before, dst, {}, r);
  });

  test("-v names the backend in use (the one --json reports)", async () => {
    const r = await runCli([simple(), freshDst("verbose"), "-v", "--json"]);
    expectExit(r, 0);
    const backend = summaryOf(r).backend;
    expect(r.stderr, `-v should name the backend ${backend}`).toContain(backend);
  });

  test("copy --help documents every option and shows examples", async () => {
    const r = await runCli(["copy", "--help"]);
    expectExit(r, 0);
    for (const flag of ["--checksum", "--ignore-times", "--delete", "--dry-run", "--exclude", "--include", "--jobs", "--queue-depth", "--chunk", "--sync", "--no-splice", "--json", "--quiet", "--verbose", "--no-owner", "--xattrs", "--specials", "--fsync"]) {
      expect(r.stdout, `copy --help should document ${flag}`).toContain(flag);
    }
    expect(r.stdout, "copy --help should show examples").toMatch(/example/i);
    expect(r.stdout, "an example command line").toMatch(/^\s+uring-sync (copy )?\S+ \S+/m);
  });
});

describe("owners, xattrs and special files (root)", () => {
  test("--no-owner leaves the running user as owner; everything else is kept", async () => {
    requireRoot("chowned entries in SRC");
    const dst = freshDst("no-owner");
    const before = snapshotTree(M.root);
    const r = await runCli([M.root, dst, "--no-owner"]);
    expectExit(r, 0);
    const after = snapshotTree(dst);
    const wrong = [...after].filter(([, e]) => e.uid !== process.getuid!() || e.gid !== process.getgid!()).map(([k, e]) => `${k} ${e.uid}:${e.gid}`);
    expect(wrong, "entries not owned by the running user").toEqual([]);
    // setuid/setgid bits of files owned by someone else may be dropped when the owner is not kept.
    const suid = new Set(["owner/suid-1234", "owner/sgid-1234"]);
    expectNoDiff(diffTrees(before, after, { ignoreOwner: true, skip: (p, f) => f === "mode" && suid.has(p) }), "--no-owner", r);
    // And by default (the variety test) owners are kept: check one here too.
    const dflt = freshDst("owner");
    expectExit(await runCli([M.root, dflt]), 0);
    const st = lstatSync(join(dflt, "owner/link-1234"));
    expect([st.uid, st.gid], "symlink owner").toEqual([OTHER_UID, OTHER_GID]);
  });

  test("--xattrs copies extended attributes (files and dirs, binary values); without it they are not copied", async () => {
    const src = join(work, "xattr-src");
    writeTree(src, { "x.txt": "with xattrs\n", "d/y.txt": "plain\n" });
    setXattr(join(src, "x.txt"), "user.test", "hello");
    setXattr(join(src, "x.txt"), "user.binary", Buffer.from([0, 1, 2, 255, 0]));
    setXattr(join(src, "x.txt"), "user.empty", "");
    setXattr(join(src, "d"), "user.dirattr", "on a directory");
    setXattr(join(src, "d/y.txt"), "user.big", Buffer.alloc(3000, 0x5a)); // past small fixed buffers
    for (let i = 0; i < 24; i++) setXattr(join(src, "d/y.txt"), `user.attr-${String(i).padStart(2, "0")}`, "v".repeat(i));
    const before = snapshotTree(src);
    expect(Object.keys(before.get("x.txt")!.xattrs).sort()).toEqual(["user.binary", "user.empty", "user.test"]);

    const withX = freshDst("xattrs");
    const r1 = await runCli([src, withX, "--xattrs"]);
    expectExit(r1, 0);
    expectSameTree(before, withX, {}, r1, "--xattrs");

    const without = freshDst("no-xattrs");
    const before2 = snapshotTree(src);
    const r2 = await runCli([src, without]);
    expectExit(r2, 0);
    expect(listXattrs(join(without, "x.txt")), "xattrs copied without --xattrs").toEqual({});
    expect(listXattrs(join(without, "d")), "xattrs copied without --xattrs").toEqual({});
    expect(listXattrs(join(without, "d/y.txt")), "xattrs copied without --xattrs").toEqual({});
    expectSameTree(before2, without, { ignoreXattrs: true }, r2, "without --xattrs");
  });

  function specialsTree(): string {
    const src = join(work, `special-src-${++n}`);
    writeTree(src, { "regular.txt": "regular\n" });
    mkdirSync(join(src, "dev"));
    const mk = (args: string[]): void => {
      const p = spawnSync(args[0], args.slice(1));
      if (p.status !== 0) throw new Error(`${args.join(" ")}: ${p.stderr}`);
    };
    mk(["mkfifo", "-m", "0640", join(src, "pipe")]);
    mk(["mknod", "-m", "0600", join(src, "dev", "null-like"), "c", "1", "3"]);
    makeUnixSocket(join(src, "sock"));
    setTimesNs(join(src, "pipe"), 1_010_000_000_000_000_001n, 1_000_000_000_000_000_003n);
    setTimesNs(join(src, "dev", "null-like"), 1_010_000_000_000_000_005n, 1_000_000_000_000_000_007n);
    return src;
  }

  test("FIFOs, sockets and device nodes are skipped with a warning and counted by default (no hang)", async () => {
    requireRoot("mknod");
    const src = specialsTree();
    const dst = freshDst("specials-skip");
    const r = await runCli([src, dst, "--json"], { timeoutMs: 20_000 });
    expectExit(r, 0);
    const s = summaryOf(r);
    expect(s.filesCopied).toBe(1);
    expect(s.filesFailed).toBe(0);
    const counted = s.filesSkipped === 3 || Object.entries(s).some(([k, v]) => /special/i.test(k) && (v === 3 || (Array.isArray(v) && v.length === 3)));
    expect(counted, `the 3 special files should be counted (filesSkipped or a *special* field)\n${formatResult(r)}`).toBe(true);
    for (const name of ["pipe", "null-like", "sock"]) {
      expect(lineWith(r.stderr, "warning", name), `a warning naming ${name}\n${formatResult(r)}`).toBeDefined();
    }
    expect(readdirSync(dst).sort()).toEqual(["dev", "regular.txt"]);
    expect(readdirSync(join(dst, "dev"))).toEqual([]);
  });

  test("--specials recreates FIFOs, sockets and device nodes with their modes, owners and times", async () => {
    requireRoot("mknod");
    const src = specialsTree();
    await copyFaithfully(src, ["--specials"], "specials");
  });
});
