/**
 * Runs the handshake state machine (handshake.ts) over a connected socket with io_uring.
 *
 * Owns: sending the handshake messages in order, receiving exactly `bytesNeeded()` bytes
 * at a time (so with kernel TLS no record byte is ever read into user space before TLS_RX
 * is set), the handshake deadline, and the rule that a failing side still sends what it
 * had queued (its CONFIRM) so the peer reaches the same precise error. Never touches the
 * record layer and never closes the socket: the caller owns the fd.
 */
import { E } from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";
import { MSG } from "../../ffi/structs.ts";
import { ProtocolError, SysError } from "../errors.ts";
import { prepRecv, prepSend } from "../uring/prep.ts";
import type { CompletionTarget } from "../uring/ring.ts";
import { HS_HEADER_LENGTH, HS_MAX_BODY, type Handshake, type HandshakeResult } from "./handshake.ts";
import type { Deadline, Loop } from "./loop.ts";
import { pinned, type Pinned } from "./mem.ts";

const TAG_SEND = 1;
const TAG_RECV = 2;

/** Buffers shared by handshakes: each HandshakeIO takes one pair for its lifetime. */
const pool: { out: Pinned; in: Pinned }[] = [];

export class HandshakeIO implements CompletionTarget {
  private readonly bufs: { out: Pinned; in: Pinned };
  private outQueue: Uint8Array[] = [];
  private sending = false;
  private sendLen = 0;
  private sendDone = 0;
  private recvArmed = false;
  private deadline: Deadline | undefined;
  private error: Error | undefined;
  private finished = false;
  private released = false;
  /** Handshake bytes received (for "did the peer say anything at all"). */
  received = 0;

  constructor(
    private readonly loop: Loop,
    readonly fd: number,
    readonly hs: Handshake,
    timeoutMs: number,
    private readonly onFinish: (io: HandshakeIO, result: HandshakeResult | undefined, error: Error | undefined) => void,
  ) {
    this.bufs = pool.pop() ?? { out: pinned(4096), in: pinned(4096) };
    this.deadline = loop.after(timeoutMs, () => {
      this.fail(new ProtocolError("timeout", `handshake timeout: no complete handshake within ${formatMs(timeoutMs)}`));
    });
  }

  start(): void {
    this.pumpSend();
    this.armRecv();
  }

  /** True while an operation of ours is in flight on the socket. */
  get busy(): boolean {
    return this.sending || this.recvArmed;
  }

  private pumpSend(): void {
    if (this.sending) return;
    for (let m = this.hs.nextOutgoing(); m !== null; m = this.hs.nextOutgoing()) this.outQueue.push(m);
    const next = this.outQueue.shift();
    if (next === undefined) {
      this.maybeFinish();
      return;
    }
    this.bufs.out.u8.set(next, 0);
    this.sendLen = next.length;
    this.sendDone = 0;
    this.sending = true;
    this.submitSend();
  }

  private submitSend(): void {
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    prepSend(ring, sqe, this.fd, this.bufs.out.addr + this.sendDone, this.sendLen - this.sendDone, MSG.NOSIGNAL);
    ring.setUserData(sqe, ring.track(this, TAG_SEND));
  }

  private armRecv(): void {
    if (this.recvArmed || this.error !== undefined || this.hs.done) return;
    const need = this.hs.bytesNeeded();
    if (need <= 0) return;
    if (need > HS_HEADER_LENGTH + HS_MAX_BODY) throw new RangeError("handshake asked for too many bytes");
    this.recvArmed = true;
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    prepRecv(ring, sqe, this.fd, this.bufs.in.addr, need, 0);
    ring.setUserData(sqe, ring.track(this, TAG_RECV));
  }

  onCompletion(res: number, _flags: number, tag: number): void {
    if (tag === TAG_SEND) {
      if (res < 0 && (res === -E.EINTR || res === -E.EAGAIN)) return this.submitSend();
      if (res <= 0) {
        this.sending = false;
        this.outQueue = [];
        this.fail(res === 0 || res === -E.EPIPE || res === -E.ECONNRESET
          ? new ProtocolError("frame", "the peer closed the connection during the handshake")
          : new SysError("send", -res));
        this.maybeFinish();
        return;
      }
      this.sendDone += res;
      if (this.sendDone < this.sendLen) return this.submitSend();
      this.sending = false;
      this.pumpSend();
      return;
    }
    this.recvArmed = false;
    if (this.error !== undefined) {
      this.maybeFinish();
      return;
    }
    if (res < 0) {
      if (res === -E.EINTR || res === -E.EAGAIN) return this.armRecv();
      this.fail(res === -E.ECONNRESET
        ? new ProtocolError("frame", "the peer reset the connection during the handshake")
        : new SysError("recv", -res));
      this.maybeFinish();
      return;
    }
    if (res === 0) {
      this.fail(new ProtocolError("frame", this.received === 0
        ? "the peer closed the connection without a handshake"
        : "the peer closed the connection during the handshake"));
      this.maybeFinish();
      return;
    }
    this.received += res;
    try {
      const used = this.hs.receive(this.bufs.in.u8.subarray(0, res));
      if (used !== res) throw new ProtocolError("state", "handshake left bytes unconsumed");
    } catch (e) {
      // Still send what the state machine had queued (our CONFIRM), then report.
      this.fail(e instanceof Error ? e : new Error(String(e)));
      this.pumpSend();
      this.maybeFinish();
      return;
    }
    this.pumpSend();
    this.armRecv();
    this.maybeFinish();
  }

  private fail(e: Error): void {
    if (this.error !== undefined || this.finished) return;
    this.error = e;
    if (e instanceof ProtocolError && e.kind === "timeout") {
      // Wake whatever is in flight; the completions then finish us.
      libc.shutdown(this.fd, 2);
    }
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.finished) return;
    const ok = this.error === undefined && this.hs.done && !this.sending && this.outQueue.length === 0;
    if (!ok && this.error === undefined) return;
    // A failure waits for our last sends (bounded by the deadline, which shuts the socket).
    if (this.error !== undefined && this.busy) {
      if (this.sending) return;
      // Only the receive is in flight: stop waiting for the peer.
      libc.shutdown(this.fd, 0);
      return;
    }
    this.finished = true;
    if (this.deadline !== undefined) this.deadline.cancelled = true;
    this.release();
    let result: HandshakeResult | undefined;
    let error = this.error;
    if (error === undefined) {
      try {
        result = this.hs.result();
      } catch (e) {
        error = e instanceof Error ? e : new Error(String(e));
      }
    }
    this.onFinish(this, result, error);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    pool.push(this.bufs);
  }
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
