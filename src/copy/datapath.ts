/**
 * Moving a file's bytes from a source fd to a destination fd, by the cheapest way that
 * works for this file and these file systems.
 *
 * Owns: choosing the data path (chooseDataPath, pure, unit-tested) and running it with
 * fallbacks (DataMover):
 *  - "ring": small files are read by the batch pipeline through io_uring (many files in
 *    flight) and written from that buffer; chosen in copier.ts, not here;
 *  - "clone": FICLONE where the file system shares extents (btrfs, XFS): instant;
 *  - "copy_file_range": the raw syscall in chunks of at most 1 GiB (glibc 2.41/2.42's
 *    wrapper can corrupt copies over 2 GiB): the kernel copies page to page, no user
 *    buffer; falls back on EXDEV/EINVAL/EOPNOTSUPP/ENOSYS, remembered per device pair;
 *  - "splice": source -> pipe -> destination, when copy_file_range cannot (unless
 *    --no-splice);
 *  - "read_write": pread/pwrite through one aligned buffer, the path that always works;
 *  - sparse files (allocated < size) copy only their data segments (SEEK_DATA/SEEK_HOLE)
 *    and end with ftruncate, so holes stay holes;
 *  - files on pseudo file systems (/proc, /sys), whose size says nothing, are read to EOF.
 * Detects a source that shrinks (EOF before its size) or grows (data past its size) while
 * it is copied, and reports it instead of producing a silently wrong copy. Checks the
 * shared abort flag between chunks so SIGTERM and ENOSPC stop a big file promptly.
 * Never opens, names or places files; never prints.
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { E } from "../../ffi/errno.ts";
import { addressOf, errno, libc } from "../../ffi/libc.ts";
import { FALLOC, IOCTL, SEEK, SPLICE_F, SYS } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import { StatBuf, fstatx } from "./sys.ts";
import { F } from "./sysconst.ts";

export type DataPath = "ring" | "clone" | "copy_file_range" | "splice" | "read_write" | "stream";

export interface DataPathInput {
  size: number;
  /** 512-byte blocks allocated to the source. */
  blocks: number;
  /** The source is on /proc, /sys...: its size is meaningless. */
  pseudo: boolean;
  /** Largest file the ring pipeline takes (0: none). */
  ringMax: number;
  /** The destination file system shares extents (btrfs, XFS) and source and destination are on it. */
  clone: boolean;
  /** copy_file_range is known not to work between these two devices. */
  cfrBroken: boolean;
  splice: boolean;
}

/** Is this file sparse enough that copying only its data segments pays? */
export function looksSparse(size: number, blocks: number): boolean {
  // Allocated less than the size, by more than one 4 KiB block of slack (tail packing,
  // inline data): worth asking SEEK_DATA/SEEK_HOLE.
  return size > 0 && blocks * 512 + 4096 < size;
}

/**
 * The data path for one file. Measurements behind the order are in docs/DESIGN.md:
 * small files go through the ring (reads of many files in flight; one syscall batch),
 * larger ones through copy_file_range (no copy through user space), sparse ones by
 * segments of whatever moves bytes.
 */
export function chooseDataPath(f: DataPathInput): DataPath {
  if (f.pseudo) return "stream";
  if (f.size <= f.ringMax && !looksSparse(f.size, f.blocks)) return "ring";
  if (f.clone) return "clone";
  if (!f.cfrBroken) return "copy_file_range";
  return f.splice ? "splice" : "read_write";
}

/**
 * Files at least this big are allocated in one fallocate before their bytes are copied,
 * where the caller says it pays (ext4): writing into allocated blocks skips delayed
 * allocation's per-block bookkeeping (reservation, extent-status inserts, quota), which
 * was a third of the system time of a big-file copy (docs/DESIGN.md).
 */
export const PREALLOC_MIN = 1 << 20;

/** copy_file_range never moves more than this per call (FIELD_NOTES section 3). */
export const CFR_MAX = 1 << 30;
/** Chunk per copy_file_range/splice call: big enough to be cheap, small enough to stop fast. */
const CFR_CHUNK = 64 << 20;

export interface MoveResult {
  /** 0, or a negative errno; -ECANCELED when the run was aborted. */
  err: number;
  /** The call that failed ("write", "copy_file_range"...). */
  syscall: string;
  /** Bytes the destination holds from the source (logical, holes included). */
  bytes: number;
  /** 0: consistent; 1: the source grew; 2: the source shrank. */
  changed: 0 | 1 | 2;
  /** What the source size turned out to be (for the report). */
  seen: number;
  /** The path that moved the bytes. */
  path: DataPath;
}

export interface MoverConfig {
  /** Read/write buffer and splice chunk size. */
  chunk: number;
  splice: boolean;
  /** Shared abort flag: non-zero means stop now. */
  abort: Int32Array;
}

/** Errors that mean "this way of copying does not work here", not "the copy failed". */
function unsupported(e: number): boolean {
  return e === E.EXDEV || e === E.EINVAL || e === E.EOPNOTSUPP || e === E.ENOSYS || e === E.EBADF || e === 26 /* ETXTBSY */;
}

/** One per thread: owns the read/write buffer, the splice pipe and per-device-pair facts. */
export class DataMover {
  private readonly cfg: MoverConfig;
  private buf: Uint8Array | null = null;
  private bufAddr = 0;
  private pipe: Int32Array | null = null;
  private pipeBytes = 0;
  private readonly offIn = new BigInt64Array(1);
  private readonly offOut = new BigInt64Array(1);
  private readonly offInAddr = addressOf(this.offIn);
  private readonly offOutAddr = addressOf(this.offOut);
  private readonly one = new Uint8Array(1);
  private readonly st = new StatBuf();
  /** Device pairs ("srcDev:dstDev") where copy_file_range / FICLONE failed as unsupported. */
  private readonly noCfr = new Set<string>();
  private readonly noClone = new Set<string>();
  /** Counts per path, for -v. */
  readonly used: Record<DataPath, number> = { ring: 0, clone: 0, copy_file_range: 0, splice: 0, read_write: 0, stream: 0 };
  private res: MoveResult = { err: 0, syscall: "", bytes: 0, changed: 0, seen: 0, path: "read_write" };

  constructor(cfg: MoverConfig) {
    this.cfg = cfg;
  }

  cfrBroken(srcDev: number, dstDev: number): boolean {
    return this.noCfr.has(`${srcDev}:${dstDev}`);
  }

  cloneBroken(srcDev: number, dstDev: number): boolean {
    return this.noClone.has(`${srcDev}:${dstDev}`);
  }

  /** The aligned read/write buffer (allocated on first use). */
  buffer(): Uint8Array {
    if (this.buf === null) {
      const slot = new BigUint64Array(1);
      // posix_memalign returns the error number (it does not set errno).
      const rc = libc.posix_memalign(slot, 4096, this.cfg.chunk);
      if (rc !== 0) throw new SysError("posix_memalign", rc);
      const p = Number(slot[0]);
      this.buf = new Uint8Array(toArrayBuffer(p as Pointer, 0, this.cfg.chunk));
      this.bufAddr = p;
    }
    return this.buf;
  }

  private aborted(): boolean {
    return Atomics.load(this.cfg.abort, 0) !== 0;
  }

  private result(err: number, syscall: string, bytes: number, changed: 0 | 1 | 2, seen: number, path: DataPath): MoveResult {
    const r = this.res;
    r.err = err;
    r.syscall = syscall;
    r.bytes = bytes;
    r.changed = changed;
    r.seen = seen;
    r.path = path;
    return r;
  }

  /**
   * Copy a regular file of `size` bytes (as stat'ed) from `src` to `dst` (both at offset
   * 0, dst empty). `path` is the caller's choice ("clone", "copy_file_range", "splice",
   * "read_write" or "stream"); sparse files are copied by segments whatever it is.
   */
  copyFile(
    src: number, dst: number, size: number, blocks: number, path: DataPath, srcDev: number, dstDev: number, prealloc = false,
  ): MoveResult {
    const pair = `${srcDev}:${dstDev}`;
    if (path === "stream") return this.stream(src, dst, 0);
    if (path === "clone" && !this.noClone.has(pair)) {
      if (libc.ioctl(dst, IOCTL.FICLONE, src as never) === 0) {
        this.used.clone++;
        return this.checkSize(src, size, size, "clone");
      }
      const e = errno();
      if (!unsupported(e)) return this.result(-e, "ioctl(FICLONE)", 0, 0, size, "clone");
      this.noClone.add(pair);
      path = "copy_file_range";
    }
    if (path === "clone") path = "copy_file_range";
    if (path === "copy_file_range" && this.noCfr.has(pair)) path = this.cfg.splice ? "splice" : "read_write";
    if (path === "ring") path = "read_write";
    let bytes: number;
    let last: DataPath = path;
    if (looksSparse(size, blocks)) {
      let off = 0;
      for (;;) {
        if (off >= size) break;
        const d = libc.lseek(src, off, SEEK.DATA);
        if (d < 0) {
          const e = errno();
          if (e === E.ENXIO) break; // only a hole from here to the end
          // No SEEK_DATA here: copy the rest as one segment.
          const n = this.range(src, dst, off, size, path, pair);
          if (n < 0) return this.result(n, this.failedCall, off, 0, size, this.lastPath);
          off = n;
          break;
        }
        if (d >= size) break;
        let h = libc.lseek(src, d, SEEK.HOLE);
        if (h < 0 || h > size) h = size;
        const n = this.range(src, dst, d, h, path, pair);
        if (n < 0) return this.result(n, this.failedCall, d, 0, size, this.lastPath);
        last = this.lastPath;
        if (n < h) return this.result(0, "read", n, 2, n, last); // EOF inside a data segment: shrank
        off = h;
      }
      if (libc.ftruncate(dst, size) !== 0) return this.result(-errno(), "ftruncate", 0, 0, size, last);
      bytes = size;
    } else {
      if (prealloc && size >= PREALLOC_MIN && libc.fallocate(dst, FALLOC.KEEP_SIZE, 0, size) !== 0) {
        const e = errno();
        // Out of space now is out of space later: say so before copying anything. Anything
        // else (not supported here...) only means the copy goes without it.
        if (e === E.ENOSPC || e === 122 /* EDQUOT */) return this.result(-e, "fallocate", 0, 0, size, path);
      }
      const n = this.range(src, dst, 0, size, path, pair);
      if (n < 0) return this.result(n, this.failedCall, 0, 0, size, this.lastPath);
      last = this.lastPath;
      if (n < size) return this.result(0, "read", n, 2, n, last);
      bytes = n;
    }
    this.used[last]++;
    return this.checkSize(src, size, bytes, last);
  }

  /** After copying `size` bytes: did the source grow (data at `size`) or shrink? */
  private checkSize(src: number, size: number, bytes: number, path: DataPath): MoveResult {
    const n = libc.pread(src, this.one, 1, size);
    if (n > 0) return this.result(0, "read", bytes, 1, size + n, path);
    if (fstatx(src, this.st) === 0 && this.st.size !== size) {
      return this.result(0, "read", bytes, this.st.size > size ? 1 : 2, this.st.size, path);
    }
    return this.result(0, "", bytes, 0, size, path);
  }

  private failedCall = "";
  private lastPath: DataPath = "read_write";

  /**
   * Copy [from, to) to the same offsets. Returns the offset reached (< to at EOF) or
   * -errno (with failedCall set). Falls back from copy_file_range to splice/read_write.
   */
  private range(src: number, dst: number, from: number, to: number, path: DataPath, pair: string): number {
    let pos = from;
    let p = path;
    while (pos < to) {
      if (this.aborted()) return this.fail(-E.ECANCELED, "copy");
      if (p === "copy_file_range") {
        this.offIn[0] = BigInt(pos);
        this.offOut[0] = BigInt(pos);
        const want = Math.min(to - pos, CFR_CHUNK, CFR_MAX);
        const n = libc.syscall(SYS.copy_file_range, src, this.offInAddr, dst, this.offOutAddr, want, 0);
        if (n > 0) {
          pos += n;
          continue;
        }
        if (n === 0) break;
        const e = errno();
        if (e === E.EINTR || e === E.EAGAIN) continue;
        if (unsupported(e)) {
          this.noCfr.add(pair);
          p = this.cfg.splice ? "splice" : "read_write";
          continue;
        }
        return this.fail(-e, "copy_file_range");
      }
      if (p === "splice") {
        const r = this.spliceRange(src, dst, pos, to);
        if (r === -E.EINVAL || r === -E.EOPNOTSUPP) {
          p = "read_write";
          continue;
        }
        if (r < 0) return r;
        pos = r;
        break;
      }
      const r = this.rwRange(src, dst, pos, to);
      if (r < 0) return r;
      pos = r;
      break;
    }
    this.lastPath = p;
    return pos;
  }

  private fail(err: number, call: string): number {
    this.failedCall = call;
    return err;
  }

  private rwRange(src: number, dst: number, from: number, to: number): number {
    const buf = this.buffer();
    const chunk = buf.length;
    let pos = from;
    while (pos < to) {
      if (this.aborted()) return this.fail(-E.ECANCELED, "copy");
      const n = libc.pread(src, buf, Math.min(chunk, to - pos), pos);
      if (n < 0) {
        const e = errno();
        if (e === E.EINTR || e === E.EAGAIN) continue;
        return this.fail(-e, "read");
      }
      if (n === 0) break;
      const w = writeAll(dst, this.bufAddr, n, pos);
      if (w < 0) return this.fail(w, "write");
      pos += n;
    }
    return pos;
  }

  private spliceRange(src: number, dst: number, from: number, to: number): number {
    const pipe = this.ensurePipe();
    if (pipe === null) return -E.EOPNOTSUPP;
    let pos = from;
    const flags = SPLICE_F.MOVE | SPLICE_F.MORE;
    while (pos < to) {
      if (this.aborted()) return this.fail(-E.ECANCELED, "copy");
      this.offIn[0] = BigInt(pos);
      const n = libc.splice(src, this.offIn, pipe[1], null, Math.min(this.pipeBytes, to - pos), flags);
      if (n < 0) {
        const e = errno();
        if (e === E.EINTR || e === E.EAGAIN) continue;
        this.drainPipe();
        return this.fail(-e, "splice");
      }
      if (n === 0) break;
      let left = n;
      let at = pos;
      while (left > 0) {
        this.offOut[0] = BigInt(at);
        const m = libc.splice(pipe[0], null, dst, this.offOut, left, flags);
        if (m < 0) {
          const e = errno();
          if (e === E.EINTR || e === E.EAGAIN) continue;
          this.drainPipe();
          return this.fail(-e, "splice");
        }
        if (m === 0) {
          this.drainPipe();
          return this.fail(-E.EIO, "splice");
        }
        left -= m;
        at += m;
      }
      pos += n;
    }
    return pos;
  }

  private ensurePipe(): Int32Array | null {
    if (this.pipe !== null) return this.pipe;
    const p = new Int32Array(2);
    if (libc.pipe2(p, 0o2000000 /* O_CLOEXEC */) !== 0) return null;
    // A bigger pipe moves more per call; the kernel may refuse: keep what we got.
    libc.fcntl(p[1], F.SETPIPE_SZ, Math.min(this.cfg.chunk, 1 << 20));
    const sz = libc.fcntl(p[1], F.GETPIPE_SZ, 0);
    this.pipeBytes = sz > 0 ? sz : 65536;
    this.pipe = p;
    return p;
  }

  /** After a failed splice, the pipe may hold bytes: start the next file with a fresh one. */
  private drainPipe(): void {
    if (this.pipe === null) return;
    libc.close(this.pipe[0]);
    libc.close(this.pipe[1]);
    this.pipe = null;
  }

  /**
   * Read `src` to EOF from offset `from` and write what it gives to `dst` at the same
   * offsets (files whose size means nothing: /proc, /sys).
   */
  stream(src: number, dst: number, from: number): MoveResult {
    const r = this.rwRange(src, dst, from, Number.MAX_SAFE_INTEGER);
    if (r < 0) return this.result(r, this.failedCall, from, 0, from, "stream");
    this.used.stream++;
    return this.result(0, "", r, 0, r, "stream");
  }

  close(): void {
    this.drainPipe();
    if (this.buf !== null) {
      libc.free(this.bufAddr as Pointer);
      this.buf = null;
    }
  }
}

/** pwrite all of [addr, addr+len) at `off` (or -1 for the file position). 0 or -errno. */
export function writeAll(fd: number, addr: number, len: number, off: number): number {
  let done = 0;
  while (done < len) {
    const n = off < 0
      ? libc.write(fd, (addr + done) as never, len - done)
      : libc.pwrite(fd, (addr + done) as never, len - done, off + done);
    if (n < 0) {
      const e = errno();
      if (e === E.EINTR || e === E.EAGAIN) continue;
      return -e;
    }
    if (n === 0) return -E.EIO;
    done += n;
  }
  return 0;
}
