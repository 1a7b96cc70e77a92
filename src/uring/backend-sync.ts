/**
 * The synchronous backend: an emulation of io_uring's SQ/CQ rings in process memory,
 * executing each SQE with plain system calls when the ring is entered.
 *
 * Why: io_uring may be missing or forbidden (io_uring_disabled, a container's seccomp
 * profile answering EPERM/ENOSYS). Emulating the ring, rather than writing a second
 * engine, keeps one code path above src/uring/ for every backend.
 *
 * Owns: executing SQEs in order with io_uring's semantics that the engines rely on
 * (IO_LINK chains cancelled by a failure or a short transfer, TIMEOUT by time or count,
 * registered file slots, CQ overflow kept and flushed). Socket operations that would
 * block are parked and retried after poll(2), so a peer in the same process can make
 * progress. Never blocks forever: with nothing runnable it returns to the caller.
 */
import { read, type Pointer } from "bun:ffi";
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { CQE, FEAT, FSYNC_DATASYNC, IOSQE, MSG, OP, POLL, POLLFD, SQ_FLAGS, SQE, TIMEOUT_F } from "../../ffi/structs.ts";
import type { RingBackend, RingMemory, RingSetup } from "./types.ts";

const TWO32 = 4294967296;
const ALL_ONES = -1;

/** Decoded SQE: only what the emulation needs. */
interface Sqe {
  opcode: number;
  flags: number;
  fd: number;
  off: number;
  addr: number;
  len: number;
  opFlags: number;
  userData: number;
  fileIndex: number;
  spliceFdIn: number;
}

interface Parked {
  sqe: Sqe;
  events: number;
}

interface Timer {
  userData: number;
  deadline: number;
  /** Completions to wait for (0: time only). */
  count: number;
  seen: number;
  etimeSuccess: boolean;
}

const ROUND = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

export class SyncBackend implements RingBackend {
  readonly kind = "sync" as const;
  readonly memory: RingMemory;
  readonly features = FEAT.NODROP | FEAT.RW_CUR_POS | FEAT.SUBMIT_STABLE;
  readonly setupFlags = 0;
  readonly detail: string;

  private readonly sqes32: Uint32Array;
  private readonly sqesI32: Int32Array;
  private readonly sqes8: Uint8Array;
  private readonly overflow: number[] = [];
  private readonly parked: Parked[] = [];
  private readonly timers: Timer[] = [];
  private files: Int32Array = new Int32Array(0);
  private readonly offIn = new BigInt64Array(1);
  private readonly offOut = new BigInt64Array(1);

  constructor(setup: RingSetup, why: string) {
    this.detail = `synchronous system calls (${why})`;
    const sqEntries = ROUND(setup.entries);
    const cqEntries = ROUND(setup.cqEntries ?? sqEntries * 2);
    // Same shape as the kernel's rings: head, tail, mask, entries, flags/overflow, then arrays.
    const sq = new Uint32Array(8 + sqEntries);
    sq[2] = sqEntries - 1;
    sq[3] = sqEntries;
    const cq = new Uint32Array(8 + cqEntries * (CQE.size >>> 2));
    cq[2] = cqEntries - 1;
    cq[3] = cqEntries;
    const sqes = new ArrayBuffer(sqEntries * SQE.size);
    this.sqes32 = new Uint32Array(sqes);
    this.sqesI32 = new Int32Array(sqes);
    this.sqes8 = new Uint8Array(sqes);
    this.memory = {
      sq, sqHead: 0, sqTail: 1, sqMask: sqEntries - 1, sqEntries, sqFlags: 4, sqArray: -1, sqes,
      cq, cqHead: 0, cqTail: 1, cqMask: cqEntries - 1, cqEntries, cqOverflow: 4, cqes: 8,
    };
  }

  enter(_toSubmit: number, minComplete: number, _getEvents: boolean): number {
    this.flushOverflow();
    const submitted = this.runQueued();
    for (;;) {
      this.retryParked();
      this.expireTimers();
      this.flushOverflow();
      if (this.available() >= minComplete) break;
      if (!this.waitForProgress()) break;
    }
    return submitted;
  }

  // ---- submission ---------------------------------------------------------------------

  private runQueued(): number {
    const m = this.memory;
    let head = m.sq[m.sqHead];
    const tail = m.sq[m.sqTail];
    let n = 0;
    let cancelChain = false;
    while (head !== tail) {
      const sqe = this.decode((head & m.sqMask) * (SQE.size >>> 2));
      head = (head + 1) >>> 0;
      n++;
      const linked = (sqe.flags & (IOSQE.IO_LINK | IOSQE.IO_HARDLINK)) !== 0;
      if (cancelChain) {
        this.post(sqe.userData, -E.ECANCELED, sqe.flags);
        if (!linked) cancelChain = false;
        continue;
      }
      const res = this.execute(sqe);
      if (res === PARKED) continue;
      this.post(sqe.userData, res, sqe.flags);
      if (linked && (sqe.flags & IOSQE.IO_HARDLINK) === 0 && this.breaksChain(sqe, res)) cancelChain = true;
    }
    m.sq[m.sqHead] = head;
    return n;
  }

  private breaksChain(sqe: Sqe, res: number): boolean {
    if (res < 0) return true;
    switch (sqe.opcode) {
      case OP.READ: case OP.WRITE: case OP.READ_FIXED: case OP.WRITE_FIXED:
      case OP.SEND: case OP.RECV: case OP.SPLICE:
        return res < sqe.len;
      default:
        return false;
    }
  }

  private decode(w: number): Sqe {
    const u = this.sqes32;
    const u64 = (i: number): number => (u[i] === 0xffffffff && u[i + 1] === 0xffffffff ? ALL_ONES : u[i] + u[i + 1] * TWO32);
    return {
      opcode: this.sqes8[w << 2],
      flags: this.sqes8[(w << 2) + SQE.flags],
      fd: this.sqesI32[w + 1],
      off: u64(w + (SQE.off >>> 2)),
      addr: u64(w + (SQE.addr >>> 2)),
      len: u[w + (SQE.len >>> 2)],
      opFlags: u[w + (SQE.opFlags >>> 2)],
      userData: u[w + (SQE.userData >>> 2)],
      fileIndex: u[w + (SQE.spliceFdIn >>> 2)],
      spliceFdIn: this.sqesI32[w + (SQE.spliceFdIn >>> 2)],
    };
  }

  private fd(sqe: Sqe): number {
    if ((sqe.flags & IOSQE.FIXED_FILE) === 0) return sqe.fd;
    const f = this.files[sqe.fd];
    return f === undefined ? -1 : f;
  }

  private execute(sqe: Sqe): number {
    const fd = this.fd(sqe);
    const p = sqe.addr as Pointer;
    const r = (v: number): number => (v < 0 ? -errno() : v);
    switch (sqe.opcode) {
      case OP.NOP:
        return 0;
      case OP.READ: case OP.READ_FIXED:
        return r(sqe.off === ALL_ONES ? libc.read(fd, p, sqe.len) : libc.pread(fd, p, sqe.len, sqe.off));
      case OP.WRITE: case OP.WRITE_FIXED:
        return r(sqe.off === ALL_ONES ? libc.write(fd, p, sqe.len) : libc.pwrite(fd, p, sqe.len, sqe.off));
      case OP.READV:
        return r(sqe.off === ALL_ONES ? libc.readv(fd, p, sqe.len) : libc.preadv(fd, p, sqe.len, sqe.off));
      case OP.WRITEV:
        return r(sqe.off === ALL_ONES ? libc.writev(fd, p, sqe.len) : libc.pwritev(fd, p, sqe.len, sqe.off));
      case OP.FSYNC:
        return r((sqe.opFlags & FSYNC_DATASYNC) !== 0 ? libc.fdatasync(fd) : libc.fsync(fd));
      case OP.OPENAT:
        return this.installFile(sqe, r(libc.openat(sqe.fd, p, sqe.opFlags, sqe.len)));
      case OP.OPENAT2:
        return this.installFile(sqe, r(libc.syscall(437, sqe.fd, sqe.addr, sqe.off, sqe.len, 0, 0)));
      case OP.CLOSE:
        return this.closeFile(sqe);
      case OP.STATX:
        return r(libc.statx(sqe.fd, p, sqe.opFlags, sqe.len, sqe.off as Pointer));
      case OP.SPLICE: {
        const fdIn = (sqe.opFlags & 0x80000000) !== 0 ? this.files[sqe.spliceFdIn] : sqe.spliceFdIn;
        this.offIn[0] = BigInt(sqe.addr);
        this.offOut[0] = BigInt(sqe.off);
        return r(libc.splice(
          fdIn, sqe.addr === ALL_ONES ? null : this.offIn, fd, sqe.off === ALL_ONES ? null : this.offOut,
          sqe.len, sqe.opFlags & 0x7fffffff,
        ));
      }
      case OP.SEND: return this.socketOp(sqe, POLL.OUT, () => libc.send(fd, p, sqe.len, sqe.opFlags | MSG.DONTWAIT));
      case OP.RECV: return this.socketOp(sqe, POLL.IN, () => libc.recv(fd, p, sqe.len, sqe.opFlags | MSG.DONTWAIT));
      case OP.SENDMSG: return this.socketOp(sqe, POLL.OUT, () => libc.sendmsg(fd, p, sqe.opFlags | MSG.DONTWAIT));
      case OP.RECVMSG: return this.socketOp(sqe, POLL.IN, () => libc.recvmsg(fd, p, sqe.opFlags | MSG.DONTWAIT));
      case OP.ACCEPT:
        // accept4 on a blocking listener would block the thread: only call it once poll says so.
        if (!this.pollNow(fd, POLL.IN)) return this.park(sqe, POLL.IN);
        return r(libc.accept4(fd, p, sqe.off as Pointer, sqe.opFlags));
      case OP.CONNECT:
        return r(libc.connect(fd, p, sqe.off));
      case OP.SHUTDOWN:
        return r(libc.shutdown(fd, sqe.len));
      case OP.MKDIRAT:
        return r(libc.mkdirat(sqe.fd, p, sqe.len));
      case OP.SYMLINKAT:
        return r(libc.symlinkat(p, sqe.fd, sqe.off as Pointer));
      case OP.LINKAT:
        return r(libc.linkat(sqe.fd, p, sqe.len, sqe.off as Pointer, sqe.opFlags));
      case OP.RENAMEAT:
        return r(libc.renameat2(sqe.fd, p, sqe.len, sqe.off as Pointer, sqe.opFlags));
      case OP.UNLINKAT:
        return r(libc.unlinkat(sqe.fd, p, sqe.opFlags));
      case OP.FALLOCATE:
        return r(libc.fallocate(fd, sqe.len, sqe.off, sqe.addr));
      case OP.TIMEOUT:
        return this.addTimer(sqe);
      case OP.ASYNC_CANCEL:
        return this.cancel(sqe.addr);
      default:
        return -E.EINVAL;
    }
  }

  private installFile(sqe: Sqe, fd: number): number {
    if (fd < 0 || sqe.fileIndex === 0) return fd;
    let slot = sqe.fileIndex === 0xffffffff ? this.files.indexOf(-1) : sqe.fileIndex - 1;
    if (slot < 0 || slot >= this.files.length) {
      libc.close(fd);
      return sqe.fileIndex === 0xffffffff ? -E.ENFILE : -E.EINVAL;
    }
    if (this.files[slot] >= 0) libc.close(this.files[slot]);
    this.files[slot] = fd;
    return sqe.fileIndex === 0xffffffff ? slot : 0;
  }

  private closeFile(sqe: Sqe): number {
    if (sqe.fileIndex === 0) return libc.close(sqe.fd) < 0 ? -errno() : 0;
    const slot = sqe.fileIndex - 1;
    const fd = this.files[slot];
    if (fd === undefined || fd < 0) return -E.EBADF;
    this.files[slot] = -1;
    return libc.close(fd) < 0 ? -errno() : 0;
  }

  /** Run a socket call without blocking; park it when it would block. */
  private socketOp(sqe: Sqe, events: number, call: () => number): number {
    const res = call();
    if (res >= 0) return res;
    const e = errno();
    return e === E.EAGAIN ? this.park(sqe, events) : -e;
  }

  private park(sqe: Sqe, events: number): number {
    this.parked.push({ sqe, events });
    return PARKED;
  }

  private pollfd = new Uint8Array(POLLFD.size);
  private pollNow(fd: number, events: number): boolean {
    const dv = new DataView(this.pollfd.buffer);
    dv.setInt32(0, fd, true);
    dv.setInt16(4, events, true);
    dv.setInt16(6, 0, true);
    return libc.poll(this.pollfd, 1, 0) > 0;
  }

  private retryParked(): void {
    const parked = this.parked.splice(0);
    for (const p of parked) {
      const res = this.execute(p.sqe);
      if (res !== PARKED) this.post(p.sqe.userData, res, p.sqe.flags);
    }
  }

  // ---- timers and cancellation -------------------------------------------------------

  private addTimer(sqe: Sqe): number {
    const sec = Number(read.i64(sqe.addr as Pointer, 0));
    const nsec = Number(read.i64(sqe.addr as Pointer, 8));
    const ms = sec * 1000 + nsec / 1e6;
    const deadline = (sqe.opFlags & TIMEOUT_F.ABS) !== 0 ? ms : performance.now() + ms;
    this.timers.push({
      userData: sqe.userData, deadline, count: sqe.off, seen: 0,
      etimeSuccess: (sqe.opFlags & TIMEOUT_F.ETIME_SUCCESS) !== 0,
    });
    return PARKED;
  }

  private expireTimers(): void {
    const now = performance.now();
    for (let i = 0; i < this.timers.length; i++) {
      const t = this.timers[i];
      if (t.deadline <= now) {
        this.timers.splice(i--, 1);
        this.post(t.userData, -E.ETIME, 0);
      }
    }
  }

  private cancel(userData: number): number {
    const ti = this.timers.findIndex((t) => t.userData === userData);
    if (ti >= 0) {
      this.post(this.timers.splice(ti, 1)[0].userData, -E.ECANCELED, 0);
      return 0;
    }
    const pi = this.parked.findIndex((p) => p.sqe.userData === userData);
    if (pi >= 0) {
      this.post(this.parked.splice(pi, 1)[0].sqe.userData, -E.ECANCELED, 0);
      return 0;
    }
    return -E.ENOENT;
  }

  /** Sleep in poll(2) until a parked socket is ready or the next timer is due. */
  private waitForProgress(): boolean {
    if (this.parked.length === 0 && this.timers.length === 0) return false;
    let timeout = -1;
    if (this.timers.length > 0) {
      const next = Math.min(...this.timers.map((t) => t.deadline));
      timeout = Math.max(0, Math.ceil(next - performance.now()));
    }
    if (this.parked.length === 0) {
      Bun.sleepSync(timeout);
      return true;
    }
    const fds = new Uint8Array(this.parked.length * POLLFD.size);
    const dv = new DataView(fds.buffer);
    this.parked.forEach((p, i) => {
      dv.setInt32(i * POLLFD.size, this.fd(p.sqe), true);
      dv.setInt16(i * POLLFD.size + 4, p.events, true);
    });
    libc.poll(fds, this.parked.length, timeout);
    return true;
  }

  // ---- completion ---------------------------------------------------------------------

  private available(): number {
    const cq = this.memory.cq;
    return (cq[1] - cq[0]) >>> 0;
  }

  private post(userData: number, res: number, _flags: number): void {
    for (const t of this.timers) {
      if (t.count > 0 && ++t.seen >= t.count) {
        this.timers.splice(this.timers.indexOf(t), 1);
        this.post(t.userData, 0, 0);
        break;
      }
    }
    if ((_flags & IOSQE.CQE_SKIP_SUCCESS) !== 0 && res >= 0) return;
    if (this.overflow.length > 0 || this.available() >= this.memory.cqEntries) {
      this.overflow.push(userData, res);
      this.memory.sq[this.memory.sqFlags] |= SQ_FLAGS.CQ_OVERFLOW;
      return;
    }
    this.write(userData, res);
  }

  private write(userData: number, res: number): void {
    const m = this.memory;
    const tail = m.cq[m.cqTail];
    const at = m.cqes + (tail & m.cqMask) * 4;
    m.cq[at] = userData;
    m.cq[at + 1] = 0;
    m.cq[at + 2] = res >>> 0;
    m.cq[at + 3] = 0;
    m.cq[m.cqTail] = (tail + 1) >>> 0;
  }

  private flushOverflow(): void {
    const m = this.memory;
    let i = 0;
    while (i < this.overflow.length && this.available() < m.cqEntries) {
      this.write(this.overflow[i], this.overflow[i + 1]);
      i += 2;
    }
    this.overflow.splice(0, i);
    if (this.overflow.length === 0) m.sq[m.sqFlags] &= ~SQ_FLAGS.CQ_OVERFLOW;
  }

  // ---- registration -------------------------------------------------------------------

  registerFiles(fds: Int32Array | number): number {
    this.files = typeof fds === "number" ? new Int32Array(fds).fill(-1) : Int32Array.from(fds);
    return 0;
  }

  unregisterFiles(): number {
    this.files = new Int32Array(0);
    return 0;
  }

  registerBuffers(_iovecs: number, _count: number): number {
    return 0;
  }

  unregisterBuffers(): number {
    return 0;
  }

  probe(): boolean[] {
    const supported: boolean[] = [];
    for (const op of EMULATED) supported[op] = true;
    return supported;
  }

  close(): void {
    for (const fd of this.files) if (fd >= 0) libc.close(fd);
    this.files = new Int32Array(0);
  }
}

const PARKED = Number.MIN_SAFE_INTEGER;

const EMULATED = [
  OP.NOP, OP.READ, OP.WRITE, OP.READ_FIXED, OP.WRITE_FIXED, OP.READV, OP.WRITEV, OP.FSYNC, OP.OPENAT,
  OP.OPENAT2, OP.CLOSE, OP.STATX, OP.SPLICE, OP.SEND, OP.RECV, OP.SENDMSG, OP.RECVMSG, OP.ACCEPT,
  OP.CONNECT, OP.SHUTDOWN, OP.MKDIRAT, OP.SYMLINKAT, OP.LINKAT, OP.RENAMEAT, OP.UNLINKAT, OP.FALLOCATE,
  OP.TIMEOUT, OP.ASYNC_CANCEL,
];

