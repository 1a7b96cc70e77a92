/**
 * The receiver's destination directory, confined: every path from the network is
 * resolved beneath DST and never through a symlink.
 *
 * Owns: the DST root fd and a cache of directory fds, each opened with openat2(
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) relative to the root, so
 * `..`, absolute paths, symlinks already in DST (or planted by the sender earlier in the
 * session) and /proc magic links cannot lead outside. Everything else the receiver does
 * is relative to one of these fds with a single, checked name component, by calls that
 * do not follow a final symlink (O_TMPFILE/O_EXCL creation, linkat without
 * AT_SYMLINK_FOLLOW, renameat, mkdirat, symlinkat, utimensat with AT_SYMLINK_NOFOLLOW).
 * A cached fd is closed only when no operation in flight uses it (reference counts).
 * Never creates a path's missing parents implicitly: the sender sends directories first.
 *
 * Staging: a directory the sender announces that does not exist yet in DST is created
 * under a temporary name (`.usync-tmp-...`) and renamed to its real name when the session
 * ends (finishStaging). Everything inside it can then be created directly under its final
 * name, without a temporary file and a rename per file, and still nothing is visible
 * under a final path before it is complete: the receiver removes what is incomplete before
 * the rename (after a failure too, so complete files are kept, as elsewhere).
 */
import { mkdirSync, rmdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { cstr, errno, libc, openat2 } from "../../ffi/libc.ts";
import { E } from "../../ffi/errno.ts";
import { AT, O, OPEN_HOW, RENAME, RESOLVE, STATX, STATX_MASK } from "../../ffi/structs.ts";
import { removeTree } from "../copy/remove.ts";
import { DIRENT64 } from "../copy/sysconst.ts";
import { ProtocolError, SysError } from "../errors.ts";

export class DirHandle {
  refs = 0;
  closed = false;
  /** Recency for eviction. */
  used = 0;
  /** Inside a directory still received under a temporary name: create entries directly. */
  staged = false;
  constructor(readonly fd: number, readonly rel: string) {}
}

interface StagingRoot {
  rel: string;
  parent: DirHandle;
  name: string;
  tmp: string;
  handle: DirHandle;
}

const RESOLVE_CONFINED = RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS;

/**
 * Defence in depth on top of wire.ts's checkRelativePath (which every path from the
 * network already passed): relative, no empty, "." or ".." component, no NUL. Cheap,
 * because it runs for every entry; the kernel (openat2 RESOLVE_BENEATH) is the last word.
 */
export function checkConfinedPath(rel: string): void {
  if (rel.length === 0 || rel.charCodeAt(0) === 0x2f || rel.includes("\0")) throw new ProtocolError("path", `bad path ${JSON.stringify(rel)}`);
  let start = 0;
  for (let i = 0; i <= rel.length; i++) {
    if (i < rel.length && rel.charCodeAt(i) !== 0x2f) continue;
    const len = i - start;
    if (len === 0 || (len === 1 && rel.charCodeAt(start) === 0x2e) || (len === 2 && rel.charCodeAt(start) === 0x2e && rel.charCodeAt(start + 1) === 0x2e)) {
      throw new ProtocolError("path", `bad path ${JSON.stringify(rel)}`);
    }
    start = i + 1;
  }
}

/** A checked single path component: what every *at call below DST gets as its name. */
export function checkComponent(name: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new ProtocolError("path", `bad name component ${JSON.stringify(name)}`);
  }
  return name;
}

export class Destination {
  readonly rootFd: number;
  private readonly cache = new Map<string, DirHandle>();
  private readonly how = new BigUint64Array(OPEN_HOW.size / 8);
  private readonly maxCached: number;
  private tick = 0;
  private readonly staging: StagingRoot[] = [];
  private readonly stx = new Uint8Array(STATX.size);
  readonly rootHandle: DirHandle;
  /** The first directory of `root` this constructor made (mkdir -p), if it made any. */
  private readonly created: string | undefined;

  /** Opens (creating it if missing, like mkdir -p) the directory files are received into. */
  constructor(readonly root: string, maxCached = 1024) {
    this.maxCached = maxCached;
    try {
      this.created = mkdirSync(root, { recursive: true });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SysError("mkdir", err.errno !== undefined ? -err.errno : E.EIO, root);
    }
    const fd = libc.open(cstr(root), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    if (fd < 0) throw new SysError("open", errno(), root);
    this.rootFd = fd;
    this.rootHandle = new DirHandle(fd, "");
    this.how[OPEN_HOW.flags / 8] = BigInt(O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    this.how[OPEN_HOW.mode / 8] = 0n;
    this.how[OPEN_HOW.resolve / 8] = BigInt(RESOLVE_CONFINED);
  }

  /**
   * The directory `rel` ("" = DST itself), opened beneath DST without following any
   * symlink. The caller must release() it (after the operations using it completed).
   */
  dir(rel: string): DirHandle {
    if (rel === "") {
      this.rootHandle.refs++;
      return this.rootHandle;
    }
    let h = this.cache.get(rel);
    if (h !== undefined) {
      h.used = ++this.tick;
      h.refs++;
      return h;
    }
    checkConfinedPath(rel);
    // Through the parent's handle, so a directory inside a staging tree is found too.
    const i = rel.lastIndexOf("/");
    const p = this.dir(i < 0 ? "" : rel.slice(0, i));
    try {
      const fd = openat2(p.fd, cstr(checkComponent(rel.slice(i + 1))), this.how, OPEN_HOW.size);
      if (fd < 0) throw new SysError("open", errno(), rel);
      h = new DirHandle(fd, rel);
      h.staged = p.staged;
    } finally {
      this.release(p);
    }
    h.used = ++this.tick;
    h.refs++;
    this.cache.set(rel, h);
    this.evict();
    return h;
  }

  /**
   * Makes directory `rel` exist and returns its handle (release it). An existing
   * directory is used as it is (a symlink or a file there is an error: ELOOP/ENOTDIR).
   * A new one under a final directory is staged: created as `tmpName()` and renamed at
   * the end; a new one inside a staged tree is created directly. New directories are
   * private (0700) until their real mode is applied.
   */
  makeDir(rel: string, tmpName: () => string): DirHandle {
    const { dir: p, name } = this.parent(rel);
    try {
      const c = cstr(name);
      if (p.staged) {
        if (libc.mkdirat(p.fd, c, 0o700) !== 0 && errno() !== E.EEXIST) throw new SysError("mkdir", errno(), rel);
        return this.dir(rel);
      }
      if (libc.statx(p.fd, c, AT.SYMLINK_NOFOLLOW, STATX_MASK.TYPE, this.stx) === 0) return this.dir(rel);
      const e = errno();
      if (e !== E.ENOENT) throw new SysError("stat", e, rel);
      const tmp = tmpName();
      const t = cstr(tmp);
      if (libc.mkdirat(p.fd, t, 0o700) !== 0) throw new SysError("mkdir", errno(), rel);
      const fd = openat2(p.fd, t, this.how, OPEN_HOW.size);
      if (fd < 0) {
        const e2 = errno();
        libc.unlinkat(p.fd, t, AT.REMOVEDIR);
        throw new SysError("open", e2, rel);
      }
      const h = new DirHandle(fd, rel);
      h.staged = true;
      h.used = ++this.tick;
      // Pinned (never evicted) until finishStaging: the tree is only reachable through it.
      h.refs += 2;
      p.refs++;
      this.cache.set(rel, h);
      this.staging.push({ rel, parent: p, name, tmp, handle: h });
      return h;
    } finally {
      this.release(p);
    }
  }

  /** Directories still under a temporary name. */
  get stagedCount(): number {
    return this.staging.length;
  }

  /**
   * Renames every staged directory to its real name (RENAME_NOREPLACE: a name that
   * appeared meanwhile is not replaced; that directory's tree is removed and reported).
   * Call when nothing incomplete is left inside them. Returns the failures.
   */
  finishStaging(): { rel: string; error: SysError }[] {
    const failed: { rel: string; error: SysError }[] = [];
    for (const r of this.staging) {
      const t = cstr(r.tmp);
      const n = cstr(r.name);
      let rc = libc.renameat2(r.parent.fd, t, r.parent.fd, n, RENAME.NOREPLACE);
      if (rc !== 0 && errno() === E.EINVAL) rc = libc.renameat2(r.parent.fd, t, r.parent.fd, n, 0);
      if (rc !== 0) {
        failed.push({ rel: r.rel, error: new SysError("rename", errno(), r.rel) });
        // Best effort: what cannot be removed stays, under its temporary name.
        removeTree(r.parent.fd, t, r.tmp, () => {});
      }
    }
    for (const r of this.staging) {
      this.release(r.handle);
      this.release(r.parent);
    }
    this.staging.length = 0;
    for (const h of this.cache.values()) h.staged = false;
    return failed;
  }

  /** The parent directory of `rel` and the last component. */
  parent(rel: string): { dir: DirHandle; name: string } {
    checkConfinedPath(rel);
    const i = rel.lastIndexOf("/");
    const name = checkComponent(i < 0 ? rel : rel.slice(i + 1));
    return { dir: this.dir(i < 0 ? "" : rel.slice(0, i)), name };
  }

  release(h: DirHandle): void {
    h.refs--;
    if (h.refs === 0 && h.closed === false && h !== this.rootHandle && !this.cache.has(h.rel)) this.closeHandle(h);
  }

  /** Drops a cached handle (e.g. the directory was replaced): closed once unused. */
  forget(rel: string): void {
    const h = this.cache.get(rel);
    if (h === undefined) return;
    this.cache.delete(rel);
    if (h.refs === 0) this.closeHandle(h);
  }

  /** Over the cap: close the least recently used quarter of the unused handles. */
  private evict(): void {
    if (this.cache.size <= this.maxCached) return;
    const idle = [...this.cache.values()].filter((h) => h.refs === 0).sort((a, b) => a.used - b.used);
    for (const h of idle.slice(0, Math.max(1, this.cache.size - (this.maxCached * 3) / 4))) {
      this.cache.delete(h.rel);
      this.closeHandle(h);
    }
  }

  private closeHandle(h: DirHandle): void {
    if (h.closed) return;
    h.closed = true;
    libc.close(h.fd);
  }

  /** Closes every fd. Only when no operation is in flight. */
  /**
   * Closes, then removes the directories the constructor made, as long as they are still
   * empty (a receiver that never got to listen leaves no DST behind).
   */
  closeAndUnmake(): void {
    this.close();
    if (this.created === undefined) return;
    const top = resolve(this.created);
    for (let d = resolve(this.root); ; d = dirname(d)) {
      try {
        rmdirSync(d);
      } catch {
        return;
      }
      if (d === top || dirname(d) === d) return;
    }
  }

  close(): void {
    for (const h of this.cache.values()) this.closeHandle(h);
    this.cache.clear();
    if (!this.rootHandle.closed) {
      this.rootHandle.closed = true;
      libc.close(this.rootFd);
    }
  }
}

/**
 * Every name in directory `fd` ("." and ".." left out), each NUL-terminated; throws
 * SysError (the caller knows the directory's path and reports it).
 */
export function readNames(fd: number): Uint8Array[] {
  const buf = new Uint8Array(32 * 1024);
  const v = new DataView(buf.buffer);
  const names: Uint8Array[] = [];
  for (;;) {
    const n = libc.getdents64(fd, buf, buf.length);
    if (n < 0) throw new SysError("getdents64", errno());
    if (n === 0) break;
    for (let at = 0; at < n;) {
      const reclen = v.getUint16(at + DIRENT64.reclen, true);
      const name = at + DIRENT64.name;
      let end = name;
      while (buf[end] !== 0) end++;
      const len = end - name;
      const dot = buf[name] === 0x2e && (len === 1 || (len === 2 && buf[name + 1] === 0x2e));
      if (!dot) names.push(buf.slice(name, end + 1));
      at += reclen;
    }
  }
  return names;
}
