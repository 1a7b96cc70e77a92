/**
 * The sender's walk of the source tree, one item at a time, so the transfer can stream
 * while the tree is still being read.
 *
 * Owns: directory fds (one per directory on the current path, closed when the walk
 * leaves it and no file found in it is still waiting to be opened), reading entries with
 * getdents64 (raw name bytes, d_type, inode order for the disk; names like a receiver's
 * partial, `.X.usync-partial`, first: see readDir), lstat-like metadata with
 * statx(AT_SYMLINK_NOFOLLOW), reading symlink targets, and opening regular files for
 * reading (O_NOFOLLOW: an entry swapped for a symlink after the walk saw it is refused,
 * not followed). With `deferOpen`, a file is opened only when the caller asks (openFile):
 * a re-run that skips every file then opens none (100,000 openat + close saved on a no-op
 * sync). The fd of an opened file belongs to the caller. Never follows a symlink below
 * SRC (SRC itself may be one). Never throws for a problem with one entry: such entries
 * come back as failures.
 */
import { basename } from "node:path";
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AT, O, S, STATX, STATX_MASK } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import { pinned, type Pinned } from "./mem.ts";

export type ScanKind = "file" | "dir" | "symlink" | "special" | "failure";

export interface ScanItem {
  kind: ScanKind;
  /** Path relative to SRC, "/"-separated, valid UTF-8 (for failures: as best it can be shown). */
  rel: string;
  mode: number;
  mtimeNs: bigint;
  size: number;
  dev: number;
  ino: number;
  nlink: number;
  /** 512-byte blocks allocated (sparse files have fewer than size / 512). */
  blocks: number;
  /** kind "file": an fd open for reading, owned by the caller; -1 when the open is deferred (see `at`). */
  fd: number;
  /** kind "file" with a deferred open: where it is; pass to Scanner.openFile or Scanner.release. */
  at?: DeferredOpen;
  /** kind "symlink": the raw target. */
  target?: Uint8Array;
  /** kind "special": what it is ("fifo", "socket", "character device", ...). */
  special?: string;
  /** kind "failure": why the entry cannot be sent. */
  error?: SysError | Error;
}

export interface ScanRoot {
  /** SRC is a directory: its own mode and mtime (sent as ROOT). */
  isDir: boolean;
  mode: number;
  mtimeNs: bigint;
}

const SYS_GETDENTS64 = 217;
const EMPTY = new Uint8Array(1);
/** getdents64 d_type of a directory (0 = unknown: statx decides). */
const DT_DIR = 4;
const STATX_WANT = STATX_MASK.TYPE | STATX_MASK.MODE | STATX_MASK.NLINK | STATX_MASK.INO | STATX_MASK.SIZE | STATX_MASK.BLOCKS | STATX_MASK.MTIME;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const lossy = new TextDecoder("utf-8");

interface Dirent {
  /** The name's bytes (no NUL: the *at calls get it through Scanner.z). */
  name: Uint8Array;
  ino: number;
  type: number;
  /** Named like a receiver's partial (`.X.usync-partial`): listed before the other entries. */
  partialLike: boolean;
}

/** ".usync-partial" (agree.ts PARTIAL_SUFFIX) as bytes. */
const PARTIAL_SUFFIX_BYTES = Buffer.from(".usync-partial");

/** Whether `buf[at, end)` is `.X.usync-partial` (X not empty). */
function partialLike(buf: Uint8Array, at: number, end: number): boolean {
  const n = PARTIAL_SUFFIX_BYTES.length;
  if (end - at < n + 2 || buf[at] !== 0x2e || buf[end - 1] !== 0x6c) return false;
  for (let i = 0; i < n; i++) if (buf[end - n + i] !== PARTIAL_SUFFIX_BYTES[i]) return false;
  return true;
}

/** A directory fd shared by the walk and the files found in it whose open is deferred. */
class DirRef {
  /** Deferred files still holding it. */
  refs = 0;
  /** The walk has left this directory: the last release closes the fd. */
  left = false;
  constructor(readonly fd: number) {}
}

/** A file to open later: its directory and its name's bytes, and what the walk saw. */
export interface DeferredOpen {
  dir: DirRef;
  name: Uint8Array;
  dev: number;
  ino: number;
}

interface DirState {
  ref: DirRef;
  rel: string;
  entries: Dirent[];
  next: number;
}

function failure(rel: string, error: Error): ScanItem {
  return {
    kind: "failure", rel, mode: 0, mtimeNs: 0n, size: 0, dev: 0, ino: 0, nlink: 1, blocks: 0, fd: -1,
    at: undefined, target: undefined, special: undefined, error,
  };
}

function specialName(mode: number): string {
  switch (mode & S.IFMT) {
    case S.IFIFO: return "fifo";
    case S.IFSOCK: return "socket";
    case S.IFCHR: return "character device";
    case S.IFBLK: return "block device";
    default: return "special file";
  }
}

export class Scanner {
  readonly root: ScanRoot;
  private readonly stack: DirState[] = [];
  private single: ScanItem | undefined;
  private readonly dents: Pinned = pinned(64 * 1024);
  private readonly stx = new Uint8Array(STATX.size);
  private readonly stxView = new DataView(this.stx.buffer);
  /** The statx buffer as words: 64-bit fields read as two halves, no BigInt per file. */
  private readonly stxU32 = new Uint32Array(this.stx.buffer);
  /** A name + NUL for the *at calls (reused: no allocation per entry). */
  private readonly zname = new Uint8Array(256);
  private readonly linkBuf = new Uint8Array(4096);
  private done = false;
  /** Directories the walk has left whose fd deferred files still hold. */
  private readonly lingering = new Set<DirRef>();
  /** Directories entered, for stats. */
  dirs = 0;

  /**
   * Opens SRC (following it if SRC itself is a symlink). A directory is walked; a single
   * file is one item named after SRC's last component. `exclude(rel, isDir)` leaves
   * entries out (an excluded directory is not entered). `deferOpen`: regular files below
   * SRC come back unopened (fd -1, `at` set) for openFile/release.
   */
  constructor(src: string, private readonly exclude?: (rel: string, isDir: boolean) => boolean, private readonly deferOpen = false) {
    const path = Buffer.from(`${src}\0`);
    if (libc.statx(AT.FDCWD, path, 0, STATX_WANT, this.stx) !== 0) throw new SysError("stat", errno(), src);
    const mode = this.stxView.getUint16(STATX.mode, true);
    this.root = { isDir: (mode & S.IFMT) === S.IFDIR, mode: mode & 0o7777, mtimeNs: this.mtime() };
    if (this.root.isDir) {
      const fd = libc.open(path, O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
      if (fd < 0) throw new SysError("open", errno(), src);
      this.stack.push({ ref: new DirRef(fd), rel: "", entries: this.readDir(fd, src), next: 0 });
    } else {
      const name = basename(src.replace(/\/+$/, ""));
      const item = this.describe(AT.FDCWD, path, name, false);
      if (item.kind === "dir") throw new SysError("stat", 20 /* ENOTDIR */, src);
      this.single = item;
    }
  }

  private mtime(): bigint {
    const v = this.stxView;
    return v.getBigInt64(STATX.mtime + STATX.tsSec, true) * 1_000_000_000n + BigInt(v.getUint32(STATX.mtime + STATX.tsNsec, true));
  }

  /**
   * Every entry of a directory, by inode number (the disk's order), "." and ".." left out;
   * names like a receiver's partial come first, so the receiver knows such a name is a
   * file of the listing before a large file of the same directory could use it as its
   * partial (docs/PROTOCOL.md 8.7).
   */
  private readDir(fd: number, shown: string): Dirent[] {
    const out: Dirent[] = [];
    const buf = this.dents.u8;
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (;;) {
      const n = libc.syscall(SYS_GETDENTS64, fd, this.dents.addr, this.dents.size, 0, 0, 0);
      if (n < 0) throw new SysError("getdents64", errno(), shown || ".");
      if (n === 0) break;
      for (let at = 0; at < n;) {
        const reclen = v.getUint16(at + 16, true);
        // Inode numbers only order the walk: two 32-bit halves (exact below 2^53) need no BigInt.
        const ino = v.getUint32(at, true) + v.getUint32(at + 4, true) * 4294967296;
        const type = buf[at + 18];
        let end = at + 19;
        while (buf[end] !== 0) end++;
        const len = end - at - 19;
        const dot = buf[at + 19] === 0x2e && (len === 1 || (len === 2 && buf[at + 20] === 0x2e));
        if (!dot) out.push({ name: buf.slice(at + 19, end), ino, type, partialLike: partialLike(buf, at + 19, end) });
        at += reclen;
      }
    }
    out.sort((a, b) => (a.partialLike === b.partialLike ? a.ino - b.ino : a.partialLike ? -1 : 1));
    return out;
  }

  /**
   * lstat + (file) open + (symlink) readlink of one entry; `c` is its NUL-terminated name
   * (for a deferred open `name` is kept: `c` may be a reused buffer).
   */
  private describe(dirfd: number, c: Uint8Array, rel: string, noFollow = true, ref?: DirRef, name?: Uint8Array): ScanItem {
    if (libc.statx(dirfd, c, noFollow ? AT.SYMLINK_NOFOLLOW : 0, STATX_WANT, this.stx) !== 0) {
      return failure(rel, new SysError("stat", errno(), rel));
    }
    const w = this.stxU32;
    const mode = this.stx[STATX.mode] | (this.stx[STATX.mode + 1] << 8);
    const item: ScanItem = {
      kind: "failure",
      rel,
      mode: mode & 0o7777,
      mtimeNs: this.mtime(),
      size: w[STATX.size_ / 4] + w[STATX.size_ / 4 + 1] * 4294967296,
      dev: w[STATX.devMajor / 4] * 65536 + w[STATX.devMinor / 4],
      ino: w[STATX.ino / 4] + w[STATX.ino / 4 + 1] * 4294967296,
      nlink: w[STATX.nlink / 4],
      blocks: w[STATX.blocks / 4] + w[STATX.blocks / 4 + 1] * 4294967296,
      fd: -1,
      at: undefined,
      target: undefined,
      special: undefined,
      error: undefined,
    };
    switch (mode & S.IFMT) {
      case S.IFREG: {
        if (ref !== undefined && name !== undefined && this.deferOpen) {
          ref.refs++;
          item.kind = "file";
          item.at = { dir: ref, name, dev: item.dev, ino: item.ino };
          return item;
        }
        const fd = libc.openat(dirfd, c, O.RDONLY | O.CLOEXEC | O.NOFOLLOW | O.NOCTTY, 0);
        if (fd < 0) item.error = new SysError("open", errno(), rel);
        else {
          item.kind = "file";
          item.fd = fd;
        }
        return item;
      }
      case S.IFDIR:
        item.kind = "dir";
        return item;
      case S.IFLNK: {
        const n = libc.readlinkat(dirfd, c, this.linkBuf, this.linkBuf.length);
        if (n < 0) item.error = new SysError("readlink", errno(), rel);
        else {
          item.kind = "symlink";
          item.size = 0;
          item.target = this.linkBuf.slice(0, n);
        }
        return item;
      }
      default:
        item.kind = "special";
        item.special = specialName(mode);
        return item;
    }
  }

  /** The next item, or null when the walk is over. Directories come before their contents. */
  next(): ScanItem | null {
    if (this.single !== undefined) {
      const s = this.single;
      this.single = undefined;
      this.done = true;
      return s;
    }
    while (this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1];
      if (top.next >= top.entries.length) {
        this.stack.pop();
        top.ref.left = true;
        if (top.ref.refs === 0) libc.close(top.ref.fd);
        else this.lingering.add(top.ref);
        continue;
      }
      const e = top.entries[top.next++];
      let nameStr: string;
      const bare = e.name;
      try {
        nameStr = utf8.decode(bare);
      } catch {
        const shown = top.rel === "" ? lossy.decode(bare) : `${top.rel}/${lossy.decode(bare)}`;
        return failure(shown, new Error(`${shown}: the name is not valid UTF-8; the protocol carries UTF-8 names only`));
      }
      const rel = top.rel === "" ? nameStr : `${top.rel}/${nameStr}`;
      if (this.exclude !== undefined && e.type !== 0 && this.exclude(rel, e.type === DT_DIR)) continue;
      const z = this.z(e.name);
      const item = this.describe(top.ref.fd, z, rel, true, top.ref, e.name);
      if (this.exclude !== undefined && e.type === 0 && this.exclude(rel, item.kind === "dir")) {
        this.discard(item);
        continue;
      }
      if (item.kind === "dir") {
        const fd = libc.openat(top.ref.fd, z, O.RDONLY | O.DIRECTORY | O.CLOEXEC | O.NOFOLLOW, 0);
        if (fd < 0) return failure(rel, new SysError("open", errno(), rel));
        let entries: Dirent[];
        try {
          entries = this.readDir(fd, rel);
        } catch (err) {
          libc.close(fd);
          return failure(rel, err as Error);
        }
        this.dirs++;
        this.stack.push({ ref: new DirRef(fd), rel, entries, next: 0 });
      }
      return item;
    }
    this.done = true;
    return null;
  }

  get finished(): boolean {
    return this.done;
  }

  /** `name` + NUL in the reused buffer (a name from getdents is at most 255 bytes). */
  private z(name: Uint8Array): Uint8Array {
    const z = this.zname;
    z.set(name);
    z[name.length] = 0;
    return z;
  }

  /**
   * Opens a deferred file for reading (O_NOFOLLOW) and gives back its directory: an fd
   * (the caller's), or -errno. A name that now holds another file than the one the walk
   * saw (replaced since) is refused with -ESTALE: its ENTRY described the old one.
   */
  openFile(at: DeferredOpen): number {
    let fd = libc.openat(at.dir.fd, this.z(at.name), O.RDONLY | O.CLOEXEC | O.NOFOLLOW | O.NOCTTY, 0);
    if (fd < 0) fd = -errno();
    else if (libc.statx(fd, EMPTY, AT.EMPTY_PATH, STATX_MASK.INO, this.stx) !== 0) {
      const e = errno();
      libc.close(fd);
      fd = -e;
    } else {
      const v = this.stxView;
      const dev = v.getUint32(STATX.devMajor, true) * 65536 + v.getUint32(STATX.devMinor, true);
      if (Number(v.getBigUint64(STATX.ino, true)) !== at.ino || dev !== at.dev) {
        libc.close(fd);
        fd = -E.ESTALE;
      }
    }
    this.release(at);
    return fd;
  }

  /** Gives back a deferred file's directory without opening it (skipped, or the walk is over). */
  release(at: DeferredOpen): void {
    const d = at.dir;
    if (d.refs <= 0) return;
    d.refs--;
    if (d.refs === 0 && d.left) {
      libc.close(d.fd);
      this.lingering.delete(d);
    }
  }

  /** Drops an item the caller will not use: its fd closed, or its directory given back. */
  discard(item: ScanItem): void {
    if (item.fd >= 0) libc.close(item.fd);
    item.fd = -1;
    if (item.at !== undefined) this.release(item.at);
    item.at = undefined;
  }

  /** Closes every directory fd still open (an aborted walk). */
  close(): void {
    // refs = 0: a later release() of one of their files must not close the fd again.
    for (const d of this.stack) {
      d.ref.refs = 0;
      libc.close(d.ref.fd);
    }
    for (const d of this.lingering) {
      d.refs = 0;
      libc.close(d.fd);
    }
    this.lingering.clear();
    this.stack.length = 0;
    if (this.single !== undefined && this.single.fd >= 0) libc.close(this.single.fd);
    this.single = undefined;
    this.done = true;
  }
}
