/**
 * The synchronous backend: an emulation of io_uring's SQ/CQ rings in process memory,
 * executing each SQE with plain system calls when the ring is entered.
 *
 * Why: io_uring may be missing or forbidden (io_uring_disabled, a container's seccomp
 * profile answering EPERM/ENOSYS). Emulating the ring, rather than writing a second
 * engine, keeps one code path above src/uring/ for every backend.
 *
 * Owns: executing SQEs in order with io_uring's semantics that the engines rely on
 * (IO_LINK chains cancelled by a failure or a short transfer, the rest of a chain waiting
 * for a parked member, TIMEOUT by time or count, registered file slots, CQ overflow kept
 * and flushed). Operations on sockets and pipes that would block (send/recv, read/write
 * at the current position or on a stream, splice through a pipe, accept) are parked and
 * retried after poll(2), so a peer in the same process can make progress. Never blocks
 * forever: with nothing runnable it returns to the caller.
 */
import { read, type Pointer } from "bun:ffi";
import { E } from "../../ffi/errno.ts";
import { addressOf, errno, libc } from "../../ffi/libc.ts";
import {
  CQE, FEAT, FSYNC_DATASYNC, IOSQE, IOVEC, MSG, OP, POLL, POLLFD, SEEK, SPLICE_F, SQ_FLAGS, SQE, TIMEOUT_F,
} from "../../ffi/structs.ts";
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

/** Where a linked chain goes on once its current (parked) member completes. */
interface Continuation {
  chain: Sqe[] | null;
  next: number;
}

interface Parked extends Continuation {
  sqe: Sqe;
  /** poll(2) these (fd, events) pairs before retrying. */
  fds: number[];
  events: number[];
}

interface Timer extends Continuation {
  sqe: Sqe;
  deadline: number;
  /** Completions to wait for (0: time only). */
  count: number;
  seen: number;
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
  /** One struct iovec for READ/WRITE done through preadv2/pwritev2. */
  private readonly iov = new BigUint64Array(2);
  private readonly iovAddr = addressOf(this.iov);
  /** The chain the SQE being executed belongs to, for park() and addTimer(). */
  private cont: Continuation = { chain: null, next: 0 };

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
    // Members of the linked chain being collected: the kernel runs a chain one member
    // after the other, each only once the previous one has completed.
    let chain: Sqe[] | null = null;
    while (head !== tail) {
      const sqe = this.decode((head & m.sqMask) * (SQE.size >>> 2));
      head = (head + 1) >>> 0;
      n++;
      const linked = (sqe.flags & (IOSQE.IO_LINK | IOSQE.IO_HARDLINK)) !== 0;
      if (chain !== null || linked) {
        (chain ??= []).push(sqe);
        if (!linked) {
          this.runChain(chain, 0);
          chain = null;
        }
        continue;
      }
      this.runChain(null, 0, sqe);
    }
    // Like the kernel, a chain still open at the end of a submission is submitted as is.
    if (chain !== null) this.runChain(chain, 0);
    m.sq[m.sqHead] = head;
    return n;
  }

  /** Run `chain` from member `i` (or the single unlinked `one`) until it parks or ends. */
  private runChain(chain: Sqe[] | null, i: number, one?: Sqe): void {
    for (;;) {
      const sqe = chain === null ? (one as Sqe) : chain[i];
      this.cont = { chain, next: i + 1 };
      const res = this.execute(sqe);
      this.cont = NO_CHAIN;
      if (res === PARKED) return;
      if (!this.complete(sqe, res, chain, i + 1)) return;
      i++;
    }
  }

  /**
   * Post the completion of `sqe`; when it belongs to a chain, cancel the rest if it broke
   * the chain. Returns true when the chain goes on with member `next`.
   */
  private complete(sqe: Sqe, res: number, chain: Sqe[] | null, next: number, fromTimer = false): boolean {
    this.post(sqe.userData, res, sqe.flags, fromTimer);
    if (chain === null || next >= chain.length) return false;
    if ((sqe.flags & IOSQE.IO_HARDLINK) === 0 && this.breaksChain(sqe, res)) {
      for (let j = next; j < chain.length; j++) this.post(chain[j].userData, -E.ECANCELED, chain[j].flags);
      return false;
    }
    return true;
  }

  /** Finish a parked or timed member and run the rest of its chain. */
  private resume(sqe: Sqe, res: number, c: Continuation, fromTimer = false): void {
    if (this.complete(sqe, res, c.chain, c.next, fromTimer)) this.runChain(c.chain, c.next);
  }

  private breaksChain(sqe: Sqe, res: number): boolean {
    if (sqe.opcode === OP.TIMEOUT && res === -E.ETIME && (sqe.opFlags & TIMEOUT_F.ETIME_SUCCESS) !== 0) return false;
    if (res < 0) return true;
    switch (sqe.opcode) {
      case OP.READ: case OP.WRITE: case OP.READ_FIXED: case OP.WRITE_FIXED: case OP.SPLICE:
        return res < sqe.len;
      case OP.READV: case OP.WRITEV:
        return res < this.iovBytes(sqe.addr, sqe.len);
      // The kernel fails a short send/recv only when MSG_WAITALL asked for everything.
      case OP.SEND: case OP.RECV:
        return (sqe.opFlags & MSG.WAITALL) !== 0 && res < sqe.len;
      default:
        return false;
    }
  }

  private iovBytes(iovecs: number, count: number): number {
    let total = 0;
    for (let i = 0; i < count; i++) total += Number(read.u64(iovecs as Pointer, i * IOVEC.size + IOVEC.len));
    return total;
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
        return this.readWrite(sqe, fd, false, this.oneIov(sqe.addr, sqe.len), 1);
      case OP.WRITE: case OP.WRITE_FIXED:
        return this.readWrite(sqe, fd, true, this.oneIov(sqe.addr, sqe.len), 1);
      case OP.READV:
        return this.readWrite(sqe, fd, false, sqe.addr, sqe.len);
      case OP.WRITEV:
        return this.readWrite(sqe, fd, true, sqe.addr, sqe.len);
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
        const fdIn = (sqe.opFlags & SPLICE_F.FD_IN_FIXED) !== 0 ? this.files[sqe.spliceFdIn] : sqe.spliceFdIn;
        this.offIn[0] = BigInt(sqe.addr);
        this.offOut[0] = BigInt(sqe.off);
        // SPLICE_F_NONBLOCK: never wait on the pipe end in this thread (its peer may be us).
        const res = libc.splice(
          fdIn, sqe.addr === ALL_ONES ? null : this.offIn, fd, sqe.off === ALL_ONES ? null : this.offOut,
          sqe.len, (sqe.opFlags & ~SPLICE_F.FD_IN_FIXED) | SPLICE_F.NONBLOCK,
        );
        if (res >= 0) return res;
        const e = errno();
        if (e !== E.EAGAIN) return -e;
        // Wait for whichever end is a pipe (or socket): a regular file is always "ready".
        const fds: number[] = [];
        const events: number[] = [];
        if (isStream(fdIn)) fds.push(fdIn), events.push(POLL.IN);
        if (isStream(fd)) fds.push(fd), events.push(POLL.OUT);
        return this.parkOn(sqe, fds, events);
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

  private oneIov(addr: number, len: number): number {
    this.iov[0] = BigInt(addr);
    this.iov[1] = BigInt(len);
    return this.iovAddr;
  }

  /**
   * READ/WRITE(V): pread/pwrite at an offset; at the current position (offset -1), or on a
   * pipe or socket (which ignore offsets in io_uring, where pread says ESPIPE), without
   * blocking: preadv2/pwritev2 with RWF_NOWAIT, parked until poll(2) says ready.
   */
  private readWrite(sqe: Sqe, fd: number, write: boolean, iov: number, count: number): number {
    if (sqe.off !== ALL_ONES) {
      const v = write ? libc.pwritev(fd, iov as Pointer, count, sqe.off) : libc.preadv(fd, iov as Pointer, count, sqe.off);
      if (v >= 0) return v;
      const e = errno();
      if (e !== E.ESPIPE) return -e;
    }
    const v = libc.syscall(write ? SYS_PWRITEV2 : SYS_PREADV2, fd, iov, count, -1, 0, RWF_NOWAIT);
    if (v >= 0) return v;
    const e = errno();
    if (e === E.EAGAIN) {
      const events = write ? POLL.OUT : POLL.IN;
      // A regular file says EAGAIN when the data is not cached; poll says it is ready.
      if (!this.pollNow(fd, events)) return this.park(sqe, events);
    } else if (e !== E.EOPNOTSUPP) {
      return -e;
    }
    const b = write ? libc.writev(fd, iov as Pointer, count) : libc.readv(fd, iov as Pointer, count);
    return b < 0 ? -errno() : b;
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
    return this.parkOn(sqe, [this.fd(sqe)], [events]);
  }

  private parkOn(sqe: Sqe, fds: number[], events: number[]): number {
    this.parked.push({ sqe, fds, events, chain: this.cont.chain, next: this.cont.next });
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
      this.cont = p;
      const res = this.execute(p.sqe);
      this.cont = NO_CHAIN;
      if (res !== PARKED) this.resume(p.sqe, res, p);
    }
  }

  // ---- timers and cancellation -------------------------------------------------------

  private addTimer(sqe: Sqe): number {
    const sec = Number(read.i64(sqe.addr as Pointer, 0));
    const nsec = Number(read.i64(sqe.addr as Pointer, 8));
    const ms = sec * 1000 + nsec / 1e6;
    const deadline = (sqe.opFlags & TIMEOUT_F.ABS) !== 0 ? ms : performance.now() + ms;
    this.timers.push({ sqe, deadline, count: sqe.off, seen: 0, chain: this.cont.chain, next: this.cont.next });
    return PARKED;
  }

  private expireTimers(): void {
    const now = performance.now();
    const due = this.takeTimers((t) => t.deadline <= now);
    for (const t of due) this.resume(t.sqe, -E.ETIME, t, true);
  }

  /**
   * Remove and return the timers `fired` selects. Callers resume them only afterwards:
   * resuming runs the rest of a chain, whose completions update `this.timers` again.
   */
  private takeTimers(fired: (t: Timer) => boolean): Timer[] {
    const out: Timer[] = [];
    for (let i = 0; i < this.timers.length; i++) {
      const t = this.timers[i];
      if (fired(t)) {
        this.timers.splice(i--, 1);
        out.push(t);
      }
    }
    return out;
  }

  /**
   * A completion other than a timeout's was posted: count it for TIMEOUTs waiting for a
   * number of completions. Like the kernel, a timeout's own completion does not count,
   * and it is posted after the completion that made the count.
   */
  private countForTimers(): void {
    const due = this.takeTimers((t) => t.count > 0 && ++t.seen >= t.count);
    for (const t of due) this.resume(t.sqe, 0, t, true);
  }

  private cancel(userData: number): number {
    const ti = this.timers.findIndex((t) => t.sqe.userData === userData);
    if (ti >= 0) {
      const t = this.timers.splice(ti, 1)[0];
      this.resume(t.sqe, -E.ECANCELED, t, true);
      return 0;
    }
    const pi = this.parked.findIndex((p) => p.sqe.userData === userData);
    if (pi >= 0) {
      const p = this.parked.splice(pi, 1)[0];
      this.resume(p.sqe, -E.ECANCELED, p);
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
    let n = 0;
    for (const p of this.parked) n += p.fds.length;
    const fds = new Uint8Array(Math.max(1, n) * POLLFD.size);
    const dv = new DataView(fds.buffer);
    let i = 0;
    for (const p of this.parked) {
      for (let j = 0; j < p.fds.length; j++, i++) {
        dv.setInt32(i * POLLFD.size + POLLFD.fd, p.fds[j], true);
        dv.setInt16(i * POLLFD.size + POLLFD.events, p.events[j], true);
      }
    }
    libc.poll(fds, n, timeout);
    return true;
  }

  // ---- completion ---------------------------------------------------------------------

  private available(): number {
    const cq = this.memory.cq;
    return (cq[1] - cq[0]) >>> 0;
  }

  /** `sqeFlags` are the SQE's IOSQE_* flags (for CQE_SKIP_SUCCESS); CQE flags are always 0. */
  private post(userData: number, res: number, sqeFlags: number, fromTimer = false): void {
    if ((sqeFlags & IOSQE.CQE_SKIP_SUCCESS) !== 0 && res >= 0) return;
    if (this.overflow.length > 0 || this.available() >= this.memory.cqEntries) {
      this.overflow.push(userData, res);
      this.memory.sq[this.memory.sqFlags] |= SQ_FLAGS.CQ_OVERFLOW;
    } else {
      this.write(userData, res);
    }
    if (!fromTimer && this.timers.length > 0) this.countForTimers();
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

  setIowqMaxWorkers(_bounded: number, _unbounded: number): number {
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
const NO_CHAIN: Continuation = { chain: null, next: 0 };
/** x86_64 preadv2/pwritev2 (glibc 2.36's wrappers are not in ffi/libc.ts) and RWF_NOWAIT. */
const SYS_PREADV2 = 327;
const SYS_PWRITEV2 = 328;
const RWF_NOWAIT = 0x8;

/** A pipe or a socket (lseek says ESPIPE): the kinds of file a splice can wait on. */
function isStream(fd: number): boolean {
  return libc.lseek(fd, 0, SEEK.CUR) < 0 && errno() === E.ESPIPE;
}

const EMULATED = [
  OP.NOP, OP.READ, OP.WRITE, OP.READ_FIXED, OP.WRITE_FIXED, OP.READV, OP.WRITEV, OP.FSYNC, OP.OPENAT,
  OP.OPENAT2, OP.CLOSE, OP.STATX, OP.SPLICE, OP.SEND, OP.RECV, OP.SENDMSG, OP.RECVMSG, OP.ACCEPT,
  OP.CONNECT, OP.SHUTDOWN, OP.MKDIRAT, OP.SYMLINKAT, OP.LINKAT, OP.RENAMEAT, OP.UNLINKAT, OP.FALLOCATE,
  OP.TIMEOUT, OP.ASYNC_CANCEL,
];

