// bench/lib/changes.ts — owns the "1% of files changed" step of the network re-run
// benchmark: a deterministic change set (the same files for every tool in a round, another
// set each round), applying it to a synchronised destination (content modified in place,
// size kept, mtime moved an hour away from the source's), and checking afterwards that a
// tool restored every changed file (content and mtime second). Changing the destination
// rather than the shared source keeps the data sets intact for other benchmarks; to a sync
// tool the difference is the same (those files differ, the rest match).

import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync, utimesSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "./datasets.ts";

/** How many files a fraction of n selects: round(n * fraction), at least 1 (if n > 0). */
export function changeCount(n: number, fraction: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  return n === 0 ? 0 : Math.max(1, Math.round(n * fraction));
}

/**
 * The files to change in `round`: changeCount(files.length, fraction) distinct entries of
 * `files`, sorted. Depends only on the set of names (not their order), seed and round.
 */
export function changeSet(files: readonly string[], fraction: number, seed: number, round: number): string[] {
  const pool = [...files].sort();
  const k = changeCount(pool.length, fraction);
  const rng = new Rng((seed ^ Math.imul(round + 1, 0x9e3779b1)) | 0);
  // Partial Fisher-Yates: the first k slots end up a uniform sample.
  for (let i = 0; i < k; i++) {
    const j = rng.int(i, pool.length - 1);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool.slice(0, k).sort();
}

/** Seconds the changed files' mtime is moved from the source's. */
export const MTIME_SHIFT_S = 3600;

/**
 * Modifies each file of `rels` under `dst` in place: its first (up to) 64 bytes inverted
 * (an empty file gets one byte), mtime = the source file's mtime + MTIME_SHIFT_S.
 */
export function applyChanges(src: string, dst: string, rels: readonly string[]): void {
  const buf = Buffer.alloc(64);
  for (const rel of rels) {
    const path = join(dst, rel);
    const fd = openSync(path, "r+");
    try {
      const n = readSync(fd, buf, 0, Math.min(buf.length, fstatSync(fd).size), 0);
      if (n === 0) writeSync(fd, Buffer.from([0x5a]), 0, 1, 0);
      else {
        for (let i = 0; i < n; i++) buf[i] ^= 0xff;
        writeSync(fd, buf, 0, n, 0);
      }
    } finally {
      closeSync(fd);
    }
    const t = statSync(join(src, rel)).mtimeMs / 1000 + MTIME_SHIFT_S;
    utimesSync(path, t, t);
  }
}

/** undefined when every file of `rels` in dst equals the source again (bytes, mtime second); else why not. */
export function checkRestored(src: string, dst: string, rels: readonly string[]): string | undefined {
  for (const rel of rels) {
    let d: Buffer;
    try {
      d = readFileSync(join(dst, rel));
    } catch {
      return `changed file ${rel} is missing after the run`;
    }
    if (!d.equals(readFileSync(join(src, rel)))) return `changed file ${rel} was not restored (content differs)`;
    const ms = Math.floor(statSync(join(src, rel)).mtimeMs / 1000);
    const md = Math.floor(statSync(join(dst, rel)).mtimeMs / 1000);
    if (ms !== md) return `changed file ${rel} has mtime ${md}, the source ${ms}`;
  }
  return undefined;
}
