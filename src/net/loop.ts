/**
 * The network engines' event loop on one io_uring: submit, wait, dispatch completions,
 * and everything time-based (handshake and idle timeouts, progress ticks) without a
 * syscall or timer per operation.
 *
 * Owns: a periodic TIMEOUT operation (the "tick") that bounds every wait, the list of
 * deadlines checked after each wake-up, and yielding to the JavaScript event loop now and
 * then, so signal handlers (SIGINT: clean up, exit 130) and stderr writes get to run while
 * the engine is busy, and running long local work (`work`) in slices between completions
 * without ever blocking in the kernel while some of it is left. Never interprets
 * completions: they go to their CompletionTarget.
 */
import { E } from "../../ffi/errno.ts";
import { KERNEL_TIMESPEC } from "../../ffi/structs.ts";
import type { CompletionTarget, Ring } from "../uring/ring.ts";
import { prepCancel, prepTimeout } from "../uring/prep.ts";
import { structs, type Pinned } from "./mem.ts";

export interface Deadline {
  /** performance.now() value at which `fire` runs. */
  at: number;
  fire(): void;
  /** Set by cancel(); a cancelled deadline never fires. */
  cancelled: boolean;
}

const TICK_TAG = 1;
const CANCEL_TAG = 2;

export class Loop implements CompletionTarget {
  readonly ring: Ring;
  private readonly ts: Pinned;
  private tickArmed = false;
  private deadlines: Deadline[] = [];
  /** Called on every wake-up (at most every tickMs apart while idle); progress, abort checks. */
  onWake: (() => void) | undefined;
  /**
   * Long local work done in slices (the receiver's --delete pass): called after each wake;
   * "more" means call again soon (the loop then only polls the ring, never waits), "blocked"
   * that it waits for a completion (e.g. its sends to drain), "done" that it is over (the
   * loop forgets it).
   */
  work: (() => "more" | "blocked" | "done") | undefined;
  private workReady = false;
  private lastYield = 0;

  constructor(ring: Ring, tickMs = 100) {
    this.ring = ring;
    this.ts = structs.alloc(KERNEL_TIMESPEC.size);
    const v = new DataView(this.ts.u8.buffer, this.ts.u8.byteOffset, KERNEL_TIMESPEC.size);
    v.setBigInt64(KERNEL_TIMESPEC.sec, BigInt(Math.floor(tickMs / 1000)), true);
    v.setBigInt64(KERNEL_TIMESPEC.nsec, BigInt((tickMs % 1000) * 1_000_000), true);
  }

  now(): number {
    return performance.now();
  }

  /** Runs `fire` once, `ms` from now, unless cancelled first. */
  after(ms: number, fire: () => void): Deadline {
    const d: Deadline = { at: this.now() + ms, fire, cancelled: false };
    this.deadlines.push(d);
    return d;
  }

  /** Asks the kernel to cancel the operation whose user_data is `userData` (it completes with -ECANCELED). */
  cancel(userData: number): void {
    const sqe = this.ring.getSqe();
    prepCancel(this.ring, sqe, userData, 0);
    this.ring.setUserData(sqe, this.ring.track(this, CANCEL_TAG));
  }

  onCompletion(res: number, _flags: number, tag: number): void {
    if (tag === TICK_TAG) {
      this.tickArmed = false;
      // -ETIME is the normal expiry; anything else (e.g. -ECANCELED at teardown) just stops it.
      void (res === -E.ETIME);
    }
  }

  private armTick(): void {
    if (this.tickArmed) return;
    this.tickArmed = true;
    const sqe = this.ring.getSqe();
    prepTimeout(this.ring, sqe, this.ts.addr, 0, 0);
    this.ring.setUserData(sqe, this.ring.track(this, TICK_TAG));
  }

  private runDeadlines(): void {
    if (this.deadlines.length === 0) return;
    const now = this.now();
    let due: Deadline[] | undefined;
    const keep: Deadline[] = [];
    for (const d of this.deadlines) {
      if (d.cancelled) continue;
      if (d.at <= now) (due ??= []).push(d);
      else keep.push(d);
    }
    this.deadlines = keep;
    if (due !== undefined) for (const d of due) if (!d.cancelled) d.fire();
  }

  /**
   * Runs until `done()` is true. Completion handlers and deadlines may throw: the error
   * leaves this function (the ring stays consistent; the caller tears the session down).
   */
  async run(done: () => boolean): Promise<void> {
    const ring = this.ring;
    while (!done()) {
      this.armTick();
      const polling = this.workReady && this.work !== undefined;
      if (ring.processCompletions() === 0) {
        if (polling) ring.submitAndGetEvents();
        else ring.submitAndWait(1);
        ring.processCompletions();
      } else if (ring.pending > 0) {
        ring.submit();
      }
      this.runDeadlines();
      this.onWake?.();
      const work = this.work;
      if (work !== undefined) {
        const state = work();
        this.workReady = state === "more";
        if (state === "done" && this.work === work) this.work = undefined;
      }
      const now = this.now();
      if (now - this.lastYield >= 50) {
        this.lastYield = now;
        // Let the JS event loop run: signal handlers, timers, buffered stderr writes.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    // Publish anything queued by the last handlers (e.g. a final close) without waiting.
    if (ring.pending > 0) ring.submit();
  }
}
