/**
 * Which byte ranges of one file have arrived, for sessions with data streams (send -j N,
 * docs/PROTOCOL.md 8.8): a file's DATA and HOLE frames may then come on any stream, in
 * any order, so the receiver keeps the covered ranges as a sorted list of disjoint
 * [start, end) intervals, merged when they touch.
 *
 * Owns: the overlap, bounds and interval-count rules (a peer that sends a byte twice, past
 * the announced size, or shreds a file into more than MAX_INTERVALS pieces is refused).
 * Never does I/O.
 */
import { ProtocolError } from "../errors.ts";
import { displaySafe } from "./wire.ts";

/** Disjoint pieces one file may be in at once (the reference sender needs a few per stream). */
export const MAX_INTERVALS = 4096;

export class Coverage {
  /** [start0, end0, start1, end1, ...], sorted, disjoint, never touching. */
  private iv: number[] = [];

  constructor(readonly size: number) {}

  /**
   * Claims [start, start + len); ProtocolError on overlap, past the size, or too many pieces.
   * `rel` is the file's path (peer text: made display-safe only for a message, not on every call).
   */
  add(start: number, len: number, rel: string): void {
    const end = start + len;
    if (end > this.size) throw new ProtocolError("frame", `the sender sent more bytes for ${displaySafe(rel)} than the ${this.size} it announced`);
    if (len === 0) return;
    const iv = this.iv;
    // First interval whose end is >= start (binary search over the pairs).
    let lo = 0;
    let hi = iv.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (iv[2 * mid + 1] < start) lo = mid + 1;
      else hi = mid;
    }
    const i = 2 * lo;
    if (i < iv.length && iv[i] < end && iv[i + 1] > start) {
      throw new ProtocolError("frame", `the sender sent bytes [${start}, ${end}) of ${displaySafe(rel)} twice (overlapping data)`);
    }
    const joinsLeft = i < iv.length && iv[i + 1] === start;
    const right = joinsLeft ? i + 2 : i;
    if (right < iv.length && iv[right] < end) {
      throw new ProtocolError("frame", `the sender sent bytes [${start}, ${end}) of ${displaySafe(rel)} twice (overlapping data)`);
    }
    const joinsRight = right < iv.length && iv[right] === end;
    if (joinsLeft && joinsRight) {
      iv[i + 1] = iv[right + 1];
      iv.splice(right, 2);
    } else if (joinsLeft) {
      iv[i + 1] = end;
    } else if (joinsRight) {
      iv[right] = start;
    } else {
      if (iv.length / 2 >= MAX_INTERVALS) throw new ProtocolError("limit", `${displaySafe(rel)} arrived in more than ${MAX_INTERVALS} separate pieces`);
      iv.splice(i, 0, start, end);
    }
  }

  /** Every byte of [0, size) has arrived. */
  get complete(): boolean {
    return this.size === 0 || (this.iv.length === 2 && this.iv[0] === 0 && this.iv[1] === this.size);
  }

  /** End of the contiguous range from 0 (what a resume may keep). */
  get prefix(): number {
    return this.iv.length > 0 && this.iv[0] === 0 ? this.iv[1] : 0;
  }

  /** Nothing received yet. */
  get empty(): boolean {
    return this.iv.length === 0;
  }

  /** Forgets everything (a sender that restarts a resumed file from 0). */
  clear(): void {
    this.iv = [];
  }

  /** The intervals, for tests and messages. */
  intervals(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.iv.length; i += 2) out.push([this.iv[i], this.iv[i + 1]]);
    return out;
  }
}
