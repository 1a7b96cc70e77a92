// tests/uring/ring.test.ts — the ring's own state machine on each backend: CQ overflow
// (every completion dispatched exactly once), a full SQ (getSqe submits by itself), a
// rejected SQE not stranding the ones after it, re-entrant waiting from a completion
// handler, user_data bookkeeping, and FullTransfer finishing short reads/writes.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { E } from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";
import { OP, SETUP, SHUT, SQ_FLAGS } from "../../ffi/structs.ts";
import { DEFAULT_SETUP_FLAGS, openRing } from "../../src/uring/backend.ts";
import { FullTransfer, runOne, type TransferDone } from "../../src/uring/ops.ts";
import { prepNop, prepSend, prepWrite } from "../../src/uring/prep.ts";
import { UNTRACKED, type CompletionTarget, type Ring } from "../../src/uring/ring.ts";
import { BACKENDS, closeAll, NativeBuf, pipe, prng, Recorder, runBatch, streamByte, tcpPair } from "./helpers.ts";

const MiB = 1 << 20;

/** Sends `total` bytes of stream `id` in random pieces, one op in flight at a time. */
class PieceWriter implements CompletionTarget {
  sent = 0;
  done = false;
  error = 0;
  private readonly buf: NativeBuf;
  constructor(
    private readonly ring: Ring,
    private readonly fd: number,
    private readonly op: typeof OP.WRITE | typeof OP.SEND,
    private readonly total: number,
    id: number,
    private readonly rand: () => number,
    private readonly onEnd: () => void,
  ) {
    this.buf = new NativeBuf(total);
    for (let i = 0; i < total; i++) this.buf.bytes[i] = streamByte(id, i);
  }
  start(): void {
    this.next();
  }
  private next(): void {
    const len = Math.min(this.total - this.sent, 1 + Math.floor(this.rand() * 48 * 1024));
    const sqe = this.ring.getSqe();
    if (this.op === OP.WRITE) prepWrite(this.ring, sqe, this.fd, this.buf.addr + this.sent, len, -1);
    else prepSend(this.ring, sqe, this.fd, this.buf.addr + this.sent, len, 0);
    this.ring.setUserData(sqe, this.ring.track(this, 0));
  }
  onCompletion(res: number): void {
    if (res <= 0) {
      this.error = res === 0 ? -E.EIO : res;
      this.finish();
      return;
    }
    this.sent += res;
    if (this.sent < this.total) this.next();
    else this.finish();
  }
  private finish(): void {
    this.done = true;
    this.onEnd();
    this.buf.free();
  }
}

class TransferResult implements TransferDone {
  result: { done: number; err: number; tag: number } | undefined;
  calls = 0;
  onTransferDone(done: number, err: number, tag: number): void {
    this.calls++;
    this.result = { done, err, tag };
  }
}

function verifyStream(bytes: Uint8Array, id: number, n: number): number {
  for (let i = 0; i < n; i++) if (bytes[i] !== streamByte(id, i)) return i;
  return -1;
}

describe.each(BACKENDS)("ring state machine on the %s backend", (backend) => {
  let ring: Ring;
  beforeAll(() => {
    ring = openRing({ backend, entries: 16 });
  });
  afterAll(() => ring.close());

  test("CQ overflow: 500 NOPs on a 4/8 ring, submitted without reaping, each dispatched exactly once", () => {
    const small = openRing({ backend, entries: 4, cqEntries: 8 });
    try {
      expect(small.entries).toBe(4);
      expect(small.backend.memory.cqEntries).toBe(8);
      const rec = new Recorder();
      for (let i = 0; i < 500; i++) {
        const sqe = small.getSqe();
        prepNop(small, sqe);
        small.setUserData(sqe, small.track(rec, i));
      }
      small.submit();
      // Nothing was reaped yet: the CQ is full and the rest waits in the overflow list.
      const m = small.backend.memory;
      expect(m.sq[m.sqFlags] & SQ_FLAGS.CQ_OVERFLOW).toBe(SQ_FLAGS.CQ_OVERFLOW);
      expect(rec.order.length).toBe(0);
      expect(small.inFlight).toBe(500);
      const reaped = small.processCompletions();
      expect(reaped).toBe(500);
      expect(rec.duplicates).toBe(0);
      expect(rec.res.size).toBe(500);
      expect([...rec.res.values()].every((r) => r === 0)).toBe(true);
      expect(small.inFlight).toBe(0);
      expect(m.sq[m.sqFlags] & SQ_FLAGS.CQ_OVERFLOW).toBe(0);
      // Still healthy afterwards.
      expect(runBatch(small, [(s) => prepNop(small, s)])).toEqual([0]);
    } finally {
      small.close();
    }
  });

  test("SQ full: getSqe beyond `entries` without submit submits by itself", () => {
    const small = openRing({ backend, entries: 4 });
    try {
      const m = small.backend.memory;
      const head0 = m.sq[m.sqHead];
      const rec = new Recorder();
      for (let i = 0; i < 11; i++) {
        const sqe = small.getSqe();
        prepNop(small, sqe);
        small.setUserData(sqe, small.track(rec, i));
        expect(small.pending).toBeLessThanOrEqual(4);
      }
      // At least the first two full rounds went to the kernel already.
      expect((m.sq[m.sqHead] - head0) >>> 0).toBeGreaterThanOrEqual(8);
      small.drain();
      expect(rec.res.size).toBe(11);
      expect(rec.duplicates).toBe(0);
    } finally {
      small.close();
    }
  });

  test("an SQE the kernel rejects does not strand the SQEs after it", () => {
    const res = runBatch(ring, [
      (s) => {
        prepNop(ring, s);
        ring.sqe8[s << 2] = 250; // no such opcode
      },
      (s) => prepNop(ring, s),
      (s) => prepNop(ring, s),
    ]);
    expect(res).toEqual([-E.EINVAL, 0, 0]);
  });

  test("a completion handler may wait re-entrantly (runOne) without double dispatch", () => {
    const rec = new Recorder();
    let inner: number | undefined;
    const reentrant: CompletionTarget = {
      onCompletion(res, _flags, tag) {
        rec.onCompletion(res, 0, tag);
        inner = runOne(ring, (s) => prepNop(ring, s));
      },
    };
    const first = ring.getSqe();
    prepNop(ring, first);
    ring.setUserData(first, ring.track(reentrant, 0));
    for (let i = 1; i <= 6; i++) {
      const sqe = ring.getSqe();
      prepNop(ring, sqe);
      ring.setUserData(sqe, ring.track(rec, i));
    }
    ring.submitAndWait(7);
    ring.drain();
    expect(inner).toBe(0);
    expect(rec.duplicates).toBe(0);
    expect([...rec.res.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(ring.inFlight).toBe(0);
  });

  test("submitNow starts queued ops at once and dispatches no completion (safe inside a handler)", () => {
    const [r, w] = pipe();
    const buf = new NativeBuf(4096);
    try {
      buf.bytes.set([1, 2, 3, 4, 5]);
      const rec = new Recorder();
      const sqe = ring.getSqe();
      prepWrite(ring, sqe, w, buf.addr, 5, -1);
      ring.setUserData(sqe, ring.track(rec, 1));
      ring.submitNow();
      // The write ran (its bytes are in the pipe) but nobody was called back yet.
      expect(rec.order.length).toBe(0);
      const got = new Uint8Array(16);
      expect(Number(libc.read(r, got, 16))).toBe(5);
      expect([...got.subarray(0, 5)]).toEqual([1, 2, 3, 4, 5]);
      ring.drain();
      expect(rec.res.get(1)).toBe(5);
      expect(rec.duplicates).toBe(0);
      ring.submitNow(); // nothing queued: a no-op
      expect(ring.inFlight).toBe(0);
    } finally {
      buf.free();
      closeAll([r, w]);
    }
  });

  test("user_data 0 is untracked: completed and dropped; slots are reused", () => {
    const before = ring.inFlight;
    const sqe = ring.getSqe();
    prepNop(ring, sqe);
    ring.setUserData(sqe, UNTRACKED);
    ring.submitAndWait(1);
    expect(ring.processCompletions()).toBeGreaterThanOrEqual(1);
    expect(ring.inFlight).toBe(before);
    // Many sequential ops reuse a handful of slots (no unbounded growth of user_data).
    const seen = new Set<number>();
    const rec = new Recorder();
    for (let i = 0; i < 200; i++) {
      const s = ring.getSqe();
      prepNop(ring, s);
      const ud = ring.track(rec, i);
      seen.add(ud);
      ring.setUserData(s, ud);
      ring.drain();
    }
    expect(rec.res.size).toBe(200);
    expect(seen.size).toBeLessThan(5);
  });

  test("FullTransfer reads 1 MiB from a pipe a writer fills in pieces, then reports EOF", () => {
    const [r, w] = pipe();
    const fds = [r, w];
    const buf = new NativeBuf(MiB + 4096);
    try {
      const rand = prng(7);
      let wOpen = true;
      const writer = new PieceWriter(ring, w, OP.WRITE, MiB, 1, rand, () => {
        libc.close(w);
        wOpen = false;
        fds[1] = -1;
      });
      const sink = new TransferResult();
      const t = new FullTransfer(ring, sink);
      t.start(OP.READ, r, buf.addr, MiB + 4096, -1, 0, 42);
      writer.start();
      ring.runUntil(() => sink.result !== undefined);
      expect(writer.error).toBe(0);
      expect(wOpen).toBe(false);
      expect(sink.calls).toBe(1);
      expect(sink.result).toEqual({ done: MiB, err: 0, tag: 42 });
      expect(t.busy).toBe(false);
      expect(verifyStream(buf.bytes, 1, MiB)).toBe(-1);
    } finally {
      buf.free();
      closeAll(fds);
    }
  });

  test("FullTransfer receives 1 MiB over TCP sent in pieces, EOF after shutdown", () => {
    const [c, s] = tcpPair();
    const buf = new NativeBuf(MiB + 1);
    try {
      const writer = new PieceWriter(ring, c, OP.SEND, MiB, 2, prng(11), () => libc.shutdown(c, SHUT.WR));
      const sink = new TransferResult();
      const t = new FullTransfer(ring, sink);
      t.start(OP.RECV, s, buf.addr, MiB + 1, -1, 0, 7);
      writer.start();
      ring.runUntil(() => sink.result !== undefined);
      expect(writer.error).toBe(0);
      expect(sink.result).toEqual({ done: MiB, err: 0, tag: 7 });
      expect(verifyStream(buf.bytes, 2, MiB)).toBe(-1);
    } finally {
      buf.free();
      closeAll([c, s]);
    }
  });

  test("FullTransfer sends 4 MiB in one logical op and reports errors as they are", () => {
    const [c, s] = tcpPair();
    const out = new NativeBuf(4 * MiB);
    const inb = new NativeBuf(4 * MiB);
    try {
      for (let i = 0; i < 4 * MiB; i++) out.bytes[i] = streamByte(3, i);
      const sent = new TransferResult();
      const got = new TransferResult();
      new FullTransfer(ring, sent).start(OP.SEND, c, out.addr, 4 * MiB, -1, 0, 1);
      new FullTransfer(ring, got).start(OP.RECV, s, inb.addr, 4 * MiB, -1, 0, 2);
      ring.runUntil(() => sent.result !== undefined && got.result !== undefined);
      expect(sent.result).toEqual({ done: 4 * MiB, err: 0, tag: 1 });
      expect(got.result).toEqual({ done: 4 * MiB, err: 0, tag: 2 });
      expect(verifyStream(inb.bytes, 3, 4 * MiB)).toBe(-1);
      // A real error is reported, not retried or hidden.
      const bad = new TransferResult();
      new FullTransfer(ring, bad).start(OP.READ, 1_000_000, inb.addr, 10, 0, 0, 3);
      ring.runUntil(() => bad.result !== undefined);
      expect(bad.result).toEqual({ done: 0, err: -E.EBADF, tag: 3 });
    } finally {
      out.free();
      inb.free();
      closeAll([c, s]);
    }
  });
});

describe("IORING_SETUP_NO_SQARRAY", () => {
  const nops = (ring: Ring): number[] => runBatch(ring, Array.from({ length: 40 }, () => (s: number) => prepNop(ring, s)));

  test("raw backend: the kernel's SQ without an index array works", () => {
    const ring = openRing({ backend: "raw", entries: 16, flags: DEFAULT_SETUP_FLAGS | SETUP.NO_SQARRAY });
    try {
      expect(ring.backend.setupFlags & SETUP.NO_SQARRAY).toBe(SETUP.NO_SQARRAY);
      expect(ring.backend.memory.sqArray).toBe(-1);
      expect(nops(ring)).toEqual(new Array(40).fill(0));
    } finally {
      ring.close();
    }
  });

  test("liburing backend: liburing 2.3 cannot use it, so it is not requested (the ring stays intact)", () => {
    const ring = openRing({ backend: "liburing", entries: 16, flags: DEFAULT_SETUP_FLAGS | SETUP.NO_SQARRAY });
    try {
      expect(ring.backend.setupFlags & SETUP.NO_SQARRAY).toBe(0);
      expect(ring.backend.setupFlags & DEFAULT_SETUP_FLAGS).toBe(DEFAULT_SETUP_FLAGS);
      expect(ring.backend.memory.sqArray).toBeGreaterThan(0);
      expect(nops(ring)).toEqual(new Array(40).fill(0));
    } finally {
      ring.close();
    }
  });
});
