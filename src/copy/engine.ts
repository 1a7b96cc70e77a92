/**
 * The local copy engine's entry point and coordinator: `copy(options, hooks)`.
 *
 * Owns, on the main thread: resolving and checking SRC/DST (safety.ts), creating DST,
 * the copiers (copier.ts: one on the main thread, run a batch at a time between event-loop
 * turns, and one per Worker, started lazily, see worker.ts), handing them tasks
 * (directories LIFO so memory stays bounded by the tree's depth x width, never by its
 * file count; big files and hard-link groups first), the directory tree's completion
 * (a directory's mode, owner and times are set once everything under it is done), hard
 * links (one name copied, the others linked to it), counters, progress, errors, and
 * stopping (SIGINT/SIGTERM through `hooks.signal`, or ENOSPC from a worker).
 *
 * Never prints: everything reaches the CLI through the hooks and the returned result.
 */
import { availableParallelism } from "node:os";
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AT, O, S } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import { workerEntry } from "../system/worker-entry.ts";
import { errorInfo, isFatalErrno, type CopyErrorInfo } from "./errors.ts";
import { Filter } from "./filter.ts";
import { runToken, TempNames } from "./place.ts";
import {
  ABORT, C, DstState, NO_HINT, PATH_SLOTS, type ChangeAction, type ChunkTask, type CopierConfig, type CopierEvent, type DirTask, type FileTask,
  type Task, type WorkerIn, type WorkerOut,
} from "./protocol.ts";
import { Copier } from "./copier.ts";
import { removeTree } from "./remove.ts";
import { resolveCopy } from "./safety.ts";
import { closeStaging, discardStaging, openStaging, publishStaging, type Staging } from "./stage.ts";
import { DirReader } from "./scan.ts";
import {
  atParent, decodePath, DIR_FLAGS, encoder, joinRel, lstatAt, openDirBeneath, readUmask, showPath, StatBuf,
  Times, zpath, type StatSnapshot,
} from "./sys.ts";
import { DT } from "./sysconst.ts";

export type { ChangeAction } from "./protocol.ts";
export type { CopyErrorInfo } from "./errors.ts";

export interface CopyOptions {
  src: string;
  dst: string;
  checksum?: boolean;
  ignoreTimes?: boolean;
  delete?: boolean;
  dryRun?: boolean;
  exclude?: string[];
  include?: string[];
  /** Worker threads (default: number of CPUs). */
  jobs?: number;
  /** io_uring queue depth per worker = files in flight per batch (default 256). */
  queueDepth?: number;
  /** Read/write chunk size; also the largest file read whole through the ring (capped at 1 MiB). */
  chunk?: number;
  /** Synchronous system calls instead of io_uring (--sync). */
  sync?: boolean;
  /** Allow splice(2) when copy_file_range cannot be used (default true; --no-splice). */
  splice?: boolean;
  /** fsync each file before it is renamed into place, and every directory at the end. */
  fsync?: boolean;
  /** Keep owner and group (only possible as root; default true). */
  owner?: boolean;
  xattrs?: boolean;
  /** Recreate FIFOs, sockets and device nodes (root) instead of skipping them. */
  specials?: boolean;
  /** Override the working directory SRC and DST are relative to. */
  cwd?: string;
}

export interface CopyProgress {
  /** Still discovering what there is to copy (totals not final). */
  scanning: boolean;
  /** Regular files and bytes found so far (all of them once scanning is false). */
  filesTotal: number;
  bytesTotal: number;
  /** Files dealt with (copied, skipped or failed) and bytes copied. */
  filesDone: number;
  bytesDone: number;
  filesCopied: number;
  filesSkipped: number;
  filesFailed: number;
  seconds: number;
  /** Bytes per second over the run so far. */
  rate: number;
  /** Seconds left, when known. */
  eta: number | null;
}

export interface CopyHooks {
  /** Called about every `progressMs` while the copy runs (only when given). */
  onProgress?: (p: CopyProgress) => void;
  progressMs?: number;
  onError?: (e: CopyErrorInfo) => void;
  onWarning?: (message: string) => void;
  /** What a dry run would do (or, live, what --delete removed). Paths are relative to SRC/DST. */
  onChange?: (action: ChangeAction, path: string) => void;
  /** Once, when the backend is known. */
  onBackend?: (kind: string, detail: string) => void;
  /** Aborting stops the copy as soon as possible; the result then says `interrupted`. */
  signal?: AbortSignal;
}

export interface CopyResult {
  /** Regular files written, plus hard links made, symlinks and special files created. */
  filesCopied: number;
  filesSkipped: number;
  filesFailed: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  specials: number;
  specialsSkipped: number;
  deleted: number;
  bytes: number;
  seconds: number;
  /** io_uring backend kind: "liburing", "raw" or "sync". */
  backend: string;
  backendDetail: string;
  /** How many files went by each data path. */
  dataPaths: Record<string, number>;
  /** Files written by each thread: the main thread first, then the workers. */
  threads: number[];
  errors: CopyErrorInfo[];
  /** Errors beyond the kept ones (counted, not listed). */
  errorsOmitted: number;
  /** Stopped by the signal. */
  interrupted: boolean;
  /** Stopped by a fatal error (ENOSPC...), with its errno name. */
  stoppedBy: string | null;
  dryRun: boolean;
}

/** Largest file read whole through the ring (measured: docs/DESIGN.md). */
export const RING_MAX = 1 << 20;
/** Files at least this big are handed to whichever worker is free. */
export const OFFLOAD_MIN = 16 << 20;
const MAX_ERRORS_KEPT = 1000;
/** Tasks a worker holds at once (one running, one queued, so it never waits for us). */
const PER_WORKER = 3;

interface DirNode {
  id: number;
  rel: Uint8Array;
  parent: DirNode | null;
  /** Own task + subdirectories + file tasks + hard links still to do. */
  pending: number;
  stat: StatSnapshot;
  state: DstState;
  /** DST directory setgid (1/0), or -1 unknown. */
  sgid: number;
  /** Its own task already set its mode and times (it handed nothing on). */
  finalized?: boolean;
}

interface Group {
  /** DST-relative path of the copied name; links point at it. */
  first: Uint8Array;
  state: "copying" | "done" | "failed";
  waiters: { dirRel: Uint8Array; name: Uint8Array; state: DstState; node: DirNode | null }[];
}

interface Slot {
  worker: Worker;
  index: number;
  ready: boolean;
  inflight: number;
}

/** Start a directory worker once the run has gone on this long with more queued. */
const LAZY_WORKER_MS = 5;
/** Longest stretch the main thread copies before letting its event loop run. */
const MAIN_SLICE_MS = 3;

/** One event-loop turn: worker messages, timers and signal handlers get to run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const nowS = (t0: number): number => (performance.now() - t0) / 1000;

/** Copy SRC to DST. Throws UsageError for refused combinations, SysError when SRC is unusable. */
export async function copy(opts: CopyOptions, hooks: CopyHooks = {}): Promise<CopyResult> {
  const t0 = performance.now();
  const res = resolveCopy(opts.src, opts.dst, opts.cwd);
  new Filter(opts.exclude, opts.include); // validate patterns before touching anything
  const euid = libc.geteuid();
  const isRoot = euid === 0;
  const chunk = opts.chunk ?? 1 << 20;
  const single = res.kind === "file";
  const jobs = single ? 1 : Math.max(1, Math.min(64, opts.jobs ?? availableParallelism()));
  const dryRun = opts.dryRun ?? false;
  const srcRoot = single ? dirnameOf(res.src) : res.src;
  const dstRoot = single ? dirnameOf(res.dst) : res.dst;
  const placeEnv = process.env.URING_SYNC_PLACE;
  const token = runToken();
  // A new DST tree is copied into a hidden, locked sibling and renamed into place at the
  // end (stage.ts): no per-file temp names or links inside it. URING_SYNC_STAGE=0 turns
  // that off (the knob used to measure it, docs/DESIGN.md).
  const staging = !single && !res.dstExists && !dryRun && process.env.URING_SYNC_STAGE !== "0" && placeEnv !== "named"
    ? openStaging(res.dst, token)
    : null;
  const cfg: CopierConfig = {
    srcRoot, dstRoot: staging !== null ? staging.path : dstRoot, srcShow: srcRoot, dstShow: dstRoot,
    prefetchDirs: process.env.URING_SYNC_PREFETCH === "0" ? "off" : process.env.URING_SYNC_PREFETCH === "always" ? "always" : "auto",
    checksum: opts.checksum ?? false, ignoreTimes: opts.ignoreTimes ?? false, delete: opts.delete ?? false, dryRun,
    exclude: opts.exclude ?? [], include: opts.include ?? [],
    queueDepth: opts.queueDepth ?? 256, chunk, syncBackend: opts.sync ?? false, splice: opts.splice ?? true,
    fsync: opts.fsync ?? false, owner: (opts.owner ?? true) && isRoot, xattrs: opts.xattrs ?? false,
    specials: opts.specials ?? false, isRoot, umask: readUmask(), euid, egid: libc.getegid(), token,
    jobs, offloadMin: OFFLOAD_MIN, ringMax: Math.min(chunk, RING_MAX), tmpfile: placeEnv !== "named", staged: staging !== null,
  };
  const run = new Run(cfg, hooks, t0, staging);
  if (single) {
    if (!res.dstParentExists) {
      if (!dryRun) throw new SysError("open", E.ENOENT, dstRoot);
    }
    const state = res.dstParentExists ? DstState.Existed : DstState.Absent;
    run.startFile(base(res.src), base(res.dst), state);
  } else {
    const st = new StatBuf();
    const zsrc = zpath(encoder.encode(res.src));
    const e = lstatAt(AT.FDCWD, zsrc, st);
    if (e < 0) {
      if (staging !== null) discardStaging(staging);
      throw new SysError("stat", -e, opts.src);
    }
    let state: DstState;
    if (res.dstExists) state = DstState.Existed;
    else if (dryRun) state = DstState.Absent;
    else {
      if (staging === null) mkdirs(res.dst);
      state = DstState.Fresh;
    }
    try {
      run.startTree(st.snapshot(), state);
    } catch (e) {
      if (staging !== null) discardStaging(staging);
      throw e;
    }
  }
  return await run.done;
}

function base(p: string): Uint8Array {
  return encoder.encode(p.slice(p.lastIndexOf("/") + 1));
}

function dirnameOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** mkdir -p: parents as usual, the last one 0700 until its contents are in. */
function mkdirs(path: string): void {
  const parts = path.split("/").filter((x) => x !== "");
  let cur = "";
  for (let i = 0; i < parts.length; i++) {
    cur += `/${parts[i]}`;
    const last = i === parts.length - 1;
    if (libc.mkdirat(AT.FDCWD, zpath(encoder.encode(cur)), last ? 0o700 : 0o777) === 0) continue;
    const e = errno();
    if (e === E.EEXIST && !last) continue;
    throw new SysError("mkdir", e, cur);
  }
}

/** One copy run: the coordinator's state. */
class Run {
  readonly done: Promise<CopyResult>;
  private resolve!: (r: CopyResult) => void;
  private reject!: (e: unknown) => void;
  private readonly cfg: CopierConfig;
  private readonly hooks: CopyHooks;
  private readonly t0: number;
  private readonly counterMem: SharedArrayBuffer;
  private readonly abortMem = new SharedArrayBuffer(4);
  private readonly abortFlag = new Int32Array(this.abortMem);
  /** The coordinator's own counters (links, directory finalization). */
  private readonly mine: Float64Array;
  private readonly slots: Slot[] = [];
  private readonly dirQ: Task[] = [];
  private readonly fileQ: Task[] = [];
  private readonly nodes = new Map<number, DirNode>();
  /** File task id -> the directory node waiting for it, and its hard-link group. */
  private readonly fileOwners = new Map<number, { node: DirNode | null; group: Group | null }>();
  private readonly groups = new Map<string, Group>();
  private nextId = 1;
  private readonly errors: CopyErrorInfo[] = [];
  private errorsOmitted = 0;
  private stoppedBy: string | null = null;
  private backend = "";
  private backendDetail = "";
  private finished = false;
  private rootDone = false;
  private dstRootFd = -1;
  private readonly times = new Times();
  private readonly names: TempNames;
  private readonly st = new StatBuf();
  private readonly st2 = new StatBuf();
  private progressTimer: ReturnType<typeof setInterval> | null = null;
  private scan: CountingScan | null = null;
  private fatal: Error | null = null;
  /** The main thread's own copier (null when it cannot open a ring, or after the run). */
  private main: Copier | null = null;
  private mainBusy = false;

  constructor(cfg: CopierConfig, hooks: CopyHooks, t0: number, private readonly staging: Staging | null = null) {
    this.cfg = cfg;
    this.hooks = hooks;
    this.t0 = t0;
    this.counterMem = new SharedArrayBuffer((cfg.jobs + 1) * C.size * 8);
    this.mine = new Float64Array(this.counterMem, cfg.jobs * C.size * 8, C.size);
    this.names = new TempNames(`${cfg.token}m`);
    this.done = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    hooks.signal?.addEventListener("abort", () => this.stop(ABORT.signal), { once: true });
  }

  private stop(why: number): void {
    if (Atomics.load(this.abortFlag, 0) === ABORT.none) Atomics.store(this.abortFlag, 0, why);
    this.dirQ.length = 0;
    this.fileQ.length = 0;
    this.maybeFinish();
  }

  private get aborted(): boolean {
    return Atomics.load(this.abortFlag, 0) !== ABORT.none;
  }

  startTree(rootStat: StatSnapshot, state: DstState): void {
    if (state !== DstState.Absent) this.dstRootFd = this.openDstRoot();
    const root: DirNode = { id: this.nextId++, rel: new Uint8Array(0), parent: null, pending: 1, stat: rootStat, state, sgid: -1 };
    this.nodes.set(root.id, root);
    this.mine[C.dirs]++;
    this.dirQ.push({ t: "dir", id: root.id, rel: root.rel, state, fs: NO_HINT, stat: rootStat });
    this.begin();
  }

  startFile(name: Uint8Array, dstName: Uint8Array, state: DstState): void {
    this.rootDone = true; // no directory tree to finish
    const id = this.nextId++;
    this.fileOwners.set(id, { node: null, group: null });
    this.fileQ.push({ t: "file", id, dirRel: new Uint8Array(0), name, dstName, state, link: true });
    this.begin();
  }

  private openDstRoot(): number {
    const fd = libc.open(zpath(encoder.encode(this.cfg.dstRoot)), DIR_FLAGS & ~O.NOFOLLOW, 0);
    if (fd < 0) throw new SysError("open", errno(), this.cfg.dstRoot);
    return fd;
  }

  private begin(): void {
    // The main thread copies too (between event-loop turns): no waiting for a worker to
    // start, and one thread fewer to schedule. Workers join as they come up.
    try {
      this.main = new Copier(this.cfg, this.mine, this.abortFlag, (ev) => this.onEvent(null, ev), true);
      this.backend = this.main.ring.kind;
      this.backendDetail = this.main.ring.backend.detail;
      this.hooks.onBackend?.(this.backend, this.backendDetail);
    } catch (e) {
      this.main = null;
      if (this.cfg.jobs < 2) throw e;
    }
    if (this.main === null || this.fileQ.length > 0) this.spawn(0);
    if (this.hooks.onProgress !== undefined) {
      if (this.nodes.size > 0) this.scan = new CountingScan(this.cfg);
      this.progressTimer = setInterval(() => this.progress(), this.hooks.progressMs ?? 200);
    }
    this.dispatch();
  }

  // ---- workers --------------------------------------------------------------------------

  /**
   * How many workers the work in sight justifies. Directories: jobs minus the main
   * thread, and only once the main thread has been busy for a while with more queued (a
   * worker costs ~20 ms of start-up and its own JIT warm-up: not worth it for a small
   * copy). Big files and hard-link groups (file tasks) only run on workers: up to `jobs`.
   */
  private get workersWanted(): number {
    if (this.main === null) return this.cfg.jobs;
    if (this.fileQ.length > 0) return this.cfg.jobs;
    const busyLong = performance.now() - this.t0 >= LAZY_WORKER_MS;
    if (this.dirQ.length > 0 && (busyLong || this.slots.length > 0)) return this.cfg.jobs - 1;
    return this.fileOwners.size > 0 ? 1 : 0;
  }

  /** Start the next worker if the work in sight wants one more. */
  private maybeSpawn(): void {
    if (this.slots.length < this.workersWanted && this.slots.every((s) => s.ready)) this.spawn(this.slots.length);
  }

  /**
   * Start worker `i`; the next one starts when this one is ready (concurrent dlopen in
   * freshly started Workers is an upstream hazard: FIELD_NOTES section 2).
   */
  private spawn(i: number): void {
    if (i >= Math.max(1, this.cfg.jobs) || i < this.slots.length || this.finished || this.aborted) return;
    const worker = new Worker(copyWorkerEntry());
    const slot: Slot = { worker, index: i, ready: false, inflight: 0 };
    this.slots.push(slot);
    worker.onmessage = (m: MessageEvent<WorkerOut>) => this.onWorker(slot, m.data);
    worker.onerror = (e: ErrorEvent) => this.onFatal(new Error(`worker ${i}: ${e.message}`));
    const init: WorkerIn = { t: "init", cfg: this.cfg, counters: this.counterMem, abort: this.abortMem, index: i };
    worker.postMessage(init);
  }

  private onFatal(e: Error): void {
    if (this.fatal === null) this.fatal = e;
    this.stop(ABORT.fatal);
    for (const s of this.slots) s.inflight = 0;
    this.maybeFinish();
  }

  private onWorker(slot: Slot, msg: WorkerOut): void {
    switch (msg.t) {
      case "ready":
        slot.ready = true;
        if (this.backend === "") {
          this.backend = msg.backend;
          this.backendDetail = msg.detail;
          this.hooks.onBackend?.(msg.backend, msg.detail);
        }
        this.dispatch();
        return;
      case "events":
        for (const ev of msg.events) this.onEvent(slot, ev);
        this.dispatch();
        return;
      case "fatal":
        this.onFatal(new Error(msg.message));
        return;
    }
  }

  private dispatch(): void {
    if (this.finished) return;
    this.dispatchWorkers();
    // What is left wants more workers (file tasks only run on workers).
    this.maybeSpawn();
    if (this.main !== null && !this.mainBusy && this.dirQ.length > 0 && !this.aborted) void this.mainLoop();
    this.maybeFinish();
  }

  /** The next task for a worker: one big file at a time (so they spread), else directories. */
  private taskFor(s: Slot): Task | undefined {
    if (this.fileQ.length > 0 && s.inflight === 0) return this.fileQ.shift();
    if (this.dirQ.length > 0 && s.inflight < PER_WORKER) return this.dirQ.pop();
    return undefined;
  }

  /** File tasks need a worker: start one if there is none yet, and feed the idle ones. */
  private workersNow(): void {
    this.maybeSpawn();
    this.dispatchWorkers();
  }

  /** Give queued tasks to ready workers (round robin, so work spreads). */
  private dispatchWorkers(): void {
    for (;;) {
      let sent = false;
      for (const s of this.slots) {
        if (!s.ready) continue;
        const task = this.taskFor(s);
        if (task === undefined) continue;
        s.inflight++;
        s.worker.postMessage(task);
        sent = true;
      }
      if (!sent) return;
    }
  }

  /**
   * The main thread's copier: takes directory and chunk tasks while there are any, a batch
   * at a time, letting the event loop run every few milliseconds. One loop, not a call per
   * task: a tree of many tiny directories must not grow the stack.
   */
  private async mainLoop(): Promise<void> {
    const main = this.main as Copier;
    this.mainBusy = true;
    let slice = performance.now();
    try {
      while (!this.aborted && !this.finished) {
        const task = this.dirQ.pop() as DirTask | ChunkTask | undefined;
        if (task === undefined) break;
        const it = task.t === "dir" ? main.runDirSteps(task) : main.runChunkSteps(task);
        let ok = false;
        for (;;) {
          const r = it.next();
          if (r.done === true) {
            ok = r.value;
            break;
          }
          if (performance.now() - slice > MAIN_SLICE_MS) {
            this.maybeSpawn();
            await turn();
            slice = performance.now();
          }
        }
        this.onTaskDone(task.id, ok, task.t === "dir" && main.lastFinalized);
        this.dispatchWorkers();
        if (performance.now() - slice > MAIN_SLICE_MS) {
          this.maybeSpawn();
          await turn();
          slice = performance.now();
        }
      }
    } catch (e) {
      this.mainBusy = false;
      this.onFatal(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.mainBusy = false;
    this.dispatch();
  }

  private maybeFinish(): void {
    if (this.finished) return;
    if (this.mainBusy || this.slots.some((s) => s.inflight > 0)) return;
    if (!this.aborted && (!this.rootDone || this.dirQ.length > 0 || this.fileQ.length > 0 || this.fileOwners.size > 0)) return;
    this.finish();
  }

  private finish(): void {
    this.finished = true;
    if (this.progressTimer !== null) clearInterval(this.progressTimer);
    this.scan?.stop();
    if (this.dstRootFd >= 0) libc.close(this.dstRootFd);
    // Counters are shared memory: the result needs no word from the workers. They free
    // their rings and buffers and end on their own.
    for (const s of this.slots) {
      s.worker.postMessage({ t: "exit" } satisfies WorkerIn);
      s.worker.unref();
    }
    this.main?.close();
    this.main = null;
    if (this.staging !== null) this.publish(this.staging);
    if (this.fatal !== null) this.reject(this.fatal);
    else this.resolve(this.result());
  }

  /**
   * The staged tree becomes DST: every task has ended, so nothing in it is incomplete (a
   * file that failed or was interrupted was removed by its copier), and what was copied
   * is kept, as after a failure in an existing DST. After an internal failure (a worker
   * died mid-file) the tree stays hidden; the next run removes it.
   */
  private publish(s: Staging): void {
    if (this.fatal !== null) {
      closeStaging(s);
      return;
    }
    const f = publishStaging(s, this.cfg.fsync);
    if (f !== null) {
      // Reported even after an interruption: after a failed rename nothing of the copy
      // reached DST; after a failed fsync it did, but is not known to be durable.
      this.mine[C.failed]++;
      this.addError(errorInfo(new SysError(f.syscall, f.errno, this.cfg.dstShow), this.cfg.dstShow));
    }
  }

  private perThread(): number[] {
    const all = new Float64Array(this.counterMem);
    const main = all[this.cfg.jobs * C.size + C.copied];
    const workers = this.slots.map((s) => all[s.index * C.size + C.copied]);
    return [main, ...workers];
  }

  private sum(slot: number): number {
    const all = new Float64Array(this.counterMem);
    let t = 0;
    for (let i = 0; i <= this.cfg.jobs; i++) t += all[i * C.size + slot];
    return t;
  }

  private result(): CopyResult {
    const dataPaths: Record<string, number> = {};
    for (const [k, slot] of Object.entries(PATH_SLOTS)) {
      const v = this.sum(slot);
      if (v > 0) dataPaths[k] = v;
    }
    const flag = Atomics.load(this.abortFlag, 0);
    return {
      filesCopied: this.sum(C.copied),
      filesSkipped: this.sum(C.skipped),
      filesFailed: this.sum(C.failed),
      dirs: this.sum(C.dirs),
      symlinks: this.sum(C.symlinks),
      hardlinks: this.sum(C.hardlinks),
      specials: this.sum(C.specials),
      specialsSkipped: this.sum(C.specialsSkipped),
      deleted: this.sum(C.deleted),
      bytes: this.sum(C.bytes),
      seconds: nowS(this.t0),
      backend: this.backend || (this.cfg.syncBackend ? "sync" : "liburing"),
      backendDetail: this.backendDetail,
      dataPaths,
      threads: this.perThread(),
      errors: this.errors,
      errorsOmitted: this.errorsOmitted,
      interrupted: flag === ABORT.signal,
      stoppedBy: flag === ABORT.fatal ? (this.stoppedBy ?? "error") : null,
      dryRun: this.cfg.dryRun,
    };
  }

  // ---- events from workers ------------------------------------------------------------

  private onEvent(slot: Slot | null, ev: CopierEvent): void {
    switch (ev.e) {
      case "subdir": {
        const parent = this.nodes.get(ev.parent);
        if (parent === undefined) return;
        const node: DirNode = { id: this.nextId++, rel: ev.rel, parent, pending: 1, stat: ev.stat, state: ev.state, sgid: ev.fs.dstSgid };
        parent.pending++;
        this.nodes.set(node.id, node);
        if (this.aborted) return;
        this.dirQ.push({ t: "dir", id: node.id, rel: node.rel, state: node.state, fs: ev.fs, stat: ev.stat });
        // From the main thread's copier: hand it to an idle worker right away.
        if (slot === null) this.dispatchWorkers();
        return;
      }
      case "offload": {
        const node = this.nodes.get(ev.parent) ?? null;
        if (node !== null) node.pending++;
        const id = this.nextId++;
        this.fileOwners.set(id, { node, group: null });
        this.fileQ.push({ t: "file", id, dirRel: ev.dirRel, name: ev.name, dstName: null, state: ev.state, link: false });
        if (slot === null) this.workersNow();
        return;
      }
      case "chunk": {
        const node = this.nodes.get(ev.parent) ?? null;
        if (node !== null) node.pending++;
        const id = this.nextId++;
        this.fileOwners.set(id, { node, group: null });
        this.dirQ.push({ t: "chunk", id, dirId: ev.parent, rel: ev.rel, state: ev.state, names: ev.names });
        if (slot === null) this.workersNow();
        return;
      }
      case "link":
        this.onLink(ev.dirRel, ev.name, ev.state, `${ev.dev}:${ev.ino}`, this.nodes.get(ev.parent) ?? null);
        if (slot === null) this.workersNow();
        return;
      case "error":
        this.addError(ev.info);
        return;
      case "warn":
        this.hooks.onWarning?.(ev.msg);
        return;
      case "change":
        this.hooks.onChange?.(ev.action, ev.path);
        return;
      case "done":
        if (slot !== null) slot.inflight--;
        this.onTaskDone(ev.id, ev.ok, ev.final);
        return;
    }
  }

  private addError(info: CopyErrorInfo): void {
    if (info.code === "ENOSPC" || info.code === "EDQUOT" || info.code === "EROFS") this.stoppedBy ??= info.code;
    if (this.errors.length < MAX_ERRORS_KEPT) this.errors.push(info);
    else this.errorsOmitted++;
    this.hooks.onError?.(info);
    if (Atomics.load(this.abortFlag, 0) === ABORT.fatal) this.stop(ABORT.fatal);
  }

  private onTaskDone(id: number, ok: boolean, final = false): void {
    const node = this.nodes.get(id);
    if (node !== undefined) {
      if (final) node.finalized = true;
      this.release(node);
      return;
    }
    const owner = this.fileOwners.get(id);
    if (owner === undefined) return;
    this.fileOwners.delete(id);
    if (owner.group !== null) this.groupCopied(owner.group, ok);
    if (owner.node !== null) this.release(owner.node);
  }

  /** One thing a directory waited for is done; finish it (and maybe its parents). */
  private release(node: DirNode): void {
    let n: DirNode | null = node;
    while (n !== null) {
      n.pending--;
      if (n.pending > 0) return;
      this.nodes.delete(n.id);
      this.finalizeDir(n);
      if (n.parent === null) this.rootDone = true;
      n = n.parent;
    }
  }

  /**
   * A directory is complete: give it its mode, owner and times (set last, like cp -a),
   * through an fd (no path lookups past PATH_MAX, no symlink followed), and with --fsync
   * make its entries durable. Children are finalized before their parents.
   */
  private finalizeDir(n: DirNode): void {
    if (n.finalized || this.cfg.dryRun || n.state === DstState.Absent || this.dstRootFd < 0) return;
    const path = showPath(this.cfg.dstShow, n.rel);
    const fd = n.rel.length === 0 ? this.dstRootFd : openDirBeneath(this.dstRootFd, n.rel);
    if (fd < 0) {
      this.dirError("open", fd, path);
      return;
    }
    const s = n.stat;
    // A directory this run made under another one it made belongs to euid:egid already.
    const known = n.state === DstState.Fresh && n.parent !== null && n.parent.state === DstState.Fresh && n.sgid === 0;
    if (this.cfg.owner && !(known && s.uid === this.cfg.euid && s.gid === this.cfg.egid) && libc.fchown(fd, s.uid, s.gid) !== 0) {
      this.dirError("chown", -errno(), path);
    }
    if (libc.fchmod(fd, s.mode & 0o7777) !== 0) this.dirError("chmod", -errno(), path);
    if (libc.futimens(fd, this.times.fromSnapshot(s).words) !== 0) this.dirError("utimensat", -errno(), path);
    if (this.cfg.fsync && libc.fsync(fd) !== 0) this.dirError("fsync", -errno(), path);
    if (fd !== this.dstRootFd) libc.close(fd);
  }

  private dirError(syscall: string, err: number, path: string): void {
    if (this.aborted) return;
    this.mine[C.failed]++;
    this.addError(errorInfo(new SysError(syscall, -err, path), path));
  }

  // ---- hard links -----------------------------------------------------------------------

  private onLink(dirRel: Uint8Array, name: Uint8Array, state: DstState, key: string, node: DirNode | null): void {
    if (node !== null) node.pending++;
    const g = this.groups.get(key);
    if (g === undefined || g.state === "failed") {
      const group: Group = g ?? { first: joinRel(dirRel, name), state: "copying", waiters: [] };
      group.first = joinRel(dirRel, name);
      group.state = "copying";
      this.groups.set(key, group);
      this.copyFirst(group, dirRel, name, state, node);
      return;
    }
    if (g.state === "copying") {
      g.waiters.push({ dirRel, name, state, node });
      return;
    }
    this.makeLink(g, dirRel, name, state);
    if (node !== null) this.release(node);
  }

  private copyFirst(group: Group, dirRel: Uint8Array, name: Uint8Array, state: DstState, node: DirNode | null): void {
    const id = this.nextId++;
    this.fileOwners.set(id, { node, group });
    const task: FileTask = { t: "file", id, dirRel, name, dstName: null, state, link: true };
    if (this.aborted) {
      this.fileOwners.delete(id);
      if (node !== null) this.release(node);
      return;
    }
    this.fileQ.push(task);
  }

  private groupCopied(g: Group, ok: boolean): void {
    if (ok) {
      g.state = "done";
      const waiters = g.waiters.splice(0);
      for (const w of waiters) {
        this.makeLink(g, w.dirRel, w.name, w.state);
        if (w.node !== null) this.release(w.node);
      }
      return;
    }
    // The copy failed: the next name gets its own chance.
    const next = g.waiters.shift();
    if (next === undefined) {
      g.state = "failed";
      return;
    }
    g.first = joinRel(next.dirRel, next.name);
    this.copyFirst(g, next.dirRel, next.name, next.state, next.node);
  }

  /** Make DST/dirRel/name a hard link to DST/g.first (or skip when it already is one). */
  private makeLink(g: Group, dirRel: Uint8Array, name: Uint8Array, state: DstState): void {
    if (this.aborted) return;
    const rel = joinRel(dirRel, name);
    const path = showPath(this.cfg.dstShow, rel);
    const c = this.mine;
    if (this.dstRootFd < 0 || state === DstState.Absent) {
      this.hooks.onChange?.("copy", decodePath(rel));
      c[C.copied]++;
      c[C.hardlinks]++;
      return;
    }
    const firstOk = lstatRel(this.dstRootFd, g.first, this.st2) === 0;
    const e = lstatRel(this.dstRootFd, rel, this.st);
    const exists = e === 0;
    if (exists && firstOk && this.st.dev === this.st2.dev && this.st.ino === this.st2.ino) {
      c[C.skipped]++;
      return;
    }
    if (this.cfg.dryRun) {
      this.hooks.onChange?.(exists ? "update" : "copy", decodePath(rel));
      c[C.copied]++;
      c[C.hardlinks]++;
      return;
    }
    if (!firstOk) {
      this.fileError("link", E.ENOENT, path);
      return;
    }
    if (exists && this.st.type === S.IFDIR) {
      if (!this.cfg.delete) {
        this.fileError("replace", E.EISDIR, `${path} (a directory in DST; --delete replaces it)`);
        return;
      }
      const ok = atParent(this.dstRootFd, rel, (dfd, zname) =>
        removeTree(dfd, zname, path, (call, err, p) => this.fileError(call, err, p)) ? 0 : -1);
      if (ok < 0) return;
    }
    const r = atParent(this.dstRootFd, g.first, (ffd, fname) =>
      atParent(this.dstRootFd, rel, (dfd, zname) => {
        if (!exists || this.st.type === S.IFDIR) return libc.linkat(ffd, fname, dfd, zname, 0) === 0 ? 0 : -errno();
        // Replace what is there atomically: link under a temp name, rename over.
        const tmp = this.names.next(zname.subarray(0, zname.length - 1)).slice();
        if (libc.linkat(ffd, fname, dfd, tmp, 0) !== 0) return -errno();
        if (libc.renameat2(dfd, tmp, dfd, zname, 0) !== 0) {
          const er = -errno();
          libc.unlinkat(dfd, tmp, 0);
          return er;
        }
        return 0;
      }));
    if (r < 0) {
      this.fileError("link", r, path);
      return;
    }
    c[C.copied]++;
    c[C.hardlinks]++;
  }

  private fileError(syscall: string, err: number, path: string): void {
    const e = err < 0 ? -err : err;
    this.mine[C.failed]++;
    this.addError(errorInfo(new SysError(syscall, e, path), path));
    if (isFatalErrno(e)) this.stop(ABORT.fatal);
  }

  // ---- progress ---------------------------------------------------------------------------

  private progress(): void {
    const cb = this.hooks.onProgress;
    if (cb === undefined || this.finished) return;
    const secs = nowS(this.t0);
    const copied = this.sum(C.copied);
    const skipped = this.sum(C.skipped);
    const failed = this.sum(C.failed);
    const bytes = this.sum(C.bytes);
    const scan = this.scan;
    const scanning = scan !== null ? !scan.finished : !this.rootDone;
    const filesTotal = scan !== null ? Math.max(scan.files, this.sum(C.seenFiles)) : this.sum(C.seenFiles);
    const bytesTotal = scan !== null ? Math.max(scan.bytes, this.sum(C.seenBytes)) : this.sum(C.seenBytes);
    const filesDone = copied + skipped + failed;
    const rate = secs > 0 ? bytes / secs : 0;
    let eta: number | null = null;
    if (!scanning && secs > 0.5) {
      const fileRate = filesDone / secs;
      const byBytes = rate > 0 ? Math.max(0, bytesTotal - bytes) / rate : 0;
      const byFiles = fileRate > 0 ? Math.max(0, filesTotal - filesDone) / fileRate : 0;
      eta = Math.max(byBytes, byFiles);
    }
    cb({ scanning, filesTotal, bytesTotal, filesDone, bytesDone: bytes, filesCopied: copied, filesSkipped: skipped, filesFailed: failed, seconds: secs, rate, eta });
  }
}

/** Where worker.ts is, from source or in the compiled executable (src/system/worker-entry.ts). */
export function copyWorkerEntry(): string {
  return workerEntry(new URL("./worker.ts", import.meta.url), "copy/worker", import.meta);
}

function lstatRel(rootfd: number, rel: Uint8Array, st: StatBuf): number {
  return atParent(rootfd, rel, (dfd, zname) => lstatAt(dfd, zname, st));
}

/**
 * Counts what SRC holds (regular files and their bytes) for the progress display's
 * totals and ETA, on the main thread, a slice at a time so worker messages keep flowing.
 * Only runs when someone watches the progress. Memory: a stack of directory paths.
 */
class CountingScan {
  files = 0;
  bytes = 0;
  finished = false;
  private stopped = false;
  private readonly stack: Uint8Array[] = [new Uint8Array(0)];
  private readonly rootfd: number;
  private readonly reader = new DirReader();
  private readonly st = new StatBuf();
  private readonly filter: Filter;

  constructor(cfg: CopierConfig) {
    this.filter = new Filter(cfg.exclude, cfg.include);
    this.rootfd = libc.open(zpath(encoder.encode(cfg.srcRoot)), DIR_FLAGS & ~O.NOFOLLOW, 0);
    if (this.rootfd < 0) {
      this.finished = true;
      return;
    }
    setTimeout(() => this.slice(), 0);
  }

  stop(): void {
    this.stopped = true;
    if (this.rootfd >= 0) libc.close(this.rootfd);
  }

  private slice(): void {
    if (this.stopped) return;
    const until = performance.now() + 8;
    while (performance.now() < until) {
      const rel = this.stack.pop();
      if (rel === undefined) {
        this.finished = true;
        return;
      }
      const fd = openDirBeneath(this.rootfd, rel);
      if (fd < 0) continue;
      const r = this.reader;
      r.open(fd);
      for (;;) {
        const n = r.fill(false);
        if (n <= 0) break;
        for (let i = 0; i < n; i++) {
          const rec = r.order[i];
          let t = r.type(rec);
          if (t === DT.UNKNOWN || t === DT.REG) {
            if (lstatAt(fd, r.zname(rec), this.st) !== 0) continue;
            t = (this.st.mode & S.IFMT) === S.IFDIR ? DT.DIR : (this.st.mode & S.IFMT) === S.IFREG ? DT.REG : DT.UNKNOWN;
          }
          const childRel = t === DT.DIR || !this.filter.empty ? joinRel(rel, r.name(rec)) : null;
          if (childRel !== null && !this.filter.empty && this.filter.excluded(decodePath(childRel), t === DT.DIR)) continue;
          if (t === DT.DIR && childRel !== null) this.stack.push(childRel);
          else if (t === DT.REG) {
            this.files++;
            this.bytes += this.st.size;
          }
        }
      }
      libc.close(fd);
    }
    setTimeout(() => this.slice(), 0);
  }
}
