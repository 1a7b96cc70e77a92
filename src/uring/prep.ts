/**
 * SQE preparation helpers, mirroring liburing's static inline io_uring_prep_* functions.
 *
 * Owns: which SQE field each operation's arguments go into (the kernel's ABI). Every
 * helper takes the ring and the SQE word index from `ring.getSqe()`, writes fields and
 * returns nothing; pointers are plain addresses (see ffi/libc.ts addressOf). Never
 * submits, never allocates.
 */
import { FILE_INDEX_ALLOC, IOSQE, OP, SQE } from "../../ffi/structs.ts";
import type { Ring } from "./ring.ts";

const W_OFF = SQE.off >>> 2;
const W_ADDR = SQE.addr >>> 2;
const W_LEN = SQE.len >>> 2;
const W_OPFLAGS = SQE.opFlags >>> 2;
const W_FILEIDX = SQE.spliceFdIn >>> 2;
const H_BUFINDEX = SQE.bufIndex >>> 1;
const TWO32 = 4294967296;

/** Write a u64 field as two words; -1 means all ones (e.g. "current file position"). */
function put64(w: Uint32Array, at: number, v: number): void {
  if (v >= 0 && v <= 0xffffffff) {
    // The common case (pointers below 4 GiB are rare, offsets and lengths are not): no division.
    w[at] = v;
    w[at + 1] = 0;
  } else if (v < 0) {
    w[at] = 0xffffffff;
    w[at + 1] = 0xffffffff;
  } else {
    w[at] = v >>> 0;
    w[at + 1] = (v / TWO32) >>> 0;
  }
}

/** io_uring_prep_rw: the common layout every helper builds on. */
export function prepRw(r: Ring, sqe: number, op: number, fd: number, addr: number, len: number, off: number): void {
  const w = r.sqe32;
  r.sqe8[sqe << 2] = op;
  r.sqeI32[sqe + 1] = fd;
  put64(w, sqe + W_OFF, off);
  put64(w, sqe + W_ADDR, addr);
  w[sqe + W_LEN] = len;
}

// ---- flags and user data ------------------------------------------------------------

/** io_uring_sqe_set_flags (IOSQE_IO_LINK, IOSQE_IO_HARDLINK, IOSQE_FIXED_FILE...). */
export function sqeSetFlags(r: Ring, sqe: number, flags: number): void {
  r.sqe8[(sqe << 2) + SQE.flags] = flags;
}

export const FIXED_FILE = IOSQE.FIXED_FILE;

function setOpFlags(r: Ring, sqe: number, flags: number): void {
  r.sqe32[sqe + W_OPFLAGS] = flags >>> 0;
}

function setFileIndex(r: Ring, sqe: number, slot: number): void {
  // liburing's __io_uring_set_target_fixed_file: slots are stored +1; ALLOC wraps to ~0.
  r.sqe32[sqe + W_FILEIDX] = slot === FILE_INDEX_ALLOC ? FILE_INDEX_ALLOC : slot + 1;
}

// ---- operations ---------------------------------------------------------------------

const OP_NOP = OP.NOP;

/**
 * io_uring_prep_nop. Hot in benchmarks: writes only the fields io_uring_prep_rw(NOP, -1,
 * 0, 0, 0) would make non-zero, relying on getSqe() having zeroed the SQE (measured: the
 * generic path costs ~5-9 ns per NOP more, bench/ring-nop.ts).
 */
export function prepNop(r: Ring, sqe: number): void {
  r.sqe8[sqe << 2] = OP_NOP;
  r.sqeI32[sqe + 1] = -1;
}

export function prepRead(r: Ring, sqe: number, fd: number, buf: number, nbytes: number, offset: number): void {
  prepRw(r, sqe, OP.READ, fd, buf, nbytes, offset);
}

export function prepWrite(r: Ring, sqe: number, fd: number, buf: number, nbytes: number, offset: number): void {
  prepRw(r, sqe, OP.WRITE, fd, buf, nbytes, offset);
}

export function prepReadv(r: Ring, sqe: number, fd: number, iovecs: number, nrVecs: number, offset: number): void {
  prepRw(r, sqe, OP.READV, fd, iovecs, nrVecs, offset);
}

export function prepWritev(r: Ring, sqe: number, fd: number, iovecs: number, nrVecs: number, offset: number): void {
  prepRw(r, sqe, OP.WRITEV, fd, iovecs, nrVecs, offset);
}

export function prepReadFixed(r: Ring, sqe: number, fd: number, buf: number, nbytes: number, offset: number, bufIndex: number): void {
  prepRw(r, sqe, OP.READ_FIXED, fd, buf, nbytes, offset);
  r.sqe16[(sqe << 1) + H_BUFINDEX] = bufIndex;
}

export function prepWriteFixed(r: Ring, sqe: number, fd: number, buf: number, nbytes: number, offset: number, bufIndex: number): void {
  prepRw(r, sqe, OP.WRITE_FIXED, fd, buf, nbytes, offset);
  r.sqe16[(sqe << 1) + H_BUFINDEX] = bufIndex;
}

export function prepOpenat(r: Ring, sqe: number, dfd: number, path: number, flags: number, mode: number): void {
  prepRw(r, sqe, OP.OPENAT, dfd, path, mode, 0);
  setOpFlags(r, sqe, flags);
}

/** Opens into a registered-file slot (`FILE_INDEX_ALLOC` lets the kernel pick; res = slot). */
export function prepOpenatDirect(r: Ring, sqe: number, dfd: number, path: number, flags: number, mode: number, slot: number): void {
  prepOpenat(r, sqe, dfd, path, flags, mode);
  setFileIndex(r, sqe, slot);
}

/** `how` is the address of a struct open_how (OPEN_HOW.size bytes). */
export function prepOpenat2(r: Ring, sqe: number, dfd: number, path: number, how: number, howSize: number): void {
  prepRw(r, sqe, OP.OPENAT2, dfd, path, howSize, how);
}

export function prepClose(r: Ring, sqe: number, fd: number): void {
  prepRw(r, sqe, OP.CLOSE, fd, 0, 0, 0);
}

export function prepCloseDirect(r: Ring, sqe: number, slot: number): void {
  prepClose(r, sqe, 0);
  setFileIndex(r, sqe, slot);
}

/** `statxbuf` is the address of a STATX.size buffer. */
export function prepStatx(r: Ring, sqe: number, dfd: number, path: number, flags: number, mask: number, statxbuf: number): void {
  prepRw(r, sqe, OP.STATX, dfd, path, mask, statxbuf);
  setOpFlags(r, sqe, flags);
}

/** Offsets of -1 mean "use and advance the file position" (required for pipes). */
export function prepSplice(
  r: Ring, sqe: number, fdIn: number, offIn: number, fdOut: number, offOut: number, nbytes: number, spliceFlags: number,
): void {
  prepRw(r, sqe, OP.SPLICE, fdOut, 0, nbytes, offOut);
  put64(r.sqe32, sqe + W_ADDR, offIn);
  r.sqeI32[sqe + W_FILEIDX] = fdIn;
  setOpFlags(r, sqe, spliceFlags);
}

export function prepSend(r: Ring, sqe: number, sockfd: number, buf: number, len: number, flags: number): void {
  prepRw(r, sqe, OP.SEND, sockfd, buf, len, 0);
  setOpFlags(r, sqe, flags);
}

export function prepRecv(r: Ring, sqe: number, sockfd: number, buf: number, len: number, flags: number): void {
  prepRw(r, sqe, OP.RECV, sockfd, buf, len, 0);
  setOpFlags(r, sqe, flags);
}

/** `msg` is the address of a struct msghdr. */
export function prepSendmsg(r: Ring, sqe: number, fd: number, msg: number, flags: number): void {
  prepRw(r, sqe, OP.SENDMSG, fd, msg, 1, 0);
  setOpFlags(r, sqe, flags);
}

export function prepRecvmsg(r: Ring, sqe: number, fd: number, msg: number, flags: number): void {
  prepRw(r, sqe, OP.RECVMSG, fd, msg, 1, 0);
  setOpFlags(r, sqe, flags);
}

/** `addr`/`addrlen` may be 0 (don't want the peer address); `addrlen` points to a u32. */
export function prepAccept(r: Ring, sqe: number, fd: number, addr: number, addrlen: number, flags: number): void {
  prepRw(r, sqe, OP.ACCEPT, fd, addr, 0, addrlen);
  setOpFlags(r, sqe, flags);
}

export function prepConnect(r: Ring, sqe: number, fd: number, addr: number, addrlen: number): void {
  prepRw(r, sqe, OP.CONNECT, fd, addr, 0, addrlen);
}

export function prepShutdown(r: Ring, sqe: number, fd: number, how: number): void {
  prepRw(r, sqe, OP.SHUTDOWN, fd, 0, how, 0);
}

export function prepFsync(r: Ring, sqe: number, fd: number, fsyncFlags: number): void {
  prepRw(r, sqe, OP.FSYNC, fd, 0, 0, 0);
  setOpFlags(r, sqe, fsyncFlags);
}

export function prepMkdirat(r: Ring, sqe: number, dfd: number, path: number, mode: number): void {
  prepRw(r, sqe, OP.MKDIRAT, dfd, path, mode, 0);
}

export function prepSymlinkat(r: Ring, sqe: number, target: number, newdirfd: number, linkpath: number): void {
  prepRw(r, sqe, OP.SYMLINKAT, newdirfd, target, 0, linkpath);
}

export function prepLinkat(r: Ring, sqe: number, olddfd: number, oldpath: number, newdfd: number, newpath: number, flags: number): void {
  prepRw(r, sqe, OP.LINKAT, olddfd, oldpath, newdfd, newpath);
  setOpFlags(r, sqe, flags);
}

export function prepRenameat(r: Ring, sqe: number, olddfd: number, oldpath: number, newdfd: number, newpath: number, flags: number): void {
  prepRw(r, sqe, OP.RENAMEAT, olddfd, oldpath, newdfd, newpath);
  setOpFlags(r, sqe, flags);
}

export function prepUnlinkat(r: Ring, sqe: number, dfd: number, path: number, flags: number): void {
  prepRw(r, sqe, OP.UNLINKAT, dfd, path, 0, 0);
  setOpFlags(r, sqe, flags);
}

export function prepFallocate(r: Ring, sqe: number, fd: number, mode: number, offset: number, len: number): void {
  prepRw(r, sqe, OP.FALLOCATE, fd, 0, mode, offset);
  put64(r.sqe32, sqe + W_ADDR, len);
}

/**
 * `ts` is the address of a struct __kernel_timespec. Completes with -ETIME when the time
 * passes, or with 0 once `count` other completions have arrived (count 0: time only).
 */
export function prepTimeout(r: Ring, sqe: number, ts: number, count: number, flags: number): void {
  prepRw(r, sqe, OP.TIMEOUT, -1, ts, 1, count);
  setOpFlags(r, sqe, flags);
}

export function prepCancel(r: Ring, sqe: number, userData: number, flags: number): void {
  prepRw(r, sqe, OP.ASYNC_CANCEL, -1, userData, 0, 0);
  setOpFlags(r, sqe, flags);
}

