/**
 * Where a Worker's entry file is, from source and in the compiled executable.
 *
 * From source: the .ts file next to the module that starts it. In a `bun build --compile`
 * binary (the worker files are extra entry points, scripts/build.ts WORKERS) the bundle
 * is one file and each extra entry point sits in the embedded /$bunfs/root/ tree at its
 * path relative to the entry points' common directory (src/), with a .js extension.
 *
 * Owns: that lookup. Never starts anything.
 */
import { existsSync } from "node:fs";

/** `here`: the entry's source URL (new URL("./x.ts", import.meta.url)); `rel`: its path under src/ without extension ("copy/worker"). */
export function workerEntry(here: URL, rel: string, callerMeta: { url: string; dir: string }): string {
  if (!callerMeta.url.startsWith("file:///$bunfs/") && !callerMeta.dir.startsWith("/$bunfs/")) return here.href;
  const base = rel.slice(rel.lastIndexOf("/") + 1);
  const candidates = [`/$bunfs/root/${rel}.js`, `/$bunfs/root/src/${rel}.js`, `/$bunfs/root/${base}.js`, `${callerMeta.dir}/${base}.js`];
  for (const c of candidates) if (existsSync(c)) return c;
  return here.href;
}
