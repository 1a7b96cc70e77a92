/**
 * Small completion targets built on the ring: finishing short reads and writes, and
 * running a single operation to completion for code that is not on a hot path.
 *
 * Owns: retry-on-short / retry-on-EINTR/EAGAIN logic for byte transfers. Never used
 * to hide real errors: a negative result other than EINTR/EAGAIN is reported as is.
 */
import { E } from "../../ffi/errno.ts";
import { OP } from "../../ffi/structs.ts";
import { prepRead, prepRecv, prepSend, prepWrite } from "./prep.ts";
import type { CompletionTarget, Ring } from "./ring.ts";

/** Prepare one SQE, wait for its completion, return cqe.res. Allocates: not for hot paths. */
export function runOne(ring: Ring, prep: (sqe: number) => void): number {
  let result: number | undefined;
  const target: CompletionTarget = {
    onCompletion(res) {
      result = res;
    },
  };
  const sqe = ring.getSqe();
  prep(sqe);
  ring.setUserData(sqe, ring.track(target, 0));
  ring.runUntil(() => result !== undefined);
  return result as number;
}

export type TransferOp = typeof OP.READ | typeof OP.WRITE | typeof OP.SEND | typeof OP.RECV;

/** Called once when a FullTransfer ends: `done` bytes moved, or `err` (negative errno). */
export interface TransferDone {
  onTransferDone(done: number, err: number, tag: number): void;
}

/**
 * Moves exactly `len` bytes (or until EOF for reads) with one logical operation,
 * resubmitting the remainder after a short read/write/send/recv and retrying EINTR and
 * EAGAIN. Reusable: call start() again after it finished. One object per in-flight
 * transfer slot, so no allocation per operation.
 */
export class FullTransfer implements CompletionTarget {
  private op: TransferOp = OP.READ;
  private fd = -1;
  private buf = 0;
  private len = 0;
  /** File offset of the first byte, or -1 for "current position"/sockets. */
  private off = 0;
  private done = 0;
  private flags = 0;
  private tag = 0;
  private retries = 0;
  busy = false;

  constructor(private readonly ring: Ring, private readonly sink: TransferDone) {}

  start(op: TransferOp, fd: number, buf: number, len: number, off: number, flags: number, tag: number): void {
    this.op = op;
    this.fd = fd;
    this.buf = buf;
    this.len = len;
    this.off = off;
    this.flags = flags;
    this.tag = tag;
    this.done = 0;
    this.retries = 0;
    this.busy = true;
    this.submitRest();
  }

  private submitRest(): void {
    const r = this.ring;
    const sqe = r.getSqe();
    const addr = this.buf + this.done;
    const rest = this.len - this.done;
    const off = this.off < 0 ? -1 : this.off + this.done;
    switch (this.op) {
      case OP.READ: prepRead(r, sqe, this.fd, addr, rest, off); break;
      case OP.WRITE: prepWrite(r, sqe, this.fd, addr, rest, off); break;
      case OP.SEND: prepSend(r, sqe, this.fd, addr, rest, this.flags); break;
      case OP.RECV: prepRecv(r, sqe, this.fd, addr, rest, this.flags); break;
    }
    r.setUserData(sqe, r.track(this, 0));
  }

  onCompletion(res: number): void {
    if (res < 0) {
      if ((res === -E.EINTR || res === -E.EAGAIN) && this.retries++ < 1000) return this.submitRest();
      return this.finish(res);
    }
    this.retries = 0;
    this.done += res;
    const isRead = this.op === OP.READ || this.op === OP.RECV;
    // A read of 0 bytes is end of file; a write of 0 bytes would loop forever.
    if (res === 0) return this.finish(isRead ? 0 : -E.EIO);
    if (this.done < this.len) return this.submitRest();
    this.finish(0);
  }

  private finish(err: number): void {
    this.busy = false;
    this.sink.onTransferDone(this.done, err, this.tag);
  }
}
