/**
 * Removing a DST entry and everything under it (--delete, and a directory replaced by a
 * file with --delete).
 *
 * Owns: a recursive unlink that works relative to open directory fds, never follows a
 * symlink (a symlink to a directory is unlinked, its target untouched), and never needs a
 * path longer than one name. Never decides what to remove.
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AT } from "../../ffi/structs.ts";
import { DirReader } from "./scan.ts";
import { decodePath, DIR_FLAGS } from "./sys.ts";

export type RemoveReport = (syscall: string, err: number, path: string) => void;

/** Remove `zname` in `dirfd` (recursively if it is a directory). `path` is for messages. */
export function removeTree(dirfd: number, zname: Uint8Array, path: string, report: RemoveReport): boolean {
  if (libc.unlinkat(dirfd, zname, 0) === 0) return true;
  let e = errno();
  if (e === E.ENOENT) return true;
  if (e !== E.EISDIR && e !== E.EPERM) {
    report("unlink", -e, path);
    return false;
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const fd = libc.openat(dirfd, zname, DIR_FLAGS, 0);
    if (fd < 0) {
      report("open", -errno(), path);
      return false;
    }
    const r = new DirReader(16 * 1024);
    r.open(fd);
    let ok = true;
    for (;;) {
      const n = r.fill(false);
      if (n <= 0) {
        if (n < 0) {
          report("getdents", n, path);
          ok = false;
        }
        break;
      }
      for (let i = 0; i < n; i++) {
        const rec = r.order[i];
        if (!removeTree(fd, r.zname(rec), `${path}/${decodePath(r.name(rec))}`, report)) ok = false;
      }
    }
    libc.close(fd);
    if (!ok) return false;
    if (libc.unlinkat(dirfd, zname, AT.REMOVEDIR) === 0) return true;
    e = errno();
    if (e !== E.ENOTEMPTY) break;
  }
  report("rmdir", -e, path);
  return false;
}
