/**
 * Chooses the ring backend: liburing when it loads, else the raw io_uring syscalls,
 * else (io_uring missing or forbidden, or the user asked) the synchronous emulation.
 *
 * Owns: that decision and the reason for it, which `doctor` and `-v` report. Never
 * prints.
 */
import { readFileSync } from "node:fs";
import { errnoName } from "../../ffi/errno.ts";
import { liburing, liburingError } from "../../ffi/liburing.ts";
import { SETUP } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import { LiburingBackend } from "./backend-liburing.ts";
import { RawBackend } from "./backend-raw.ts";
import { SyncBackend } from "./backend-sync.ts";
import { Ring } from "./ring.ts";
import type { BackendKind, RingBackend, RingSetup } from "./types.ts";

export interface RingOptions {
  /** SQ entries (queue depth); default 256. */
  entries?: number;
  cqEntries?: number;
  /** Force a backend; `sync` is what `--sync` means. Default: from URING_SYNC_BACKEND, else auto. */
  backend?: BackendKind;
  /** IORING_SETUP_* flags; default DEFAULT_SETUP_FLAGS. */
  flags?: number;
}

/**
 * SINGLE_ISSUER|DEFER_TASKRUN: each ring belongs to one thread, and completions are only
 * processed when we wait for them anyway, which saves task-work interrupts (bench/RESULTS.md).
 */
export const DEFAULT_SETUP_FLAGS = SETUP.SINGLE_ISSUER | SETUP.DEFER_TASKRUN;

/** Errors from io_uring_setup that mean "io_uring is not available here". */
const UNAVAILABLE = new Set([1 /* EPERM */, 38 /* ENOSYS */, 13 /* EACCES */, 95 /* EOPNOTSUPP */]);

/** What /proc/sys/kernel/io_uring_disabled says (0 allowed, 1 group only, 2 off), or null. */
export function ioUringDisabledSetting(): number | null {
  try {
    return Number(readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim());
  } catch {
    return null;
  }
}

function forcedBackend(opts: RingOptions): BackendKind | undefined {
  if (opts.backend !== undefined) return opts.backend;
  const env = process.env.URING_SYNC_BACKEND;
  if (env === "sync" || env === "raw" || env === "liburing") return env;
  return undefined;
}

export function openBackend(opts: RingOptions = {}): RingBackend {
  const setup: RingSetup = {
    entries: opts.entries ?? 256,
    flags: opts.flags ?? DEFAULT_SETUP_FLAGS,
    cqEntries: opts.cqEntries,
  };
  const forced = forcedBackend(opts);
  if (forced === "sync") return new SyncBackend(setup, "forced (--sync)");
  const tryOpen = (kind: "liburing" | "raw"): RingBackend => {
    try {
      if (kind === "liburing") {
        if (liburing === null) throw new Error(`liburing not loaded: ${liburingError ?? "unknown reason"}`);
        return new LiburingBackend(liburing, setup);
      }
      return new RawBackend(setup);
    } catch (e) {
      if (typeof e === "number") throw new SysError("io_uring_setup", -e);
      throw e;
    }
  };
  try {
    if (forced !== undefined) return tryOpen(forced);
    return tryOpen(liburing !== null ? "liburing" : "raw");
  } catch (e) {
    if (forced === undefined && e instanceof SysError && UNAVAILABLE.has(e.errno)) {
      const disabled = ioUringDisabledSetting();
      const why = disabled !== null && disabled > 0
        ? `io_uring_disabled=${disabled}`
        : `io_uring_setup failed with ${errnoName(e.errno)}`;
      return new SyncBackend(setup, why);
    }
    throw e;
  }
}

/** Open a ring on the best available backend. */
export function openRing(opts: RingOptions = {}): Ring {
  return new Ring(openBackend(opts));
}
