/**
 * Builds RingMemory views over io_uring's shared memory from io_uring_params.
 *
 * Owns: turning kernel offsets + mapped addresses into typed-array views, and the raw
 * mmap/munmap of ring memory for the syscall backend. Never touches ring state.
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { libc, errno } from "../../ffi/libc.ts";
import { CQE, CQRING_OFFSETS, MAP, PROT, SETUP, SQE, SQRING_OFFSETS, URING_PARAMS } from "../../ffi/structs.ts";
import type { RingMemory } from "./types.ts";

export interface RingSizes {
  sqRingBytes: number;
  cqRingBytes: number;
  sqesBytes: number;
}

/** Sizes of the three mappings, as liburing computes them. */
export function ringSizes(params: DataView): RingSizes {
  const sqEntries = params.getUint32(URING_PARAMS.sqEntries, true);
  const cqEntries = params.getUint32(URING_PARAMS.cqEntries, true);
  const flags = params.getUint32(URING_PARAMS.flags, true);
  const sqOff = URING_PARAMS.sqOff;
  const cqOff = URING_PARAMS.cqOff;
  const noArray = (flags & SETUP.NO_SQARRAY) !== 0;
  const sqRingBytes = noArray
    ? params.getUint32(sqOff + SQRING_OFFSETS.flags, true) + 4
    : params.getUint32(sqOff + SQRING_OFFSETS.array, true) + sqEntries * 4;
  const cqRingBytes = params.getUint32(cqOff + CQRING_OFFSETS.cqes, true) + cqEntries * CQE.size;
  return { sqRingBytes, cqRingBytes, sqesBytes: sqEntries * SQE.size };
}

/** Views over already-mapped ring memory. */
export function memoryFromParams(
  params: DataView,
  sqRing: ArrayBuffer,
  cqRing: ArrayBuffer,
  sqes: ArrayBuffer,
): RingMemory {
  const w = (off: number): number => params.getUint32(off, true) >>> 2;
  const sqOff = URING_PARAMS.sqOff;
  const cqOff = URING_PARAMS.cqOff;
  const flags = params.getUint32(URING_PARAMS.flags, true);
  const sq = new Uint32Array(sqRing);
  const cq = new Uint32Array(cqRing);
  return {
    sq,
    sqHead: w(sqOff + SQRING_OFFSETS.head),
    sqTail: w(sqOff + SQRING_OFFSETS.tail),
    sqMask: sq[w(sqOff + SQRING_OFFSETS.ringMask)],
    sqEntries: sq[w(sqOff + SQRING_OFFSETS.ringEntries)],
    sqFlags: w(sqOff + SQRING_OFFSETS.flags),
    sqArray: (flags & SETUP.NO_SQARRAY) !== 0 ? -1 : w(sqOff + SQRING_OFFSETS.array),
    sqes,
    cq,
    cqHead: w(cqOff + CQRING_OFFSETS.head),
    cqTail: w(cqOff + CQRING_OFFSETS.tail),
    cqMask: cq[w(cqOff + CQRING_OFFSETS.ringMask)],
    cqEntries: cq[w(cqOff + CQRING_OFFSETS.ringEntries)],
    cqOverflow: w(cqOff + CQRING_OFFSETS.overflow),
    cqes: w(cqOff + CQRING_OFFSETS.cqes),
  };
}

/** mmap a region of the ring fd; returns the address or throws -errno as a number. */
export function mmapRing(fd: number, bytes: number, offset: number): number {
  const p = libc.mmap(null, bytes, PROT.READ | PROT.WRITE, MAP.SHARED | MAP.POPULATE, fd, offset) as number | null;
  // MAP_FAILED is (void*)-1, which bun:ffi hands back as 2^64-1 (a huge number) or null.
  if (p === null || p === 0 || p >= 2 ** 63) throw -errno();
  return p;
}

export function view(addr: number, bytes: number): ArrayBuffer {
  return toArrayBuffer(addr as Pointer, 0, bytes);
}
