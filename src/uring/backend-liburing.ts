/**
 * io_uring set up and entered through liburing (io_uring_queue_init_params,
 * io_uring_submit_and_wait...).
 *
 * Owns: the malloc'd `struct io_uring` and keeping liburing's own view of the SQ
 * (sqe_head/sqe_tail) in step with the TypeScript ring, which fills SQEs itself.
 * Never reaps completions itself.
 */
import { ptr, read, type Pointer } from "bun:ffi";
import { errno, libc } from "../../ffi/libc.ts";
import type { Liburing } from "../../ffi/liburing.ts";
import { ENTER, LIBURING_RING, SETUP, SYS, URING_PARAMS, URING_PROBE } from "../../ffi/structs.ts";
import { setupWithFallback } from "./backend-raw.ts";
import { memoryFromParams, view } from "./memory.ts";
import { parseProbe } from "./probe.ts";
import type { RingBackend, RingMemory, RingSetup } from "./types.ts";

/** The kernel's sigset size, for io_uring_enter's last argument. */
const SIGSET_BYTES = 8;

export class LiburingBackend implements RingBackend {
  readonly kind = "liburing" as const;
  readonly memory: RingMemory;
  readonly features: number;
  readonly setupFlags: number;
  readonly detail: string;
  private readonly ring: Pointer;
  /** u32 words of struct io_uring, to update sq.sqe_head/sqe_tail without an FFI call. */
  private readonly words: Uint32Array;
  private readonly lib: Liburing["symbols"];
  private open = true;

  constructor(lib: Liburing, setup: RingSetup) {
    this.lib = lib.symbols;
    this.detail = `liburing ${lib.version} (${lib.path})`;
    const slot = new BigUint64Array(1);
    if (libc.posix_memalign(ptr(slot), 64, LIBURING_RING.size) !== 0) throw -12;
    this.ring = Number(slot[0]) as Pointer;
    new Uint8Array(view(this.ring, LIBURING_RING.size)).fill(0);
    // liburing 2.3 predates IORING_SETUP_NO_SQARRAY (kernel 6.6): it would pre-fill its SQ
    // "array" at sq_off.array = 0, i.e. over the ring's head and tail. Never ask for it here.
    const wanted: RingSetup = { ...setup, flags: setup.flags & ~SETUP.NO_SQARRAY };
    const { result, params, flags } = setupWithFallback(wanted, (_f, p) =>
      this.lib.io_uring_queue_init_params(wanted.entries, this.ring, p),
    );
    if (result < 0) {
      libc.free(this.ring);
      throw result;
    }
    this.setupFlags = flags;
    const dv = new DataView(params.buffer);
    this.features = dv.getUint32(URING_PARAMS.features, true);
    const r = this.ring;
    const sqRing = view(read.ptr(r, LIBURING_RING.sqRingPtr) as number, Number(read.u64(r, LIBURING_RING.sqRingSz)));
    const cqRing = view(read.ptr(r, LIBURING_RING.cqRingPtr) as number, Number(read.u64(r, LIBURING_RING.cqRingSz)));
    const sqEntries = dv.getUint32(URING_PARAMS.sqEntries, true);
    const sqes = view(read.ptr(r, LIBURING_RING.sqSqes) as number, sqEntries * 64);
    this.memory = memoryFromParams(dv, sqRing, cqRing, sqes);
    this.words = new Uint32Array(view(r, LIBURING_RING.size));
  }

  enter(toSubmit: number, minComplete: number, getEvents: boolean): number {
    // The TypeScript ring already published the SQ tail; tell liburing where it is so
    // its flush computes the same count (FIELD_NOTES: it submits from sq.sqe_tail).
    const tail = this.memory.sq[this.memory.sqTail];
    this.words[LIBURING_RING.sqSqeTail >>> 2] = tail;
    if (toSubmit === 0) this.words[LIBURING_RING.sqSqeHead >>> 2] = tail;
    if (minComplete > 0) return this.lib.io_uring_submit_and_wait(this.ring, minComplete);
    const r = this.lib.io_uring_submit(this.ring);
    if (!getEvents || r < 0) return r;
    // Reap without waiting: with DEFER_TASKRUN completions are only posted when the task
    // enters with GETEVENTS, and liburing 2.3's submit only does that on its own flags.
    // (The raw syscall, not io_uring_get_events, so no liburing newer than 2.x is needed.)
    const fd = this.words[LIBURING_RING.ringFd >>> 2];
    const e = libc.syscall(SYS.io_uring_enter, fd, 0, 0, ENTER.GETEVENTS, 0, SIGSET_BYTES);
    return e < 0 ? -errno() : r;
  }

  registerFiles(fds: Int32Array | number): number {
    return typeof fds === "number"
      ? this.lib.io_uring_register_files_sparse(this.ring, fds)
      : this.lib.io_uring_register_files(this.ring, fds, fds.length);
  }

  unregisterFiles(): number {
    return this.lib.io_uring_unregister_files(this.ring);
  }

  registerBuffers(iovecs: number, count: number): number {
    return this.lib.io_uring_register_buffers(this.ring, iovecs as Pointer, count);
  }

  setIowqMaxWorkers(bounded: number, unbounded: number): number {
    const v = new Uint32Array([bounded, unbounded]);
    return this.lib.io_uring_register_iowq_max_workers(this.ring, ptr(v));
  }

  unregisterBuffers(): number {
    return this.lib.io_uring_unregister_buffers(this.ring);
  }

  probe(): boolean[] | null {
    const p = this.lib.io_uring_get_probe_ring(this.ring);
    if (p === null) return null;
    const buf = new Uint8Array(view(p as number, URING_PROBE.size + 256 * URING_PROBE.opSize));
    const out = parseProbe(buf);
    this.lib.io_uring_free_probe(p);
    return out;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.lib.io_uring_queue_exit(this.ring);
    libc.free(this.ring);
  }
}
