// bench/lib/cli.ts — owns what the benchmark CLIs share: the file-system options (--fs
// ext4|tmpfs|dir, --dir, --tmpfs-size, --fresh-fs, --force-rootfs), the uring-sync
// command resolution ($URING_SYNC_BIN, else dist/uring-sync, else bun src/cli/main.ts;
// compiled binaries are snapshotted and identified by hash),
// data-set preparation on the chosen file system, and small argument helpers.

import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DATASET_NAMES, ensureDataset, parseDatasetList, type DatasetName, type GenOptions, type Marker } from "./datasets.ts";
import type { CacheMode } from "./run.ts";
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

export function parseNonNegativeInt(flag: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} expects a non-negative integer, got ${JSON.stringify(s)}`);
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
  /** What is run: for a compiled binary, a private snapshot copy (see below). */
  argv: string[];
  /** The command as the user named it (dist/uring-sync, $URING_SYNC_BIN, bun src/cli/main.ts). */
  display: string;
  /** Content identity: "sha256:<12 hex>" of the binary, or of the source tree for bun src/.... */
  identity: string;
  /** Path of the private copy that is run, when the binary was snapshotted. */
  snapshot?: string;
  /** True if the named binary/source changed since it was resolved (e.g. rebuilt by someone mid-run). */
  changed: () => boolean;
}

function sha256File(path: string): string {
  const h = createHash("sha256");
  h.update(readFileSync(path));
  return h.digest("hex");
}

/**
 * Hash of the argv's files (a single binary: its own sha256, comparable with sha256sum);
 * a file under src/ stands for the whole src/ tree, since Bun runs the sources.
 */
function contentIdentity(argv: readonly string[]): string {
  const parts: string[] = [];
  const srcRoot = join(REPO_ROOT, "src");
  for (const a of argv) {
    if (a === process.execPath || !existsSync(a) || !statSync(a).isFile()) continue;
    if (resolve(a).startsWith(`${srcRoot}/`)) {
      const h = createHash("sha256");
      const files = readdirSync(srcRoot, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name))
        .sort();
      for (const f of files) h.update(f).update(readFileSync(f));
      parts.push(`src:${h.digest("hex")}`);
    } else {
      parts.push(sha256File(a));
    }
  }
  const one = parts.length === 1 && !parts[0].startsWith("src:") ? parts[0] : createHash("sha256").update(parts.join("\n")).digest("hex");
  return `sha256:${one.slice(0, 12)}`;
}

let resolved: UringCommand | undefined;

/**
 * The uring-sync command: $URING_SYNC_BIN (split on spaces), else dist/uring-sync, else
 * bun src/cli/main.ts. Resolved once per process. A compiled binary is copied to a private
 * temp file first (unless snapshot is false), so a rebuild of dist/ by someone else during
 * a long run cannot mix two versions in one table.
 */
export function uringSyncCommand(opts: { snapshot?: boolean } = {}): UringCommand {
  if (resolved !== undefined) return resolved;
  const env = process.env.URING_SYNC_BIN;
  let argv: string[];
  let display: string;
  const dist = join(REPO_ROOT, "dist", "uring-sync");
  if (env !== undefined && env.trim() !== "") {
    argv = env.trim().split(/\s+/);
    display = env.trim();
  } else if (existsSync(dist)) {
    argv = [dist];
    display = "dist/uring-sync";
  } else {
    argv = [process.execPath, join(REPO_ROOT, "src", "cli", "main.ts")];
    display = "bun src/cli/main.ts";
  }
  const named = [...argv];
  const identity = contentIdentity(named);
  const bin = argv[0];
  const isCompiled =
    bin !== process.execPath && !/(^|\/)bun(\.exe)?$/.test(bin) && existsSync(bin) && statSync(bin).isFile();
  if ((opts.snapshot ?? true) && isCompiled) {
    const dir = mkdtempSync(join(tmpdir(), "uring-sync-bench-bin-"));
    const copy = join(dir, "uring-sync");
    copyFileSync(bin, copy);
    chmodSync(copy, 0o755);
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    argv = [copy, ...argv.slice(1)];
  }
  const snapshot = argv[0] !== named[0] ? argv[0] : undefined;
  resolved = { argv, display, identity, snapshot, changed: () => contentIdentity(named) !== identity };
  return resolved;
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

/** Options every benchmark script takes (besides FS_OPTIONS), for node:util parseArgs. */
export const RUN_OPTIONS = {
  sets: { type: "string", default: "small10k,medium10k,large8,small100k" },
  mode: { type: "string", default: "warm" },
  runs: { type: "string", default: "5" },
  warmup: { type: "string", default: "1" },
  tools: { type: "string" },
  results: { type: "string", default: join(REPO_ROOT, "bench", "RESULTS.md") },
  "no-results": { type: "boolean", default: false },
  timeout: { type: "string", default: "1800" },
  "trim-every": { type: "string", default: "1" },
  "no-snapshot": { type: "boolean", default: false },
  help: { type: "boolean", short: "h" },
} as const;

export interface RunSettings {
  sets: DatasetName[];
  modes: CacheMode[];
  runs: number;
  warmup: number;
  timeoutMs: number;
  trimEvery: number;
}

/** Validates the RUN_OPTIONS values shared by copy.ts and net.ts. */
export function runSettings(v: { sets: string; mode: string; runs: string; warmup: string; timeout: string; "trim-every": string }): RunSettings {
  const sets = v.sets === "all" ? [...DATASET_NAMES] : parseDatasetList(v.sets);
  const modes: CacheMode[] = v.mode === "both" ? ["warm", "cold"] : v.mode === "warm" || v.mode === "cold" ? [v.mode] : [];
  if (modes.length === 0) throw new Error(`--mode must be warm, cold or both`);
  return {
    sets,
    modes,
    runs: parsePositiveInt("--runs", v.runs),
    warmup: parseNonNegativeInt("--warmup", v.warmup),
    timeoutMs: parsePositiveInt("--timeout", v.timeout) * 1000,
    trimEvery: Number.parseInt(v["trim-every"], 10) || 0,
  };
}

/** The note an entry carries when the measured uring-sync may have changed mid-run, or undefined. */
export function rebuildNote(us: UringCommand): string | undefined {
  if (!us.changed()) return undefined;
  return us.snapshot
    ? `${us.display} was rebuilt during this run; the snapshot taken at the start (${us.identity}) was measured throughout`
    : `the uring-sync sources changed during this run: its rows may mix versions; re-run`;
}
