/**
 * `doctor`'s facts: what this machine and this build of uring-sync can do, as one typed,
 * JSON-serialisable report (io_uring and the backend openRing() picks, opcode support,
 * kernel TLS by actually trying it, CPU crypto flags, limits, runtime) and a one-line
 * verdict.
 *
 * Owns: collecting and summarising. Never prints (src/cli/doctor.ts renders), never
 * leaves an fd or a ring open, never throws for something the machine lacks: a missing
 * feature is a fact in the report.
 */
import { liburing, liburingError } from "../../ffi/liburing.ts";
import { OP, USED_OPS } from "../../ffi/structs.ts";
import { openRing, ioUringDisabledSetting } from "../uring/backend.ts";
import type { Ring } from "../uring/ring.ts";
import type { BackendKind } from "../uring/types.ts";
import { buildInfo } from "../version.ts";
import {
  cpuFacts, kernelFacts, openFileLimit, runtimeFacts, tryIoUringSetup,
  type CpuFacts, type IoUringSetupResult, type KernelFacts, type OpenFileLimit, type RuntimeFacts,
} from "./facts.ts";
import { probeKtls, type KtlsFacts } from "./ktls-probe.ts";

export interface IoUringFacts {
  /** io_uring_setup works for this process. */
  available: boolean;
  /** /proc/sys/kernel/io_uring_disabled: 0 allowed, 1 only for io_uring_group, 2 off; null if absent. */
  disabledSetting: number | null;
  /** The raw io_uring_setup attempt. */
  setup: IoUringSetupResult;
  /** Why io_uring cannot be used, or null. */
  reason: string | null;
}

export type LiburingFacts = { loaded: true; version: string; path: string } | { loaded: false; reason: string };

export interface BackendFacts {
  /** The backend openRing() picked, or null when no ring could be opened at all. */
  kind: BackendKind | null;
  /** The backend's own description ("liburing 2.3 (/usr/lib/...)"), or the error. */
  detail: string;
  /** URING_SYNC_BACKEND, when it forces a backend. */
  forced: BackendKind | null;
  liburing: LiburingFacts;
  /** IORING_SETUP_* flags in effect and IORING_FEAT_* reported (0 for the emulation). */
  setupFlags: number;
  features: number;
  error: string | null;
}

export interface OpcodeFact {
  name: string;
  opcode: number;
  supported: boolean;
}

export interface OpcodeFacts {
  /** Whose answer this is: the kernel's probe, the synchronous emulation, or nobody's. */
  source: "kernel" | "emulation" | "none";
  ops: OpcodeFact[];
  supported: number;
  total: number;
  missing: string[];
}

export type DoctorStatus = "ready" | "degraded" | "not ready";

export interface DoctorReport {
  uringSync: { version: string; commit: string; buildDate: string };
  runtime: RuntimeFacts;
  kernel: KernelFacts;
  ioUring: IoUringFacts;
  backend: BackendFacts;
  opcodes: OpcodeFacts;
  ktls: KtlsFacts;
  cpu: CpuFacts | null;
  limits: { openFiles: OpenFileLimit };
  status: DoctorStatus;
  /** One line, e.g. "ready: io_uring via liburing 2.3, kernel TLS unavailable (userspace AES-GCM will be used)". */
  verdict: string;
}

export interface DoctorOptions {
  /** Skip the kTLS probes (they open a few loopback connections). Default: probe. */
  ktls?: boolean;
}

function ioUringFacts(): IoUringFacts {
  const disabledSetting = ioUringDisabledSetting();
  const setup = tryIoUringSetup();
  let reason: string | null = null;
  if (!setup.ok) {
    reason = disabledSetting !== null && disabledSetting > 0
      ? `io_uring_setup failed with ${setup.errno} (io_uring_disabled=${disabledSetting})`
      : `io_uring_setup failed with ${setup.errno} (${setup.message})`;
  }
  return { available: setup.ok, disabledSetting, setup, reason };
}

function forcedBackend(): BackendKind | null {
  const env = process.env.URING_SYNC_BACKEND;
  return env === "sync" || env === "raw" || env === "liburing" ? env : null;
}

function liburingFacts(): LiburingFacts {
  return liburing !== null
    ? { loaded: true, version: liburing.version, path: liburing.path }
    : { loaded: false, reason: liburingError ?? "unknown reason" };
}

function opcodeTable(supported: boolean[] | null): OpcodeFact[] {
  return USED_OPS.map((name) => ({ name, opcode: OP[name], supported: supported?.[OP[name]] === true }));
}

function backendAndOpcodes(): { backend: BackendFacts; opcodes: OpcodeFacts } {
  const base = { forced: forcedBackend(), liburing: liburingFacts() };
  let ring: Ring;
  try {
    ring = openRing({ entries: 8 });
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    const ops = opcodeTable(null);
    return {
      backend: { ...base, kind: null, detail: error, setupFlags: 0, features: 0, error },
      opcodes: { source: "none", ops, supported: 0, total: ops.length, missing: ops.map((o) => o.name) },
    };
  }
  try {
    const b = ring.backend;
    const ops = opcodeTable(b.probe());
    const missing = ops.filter((o) => !o.supported).map((o) => o.name);
    return {
      backend: { ...base, kind: b.kind, detail: b.detail, setupFlags: b.setupFlags, features: b.features, error: null },
      opcodes: {
        source: b.kind === "sync" ? "emulation" : "kernel",
        ops,
        supported: ops.length - missing.length,
        total: ops.length,
        missing,
      },
    };
  } finally {
    ring.close();
  }
}

function ioPart(r: Pick<DoctorReport, "backend" | "ioUring">): string {
  const b = r.backend;
  switch (b.kind) {
    case "liburing":
      return b.liburing.loaded ? `io_uring via liburing ${b.liburing.version}` : "io_uring via liburing";
    case "raw":
      return b.forced === "raw"
        ? "io_uring via raw syscalls (forced by URING_SYNC_BACKEND=raw)"
        : `io_uring via raw syscalls (liburing not loaded: ${b.liburing.loaded ? "?" : b.liburing.reason})`;
    case "sync":
      return b.forced === "sync"
        ? "synchronous system calls (forced by URING_SYNC_BACKEND=sync)"
        : `synchronous system calls, no io_uring (${r.ioUring.reason ?? b.detail})`;
    default:
      return `no usable I/O backend (${b.error ?? "unknown error"})`;
  }
}

function ktlsPart(k: KtlsFacts): string {
  if (!k.tlsUlp.tested) return `kernel TLS untested: ${k.tlsUlp.reason} (userspace AES-GCM will be used)`;
  if (!k.available) return "kernel TLS unavailable (userspace AES-GCM will be used)";
  if (k.usableTls13.length === 0) return "kernel TLS present but no TLS 1.3 cipher passed the round trip (userspace AES-GCM will be used)";
  const main = k.usableTls13.includes("aes-128-gcm") ? "" : "; aes-128-gcm will be encrypted in userspace";
  return `kernel TLS available (TLS 1.3 ${k.usableTls13.join(", ")}${main})`;
}

/** The status and the one-line verdict for a report. */
export function verdictOf(r: Pick<DoctorReport, "backend" | "ioUring" | "ktls">): { status: DoctorStatus; verdict: string } {
  const status: DoctorStatus = r.backend.kind === null
    ? "not ready"
    : r.backend.kind === "sync" && r.backend.forced !== "sync" ? "degraded" : "ready";
  return { status, verdict: `${status}: ${ioPart(r)}, ${ktlsPart(r.ktls)}` };
}

const KTLS_NOT_PROBED: KtlsFacts = {
  available: false,
  tlsUlp: { ok: false, tested: false, reason: "the kTLS probes were skipped" },
  probes: [],
  usableTls13: [],
  tlsStat: null,
};

/** Collect every fact. Synchronous; takes a few milliseconds (longer under emulation). */
export function collectDoctorReport(opts: DoctorOptions = {}): DoctorReport {
  const ioUring = ioUringFacts();
  const { backend, opcodes } = backendAndOpcodes();
  const ktls = opts.ktls === false ? KTLS_NOT_PROBED : probeKtls();
  const partial = { backend, ioUring, ktls };
  return {
    uringSync: buildInfo(),
    runtime: runtimeFacts(),
    kernel: kernelFacts(),
    ioUring,
    backend,
    opcodes,
    ktls,
    cpu: cpuFacts(),
    limits: { openFiles: openFileLimit() },
    ...verdictOf(partial),
  };
}
