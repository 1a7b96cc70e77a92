/**
 * Thin typed bindings to liburing (2.x, as shipped by Debian: liburing.so.2), named after
 * the C symbols.
 *
 * Owns: loading liburing if it is there. Exports `liburing === null` when it is not, so
 * callers can fall back to the raw syscalls. The prep helpers are static inline in C and
 * live in src/uring/prep.ts instead. Never decide policy here.
 */
import { dlopen, type Pointer } from "bun:ffi";
import { readFileSync, realpathSync } from "node:fs";

const SYMBOLS = {
  io_uring_queue_init_params: { args: ["u32", "ptr", "ptr"], returns: "i32" },
  io_uring_queue_exit: { args: ["ptr"], returns: "void" },
  io_uring_submit: { args: ["ptr"], returns: "i32" },
  io_uring_submit_and_wait: { args: ["ptr", "u32"], returns: "i32" },
  io_uring_register_files: { args: ["ptr", "ptr", "u32"], returns: "i32" },
  io_uring_register_files_sparse: { args: ["ptr", "u32"], returns: "i32" },
  io_uring_unregister_files: { args: ["ptr"], returns: "i32" },
  io_uring_register_buffers: { args: ["ptr", "ptr", "u32"], returns: "i32" },
  io_uring_unregister_buffers: { args: ["ptr"], returns: "i32" },
  io_uring_register_iowq_max_workers: { args: ["ptr", "ptr"], returns: "i32" },
  io_uring_get_probe_ring: { args: ["ptr"], returns: "ptr" },
  io_uring_free_probe: { args: ["ptr"], returns: "void" },
} as const;

type LiburingSymbols = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

export interface Liburing {
  readonly symbols: LiburingSymbols;
  /** The file that was loaded, e.g. /usr/lib/x86_64-linux-gnu/liburing.so.2.3. */
  readonly path: string;
  /** Version from the file name ("2.3"), or "unknown". */
  readonly version: string;
}

/** Why liburing could not be loaded, when it could not. */
export let liburingError: string | undefined;

function load(): Liburing | null {
  if (process.env.URING_SYNC_NO_LIBURING === "1") {
    liburingError = "disabled by URING_SYNC_NO_LIBURING=1";
    return null;
  }
  const names = ["liburing.so.2", "liburing.so"];
  const errors: string[] = [];
  for (const name of names) {
    try {
      const lib = dlopen(name, SYMBOLS);
      const path = loadedPath() ?? name;
      const m = /liburing\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(path);
      return { symbols: lib.symbols, path, version: m?.[1] ?? "unknown" };
    } catch (e) {
      errors.push(e instanceof Error ? e.message.split("\n")[0] : String(e));
    }
  }
  liburingError = errors.join("; ");
  return null;
}

/** Where the dynamic loader found liburing: read from our own memory map. */
function loadedPath(): string | undefined {
  try {
    const maps = readFileSync("/proc/self/maps", "utf8");
    const m = /(\/\S*liburing\.so[^\s]*)/.exec(maps);
    return m ? realpathSync(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** liburing, or null when it is not installed (or disabled). Loaded once per thread. */
export const liburing: Liburing | null = load();

export type { Pointer };
