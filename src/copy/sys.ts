/**
 * Thin synchronous system-call helpers for the copy engine, over ffi/libc.ts.
 *
 * Owns: reading struct statx without allocating (StatBuf), byte-string paths (names are
 * bytes, never assumed to be UTF-8), opening directories beneath a root without ever
 * following a symlink (openat2 RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH, walking component by
 * component past PATH_MAX), timespec arrays for futimens/utimensat, and the few one-off
 * calls (readlink, fstatfs, umask). Every function returns -errno instead of throwing, so
 * hot paths decide what an error means. Never decides policy, never prints.
 */
import { E } from "../../ffi/errno.ts";
import { addressOf, errno, libc } from "../../ffi/libc.ts";
import { AT, O, OPEN_HOW, RESOLVE, STATX, STATX_MASK, S, SYS } from "../../ffi/structs.ts";
import { FS_MAGIC, PATH_MAX, RWF, STATFS } from "./sysconst.ts";

export const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** A name or relative path for people (invalid UTF-8 shown as U+FFFD). */
export function decodePath(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** A NUL-terminated copy of a byte path, for syscalls. */
export function zpath(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes, 0);
  return out;
}

export const EMPTY_Z = new Uint8Array(1);
export const DOT_Z = zpath(encoder.encode("."));

/** `dir/name` as bytes; `dir` empty means the root. */
export function joinRel(dir: Uint8Array, name: Uint8Array): Uint8Array {
  if (dir.length === 0) return name.slice();
  const out = new Uint8Array(dir.length + 1 + name.length);
  out.set(dir, 0);
  out[dir.length] = 0x2f;
  out.set(name, dir.length + 1);
  return out;
}

/** The path a person sees: root + "/" + rel (root alone when rel is empty). */
export function showPath(root: string, rel: Uint8Array | string): string {
  const r = typeof rel === "string" ? rel : decodePath(rel);
  if (r === "") return root;
  return root.endsWith("/") ? root + r : `${root}/${r}`;
}

// ---- statx ---------------------------------------------------------------------------

/** What the engine asks statx for. */
export const STATX_WANT = STATX_MASK.BASIC_STATS;

/**
 * A struct statx buffer with typed views, read field by field without allocating.
 * Several may share one ArrayBuffer (one per batch slot).
 */
export class StatBuf {
  readonly bytes: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly u16: Uint16Array;
  readonly addr: number;

  constructor(buffer?: ArrayBuffer, byteOffset = 0) {
    const b = buffer ?? new ArrayBuffer(STATX.size);
    this.bytes = new Uint8Array(b, byteOffset, STATX.size);
    this.u32 = new Uint32Array(b, byteOffset, STATX.size >>> 2);
    this.i32 = new Int32Array(b, byteOffset, STATX.size >>> 2);
    this.u16 = new Uint16Array(b, byteOffset, STATX.size >>> 1);
    this.addr = addressOf(this.bytes);
  }

  get mode(): number { return this.u16[STATX.mode >>> 1]; }
  get type(): number { return this.mode & S.IFMT; }
  get perm(): number { return this.mode & 0o7777; }
  get uid(): number { return this.u32[STATX.uid >>> 2]; }
  get gid(): number { return this.u32[STATX.gid >>> 2]; }
  get nlink(): number { return this.u32[STATX.nlink >>> 2]; }
  get ino(): number { return this.u64(STATX.ino); }
  get size(): number { return this.u64(STATX.size_); }
  get blocks(): number { return this.u64(STATX.blocks); }
  get atimeSec(): number { return this.i64(STATX.atime); }
  get atimeNsec(): number { return this.u32[(STATX.atime + 8) >>> 2]; }
  get mtimeSec(): number { return this.i64(STATX.mtime); }
  get mtimeNsec(): number { return this.u32[(STATX.mtime + 8) >>> 2]; }
  get devMajor(): number { return this.u32[STATX.devMajor >>> 2]; }
  get devMinor(): number { return this.u32[STATX.devMinor >>> 2]; }
  get rdevMajor(): number { return this.u32[STATX.rdevMajor >>> 2]; }
  get rdevMinor(): number { return this.u32[STATX.rdevMinor >>> 2]; }
  /** A number naming the device, unique enough for hard-link keys. */
  get dev(): number { return this.devMajor * 1048576 + this.devMinor; }

  private u64(off: number): number {
    return this.u32[off >>> 2] + this.u32[(off >>> 2) + 1] * 4294967296;
  }

  private i64(off: number): number {
    return this.u32[off >>> 2] + this.i32[(off >>> 2) + 1] * 4294967296;
  }

  /** Same size and mtime (to the nanosecond) as `o`: the quick "unchanged" check. */
  sameSizeAndMtime(o: StatBuf): boolean {
    const a = this.u32;
    const b = o.u32;
    const s = STATX.size_ >>> 2;
    const m = STATX.mtime >>> 2;
    return a[s] === b[s] && a[s + 1] === b[s + 1] && a[m] === b[m] && a[m + 1] === b[m + 1] && a[m + 2] === b[m + 2];
  }

  sameMtime(o: StatBuf): boolean {
    const m = STATX.mtime >>> 2;
    return this.u32[m] === o.u32[m] && this.u32[m + 1] === o.u32[m + 1] && this.u32[m + 2] === o.u32[m + 2];
  }

  copyFrom(o: StatBuf): void {
    this.bytes.set(o.bytes);
  }

  /** A plain snapshot (for messages between threads). */
  snapshot(): StatSnapshot {
    return {
      mode: this.mode, uid: this.uid, gid: this.gid, size: this.size,
      atimeSec: this.atimeSec, atimeNsec: this.atimeNsec, mtimeSec: this.mtimeSec, mtimeNsec: this.mtimeNsec,
      dev: this.dev, ino: this.ino, nlink: this.nlink, blocks: this.blocks,
      rdevMajor: this.rdevMajor, rdevMinor: this.rdevMinor,
    };
  }
}

/** What a StatBuf says, as a plain object that can cross postMessage. */
export interface StatSnapshot {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  dev: number;
  ino: number;
  nlink: number;
  blocks: number;
  rdevMajor: number;
  rdevMinor: number;
}

/** statx(dirfd, path, flags): 0 or -errno. `path` is NUL-terminated bytes or an address. */
export function statxAt(dirfd: number, path: Uint8Array | number, flags: number, st: StatBuf): number {
  const r = typeof path === "number"
    ? libc.statx(dirfd, path as never, flags, STATX_WANT, st.bytes)
    : libc.statx(dirfd, path, flags, STATX_WANT, st.bytes);
  return r === 0 ? 0 : -errno();
}

/** statx of an open fd. */
export function fstatx(fd: number, st: StatBuf): number {
  const r = libc.statx(fd, EMPTY_Z, AT.EMPTY_PATH, STATX_WANT, st.bytes);
  return r === 0 ? 0 : -errno();
}

/** lstat-like statx of a name in a directory. */
export function lstatAt(dirfd: number, name: Uint8Array | number, st: StatBuf): number {
  return statxAt(dirfd, name, AT.SYMLINK_NOFOLLOW, st);
}

// ---- times ----------------------------------------------------------------------------

/** struct timespec[2] (atime, mtime) as Int32 words, filled from a StatBuf without BigInts. */
export class Times {
  readonly words = new Int32Array(8);
  readonly addr = addressOf(this.words);

  fromStat(st: StatBuf): this {
    const w = this.words;
    const u = st.i32;
    const a = STATX.atime >>> 2;
    const m = STATX.mtime >>> 2;
    w[0] = u[a]; w[1] = u[a + 1]; w[2] = u[a + 2]; w[3] = 0;
    w[4] = u[m]; w[5] = u[m + 1]; w[6] = u[m + 2]; w[7] = 0;
    return this;
  }

  fromSnapshot(s: StatSnapshot): this {
    setTs(this.words, 0, s.atimeSec, s.atimeNsec);
    setTs(this.words, 4, s.mtimeSec, s.mtimeNsec);
    return this;
  }
}

function setTs(w: Int32Array, at: number, sec: number, nsec: number): void {
  const hi = Math.floor(sec / 4294967296);
  w[at] = sec - hi * 4294967296;
  w[at + 1] = hi;
  w[at + 2] = nsec;
  w[at + 3] = 0;
}

// ---- opening directories beneath a root -------------------------------------------------

const how = new BigUint64Array(3);
const howAddr = addressOf(how);
let openat2Works = true;

/** Directory flags for reading/creating inside. */
export const DIR_FLAGS = O.RDONLY | O.DIRECTORY | O.CLOEXEC | O.NOFOLLOW;

/**
 * Open `rel` (bytes, relative, no NUL) beneath `rootfd` as a directory, following no
 * symlink at any step; `rel` empty opens the root itself. Returns fd or -errno.
 */
export function openDirBeneath(rootfd: number, rel: Uint8Array): number {
  if (rel.length === 0) {
    const fd = libc.openat(rootfd, DOT_Z, DIR_FLAGS, 0);
    return fd >= 0 ? fd : -errno();
  }
  if (rel.length < PATH_MAX - 64) return openOne(rootfd, zpath(rel));
  // Longer than the kernel takes in one call: walk it in pieces below PATH_MAX.
  let fd = rootfd;
  let start = 0;
  while (start < rel.length) {
    let end = Math.min(rel.length, start + PATH_MAX - 256);
    if (end < rel.length) {
      while (end > start && rel[end] !== 0x2f) end--;
      if (end === start) return -E.ENAMETOOLONG;
    }
    const next = openOne(fd, zpath(rel.subarray(start, end)));
    if (fd !== rootfd) libc.close(fd);
    if (next < 0) return next;
    fd = next;
    start = end + 1;
  }
  return fd;
}

function openOne(dirfd: number, zrel: Uint8Array): number {
  if (openat2Works) {
    how[0] = BigInt(DIR_FLAGS);
    how[1] = 0n;
    how[2] = BigInt(RESOLVE.NO_SYMLINKS | RESOLVE.BENEATH);
    const fd = libc.syscall(SYS.openat2, dirfd, addressOf(zrel), howAddr, OPEN_HOW.size, 0, 0);
    if (fd >= 0) return fd;
    const e = errno();
    if (e !== E.ENOSYS) return e === E.ELOOP || e === 18 /* EXDEV */ ? -E.ENOTDIR : -e;
    openat2Works = false;
  }
  const fd = libc.openat(dirfd, zrel, DIR_FLAGS, 0);
  return fd >= 0 ? fd : -errno();
}

/**
 * Run `fn(dirfd, zname)` on the parent directory of `rel` beneath `rootfd` (opened without
 * following symlinks) and the last component. Returns fn's result or -errno of the open.
 */
export function atParent(rootfd: number, rel: Uint8Array, fn: (dirfd: number, zname: Uint8Array) => number): number {
  let slash = rel.length - 1;
  while (slash >= 0 && rel[slash] !== 0x2f) slash--;
  const zname = zpath(rel.subarray(slash + 1));
  if (slash < 0) return fn(rootfd, zname);
  const dfd = openDirBeneath(rootfd, rel.subarray(0, slash));
  if (dfd < 0) return dfd;
  try {
    return fn(dfd, zname);
  } finally {
    libc.close(dfd);
  }
}

// ---- one-off calls ---------------------------------------------------------------------

/** Target of a symlink `name` in `dirfd`, as bytes; or -errno. */
export function readlinkAt(dirfd: number, zname: Uint8Array | number, buf: Uint8Array): Uint8Array | number {
  const n = typeof zname === "number"
    ? libc.readlinkat(dirfd, zname as never, buf, buf.length)
    : libc.readlinkat(dirfd, zname, buf, buf.length);
  if (n < 0) return -errno();
  if (n >= buf.length) return -E.ENAMETOOLONG;
  return buf.slice(0, n);
}

const statfsBuf = new BigInt64Array(STATFS.size / 8);

/** statfs f_type of the file system holding `fd`, or 0 when unknown. */
export function fsType(fd: number): number {
  if (libc.fstatfs(fd, statfsBuf) !== 0) return 0;
  return Number(BigInt.asUintN(32, statfsBuf[STATFS.type / 8]));
}

/** File systems where processing a directory in inode order makes things slower (GNU cp's list). */
export function inodeOrderHelps(type: number): boolean {
  switch (type) {
    case FS_MAGIC.TMPFS: case FS_MAGIC.RAMFS: case FS_MAGIC.NFS: case FS_MAGIC.SMB: case FS_MAGIC.CIFS:
    case FS_MAGIC.SMB2: case FS_MAGIC.LUSTRE: case FS_MAGIC.FUSE: case FS_MAGIC.PROC: case FS_MAGIC.SYSFS:
    case 0:
      return false;
    default:
      return true;
  }
}

/** Pseudo file systems whose files report sizes unrelated to their content (read to EOF). */
export function isPseudoFs(type: number): boolean {
  switch (type) {
    case FS_MAGIC.PROC: case FS_MAGIC.SYSFS: case FS_MAGIC.DEBUGFS: case FS_MAGIC.TRACEFS: case FS_MAGIC.CGROUP2:
    case FS_MAGIC.CONFIGFS: case FS_MAGIC.SECURITYFS: case FS_MAGIC.BPF: case FS_MAGIC.EFIVARFS: case FS_MAGIC.PSTORE:
      return true;
    default:
      return false;
  }
}

/** File systems that can share extents (FICLONE is worth trying). */
export function canClone(type: number): boolean {
  return type === FS_MAGIC.BTRFS || type === FS_MAGIC.XFS;
}

/** The process umask, read without leaving it changed. Call before starting threads. */
export function readUmask(): number {
  const old = libc.umask(0o022);
  libc.umask(old);
  return old & 0o777;
}

const probeIov = new BigUint64Array(2);
const probeByte = new Uint8Array(1);

/**
 * Can this file be read without blocking (RWF_NOWAIT)? If not (tmpfs, for one), io_uring
 * hands every READ on it to an io-wq thread, which costs more than a plain pread: the
 * caller then reads such files synchronously. Probed on an open file; cheap (0-1 byte).
 */
export function supportsNowait(fd: number): boolean {
  probeIov[0] = BigInt(addressOf(probeByte));
  probeIov[1] = 1n;
  const r = libc.syscall(SYS.preadv2, fd, addressOf(probeIov), 1, 0, 0, RWF.NOWAIT);
  return !(r < 0 && errno() === E.EOPNOTSUPP);
}

/** glibc's makedev(). */
export function makedev(major: number, minor: number): number {
  // ((maj & 0xfffff000) << 32) | ((maj & 0xfff) << 8) | ((min & 0xffffff00) << 12) | (min & 0xff)
  return (Math.floor(major / 4096) * 4096) * 4294967296 + (major & 0xfff) * 256 + (Math.floor(minor / 256) * 256) * 4096 + (minor & 0xff);
}
