/**
 * io_uring through the raw syscalls (io_uring_setup/enter/register via libc syscall()).
 *
 * Owns: the ring fd and its three mappings when liburing is not installed. Drives the
 * same TypeScript ring as the liburing backend. Never reaps completions itself.
 */
import { ptr, type Pointer } from "bun:ffi";
import { errno, libc } from "../../ffi/libc.ts";
import { REGISTER, RSRC_REGISTER_SPARSE, SETUP, SYS, URING_PARAMS, URING_PROBE, FEAT, ENTER, OFF } from "../../ffi/structs.ts";
import { memoryFromParams, mmapRing, ringSizes, view } from "./memory.ts";
import { parseProbe } from "./probe.ts";
import type { RingBackend, RingMemory, RingSetup } from "./types.ts";

const SIGSET_BYTES = 8;

/** io_uring_setup, retrying without optional flags the kernel refuses (EINVAL). */
export function setupWithFallback(
  setup: RingSetup,
  create: (flags: number, params: Uint8Array) => number,
): { result: number; params: Uint8Array; flags: number } {
  // Drop the newest flags first: a kernel that lacks one lacks the ones after it.
  const optional = [SETUP.NO_SQARRAY, SETUP.DEFER_TASKRUN, SETUP.SINGLE_ISSUER, SETUP.COOP_TASKRUN, SETUP.SUBMIT_ALL];
  let flags = setup.flags;
  for (;;) {
    const params = new Uint8Array(URING_PARAMS.size);
    const dv = new DataView(params.buffer);
    let f = flags;
    if (setup.cqEntries !== undefined) {
      f |= SETUP.CQSIZE;
      dv.setUint32(URING_PARAMS.cqEntries, setup.cqEntries, true);
    }
    dv.setUint32(URING_PARAMS.flags, f, true);
    const result = create(f, params);
    if (result >= 0) return { result, params, flags: f };
    const drop = optional.find((o) => (flags & o) !== 0);
    if (result !== -22 || drop === undefined) return { result, params, flags: f };
    flags &= ~drop;
  }
}

export class RawBackend implements RingBackend {
  readonly kind = "raw" as const;
  readonly memory: RingMemory;
  readonly features: number;
  readonly setupFlags: number;
  readonly detail = "raw io_uring syscalls via libc";
  readonly fd: number;
  private readonly maps: [number, number][] = [];

  constructor(setup: RingSetup) {
    const { result, params, flags } = setupWithFallback(setup, (_f, p) => {
      const fd = libc.syscall(SYS.io_uring_setup, setup.entries, ptr(p) as number, 0, 0, 0, 0);
      return fd < 0 ? -errno() : fd;
    });
    if (result < 0) throw result;
    this.fd = result;
    this.setupFlags = flags;
    const dv = new DataView(params.buffer);
    this.features = dv.getUint32(URING_PARAMS.features, true);
    const sizes = ringSizes(dv);
    try {
      let sqAddr: number;
      let cqAddr: number;
      if ((this.features & FEAT.SINGLE_MMAP) !== 0) {
        const bytes = Math.max(sizes.sqRingBytes, sizes.cqRingBytes);
        sqAddr = cqAddr = this.map(bytes, OFF.SQ_RING);
        sizes.sqRingBytes = sizes.cqRingBytes = bytes;
      } else {
        sqAddr = this.map(sizes.sqRingBytes, OFF.SQ_RING);
        cqAddr = this.map(sizes.cqRingBytes, OFF.CQ_RING);
      }
      const sqesAddr = this.map(sizes.sqesBytes, OFF.SQES);
      this.memory = memoryFromParams(dv, view(sqAddr, sizes.sqRingBytes), view(cqAddr, sizes.cqRingBytes), view(sqesAddr, sizes.sqesBytes));
    } catch (e) {
      this.close();
      throw e;
    }
    // liburing pre-fills the index array with i -> i; so do we, and never touch it again.
    const m = this.memory;
    if (m.sqArray >= 0) for (let i = 0; i < m.sqEntries; i++) m.sq[m.sqArray + i] = i;
  }

  private map(bytes: number, offset: number): number {
    const addr = mmapRing(this.fd, bytes, offset);
    this.maps.push([addr, bytes]);
    return addr;
  }

  enter(toSubmit: number, minComplete: number, getEvents: boolean): number {
    const flags = getEvents || minComplete > 0 ? ENTER.GETEVENTS : 0;
    const r = libc.syscall(SYS.io_uring_enter, this.fd, toSubmit, minComplete, flags, 0, SIGSET_BYTES);
    return r < 0 ? -errno() : r;
  }

  private register(op: number, arg: number, nr: number): number {
    const r = libc.syscall(SYS.io_uring_register, this.fd, op, arg, nr, 0, 0);
    return r < 0 ? -errno() : r;
  }

  registerFiles(fds: Int32Array | number): number {
    if (typeof fds !== "number") return this.register(REGISTER.FILES, ptr(fds) as number, fds.length);
    // struct io_uring_rsrc_register { u32 nr; u32 flags; u64 resv2; u64 data; u64 tags; }
    const rr = new BigUint64Array(4);
    new Uint32Array(rr.buffer).set([fds, RSRC_REGISTER_SPARSE], 0);
    return this.register(REGISTER.FILES2, ptr(rr) as number, 32);
  }

  unregisterFiles(): number {
    return this.register(REGISTER.UNREGISTER_FILES, 0, 0);
  }

  registerBuffers(iovecs: number, count: number): number {
    return this.register(REGISTER.BUFFERS, iovecs, count);
  }

  unregisterBuffers(): number {
    return this.register(REGISTER.UNREGISTER_BUFFERS, 0, 0);
  }

  setIowqMaxWorkers(bounded: number, unbounded: number): number {
    const v = new Uint32Array([bounded, unbounded]);
    const r = this.register(REGISTER.IOWQ_MAX_WORKERS, ptr(v) as number, 2);
    return r < 0 ? r : 0;
  }

  probe(): boolean[] | null {
    const ops = 256;
    const buf = new Uint8Array(URING_PROBE.size + ops * URING_PROBE.opSize);
    return this.register(REGISTER.PROBE, ptr(buf) as number, ops) < 0 ? null : parseProbe(buf);
  }

  close(): void {
    for (const [addr, bytes] of this.maps.splice(0)) libc.munmap(addr as Pointer, bytes);
    if (this.fd >= 0) libc.close(this.fd);
  }
}
