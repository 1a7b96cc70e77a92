// tests/uring/random.test.ts — thousands of mixed operations on one ring per backend,
// started and reaped in a seeded random order: NOPs, timeouts with short random delays,
// pipe and TCP streams (reads often submitted before the data exists), file
// write/read-back/fsync/statx sequences and open/close pairs. Every user_data must be
// completed exactly once (counted per kind), every byte read must be the byte written,
// and no file descriptor may leak. Replay a failure with URING_TEST_SEED=<seed>;
// URING_TEST_VERBOSE=1 prints how many ops of each kind ran.

import { describe, expect, test } from "bun:test";
import { E } from "../../ffi/errno.ts";
import { addressOf, libc } from "../../ffi/libc.ts";
import { AT, KERNEL_TIMESPEC, O, SHUT, STATX, STATX_MASK } from "../../ffi/structs.ts";
import { openRing } from "../../src/uring/backend.ts";
import {
  prepClose, prepFsync, prepNop, prepOpenat, prepRead, prepRecv, prepSend, prepStatx, prepTimeout, prepWrite,
} from "../../src/uring/prep.ts";
import type { CompletionTarget, Ring } from "../../src/uring/ring.ts";
import { BACKENDS, check, NativeBuf, openFds, pipe, prng, tcpPair, tempDir } from "./helpers.ts";

const TOTAL_OPS = 5000;

const KIND = {
  NOP: 1, TIMEOUT: 2, PIPE_WRITE: 3, PIPE_READ: 4, SEND: 5, RECV: 6, FILE_WRITE: 7, FILE_READ: 8, FSYNC: 9, STATX: 10,
  OPEN: 11, CLOSE: 12,
} as const;
type Kind = (typeof KIND)[keyof typeof KIND];
const KIND_NAME = Object.fromEntries(Object.entries(KIND).map(([k, v]) => [v, k])) as Record<number, string>;

/** Bookkeeping shared by every actor: what was submitted, what completed, what went wrong. */
class Ledger {
  readonly submitted = new Map<number, number>();
  readonly completed = new Map<number, number>();
  readonly outstanding = new Set<number>();
  readonly completionOrder: number[] = [];
  readonly errors: string[] = [];
  nextId = 1;
  opsLeft: number;
  constructor(total: number, readonly rand: () => number) {
    this.opsLeft = total;
  }
  /** Track one op for `target`; returns the user_data. tag = id * 16 + kind. */
  issue(ring: Ring, sqe: number, target: CompletionTarget, kind: Kind): number {
    const id = this.nextId++;
    this.outstanding.add(id);
    this.submitted.set(kind, (this.submitted.get(kind) ?? 0) + 1);
    this.opsLeft--;
    ring.setUserData(sqe, ring.track(target, id * 16 + kind));
    return id;
  }
  /** Called first by every onCompletion; returns the kind. */
  complete(tag: number): Kind {
    const id = Math.floor(tag / 16);
    const kind = (tag % 16) as Kind;
    if (!this.outstanding.delete(id)) this.errors.push(`op ${id} (${KIND_NAME[kind]}) completed twice or never issued`);
    this.completed.set(kind, (this.completed.get(kind) ?? 0) + 1);
    this.completionOrder.push(id);
    return kind;
  }
  fail(msg: string): void {
    if (this.errors.length < 20) this.errors.push(msg);
  }
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
}

/** NOPs and timeouts: fire and check. */
class Simple implements CompletionTarget {
  private readonly timespecs = new Map<number, BigInt64Array>();
  inFlightTimeouts = 0;
  constructor(private readonly ring: Ring, private readonly L: Ledger) {}
  nop(): void {
    const sqe = this.ring.getSqe();
    prepNop(this.ring, sqe);
    this.L.issue(this.ring, sqe, this, KIND.NOP);
  }
  timeout(maxNs: number): void {
    const ts = new BigInt64Array(KERNEL_TIMESPEC.size / 8);
    ts[KERNEL_TIMESPEC.nsec / 8] = BigInt(this.L.int(maxNs));
    const sqe = this.ring.getSqe();
    prepTimeout(this.ring, sqe, addressOf(ts), 0, 0);
    const id = this.L.issue(this.ring, sqe, this, KIND.TIMEOUT);
    this.timespecs.set(id, ts); // keep the timespec alive until the kernel is done with it
    this.inFlightTimeouts++;
  }
  onCompletion(res: number, _flags: number, tag: number): void {
    const kind = this.L.complete(tag);
    if (kind === KIND.NOP && res !== 0) this.L.fail(`NOP: ${res}`);
    if (kind === KIND.TIMEOUT) {
      this.inFlightTimeouts--;
      this.timespecs.delete(Math.floor(tag / 16));
      if (res !== -E.ETIME) this.L.fail(`TIMEOUT: ${res}`);
    }
  }
}

const PERIOD = 65536;

/** A byte stream through a pipe or a TCP connection: one writer op and one reader op at most. */
class Stream implements CompletionTarget {
  private readonly pattern: NativeBuf;
  private readonly rbuf: NativeBuf;
  written = 0;
  readPos = 0;
  writing = false;
  reading = false;
  ending = false;
  writerClosed = false;
  eof = false;
  constructor(
    private readonly ring: Ring,
    private readonly L: Ledger,
    readonly rfd: number,
    private wfd: number,
    private readonly socket: boolean,
  ) {
    // The stream's bytes repeat every PERIOD; the buffer holds two periods so any piece of
    // up to PERIOD bytes starting anywhere is contiguous.
    this.pattern = new NativeBuf(2 * PERIOD);
    for (let i = 0; i < PERIOD; i++) this.pattern.bytes[i] = this.pattern.bytes[i + PERIOD] = L.int(256);
    this.rbuf = new NativeBuf(PERIOD);
  }
  kickWrite(): void {
    if (this.writing || this.writerClosed) return;
    if (this.ending) return this.closeWriter();
    const len = 1 + this.L.int(16 * 1024);
    const sqe = this.ring.getSqe();
    const addr = this.pattern.addr + (this.written % PERIOD);
    if (this.socket) prepSend(this.ring, sqe, this.wfd, addr, len, 0);
    else prepWrite(this.ring, sqe, this.wfd, addr, len, -1);
    this.L.issue(this.ring, sqe, this, this.socket ? KIND.SEND : KIND.PIPE_WRITE);
    this.writing = true;
  }
  kickRead(): void {
    if (this.reading || this.eof) return;
    const len = 1 + this.L.int(16 * 1024);
    const sqe = this.ring.getSqe();
    if (this.socket) prepRecv(this.ring, sqe, this.rfd, this.rbuf.addr, len, 0);
    else prepRead(this.ring, sqe, this.rfd, this.rbuf.addr, len, -1);
    this.L.issue(this.ring, sqe, this, this.socket ? KIND.RECV : KIND.PIPE_READ);
    this.reading = true;
  }
  /** No more writes: close (or shut down) the writing end once no write is in flight. */
  end(): void {
    this.ending = true;
    if (!this.writing) this.closeWriter();
    if (!this.reading) this.kickRead();
  }
  private closeWriter(): void {
    if (this.writerClosed) return;
    this.writerClosed = true;
    if (this.socket) check("shutdown", libc.shutdown(this.wfd, SHUT.WR));
    else {
      libc.close(this.wfd);
      this.wfd = -1;
    }
  }
  onCompletion(res: number, _flags: number, tag: number): void {
    const kind = this.L.complete(tag);
    if (kind === KIND.PIPE_WRITE || kind === KIND.SEND) {
      this.writing = false;
      if (res <= 0) this.L.fail(`${KIND_NAME[kind]}: ${res}`);
      else this.written += res;
      if (this.ending) this.closeWriter();
      else if (this.L.opsLeft > 0 && this.L.rand() < 0.7) this.kickWrite();
      return;
    }
    this.reading = false;
    if (res < 0) return this.L.fail(`${KIND_NAME[kind]}: ${res}`);
    if (res === 0) {
      this.eof = true;
      if (!this.writerClosed) this.L.fail(`${KIND_NAME[kind]}: EOF before the writer closed`);
      if (this.readPos !== this.written) this.L.fail(`${KIND_NAME[kind]}: EOF at ${this.readPos} of ${this.written}`);
      return;
    }
    const b = this.rbuf.bytes;
    const p = this.pattern.bytes;
    for (let i = 0; i < res; i++) {
      if (b[i] !== p[(this.readPos + i) % PERIOD]) {
        this.L.fail(`${KIND_NAME[kind]}: byte ${this.readPos + i} differs`);
        break;
      }
    }
    this.readPos += res;
    if (this.ending || (this.L.opsLeft > 0 && this.L.rand() < 0.7)) this.kickRead();
  }
  get done(): boolean {
    return this.eof && this.writerClosed && !this.writing && !this.reading;
  }
  close(): void {
    libc.close(this.rfd);
    if (this.socket) libc.close(this.wfd);
    else if (this.wfd >= 0) libc.close(this.wfd);
    this.pattern.free();
    this.rbuf.free();
  }
}

/** A file: write a random range, read it back and compare, then maybe fsync or statx. */
class FileActor implements CompletionTarget {
  private readonly wbuf = new NativeBuf(8192);
  private readonly rbuf = new NativeBuf(8192);
  private readonly stx = new Uint8Array(STATX.size);
  private off = 0;
  private len = 0;
  extent = 0;
  busy = false;
  constructor(private readonly ring: Ring, private readonly L: Ledger, readonly fd: number, private readonly path: Buffer) {}
  start(): void {
    if (this.busy) return;
    this.busy = true;
    this.off = this.L.int(256 * 1024);
    this.len = 1 + this.L.int(8192);
    for (let i = 0; i < this.len; i++) this.wbuf.bytes[i] = this.L.int(256);
    const sqe = this.ring.getSqe();
    prepWrite(this.ring, sqe, this.fd, this.wbuf.addr, this.len, this.off);
    this.L.issue(this.ring, sqe, this, KIND.FILE_WRITE);
  }
  onCompletion(res: number, _flags: number, tag: number): void {
    const kind = this.L.complete(tag);
    const r = this.ring;
    switch (kind) {
      case KIND.FILE_WRITE: {
        if (res !== this.len) this.L.fail(`FILE_WRITE: ${res} of ${this.len}`);
        this.extent = Math.max(this.extent, this.off + this.len);
        this.rbuf.bytes.fill(0);
        const sqe = r.getSqe();
        prepRead(r, sqe, this.fd, this.rbuf.addr, this.len, this.off);
        this.L.issue(r, sqe, this, KIND.FILE_READ);
        return;
      }
      case KIND.FILE_READ: {
        if (res !== this.len) this.L.fail(`FILE_READ: ${res} of ${this.len}`);
        else if (!Buffer.from(this.rbuf.bytes.subarray(0, res)).equals(Buffer.from(this.wbuf.bytes.subarray(0, res)))) {
          this.L.fail(`FILE_READ: data at ${this.off} differs`);
        }
        const x = this.L.rand();
        if (x < 0.25) {
          const sqe = r.getSqe();
          prepFsync(r, sqe, this.fd, 0);
          this.L.issue(r, sqe, this, KIND.FSYNC);
        } else if (x < 0.5) {
          const sqe = r.getSqe();
          prepStatx(r, sqe, AT.FDCWD, addressOf(this.path), 0, STATX_MASK.SIZE, addressOf(this.stx));
          this.L.issue(r, sqe, this, KIND.STATX);
        } else {
          this.busy = false;
        }
        return;
      }
      case KIND.FSYNC:
        if (res !== 0) this.L.fail(`FSYNC: ${res}`);
        this.busy = false;
        return;
      case KIND.STATX: {
        if (res !== 0) this.L.fail(`STATX: ${res}`);
        const size = Number(new DataView(this.stx.buffer).getBigUint64(STATX.size_, true));
        if (size !== this.extent) this.L.fail(`STATX: size ${size}, expected ${this.extent}`);
        this.busy = false;
        return;
      }
      default:
        this.L.fail(`file actor got ${KIND_NAME[kind]}`);
    }
  }
  close(): void {
    libc.close(this.fd);
    this.wbuf.free();
    this.rbuf.free();
  }
}

/** OPENAT a file read-only, then CLOSE what it returned. */
class OpenClose implements CompletionTarget {
  busy = false;
  constructor(private readonly ring: Ring, private readonly L: Ledger, private readonly path: Buffer) {}
  start(): void {
    if (this.busy) return;
    this.busy = true;
    const sqe = this.ring.getSqe();
    prepOpenat(this.ring, sqe, AT.FDCWD, addressOf(this.path), O.RDONLY | O.CLOEXEC, 0);
    this.L.issue(this.ring, sqe, this, KIND.OPEN);
  }
  onCompletion(res: number, _flags: number, tag: number): void {
    const kind = this.L.complete(tag);
    if (kind === KIND.OPEN) {
      if (res < 0) {
        this.L.fail(`OPEN: ${res}`);
        this.busy = false;
        return;
      }
      const sqe = this.ring.getSqe();
      prepClose(this.ring, sqe, res);
      this.L.issue(this.ring, sqe, this, KIND.CLOSE);
      return;
    }
    if (res !== 0) this.L.fail(`CLOSE: ${res}`);
    this.busy = false;
  }
}

function runRandomized(backend: (typeof BACKENDS)[number], seed: number): Ledger {
  const rand = prng(seed);
  const L = new Ledger(TOTAL_OPS, rand);
  const tmp = tempDir(`random-${backend}`);
  const ring = openRing({ backend, entries: 64 });
  try {
    const simple = new Simple(ring, L);
    const streams: Stream[] = [];
    for (let i = 0; i < 3; i++) {
      const [r, w] = pipe();
      streams.push(new Stream(ring, L, r, w, false));
      const [c, s] = tcpPair();
      streams.push(new Stream(ring, L, s, c, true));
    }
    const files: FileActor[] = [];
    for (let i = 0; i < 4; i++) {
      const path = tmp.c(`file-${i}`);
      const fd = check("open", libc.open(path, O.RDWR | O.CREAT | O.CLOEXEC, 0o644));
      files.push(new FileActor(ring, L, fd, path));
    }
    const openers = [0, 1].map(() => new OpenClose(ring, L, tmp.c("file-0")));

    try {
      while (L.opsLeft > 0) {
        const starts = 1 + L.int(8);
        for (let i = 0; i < starts && L.opsLeft > 0; i++) {
          const x = L.rand();
          if (x < 0.2) simple.nop();
          else if (x < 0.3) simple.timeout(3_000_000);
          else if (x < 0.55) streams[L.int(streams.length)].kickWrite();
          else if (x < 0.75) streams[L.int(streams.length)].kickRead();
          else if (x < 0.92) files[L.int(files.length)].start();
          else openers[L.int(openers.length)].start();
        }
        const y = L.rand();
        if (y < 0.3) {
          ring.submit();
        } else if (y < 0.6) {
          // Wait, but never on reads alone: a short timeout guarantees something completes.
          if (simple.inFlightTimeouts === 0) simple.timeout(1_000_000);
          ring.submitAndWait(1);
        }
        if (L.rand() < 0.8) ring.processCompletions();
      }
      for (const s of streams) s.end();
      ring.runUntil(() => ring.inFlight === 0 && ring.pending === 0 && streams.every((s) => s.done));
      // The end of the streams may have issued a few ops beyond the budget; all completed.
      for (const s of streams) if (s.readPos !== s.written) L.fail(`stream read ${s.readPos} of ${s.written}`);
    } finally {
      for (const s of streams) s.close();
      for (const f of files) f.close();
    }
  } finally {
    ring.close();
    tmp.rm();
  }
  return L;
}

describe.each(BACKENDS)("randomized mixed operations on the %s backend", (backend) => {
  test(`${TOTAL_OPS} ops: each completed once, data intact, no fd leaked`, () => {
    const seed = Number(process.env.URING_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const fdsBefore = openFds();
    let L: Ledger;
    try {
      L = runRandomized(backend, seed);
    } catch (e) {
      console.error(`randomized ${backend}: seed ${seed} (replay with URING_TEST_SEED=${seed})`);
      throw e;
    }
    const fdsAfter = openFds();
    if (process.env.URING_TEST_VERBOSE) {
      console.log(backend, seed, Object.fromEntries([...L.submitted].map(([k, v]) => [KIND_NAME[k], v])));
    }
    const summary = {
      seed,
      errors: L.errors,
      outstanding: L.outstanding.size,
      leaked: [...fdsAfter].filter((fd) => !fdsBefore.has(fd)),
    };
    if (summary.errors.length > 0 || summary.outstanding > 0 || summary.leaked.length > 0) {
      console.error(`randomized ${backend}: seed ${seed} (replay with URING_TEST_SEED=${seed})`);
    }
    expect(summary).toEqual({ seed, errors: [], outstanding: 0, leaked: [] });
    // Counted per kind: everything submitted completed, and every kind was exercised.
    const total = [...L.submitted.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(TOTAL_OPS);
    for (const k of Object.values(KIND)) {
      expect({ kind: KIND_NAME[k], completed: L.completed.get(k) ?? 0 })
        .toEqual({ kind: KIND_NAME[k], completed: L.submitted.get(k) ?? 0 });
      expect({ kind: KIND_NAME[k], exercised: (L.submitted.get(k) ?? 0) > 0 }).toEqual({ kind: KIND_NAME[k], exercised: true });
    }
    // Completions really arrived out of submission order somewhere.
    let inversions = 0;
    for (let i = 1; i < L.completionOrder.length; i++) if (L.completionOrder[i] < L.completionOrder[i - 1]) inversions++;
    expect(inversions).toBeGreaterThan(0);
  });
});
