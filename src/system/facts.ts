/**
 * Small facts about the machine and the runtime, read from /proc and libc: kernel
 * release, CPU crypto flags, the open-file limit, the Bun runtime, and whether
 * io_uring_setup works at all (independently of the backend that gets picked).
 *
 * Owns: reading and parsing those sources. Never prints, never throws for a missing
 * file: absent facts are null.
 */
import { readFileSync } from "node:fs";
import { errnoMessage, errnoName } from "../../ffi/errno.ts";
import { addressOf, errno, libc } from "../../ffi/libc.ts";
import { RLIM_INFINITY, RLIMIT, RLIMIT_NOFILE, SYS, URING_PARAMS } from "../../ffi/structs.ts";

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

export interface KernelFacts {
  /** uname -r, from /proc/sys/kernel/osrelease. */
  release: string | null;
  /** uname -v (build string), from /proc/sys/kernel/version. */
  version: string | null;
}

export function kernelFacts(): KernelFacts {
  return {
    release: readText("/proc/sys/kernel/osrelease")?.trim() ?? null,
    version: readText("/proc/sys/kernel/version")?.trim() ?? null,
  };
}

/** CPU features that decide how fast AES-GCM (kernel or userspace) and SHA-256 run. */
export const CPU_FLAGS = ["aes", "vaes", "pclmulqdq", "avx2", "avx512f", "sha_ni"] as const;
export type CpuFlag = (typeof CPU_FLAGS)[number];

export interface CpuFacts {
  model: string | null;
  /** Logical CPUs listed in /proc/cpuinfo. */
  count: number;
  flags: Record<CpuFlag, boolean>;
}

/** Parse /proc/cpuinfo (the first processor's flags; they are the same on every core). */
export function parseCpuinfo(text: string): CpuFacts {
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? null;
  const have = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? "").trim().split(/\s+/));
  const flags = Object.fromEntries(CPU_FLAGS.map((f) => [f, have.has(f)])) as Record<CpuFlag, boolean>;
  const count = (text.match(/^processor\s*:/gm) ?? []).length;
  return { model, count, flags };
}

export function cpuFacts(): CpuFacts | null {
  const text = readText("/proc/cpuinfo");
  return text === null ? null : parseCpuinfo(text);
}

export type Limit = number | "unlimited";
export type OpenFileLimit = { soft: Limit; hard: Limit } | { error: string };

export function openFileLimit(): OpenFileLimit {
  const rl = new BigUint64Array(RLIMIT.size / 8);
  if (libc.getrlimit(RLIMIT_NOFILE, rl) !== 0) return { error: errnoName(errno()) };
  const val = (v: bigint): Limit => (v === RLIM_INFINITY ? "unlimited" : Number(v));
  return { soft: val(rl[RLIMIT.cur / 8]), hard: val(rl[RLIMIT.max / 8]) };
}

export interface RuntimeFacts {
  bun: string;
  bunRevision: string;
  /** Running as a `bun build --compile` executable (the program lives in /$bunfs). */
  compiled: boolean;
  execPath: string;
  glibc: string;
}

export function runtimeFacts(): RuntimeFacts {
  return {
    bun: Bun.version,
    bunRevision: Bun.revision,
    compiled: isCompiled(),
    execPath: process.execPath,
    glibc: String(libc.gnu_get_libc_version()),
  };
}

/** A compiled executable serves its bundled modules from the virtual /$bunfs tree. */
export function isCompiled(): boolean {
  return import.meta.path.startsWith("/$bunfs/") || Bun.main.startsWith("/$bunfs/");
}

export type IoUringSetupResult = { ok: true; features: number } | { ok: false; errno: string; message: string };

/**
 * io_uring_setup(2, {}) through the raw syscall, whatever backend is chosen: says whether
 * the kernel lets this process use io_uring at all. The ring fd is closed at once.
 */
export function tryIoUringSetup(): IoUringSetupResult {
  // Over an explicit ArrayBuffer: the bytes never move, so the address stays valid (see stableAddressOf in src/net/ktls.ts).
  const params = new Uint8Array(new ArrayBuffer(URING_PARAMS.size));
  const fd = libc.syscall(SYS.io_uring_setup, 2, addressOf(params), 0, 0, 0, 0);
  if (fd < 0) {
    const e = errno();
    return { ok: false, errno: errnoName(e), message: errnoMessage(e) };
  }
  libc.close(fd);
  return { ok: true, features: new DataView(params.buffer).getUint32(URING_PARAMS.features, true) };
}
