/**
 * The contract between the TypeScript ring and what sits under it.
 *
 * Owns: the RingBackend interface and the shared memory description. A backend maps (or
 * emulates) the SQ/CQ memory and knows how to "enter"; everything else (SQE filling,
 * completion reaping, dispatch) is one TypeScript implementation in ring.ts, whatever
 * the backend. Never put backend-specific logic in ring.ts.
 */

export type BackendKind = "liburing" | "raw" | "sync";

/** Views over the rings' memory, in the kernel's layout (or an emulation of it). */
export interface RingMemory {
  /** 32-bit words of the SQ ring; the indices below are word indices into it. */
  readonly sq: Uint32Array;
  readonly sqHead: number;
  readonly sqTail: number;
  readonly sqMask: number;
  readonly sqEntries: number;
  readonly sqFlags: number;
  /** Word index of the SQ index array, or -1 when there is none (NO_SQARRAY). */
  readonly sqArray: number;
  /** The SQE array: `sqEntries` × 64 bytes. */
  readonly sqes: ArrayBuffer;
  /** 32-bit words of the CQ ring. */
  readonly cq: Uint32Array;
  readonly cqHead: number;
  readonly cqTail: number;
  readonly cqMask: number;
  readonly cqEntries: number;
  readonly cqOverflow: number;
  /** Word index of the first CQE. */
  readonly cqes: number;
}

export interface RingSetup {
  /** Requested SQ entries (rounded up to a power of two by the kernel). */
  entries: number;
  /** IORING_SETUP_* flags wanted; a backend drops the ones the kernel refuses. */
  flags: number;
  /** CQ size, when not the default (2 × entries). */
  cqEntries?: number;
}

export interface RingBackend {
  readonly kind: BackendKind;
  readonly memory: RingMemory;
  /** IORING_FEAT_* reported by the kernel (the emulation reports NODROP|RW_CUR_POS). */
  readonly features: number;
  /** The IORING_SETUP_* flags actually in effect. */
  readonly setupFlags: number;
  /** Human-readable detail for `doctor` and `-v` ("liburing 2.3", "io_uring syscalls"...). */
  readonly detail: string;
  /**
   * io_uring_enter: submit `toSubmit` SQEs already published at the SQ tail, then wait
   * until at least `minComplete` CQEs are available. Returns the number submitted or -errno.
   */
  enter(toSubmit: number, minComplete: number, getEvents: boolean): number;
  /** IORING_REGISTER_FILES (sparse when `fds` is a count). Returns 0 or -errno. */
  registerFiles(fds: Int32Array | number): number;
  unregisterFiles(): number;
  /** IORING_REGISTER_BUFFERS with an iovec array at `iovecs`. Returns 0 or -errno. */
  registerBuffers(iovecs: number, count: number): number;
  unregisterBuffers(): number;
  /**
   * IORING_REGISTER_IOWQ_MAX_WORKERS: at most `bounded` io-wq workers for bounded work
   * (regular files: an OPENAT that must read an inode) and `unbounded` for the rest; 0
   * keeps a limit. Returns 0 or -errno (the synchronous emulation has no io-wq: 0).
   */
  setIowqMaxWorkers(bounded: number, unbounded: number): number;
  /** Which opcodes the kernel supports (index = opcode), or null if the probe failed. */
  probe(): boolean[] | null;
  close(): void;
}
