/**
 * The io_uring submission/completion state machine, in TypeScript.
 *
 * Owns: the SQ/CQ views, SQE allocation (submitting when the SQ is full), publishing the
 * SQ tail, reaping CQEs (flushing CQ overflow), and dispatching each completion to the
 * object that asked for it, keyed by user_data, without allocating per operation.
 * Never knows what an operation means: prep.ts fills SQEs, engines interpret results.
 */
import { E } from "../../ffi/errno.ts";
import { SysError } from "../errors.ts";
import { CQE_F, SQ_FLAGS, SQE } from "../../ffi/structs.ts";
import type { BackendKind, RingBackend, RingMemory } from "./types.ts";

/** Receives completions. One long-lived object per in-flight state machine, not per op. */
export interface CompletionTarget {
  /** `tag` is whatever number the target passed to `track`; `res` is the CQE result. */
  onCompletion(res: number, flags: number, tag: number): void;
}

/** user_data 0 means "nobody is waiting": its completion is counted and dropped. */
export const UNTRACKED = 0;

const SQE_WORDS = SQE.size >>> 2;
// Module constants rather than property loads on the imported objects in the hot paths.
const CQE_F_MORE = CQE_F.MORE;
const NEEDS_FLUSH = SQ_FLAGS.CQ_OVERFLOW | SQ_FLAGS.TASKRUN;

export class Ring {
  readonly backend: RingBackend;
  readonly kind: BackendKind;
  readonly entries: number;
  /** Views over the SQE array, for prep.ts. */
  readonly sqe8: Uint8Array;
  readonly sqe16: Uint16Array;
  readonly sqe32: Uint32Array;
  readonly sqeI32: Int32Array;
  /** The same memory as 8-byte words: zeroing an SQE is 8 stores (cheaper than `fill`). */
  private readonly sqe64: Float64Array;

  private readonly mem: RingMemory;
  private readonly sq: Uint32Array;
  private readonly cq: Uint32Array;
  private readonly cqI32: Int32Array;
  private readonly sqMask: number;
  private readonly cqMask: number;
  private readonly cqes: number;
  /** Local SQ tail: SQEs handed out but maybe not yet published to the kernel. */
  private sqeTail: number;
  /** SQ tail value last published (written to the shared tail). */
  private published: number;
  /**
   * The kernel's SQ head as last read. It only moves forward, and (without SQPOLL) only
   * inside io_uring_enter, so a stale value merely under-estimates the free space.
   */
  private sqHeadSeen: number;

  // Dispatch table: slot i holds user_data i (1-based; 0 is UNTRACKED).
  private targets: (CompletionTarget | undefined)[] = [undefined];
  private tags = new Float64Array(64);
  private freeSlots = new Int32Array(64);
  private freeCount = 0;
  private nextSlot = 1;
  /** Operations tracked and not yet completed. */
  inFlight = 0;
  private closed = false;

  constructor(backend: RingBackend) {
    this.backend = backend;
    this.kind = backend.kind;
    const m = backend.memory;
    this.mem = m;
    this.entries = m.sqEntries;
    this.sqe8 = new Uint8Array(m.sqes);
    this.sqe16 = new Uint16Array(m.sqes);
    this.sqe32 = new Uint32Array(m.sqes);
    this.sqeI32 = new Int32Array(m.sqes);
    this.sqe64 = new Float64Array(m.sqes);
    this.sq = m.sq;
    this.cq = m.cq;
    this.cqI32 = new Int32Array(m.cq.buffer, m.cq.byteOffset, m.cq.length);
    this.sqMask = m.sqMask;
    this.cqMask = m.cqMask;
    this.cqes = m.cqes;
    this.sqeTail = this.published = Atomics.load(this.sq, m.sqTail);
    this.sqHeadSeen = Atomics.load(this.sq, m.sqHead);
  }

  /** Number of SQEs handed out and not yet submitted. */
  get pending(): number {
    return (this.sqeTail - this.published) >>> 0;
  }

  /**
   * The next free SQE, zeroed, as a word index into `sqe32` (16 words per SQE).
   * When the SQ is full, submits what is queued and retries.
   */
  getSqe(): number {
    const tail = this.sqeTail;
    if (((tail - this.sqHeadSeen) >>> 0) >= this.entries) this.makeRoom();
    const base = (tail & this.sqMask) * SQE_WORDS;
    // Zero the 64 bytes with eight 8-byte stores (+0.0 is all zero bits): on the hot path
    // this is several times cheaper than TypedArray.prototype.fill.
    const z = base >>> 1;
    const f = this.sqe64;
    f[z] = 0;
    f[z + 1] = 0;
    f[z + 2] = 0;
    f[z + 3] = 0;
    f[z + 4] = 0;
    f[z + 5] = 0;
    f[z + 6] = 0;
    f[z + 7] = 0;
    this.sqeTail = (tail + 1) >>> 0;
    return base;
  }

  /** The SQ looks full: re-read the kernel's head, and submit until there is room. */
  private makeRoom(): void {
    for (;;) {
      this.sqHeadSeen = Atomics.load(this.sq, this.mem.sqHead);
      if (((this.sqeTail - this.sqHeadSeen) >>> 0) < this.entries) return;
      this.submit();
    }
  }

  /** Record who wants the completion; returns the user_data to put in the SQE. */
  track(target: CompletionTarget, tag: number): number {
    let slot: number;
    if (this.freeCount > 0) slot = this.freeSlots[--this.freeCount];
    else {
      slot = this.nextSlot++;
      if (slot >= this.tags.length) this.grow();
    }
    this.targets[slot] = target;
    this.tags[slot] = tag;
    this.inFlight++;
    return slot;
  }

  private grow(): void {
    const tags = new Float64Array(this.tags.length * 2);
    tags.set(this.tags);
    this.tags = tags;
    const free = new Int32Array(this.freeSlots.length * 2);
    free.set(this.freeSlots);
    this.freeSlots = free;
  }

  /** Set the user_data of the SQE at word index `sqe`. */
  setUserData(sqe: number, userData: number): void {
    this.sqe32[sqe + (SQE.userData >>> 2)] = userData;
  }

  /** Publish queued SQEs and enter the kernel. Returns the number submitted. */
  submit(): number {
    return this.enter(0);
  }

  /**
   * Publish queued SQEs and start them now, from inside a completion handler: never waits,
   * never reaps or dispatches (so no handler runs re-entrantly). If the kernel wants the CQ
   * drained first (EBUSY) or a signal interrupts, the SQEs simply go with the next enter.
   */
  submitNow(): void {
    if (this.closed || this.sqeTail === this.published) return;
    Atomics.store(this.sq, this.mem.sqTail, this.sqeTail);
    this.published = this.sqeTail;
    const toSubmit = (this.sqeTail - (this.sqHeadSeen = Atomics.load(this.sq, this.mem.sqHead))) >>> 0;
    if (toSubmit === 0) return;
    const r = this.backend.enter(toSubmit, 0, false);
    if (r < 0 && r !== -E.EINTR && r !== -E.EBUSY && r !== -E.EAGAIN) throw new SysError("io_uring_enter", -r);
  }

  /** Publish queued SQEs and wait until at least `minComplete` completions are ready. */
  submitAndWait(minComplete: number): number {
    return this.enter(minComplete);
  }

  /**
   * Publish queued SQEs and have the kernel post what has completed, without waiting:
   * with DEFER_TASKRUN nothing completes until the task asks (for loops that poll while
   * they have work of their own).
   */
  submitAndGetEvents(): number {
    return this.enter(0, true);
  }

  private enter(minComplete: number, poll = false): number {
    if (this.closed) throw new Error("ring is closed");
    if (this.sqeTail !== this.published) {
      Atomics.store(this.sq, this.mem.sqTail, this.sqeTail);
      this.published = this.sqeTail;
    }
    // Count from the kernel's SQ head, not from what we published last: without
    // IORING_SETUP_SUBMIT_ALL the kernel stops a submission at an SQE it rejects, and the
    // SQEs after it stay in the SQ; they must go with this enter, or they would never run.
    const toSubmit = (this.sqeTail - (this.sqHeadSeen = Atomics.load(this.sq, this.mem.sqHead))) >>> 0;
    if (toSubmit === 0 && minComplete === 0 && !poll && !this.overflowed()) return 0;
    const getEvents = minComplete > 0 || poll || this.overflowed();
    for (;;) {
      const r = this.backend.enter(toSubmit, minComplete, getEvents);
      if (r >= 0) return r;
      // Interrupted by a signal: nothing was lost, try again.
      if (r === -E.EINTR) continue;
      // The kernel wants us to reap first (CQ full / overflow backlog): make room, retry.
      if (r === -E.EBUSY || r === -E.EAGAIN) {
        if (this.reapInto() > 0) continue;
        if (minComplete > 0) continue;
        return 0;
      }
      if (r === -E.ETIME) return 0;
      throw new SysError("io_uring_enter", -r);
    }
  }

  private overflowed(): boolean {
    return (Atomics.load(this.sq, this.mem.sqFlags) & NEEDS_FLUSH) !== 0;
  }

  /**
   * Reap every available completion and dispatch it. Returns how many were reaped.
   * Flushes the kernel's overflow list when the CQ overflowed (FEAT_NODROP keeps them).
   */
  processCompletions(): number {
    let n = this.reapInto();
    while (this.overflowed()) {
      this.backend.enter(0, 0, true);
      const more = this.reapInto();
      if (more === 0) break;
      n += more;
    }
    return n;
  }

  private reapInto(): number {
    const cq = this.cq;
    const cqI32 = this.cqI32;
    const cqes = this.cqes;
    const mask = this.cqMask;
    const headIdx = this.mem.cqHead;
    const tail = Atomics.load(cq, this.mem.cqTail);
    let n = 0;
    // The head is re-read after every dispatch: a handler that waits re-entrantly (runOne
    // inside onCompletion) reaps CQEs itself, possibly past our `tail`; continuing from a
    // local copy would dispatch those CQEs a second time.
    for (let head = cq[headIdx]; ((tail - head) | 0) > 0; head = cq[headIdx]) {
      const at = cqes + (head & mask) * 4;
      // user_data is ours and always below 2^32: read its low word only.
      const ud = cq[at];
      const res = cqI32[at + 2];
      const flags = cq[at + 3];
      n++;
      // Publish the head before dispatch: a handler may submit and wait re-entrantly. A
      // plain store: it follows this CQE's loads in program order (x86 keeps loads before
      // later stores), and the kernel only needs to see it by our next io_uring_enter.
      cq[headIdx] = (head + 1) >>> 0;
      if (ud !== UNTRACKED) this.dispatch(ud, res, flags);
    }
    return n;
  }

  private dispatch(ud: number, res: number, flags: number): void {
    const target = this.targets[ud];
    if (target === undefined) throw new Error(`completion for unknown user_data ${ud}`);
    const tag = this.tags[ud];
    if ((flags & CQE_F_MORE) === 0) {
      this.targets[ud] = undefined;
      this.freeSlots[this.freeCount++] = ud;
      this.inFlight--;
    }
    target.onCompletion(res, flags, tag);
  }

  /**
   * Drive the ring until `done()` says so: submit, wait for at least one completion,
   * dispatch. Throws if nothing is in flight but `done()` is still false (a stall).
   */
  runUntil(done: () => boolean): void {
    while (!done()) {
      if (this.processCompletions() > 0) continue;
      if (this.inFlight === 0 && this.pending === 0) throw new Error("ring stalled: nothing in flight");
      this.submitAndWait(1);
      this.processCompletions();
    }
  }

  /** Submit everything and wait until every tracked operation has completed. */
  drain(): void {
    this.runUntil(() => this.inFlight === 0 && this.pending === 0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.backend.close();
  }
}

