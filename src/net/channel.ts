/**
 * One authenticated connection's data stream after the handshake: frames go in as
 * plaintext bytes, and the record layer (kernel TLS, user-space TLS, or none) is hidden
 * behind send() and the ChannelSink callbacks.
 *
 * Owns: the socket's SEND/RECV(MSG) operations (one send and one receive in flight at a
 * time, so bytes can never be reordered; short sends are finished, never dropped), the
 * user-space RecordSealer/RecordOpener, kTLS alert records through SENDMSG/RECVMSG cmsgs,
 * and per-key record accounting (docs/PROTOCOL.md section 12). Never parses frames and
 * never decides policy: the engines do.
 *
 * kTLS: data goes out with plain SEND (MSG_MORE while more is queued, so the kernel fills
 * whole 16 KiB records) and comes in with RECVMSG + a cmsg buffer, because a non-data
 * record (close_notify) would make a plain RECV fail with EIO.
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { MSG, SOL, TLS, TLS_CRYPTO_INFO } from "../../ffi/structs.ts";
import { ProtocolError, SysError } from "../errors.ts";
import { prepRecv, prepRecvmsg, prepSend, prepSendmsg } from "../uring/prep.ts";
import type { CompletionTarget } from "../uring/ring.ts";
import { buildRecvRecordMsg, buildSendRecordMsg, parseRecvRecordMsg, RECORD_MSG_BYTES, RECORD_TYPE } from "./ktls.ts";
import type { Loop } from "./loop.ts";
import { pinned, recycle, structs, type Pinned } from "./mem.ts";
import {
  CONTENT_TYPE_ALERT, CONTENT_TYPE_APPLICATION_DATA, DEFAULT_MAX_RECORDS_PER_KEY, MAX_RECORD_PLAINTEXT, RecordOpener, RecordSealer,
  sealedSize, type CipherName,
} from "./record.ts";

export type LayerMode = "kernel" | "user" | "plain";

export interface ChannelSink {
  /**
   * Plaintext stream bytes, in order; `chunk` is only valid during the call. Returns how
   * many bytes were consumed: fewer than chunk.length pauses receiving (backpressure),
   * and resumeReceive() delivers the rest again later.
   */
  onData(chunk: Uint8Array): number;
  /** The peer ended its side: `clean` = close_notify (encrypted) or EOF (plaintext). */
  onClose(clean: boolean): void;
  /** Fatal receive-side failure: bad record, alert, socket error. */
  onError(e: Error): void;
}

export interface ChannelOptions {
  tx: LayerMode;
  rx: LayerMode;
  cipher: CipherName;
  /** User-space TX/RX keys (required when that direction is "user"). */
  sealer?: RecordSealer;
  opener?: RecordOpener;
  /** Largest plaintext send() the caller will make (sizes the sealing buffers). */
  maxSend: number;
  /** Records per key per direction (docs/PROTOCOL.md section 12); tests lower it. */
  maxRecords?: number;
  /** Receive buffer size. */
  recvBytes?: number;
}

interface SendItem {
  view: Uint8Array;
  addr: number;
  len: number;
  more: boolean;
  alert: boolean;
  done: (() => void) | undefined;
  /** User mode: the sealed bytes. */
  sealed: Pinned | undefined;
  sealedLen: number;
}

/** Bytes through the user-space record layer between two young-generation collections. */
const GC_EVERY = Number(process.env.URING_SYNC_GC_EVERY ?? 32 * 1024 * 1024);
const TAG_SEND = 1;
const TAG_RECV = 2;
const CLOSE_NOTIFY = Uint8Array.of(1, 0);

/** Alert descriptions worth naming in an error (RFC 8446 section 6). */
const ALERT_NAMES: Record<number, string> = {
  0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow", 40: "handshake_failure",
  47: "illegal_parameter", 50: "decode_error", 51: "decrypt_error", 80: "internal_error", 90: "user_canceled",
};

export class Channel implements CompletionTarget {
  readonly fd: number;
  readonly tx: LayerMode;
  readonly rx: LayerMode;
  readonly cipher: CipherName;
  private readonly sealer: RecordSealer | undefined;
  private readonly opener: RecordOpener | undefined;
  private readonly maxRecords: number;
  /** The sealer's back end makes a buffer per record (node:crypto): collect young garbage often. */
  private readonly sealerAllocates: boolean;

  // ---- send side
  private readonly queue: SendItem[] = [];
  private sendInFlight: SendItem | undefined;
  private sendDone = 0;
  private sendUserData = 0;
  private readonly sealBufs: Pinned[] = [];
  private readonly alertMsg: Pinned;
  private readonly alertData: Pinned;
  /** Records the kernel has (at most) been asked to make with MSG_MORE coalescing. */
  private kernelTxRecords = 0;
  private kernelTxPartial = 0;
  private sendError: Error | undefined;
  /** Bytes handed to send() and not yet fully sent. */
  queuedBytes = 0;
  /** Plaintext bytes fully sent. */
  sentBytes = 0;
  /** performance.now() of the last send progress (idle timeout on the sender). */
  lastSendProgress = 0;

  // ---- receive side
  private sink: ChannelSink | undefined;
  private readonly rbuf: Pinned;
  private readonly rmsg: Pinned;
  private recvArmed = false;
  private recvUserData = 0;
  private rxEnded = false;
  private rxPaused = false;
  /** Received and not yet consumed: data pieces, or an alert record's body. */
  private pieces: { data: Uint8Array; alert: boolean }[] = [];
  private kernelRecvs = 0;
  private userOpened = 0;
  private userSealed = 0;
  /** Plaintext bytes received. */
  receivedBytes = 0;
  /** performance.now() of the last byte received (idle timeout). */
  lastReceive = 0;

  private closed = false;

  constructor(private readonly loop: Loop, fd: number, opts: ChannelOptions) {
    this.fd = fd;
    this.tx = opts.tx;
    this.rx = opts.rx;
    this.cipher = opts.cipher;
    this.sealer = opts.sealer;
    this.opener = opts.opener;
    this.maxRecords = opts.maxRecords ?? DEFAULT_MAX_RECORDS_PER_KEY;
    if (this.tx === "user" && this.sealer === undefined) throw new RangeError("user TX needs a sealer");
    if (this.rx === "user" && this.opener === undefined) throw new RangeError("user RX needs an opener");
    this.sealerAllocates = this.sealer !== undefined && this.sealer.backend !== "openssl";
    if (this.tx === "user") {
      // Two sealing buffers: one on the wire while the next is sealed.
      for (let i = 0; i < 2; i++) this.sealBufs.push(pinned(sealedSize(opts.maxSend) + 64));
    }
    this.alertMsg = structs.alloc(RECORD_MSG_BYTES);
    this.alertData = structs.alloc(2);
    this.rbuf = pinned(opts.recvBytes ?? 1024 * 1024);
    this.rmsg = structs.alloc(RECORD_MSG_BYTES);
    this.lastReceive = this.lastSendProgress = loop.now();
  }

  /** "kernel TLS" / "userspace TLS" / "plaintext", as the summary says it. */
  describe(): string {
    if (this.tx === "plain") return "plaintext";
    if (this.tx === this.rx) return this.tx === "kernel" ? "kernel TLS" : "userspace TLS";
    return `kernel TLS (${this.tx === "kernel" ? "TX" : "RX"} only; userspace ${this.tx === "kernel" ? "RX" : "TX"})`;
  }

  // ---------------------------------------------------------------------------------
  // Sending

  /**
   * Records this connection can still seal in the TX direction before a new session is
   * needed (an upper bound on what the kernel made, for kTLS).
   */
  recordsRemaining(): number {
    if (this.tx === "plain") return Number.MAX_SAFE_INTEGER;
    if (this.tx === "user") return (this.sealer as RecordSealer).remaining - this.pendingUserRecords();
    return this.maxRecords - this.kernelTxRecords - (this.kernelTxPartial > 0 ? 1 : 0);
  }

  private pendingUserRecords(): number {
    let n = 0;
    for (const it of this.queue) if (it.sealed === undefined) n += it.alert ? 1 : Math.ceil(it.len / MAX_RECORD_PLAINTEXT);
    return n;
  }

  /** Records a send of `len` bytes may cost (kTLS: a flush can close one partial record). */
  static recordsFor(len: number): number {
    return Math.ceil(len / MAX_RECORD_PLAINTEXT) + 1;
  }

  /**
   * Queues `len` plaintext bytes at `view` (address `addr`, fixed memory). `more` = more
   * data follows soon; only a hint now: MSG_MORE is set only while later bytes are
   * already queued (see pumpSend), so nothing waits in the kernel. `done` runs from the SEND
   * completion of these bytes (in every mode; never from inside this call).
   */
  send(view: Uint8Array, addr: number, len: number, more: boolean, done?: () => void): void {
    if (this.closed) throw new Error("channel is closed");
    if (this.sendError !== undefined) throw this.sendError;
    this.queue.push({ view, addr, len, more, alert: false, done, sealed: undefined, sealedLen: 0 });
    this.queuedBytes += len;
    this.pumpSend();
  }

  /** Queues a close_notify alert (encrypted modes; nothing in plaintext mode). */
  sendCloseNotify(): void {
    if (this.tx === "plain" || this.closed || this.sendError !== undefined) return;
    this.alertData.u8.set(CLOSE_NOTIFY);
    this.queue.push({ view: this.alertData.u8, addr: this.alertData.addr, len: 2, more: false, alert: true, done: undefined, sealed: undefined, sealedLen: 0 });
    this.pumpSend();
  }

  /** Nothing queued or in flight. */
  get sendIdle(): boolean {
    return this.sendInFlight === undefined && this.queue.length === 0;
  }

  get sendFailure(): Error | undefined {
    return this.sendError;
  }

  private sealNext(): void {
    if (this.tx !== "user") return;
    for (const it of this.queue) {
      if (it.sealed !== undefined) continue;
      const buf = this.sealBufs.pop();
      if (buf === undefined) return;
      const sealer = this.sealer as RecordSealer;
      let at = 0;
      if (it.alert) {
        at = sealer.sealInto(buf.u8, 0, it.view.subarray(0, it.len), CONTENT_TYPE_ALERT);
      } else {
        for (let p = 0; p < it.len; p += MAX_RECORD_PLAINTEXT) {
          at += sealer.sealInto(buf.u8, at, it.view.subarray(p, Math.min(it.len, p + MAX_RECORD_PLAINTEXT)), CONTENT_TYPE_APPLICATION_DATA);
        }
      }
      it.sealed = buf;
      it.sealedLen = at;
      this.userSealed += at;
      if (this.sealerAllocates && this.userSealed >= GC_EVERY) {
        this.userSealed = 0;
        Bun.gc(false);
      }
      // `done` waits for this item's SEND completion, as in plaintext and kTLS mode, although
      // the plaintext is free now: engines pump from `done`, and the completion of the last
      // send is how they learn the connection went idle (a sender with a half-full buffer
      // waits for exactly that; calling `done` here, inside send(), left it waiting forever).
    }
  }

  private pumpSend(): void {
    try {
      this.sealNext();
    } catch (e) {
      this.failSend(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (this.sendInFlight !== undefined || this.queue.length === 0) return;
    const it = this.queue[0];
    if (this.tx === "user" && it.sealed === undefined) return;
    this.queue.shift();
    this.sendInFlight = it;
    this.sendDone = 0;
    // MSG_MORE only while later bytes are already queued, whatever the caller's `more`
    // says: a caller that says "more" and then waits for its peer (the sender waiting for
    // WANTs) would leave the kernel holding the last partial kTLS record, or TCP segment,
    // that the peer needs in order to answer: a deadlock until the idle timeout. Decided
    // once per item, so the kTLS record count and every resubmit of a short send agree.
    it.more = this.queue.length > 0;
    if (this.tx === "kernel" && !it.alert) this.countKernelRecords(it.len, it.more);
    this.submitSend();
  }

  private countKernelRecords(len: number, more: boolean): void {
    const total = this.kernelTxPartial + len;
    this.kernelTxRecords += Math.floor(total / MAX_RECORD_PLAINTEXT);
    this.kernelTxPartial = total % MAX_RECORD_PLAINTEXT;
    if (!more && this.kernelTxPartial > 0) {
      this.kernelTxRecords++;
      this.kernelTxPartial = 0;
    }
  }

  private submitSend(): void {
    const it = this.sendInFlight as SendItem;
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    if (this.tx === "kernel" && it.alert) {
      // A non-data record: its type travels in a TLS_SET_RECORD_TYPE cmsg.
      const msg = buildSendRecordMsg(this.alertMsg.u8, RECORD_TYPE.ALERT, it.addr, it.len);
      prepSendmsg(ring, sqe, this.fd, msg, MSG.NOSIGNAL);
      this.kernelTxRecords += 1 + (this.kernelTxPartial > 0 ? 1 : 0);
      this.kernelTxPartial = 0;
    } else {
      const base = it.sealed !== undefined ? it.sealed.addr : it.addr;
      const len = it.sealed !== undefined ? it.sealedLen : it.len;
      // More queued behind this one (decided in pumpSend): let TCP/kTLS fill the segment/record.
      const more = it.more;
      prepSend(ring, sqe, this.fd, base + this.sendDone, len - this.sendDone, MSG.NOSIGNAL | (more ? MSG.MORE : 0));
    }
    this.sendUserData = ring.track(this, TAG_SEND);
    ring.setUserData(sqe, this.sendUserData);
  }

  private onSendCompletion(res: number): void {
    const it = this.sendInFlight as SendItem;
    if (res < 0) {
      if (res === -E.EINTR || res === -E.EAGAIN) return this.submitSend();
      this.sendInFlight = undefined;
      this.failSend(res === -E.EPIPE || res === -E.ECONNRESET
        ? new SysError("send", -res, "connection closed by the peer")
        : new SysError("send", -res));
      return;
    }
    this.lastSendProgress = this.loop.now();
    this.sendDone += res;
    const total = it.sealed !== undefined ? it.sealedLen : it.len;
    if (this.sendDone < total) {
      if (res === 0) {
        this.sendInFlight = undefined;
        this.failSend(new SysError("send", E.EPIPE));
        return;
      }
      return this.submitSend();
    }
    this.sendInFlight = undefined;
    if (!it.alert) {
      this.queuedBytes -= it.len;
      this.sentBytes += it.len;
    }
    if (it.sealed !== undefined) this.sealBufs.push(it.sealed);
    const done = it.done;
    it.done = undefined;
    done?.();
    this.pumpSend();
  }

  private failSend(e: Error): void {
    if (this.sendError !== undefined) return;
    this.sendError = e;
    // Drop what is queued; release the callers' buffers.
    for (const it of this.queue) {
      if (it.sealed !== undefined) this.sealBufs.push(it.sealed);
      it.done?.();
    }
    this.queue.length = 0;
    this.sink?.onError(e);
  }

  // ---------------------------------------------------------------------------------
  // Receiving

  startReceive(sink: ChannelSink): void {
    this.sink = sink;
    this.armRecv();
  }

  resumeReceive(): void {
    if (!this.rxPaused) return;
    this.rxPaused = false;
    this.deliver();
  }

  /** Hands pending pieces to the sink until it stops consuming; then receives more. */
  private deliver(): void {
    const sink = this.sink as ChannelSink;
    try {
      while (this.pieces.length > 0 && !this.rxEnded) {
        const p = this.pieces[0];
        if (p.alert) {
          this.pieces.shift();
          this.onAlert(p.data);
          continue;
        }
        const n = sink.onData(p.data);
        this.receivedBytes += n;
        if (n < p.data.length) {
          p.data = p.data.subarray(n);
          this.rxPaused = true;
          return;
        }
        this.pieces.shift();
      }
    } catch (e) {
      this.endRx();
      this.pieces.length = 0;
      sink.onError(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (!this.rxEnded) this.armRecv();
  }

  get receiving(): boolean {
    return this.recvArmed;
  }

  private armRecv(): void {
    if (this.recvArmed || this.rxEnded || this.closed || this.sink === undefined) return;
    this.recvArmed = true;
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    if (this.rx === "kernel") {
      const msg = buildRecvRecordMsg(this.rmsg.u8, this.rbuf.addr, this.rbuf.size);
      prepRecvmsg(ring, sqe, this.fd, msg, 0);
    } else {
      prepRecv(ring, sqe, this.fd, this.rbuf.addr, this.rbuf.size, 0);
    }
    this.recvUserData = ring.track(this, TAG_RECV);
    ring.setUserData(sqe, this.recvUserData);
  }

  private endRx(): void {
    this.rxEnded = true;
  }

  private onRecvCompletion(res: number): void {
    this.recvArmed = false;
    const sink = this.sink as ChannelSink;
    if (this.rxEnded) return;
    if (res < 0) {
      if (res === -E.EINTR || res === -E.EAGAIN) return this.armRecv();
      this.endRx();
      if (res === -74 /* EBADMSG */) {
        sink.onError(new ProtocolError("record", "a TLS record from the peer failed authentication in the kernel (tampered, or keys do not match)"));
      } else if (this.rx === "kernel" && res === -E.EINVAL) {
        // kTLS RX refuses what is not a TLS 1.3 record header (type, version, length).
        sink.onError(new ProtocolError("record", "bad TLS record header from the peer (kernel TLS refused it): not a uring-sync peer, or the stream is out of sync"));
      } else if (this.rx === "kernel" && res === -90 /* EMSGSIZE */) {
        sink.onError(new ProtocolError("record", "TLS record length from the peer over the TLS 1.3 maximum (kernel TLS refused it)"));
      } else if (res === -E.ECONNRESET) {
        sink.onError(new SysError("recv", -res, "connection reset by the peer"));
      } else if (res === -E.ECANCELED) {
        sink.onError(new ProtocolError("timeout", "receive cancelled"));
      } else {
        sink.onError(new SysError(this.rx === "kernel" ? "recvmsg" : "recv", -res));
      }
      return;
    }
    if (res === 0) {
      this.endRx();
      if (this.rx === "user" && (this.opener as RecordOpener).bufferedBytes > 0) {
        sink.onError(new ProtocolError("record", "connection closed in the middle of a TLS record"));
        return;
      }
      // An encrypted stream must end with close_notify: a bare EOF may be a truncation.
      sink.onClose(this.rx === "plain");
      return;
    }
    this.lastReceive = this.loop.now();
    const chunk = this.rbuf.u8.subarray(0, res);
    try {
      if (this.rx === "plain") {
        this.pieces.push({ data: chunk, alert: false });
      } else if (this.rx === "user") {
        const opener = this.opener as RecordOpener;
        this.userOpened += res;
        if (!opener.opensInPlace && this.userOpened >= GC_EVERY) {
          // node:crypto hands back a new buffer per record. Collecting the young ones now
          // lets the allocator reuse warm pages; left alone, gigabytes of short-lived
          // buffers become fresh pages (page faults, zeroing) and get unmapped again.
          this.userOpened = 0;
          Bun.gc(false);
        }
        // Records are decrypted inside rbuf (libcrypto) or into fresh buffers (node:crypto).
        // Either way the pieces stay valid until they are consumed: rbuf is only reused by
        // the next RECV, which deliver() arms after the last piece (as in plaintext mode).
        for (const rec of opener.pushInPlace(chunk)) {
          if (rec.type === CONTENT_TYPE_APPLICATION_DATA) {
            if (rec.data.length > 0) this.pieces.push({ data: rec.data, alert: false });
          } else if (rec.type === CONTENT_TYPE_ALERT) {
            this.pieces.push({ data: rec.data, alert: true });
          } else {
            throw new ProtocolError("record", `unexpected TLS record of content type ${rec.type} after the handshake`);
          }
        }
      } else {
        const info = parseRecvRecordMsg(this.rmsg.u8);
        const type = info.recordType ?? CONTENT_TYPE_APPLICATION_DATA;
        if (type === CONTENT_TYPE_APPLICATION_DATA) {
          this.pieces.push({ data: chunk, alert: false });
        } else if (type === CONTENT_TYPE_ALERT) {
          this.pieces.push({ data: chunk.slice(), alert: true });
        } else {
          throw new ProtocolError("record", `unexpected TLS record of content type ${type} after the handshake`);
        }
        if (++this.kernelRecvs % 256 === 0) this.checkKernelRxSeq();
      }
    } catch (e) {
      this.endRx();
      sink.onError(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.deliver();
  }

  private onAlert(data: Uint8Array): void {
    const sink = this.sink as ChannelSink;
    this.endRx();
    if (data.length === 2 && data[1] === 0) {
      sink.onClose(true);
      return;
    }
    const desc = data.length >= 2 ? data[1] : -1;
    sink.onError(new ProtocolError("record", `the peer sent TLS alert ${ALERT_NAMES[desc] ?? desc}`));
  }

  /**
   * kTLS RX does not count records for us: read the kernel's next sequence number and
   * refuse a key that has opened 2^24 records (docs/PROTOCOL.md section 12).
   */
  private checkKernelRxSeq(): void {
    const buf = new Uint8Array(64);
    const len = new Uint32Array([buf.length]);
    if (libc.getsockopt(this.fd, SOL.TLS, TLS.RX, buf, len) !== 0) return void errno();
    const at = this.cipher === "chacha20-poly1305" ? TLS_CRYPTO_INFO.chacha20Poly1305.recSeq
      : this.cipher === "aes-256-gcm" ? TLS_CRYPTO_INFO.aesGcm256.recSeq : TLS_CRYPTO_INFO.aesGcm128.recSeq;
    const seq = new DataView(buf.buffer).getBigUint64(at, false);
    if (seq >= BigInt(this.maxRecords)) throw new ProtocolError("limit", `peer exceeded the key usage limit of ${this.maxRecords} records without re-keying`);
  }

  // ---------------------------------------------------------------------------------

  onCompletion(res: number, _flags: number, tag: number): void {
    if (tag === TAG_SEND) this.onSendCompletion(res);
    else this.onRecvCompletion(res);
  }

  /** Operations of this channel still in flight (close only when 0). */
  get busy(): boolean {
    return this.recvArmed || this.sendInFlight !== undefined;
  }

  /** Wakes every operation in flight (they complete with EOF/EPIPE) and stops receiving. */
  abort(): void {
    this.rxEnded = true;
    if (!this.closed) libc.shutdown(this.fd, 2);
  }

  /** Half-close: no more data from us (plaintext mode's end of stream). */
  shutdownWrite(): void {
    if (!this.closed) libc.shutdown(this.fd, 1);
  }

  /**
   * Closes the socket. Call once busy is false (after abort(), run the loop until then):
   * then nothing in flight can touch the buffers, and they go back for the next connection.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    // Nothing more is delivered from a closed connection (its bytes may be reused below).
    this.rxEnded = true;
    this.pieces.length = 0;
    if (!this.busy) {
      for (const b of this.sealBufs) recycle(b);
      this.sealBufs.length = 0;
      recycle(this.rbuf);
    }
  }
}
