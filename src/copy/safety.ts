/**
 * Where a copy goes, and whether it may go there at all.
 *
 * Owns: resolving SRC and DST the way the kernel will (symlinks, "..", trailing slashes),
 * the "contents of SRC land in DST" rule (so a second run never nests), the single-file
 * cases (DST a file path, or an existing directory that receives SRC's basename), and the
 * refusals: DST inside SRC, SRC inside DST, SRC equal to DST. Paths are compared as real
 * paths and, for what exists, by device and inode (bind mounts, hard-linked files).
 * Refusals are UsageErrors (exit 2). Never creates anything.
 */
import { lstatSync, realpathSync, statSync, type BigIntStats } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { errnoNumber } from "../../ffi/errno.ts";
import { SysError, UsageError } from "../errors.ts";

export interface Resolved {
  kind: "dir" | "file";
  /** SRC as a real absolute path (symlinks resolved). */
  src: string;
  /** Where the copy goes: the directory receiving SRC's contents, or the file path. */
  dst: string;
  /** Does `dst` exist now? */
  dstExists: boolean;
  /** For a file: does the directory that will hold it exist? */
  dstParentExists: boolean;
}

function sysErr(e: unknown, call: string, path: string): never {
  const code = (e as NodeJS.ErrnoException).code;
  const n = code === undefined ? undefined : errnoNumber(code);
  if (n !== undefined) throw new SysError(call, n, path);
  throw e;
}

function statOrNull(path: string): BigIntStats | null {
  try {
    return statSync(path, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    return sysErr(e, "stat", path);
  }
}

/**
 * The real path `p` would have: realpath of its longest existing prefix (resolved by the
 * kernel, "..", symlinks and all), plus the components that do not exist yet.
 */
export function realTarget(p: string, cwd = process.cwd()): string {
  let head = isAbsolute(p) ? p : `${cwd}/${p}`;
  head = head.replace(/\/+$/, "") || "/";
  const tail: string[] = [];
  for (;;) {
    try {
      return tail.length === 0 ? realpathSync(head) : resolve(realpathSync(head), ...tail.reverse());
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") return sysErr(e, "realpath", p);
      const i = head.lastIndexOf("/");
      if (i < 0 || head === "/") return resolve(cwd, p);
      tail.push(head.slice(i + 1));
      head = head.slice(0, i) || "/";
    }
  }
}

/** Is `inner` the same as or below `outer` (real paths)? */
export function isWithin(inner: string, outer: string): boolean {
  if (inner === outer) return true;
  const o = outer.endsWith("/") ? outer : `${outer}/`;
  return inner.startsWith(o);
}

const sameFile = (a: BigIntStats, b: BigIntStats): boolean => a.dev === b.dev && a.ino === b.ino;

/** Walk up from `path` (real) to "/": does any existing ancestor have the dev/ino of `dir`? */
function hasAncestor(path: string, dir: BigIntStats): boolean {
  let p = path;
  for (;;) {
    const st = statOrNull(p);
    if (st !== null && sameFile(st, dir)) return true;
    if (p === "/") return false;
    p = dirname(p);
  }
}

/** Resolve SRC and DST and refuse the combinations that would copy a tree into itself. */
export function resolveCopy(srcArg: string, dstArg: string, cwd = process.cwd()): Resolved {
  const srcAbs = isAbsolute(srcArg) ? srcArg : resolve(cwd, srcArg);
  try {
    lstatSync(srcAbs);
  } catch (e) {
    sysErr(e, "stat", srcArg);
  }
  let src: string;
  try {
    src = realpathSync(srcAbs);
  } catch (e) {
    return sysErr(e, "realpath", srcArg);
  }
  const sst = statOrNull(src);
  if (sst === null) throw new SysError("stat", errnoNumber("ENOENT")!, srcArg);
  const dstTrailingSlash = dstArg.endsWith("/");
  const dstReal = realTarget(dstArg, cwd);
  const dst0 = statOrNull(dstReal);

  if (sst.isDirectory()) {
    if (dst0 !== null && !dst0.isDirectory()) {
      throw new UsageError(`DST ${dstArg} exists and is not a directory: cannot copy the directory ${srcArg} into it`);
    }
    if ((dst0 !== null && sameFile(dst0, sst)) || dstReal === src) {
      throw new UsageError(`refusing to copy ${srcArg} onto itself: SRC and DST are the same directory (${src})`);
    }
    if (isWithin(dstReal, src) || hasAncestor(dstReal, sst)) {
      throw new UsageError(`refusing to copy: DST ${dstArg} (${dstReal}) is inside SRC ${srcArg} (${src}); the copy would copy itself`);
    }
    if (isWithin(src, dstReal) || (dst0 !== null && hasAncestor(src, dst0))) {
      throw new UsageError(`refusing to copy: SRC ${srcArg} (${src}) is inside DST ${dstArg} (${dstReal}); the copy would land on its own source`);
    }
    return { kind: "dir", src, dst: dstReal, dstExists: dst0 !== null, dstParentExists: true };
  }

  if (!sst.isFile()) {
    throw new UsageError(`SRC ${srcArg} is not a regular file or a directory`);
  }
  // A single file: into an existing directory (or DST/ given as one), else to that path.
  const intoDir = (dst0 !== null && dst0.isDirectory()) || dstTrailingSlash;
  const target = intoDir ? join(dstReal, basename(src)) : dstReal;
  const tst = statOrNull(target);
  if ((tst !== null && sameFile(tst, sst)) || target === src) {
    throw new UsageError(`refusing to copy ${srcArg} onto itself: SRC and DST are the same file (${src})`);
  }
  if (tst !== null && tst.isDirectory()) {
    throw new UsageError(`DST ${target} is a directory: cannot replace it with the file ${srcArg}`);
  }
  const parent = dirname(target);
  const pst = statOrNull(parent);
  if (pst !== null && !pst.isDirectory()) throw new SysError("open", errnoNumber("ENOTDIR")!, parent);
  return { kind: "file", src, dst: target, dstExists: tst !== null, dstParentExists: pst !== null };
}
