/**
 * cp -a fidelity for everything but the bytes: owner, mode (setuid/setgid/sticky
 * included), atime and mtime to the nanosecond, extended attributes.
 *
 * Owns: the order these are applied in, which matters: owner first (chown clears
 * setuid/setgid), then mode, then xattrs, then times last (every other change would bump
 * ctime only, but writes and xattrs may touch mtime on some file systems). Files get
 * their metadata through their fd before they are committed; symlinks, special files and
 * directories by name (directories after their contents, see engine.ts). Never creates or
 * removes files.
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AT } from "../../ffi/structs.ts";
import { encoder, StatBuf, Times, type StatSnapshot } from "./sys.ts";

export interface MetaPolicy {
  /** chown to the source's owner (only attempted when running as root). */
  owner: boolean;
  /** Who new files belong to before any chown (the process's effective ids). */
  euid: number;
  egid: number;
  xattrs: boolean;
  /** The process umask: a created file's mode is mode & ~umask, so fchmod when that loses bits. */
  umask: number;
}

/** A failed metadata call: which call and -errno. */
export interface MetaFailure {
  syscall: string;
  err: number;
}

const ok: MetaFailure = { syscall: "", err: 0 };

/** The mode to create a file with: permission bits only (special bits come after the writes). */
export function createMode(perm: number): number {
  return perm & 0o777;
}

/** Does a file created with createMode(perm) need an fchmod to end up with exactly `perm`? */
export function needsChmod(perm: number, umask: number): boolean {
  // setuid/setgid/sticky are set after writing (writes and chown clear them); umask may
  // have removed permission bits at creation.
  return (perm & 0o7000) !== 0 || (perm & umask) !== 0;
}

/**
 * Apply owner, mode, xattrs and times from `st` to the open file `fd` (created with
 * createMode(st.perm)). `srcfd` is needed for xattrs. `ownerKnown`: the file was created
 * in a directory made by this run, so it is owned by euid:egid.
 */
export function applyFileMeta(
  fd: number, st: StatBuf, p: MetaPolicy, times: Times, srcfd: number, xa: XattrCopier | null, ownerKnown: boolean,
): MetaFailure {
  const perm = st.perm;
  // A file created in a directory this run made belongs to euid:egid (no setgid parent to
  // inherit a group from): no chown needed when that is already the source's owner.
  if (p.owner && !(ownerKnown && st.uid === p.euid && st.gid === p.egid)) {
    if (libc.fchown(fd, st.uid, st.gid) !== 0) return { syscall: "fchown", err: -errno() };
  }
  if (needsChmod(perm, p.umask)) {
    if (libc.fchmod(fd, perm) !== 0) return { syscall: "fchmod", err: -errno() };
  }
  if (p.xattrs && xa !== null) {
    const r = xa.copyFd(srcfd, fd);
    if (r.err !== 0) return r;
  }
  if (libc.futimens(fd, times.words) !== 0) return { syscall: "futimens", err: -errno() };
  return ok;
}

/**
 * Owner, mode and times of `zname` in `dirfd`, not following a symlink (for directories,
 * symlinks and special files). Symlinks have no mode of their own.
 */
export function applyPathMeta(dirfd: number, zname: Uint8Array, s: StatSnapshot, p: MetaPolicy, isLink: boolean, times: Times): MetaFailure {
  if (p.owner) {
    if (libc.fchownat(dirfd, zname, s.uid, s.gid, AT.SYMLINK_NOFOLLOW) !== 0) return { syscall: "lchown", err: -errno() };
  }
  if (!isLink && libc.fchmodat(dirfd, zname, s.mode & 0o7777, 0) !== 0) return { syscall: "chmod", err: -errno() };
  times.fromSnapshot(s);
  if (libc.utimensat(dirfd, zname, times.words, AT.SYMLINK_NOFOLLOW) !== 0) return { syscall: "utimensat", err: -errno() };
  return ok;
}

/** Copies extended attributes, with buffers kept per thread. */
export class XattrCopier {
  private names = new Uint8Array(4096);
  private value = new Uint8Array(4096);
  /** Set once a destination said "no xattrs here" (the caller warns once). */
  unsupported = false;

  /** All xattrs of `src` (fd) onto `dst` (fd). */
  copyFd(src: number, dst: number): MetaFailure {
    const n = this.list((b, len) => libc.flistxattr(src, b, len));
    if (n < 0) return n === -E.EOPNOTSUPP ? ok : { syscall: "flistxattr", err: n };
    return this.each(n, (name) => this.get((b, len) => libc.fgetxattr(src, name, b, len)), (name, len) =>
      libc.fsetxattr(dst, name, this.value, len, 0));
  }

  /** All xattrs of path `src` onto path `dst` (not following symlinks). Paths are NUL-terminated bytes. */
  copyPath(src: Uint8Array, dst: Uint8Array): MetaFailure {
    const n = this.list((b, len) => libc.llistxattr(src, b, len));
    if (n < 0) return n === -E.EOPNOTSUPP ? ok : { syscall: "llistxattr", err: n };
    return this.each(n, (name) => this.get((b, len) => libc.lgetxattr(src, name, b, len)), (name, len) =>
      libc.lsetxattr(dst, name, this.value, len, 0));
  }

  private list(call: (b: Uint8Array | null, len: number) => number): number {
    for (;;) {
      const n = call(this.names, this.names.length);
      if (n >= 0) return n;
      const e = errno();
      if (e !== 34 /* ERANGE */) return -e;
      const need = call(null, 0);
      if (need < 0) return -errno();
      this.names = new Uint8Array(Math.max(need, this.names.length * 2));
    }
  }

  private get(call: (b: Uint8Array | null, len: number) => number): number {
    for (;;) {
      const n = call(this.value, this.value.length);
      if (n >= 0) return n;
      const e = errno();
      if (e !== 34 /* ERANGE */) return -e;
      const need = call(null, 0);
      if (need < 0) return -errno();
      this.value = new Uint8Array(Math.max(need, this.value.length * 2));
    }
  }

  private each(listLen: number, get: (name: Uint8Array) => number, set: (name: Uint8Array, len: number) => number): MetaFailure {
    const all = this.names.slice(0, listLen);
    let start = 0;
    for (let i = 0; i < all.length; i++) {
      if (all[i] !== 0) continue;
      const name = all.subarray(start, i + 1);
      start = i + 1;
      if (name.length <= 1) continue;
      const len = get(name);
      if (len === -E.ENODATA) continue; // removed meanwhile
      if (len < 0) return { syscall: "getxattr", err: len };
      if (set(name, len) !== 0) {
        const e = errno();
        if (e === E.EOPNOTSUPP) {
          this.unsupported = true;
          return ok;
        }
        // Attributes of other namespaces may be refused (e.g. security.* without privilege).
        if (e === E.EPERM && !startsWith(name, USER)) continue;
        return { syscall: "setxattr", err: -e };
      }
    }
    return ok;
  }
}

const USER = encoder.encode("user.");

function startsWith(a: Uint8Array, p: Uint8Array): boolean {
  if (a.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (a[i] !== p[i]) return false;
  return true;
}

/** "/proc/self/fd/<dirfd>/<name>" as NUL-terminated bytes: a path to an entry of an open dir. */
export function procPath(dirfd: number, name: Uint8Array): Uint8Array {
  const head = encoder.encode(`/proc/self/fd/${dirfd}/`);
  const out = new Uint8Array(head.length + name.length + 1);
  out.set(head, 0);
  out.set(name, head.length);
  return out;
}
