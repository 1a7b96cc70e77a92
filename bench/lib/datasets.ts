// bench/lib/datasets.ts — owns the benchmark data sets: their definitions (small10k,
// small100k, medium10k, large8, flat100k), the deterministic seeded plan of directories,
// file names and sizes, the cheap content generator (slices of one seeded 1 MiB random
// pool at pseudo-random offsets), writing a set to disk, and the completion marker that
// lets a generated set be reused across runs.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { mustRunSync, removeTree } from "./run.ts";

export const DATASET_NAMES = ["small10k", "small100k", "medium10k", "large8", "flat100k"] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface DatasetSpec {
  name: DatasetName;
  description: string;
  files: number;
  /** Directory count is drawn from [dirsMin, dirsMax]; 0/0 means every file sits in the root. */
  dirsMin: number;
  dirsMax: number;
  /** File sizes are drawn uniformly from [sizeMin, sizeMax] bytes. */
  sizeMin: number;
  sizeMax: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const DATASETS: Readonly<Record<DatasetName, DatasetSpec>> = {
  small10k: {
    name: "small10k",
    description: "10,000 files of 3-5 KiB over 100-1000 directories",
    files: 10_000,
    dirsMin: 100,
    dirsMax: 1000,
    sizeMin: 3 * KiB,
    sizeMax: 5 * KiB,
  },
  small100k: {
    name: "small100k",
    description: "100,000 files of 3-5 KiB over 100-1000 directories",
    files: 100_000,
    dirsMin: 100,
    dirsMax: 1000,
    sizeMin: 3 * KiB,
    sizeMax: 5 * KiB,
  },
  medium10k: {
    name: "medium10k",
    description: "10,000 files of 80-120 KiB over 100-1000 directories",
    files: 10_000,
    dirsMin: 100,
    dirsMax: 1000,
    sizeMin: 80 * KiB,
    sizeMax: 120 * KiB,
  },
  large8: {
    name: "large8",
    description: "8 files of 256 MiB (+-1 MiB) in one directory",
    files: 8,
    dirsMin: 0,
    dirsMax: 0,
    sizeMin: 255 * MiB,
    sizeMax: 257 * MiB,
  },
  flat100k: {
    name: "flat100k",
    description: "100,000 files of 3-5 KiB in one flat directory",
    files: 100_000,
    dirsMin: 0,
    dirsMax: 0,
    sizeMin: 3 * KiB,
    sizeMax: 5 * KiB,
  },
};

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

export function parseDatasetList(s: string): DatasetName[] {
  const names = s.split(",").map((x) => x.trim()).filter((x) => x.length > 0);
  for (const n of names) {
    if (!isDatasetName(n)) throw new Error(`unknown data set ${JSON.stringify(n)}; known: ${DATASET_NAMES.join(", ")}`);
  }
  return names as DatasetName[];
}

/** Bump when the plan or the content generator changes, so old markers are not reused. */
export const GENERATOR_VERSION = 1;
export const DEFAULT_SEED = 0x75726e67; // "urng"
const POOL_SIZE = 1 * MiB;
const CHUNK = 1 * MiB;

/** splitmix32: tiny, fast, seedable PRNG (32-bit outputs). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed | 0;
  }
  next(): number {
    this.s = (this.s + 0x9e3779b9) | 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** Uniform integer in [lo, hi] (inclusive; negligible modulo bias for our ranges). */
  int(lo: number, hi: number): number {
    if (hi <= lo) return lo;
    const span = hi - lo + 1;
    if (span <= 0x1_0000_0000) return lo + (this.next() % span);
    return lo + Math.floor((this.next() * 0x1_0000_0000 + this.next()) % span);
  }
}

function mixSeed(a: number, b: number): number {
  const r = new Rng((a ^ Math.imul(b, 0x27d4eb2d)) | 0);
  r.next();
  return r.next() | 0;
}

function nameSeed(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h | 0;
}

export interface GenOptions {
  seed?: number;
  /** Multiplies file and directory counts (tests use e.g. 0.01). */
  scale?: number;
  /** Multiplies file sizes (tests use e.g. 1/4096 for large8). */
  sizeScale?: number;
}

export interface PlannedFile {
  /** Path relative to the data set root. */
  path: string;
  size: number;
  /** Seed of the file's content stream. */
  contentSeed: number;
}

export interface Plan {
  name: DatasetName;
  seed: number;
  scale: number;
  sizeScale: number;
  /** Relative directory paths, parents before children. */
  dirs: string[];
  files: PlannedFile[];
  totalBytes: number;
}

function pad(n: number, width: number): string {
  return n.toString().padStart(width, "0");
}

/** The deterministic plan: same (name, seed, scale, sizeScale) gives the same plan. */
export function planDataset(name: DatasetName, opts: GenOptions = {}): Plan {
  const spec = DATASETS[name];
  const seed = opts.seed ?? DEFAULT_SEED;
  const scale = opts.scale ?? 1;
  const sizeScale = opts.sizeScale ?? 1;
  if (!(scale > 0) || !(sizeScale > 0)) throw new RangeError("scale and sizeScale must be positive");
  const rng = new Rng(mixSeed(seed, nameSeed(name)));

  const nFiles = Math.max(1, Math.round(spec.files * scale));
  const scaledDirs = (d: number): number => (d === 0 ? 0 : Math.max(1, Math.round(d * scale)));
  const nDirs = rng.int(scaledDirs(spec.dirsMin), scaledDirs(spec.dirsMax));
  const sizeMin = Math.max(1, Math.round(spec.sizeMin * sizeScale));
  const sizeMax = Math.max(sizeMin, Math.round(spec.sizeMax * sizeScale));

  // Directory tree: the first eighth hangs off the root, the rest under a random earlier
  // directory (depth at most 4), so there is some nesting as in real trees.
  const dirs: string[] = [];
  const depth: number[] = [];
  const width = Math.max(3, String(Math.max(0, nDirs - 1)).length);
  const topLevel = Math.max(1, Math.ceil(nDirs / 8));
  for (let i = 0; i < nDirs; i++) {
    const own = `d${pad(i, width)}`;
    let parent = -1;
    if (i >= topLevel) {
      parent = rng.int(0, i - 1);
      if (depth[parent] >= 4) parent = -1;
    }
    dirs.push(parent < 0 ? own : `${dirs[parent]}/${own}`);
    depth.push(parent < 0 ? 1 : depth[parent] + 1);
  }

  // Assign files to directories, then name them in directory order so writing has locality.
  const owner = new Int32Array(nFiles);
  for (let j = 0; j < nFiles; j++) owner[j] = nDirs === 0 ? -1 : rng.int(0, nDirs - 1);
  const byDir: number[][] = Array.from({ length: nDirs + 1 }, () => []);
  for (let j = 0; j < nFiles; j++) byDir[owner[j] + 1].push(j);

  const fileWidth = Math.max(5, String(nFiles - 1).length);
  const files: PlannedFile[] = [];
  let totalBytes = 0;
  for (let d = 0; d <= nDirs; d++) {
    const prefix = d === 0 ? "" : `${dirs[d - 1]}/`;
    for (const j of byDir[d]) {
      const size = rng.int(sizeMin, sizeMax);
      files.push({ path: `${prefix}f${pad(j, fileWidth)}.dat`, size, contentSeed: rng.next() | 0 });
      totalBytes += size;
    }
  }
  return { name, seed, scale, sizeScale, dirs, files, totalBytes };
}

/** The seeded 1 MiB random pool, stored twice back to back so any slice of <= 1 MiB is contiguous. */
export function makePool(seed: number): Uint8Array {
  const rng = new Rng(mixSeed(seed, 0x706f6f6c));
  const pool = new Uint8Array(2 * POOL_SIZE);
  const words = new Uint32Array(pool.buffer, 0, POOL_SIZE / 4);
  for (let i = 0; i < words.length; i++) words[i] = rng.next();
  pool.copyWithin(POOL_SIZE, 0, POOL_SIZE);
  return pool;
}

/** The content of one file as a list of pool slices (views, no copies). */
export function fileChunks(pool: Uint8Array, f: PlannedFile): Uint8Array[] {
  const rng = new Rng(f.contentSeed);
  const out: Uint8Array[] = [];
  for (let left = f.size; left > 0; ) {
    const n = Math.min(left, CHUNK);
    const off = rng.int(0, POOL_SIZE - 1);
    out.push(pool.subarray(off, off + n));
    left -= n;
  }
  return out;
}

/** Writes a planned data set into dir (which must be empty or absent). */
export function writeDataset(plan: Plan, dir: string): void {
  const pool = makePool(plan.seed);
  mkdirSync(dir, { recursive: true });
  for (const d of plan.dirs) mkdirSync(join(dir, d));
  for (const f of plan.files) {
    const chunks = fileChunks(pool, f);
    const path = join(dir, f.path);
    if (chunks.length === 1) {
      writeFileSync(path, chunks[0]);
    } else {
      const fd = openSync(path, "w");
      try {
        for (const c of chunks) {
          let done = 0;
          while (done < c.length) done += writeSync(fd, c, done, c.length - done);
        }
      } finally {
        closeSync(fd);
      }
    }
  }
}

export interface Marker {
  version: number;
  name: DatasetName;
  seed: number;
  scale: number;
  sizeScale: number;
  files: number;
  dirs: number;
  bytes: number;
  generatedAt: string;
  generateSeconds: number;
}

export function datasetDir(dataRoot: string, name: DatasetName): string {
  return join(dataRoot, name);
}

function markerPath(dataRoot: string, name: DatasetName): string {
  // Outside the set's own tree so it never counts as part of the data.
  return join(dataRoot, `${name}.complete.json`);
}

export function readMarker(dataRoot: string, name: DatasetName): Marker | undefined {
  const p = markerPath(dataRoot, name);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as Marker;
  } catch {
    return undefined;
  }
}

export interface EnsureResult {
  dir: string;
  marker: Marker;
  reused: boolean;
}

/**
 * Returns the data set under dataRoot, generating it unless a marker says an identical
 * set (same generator version, seed, scale) is complete. Flushes it to disk with sync.
 */
export function ensureDataset(
  dataRoot: string,
  name: DatasetName,
  opts: GenOptions & { regen?: boolean } = {},
  log: (msg: string) => void = () => {},
): EnsureResult {
  const dir = datasetDir(dataRoot, name);
  const seed = opts.seed ?? DEFAULT_SEED;
  const scale = opts.scale ?? 1;
  const sizeScale = opts.sizeScale ?? 1;
  const old = readMarker(dataRoot, name);
  if (
    !opts.regen &&
    old !== undefined &&
    existsSync(dir) &&
    old.version === GENERATOR_VERSION &&
    old.seed === seed &&
    old.scale === scale &&
    old.sizeScale === sizeScale
  ) {
    return { dir, marker: old, reused: true };
  }
  mkdirSync(dataRoot, { recursive: true });
  const mp = markerPath(dataRoot, name);
  if (existsSync(mp)) removeTree(mp);
  if (existsSync(dir)) removeTree(dir);
  const t0 = performance.now();
  const plan = planDataset(name, { seed, scale, sizeScale });
  log(`generating ${name}: ${plan.files.length} files, ${plan.dirs.length} dirs, ${(plan.totalBytes / MiB).toFixed(1)} MiB -> ${dir}`);
  writeDataset(plan, dir);
  mustRunSync(["sync"]);
  const generateSeconds = (performance.now() - t0) / 1000;
  const marker: Marker = {
    version: GENERATOR_VERSION,
    name,
    seed,
    scale,
    sizeScale,
    files: plan.files.length,
    dirs: plan.dirs.length,
    bytes: plan.totalBytes,
    generatedAt: new Date().toISOString(),
    generateSeconds,
  };
  writeFileSync(mp, `${JSON.stringify(marker, null, 2)}\n`);
  log(`generated ${name} in ${generateSeconds.toFixed(1)} s`);
  return { dir, marker, reused: false };
}
