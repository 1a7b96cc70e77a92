// bench/lib/cli.ts — owns what the benchmark CLIs share: the file-system options (--fs
// ext4|tmpfs|dir, --dir, --tmpfs-size, --fresh-fs, --force-rootfs), the uring-sync
// command resolution ($URING_SYNC_BIN, else dist/uring-sync, else bun src/cli/main.ts),
// data-set preparation on the chosen file system, and small argument helpers.

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensureDataset, type DatasetName, type GenOptions, type Marker } from "./datasets.ts";
import { ensureExt4, ensureTmpfs, useDir, type BenchFs } from "./mount.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../..");

/** parseArgs option descriptors shared by gen-data.ts, copy.ts and net.ts. */
export const FS_OPTIONS = {
  fs: { type: "string", default: "ext4" },
  dir: { type: "string" },
  "tmpfs-size": { type: "string", default: "12G" },
  "image-size": { type: "string", default: "30G" },
  "fresh-fs": { type: "boolean", default: false },
  "force-rootfs": { type: "boolean", default: false },
  seed: { type: "string" },
  scale: { type: "string" },
  regen: { type: "boolean", default: false },
} as const;

export interface FsArgs {
  fs?: string;
  dir?: string;
  "tmpfs-size"?: string;
  "image-size"?: string;
  "fresh-fs"?: boolean;
  "force-rootfs"?: boolean;
}

export const FS_HELP = `File system (default: --fs ext4):
  --fs ext4            journaled ext4 image loop-mounted (created if missing):
                       image $URING_SYNC_BENCH_IMG or /work/.bench-img/ext4.img,
                       mounted at /work/.bench-img/ext4 (or $URING_SYNC_BENCH_MNT)
  --image-size SIZE    size of a newly created sparse image (default 30G)
  --fresh-fs           unmount, delete and recreate the ext4 image first
  --fs tmpfs           tmpfs at /work/.bench-img/tmpfs, --tmpfs-size SIZE (default 12G)
  --fs dir --dir PATH  an existing directory (refused on the root fs unless --force-rootfs)
Data sets: --seed N (default fixed), --scale X (multiplies counts; results are then not
comparable with full-size sets), --regen (regenerate even if a complete marker exists)`;

export function selectFs(a: FsArgs): BenchFs {
  const kind = a.fs ?? "ext4";
  if (kind === "ext4") return ensureExt4({ size: a["image-size"], fresh: a["fresh-fs"] ?? false });
  if (kind === "tmpfs") return ensureTmpfs(a["tmpfs-size"] ?? "12G");
  if (kind === "dir") {
    if (a.dir === undefined) throw new Error("--fs dir needs --dir PATH");
    return useDir(a.dir, a["force-rootfs"] ?? false);
  }
  throw new Error(`--fs must be ext4, tmpfs or dir, not ${JSON.stringify(kind)}`);
}

export function parseGen(a: { seed?: string; scale?: string }): GenOptions {
  const g: GenOptions = {};
  if (a.seed !== undefined) g.seed = parseNumber("--seed", a.seed);
  if (a.scale !== undefined) g.scale = parseNumber("--scale", a.scale);
  return g;
}

export function parseNumber(flag: string, s: string): number {
  const n = Number(s);
  if (!Number.isFinite(n)) throw new Error(`${flag} expects a number, got ${JSON.stringify(s)}`);
  return n;
}

export function parsePositiveInt(flag: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} expects a positive integer, got ${JSON.stringify(s)}`);
  return n;
}

/** Data sets live in <fs>/data, destinations in <fs>/dst. */
export function dataRoot(fs: BenchFs): string {
  return join(fs.dir, "data");
}
export function dstRoot(fs: BenchFs, name: string): string {
  return join(fs.dir, "dst", name);
}

export function prepareDatasets(
  fs: BenchFs,
  sets: readonly DatasetName[],
  gen: GenOptions & { regen?: boolean },
  log: (m: string) => void,
): Map<DatasetName, { dir: string; marker: Marker }> {
  const out = new Map<DatasetName, { dir: string; marker: Marker }>();
  for (const s of sets) {
    const r = ensureDataset(dataRoot(fs), s, gen, log);
    if (r.reused) log(`reusing ${s} at ${r.dir} (generated ${r.marker.generatedAt})`);
    out.set(s, r);
  }
  return out;
}

export interface UringCommand {
  argv: string[];
  display: string;
}

/** The uring-sync command: $URING_SYNC_BIN (split on spaces), dist/uring-sync, or bun src/cli/main.ts. */
export function uringSyncCommand(): UringCommand {
  const env = process.env.URING_SYNC_BIN;
  if (env !== undefined && env.trim() !== "") {
    const argv = env.trim().split(/\s+/);
    return { argv, display: env.trim() };
  }
  const dist = join(REPO_ROOT, "dist", "uring-sync");
  if (existsSync(dist)) return { argv: [dist], display: "dist/uring-sync" };
  return { argv: [process.execPath, join(REPO_ROOT, "src", "cli", "main.ts")], display: "bun src/cli/main.ts" };
}

/** Splits "-j 2" style flag strings into argv words. */
export function splitFlags(s: string): string[] {
  return s.trim().split(/\s+/).filter((w) => w.length > 0);
}

export function makeLogger(): (m: string) => void {
  const t0 = performance.now();
  return (m: string) => {
    const t = ((performance.now() - t0) / 1000).toFixed(1).padStart(7);
    process.stderr.write(`[${t}s] ${m}\n`);
  };
}
