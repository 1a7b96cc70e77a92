/**
 * Memory the kernel reads or writes while an io_uring operation is in flight: send and
 * receive buffers, file staging buffers, and the small structs (timespec, msghdr,
 * sockaddr, open_how) whose addresses go into SQEs.
 *
 * Owns: anonymous mmap regions that never move and are never collected (JSC may move a
 * small typed array's bytes; an mmap'd region cannot move). Regions live as long as the
 * process: nothing unmaps them, so a region can never vanish under an operation still in
 * flight. A region its owner is done with goes back with recycle() and is handed out
 * again (zeroed) by the next pinned() of that size: a receiver serving session after
 * session (--keep-listening) reuses its buffers instead of growing by ~10 MB a session.
 * Never hands out memory that is still in flight: callers own that discipline (recycle
 * only what no operation can still touch).
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { errno, libc } from "../../ffi/libc.ts";
import { MAP, PROT } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";

export interface Pinned {
  /** Address of the first byte. */
  readonly addr: number;
  readonly u8: Uint8Array;
  readonly size: number;
}

const PAGE = 4096;

/** Recycled regions by size in bytes (whole pages). */
const spare = new Map<number, Pinned[]>();

/** `size` bytes (rounded up to pages) of zeroed memory at a fixed address. */
export function pinned(size: number): Pinned {
  const bytes = Math.max(PAGE, Math.ceil(size / PAGE) * PAGE);
  const reused = spare.get(bytes)?.pop();
  if (reused !== undefined) {
    reused.u8.fill(0);
    return reused;
  }
  const p = libc.mmap(null, bytes, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0) as number | null;
  if (p === null || p === 0 || p >= 2 ** 63) throw new SysError("mmap", errno());
  return { addr: p, u8: new Uint8Array(toArrayBuffer(p as Pointer, 0, bytes)), size: bytes };
}

/**
 * Gives a whole region from pinned() back for reuse. Only when no operation in flight can
 * still read or write it; never a piece of a region (a subarray carved by the caller).
 */
export function recycle(p: Pinned): void {
  if (p.size % PAGE !== 0 || p.u8.byteLength !== p.size) throw new RangeError("recycle: not a whole pinned region");
  let list = spare.get(p.size);
  if (list === undefined) spare.set(p.size, (list = []));
  list.push(p);
}

/** Regions waiting for reuse, and their bytes (tests, leak checks). */
export function spareStats(): { regions: number; bytes: number } {
  let regions = 0;
  let bytes = 0;
  for (const [size, list] of spare) {
    regions += list.length;
    bytes += size * list.length;
  }
  return { regions, bytes };
}

/**
 * Small fixed-address structs, carved 16-byte aligned from pinned pages. Allocation only
 * (structs live as long as their owner object, which is long-lived by design).
 */
export class StructArena {
  private page: Pinned | undefined;
  private used = 0;

  alloc(size: number): Pinned {
    const n = (size + 15) & ~15;
    if (n > PAGE) return pinned(n);
    if (this.page === undefined || this.used + n > this.page.size) {
      this.page = pinned(16 * PAGE);
      this.used = 0;
    }
    const at = this.used;
    this.used += n;
    const page = this.page;
    return { addr: page.addr + at, u8: page.u8.subarray(at, at + size), size };
  }
}

/** The process-wide arena for long-lived small structs. */
export const structs = new StructArena();
