/**
 * The per-thread copy engine: one Copier per thread (each Worker, and the main thread
 * between event-loop turns), each with its own io_uring ring, buffers and temp-name
 * generator. It processes the tasks the coordinator (engine.ts) hands it, one at a time:
 *  - a directory task reads the directory (scan.ts), creates new subdirectories in DST
 *    and reports them (they become tasks for any thread), recreates symlinks and special
 *    files, copies regular files through the batch pipeline below (sharing half of each
 *    big directory fill with other threads as chunk tasks), and runs --delete for that
 *    directory;
 *  - a chunk task copies a list of regular files of one directory;
 *  - a file task copies one named file (a big one another thread offered, the first name
 *    of a hard-link group, or a single-file SRC).
 *
 * The batch pipeline (FileBatch) is where the time goes for small files: up to
 * --queue-depth files of one directory are opened through the ring in one submission
 * (inline when cached, in parallel on io-wq when not), fstat'ed, planned (plan.ts), read
 * whole into an arena through the ring in a second submission, then written to DST one
 * after another, each as soon as its own read is in (so writing overlaps the reads still
 * in flight), with plain syscalls (creating files punts to io-wq threads in io_uring;
 * done inline it is cheaper, see docs/DESIGN.md), given their metadata (metadata.ts) and
 * committed atomically (place.ts). Sources are closed through the ring, piggybacking on
 * the next submission. Bigger files go through datapath.ts.
 *
 * Owns: per-entry decisions and their order, per-file error handling (report and go on;
 * ENOSPC stops the run), counters. Never prints, never talks to other threads itself:
 * everything goes out through the `emit` callback the host provides.
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { E } from "../../ffi/errno.ts";
import { addressOf, errno, libc } from "../../ffi/libc.ts";
import { AT, O, S, STATX } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import { openRing } from "../uring/backend.ts";
import { prepClose, prepOpenat, prepRead, prepStatx } from "../uring/prep.ts";
import { UNTRACKED, type CompletionTarget, type Ring } from "../uring/ring.ts";
import { chooseDataPath, DataMover, looksSparse, writeAll, type DataPath } from "./datapath.ts";
import { FileChangedError, errorInfo, isFatalErrno } from "./errors.ts";
import { Filter } from "./filter.ts";
import { applyFileMeta, applyPathMeta, createMode, procPath, XattrCopier, type MetaPolicy } from "./metadata.ts";
import { Placer } from "./place.ts";
import { removeTree } from "./remove.ts";
import { decideFile, FIX_MODE, FIX_OWNER, metaFixes, sha256Fd, type Decision, type Facts } from "./plan.ts";
import {
  ABORT, C, DstState, PATH_SLOTS, type ChangeAction, type ChunkTask, type CopierConfig, type CopierEvent, type DirTask, type FileTask,
} from "./protocol.ts";
import { DirReader } from "./scan.ts";
import {
  decodePath, fstatx, fsType, inodeOrderHelps, isPseudoFs, canClone, joinRel, lstatAt, makedev, openDirBeneath,
  readlinkAt, showPath, StatBuf, supportsNowait, Times, zpath, DIR_FLAGS,
} from "./sys.ts";
import { DT, FS_MAGIC } from "./sysconst.ts";

/** io-wq workers for bounded work (uncached opens) per ring: see the constructor. */
const IOWQ_BOUNDED = 64;

/** A directory fill with at least this many regular files is shared with other threads. */
const CHUNK_MIN = 256;

/**
 * A first getdents64 slower than this (ms) means the directory came from the device, not
 * the cache; after PREFETCH_AFTER of them the thread reads new subdirectories ahead.
 */
const SLOW_FILL_MS = 0.5;
const PREFETCH_AFTER = 2;
/** "/<this>" is looked up (and normally absent) in a new source subdirectory to read it ahead. */
const PREFETCH_NAME = new TextEncoder().encode("/.usync-prefetch\0");

/** NUL-terminated names packed back to back, grown as needed. */
class NameList {
  buf = new Uint8Array(64 * 1024);
  len = 0;

  push(zname: Uint8Array): void {
    if (this.len + zname.length > this.buf.length) {
      const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + zname.length));
      b.set(this.buf.subarray(0, this.len));
      this.buf = b;
    }
    this.buf.set(zname, this.len);
    this.len += zname.length;
  }

  take(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    this.len = 0;
    return out;
  }
}

/** Bytes of arena per thread for whole-file ring reads. */
const ARENA_BYTES = 32 << 20;

const OPEN_SRC = O.RDONLY | O.CLOEXEC | O.NOFOLLOW;

/** How a batch slot's data will move. */
const M_NONE = 0;
const M_RING = 1;
const M_SYNC = 2;

/** What the copier is working in: one source directory and its DST counterpart. */
interface DirCtx {
  srcfd: number;
  dstfd: number;
  rel: Uint8Array;
  state: DstState;
  pseudo: boolean;
  srcFs: number;
  dstFs: number;
  /** st_dev of the source directory. */
  srcDev: number;
  /** st_dev of the DST directory (device pairs remember which data paths fail). */
  dstDev: number;
  /** The DST directory is setgid: new files there take its group, not ours. */
  dstSgid: boolean;
  taskId: number;
  /** Source reads complete inline in io_uring (1), punt to io-wq (0: read them with pread), unknown (-1). */
  nowait: number;
  /** A file task for the first name of a hard-link group: nlink > 1 is expected. */
  linkTask: boolean;
  /** No offloading (file tasks themselves). */
  noOffload: boolean;
}

function typeName(dt: number): string {
  switch (dt) {
    case DT.FIFO: return "FIFO";
    case DT.SOCK: return "socket";
    case DT.CHR: return "character device";
    case DT.BLK: return "block device";
    default: return "special file";
  }
}

function dtOfMode(mode: number): number {
  switch (mode & S.IFMT) {
    case S.IFREG: return DT.REG;
    case S.IFDIR: return DT.DIR;
    case S.IFLNK: return DT.LNK;
    case S.IFIFO: return DT.FIFO;
    case S.IFSOCK: return DT.SOCK;
    case S.IFCHR: return DT.CHR;
    case S.IFBLK: return DT.BLK;
    default: return DT.UNKNOWN;
  }
}

function factsOf(st: StatBuf): Facts {
  return { type: st.type, size: st.size, mtimeSec: st.mtimeSec, mtimeNsec: st.mtimeNsec, perm: st.perm, uid: st.uid, gid: st.gid };
}

export class Copier {
  readonly cfg: CopierConfig;
  readonly ring: Ring;
  readonly counters: Float64Array;
  private readonly abort: Int32Array;
  private readonly emit: (ev: CopierEvent) => void;
  private readonly filter: Filter;
  readonly mover: DataMover;
  private readonly placer: Placer;
  private readonly xa: XattrCopier | null;
  private readonly policy: MetaPolicy;
  private readonly times = new Times();
  private readonly reader = new DirReader();
  private readonly delReader = new DirReader(32 * 1024);
  /** Events of the current directory task that leave work for others. */
  private handedOn = 0;
  /** The last directory task gave its directory its final mode and times itself. */
  lastFinalized = false;
  /** Names being gathered for a chunk task. */
  private readonly chunkOut = new NameList();
  private readonly srcRoot: number;
  private readonly dstRoot: number;
  private readonly st = new StatBuf();
  private readonly dst = new StatBuf();
  private readonly linkBuf = new Uint8Array(4097);
  readonly batch: FileBatch;
  private xattrWarned = false;
  /** Directories whose first getdents64 was slow (uncached); see prefetchDir. */
  private slowFills = 0;
  private readonly prefetchOn: boolean;
  /** "name/.usync-prefetch" for the statx of prefetchDir (copied by the kernel at submission). */
  private readonly prefetchPath = new Uint8Array(512);
  /** Where those statx calls write: never read (a shared scratch, kept for the ring's life). */
  private readonly prefetchStat = new Uint8Array(STATX.size);
  /** Lookahead statx calls still in flight: close() waits for them (they write prefetchStat). */
  private prefetching = 0;
  private readonly prefetchDone: CompletionTarget = { onCompletion: () => { this.prefetching--; } };

  /**
   * `onMain`: this copier runs on the main thread, between event-loop turns. It then
   * hands every big file to a worker (a long copy_file_range would keep signals and
   * worker messages waiting).
   */
  constructor(cfg: CopierConfig, counters: Float64Array, abort: Int32Array, emit: (ev: CopierEvent) => void, readonly onMain = false) {
    this.cfg = cfg;
    this.counters = counters;
    this.abort = abort;
    // Count what a directory task hands on: a directory with nothing pending elsewhere is
    // finished by the task itself (see finishLeaf).
    this.emit = (ev) => {
      if (ev.e === "subdir" || ev.e === "offload" || ev.e === "chunk" || ev.e === "link") this.handedOn++;
      emit(ev);
    };
    this.filter = new Filter(cfg.exclude, cfg.include);
    this.ring = openRing({ entries: cfg.queueDepth, backend: cfg.syncBackend ? "sync" : undefined });
    // An uncached source OPENAT goes to io-wq, which runs at most 4 x CPUs of them at once
    // by default (8 here): a cold batch of 256 opens then waits on 8 inode reads at a time.
    // More in flight keeps the disk busy (docs/DESIGN.md: cold small100k -8..-30%). Best
    // effort: an old kernel without the call keeps its default.
    this.ring.backend.setIowqMaxWorkers(Math.min(IOWQ_BOUNDED, Math.max(1, cfg.queueDepth)), 0);
    this.mover = new DataMover({ chunk: cfg.chunk, splice: cfg.splice, abort });
    this.placer = new Placer(cfg.token, cfg.tmpfile);
    this.xa = cfg.xattrs ? new XattrCopier() : null;
    this.policy = { owner: cfg.owner, xattrs: cfg.xattrs, umask: cfg.umask, euid: cfg.euid, egid: cfg.egid };
    this.srcRoot = this.openRoot(cfg.srcRoot, false);
    this.dstRoot = this.openRoot(cfg.dstRoot, cfg.dryRun);
    this.batch = new FileBatch(this, Math.max(1, cfg.queueDepth));
    // The synchronous emulation would run the lookahead statx inline: all cost, no overlap.
    this.prefetchOn = cfg.prefetchDirs !== "off" && this.ring.kind !== "sync";
    if (cfg.prefetchDirs === "always") this.slowFills = PREFETCH_AFTER;
  }

  /** The roots are the user's choice: a symlink there is followed. A dry run's DST may not exist (-1). */
  private openRoot(path: string, mayBeMissing: boolean): number {
    const fd = libc.open(zpath(new TextEncoder().encode(path)), DIR_FLAGS & ~O.NOFOLLOW, 0);
    if (fd >= 0) return fd;
    const e = errno();
    if (mayBeMissing && e === E.ENOENT) return -1;
    throw new SysError("open", e, path);
  }

  /** Per source device: can its files be read through the ring without io-wq? */
  private readonly nowaitByDev = new Map<number, boolean>();

  nowaitReads(ctx: DirCtx, fd: number, dev: number): boolean {
    if (ctx.nowait < 0) {
      let v = this.nowaitByDev.get(dev);
      if (v === undefined) {
        v = this.cfg.syncBackend || supportsNowait(fd);
        this.nowaitByDev.set(dev, v);
      }
      ctx.nowait = v ? 1 : 0;
    }
    return ctx.nowait === 1;
  }

  private devOf(fd: number): number {
    return fd >= 0 && fstatx(fd, this.dst) === 0 ? this.dst.dev : 0;
  }

  get aborted(): boolean {
    return Atomics.load(this.abort, 0) !== ABORT.none;
  }

  // ---- reporting ------------------------------------------------------------------------

  srcPath(rel: Uint8Array, name?: Uint8Array): string {
    return showPath(this.cfg.srcShow, name === undefined ? rel : joinRel(rel, name));
  }

  dstPath(rel: Uint8Array, name?: Uint8Array): string {
    return showPath(this.cfg.dstShow, name === undefined ? rel : joinRel(rel, name));
  }

  /** Report a failed entry; ENOSPC and friends stop the whole run. */
  fail(syscall: string, err: number, path: string, counts = true): void {
    const e = err < 0 ? -err : err;
    if (e === E.ECANCELED && this.aborted) return;
    this.emit({ e: "error", info: errorInfo(new SysError(syscall, e, path), path) });
    if (counts) this.counters[C.failed]++;
    if (isFatalErrno(e)) Atomics.store(this.abort, 0, ABORT.fatal);
  }

  changed(path: string, expected: number, seen: number, grew: boolean): void {
    this.emit({ e: "error", info: errorInfo(new FileChangedError(path, expected, seen, grew), path) });
    this.counters[C.failed]++;
  }

  change(action: ChangeAction, rel: Uint8Array, name: Uint8Array | null, dir = false): void {
    const p = decodePath(name === null ? rel : joinRel(rel, name));
    this.emit({ e: "change", action, path: dir ? `${p}/` : p });
  }

  // ---- tasks ----------------------------------------------------------------------------

  /** Process a directory task to the end (worker threads). */
  runDir(task: DirTask): boolean {
    const it = this.runDirSteps(task);
    for (;;) {
      const r = it.next();
      if (r.done === true) return r.value;
    }
  }

  /**
   * The same, one batch at a time: yields after each batch of files, so the main thread
   * can interleave its event loop (worker messages, signals, progress) between batches.
   */
  *runDirSteps(task: DirTask): Generator<void, boolean, void> {
    const cfg = this.cfg;
    this.handedOn = 0;
    this.lastFinalized = false;
    const fds = this.openDirPair(task.rel, task.state);
    if (fds === null) return false;
    const [srcfd, dstfd] = fds;
    let state = task.state;
    // An existing but empty directory needs no lookups.
    if (state === DstState.Existed && isEmptyDir(dstfd, this.reader)) state = DstState.Fresh;
    const hint = task.fs;
    const fs = hint.srcFs !== 0 ? hint.srcFs : fsType(srcfd);
    let dstDev = hint.dstDev;
    let dstSgid = hint.dstSgid;
    if (dstfd >= 0 && (dstDev === 0 || dstSgid < 0)) {
      const ok = fstatx(dstfd, this.dst) === 0;
      dstDev = ok ? this.dst.dev : 0;
      dstSgid = ok && (this.dst.mode & S.ISGID) !== 0 ? 1 : 0;
    }
    const ctx: DirCtx = {
      srcfd, dstfd, rel: task.rel, state, pseudo: isPseudoFs(fs), srcFs: fs,
      srcDev: hint.srcDev !== 0 ? hint.srcDev : this.devOf(srcfd),
      dstFs: dstfd < 0 ? 0 : hint.dstFs !== 0 ? hint.dstFs : fsType(dstfd),
      dstDev, dstSgid: dstSgid === 1,
      nowait: -1, taskId: task.id, linkTask: false, noOffload: cfg.jobs < 2 && !this.onMain,
    };
    if (this.xa !== null && dstfd >= 0 && !cfg.dryRun) this.xattrs(this.xa.copyFd(srcfd, dstfd), this.dstPath(task.rel));
    let complete = true;
    const byInode = inodeOrderHelps(fs);
    const r = this.reader;
    r.open(srcfd);
    let first = true;
    const chunk = this.chunkOut;
    try {
      for (;;) {
        if (this.aborted) {
          complete = false;
          break;
        }
        const t0 = first && this.prefetchOn && byInode ? performance.now() : 0;
        const n = r.fill(byInode);
        if (t0 !== 0 && performance.now() - t0 > SLOW_FILL_MS) this.slowFills++;
        first = false;
        if (n < 0) {
          this.fail("getdents", n, this.srcPath(task.rel));
          complete = false;
          break;
        }
        if (n === 0) break;
        // A big directory: share its regular files with other threads, a fill at a time
        // (in inode order, the second half goes out).
        let keep = n;
        if (cfg.jobs > 1 && n >= CHUNK_MIN) {
          let regs = 0;
          for (let i = 0; i < n; i++) if (r.type(r.order[i]) === DT.REG) regs++;
          keep = regs >= CHUNK_MIN ? regs >>> 1 : n;
          chunk.len = 0;
        }
        let regSeen = 0;
        for (let i = 0; i < n; i++) {
          const rec = r.order[i];
          let type = r.type(rec);
          if (type === DT.REG && keep < n && regSeen++ >= keep) {
            if (this.filter.empty || !this.filter.excluded(decodePath(joinRel(task.rel, r.name(rec))), false)) chunk.push(r.zname(rec));
            continue;
          }
          if (type === DT.UNKNOWN) {
            const e = lstatAt(srcfd, r.nameAddr(rec), this.st);
            if (e < 0) {
              if (e !== -E.ENOENT) this.fail("stat", e, this.srcPath(task.rel, r.name(rec)));
              continue;
            }
            type = dtOfMode(this.st.mode);
          }
          if (!this.filter.empty && this.filter.excluded(decodePath(joinRel(task.rel, r.name(rec))), type === DT.DIR)) continue;
          if (type === DT.REG) {
            if (this.batch.add(ctx, r.zname(rec), r.nameAddr(rec), null)) {
              this.batch.flush();
              yield;
            }
          } else if (type === DT.DIR) this.subdir(ctx, r.name(rec), r.zname(rec));
          else if (type === DT.LNK) this.symlink(ctx, r.name(rec), r.zname(rec));
          else this.special(ctx, r.name(rec), r.zname(rec), type);
        }
        if (keep < n && chunk.len > 0) {
          this.emit({ e: "chunk", parent: task.id, rel: task.rel, state: ctx.state, names: chunk.take() });
        }
        this.batch.flush();
        yield;
      }
      if (cfg.delete && complete && ctx.state === DstState.Existed && !this.aborted) this.deletePass(ctx);
      if (this.handedOn === 0 && dstfd >= 0 && !cfg.dryRun && !this.aborted) {
        this.batch.flush();
        this.lastFinalized = this.finishLeaf(ctx, task);
      }
    } finally {
      this.batch.reset();
      this.ring.submit();
      libc.close(srcfd);
      if (dstfd >= 0) libc.close(dstfd);
      this.publishStats();
    }
    return complete;
  }

  /**
   * A directory whose task handed nothing on is complete when the task ends: give it its
   * owner, mode and times now, through the fd already open (the coordinator would reopen
   * it), and with --fsync make its entries durable. Returns false when that failed (the
   * coordinator then tries again and reports it).
   */
  private finishLeaf(ctx: DirCtx, task: DirTask): boolean {
    const s = task.stat;
    const fd = ctx.dstfd;
    const ownerKnown = task.state === DstState.Fresh && !ctx.dstSgid;
    if (this.cfg.owner && !(ownerKnown && s.uid === this.cfg.euid && s.gid === this.cfg.egid) && libc.fchown(fd, s.uid, s.gid) !== 0) return false;
    if (libc.fchmod(fd, s.mode & 0o7777) !== 0) return false;
    if (libc.futimens(fd, this.times.fromSnapshot(s).words) !== 0) return false;
    if (this.cfg.fsync && libc.fsync(fd) !== 0) return false;
    return true;
  }

  /** Copy a chunk of a big directory's regular files (see ChunkTask). */
  runChunk(task: ChunkTask): boolean {
    const it = this.runChunkSteps(task);
    for (;;) {
      const r = it.next();
      if (r.done === true) return r.value;
    }
  }

  *runChunkSteps(task: ChunkTask): Generator<void, boolean, void> {
    const fds = this.openDirPair(task.rel, task.state);
    if (fds === null) return false;
    const [srcfd, dstfd] = fds;
    const ctx = this.lookedUpCtx(srcfd, dstfd, task.rel, task.state, task.dirId, false, this.cfg.jobs < 2 && !this.onMain);
    const names = task.names;
    const base = addressOf(names);
    try {
      let start = 0;
      for (let i = 0; i < names.length; i++) {
        if (names[i] !== 0) continue;
        if (this.aborted) break;
        if (this.batch.add(ctx, names.subarray(start, i + 1), base + start, null)) {
          this.batch.flush();
          yield;
        }
        start = i + 1;
      }
      this.batch.flush();
    } finally {
      this.batch.reset();
      this.ring.submit();
      libc.close(srcfd);
      if (dstfd >= 0) libc.close(dstfd);
      this.publishStats();
    }
    return true;
  }

  runFile(task: FileTask): boolean {
    const fds = this.openDirPair(task.dirRel, task.state);
    if (fds === null) return false;
    const [srcfd, dstfd] = fds;
    // A file task never defers to the coordinator again (linkTask): it copies what it was given.
    const ctx = this.lookedUpCtx(srcfd, dstfd, task.dirRel, task.state, task.id, true, true);
    const zname = zpath(task.name);
    const failedBefore = this.counters[C.failed];
    try {
      this.batch.add(ctx, zname, 0, task.dstName === null ? null : zpath(task.dstName));
      this.batch.flush();
    } finally {
      this.batch.reset();
      this.ring.submit();
      libc.close(srcfd);
      if (dstfd >= 0) libc.close(dstfd);
      this.publishStats();
    }
    return this.counters[C.failed] === failedBefore;
  }

  /**
   * Opens directory `rel` beneath SRC and, unless it is absent there, beneath DST.
   * Null (the failure recorded, nothing left open) when either cannot be opened.
   */
  private openDirPair(rel: Uint8Array, state: DstState): [number, number] | null {
    const srcfd = openDirBeneath(this.srcRoot, rel);
    if (srcfd < 0) {
      this.fail("open", srcfd, this.srcPath(rel));
      return null;
    }
    if (state === DstState.Absent) return [srcfd, -1];
    const dstfd = openDirBeneath(this.dstRoot, rel);
    if (dstfd < 0) {
      this.fail("open", dstfd, this.dstPath(rel));
      libc.close(srcfd);
      return null;
    }
    return [srcfd, dstfd];
  }

  /** A directory context from fresh lookups (chunk and file tasks carry no file-system hints). */
  private lookedUpCtx(
    srcfd: number, dstfd: number, rel: Uint8Array, state: DstState, taskId: number, linkTask: boolean, noOffload: boolean,
  ): DirCtx {
    const fs = fsType(srcfd);
    return {
      srcfd, dstfd, rel, state, pseudo: isPseudoFs(fs), srcFs: fs,
      srcDev: this.devOf(srcfd), dstFs: dstfd >= 0 ? fsType(dstfd) : 0, dstDev: this.devOf(dstfd), dstSgid: true, nowait: -1,
      taskId, linkTask, noOffload,
    };
  }

  private xattrs(r: { syscall: string; err: number }, path: string): void {
    if (r.err !== 0) this.fail(r.syscall, r.err, path, false);
    if (this.xa !== null && this.xa.unsupported && !this.xattrWarned) {
      this.xattrWarned = true;
      this.emit({ e: "warn", msg: `extended attributes are not supported on the destination file system (${this.cfg.dstShow}); not copied` });
    }
  }

  // ---- directories ----------------------------------------------------------------------

  private subdir(ctx: DirCtx, name: Uint8Array, zname: Uint8Array): void {
    const st = this.st;
    const e = lstatAt(ctx.srcfd, zname, st);
    if (e < 0) {
      if (e !== -E.ENOENT) this.fail("stat", e, this.srcPath(ctx.rel, name));
      return;
    }
    if (st.type !== S.IFDIR) return; // replaced meanwhile: it will be seen as what it is next run
    const rel = joinRel(ctx.rel, name);
    let state: DstState | -1;
    if (ctx.state === DstState.Absent) {
      this.change("copy", rel, null, true);
      state = DstState.Absent;
    } else if (ctx.state === DstState.Fresh) {
      state = this.mkdir(ctx, name, zname);
      if (state < 0) return;
    } else {
      const d = lstatAt(ctx.dstfd, zname, this.dst);
      if (d === 0 && this.dst.type === S.IFDIR) state = DstState.Existed;
      else if (d === 0 || d === -E.ENOENT) {
        if (this.cfg.dryRun) {
          this.change(d === 0 ? "update" : "copy", rel, null, true);
          state = DstState.Absent;
        } else {
          // A file or symlink where SRC has a directory: replace it (a symlink is removed,
          // never followed).
          if (d === 0 && libc.unlinkat(ctx.dstfd, zname, 0) !== 0) {
            this.fail("unlink", -errno(), this.dstPath(ctx.rel, name));
            return;
          }
          state = this.mkdir(ctx, name, zname);
          if (state < 0) return;
        }
      } else {
        this.fail("stat", d, this.dstPath(ctx.rel, name));
        return;
      }
    }
    if (state < 0) return;
    this.counters[C.dirs]++;
    // The child shares the parent's file systems unless it is a mount point (source) or
    // was there before (destination: it may be one).
    const sameSrc = st.dev === ctx.srcDev;
    // A new directory inherits setgid from its parent (mkdir does that), so its files do too.
    const fresh = state === DstState.Fresh;
    const fs = {
      srcDev: sameSrc ? ctx.srcDev : 0, srcFs: sameSrc ? ctx.srcFs : 0,
      dstDev: fresh ? ctx.dstDev : 0, dstFs: fresh ? ctx.dstFs : 0, dstSgid: fresh ? (ctx.dstSgid ? 1 : 0) : -1,
    };
    this.emit({ e: "subdir", parent: ctx.taskId, rel, stat: st.snapshot(), state: state as DstState, fs });
    if (this.prefetchOn && this.slowFills >= PREFETCH_AFTER && sameSrc && !ctx.pseudo) this.prefetchDir(ctx.srcfd, zname);
  }

  /**
   * Read a new source subdirectory ahead of its task: on an uncached source every directory
   * task began with a getdents64 that waited for the device, behind the data reads already
   * queued there (cold medium10k: 15% of each thread's time, docs/DESIGN.md). A statx of a
   * name inside it (normally absent) makes the kernel read its blocks now, on an io-wq
   * thread, while this thread goes on; the result is ignored. Read-only and harmless if the
   * name exists or the directory changed meanwhile. Only where inode order helps (local
   * disks; not tmpfs, which has nothing to read) and once directories were seen uncached.
   */
  private prefetchDir(parentFd: number, zname: Uint8Array): void {
    const nlen = zname.length - 1;
    const p = this.prefetchPath;
    if (nlen + PREFETCH_NAME.length > p.length) return;
    p.set(zname.subarray(0, nlen));
    p.set(PREFETCH_NAME, nlen);
    const ring = this.ring;
    const sqe = ring.getSqe();
    prepStatx(ring, sqe, parentFd, addressOf(p), AT.SYMLINK_NOFOLLOW, 0, addressOf(this.prefetchStat));
    ring.setUserData(sqe, ring.track(this.prefetchDone, 0));
    this.prefetching++;
    // Submitted now: the kernel copies the path during submission, so the buffer is free again.
    ring.submit();
  }

  /** mkdir for a new directory (0700 until its contents are in; engine.ts sets the real mode). */
  private mkdir(ctx: DirCtx, name: Uint8Array, zname: Uint8Array): DstState | -1 {
    if (libc.mkdirat(ctx.dstfd, zname, 0o700) === 0) return DstState.Fresh;
    const e = errno();
    if (e === E.EEXIST && lstatAt(ctx.dstfd, zname, this.dst) === 0 && this.dst.type === S.IFDIR) return DstState.Existed;
    this.fail("mkdir", -e, this.dstPath(ctx.rel, name));
    return -1;
  }

  /** Remove `zname` in `dirfd` and everything under it (never following symlinks). */
  removeTree(dirfd: number, zname: Uint8Array, path: string): boolean {
    return removeTree(dirfd, zname, path, (call, err, p) => this.fail(call, err, p, false));
  }

  /** --delete for one directory: remove from DST what SRC does not have (and no filter protects). */
  private deletePass(ctx: DirCtx): void {
    const r = this.delReader;
    r.open(ctx.dstfd);
    const st = this.dst;
    for (;;) {
      const n = r.fill(false);
      if (n < 0) {
        this.fail("getdents", n, this.dstPath(ctx.rel), false);
        return;
      }
      if (n === 0) return;
      for (let i = 0; i < n; i++) {
        const rec = r.order[i];
        const name = r.name(rec);
        if (this.placer.names.isOurs(name)) continue;
        const zname = r.zname(rec);
        const e = lstatAt(ctx.srcfd, zname, st);
        if (e !== -E.ENOENT) continue; // in SRC (or SRC cannot tell: keep it)
        const isDir = r.type(rec) === DT.DIR;
        if (!this.filter.empty && this.filter.excluded(decodePath(joinRel(ctx.rel, name)), isDir)) continue;
        if (this.cfg.dryRun) this.change("delete", ctx.rel, name, isDir);
        else if (!this.removeTree(ctx.dstfd, zname, this.dstPath(ctx.rel, name))) continue;
        this.counters[C.deleted]++;
      }
    }
  }

  // ---- symlinks and special files -----------------------------------------------------

  /**
   * Look at what DST holds under `zname` before replacing it with a non-regular file.
   * Returns 0 (nothing there), 1 (something to replace), or -1 (stop: conflict/error).
   */
  private dstSlot(ctx: DirCtx, name: Uint8Array, zname: Uint8Array): number {
    if (ctx.state !== DstState.Existed) return 0;
    const d = lstatAt(ctx.dstfd, zname, this.dst);
    if (d === -E.ENOENT) return 0;
    if (d < 0) {
      this.fail("stat", d, this.dstPath(ctx.rel, name));
      return -1;
    }
    if (this.dst.type === S.IFDIR) {
      if (!this.cfg.delete) {
        this.fail("replace", E.EISDIR, `${this.dstPath(ctx.rel, name)} (a directory in DST; --delete replaces it)`);
        return -1;
      }
      if (this.cfg.dryRun) return 1;
      if (!this.removeTree(ctx.dstfd, zname, this.dstPath(ctx.rel, name))) {
        this.counters[C.failed]++;
        return -1;
      }
      return 0;
    }
    return 1;
  }

  private symlink(ctx: DirCtx, name: Uint8Array, zname: Uint8Array): void {
    const st = this.st;
    const e = lstatAt(ctx.srcfd, zname, st);
    if (e < 0) {
      this.fail("stat", e, this.srcPath(ctx.rel, name));
      return;
    }
    const target = readlinkAt(ctx.srcfd, zname, this.linkBuf);
    if (typeof target === "number") {
      this.fail("readlink", target, this.srcPath(ctx.rel, name));
      return;
    }
    this.counters[C.seenFiles]++;
    let exists = 0;
    if (ctx.state === DstState.Existed) {
      const d = lstatAt(ctx.dstfd, zname, this.dst);
      if (d === 0 && this.dst.type === S.IFLNK) {
        // readlinkAt returns a copy, so the one link buffer serves both reads.
        const cur = readlinkAt(ctx.dstfd, zname, this.linkBuf);
        if (typeof cur !== "number" && equalBytes(cur, target) && !this.cfg.ignoreTimes) {
          // Same link: only owner and times may need a touch.
          const ownerDiff = this.cfg.owner && (this.dst.uid !== st.uid || this.dst.gid !== st.gid);
          if ((ownerDiff || !this.dst.sameMtime(st)) && !this.cfg.dryRun) {
            const m = applyPathMeta(ctx.dstfd, zname, st.snapshot(), this.policy, true, this.times);
            if (m.err !== 0) this.fail(m.syscall, m.err, this.dstPath(ctx.rel, name));
          }
          this.counters[C.skipped]++;
          return;
        }
      }
      exists = this.dstSlot(ctx, name, zname);
      if (exists < 0) return;
    }
    if (this.cfg.dryRun) {
      this.change(exists ? "update" : "copy", ctx.rel, name);
      this.counters[C.copied]++;
      this.counters[C.symlinks]++;
      return;
    }
    const ztarget = zpath(target);
    // A symlink appears whole: a new one is made under its final name directly.
    const where = exists ? this.placer.names.next(name).slice() : zname;
    if (libc.symlinkat(ztarget, ctx.dstfd, where) !== 0) {
      this.fail("symlink", -errno(), this.dstPath(ctx.rel, name));
      return;
    }
    if (!this.finishMade(ctx, name, zname, where, exists !== 0, true)) return;
    this.counters[C.copied]++;
    this.counters[C.symlinks]++;
  }

  private special(ctx: DirCtx, name: Uint8Array, zname: Uint8Array, type: number): void {
    const path = this.srcPath(ctx.rel, name);
    const device = type === DT.CHR || type === DT.BLK;
    if (!this.cfg.specials || (device && !this.cfg.isRoot)) {
      const why = this.cfg.specials ? "creating device nodes needs root" : "use --specials (as root) to recreate it";
      this.emit({ e: "warn", msg: `skipped ${typeName(type)} ${path} (${why})` });
      this.counters[C.specialsSkipped]++;
      return;
    }
    const st = this.st;
    const e = lstatAt(ctx.srcfd, zname, st);
    if (e < 0) {
      this.fail("stat", e, path);
      return;
    }
    let exists = 0;
    if (ctx.state === DstState.Existed) {
      const d = lstatAt(ctx.dstfd, zname, this.dst);
      if (d === 0 && !this.cfg.ignoreTimes && this.dst.type === st.type && this.dst.rdevMajor === st.rdevMajor && this.dst.rdevMinor === st.rdevMinor) {
        if (!this.cfg.dryRun && (this.dst.perm !== st.perm || !this.dst.sameMtime(st) || (this.cfg.owner && (this.dst.uid !== st.uid || this.dst.gid !== st.gid)))) {
          const m = applyPathMeta(ctx.dstfd, zname, st.snapshot(), this.policy, false, this.times);
          if (m.err !== 0) this.fail(m.syscall, m.err, this.dstPath(ctx.rel, name));
        }
        this.counters[C.skipped]++;
        return;
      }
      exists = this.dstSlot(ctx, name, zname);
      if (exists < 0) return;
    }
    if (this.cfg.dryRun) {
      this.change(exists ? "update" : "copy", ctx.rel, name);
      this.counters[C.copied]++;
      return;
    }
    const where = exists ? this.placer.names.next(name).slice() : zname;
    const rdev = device ? makedev(st.rdevMajor, st.rdevMinor) : 0;
    if (libc.mknodat(ctx.dstfd, where, st.type | (st.perm & 0o777), rdev) !== 0) {
      this.fail("mknod", -errno(), this.dstPath(ctx.rel, name));
      return;
    }
    if (!this.finishMade(ctx, name, zname, where, exists !== 0, false)) return;
    this.counters[C.copied]++;
    this.counters[C.specials]++;
  }

  /**
   * Finishes a symlink or special file just made at `where` (this.st is its source stat):
   * metadata, xattrs, and the rename over the final name when it replaces something.
   * Returns false after recording a failure and removing what it made, except a new
   * symlink already under its final name: the link itself is right, only a time or owner
   * could not be set.
   */
  private finishMade(ctx: DirCtx, name: Uint8Array, zname: Uint8Array, where: Uint8Array, replaces: boolean, isLink: boolean): boolean {
    const path = this.dstPath(ctx.rel, name);
    const m = applyPathMeta(ctx.dstfd, where, this.st.snapshot(), this.policy, isLink, this.times);
    if (m.err !== 0) {
      this.fail(m.syscall, m.err, path);
      if (replaces || !isLink) libc.unlinkat(ctx.dstfd, where, 0);
      return false;
    }
    if (this.xa !== null) this.xattrs(this.xa.copyPath(procPath(ctx.srcfd, name), procPath(ctx.dstfd, where.subarray(0, where.length - 1))), path);
    if (replaces && libc.renameat2(ctx.dstfd, where, ctx.dstfd, zname, 0) !== 0) {
      this.fail("rename", -errno(), path);
      libc.unlinkat(ctx.dstfd, where, 0);
      return false;
    }
    return true;
  }

  // ---- regular files: decisions and placement (called by FileBatch) --------------------

  /**
   * Decide for the regular file whose source stat is `st`. Returns the decision and leaves
   * DST's stat in `this.dst` when there is something there.
   */
  planFile(ctx: DirCtx, zdst: Uint8Array, st: StatBuf, srcfd: number): Decision {
    if (ctx.state !== DstState.Existed) return "copy";
    const path = (): string => this.dstPath(ctx.rel, zdst.subarray(0, zdst.length - 1));
    const d = lstatAt(ctx.dstfd, zdst, this.dst);
    if (d === -E.ENOENT) return "copy";
    if (d < 0) {
      this.fail("stat", d, path());
      return "conflict";
    }
    let dec = decideFile(factsOf(st), factsOf(this.dst), this.cfg);
    if (dec === "conflict") {
      this.fail("replace", E.EISDIR, `${path()} (a directory in DST; --delete replaces it)`);
      return dec;
    }
    if (dec === "compare") {
      const fd = libc.openat(ctx.dstfd, zdst, OPEN_SRC, 0);
      if (fd < 0) return "update";
      const buf = this.mover.buffer();
      const a = sha256Fd(srcfd, st.size, buf);
      const b = sha256Fd(fd, st.size, buf);
      libc.close(fd);
      dec = typeof a === "string" && a === b ? "skip" : "update";
    }
    if (dec === "skip" && !this.cfg.dryRun) {
      const fix = metaFixes(factsOf(st), factsOf(this.dst), this.cfg.owner);
      if (fix !== 0) {
        if ((fix & FIX_OWNER) !== 0 && libc.fchownat(ctx.dstfd, zdst, st.uid, st.gid, AT.SYMLINK_NOFOLLOW) !== 0) {
          this.fail("chown", -errno(), path(), false);
        }
        if ((fix & (FIX_MODE | FIX_OWNER)) !== 0 && libc.fchmodat(ctx.dstfd, zdst, st.perm, 0) !== 0) {
          this.fail("chmod", -errno(), path(), false);
        }
      }
    }
    return dec;
  }

  /**
   * Write one regular file into DST: hidden file, data (from `data` bytes already read, or
   * by the data path), metadata, commit. Reports failures itself. Returns bytes or -1.
   */
  placeFile(
    ctx: DirCtx, zsrc: Uint8Array, zdst: Uint8Array, st: StatBuf, srcfd: number, exists: boolean, dec: Decision,
    ringAddr: number, ringLen: number, path: DataPath,
  ): void {
    // Paths for messages are built only on the error paths (this runs once per file).
    if (dec === "replace-dir" && !this.removeTree(ctx.dstfd, zdst, this.dstPathZ(ctx, zdst))) {
      this.counters[C.failed]++;
      return;
    }
    const size = st.size;
    const fd = this.placer.create(
      ctx.dstfd, zdst, createMode(st.perm), exists && dec !== "replace-dir", ringAddr !== 0, this.cfg.staged && ctx.state === DstState.Fresh,
    );
    if (fd < 0) {
      this.fail("create", fd, this.dstPathZ(ctx, zdst));
      return;
    }
    let bytes = 0;
    let ok = false;
    try {
      if (ringAddr !== 0) {
        if (ringLen !== size && !ctx.pseudo) {
          this.changed(this.srcPathZ(ctx, zsrc), size, ringLen, ringLen > size);
          return;
        }
        if (ringLen > 0) {
          const w = writeAll(fd, ringAddr, ringLen, 0);
          if (w < 0) {
            this.fail("write", w, this.dstPathZ(ctx, zdst));
            return;
          }
        }
        bytes = ringLen;
        if (path === "stream") {
          // A pseudo file: a short read means nothing; read on to EOF.
          const r = this.mover.stream(srcfd, fd, ringLen);
          if (r.err !== 0) {
            this.fail(r.syscall, r.err, r.syscall === "write" ? this.dstPathZ(ctx, zdst) : this.srcPathZ(ctx, zsrc));
            return;
          }
          bytes = r.bytes;
        } else this.mover.used.ring++;
      } else {
        const r = this.mover.copyFile(srcfd, fd, size, st.blocks, path, st.dev, ctx.dstDev, ctx.dstFs === FS_MAGIC.EXT4);
        if (r.err !== 0) {
          const onDst = r.syscall === "write" || r.syscall === "ftruncate" || r.syscall === "fallocate" || r.err === -E.ENOSPC;
          this.fail(r.syscall, r.err, onDst ? this.dstPathZ(ctx, zdst) : this.srcPathZ(ctx, zsrc));
          return;
        }
        if (r.changed !== 0 && !ctx.pseudo) {
          this.changed(this.srcPathZ(ctx, zsrc), size, r.seen, r.changed === 1);
          return;
        }
        bytes = r.bytes;
      }
      const m = applyFileMeta(fd, st, this.policy, this.times.fromStat(st), srcfd, this.xa, ctx.state === DstState.Fresh && !ctx.dstSgid);
      if (m.err !== 0) {
        this.fail(m.syscall, m.err, this.dstPathZ(ctx, zdst));
        return;
      }
      if (this.xa !== null && this.xa.unsupported) this.xattrs({ syscall: "", err: 0 }, this.dstPathZ(ctx, zdst));
      if (this.cfg.fsync && libc.fsync(fd) !== 0) {
        this.fail("fsync", -errno(), this.dstPathZ(ctx, zdst));
        return;
      }
      const c = this.placer.commit(fd, zdst);
      if (c < 0) {
        this.fail(exists ? "rename" : "link", c, this.dstPathZ(ctx, zdst));
        return;
      }
      ok = true;
    } finally {
      libc.close(fd);
      if (!ok) this.placer.abandon();
    }
    this.counters[C.copied]++;
    this.counters[C.bytes] += bytes;
  }

  /** SRC/DST path of a NUL-terminated name in the task's directory (for messages). */
  srcPathZ(ctx: DirCtx, zname: Uint8Array): string {
    return this.srcPath(ctx.rel, zname.subarray(0, zname.length - 1));
  }

  dstPathZ(ctx: DirCtx, zname: Uint8Array): string {
    return this.dstPath(ctx.rel, zname.subarray(0, zname.length - 1));
  }

  /** Make the data-path counts visible to the coordinator (shared counters). */
  publishStats(): void {
    const u = this.mover.used;
    const c = this.counters;
    c[PATH_SLOTS.ring] = u.ring;
    c[PATH_SLOTS.clone] = u.clone;
    c[PATH_SLOTS.copy_file_range] = u.copy_file_range;
    c[PATH_SLOTS.splice] = u.splice;
    c[PATH_SLOTS.read_write] = u.read_write;
    c[PATH_SLOTS.stream] = u.stream;
  }

  emitEvent(ev: CopierEvent): void {
    this.emit(ev);
  }

  close(): void {
    // A lookahead statx may still be on an io-wq thread: the kernel would write into
    // prefetchStat after we let go of it.
    if (this.prefetching > 0) {
      try {
        this.ring.runUntil(() => this.prefetching === 0);
      } catch {
        // The ring failed: closing it below is all that is left to do.
      }
    }
    this.ring.close();
    this.mover.close();
    this.batch.close();
    libc.close(this.srcRoot);
    if (this.dstRoot >= 0) libc.close(this.dstRoot);
  }
}


function isEmptyDir(fd: number, r: DirReader): boolean {
  r.open(fd);
  const n = r.fill(false);
  // Rewind: the same fd is read again by nobody, but be tidy.
  libc.lseek(fd, 0, 0);
  return n === 0;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Up to --queue-depth regular files of one directory, moved together: opens in one ring
 * submission, whole-file reads of the small ones in a second, then DST written file by
 * file. One long-lived object per thread (no allocation per file on the hot path beyond
 * name views).
 */
export class FileBatch implements CompletionTarget {
  private readonly c: Copier;
  private readonly max: number;
  private count = 0;
  private ctx: DirCtx | null = null;
  private readonly znames: Uint8Array[];
  private readonly dstNames: (Uint8Array | null)[];
  private readonly nameAddrs: Float64Array;
  private readonly res: Int32Array;
  /** Slot i's tracked operation has completed (set by onCompletion). */
  private readonly done: Uint8Array;
  private readonly fds: Int32Array;
  private readonly mode: Uint8Array;
  private readonly decision: Decision[];
  private readonly exists: Uint8Array;
  private readonly paths: DataPath[];
  private readonly slotOff: Float64Array;
  private readonly stats: StatBuf[];
  private readonly arena: Uint8Array;
  private readonly arenaAddr: number;
  private pending = 0;

  constructor(c: Copier, max: number) {
    this.c = c;
    this.max = max;
    this.znames = new Array<Uint8Array>(max);
    this.dstNames = new Array<Uint8Array | null>(max).fill(null);
    this.nameAddrs = new Float64Array(max);
    this.res = new Int32Array(max);
    this.done = new Uint8Array(max);
    this.fds = new Int32Array(max).fill(-1);
    this.mode = new Uint8Array(max);
    this.decision = new Array<Decision>(max).fill("copy");
    this.exists = new Uint8Array(max);
    this.paths = new Array<DataPath>(max).fill("ring");
    this.slotOff = new Float64Array(max);
    const statMem = new ArrayBuffer(max * 256);
    this.stats = Array.from({ length: max }, (_, i) => new StatBuf(statMem, i * 256));
    const slot = new BigUint64Array(1);
    const bytes = Math.min(ARENA_BYTES, Math.max(256 * 1024, max * (c.cfg.ringMax + 4096)));
    // posix_memalign returns the error number (it does not set errno).
    const rc = libc.posix_memalign(slot, 4096, bytes);
    if (rc !== 0) throw new SysError("posix_memalign", rc);
    this.arenaAddr = Number(slot[0]);
    this.arena = new Uint8Array(toArrayBuffer(this.arenaAddr as Pointer, 0, bytes));
  }

  /** Queue a file (zname: NUL-terminated view valid until flush). True when the batch is full: flush it. */
  add(ctx: DirCtx, zname: Uint8Array, nameAddr: number, dstName: Uint8Array | null): boolean {
    if (this.ctx !== null && this.ctx !== ctx) this.flush();
    this.ctx = ctx;
    const i = this.count++;
    this.znames[i] = zname;
    this.nameAddrs[i] = nameAddr;
    this.dstNames[i] = dstName;
    return this.count === this.max;
  }

  onCompletion(res: number, _flags: number, tag: number): void {
    this.res[tag] = res;
    this.done[tag] = 1;
    this.pending--;
  }

  /**
   * Wait until slot i's operation has completed (completions of the others are recorded
   * as they come). Stage 3 writes each file as soon as its own read is in, so writing
   * overlaps the reads still in flight: on a cold cache the device keeps working while
   * this thread writes (docs/DESIGN.md).
   */
  private waitFor(i: number): void {
    const ring = this.c.ring;
    while (this.done[i] === 0 && this.pending > 0) {
      if (ring.processCompletions() > 0) continue;
      ring.submitAndWait(1);
      ring.processCompletions();
    }
  }

  /** Wait for every tracked operation of this stage: one wake-up for all of them, not one each. */
  private wait(): void {
    const ring = this.c.ring;
    while (this.pending > 0) {
      ring.submitAndWait(Math.min(this.pending, ring.entries));
      ring.processCompletions();
    }
  }

  private closeLater(fd: number): void {
    const ring = this.c.ring;
    const sqe = ring.getSqe();
    prepClose(ring, sqe, fd);
    ring.setUserData(sqe, UNTRACKED);
  }

  reset(): void {
    this.count = 0;
    this.ctx = null;
  }

  flush(): void {
    const n = this.count;
    const ctx = this.ctx;
    if (n === 0 || ctx === null) return;
    const c = this.c;
    const ring = c.ring;
    const cfg = c.cfg;
    const counters = c.counters;
    // Stage 1: open every source in one submission.
    for (let i = 0; i < n; i++) {
      const sqe = ring.getSqe();
      const addr = this.nameAddrs[i];
      prepOpenat(ring, sqe, ctx.srcfd, addr !== 0 ? addr : addressOf(this.znames[i]), OPEN_SRC | (cfg.isRoot ? O.NOATIME : 0), 0);
      ring.setUserData(sqe, ring.track(this, i));
      this.pending++;
    }
    this.wait();
    // Stage 2: stat, plan, queue whole-file reads for the small ones.
    let arenaUsed = 0;
    const arenaSize = this.arena.length;
    for (let i = 0; i < n; i++) {
      this.mode[i] = M_NONE;
      const zname = this.znames[i];
      const fd = this.res[i];
      this.fds[i] = -1;
      if (fd < 0) {
        // Vanished since the directory was read (ENOENT), unreadable (EACCES)...
        c.fail("open", fd, c.srcPathZ(ctx, zname));
        continue;
      }
      this.fds[i] = fd;
      const st = this.stats[i];
      const e = fstatx(fd, st);
      if (e < 0) {
        c.fail("stat", e, c.srcPathZ(ctx, zname));
        continue;
      }
      if (st.type !== S.IFREG) {
        c.fail("open", E.EISDIR, `${c.srcPathZ(ctx, zname)} (changed type during the copy)`);
        continue;
      }
      counters[C.seenFiles]++;
      counters[C.seenBytes] += st.size;
      if (st.nlink > 1 && !ctx.linkTask) {
        // A hard link: the coordinator decides which name is copied and which are linked.
        c.emitEvent({ e: "link", parent: ctx.taskId, dirRel: ctx.rel, name: zname.slice(0, zname.length - 1), state: ctx.state, dev: st.dev, ino: st.ino });
        continue;
      }
      const zdst = this.dstNames[i] ?? zname;
      const dec = c.planFile(ctx, zdst, st, fd);
      if (dec === "conflict") continue;
      if (dec === "skip") {
        counters[C.skipped]++;
        continue;
      }
      this.decision[i] = dec;
      this.exists[i] = dec === "copy" ? 0 : 1;
      if (cfg.dryRun) {
        c.change(dec === "copy" ? "copy" : "update", ctx.rel, zdst.subarray(0, zdst.length - 1));
        counters[C.copied]++;
        counters[C.bytes] += st.size;
        continue;
      }
      const size = st.size;
      // The common case (small, not sparse, real file system) without building the input.
      const path: DataPath = size <= cfg.ringMax && !ctx.pseudo && (size <= 4096 || !looksSparse(size, st.blocks))
        ? "ring"
        : chooseDataPath({
          size, blocks: st.blocks, pseudo: ctx.pseudo, ringMax: cfg.ringMax,
          clone: canClone(ctx.dstFs) && canClone(ctx.srcFs) && !c.mover.cloneBroken(st.dev, ctx.dstDev),
          cfrBroken: c.mover.cfrBroken(st.dev, ctx.dstDev),
          splice: cfg.splice,
        });
      if (!ctx.noOffload && st.size >= cfg.offloadMin && path !== "ring") {
        // Big: let any idle worker take it while this one goes on with the directory.
        c.emitEvent({ e: "offload", parent: ctx.taskId, dirRel: ctx.rel, name: zname.slice(0, zname.length - 1), state: ctx.state });
        continue;
      }
      this.paths[i] = path;
      const need = path === "stream" ? Math.max(cfg.ringMax, 4096) : st.size + 1;
      if ((path === "ring" || path === "stream") && arenaUsed + need <= arenaSize) {
        this.slotOff[i] = arenaUsed;
        arenaUsed += (need + 63) & ~63;
        if (c.nowaitReads(ctx, fd, st.dev)) {
          this.done[i] = 0;
          const sqe = ring.getSqe();
          prepRead(ring, sqe, fd, this.arenaAddr + this.slotOff[i], need, 0);
          ring.setUserData(sqe, ring.track(this, i));
          this.pending++;
        } else {
          // io_uring would hand this read to an io-wq thread: a pread is cheaper.
          const got = libc.pread(fd, (this.arenaAddr + this.slotOff[i]) as never, need, 0);
          this.res[i] = got >= 0 ? got : -errno();
          this.done[i] = 1;
        }
        this.mode[i] = M_RING;
      } else {
        this.mode[i] = M_SYNC;
      }
    }
    // Stage 3: write DST, file by file, each as soon as its read is in (the reads go to
    // the kernel now, in one submission, so adjacent ones merge).
    if (this.pending > 0) ring.submit();
    try {
      this.writeAll(n, ctx);
    } finally {
      // Nothing may still land in the arena once the batch is over (an abort or a throw).
      this.wait();
    }
    this.count = 0;
    this.ctx = null;
  }

  private writeAll(n: number, ctx: DirCtx): void {
    const c = this.c;
    for (let i = 0; i < n; i++) {
      const fd = this.fds[i];
      const m = this.mode[i];
      if (m !== M_NONE && !c.aborted) {
        const zname = this.znames[i];
        const zdst = this.dstNames[i] ?? zname;
        const st = this.stats[i];
        if (m === M_RING) {
          this.waitFor(i);
          const got = this.res[i];
          if (got < 0) c.fail("read", got, c.srcPathZ(ctx, zname));
          else c.placeFile(ctx, zname, zdst, st, fd, this.exists[i] === 1, this.decision[i], this.arenaAddr + this.slotOff[i], got, this.paths[i]);
        } else {
          c.placeFile(ctx, zname, zdst, st, fd, this.exists[i] === 1, this.decision[i], 0, 0, this.paths[i]);
        }
      }
      if (fd >= 0) this.closeLater(fd);
      this.fds[i] = -1;
    }
  }

  close(): void {
    libc.free(this.arenaAddr as Pointer);
  }
}
