/**
 * The receiver's --delete pass (docs/PROTOCOL.md 8.7): after LIST_END, everything in DST
 * that the sender's listing did not name goes, except what the sender's --exclude
 * patterns protect (as rsync does) and the receiver's own temporaries of this session.
 *
 * Owns: the walk of DST (directory fds opened relative to their parent with O_NOFOLLOW,
 * so a symlink in DST is removed as a symlink and never followed), the decision per
 * entry, and the removal (src/copy/remove.ts, which never follows a symlink either).
 * A directory the listing named is entered; one it did not name is removed whole. In a
 * dry run nothing is removed: the entries are only reported.
 *
 * Memory: a directory is read one getdents64 buffer at a time (src/copy/scan.ts DirReader)
 * and an entry is looked up by its path bytes, so an entry the listing named costs no
 * objects at all; strings are made only for an entry that goes (or, with FILTER, for each
 * entry the patterns must see). Only the names of listed directories wait, per level,
 * until their parent has been read; then they are entered one after the other.
 *
 * Must never: leave DST, follow a symlink, remove an excluded path or anything under an
 * excluded directory, or throw for one entry (failures are reported and the walk goes on).
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { O, S } from "../../ffi/structs.ts";
import { removeTree } from "../copy/remove.ts";
import { DirReader } from "../copy/scan.ts";
import { lstatAt, StatBuf } from "../copy/sys.ts";
import type { Filter } from "../copy/filter.ts";
import { SysError } from "../errors.ts";

export interface DeletePassOptions {
  /**
   * The paths the sender listed (every kind), looked up by their UTF-8 bytes. May answer
   * true for a path that was not listed (src/net/listed-paths.ts keeps hashes): that entry
   * is then kept, never removed.
   */
  seen: { hasBytes(path: Uint8Array, len: number): boolean };
  /** The sender's --exclude/--include: excluded paths are protected. */
  filter: Filter | undefined;
  /** Names starting with this are the receiver's own (its staging directories): never touched. */
  ownPrefix: string;
  dryRun: boolean;
  /** Called for every entry removed (or, in a dry run, that would be). */
  onDeleted: (rel: string) => void;
  onError: (rel: string, error: SysError) => void;
}

const lossy = new TextDecoder("utf-8");

/** Walks DST from `rootFd` and removes what the listing did not name. */
export function deletePass(rootFd: number, o: DeletePassOptions): void {
  const st = new StatBuf();
  const reader = new DirReader();
  const own = new TextEncoder().encode(o.ownPrefix);
  /** The path being looked at, as bytes: the directory's path and "/", then the name. */
  let path = new Uint8Array(4096);
  const room = (need: number): void => {
    if (need <= path.length) return;
    const bigger = new Uint8Array(Math.max(need, 2 * path.length));
    bigger.set(path);
    path = bigger;
  };
  const isOwn = (b: Uint8Array, at: number, len: number): boolean => {
    if (own.length === 0 || len < own.length) return false;
    for (let i = 0; i < own.length; i++) if (b[at + i] !== own[i]) return false;
    return true;
  };
  /** Reads directory `dirfd` (whose path, plus "/" unless it is DST itself, is path[0, prefix)). */
  const walk = (dirfd: number, dirRel: string, prefix: number): void => {
    // Listed directories of this one, entered once it has been read (the reader is shared).
    const subdirs: Uint8Array[] = [];
    reader.open(dirfd);
    for (;;) {
      const n = reader.fill(false);
      if (n < 0) {
        o.onError(dirRel || ".", new SysError("getdents64", -n, dirRel || "."));
        break;
      }
      if (n === 0) break;
      const b = reader.buf;
      for (let k = 0; k < n; k++) {
        const rec = reader.order[k];
        const at = reader.nameOff(rec);
        const len = reader.nameLen(rec);
        // At every depth: a directory new in this session sits under a temporary name inside
        // its (existing) parent until the session ends, after this pass.
        if (isOwn(b, at, len)) continue;
        const r = lstatAt(dirfd, reader.nameAddr(rec), st);
        if (r === -E.ENOENT) continue;
        const isDir = r === 0 && st.type === S.IFDIR;
        room(prefix + len + 1);
        for (let i = 0; i < len; i++) path[prefix + i] = b[at + i];
        let rel: string | undefined;
        if (o.filter !== undefined) {
          rel = lossy.decode(path.subarray(0, prefix + len));
          if (o.filter.excluded(rel, isDir)) continue;
        }
        // A name that is not valid UTF-8 cannot be in the listing: its bytes match no listed path.
        if (o.seen.hasBytes(path, prefix + len)) {
          if (isDir) subdirs.push(b.slice(at, at + len + 1));
          continue;
        }
        rel ??= lossy.decode(path.subarray(0, prefix + len));
        if (o.dryRun) {
          o.onDeleted(rel);
          continue;
        }
        let failed = false;
        removeTree(dirfd, reader.zname(rec), rel, (syscall, err, p) => {
          failed = true;
          o.onError(p, new SysError(syscall, err < 0 ? -err : err, p));
        });
        if (!failed) o.onDeleted(rel);
      }
    }
    for (const z of subdirs) {
      const len = z.length - 1;
      room(prefix + len + 1);
      path.set(z.subarray(0, len), prefix);
      path[prefix + len] = 0x2f;
      const rel = lossy.decode(path.subarray(0, prefix + len));
      const fd = libc.openat(dirfd, z, O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC, 0);
      if (fd < 0) {
        o.onError(rel, new SysError("open", errno(), rel));
        continue;
      }
      try {
        walk(fd, rel, prefix + len + 1);
      } finally {
        libc.close(fd);
      }
    }
  };
  walk(rootFd, "", 0);
}
