/**
 * Real directory trees for the e2e tests: a builder for a tree with every kind of entry
 * the copy must reproduce (buildVarietyTree), a snapshot of everything observable about a
 * tree (snapshotTree), and a comparison that lists differences in plain words (diffTrees).
 *
 * Observing must not disturb: file contents are read with O_NOATIME, and the atime/mtime
 * of directories and symlinks (which readdir/readlink bump under relatime) are put back
 * after the walk, so a source can be snapshotted before a copy and compared to the copy
 * afterwards, atime included. Content is hashed hole-aware (see contentDigest), so a
 * 4.5 GiB sparse file costs a few reads, and a copy that filled the holes with zeros still
 * hashes the same (its allocation is judged separately, by blocks).
 */
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { dataSegments, listXattrs, setTimesNs } from "./sys.ts";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** The owner the variety tree gives some entries when run as root. */
export const OTHER_UID = 1234;
export const OTHER_GID = 5678;

export type EntryType = "file" | "dir" | "symlink" | "fifo" | "socket" | "chardev" | "blockdev";

export interface Entry {
  type: EntryType;
  /** Permission and special bits (st_mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Hole-aware SHA-256 of the content (regular files only). */
  digest?: string;
  target?: string;
  mtimeNs: bigint;
  atimeNs: bigint;
  /** 512-byte blocks allocated. */
  blocks: number;
  ino: number;
  nlink: number;
  rdev: number;
  /** Smallest relative path sharing this inode inside the tree; null when not hard-linked. */
  linkGroup: string | null;
  xattrs: Record<string, string>;
}

/** Relative path ("." for the root) -> entry, in sorted order. */
export type Snapshot = Map<string, Entry>;

function typeOf(mode: number): EntryType {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFREG: return "file";
    case constants.S_IFDIR: return "dir";
    case constants.S_IFLNK: return "symlink";
    case constants.S_IFIFO: return "fifo";
    case constants.S_IFSOCK: return "socket";
    case constants.S_IFCHR: return "chardev";
    case constants.S_IFBLK: return "blockdev";
    default: throw new Error(`unknown file type ${mode.toString(8)}`);
  }
}

const DIGEST_BLOCK = 64 * KiB;
const ZERO = Buffer.alloc(DIGEST_BLOCK);

/**
 * SHA-256 over (offset, bytes) of every 64 KiB-aligned block that is not all zeros, then
 * the size. Only data segments (SEEK_DATA) are read, so holes cost nothing; a block of
 * explicit zeros and a hole hash the same, so this compares content, not layout.
 */
export function contentDigest(path: string): string {
  const fd = openNoAtime(path);
  try {
    const size = fstatSync(fd).size;
    const h = createHash("sha256");
    const buf = Buffer.allocUnsafe(DIGEST_BLOCK);
    const off8 = Buffer.alloc(8);
    let next = 0; // first block not yet hashed
    for (const [start, end] of dataSegments(fd, size)) {
      for (let blk = Math.max(next, Math.floor(start / DIGEST_BLOCK) * DIGEST_BLOCK); blk < end; blk += DIGEST_BLOCK) {
        let n = 0;
        while (n < DIGEST_BLOCK) {
          const got = readSync(fd, buf, n, DIGEST_BLOCK - n, blk + n);
          if (got === 0) break;
          n += got;
        }
        if (n === 0) break;
        if (!buf.subarray(0, n).equals(ZERO.subarray(0, n))) {
          off8.writeBigUInt64LE(BigInt(blk));
          h.update(off8);
          h.update(buf.subarray(0, n));
        }
        next = blk + DIGEST_BLOCK;
      }
    }
    off8.writeBigUInt64LE(BigInt(size));
    h.update(off8);
    return h.digest("hex");
  } finally {
    closeSync(fd);
  }
}

/** Open for reading without updating atime when allowed (owner or root). */
function openNoAtime(path: string): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOATIME);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EPERM") return openSync(path, constants.O_RDONLY);
    throw e;
  }
}

export interface SnapshotOptions {
  /** Hash regular files (default true). */
  content?: boolean;
}

/**
 * Everything observable about a tree, keyed by path relative to root ("." is the root).
 * Symlinks are recorded, never followed. Leaves all times as it found them.
 */
export function snapshotTree(root: string, opts: SnapshotOptions = {}): Snapshot {
  const hash = opts.content ?? true;
  const snap: Snapshot = new Map();
  const restore: [string, bigint, bigint][] = [];
  const visit = (rel: string, abs: string): void => {
    const st = lstatSync(abs, { bigint: true });
    const type = typeOf(Number(st.mode));
    const e: Entry = {
      type,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      mtimeNs: st.mtimeNs,
      atimeNs: st.atimeNs,
      blocks: Number(st.blocks),
      ino: Number(st.ino),
      nlink: Number(st.nlink),
      rdev: Number(st.rdev),
      linkGroup: null,
      xattrs: listXattrs(abs),
    };
    snap.set(rel, e);
    if (type === "file" && hash) {
      e.digest = contentDigest(abs);
      restore.push([abs, st.atimeNs, st.mtimeNs]); // in case O_NOATIME was refused
    } else if (type === "symlink") {
      e.target = readlinkSync(abs);
      restore.push([abs, st.atimeNs, st.mtimeNs]);
    } else if (type === "dir") {
      for (const name of readdirSync(abs).sort()) visit(rel === "." ? name : `${rel}/${name}`, join(abs, name));
      restore.push([abs, st.atimeNs, st.mtimeNs]);
    }
  };
  visit(".", root);
  for (const [abs, a, m] of restore) setTimesNs(abs, a, m);
  // Hard-link identity: the smallest path of each inode seen twice or more in the tree.
  const byIno = new Map<number, string[]>();
  for (const [rel, e] of snap) {
    if (e.type === "dir") continue;
    const l = byIno.get(e.ino) ?? [];
    l.push(rel);
    byIno.set(e.ino, l);
  }
  for (const paths of byIno.values()) {
    if (paths.length < 2) continue;
    const id = [...paths].sort()[0];
    for (const p of paths) snap.get(p)!.linkGroup = id;
  }
  return snap;
}

export type Field = "type" | "mode" | "owner" | "size" | "content" | "target" | "mtime" | "atime" | "hardlinks" | "blocks" | "rdev" | "xattrs";

export interface DiffOptions {
  ignoreAtime?: boolean;
  /** Ignore atime of directories only (readdir bumps it). */
  ignoreDirAtime?: boolean;
  ignoreMtime?: boolean;
  ignoreBlocks?: boolean;
  /** Extra 512-byte blocks the copy may allocate over the source (default 64 = 32 KiB). */
  blockSlack?: number;
  ignoreOwner?: boolean;
  ignoreXattrs?: boolean;
  /** Do not compare the root entry's own attributes. */
  ignoreRoot?: boolean;
  /** Skip one field of one path. */
  skip?: (path: string, field: Field) => boolean;
}

export function fmtNs(ns: bigint): string {
  let sec = ns / 1_000_000_000n;
  let frac = ns % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    sec -= 1n;
  }
  const iso = new Date(Number(sec) * 1000).toISOString().replace(".000Z", "");
  return `${iso}.${frac.toString().padStart(9, "0")}Z`;
}

const show = (p: string): string => JSON.stringify(p);

/**
 * Differences between a source snapshot `a` and a copy `b`, one readable line each;
 * empty when the copy is faithful. Blocks are one-sided: the copy may be sparser, not
 * fuller. Directory sizes and blocks are never compared (they depend on history).
 */
export function diffTrees(a: Snapshot, b: Snapshot, opts: DiffOptions = {}): string[] {
  const out: string[] = [];
  const slack = opts.blockSlack ?? 64;
  for (const path of a.keys()) if (!b.has(path)) out.push(`${show(path)}: missing in the copy (a ${a.get(path)!.type} in the source)`);
  for (const path of b.keys()) if (!a.has(path)) out.push(`${show(path)}: extra in the copy (a ${b.get(path)!.type}; not in the source)`);
  for (const [path, x] of a) {
    const y = b.get(path);
    if (y === undefined) continue;
    if (path === "." && opts.ignoreRoot) continue;
    const want = (f: Field): boolean => !(opts.skip?.(path, f) ?? false);
    const d = (f: Field, what: string): void => {
      if (want(f)) out.push(`${show(path)}: ${what}`);
    };
    if (x.type !== y.type) {
      d("type", `type ${x.type} in the source, ${y.type} in the copy`);
      continue;
    }
    if (x.mode !== y.mode) d("mode", `mode 0${x.mode.toString(8)} in the source, 0${y.mode.toString(8)} in the copy`);
    if (!opts.ignoreOwner && (x.uid !== y.uid || x.gid !== y.gid)) d("owner", `owner ${x.uid}:${x.gid} in the source, ${y.uid}:${y.gid} in the copy`);
    if (x.type === "file" || x.type === "symlink") {
      if (x.size !== y.size) d("size", `size ${x.size} in the source, ${y.size} in the copy`);
    }
    if (x.type === "file" && x.digest !== undefined && y.digest !== undefined && x.digest !== y.digest) d("content", "content differs");
    if (x.type === "symlink" && x.target !== y.target) d("target", `symlink target ${show(x.target ?? "")} in the source, ${show(y.target ?? "")} in the copy`);
    if (!opts.ignoreMtime && x.mtimeNs !== y.mtimeNs) d("mtime", `mtime ${fmtNs(x.mtimeNs)} in the source, ${fmtNs(y.mtimeNs)} in the copy`);
    const atimeMatters = !opts.ignoreAtime && !(opts.ignoreDirAtime && x.type === "dir");
    if (atimeMatters && x.atimeNs !== y.atimeNs) d("atime", `atime ${fmtNs(x.atimeNs)} in the source, ${fmtNs(y.atimeNs)} in the copy`);
    if (x.linkGroup !== y.linkGroup) {
      d("hardlinks", `hard-link group ${show(x.linkGroup ?? "(none)")} in the source, ${show(y.linkGroup ?? "(none)")} in the copy`);
    }
    if (x.type === "file" && !opts.ignoreBlocks && y.blocks > x.blocks + slack) {
      d("blocks", `allocates ${y.blocks * 512} bytes in the copy, ${x.blocks * 512} in the source (holes filled?)`);
    }
    if ((x.type === "chardev" || x.type === "blockdev") && x.rdev !== y.rdev) d("rdev", `device ${x.rdev} in the source, ${y.rdev} in the copy`);
    if (!opts.ignoreXattrs && JSON.stringify(x.xattrs) !== JSON.stringify(y.xattrs)) {
      d("xattrs", `xattrs ${JSON.stringify(x.xattrs)} in the source, ${JSON.stringify(y.xattrs)} in the copy`);
    }
  }
  return out;
}

/** Relative paths of a snapshot, root excluded. */
export function pathsOf(s: Snapshot): string[] {
  return [...s.keys()].filter((p) => p !== ".");
}

// ---- building ----------------------------------------------------------------------

export function writeRandom(path: string, size: number): Buffer {
  mkdirSync(dirname(path), { recursive: true });
  const data = randomBytes(size);
  writeFileSync(path, data);
  return data;
}

/** A file of `size` bytes with data only in `pieces` ([offset, length] pairs of random bytes). */
export function writeSparse(path: string, size: number, pieces: [number, number][]): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "w");
  try {
    for (const [off, len] of pieces) writeSync(fd, randomBytes(len), 0, len, off);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

/**
 * A big file of real (non-zero, non-repeating per MiB) data, written fast: one random
 * 4 MiB block reused with the MiB index stamped into each MiB.
 */
export function writeBigFile(path: string, size: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const block = randomBytes(4 * MiB);
  const fd = openSync(path, "w");
  try {
    for (let off = 0; off < size; off += block.length) {
      for (let m = 0; m < block.length; m += MiB) block.writeUInt32LE((off + m) / MiB, m);
      writeSync(fd, block, 0, Math.min(block.length, size - off), off);
    }
  } finally {
    closeSync(fd);
  }
}

export interface VarietyOptions {
  /** Include the 4.5 GiB sparse file (default true). */
  bigSparse?: boolean;
  /** Include the entries only root can make: other owners, setuid (default: running as root). */
  asRoot?: boolean;
}

export interface VarietyTree {
  root: string;
  /** Regular-file paths (each hard-link name counts). */
  files: string[];
  /** Distinct regular-file inodes. */
  fileInodes: number;
  symlinks: string[];
  dirs: string[];
  /** Sum of regular file sizes, each inode once. */
  bytes: number;
  sparse: string[];
  bigSparse: string | null;
  /** Paths owned by OTHER_UID:OTHER_GID (root only). */
  chowned: string[];
  hardLinkGroups: string[][];
}

export const BIG_SPARSE_SIZE = 4.5 * GiB;
export const ODD_NAMES = [
  "with space.txt",
  " leading-space",
  "trailing-space ",
  "new\nline.txt",
  "tab\there",
  "é漢字🙂.txt",
  "a..b",
  "..a",
  "-x",
  "--",
  "back\\slash",
  "*?[glob]",
  "quote'\"",
  "%s%n%d",
  "ends-with-dot.",
];

/** Base times: 2001-02-03T04:05:06.123456789Z (mtime) and 2002-01-29T... (atime). */
const MTIME0 = 981173106_123456789n;
const ATIME0 = 1012345678_987654321n;
/** Edge timestamps given to specific files. */
export const SPECIAL_TIMES: Record<string, [bigint, bigint]> = {
  "times/pre-epoch.txt": [-315619199_876543211n, -1n], // 1960, and 1 ns before the epoch
  "times/y2100.txt": [4102444800_999999999n, 4102444801_000000001n],
  "times/ns-edges.txt": [1_000000001n, 999_999999999n],
};

/**
 * Build the variety tree under `root` (created; must not exist or be empty).
 * Throws when the file system cannot hold what the tests need (ns times, holes).
 */
export function buildVarietyTree(root: string, opts: VarietyOptions = {}): VarietyTree {
  const asRoot = opts.asRoot ?? process.getuid?.() === 0;
  const bigSparse = opts.bigSparse ?? true;
  const p = (rel: string): string => join(root, rel);
  const md = (rel: string): void => void mkdirSync(p(rel), { recursive: true });
  const fileModes: [string, number][] = [];
  const dirModes: [string, number][] = [];
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);

  // Plain files and nesting.
  writeFileSync(p("empty.txt"), "");
  writeRandom(p("small.txt"), 1234);
  writeRandom(p("one-mib.bin"), MiB + 7);
  writeRandom(p("exact-4k.bin"), 4096);
  writeRandom(p("chunks/three-mib.bin"), 3 * MiB + 13);
  writeRandom(p("dir1/dir2/dir3/deep.txt"), 333);
  writeFileSync(p("dir1/dir2/dir3/deep-empty.txt"), "");
  writeRandom(p("dir1/mid.txt"), 77);
  md("empty-dir");
  md("nest/empty-a/empty-b");
  for (let i = 0; i < 30; i++) writeRandom(p(`many/f${String(i).padStart(2, "0")}.dat`), (i * 7919) % (20 * KiB));

  // Sparse files.
  writeSparse(p("sparse/hole-middle.bin"), 8 * MiB + 128 * KiB, [[0, 128 * KiB], [8 * MiB, 128 * KiB]]);
  writeSparse(p("sparse/hole-end.bin"), 4 * MiB, [[0, 64 * KiB]]);
  writeSparse(p("sparse/all-hole.bin"), 16 * MiB, []);
  const sparse = ["sparse/hole-middle.bin", "sparse/hole-end.bin", "sparse/all-hole.bin"];
  let big: string | null = null;
  if (bigSparse) {
    big = "sparse/big-4.5g.bin";
    // Data at the start, just past 4 GiB (catches 32-bit offsets) and at the very end.
    writeSparse(p(big), BIG_SPARSE_SIZE, [[0, 64 * KiB], [4 * GiB + MiB, 64 * KiB], [BIG_SPARSE_SIZE - 64 * KiB, 64 * KiB]]);
    sparse.push(big);
  }

  // Hard links: three names across directories, an empty file, a sparse file.
  writeRandom(p("links/a.txt"), 2048);
  md("other/deep");
  linkSync(p("links/a.txt"), p("links/b.txt"));
  linkSync(p("links/a.txt"), p("other/deep/c.txt"));
  writeFileSync(p("links/empty-a"), "");
  linkSync(p("links/empty-a"), p("links/empty-b"));
  linkSync(p("sparse/hole-middle.bin"), p("links/sparse-link.bin"));
  const hardLinkGroups = [["links/a.txt", "links/b.txt", "other/deep/c.txt"], ["links/empty-a", "links/empty-b"], ["links/sparse-link.bin", "sparse/hole-middle.bin"]];

  // Symlinks: copied as links, never followed.
  md("sym");
  symlinkSync("../small.txt", p("sym/rel"));
  symlinkSync("/etc/hostname", p("sym/abs"));
  symlinkSync(p("small.txt"), p("sym/abs-into-src"));
  symlinkSync("does/not/exist", p("sym/dangling"));
  symlinkSync("../dir1", p("sym/to-dir"));
  symlinkSync("self-loop", p("sym/self-loop"));
  symlinkSync("odd target\nwith newline é", p("sym/odd-target"));
  symlinkSync("/", p("sym/to-root"));

  // Odd names, as files and as a directory.
  md("odd/dir with space/-dir");
  for (const n of ODD_NAMES) writeRandom(p(`odd/${n}`), 10 + n.length);
  writeRandom(p("odd/dir with space/-dir/-x"), 5);
  writeRandom(p("-x"), 3);
  writeRandom(p("..a"), 4);

  // Modes.
  for (const [name, mode] of [["0600.txt", 0o600], ["0755.sh", 0o755], ["0644.txt", 0o644], ["0444.txt", 0o444], ["0000.txt", 0o000], ["0640.txt", 0o640]] as const) {
    writeRandom(p(`modes/${name}`), 100);
    fileModes.push([`modes/${name}`, mode]);
  }
  for (const [name, mode] of [["dir0700", 0o700], ["dir0555", 0o555], ["dir0750", 0o750], ["sticky1777", 0o1777], ["setgid2755", 0o2755]] as const) {
    writeRandom(p(`modes/${name}/inside.txt`), 50);
    dirModes.push([`modes/${name}`, mode]);
  }

  // Timestamps at the edges (set with the others below).
  for (const rel of Object.keys(SPECIAL_TIMES)) writeRandom(p(rel), 20);

  // Owner and setuid: root only. chown before chmod (chown clears setuid).
  const chowned: string[] = [];
  if (asRoot) {
    writeRandom(p("owner/file-1234.txt"), 64);
    writeRandom(p("owner/dir-1234/inside.txt"), 64);
    symlinkSync("file-1234.txt", p("owner/link-1234"));
    writeRandom(p("owner/suid-1234"), 64);
    writeRandom(p("owner/sgid-1234"), 64);
    for (const rel of ["owner/file-1234.txt", "owner/dir-1234", "owner/dir-1234/inside.txt", "owner/link-1234", "owner/suid-1234", "owner/sgid-1234"]) {
      lchownSync(p(rel), OTHER_UID, OTHER_GID);
      chowned.push(rel);
    }
    fileModes.push(["owner/file-1234.txt", 0o640], ["owner/suid-1234", 0o4755], ["owner/sgid-1234", 0o2750]);
    writeRandom(p("modes/suid04755"), 100);
    fileModes.push(["modes/suid04755", 0o4755]);
  }

  for (const [rel, mode] of fileModes) chmodSync(p(rel), mode);
  for (const [rel, mode] of [...dirModes].reverse()) chmodSync(p(rel), mode);

  // Times last, children before parents, each inode once, all distinct, with nanoseconds.
  const all = listAll(root);
  all.sort((x, y) => y.split("/").length - x.split("/").length || (x < y ? -1 : 1));
  all.push(".");
  const seen = new Set<number>();
  const wanted = new Map<string, [bigint, bigint]>();
  let i = 0n;
  for (const rel of all) {
    const abs = rel === "." ? root : p(rel);
    const ino = Number(lstatSync(abs).ino);
    if (seen.has(ino)) continue;
    seen.add(ino);
    i++;
    const [m, a] = SPECIAL_TIMES[rel] ?? [MTIME0 + i * 1_000_000_007n, ATIME0 + i * 1_000_000_011n];
    setTimesNs(abs, a, m);
    wanted.set(rel, [a, m]);
  }
  // What did the kernel keep?
  for (const [rel, [a, m]] of wanted) {
    const st = lstatSync(rel === "." ? root : p(rel), { bigint: true });
    if (st.mtimeNs !== m || st.atimeNs !== a) {
      throw new Error(`the file system did not keep nanosecond times on ${rel}: set ${fmtNs(m)}/${fmtNs(a)}, got ${fmtNs(st.mtimeNs)}/${fmtNs(st.atimeNs)}`);
    }
  }

  // Describe what was built (from the tree itself, not from the lists above).
  const snap = snapshotTree(root, { content: false });
  const files = [...snap].filter(([, e]) => e.type === "file").map(([k]) => k);
  const inodes = new Map<number, number>();
  for (const [, e] of snap) if (e.type === "file") inodes.set(e.ino, e.size);
  for (const rel of sparse) {
    const e = snap.get(rel)!;
    if (e.blocks * 512 > e.size / 2) throw new Error(`${rel} is not sparse on this file system (${e.blocks * 512} bytes allocated of ${e.size})`);
  }
  return {
    root,
    files,
    fileInodes: inodes.size,
    symlinks: [...snap].filter(([, e]) => e.type === "symlink").map(([k]) => k),
    dirs: [...snap].filter(([k, e]) => e.type === "dir" && k !== ".").map(([k]) => k),
    bytes: [...inodes.values()].reduce((s, n) => s + n, 0),
    sparse,
    bigSparse: big,
    chowned,
    hardLinkGroups,
  };
}

/** Every relative path under root (no root), not following symlinks. */
function listAll(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === "" ? root : join(root, rel))) {
      const r = rel === "" ? name : `${rel}/${name}`;
      out.push(r);
      if (lstatSync(join(root, r)).isDirectory()) walk(r);
    }
  };
  walk("");
  return out;
}

/** A simple tree: `files` maps relative path -> content. Parents are created. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  mkdirSync(root, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
}
