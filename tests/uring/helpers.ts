// tests/uring/helpers.ts — shared fixtures for the ring suite: the list of backends,
// recording completion targets, page-aligned native memory, loopback TCP pairs and pipes
// made with plain libc calls, temp dirs and open-fd counting. No assertions live here
// except the ones that mean "the fixture itself broke".

import { toArrayBuffer, type Pointer } from "bun:ffi";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errnoName } from "../../ffi/errno.ts";
import { addressOf, cstr, errno, libc } from "../../ffi/libc.ts";
import { AF, IOVEC, MSGHDR, SOCK, SOCKADDR_IN, SOL, SO } from "../../ffi/structs.ts";
import type { CompletionTarget, Ring } from "../../src/uring/ring.ts";
import type { BackendKind } from "../../src/uring/types.ts";

export const BACKENDS: readonly BackendKind[] = ["liburing", "raw", "sync"];

export function check(what: string, r: number | bigint): number {
  const n = Number(r);
  if (n < 0) throw new Error(`${what} failed: ${errnoName(errno())}`);
  return n;
}

/** Records every completion by tag; a second completion for a tag is an error. */
export class Recorder implements CompletionTarget {
  readonly res = new Map<number, number>();
  readonly order: number[] = [];
  duplicates = 0;
  onCompletion(res: number, _flags: number, tag: number): void {
    if (this.res.has(tag)) this.duplicates++;
    this.res.set(tag, res);
    this.order.push(tag);
  }
  get(tag: number): number {
    const r = this.res.get(tag);
    if (r === undefined) throw new Error(`no completion for tag ${tag}`);
    return r;
  }
}

/**
 * Prepare one SQE per entry (tag = index), submit them together and wait for all.
 * Returns the results in tag order.
 */
export function runBatch(ring: Ring, preps: ((sqe: number) => void)[], rec = new Recorder()): number[] {
  const base = rec.order.length;
  const tags = preps.map((prep, i) => {
    const sqe = ring.getSqe();
    prep(sqe);
    const tag = base + i;
    ring.setUserData(sqe, ring.track(rec, tag));
    return tag;
  });
  ring.runUntil(() => tags.every((t) => rec.res.has(t)));
  if (rec.duplicates > 0) throw new Error("duplicate completion");
  return tags.map((t) => rec.get(t));
}

/** Native memory from posix_memalign: never moves, freed with free(). */
export class NativeBuf {
  readonly addr: number;
  readonly bytes: Uint8Array;
  constructor(readonly size: number, align = 4096) {
    const slot = new BigUint64Array(1);
    if (libc.posix_memalign(slot, align, size) !== 0) throw new Error("posix_memalign failed");
    this.addr = Number(slot[0]);
    this.bytes = new Uint8Array(toArrayBuffer(this.addr as Pointer, 0, size));
  }
  free(): void {
    libc.free(this.addr as Pointer);
  }
}

/** An array of struct iovec over the given (address, length) pairs. */
export function iovecs(parts: [number, number][]): BigUint64Array {
  const v = new BigUint64Array((parts.length * IOVEC.size) / 8);
  parts.forEach(([addr, len], i) => {
    v[(i * IOVEC.size + IOVEC.base) / 8] = BigInt(addr);
    v[(i * IOVEC.size + IOVEC.len) / 8] = BigInt(len);
  });
  return v;
}

/** A struct msghdr with an iovec array and an optional control buffer. */
export function msghdr(iov: BigUint64Array, count: number, control?: Uint8Array): Uint8Array {
  const m = new Uint8Array(MSGHDR.size);
  const dv = new DataView(m.buffer);
  dv.setBigUint64(MSGHDR.iov, BigInt(addressOf(iov)), true);
  dv.setBigUint64(MSGHDR.iovlen, BigInt(count), true);
  if (control !== undefined) {
    dv.setBigUint64(MSGHDR.control, BigInt(addressOf(control)), true);
    dv.setBigUint64(MSGHDR.controllen, BigInt(control.length), true);
  }
  return m;
}

export function sockaddrLoopback(port: number): Uint8Array {
  const sa = new Uint8Array(SOCKADDR_IN.size);
  const dv = new DataView(sa.buffer);
  dv.setUint16(SOCKADDR_IN.family, AF.INET, true);
  dv.setUint16(SOCKADDR_IN.port, port, false);
  sa.set([127, 0, 0, 1], SOCKADDR_IN.addr);
  return sa;
}

/** A listening TCP socket on 127.0.0.1, port chosen by the kernel (bind to port 0). */
export function listenLoopback(): { fd: number; port: number; addr: Uint8Array } {
  const fd = check("socket", libc.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
  const one = new Int32Array([1]);
  check("setsockopt", libc.setsockopt(fd, SOL.SOCKET, SO.REUSEADDR, one, 4));
  check("bind", libc.bind(fd, sockaddrLoopback(0), SOCKADDR_IN.size));
  check("listen", libc.listen(fd, 64));
  const sa = new Uint8Array(SOCKADDR_IN.size);
  const len = new Uint32Array([SOCKADDR_IN.size]);
  check("getsockname", libc.getsockname(fd, sa, len));
  const port = new DataView(sa.buffer).getUint16(SOCKADDR_IN.port, false);
  if (port === 0) throw new Error("getsockname returned port 0");
  return { fd, port, addr: sockaddrLoopback(port) };
}

export function tcpSocket(): number {
  return check("socket", libc.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
}

/** A connected loopback TCP pair made with blocking libc calls (loopback connects at once). */
export function tcpPair(): [number, number] {
  const l = listenLoopback();
  const c = tcpSocket();
  check("connect", libc.connect(c, l.addr, SOCKADDR_IN.size));
  const s = check("accept4", libc.accept4(l.fd, null, null, SOCK.CLOEXEC));
  libc.close(l.fd);
  return [c, s];
}

/** pipe2(O_CLOEXEC): [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", libc.pipe2(fds, 0o2000000));
  return [fds[0], fds[1]];
}

export function closeAll(fds: number[]): void {
  for (const fd of fds) if (fd >= 0) libc.close(fd);
}

export function tempDir(label: string): { dir: string; path: (name: string) => string; c: (name: string) => Buffer; rm: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `uring-${label}-`));
  return {
    dir,
    path: (name) => join(dir, name),
    c: (name) => cstr(join(dir, name)),
    rm: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Open file descriptors of this process, from /proc/self/fd (minus the one readdir uses). */
export function openFds(): Set<string> {
  return new Set(readdirSync("/proc/self/fd"));
}

export { prng } from "../helpers/fuzz.ts";

/** Byte `i` of a stream identified by `id`: lets a reader check data without a copy. */
export function streamByte(id: number, i: number): number {
  return (Math.imul(i, 2654435761) ^ Math.imul(id + 1, 40503) ^ (i >>> 11)) & 0xff;
}
