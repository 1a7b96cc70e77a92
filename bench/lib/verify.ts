// bench/lib/verify.ts — owns the cheap completeness check of a benchmark copy: walking a
// tree for file/directory counts and total bytes, comparing the destination with the
// source, and byte-comparing a small deterministic sample of files, so a broken tool
// cannot "win" a benchmark.

import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface TreeStats {
  files: number;
  dirs: number;
  bytes: number;
  /** Symlinks, sockets, devices... (the data sets have none). */
  other: number;
}

/** Walks dir (not following symlinks); the root itself is not counted as a directory. */
export function treeStats(dir: string, collectFiles?: string[]): TreeStats {
  const st: TreeStats = { files: 0, dirs: 0, bytes: 0, other: 0 };
  const stack: string[] = [""];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        st.dirs++;
        stack.push(r);
      } else if (e.isFile()) {
        st.files++;
        st.bytes += lstatSync(join(dir, r)).size;
        collectFiles?.push(r);
      } else {
        st.other++;
      }
    }
  }
  return st;
}

export function formatStats(s: TreeStats): string {
  return `${s.files} files, ${s.dirs} dirs, ${s.bytes} bytes${s.other > 0 ? `, ${s.other} other` : ""}`;
}

export function sameStats(a: TreeStats, b: TreeStats): boolean {
  return a.files === b.files && a.dirs === b.dirs && a.bytes === b.bytes && a.other === b.other;
}

/**
 * Checks that dst mirrors src: same counts and bytes, and `samples` files spread over the
 * tree are byte-identical. Returns undefined when complete, else a one-line reason.
 */
export function verifyCopy(src: string, dst: string, expected: TreeStats, samples = 24): string | undefined {
  let got: TreeStats;
  const dstFiles: string[] = [];
  try {
    got = treeStats(dst, dstFiles);
  } catch (e) {
    return `destination unreadable: ${(e as Error).message}`;
  }
  if (!sameStats(got, expected)) return `incomplete copy: ${formatStats(got)}; expected ${formatStats(expected)}`;
  dstFiles.sort();
  const step = Math.max(1, Math.floor(dstFiles.length / samples));
  for (let i = 0; i < dstFiles.length; i += step) {
    const rel = dstFiles[i];
    let a: Buffer;
    try {
      a = readFileSync(join(src, rel));
    } catch {
      return `file ${rel} exists in the copy but not in the source`;
    }
    const b = readFileSync(join(dst, rel));
    if (!a.equals(b)) return `content differs: ${rel}`;
  }
  const last = dstFiles[dstFiles.length - 1];
  if (last !== undefined && !readFileSync(join(src, last)).equals(readFileSync(join(dst, last)))) {
    return `content differs: ${last}`;
  }
  return undefined;
}
