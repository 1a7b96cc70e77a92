/**
 * SHA-256 of file contents on worker threads, for --checksum (a file's whole content) and
 * for resuming (a partial's prefix), so that hashing never stalls a session's event loop.
 *
 * Why: hashing a large file synchronously stopped everything else on that end for as long
 * as it took (~0.5 s per GB here, far longer from a slow disk): no data moved, no answers
 * went out, and a peer that heard nothing for its idle timeout (60 s) dropped the session.
 * Here the hashing runs on other threads; the loop keeps moving data and sends KEEPALIVE
 * frames while a hash is pending (docs/PROTOCOL.md), and on a machine with cores to spare
 * several files hash at once.
 *
 * Owns: the workers (started on first use, at most `threads`, one job each at a time), the
 * queue of jobs waiting for one, a shared result table (hash-protocol.ts) and an eventfd
 * whose READ on the ring wakes the loop when a worker has finished. A job owns the fd it is
 * given: the worker closes it, also on failure. Callbacks run from the ring's completion
 * dispatch, in the loop's thread.
 *
 * Must never: call back after close(), call back twice, or block the loop. Small files are
 * the caller's business: hashing 256 KiB inline costs less than the round trip (INLINE_MAX).
 */
import { availableParallelism } from "node:os";
import { errno, libc } from "../../ffi/libc.ts";
import { SysError } from "../errors.ts";
import { workerEntry } from "../system/worker-entry.ts";
import type { CompletionTarget, Ring } from "../uring/ring.ts";
import { prepRead } from "../uring/prep.ts";
import { HASH_SLOT_BYTES, type HashWorkerIn } from "./hash-protocol.ts";
import { structs, type Pinned } from "./mem.ts";

/** A digest, or -errno when reading failed. */
export type HashResult = Uint8Array | number;

/** Files up to this size are hashed inline by the callers: cheaper than a worker's round trip. */
export const INLINE_HASH_MAX = 256 * 1024;

const EFD_CLOEXEC = 0o2000000;

interface Job {
  fd: number;
  length: number;
  done: (r: HashResult) => void;
}

/** Worker threads for hashing: one core is left for the loop, at most four (disks rarely feed more). */
export function defaultHashThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class HashPool implements CompletionTarget {
  private readonly workers: (Worker | undefined)[];
  private readonly running: (Job | undefined)[];
  private readonly queue: Job[] = [];
  private readonly state: Int32Array;
  private readonly digests: Uint8Array;
  private readonly shared: SharedArrayBuffer;
  private readonly efd: number;
  private readonly readBuf: Pinned;
  private armed = false;
  private closed = false;
  private outstanding = 0;

  constructor(private readonly ring: Ring, private readonly threads = defaultHashThreads()) {
    this.shared = new SharedArrayBuffer(threads * 4 + threads * HASH_SLOT_BYTES);
    this.state = new Int32Array(this.shared, 0, threads);
    this.digests = new Uint8Array(this.shared, threads * 4, threads * HASH_SLOT_BYTES);
    this.workers = new Array<Worker | undefined>(threads).fill(undefined);
    this.running = new Array<Job | undefined>(threads).fill(undefined);
    this.efd = libc.eventfd(0, EFD_CLOEXEC);
    if (this.efd < 0) throw new SysError("eventfd", errno(), "(hash pool)");
    this.readBuf = structs.alloc(8);
  }

  /** Jobs queued or running. */
  get busy(): boolean {
    return this.outstanding > 0;
  }

  /**
   * SHA-256 of the first `length` bytes of `fd`; `done` gets the digest, or -errno. The
   * pool takes `fd` over (the worker closes it): pass a descriptor of the job's own (dup it
   * if the caller keeps using the file).
   */
  submit(fd: number, length: number, done: (r: HashResult) => void): void {
    if (this.closed) throw new Error("hash pool used after close()");
    this.queue.push({ fd, length, done });
    this.outstanding++;
    this.startJobs();
  }

  private startJobs(): void {
    for (let i = 0; i < this.threads && this.queue.length > 0; i++) {
      if (this.running[i] !== undefined) continue;
      const job = this.queue.shift()!;
      this.running[i] = job;
      Atomics.store(this.state, i, 0);
      this.worker(i).postMessage({ t: "job", slot: i, fd: job.fd, length: job.length } satisfies HashWorkerIn);
    }
    this.arm();
  }

  private worker(i: number): Worker {
    let w = this.workers[i];
    if (w === undefined) {
      w = new Worker(workerEntry(new URL("./hash-worker.ts", import.meta.url), "net/hash-worker", import.meta));
      // Never what keeps the process alive.
      w.unref();
      w.postMessage({ t: "init", shared: this.shared, slots: this.threads, efd: this.efd } satisfies HashWorkerIn);
      this.workers[i] = w;
    }
    return w;
  }

  private arm(): void {
    if (this.armed || this.closed || this.outstanding === 0) return;
    const ring = this.ring;
    const sqe = ring.getSqe();
    prepRead(ring, sqe, this.efd, this.readBuf.addr, 8, 0);
    ring.setUserData(sqe, ring.track(this, 0));
    this.armed = true;
  }

  onCompletion(_res: number, _flags: number, _tag: number): void {
    this.armed = false;
    if (this.closed) return;
    const finished: [Job, HashResult][] = [];
    for (let i = 0; i < this.threads; i++) {
      const job = this.running[i];
      if (job === undefined) continue;
      const s = Atomics.load(this.state, i);
      if (s === 0) continue;
      this.running[i] = undefined;
      this.outstanding--;
      finished.push([job, s === 1 ? this.digests.slice(i * HASH_SLOT_BYTES, (i + 1) * HASH_SLOT_BYTES) : s]);
    }
    this.startJobs();
    for (const [job, r] of finished) job.done(r);
  }

  /**
   * Stops calling back. Idle workers stop; a worker still hashing finishes on its own (it
   * closes its fd), and the eventfd it will write to then stays open, so that its number
   * can never be someone else's file by then.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue) libc.close(job.fd);
    this.queue.length = 0;
    let busy = false;
    for (let i = 0; i < this.threads; i++) {
      if (this.running[i] === undefined) this.workers[i]?.terminate();
      else busy = true;
    }
    // An armed READ completes (ignored) once the counter is non-zero.
    libc.write(this.efd, new BigUint64Array([1n]), 8);
    if (!busy) libc.close(this.efd);
  }
}

const pools = new WeakMap<Ring, HashPool>();

/** The hash pool of a session's ring, made on first use (most sessions never hash). */
export function hashPoolFor(ring: Ring): HashPool {
  let p = pools.get(ring);
  if (p === undefined) {
    p = new HashPool(ring);
    pools.set(ring, p);
  }
  return p;
}

/** Closes the ring's hash pool, if it has one; before the ring itself closes. */
export function closeHashPoolOf(ring: Ring): void {
  pools.get(ring)?.close();
  pools.delete(ring);
}
