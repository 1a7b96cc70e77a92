// bench/lib/mount.ts — owns the file system the benchmarks run on: a journaled ext4 image
// loop-mounted under /work/.bench-img (or $URING_SYNC_BENCH_IMG), or a tmpfs of a given
// size, created and mounted idempotently; unmounting; fstrim so the image does not grow;
// and the guard that refuses to benchmark on the root file system (no journal there, see
// FIELD_NOTES section 3) unless forced.

import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { mustRunSync, tryRunSync } from "./run.ts";

export type FsKind = "ext4" | "tmpfs" | "dir";

export interface BenchFs {
  kind: FsKind;
  /** Mount point (or chosen directory) the benchmark data and destinations live under. */
  dir: string;
  /** Human-readable description for the results, e.g. "ext4 (journaled) on /dev/loop0 <- /work/.bench-img/ext4.img". */
  description: string;
}

export interface MountEntry {
  mountPoint: string;
  fstype: string;
  source: string;
  /** Per-mount options (rw,relatime...). */
  options: string;
  /** File-system (superblock) options, e.g. tmpfs size. */
  superOptions: string;
}

const DEFAULT_ROOT = "/work/.bench-img";

/** Where images and mount points live; the image path comes from $URING_SYNC_BENCH_IMG if set. */
export function benchPaths(): { image: string; ext4Dir: string; tmpfsDir: string } {
  const envImg = process.env.URING_SYNC_BENCH_IMG;
  const image = envImg !== undefined && envImg !== "" ? resolve(envImg) : join(DEFAULT_ROOT, "ext4.img");
  const root = envImg !== undefined && envImg !== "" ? dirname(image) : DEFAULT_ROOT;
  const ext4Dir = process.env.URING_SYNC_BENCH_MNT ?? (envImg ? `${image}.mnt` : join(root, "ext4"));
  const tmpfsDir = process.env.URING_SYNC_BENCH_TMPFS ?? join(root, "tmpfs");
  return { image, ext4Dir: resolve(ext4Dir), tmpfsDir: resolve(tmpfsDir) };
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo. */
export function mounts(): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (line.length === 0) continue;
    const [pre, post] = line.split(" - ");
    if (post === undefined) continue;
    const f = pre.split(" ");
    const g = post.split(" ");
    out.push({
      mountPoint: unescapeMount(f[4]),
      options: f[5],
      fstype: g[0],
      source: unescapeMount(g[1]),
      superOptions: g[2] ?? "",
    });
  }
  return out;
}

/** The mount entry whose mount point is exactly dir (last one wins, as the kernel shows it). */
export function mountAt(dir: string): MountEntry | undefined {
  const d = resolve(dir);
  const hits = mounts().filter((m) => m.mountPoint === d);
  return hits[hits.length - 1];
}

/** The mount that contains path (longest mount-point prefix). */
export function mountOf(path: string): MountEntry | undefined {
  const p = resolve(path);
  let best: MountEntry | undefined;
  for (const m of mounts()) {
    const mp = m.mountPoint;
    const inside = mp === "/" || p === mp || p.startsWith(`${mp}/`);
    if (inside && (best === undefined || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** True if path (or, if it does not exist yet, its nearest existing ancestor) is on the device of "/". */
export function onRootFs(path: string): boolean {
  let p = resolve(path);
  while (!existsSync(p) && p !== "/") p = dirname(p);
  return statSync(p).dev === statSync("/").dev;
}

/** Throws unless path is on a file system other than the root one (or force is set). */
export function assertNotRootFs(path: string, force: boolean): void {
  if (!onRootFs(path)) return;
  const msg =
    `${path} is on the root file system, which has no journal and slows file creation down ` +
    `many times after large deletions (FIELD_NOTES section 3); use --fs ext4 or --fs tmpfs`;
  if (!force) throw new Error(`${msg}, or pass --force-rootfs to benchmark there anyway`);
  console.error(`warning: ${msg}; continuing because --force-rootfs was given`);
}

function loopDeviceOf(image: string): string | undefined {
  const out = tryRunSync(["losetup", "-j", image]);
  if (out === undefined) return undefined;
  const first = out.split("\n").find((l) => l.includes(":"));
  return first?.split(":")[0];
}

export interface Ext4Options {
  /** Size of the sparse image when it has to be created; default 30G. */
  size?: string;
  /** Unmount, delete and recreate the image (a fresh file system). */
  fresh?: boolean;
}

/** Creates (if missing) and mounts the journaled ext4 image; reuses an existing mount. */
export function ensureExt4(opts: Ext4Options = {}): BenchFs {
  const { image, ext4Dir } = benchPaths();
  if (opts.fresh) unmountExt4(true);
  mkdirSync(ext4Dir, { recursive: true });
  let m = mountAt(ext4Dir);
  if (m === undefined) {
    const loop = loopDeviceOf(image);
    const elsewhere = loop !== undefined ? mounts().find((e) => e.source === loop) : undefined;
    if (elsewhere !== undefined) {
      throw new Error(`${image} is already mounted at ${elsewhere.mountPoint}; set URING_SYNC_BENCH_MNT=${elsewhere.mountPoint} or unmount it`);
    }
    if (!existsSync(image)) {
      mkdirSync(dirname(image), { recursive: true });
      if (!onRootFs(dirname(image))) {
        // Fine either way; the image only needs space. Noted for the record.
        console.error(`note: image ${image} is not on the root file system`);
      }
      mustRunSync(["truncate", "-s", opts.size ?? "30G", image]);
      // No lazy inode-table/journal init: otherwise ext4lazyinit writes in the background for a
      // while after the first mount and disturbs the first benchmarks (cheap on a sparse file).
      mustRunSync(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image]);
      console.error(`created ext4 image ${image} (${opts.size ?? "30G"}, sparse)`);
    }
    mustRunSync(["mount", "-o", "loop", image, ext4Dir], `mount -o loop ${image} ${ext4Dir}`);
    console.error(`mounted ${image} at ${ext4Dir}`);
    m = mountAt(ext4Dir);
  }
  if (m === undefined || m.fstype !== "ext4") {
    throw new Error(`${ext4Dir} is mounted but is ${m?.fstype ?? "nothing"}, not ext4`);
  }
  const features = tryRunSync(["dumpe2fs", "-h", m.source]) ?? "";
  const journaled = /^Filesystem features:.*\bhas_journal\b/m.test(features);
  if (!journaled) throw new Error(`${m.source} (mounted at ${ext4Dir}) has no journal; recreate it with --fresh-fs`);
  if (onRootFs(ext4Dir)) throw new Error(`internal: ${ext4Dir} still on the root file system after mount`);
  return {
    kind: "ext4",
    dir: ext4Dir,
    description: `ext4 (journaled, ${m.options}) on ${m.source}${m.source.startsWith("/dev/loop") ? ` <- ${image}` : ""}`,
  };
}

/** Mounts a tmpfs of the given size (e.g. "12G"); reuses an existing tmpfs there. */
export function ensureTmpfs(size: string): BenchFs {
  const { tmpfsDir } = benchPaths();
  mkdirSync(tmpfsDir, { recursive: true });
  let m = mountAt(tmpfsDir);
  if (m === undefined) {
    mustRunSync(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0755`, "uring-sync-bench", tmpfsDir]);
    console.error(`mounted tmpfs (size=${size}) at ${tmpfsDir}`);
    m = mountAt(tmpfsDir);
  } else if (m.fstype === "tmpfs") {
    mustRunSync(["mount", "-o", `remount,size=${size}`, tmpfsDir]);
    m = mountAt(tmpfsDir);
  }
  if (m === undefined || m.fstype !== "tmpfs") {
    throw new Error(`${tmpfsDir} is mounted but is ${m?.fstype ?? "nothing"}, not tmpfs`);
  }
  return { kind: "tmpfs", dir: tmpfsDir, description: `tmpfs (${m.options},${m.superOptions})` };
}

/** Uses an existing directory; refuses the root file system unless forced. */
export function useDir(dir: string, force: boolean): BenchFs {
  const d = resolve(dir);
  assertNotRootFs(d, force);
  mkdirSync(d, { recursive: true });
  const m = mountOf(d);
  return { kind: "dir", dir: d, description: `${m?.fstype ?? "?"} on ${m?.source ?? "?"} (${d})` };
}

/** fstrim on an ext4 mount so freed blocks are punched out of the sparse image. */
export function trim(fs: BenchFs): void {
  if (fs.kind !== "ext4") return;
  tryRunSync(["fstrim", fs.dir]);
}

export function unmountExt4(removeImage: boolean): void {
  const { image, ext4Dir } = benchPaths();
  if (mountAt(ext4Dir) !== undefined) {
    tryRunSync(["fstrim", ext4Dir]);
    mustRunSync(["umount", ext4Dir]);
    console.error(`unmounted ${ext4Dir}`);
  }
  const loop = loopDeviceOf(image);
  if (loop !== undefined) tryRunSync(["losetup", "-d", loop]);
  if (removeImage && existsSync(image)) {
    rmSync(image);
    console.error(`removed ${image}`);
  }
}

export function unmountTmpfs(): void {
  const { tmpfsDir } = benchPaths();
  if (mountAt(tmpfsDir) !== undefined) {
    mustRunSync(["umount", tmpfsDir]);
    console.error(`unmounted ${tmpfsDir}`);
  }
}

/** Allocated size of a (sparse) file in bytes, for reporting image growth. */
export function allocatedBytes(path: string): number {
  const st = statSync(path);
  return st.blocks * 512;
}
