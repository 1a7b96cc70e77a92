/**
 * What the coordinator (engine.ts, main thread) and the copiers (copier.ts, one per
 * Worker) say to each other, and the shared counters they both see.
 *
 * Owns: message and config shapes, the counter slots, the abort flag values. Plain data
 * that survives postMessage (Uint8Array paths, numbers). Never logic.
 */
import type { CopyErrorInfo } from "./errors.ts";
import type { StatSnapshot } from "./sys.ts";

/** What we know about the destination directory of a task. */
export const DstState = {
  /** Created by this run: holds only what this run put there; no lookups needed. */
  Fresh: 0,
  /** Was there before: every name must be checked. */
  Existed: 1,
  /** Does not exist (dry run): everything would be new; nothing may be created. */
  Absent: 2,
} as const;
export type DstState = (typeof DstState)[keyof typeof DstState];

/** Everything a copier needs to know about the run (sent once to each worker). */
export interface CopierConfig {
  /** Absolute paths of the source and destination roots (directories). */
  srcRoot: string;
  dstRoot: string;
  /** How to name paths in messages: the roots as the user should read them. */
  srcShow: string;
  dstShow: string;
  checksum: boolean;
  ignoreTimes: boolean;
  delete: boolean;
  dryRun: boolean;
  exclude: string[];
  include: string[];
  queueDepth: number;
  chunk: number;
  /** Force the synchronous ring emulation (--sync). */
  syncBackend: boolean;
  splice: boolean;
  fsync: boolean;
  /** Keep owners (requested and running as root). */
  owner: boolean;
  xattrs: boolean;
  specials: boolean;
  isRoot: boolean;
  umask: number;
  euid: number;
  egid: number;
  /** Random per run: temp names carry it, so --delete never removes this run's temp files. */
  token: string;
  jobs: number;
  /** Files at least this big are offered to other workers (jobs > 1). */
  offloadMin: number;
  /** Largest file read through the ring pipeline. */
  ringMax: number;
  /** O_TMPFILE for new files (measured faster; see docs/DESIGN.md), else named temps. */
  tmpfile: boolean;
  /**
   * dstRoot is a staging directory (stage.ts) renamed to DST at the end: files in
   * directories this run made are created directly under their final names.
   */
  staged: boolean;
  /**
   * Read new source subdirectories' blocks ahead (Copier.prefetchDir): "auto" (the default)
   * once the source looks uncached, "always" (tests), "off" (to measure it). Set from
   * URING_SYNC_PREFETCH=0|always.
   */
  prefetchDirs?: "auto" | "always" | "off";
}

/** Process one directory: its entries, its new subdirectories (reported), --delete. */
export interface DirTask {
  t: "dir";
  id: number;
  rel: Uint8Array;
  state: DstState;
  /** What the parent already knows about both sides (0: unknown, ask the kernel). */
  fs: FsHint;
  /** The source directory as it was before anyone read it (for its final mode and times). */
  stat: StatSnapshot;
}

/**
 * File system facts a directory usually shares with its parent: the source's device and
 * statfs type, and the destination's (same as the parent's for a directory this run made).
 * Saves three system calls per directory.
 */
export interface FsHint {
  srcDev: number;
  srcFs: number;
  dstDev: number;
  dstFs: number;
  /** The DST directory has the setgid bit (new entries take its group): 1, 0, or -1 unknown. */
  dstSgid: number;
}

export const NO_HINT: FsHint = { srcDev: 0, srcFs: 0, dstDev: 0, dstFs: 0, dstSgid: -1 };

/** Copy one file (a big one offered by a worker, the first name of a hard-link group, or SRC itself). */
export interface FileTask {
  t: "file";
  id: number;
  dirRel: Uint8Array;
  name: Uint8Array;
  /** Name in DST when it differs (a single-file copy to another name). */
  dstName: Uint8Array | null;
  state: DstState;
  /** First name of a hard-link group: copy it even though nlink > 1. */
  link: boolean;
}

/**
 * Regular files of one big directory, split off by the worker reading it so other
 * threads copy them at the same time (a flat directory of 100,000 files would otherwise
 * be one thread's job). `names` holds NUL-terminated names back to back.
 */
export interface ChunkTask {
  t: "chunk";
  id: number;
  /** The directory's node (events about these files belong to it). */
  dirId: number;
  rel: Uint8Array;
  state: DstState;
  names: Uint8Array;
}

export type Task = DirTask | FileTask | ChunkTask;

/** Worker -> coordinator. */
export type CopierEvent =
  | { e: "subdir"; parent: number; rel: Uint8Array; stat: StatSnapshot; state: DstState; fs: FsHint }
  | { e: "offload"; parent: number; dirRel: Uint8Array; name: Uint8Array; state: DstState }
  | { e: "chunk"; parent: number; rel: Uint8Array; state: DstState; names: Uint8Array }
  | { e: "link"; parent: number; dirRel: Uint8Array; name: Uint8Array; state: DstState; dev: number; ino: number }
  | { e: "error"; info: CopyErrorInfo }
  | { e: "warn"; msg: string }
  | { e: "change"; action: ChangeAction; path: string }
  | { e: "done"; id: number; ok: boolean; final: boolean };

export type ChangeAction = "copy" | "update" | "delete";

export type WorkerIn =
  | { t: "init"; cfg: CopierConfig; counters: SharedArrayBuffer; abort: SharedArrayBuffer; index: number }
  | Task
  | { t: "exit" };

export type WorkerOut =
  | { t: "ready"; backend: string; detail: string }
  | { t: "events"; events: CopierEvent[] }
  | { t: "fatal"; message: string };

/** Slots of each thread's counters (a Float64Array over a SharedArrayBuffer). */
export const C = {
  /** Regular files, symlinks, hard links and specials written (or that a dry run would write). */
  copied: 0,
  skipped: 1,
  failed: 2,
  bytes: 3,
  /** Regular files and bytes seen by the scan so far (for progress). */
  seenFiles: 4,
  seenBytes: 5,
  dirs: 6,
  symlinks: 7,
  hardlinks: 8,
  specialsSkipped: 9,
  deleted: 10,
  specials: 11,
  /** Files moved by each data path (datapath.ts), for -v. */
  pathRing: 12,
  pathClone: 13,
  pathCopyFileRange: 14,
  pathSplice: 15,
  pathReadWrite: 16,
  pathStream: 17,
  size: 18,
} as const;

/** Data path name -> counter slot. */
export const PATH_SLOTS = {
  ring: C.pathRing, clone: C.pathClone, copy_file_range: C.pathCopyFileRange, splice: C.pathSplice,
  read_write: C.pathReadWrite, stream: C.pathStream,
} as const;

/** Values of the shared abort flag. */
export const ABORT = { none: 0, signal: 1, fatal: 2 } as const;
