/**
 * Staging a new DST: when DST does not exist yet, the whole tree is copied into a hidden
 * sibling, `.<name>.usync-stage-<token><n>` (mode 0700, flock'ed for the whole run), and
 * renamed to DST at the end. Inside it every file is created directly under its final
 * name (O_CREAT|O_EXCL: no O_TMPFILE + linkat, no temp name + rename per file; see
 * docs/DESIGN.md for what that saves), and still no final path ever holds a partial file:
 * until the one rename, nothing of it is under DST.
 *
 * A run killed with SIGKILL leaves its sibling behind (DST itself absent or untouched).
 * The next run that stages the same DST removes such leftovers, but only those whose lock
 * it can take, i.e. whose run is gone: flock is released by the kernel when the process
 * dies. The owner checks, after locking, that its directory is still the one under the
 * staging name, so a cleaner that locked it first (and removed it) is noticed.
 *
 * Owns: the staging name, its lock, leftover cleanup, the final rename (RENAME_NOREPLACE;
 * an empty directory that appeared meanwhile is replaced, anything else is an error and
 * the staged tree is removed). Never copies anything itself.
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AT, O, RENAME } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import { removeTree } from "./remove.ts";
import { DirReader } from "./scan.ts";
import { DIR_FLAGS, encoder, fstatx, lstatAt, StatBuf, zpath } from "./sys.ts";
import { NAME_MAX } from "./sysconst.ts";

/** flock(2) (x86_64 syscall number; bun:ffi binds no flock) and its flags. */
const SYS_FLOCK = 73;
const LOCK_EX = 2;
const LOCK_NB = 4;

const STAGE_MARK = ".usync-stage-";

export interface Staging {
  /** The directory DST will be in (open, followed like the user's path). */
  parentFd: number;
  parentPath: string;
  /** The staging directory's name in the parent, and its path (what the copiers open as DST). */
  name: string;
  path: string;
  /** DST's own name in the parent. */
  finalName: string;
  /** The staging directory, flock'ed (LOCK_EX) until the run ends. */
  lockFd: number;
}

/**
 * The prefix every staging name for DST name `base` starts with: "." + base (cut at a
 * UTF-8 boundary so that prefix + token + counter fit NAME_MAX) + ".usync-stage-".
 */
export function stagePrefix(base: string): string {
  const b = encoder.encode(base);
  // 8-character token, up to 4 counter digits.
  let keep = Math.min(b.length, NAME_MAX - 1 - STAGE_MARK.length - 8 - 4);
  while (keep > 0 && keep < b.length && (b[keep] & 0xc0) === 0x80) keep--;
  return `.${new TextDecoder().decode(b.subarray(0, keep))}${STAGE_MARK}`;
}

function flockNb(fd: number): number {
  return libc.syscall(SYS_FLOCK, fd, LOCK_EX | LOCK_NB, 0, 0, 0, 0) === 0 ? 0 : -errno();
}

function splitDst(dst: string): { parentPath: string; finalName: string } {
  const i = dst.lastIndexOf("/");
  return { parentPath: i <= 0 ? "/" : dst.slice(0, i), finalName: dst.slice(i + 1) };
}

/**
 * Removes leftovers of killed runs that staged the same DST: directories named with
 * `prefix` in `parentFd` whose lock is free. Best effort: what cannot be removed stays.
 */
export function removeLeftovers(parentFd: number, prefix: string): number {
  const want = encoder.encode(prefix);
  const r = new DirReader(32 * 1024);
  r.open(parentFd);
  const found: Uint8Array[] = [];
  for (;;) {
    const n = r.fill(false);
    if (n <= 0) break;
    for (let i = 0; i < n; i++) {
      const name = r.name(r.order[i]);
      if (name.length > want.length && startsWith(name, want)) found.push(zpath(name));
    }
  }
  let removed = 0;
  for (const z of found) {
    const fd = libc.openat(parentFd, z, DIR_FLAGS, 0);
    if (fd < 0) continue;
    try {
      // Locked: its run is alive (or removing it right now). Leave it.
      if (flockNb(fd) !== 0) continue;
      if (removeTree(parentFd, z, "", () => {})) removed++;
    } finally {
      libc.close(fd);
    }
  }
  return removed;
}

/**
 * Creates (parents like mkdir -p) and locks a staging directory for the absent `dst`
 * (absolute, normalized), after removing leftovers of killed runs. Throws SysError naming
 * DST when it cannot.
 */
export function openStaging(dst: string, token: string): Staging {
  const { parentPath, finalName } = splitDst(dst);
  mkdirParents(parentPath);
  const parentFd = libc.open(zpath(encoder.encode(parentPath)), DIR_FLAGS & ~O.NOFOLLOW /* the user's path: followed */, 0);
  if (parentFd < 0) throw new SysError("open", errno(), parentPath);
  try {
    const prefix = stagePrefix(finalName);
    removeLeftovers(parentFd, prefix);
    const st = new StatBuf();
    const st2 = new StatBuf();
    for (let n = 0; n < 1000; n++) {
      const name = `${prefix}${token}${n.toString(36)}`;
      const z = zpath(encoder.encode(name));
      if (libc.mkdirat(parentFd, z, 0o700) !== 0) {
        const e = errno();
        if (e === E.EEXIST) continue;
        throw new SysError("mkdir", e, dst);
      }
      const fd = libc.openat(parentFd, z, DIR_FLAGS, 0);
      if (fd < 0) {
        const e = errno();
        libc.unlinkat(parentFd, z, AT.REMOVEDIR);
        throw new SysError("open", e, dst);
      }
      // A cleaner may have locked (and removed) it between mkdir and here: then try again.
      if (flockNb(fd) !== 0 || fstatx(fd, st) !== 0 || lstatAt(parentFd, z, st2) !== 0 || st.ino !== st2.ino || st.dev !== st2.dev) {
        libc.close(fd);
        continue;
      }
      return { parentFd, parentPath, name, path: parentPath === "/" ? `/${name}` : `${parentPath}/${name}`, finalName, lockFd: fd };
    }
    throw new SysError("mkdir", E.EEXIST, dst);
  } catch (e) {
    libc.close(parentFd);
    throw e;
  }
}

/** Why publishing failed: the syscall and its errno. */
export interface PublishFailure {
  syscall: "rename" | "fsync";
  errno: number;
}

/**
 * Renames the staged tree to DST. null, or what failed: a failed rename has removed the
 * staged tree (DST is whatever appeared there meanwhile, untouched); a failed fsync
 * (`--fsync`) comes after the rename, so DST is in place but not known to be durable.
 * Closes the staging's fds either way.
 */
export function publishStaging(s: Staging, fsync: boolean): PublishFailure | null {
  const from = zpath(encoder.encode(s.name));
  const to = zpath(encoder.encode(s.finalName));
  let rc = libc.renameat2(s.parentFd, from, s.parentFd, to, RENAME.NOREPLACE);
  // EEXIST: DST appeared meanwhile; a plain rename replaces it only if it is an empty
  // directory (anything else: ENOTEMPTY/ENOTDIR/EISDIR). EINVAL: no NOREPLACE here.
  if (rc !== 0 && (errno() === E.EEXIST || errno() === E.EINVAL)) rc = libc.renameat2(s.parentFd, from, s.parentFd, to, 0);
  let failure: PublishFailure | null = null;
  if (rc !== 0) {
    failure = { syscall: "rename", errno: errno() };
    removeTree(s.parentFd, from, "", () => {});
  } else if (fsync && libc.fsync(s.parentFd) !== 0) failure = { syscall: "fsync", errno: errno() };
  closeStaging(s);
  return failure;
}

/** Removes the staged tree (a run that could not start). */
export function discardStaging(s: Staging): void {
  removeTree(s.parentFd, zpath(encoder.encode(s.name)), "", () => {});
  closeStaging(s);
}

/** Releases the lock and fds, leaving the staged tree where it is (the next run removes it). */
export function closeStaging(s: Staging): void {
  if (s.lockFd >= 0) libc.close(s.lockFd);
  if (s.parentFd >= 0) libc.close(s.parentFd);
  s.lockFd = -1;
  s.parentFd = -1;
}

/** mkdir -p for DST's parents (0777 before umask, like mkdir -p). */
function mkdirParents(path: string): void {
  const parts = path.split("/").filter((x) => x !== "");
  let cur = "";
  for (const p of parts) {
    cur += `/${p}`;
    if (libc.mkdirat(AT.FDCWD, zpath(encoder.encode(cur)), 0o777) === 0) continue;
    const e = errno();
    if (e === E.EEXIST) continue;
    throw new SysError("mkdir", e, cur);
  }
}

function startsWith(a: Uint8Array, p: Uint8Array): boolean {
  if (a.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (a[i] !== p[i]) return false;
  return true;
}
