/**
 * The receiving side of a transfer: parses the sender's frames straight out of the
 * channel and lands files under DST, confined (dest.ts), with io_uring.
 *
 * Owns: the frame parser (headers checked before any payload byte is kept; DATA bytes
 * streamed into staging buffers, never a whole frame per allocation), every per-file
 * rule of docs/PROTOCOL.md section 8 (ids, offsets in order, exactly `size` bytes as DATA
 * and HOLE, no more and no fewer), the file pipeline (O_TMPFILE or a named temporary,
 * WRITE, mtime, then link/rename to the final name: a file only ever appears under its
 * final name complete), symlinks, hard links, directories (their modes and times last),
 * limits on entries, open files and memory, the REPORT, and cleaning up after a failure
 * (no temporary is left behind; O_TMPFILE ones vanish by themselves). Large files are
 * received under their partial name (agree.ts) unless the listing names a file of its
 * own there (`claimed`); a partial name is renamed, kept or removed only while it still
 * refers to the inode this session created or resumed (docs/PROTOCOL.md 8.7).
 *
 * Must never: follow a symlink, write outside DST, touch under a partial name anything
 * it did not create there (a listed file of that name is the sender's), create device
 * nodes or FIFOs, keep setuid/setgid/sticky bits, hold more than the memory cap of peer
 * data, or let a peer's mistake crash the process: anything wrong is a ProtocolError
 * that ends the session.
 */
import { timingSafeEqual } from "node:crypto";
import { E } from "../../ffi/errno.ts";
import { cstr, errno, libc } from "../../ffi/libc.ts";
import { AT, IOSQE, O, RENAME, S } from "../../ffi/structs.ts";
import { ProtocolError, SysError } from "../errors.ts";
import { prepClose, prepLinkat, prepOpenat, prepRenameat, prepUnlinkat, prepWrite, sqeSetFlags } from "../uring/prep.ts";
import { UNTRACKED, type CompletionTarget } from "../uring/ring.ts";
import { Filter } from "../copy/filter.ts";
import { fstatx, lstatAt, readlinkAt, StatBuf } from "../copy/sys.ts";
import { agreeFileSteps, applySkipMeta, type Answer, type HashStep, looksPartial, PARTIAL_SUFFIX, partialName, RESUME_MIN } from "./agree.ts";
import { Coverage } from "./coverage.ts";
import { hashPoolFor, INLINE_HASH_MAX } from "./hash-pool.ts";
import type { Channel, ChannelSink } from "./channel.ts";
import { TreeRemover } from "../copy/remove.ts";
import { DeletePass } from "./delete.ts";
import { ListedPaths } from "./listed-paths.ts";
import type { Destination, DirHandle } from "./dest.ts";
import type { Loop } from "./loop.ts";
import { pinned, recycle, type Pinned } from "./mem.ts";
import { trace } from "./trace.ts";
import {
  capFailures, checkFrameHeader, DATA_FIELDS_LENGTH, decodeSenderMessage, displaySafe, encodeMessage, FLAG_CONTINUATION, FRAME_HEADER_LENGTH, SplitHeader,
  MAX_FILE_SIZE, MAX_FILTERS, MAX_TEXT_BYTES, MSG_DATA, MSG_HOLE, MSG_JOIN, MSG_SKIP, MSG_WANT, syncOptionsOf, truncateUtf8, type EntryMessage, type FileEntry, type ReportFailure,
  type SenderMessage, type SyncOptions,
} from "./wire.ts";

export interface ReceiverLimits {
  /** ENTRY messages per session. */
  maxEntries: number;
  /** Files announced (ENTRY) and not yet ended (FILE_END / FILE_ABORT) at once: a protocol limit. */
  maxOpenFiles: number;
  /** Peer bytes held in memory waiting for the disk; above it the receiver stops reading. */
  maxBufferedBytes: number;
  /** Files ended on the wire but not yet on disk; above it the receiver stops reading. */
  maxFinishing: number;
  /** Bytes of paths kept to resolve later hard links. */
  maxLinkPathBytes: number;
  /** Land files through O_TMPFILE where the file system has it (false: named temporaries; tests). */
  tmpfile: boolean;
  /** Hard links announced while the file they name is still being received. */
  maxPendingLinks: number;
}

/** How long files still missing bytes wait for a replacement data stream after the last one closed. */
const STREAM_REPLACE_GRACE_MS = 5000;
/** A SKIP frame: header + id. */
const SKIP_FRAME = FRAME_HEADER_LENGTH + 4;
/**
 * Answers go out once this many bytes of them are queued, not only at the end of a
 * received chunk: a chunk can hold the sender's whole window of ENTRYs (1000), and
 * answering them all at once made the two ends take turns (each idle while the other
 * worked: a no-op re-run of 100,000 files took the sum of both ends' CPU, not the larger).
 * One answer send is in flight at a time; answers made meanwhile gather in one buffer,
 * which goes the moment that send completes, and every answer send is submitted at once
 * (ring.submitNow), not after the rest of the completion batch: queued 2 KiB sends used to
 * leave one per turn of the event loop, each turn parsing a whole chunk first, and the
 * sender's window stayed full for half of a re-run (~250 of 550 ms on small100k).
 */
const CONTROL_FLUSH_BYTES = 2048;
/** The --delete pass works this long between looks at the connection. */
const CHORE_SLICE_MS = 20;
/** ...and pauses while this many control buffers (its DELETED frames) wait to be sent. */
const CHORE_SENDS_AHEAD = 4;
/** A WANT frame from offset 0: header + id + offset + no-hash flag. */
const WANT_ALL_FRAME = FRAME_HEADER_LENGTH + 13;
/**
 * Paths of listed entries named like a partial (`.X.usync-partial`) remembered per
 * session, in characters. They are rare; past this the session uses no partial name at
 * all (every large file then lands through an ordinary temporary, without resume), so
 * memory stays bounded whatever the listing holds.
 */
const MAX_CLAIMED_CHARS = 256 * 1024;

export const DEFAULT_LIMITS: ReceiverLimits = {
  maxEntries: 50_000_000,
  maxOpenFiles: 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxFinishing: 1024,
  maxLinkPathBytes: 256 * 1024 * 1024,
  tmpfile: true,
  maxPendingLinks: 100_000,
};

export interface RecvStats {
  /** Regular files stored (hard links are counted in `hardlinks` only, as the sender counts them). */
  files: number;
  dirs: number;
  symlinks: number;
  /** Hard links in place: made now, or already there. */
  hardlinks: number;
  /** Bytes of the files stored (complete files only). */
  bytes: number;
  /** Bytes written so far, complete or not (progress). */
  written: number;
  /** Files announced so far and their bytes (progress). */
  announcedFiles: number;
  announcedBytes: number;
  /**
   * Bytes of announced files that need no writing here (progress): sizes of unchanged
   * files, resumed prefixes, holes, and data dropped for a file that failed.
   */
  settledBytes: number;
  /** The sender's totals once its listing is complete (LISTED), for the ETA; null before. */
  listed: { files: number; bytes: number } | null;
  /** Files answered SKIP: DST already had them (want mode). */
  unchanged: number;
  /** Entries removed by --delete (dry run: that would be). */
  deleted: number;
  /** Files completed from the end of a partial kept by an earlier run. */
  resumed: number;
}

const UTIME_OMIT = 1073741822;
const TAG_OPEN = 1;
const TAG_LINK = 2;
const TAG_UNLINK = 5;
const ST_OPENING = 0;
const ST_OPEN = 1;
const ST_LINKING = 2;
const ST_CLOSING = 3;
const ST_DONE = 4;

/** Size classes of staging blocks, bytes. A DATA payload goes in the smallest that fits. */
const CLASSES = [4096, 16384, 65536, 262144, 1048576 + 64];
const SLAB = 4 * 1024 * 1024;

class Block {
  constructor(readonly mem: Pinned, readonly cls: number) {}
}

/**
 * Free staging blocks, name slots and control buffers of the whole process: a receiver
 * serving session after session (--keep-listening) reuses them instead of mapping more
 * every session (they come back only once no operation can touch them).
 */
const FREE_BLOCKS: Block[][] = CLASSES.map(() => []);
const FREE_SLOTS: NameSlot[] = [];
const FREE_CONTROL: Pinned[] = [];
let emptyPathZ: Pinned | undefined;

class BlockPool {
  private readonly free = FREE_BLOCKS;
  inUse = 0;
  allocate(n: number): Block {
    let c = 0;
    while (CLASSES[c] < n) c++;
    const list = this.free[c];
    let b = list.pop();
    if (b === undefined) {
      const size = CLASSES[c];
      if (size >= SLAB) b = new Block(pinned(size), c);
      else {
        const slab = pinned(SLAB);
        for (let at = size; at + size <= SLAB; at += size) {
          list.push(new Block({ addr: slab.addr + at, u8: slab.u8.subarray(at, at + size), size }, c));
        }
        b = new Block({ addr: slab.addr, u8: slab.u8.subarray(0, size), size }, c);
      }
    }
    this.inUse += CLASSES[c];
    return b;
  }
  release(b: Block): void {
    this.inUse -= CLASSES[b.cls];
    this.free[b.cls].push(b);
  }
}

/** Fixed-address C strings for the names an io_uring operation reads later. */
class NameSlot {
  /** name \0 at 0; temp name at 512; procfs path at 768. */
  constructor(readonly mem: Pinned) {}
  set(at: number, s: string): number {
    const u8 = this.mem.u8;
    const max = this.mem.size - at - 1;
    let i = 0;
    // ASCII (nearly every name) byte by byte: no encoder call, no view made per file.
    if (s.length <= max) {
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        u8[at + i] = c;
      }
    }
    if (i < s.length) i = UTF8.encodeInto(s, u8.subarray(at, at + max)).written ?? 0;
    u8[at + i] = 0;
    return this.mem.addr + at;
  }
}
const UTF8 = new TextEncoder();
const SLOT_NAME = 0;
const SLOT_TMP = 512;
const SLOT_PROC = 768;
const SLOT_BYTES = 1024;

class NamePool {
  private readonly free = FREE_SLOTS;
  get(): NameSlot {
    let s = this.free.pop();
    if (s === undefined) {
      const slab = pinned(256 * SLOT_BYTES);
      for (let at = SLOT_BYTES; at < slab.size; at += SLOT_BYTES) {
        this.free.push(new NameSlot({ addr: slab.addr + at, u8: slab.u8.subarray(at, at + SLOT_BYTES), size: SLOT_BYTES }));
      }
      s = new NameSlot({ addr: slab.addr, u8: slab.u8.subarray(0, SLOT_BYTES), size: SLOT_BYTES });
    }
    return s;
  }
  put(s: NameSlot): void {
    this.free.push(s);
  }
}

/** A file ENTRY in want mode, between its ENTRY and the answer (which may wait for a hash). */
interface Agreeing {
  id: number;
  rel: string;
  size: number;
  mode: number;
  mtimeNs: bigint;
  parent: { dir: DirHandle; name: string };
  /** Its partial name, when it is received under one (large files). */
  pname: string | undefined;
  /** Hard links to it that came while its answer waited for a hash. */
  links?: { rel: string; mtimeNs: bigint }[];
  /** The directory that was in its way has been removed (--delete). */
  cleared?: boolean;
}

/**
 * Local work that can take long (removing a huge directory, the --delete pass): done in
 * slices from the loop (Loop.work) so the connection stays answered, one chore at a time.
 */
interface Chore {
  /** Works until `deadline` (performance.now()); true when over. */
  step(deadline: number): boolean;
  /** After the last step. */
  finish(): void;
  /** The session ended first: let go of what it holds. */
  close(): void;
}

const WANT_FROM_0: Answer = Object.freeze({ kind: "want", offset: 0 });
const KEEPALIVE_FRAME = encodeMessage({ type: "keepalive" });

interface PendingLink {
  rel: string;
  mtimeNs: bigint;
}

/** A WRITE in flight (or waiting for its file's open). */
class WriteOp implements CompletionTarget {
  file!: DstFile;
  block!: Block;
  len = 0;
  off = 0;
  done = 0;
  constructor(private readonly engine: RecvEngine) {}
  onCompletion(res: number): void {
    this.engine.onWrite(this, res);
  }
}

class DstFile implements CompletionTarget {
  fd = -1;
  state = ST_OPENING;
  /** Next offset the stream must continue at. */
  next = 0;
  /** End of the last byte actually written (a trailing hole needs ftruncate). */
  dataEnd = 0;
  ended = false;
  aborted = false;
  failure: ReportFailure | undefined;
  writesInFlight = 0;
  waiting: WriteOp[] = [];
  links: PendingLink[] = [];
  tmpName: string | undefined;
  /** Named-temp mode: the temp file exists on disk and must be removed on failure. */
  tmpOnDisk = false;
  counted = false;
  /** Bytes written so far. */
  written = 0;
  /** Created under its final name inside a staged directory (no temporary, no link). */
  direct = false;
  /** direct: the (incomplete) file exists on disk and must be removed unless completed. */
  directOnDisk = false;
  /** Under its partial name now (tmpName is `.NAME.usync-partial`): kept for resuming if the session drops. */
  partial = false;
  /** Created as a partial (0600, so a later run can open it): the real mode is applied when complete. */
  modeAtEnd = false;
  /** The partial's path (the key in RecvEngine.partials) while it is under that name. */
  partialRel: string | undefined;
  /** The partial's inode: its name is used (rename, unlink, keep) only while it still refers to it. */
  pIno = -1;
  pDevMajor = -1;
  pDevMinor = -1;
  /** Its partial name stopped referring to it (replaced from outside): it lands from its fd. */
  nameLost = false;
  /** The WANT offset: the first DATA/HOLE starts here (resume) or at 0 (the sender restarts). */
  resumeFrom = 0;
  /** A DATA or HOLE frame for this file has arrived. */
  started = false;
  /** Sessions with data streams: the ranges arrived so far (frames come in any order, on any stream). */
  cov: Coverage | undefined;
  /** DATA frames of this file being read off a stream right now (claimed, not yet handed to a write). */
  receiving = 0;

  constructor(
    private readonly engine: RecvEngine,
    readonly id: number,
    readonly rel: string,
    readonly dir: DirHandle,
    readonly name: string,
    readonly size: number,
    readonly mode: number,
    readonly mtimeNs: bigint,
    readonly slot: NameSlot,
  ) {}

  onCompletion(res: number, _flags: number, tag: number): void {
    this.engine.onFileOp(this, res, tag);
  }
}

export type RecvState = "running" | "suspended" | "reported" | "done" | "failed";

/** Where the parser is inside the current frame. */
const P_HEADER = 0;
const P_SMALL = 1;
const P_DATA_FIELDS = 2;
const P_DATA_BYTES = 3;
const P_SKIP = 4;

export class RecvEngine implements ChannelSink {
  readonly stats: RecvStats = {
    files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, written: 0, announcedFiles: 0, announcedBytes: 0, settledBytes: 0, listed: null, unchanged: 0, deleted: 0, resumed: 0,
  };
  readonly failures: ReportFailure[] = [];
  state: RecvState = "running";
  error: Error | undefined;
  /** The sender announced a re-key: the next connection must CONTINUE this session. */
  rekeyAnnounced = false;
  /** A continuation connection must start with this CONTINUE token. */
  expectToken: Uint8Array | undefined;

  private channel: Channel | undefined;
  private readonly limits: ReceiverLimits;
  private readonly blocks = new BlockPool();
  private readonly names = new NamePool();
  private readonly writePool: WriteOp[] = [];
  private readonly files = new Map<number, DstFile>();
  /** Ids already used; for finished regular files, their final path in `paths` (for hard links), else NO_PATH. */
  private readonly ids = new IdTable();
  private readonly paths = new PathArena();
  private linkPathBytes = 0;
  /** Hard links waiting for their file to complete. */
  private pendingLinks = 0;
  private entries = 0;
  /** Files between ENTRY and FILE_END/FILE_ABORT on the wire. */
  private wireOpen = 0;
  /** Files ended on the wire, still being written or linked. */
  private finishing = 0;
  /** File ENTRYs whose answer waits for a hash on the pool (also counted in wireOpen). */
  private agreeing = 0;
  private readonly agreeingIds = new Map<number, Agreeing>();
  /** Answers whose hash finished while the session was suspended for a re-key. */
  private afterResume: (() => void)[] = [];
  /** io_uring operations of ours in flight (files, writes). */
  opsInFlight = 0;
  /** performance.now() of the last completed local operation (idle detection). */
  lastProgress = performance.now();
  private readonly dirMeta: { rel: string; mode: number; mtimeNs: bigint }[] = [];
  private rootMeta: { mode: number; mtimeNs: bigint } | undefined;
  private listEnded = false;
  /** LIST_END said some entries are missing from the listing: no --delete pass. */
  private listingIncomplete = false;
  private sawBytes = false;
  private sawData = false;
  private readonly session: string;
  private tmpCounter = 0;
  private useTmpfile = true;
  private linkMode: "empty-path" | "proc" = "empty-path";
  private readonly emptyPath: Pinned;
  private readonly times = new BigInt64Array(4);
  private push = true;
  /** The session may have data streams (HELLO flag STREAMS): file data in any order, tracked by coverage. */
  split = false;
  /** Data streams attached (JOIN verified or not yet), until they close. */
  readonly streams = new Set<DataStream>();
  /** Data streams that ever joined. */
  joined = 0;
  /** Whether connections are still in their handshake (one may be a data stream about to join). */
  handshaking: () => boolean = () => false;
  /** A verdict on files short of bytes with no data stream open is pending (checkStreamsEnded). */
  private starvedCheck = false;
  /** What the sender asked for (HELLO flags of the first connection). */
  private sync: SyncOptions = { checksum: false, ignoreTimes: false, delete: false, dryRun: false };
  private flags = -1;
  /** CHECKSUM mode: the file ENTRY whose CHECKSUM frame must come next. */
  private awaitingChecksum: FileEntry | undefined;
  /** --delete: every path the sender listed (as 64-bit hashes: a collision only keeps a file). */
  private seen: ListedPaths | undefined;
  /** Long local work, done in slices between completions (workSlice). */
  private readonly chores: Chore[] = [];
  /** Dry run: directories in the way of a listed file, already reported as deleted. */
  private dryReplaced: Set<string> | undefined;
  /** The --delete pass: started, and over. */
  private deletionStarted = false;
  private deletionDone = false;
  private readonly excludes: string[] = [];
  private readonly includes: string[] = [];
  private filter: Filter | undefined;
  private readonly st = new StatBuf();
  /** Paths of listed entries named like a partial (looksPartial): never used as one of ours this session. */
  private readonly claimed = new Set<string>();
  private claimedChars = 0;
  /** More than MAX_CLAIMED_CHARS of such paths: no partial names at all for the rest of the session. */
  private claimsFull = false;
  /** Files under their partial name now, by the partial's path. */
  private readonly partials = new Map<string, DstFile>();
  private hashBuf: Uint8Array | undefined;
  private ctlCur: Pinned | undefined;
  private ctlFill = 0;
  /** Answer sends on the current channel not completed yet (at most one). */
  private ctlInFlight = 0;
  private readonly ctlFree = FREE_CONTROL;
  private readonly tsBuf = new Uint8Array(this.times.buffer);

  // Parser state.
  private pstate = P_HEADER;
  private readonly hdr = new SplitHeader();
  private ftype = 0;
  private flen = 0;
  private readonly small = new Uint8Array(8 * 1024 + 64);
  private smallFill = 0;
  private readonly dataFields = new Uint8Array(DATA_FIELDS_LENGTH);
  private readonly dataFieldsView = new DataView(this.dataFields.buffer);
  private dataFieldsFill = 0;
  private dataLeft = 0;
  private dataFile: DstFile | undefined;
  private dataOp: WriteOp | undefined;
  private dataOpFill = 0;

  constructor(private readonly loop: Loop, private readonly dest: Destination, limits: Partial<ReceiverLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.useTmpfile = this.limits.tmpfile;
    this.session = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0")).join("");
    // One "" for the whole process (zeroed memory: already NUL-terminated).
    this.emptyPath = emptyPathZ ??= pinned(16);
  }

  /**
   * Receives on `channel`: the first connection, or (with `token`) a continuation after a
   * re-key, whose first frame must be CONTINUE carrying that token. `flags`: the sender's
   * HELLO flags. With PUSH the sender streams data without waiting; otherwise (want
   * mode) each file ENTRY is answered with WANT or SKIP, and CHECKSUM, IGNORE_TIMES,
   * DELETE and DRY_RUN say how (a continuation must ask for the same as the first).
   */
  attach(channel: Channel, token: Uint8Array | undefined, flags: number): void {
    this.channel = channel;
    this.state = "running";
    this.rekeyAnnounced = false;
    this.expectToken = token;
    this.ctlCur = undefined;
    this.ctlFill = 0;
    this.ctlInFlight = 0;
    const mine = flags & ~FLAG_CONTINUATION;
    try {
      if (this.flags >= 0 && mine !== this.flags) throw new ProtocolError("options", "a continuation connection asked for other options than its session");
      const o = syncOptionsOf(mine);
      this.flags = mine;
      this.push = o.push;
      this.split = o.streams;
      this.sync = { checksum: o.checksum, ignoreTimes: o.ignoreTimes, delete: o.delete, dryRun: o.dryRun };
      if (o.delete) this.seen ??= new ListedPaths();
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    channel.startReceive(this);
    for (const answer of this.afterResume.splice(0)) answer();
  }

  /** Dry run: nothing in DST may change. */
  get dryRun(): boolean {
    return this.sync.dryRun;
  }

  /** Queues a small frame to the sender (WANT); sent at the end of the current chunk. */
  private queueControl(frame: Uint8Array): void {
    const at = this.controlRoom(frame.length);
    (this.ctlCur as Pinned).u8.set(frame, at);
    this.controlWritten(frame.length);
  }

  /** WANT for `id` from offset 0 (every new file), written straight into the control buffer. */
  private queueWantAll(id: number): void {
    // type, length 13, id, offset 0 (8 bytes), no prefix hash (0): docs/PROTOCOL.md, WANT.
    this.queueIdFrame(MSG_WANT, WANT_ALL_FRAME, id);
  }

  /** SKIP for `id`, written straight into the control buffer (one per unchanged file of a re-run). */
  private queueSkip(id: number): void {
    this.queueIdFrame(MSG_SKIP, SKIP_FRAME, id);
  }

  /** A frame of `size` bytes whose payload is `id` then zeros, built in place (no allocation per file). */
  private queueIdFrame(type: number, size: number, id: number): void {
    const at = this.controlRoom(size);
    const u8 = (this.ctlCur as Pinned).u8;
    u8.fill(0, at, at + size);
    u8[at] = type;
    u8[at + 4] = size - FRAME_HEADER_LENGTH;
    u8[at + 5] = id >>> 24;
    u8[at + 6] = (id >>> 16) & 0xff;
    u8[at + 7] = (id >>> 8) & 0xff;
    u8[at + 8] = id & 0xff;
    this.controlWritten(size);
  }

  /** Where `n` more bytes of answers go in the control buffer (flushing a full one first). */
  private controlRoom(n: number): number {
    if (this.ctlCur !== undefined && this.ctlFill + n > this.ctlCur.size) this.flushControl();
    if (this.ctlCur === undefined) {
      this.ctlCur = this.ctlFree.pop() ?? pinned(64 * 1024);
      this.ctlFill = 0;
    }
    return this.ctlFill;
  }

  /** `n` bytes were written at controlRoom's offset; enough queued answers go out now. */
  private controlWritten(n: number): void {
    this.ctlFill += n;
    if (this.ctlFill >= CONTROL_FLUSH_BYTES) this.sendAnswers();
  }

  /** Queued answers go now unless an answer send is in flight (its completion sends them). */
  private sendAnswers(): void {
    if (this.ctlInFlight > 0 || this.ctlFill === 0) return;
    this.flushControl();
    this.loop.ring.submitNow();
  }

  /** Hands the control buffer to the channel, behind whatever it is sending. */
  private flushControl(): void {
    const buf = this.ctlCur;
    const ch = this.channel;
    if (buf === undefined || ch === undefined) return;
    this.ctlCur = undefined;
    if (this.ctlFill === 0 || ch.sendFailure !== undefined) {
      this.ctlFree.push(buf);
      return;
    }
    this.ctlInFlight++;
    ch.send(buf.u8, buf.addr, this.ctlFill, false, () => {
      this.ctlFree.push(buf);
      if (this.channel !== ch) return;
      this.ctlInFlight--;
      if (this.state === "running") this.sendAnswers();
    });
    this.ctlFill = 0;
  }

  /** Nothing of ours is in flight: fds and buffers may be released. */
  get quiescent(): boolean {
    return this.opsInFlight === 0;
  }

  // ---------------------------------------------------------------------------------
  // ChannelSink

  onData(chunk: Uint8Array): number {
    if (!this.sawBytes) {
      this.sawBytes = true;
      trace("first stream bytes");
    }
    if (this.state !== "running") {
      if (this.state === "failed" || this.state === "done") return chunk.length;
      if (this.state === "reported") {
        this.fail(new ProtocolError("frame", "the sender sent data after the end of the transfer"));
        return chunk.length;
      }
      this.fail(new ProtocolError("frame", "the sender sent data after announcing a re-key"));
      return chunk.length;
    }
    try {
      const n = this.parse(chunk);
      if (this.state === "running") this.sendAnswers();
      return n;
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return chunk.length;
    }
  }

  onClose(clean: boolean): void {
    if (this.state === "failed" || this.state === "done") return;
    if (this.state === "reported") {
      this.state = "done";
      return;
    }
    if (this.rekeyAnnounced && this.pstate === P_HEADER && this.hdr.fill === 0) {
      // Answers still held back (an answer send was in flight) go before the old connection closes.
      this.flushControl();
      this.state = "suspended";
      return;
    }
    this.fail(new ProtocolError("peer", clean
      ? "the sender closed the connection before the end of the transfer"
      : "the connection was closed before the end of the transfer"));
  }

  onError(e: Error): void {
    if (this.state === "reported") {
      // The report is out; how the peer goes away no longer matters.
      this.state = "done";
      return;
    }
    this.fail(e);
  }

  // ---------------------------------------------------------------------------------
  // Parsing

  /** Stop reading the peer while local I/O catches up (resumed from completions). */
  private blocked(): boolean {
    return this.blocks.inUse > this.limits.maxBufferedBytes || this.finishing > this.limits.maxFinishing;
  }

  private parse(chunk: Uint8Array): number {
    let p = 0;
    const end = chunk.length;
    while (p < end && this.state === "running") {
      switch (this.pstate) {
        case P_HEADER: {
          if (this.hdr.fill === 0 && this.blocked()) return p;
          if (this.hdr.fill === 0 && end - p >= FRAME_HEADER_LENGTH) {
            // The whole header in this chunk (nearly always): read in place.
            this.ftype = chunk[p];
            this.flen = ((chunk[p + 1] << 24) | (chunk[p + 2] << 16) | (chunk[p + 3] << 8) | chunk[p + 4]) >>> 0;
            p += FRAME_HEADER_LENGTH;
          } else {
            p += this.hdr.take(chunk, p, end);
            if (!this.hdr.complete()) break;
            this.ftype = this.hdr.type;
            this.flen = this.hdr.length;
          }
          // Type, direction and length are checked before a single payload byte is kept.
          checkFrameHeader(this.ftype, this.flen, "to-receiver");
          if (this.ftype === MSG_DATA) {
            this.pstate = P_DATA_FIELDS;
            this.dataFieldsFill = 0;
          } else {
            this.smallFill = 0;
            this.pstate = P_SMALL;
            if (this.flen === 0) this.finishSmall(this.small.subarray(0, 0));
          }
          break;
        }
        case P_SMALL: {
          if (this.smallFill === 0 && end - p >= this.flen) {
            // The whole frame in this chunk: decoded in place (nothing keeps a view of it).
            p += this.flen;
            this.finishSmall(chunk.subarray(p - this.flen, p));
            break;
          }
          const take = Math.min(this.flen - this.smallFill, end - p);
          this.small.set(chunk.subarray(p, p + take), this.smallFill);
          this.smallFill += take;
          p += take;
          if (this.smallFill === this.flen) this.finishSmall(this.small.subarray(0, this.flen));
          break;
        }
        case P_DATA_FIELDS: {
          if (this.dataFieldsFill === 0 && end - p >= DATA_FIELDS_LENGTH) {
            const id = ((chunk[p] << 24) | (chunk[p + 1] << 16) | (chunk[p + 2] << 8) | chunk[p + 3]) >>> 0;
            const hi = ((chunk[p + 4] << 24) | (chunk[p + 5] << 16) | (chunk[p + 6] << 8) | chunk[p + 7]) >>> 0;
            const lo = ((chunk[p + 8] << 24) | (chunk[p + 9] << 16) | (chunk[p + 10] << 8) | chunk[p + 11]) >>> 0;
            p += DATA_FIELDS_LENGTH;
            this.startData(id, hi, lo);
            break;
          }
          const take = Math.min(DATA_FIELDS_LENGTH - this.dataFieldsFill, end - p);
          this.dataFields.set(chunk.subarray(p, p + take), this.dataFieldsFill);
          this.dataFieldsFill += take;
          p += take;
          if (this.dataFieldsFill === DATA_FIELDS_LENGTH) {
            const v = this.dataFieldsView;
            this.startData(v.getUint32(0), v.getUint32(4), v.getUint32(8));
          }
          break;
        }
        case P_DATA_BYTES: {
          const take = Math.min(this.dataLeft, end - p);
          const op = this.dataOp as WriteOp;
          op.block.mem.u8.set(chunk.subarray(p, p + take), this.dataOpFill);
          this.dataOpFill += take;
          this.dataLeft -= take;
          p += take;
          if (this.dataLeft === 0) this.endData();
          break;
        }
        case P_SKIP: {
          const take = Math.min(this.dataLeft, end - p);
          this.dataLeft -= take;
          p += take;
          if (this.dataLeft === 0) this.pstate = P_HEADER;
          break;
        }
      }
    }
    return this.state === "running" || this.state === "suspended" ? p : end;
  }

  private finishSmall(payload: Uint8Array): void {
    this.pstate = P_HEADER;
    if (this.rekeyAnnounced) throw new ProtocolError("frame", "the sender sent frames after REKEY");
    const msg = decodeSenderMessage({ type: this.ftype, payload });
    if (this.awaitingChecksum !== undefined && msg.type !== "checksum") {
      throw new ProtocolError("frame", `${msg.type.toUpperCase()} where the CHECKSUM of ${displaySafe(this.awaitingChecksum.path)} must come`);
    }
    if (this.expectToken !== undefined) {
      if (msg.type !== "continue") throw new ProtocolError("frame", `a continuation connection must start with CONTINUE, not ${msg.type.toUpperCase()}`);
      if (!timingSafeEqual(msg.token, this.expectToken)) throw new ProtocolError("auth", "CONTINUE token does not match the suspended session");
      this.expectToken = undefined;
      return;
    }
    this.handle(msg);
  }

  /** A DATA frame's id and offset (its high and low 32 bits) are in: checked, then its bytes go to a write. */
  private startData(id: number, offHi: number, offLo: number): void {
    if (this.expectToken !== undefined) throw new ProtocolError("frame", "a continuation connection must start with CONTINUE, not DATA");
    if (this.awaitingChecksum !== undefined) throw new ProtocolError("frame", `DATA where the CHECKSUM of ${displaySafe(this.awaitingChecksum.path)} must come`);
    if (this.rekeyAnnounced) throw new ProtocolError("frame", "the sender sent frames after REKEY");
    const len = this.flen - DATA_FIELDS_LENGTH;
    // Refused when offset + len > 2^62 (2^62 = 2^30 in the high word), with no BigInt per
    // frame: the difference is exact near the limit and far from 0 elsewhere.
    if ((offHi - 0x40000000) * 4294967296 + offLo + len > 0) {
      throw new ProtocolError("limit", `DATA offset ${(BigInt(offHi) << 32n) | BigInt(offLo)} past 2^62`);
    }
    const op = this.beginData(id, offHi * 4294967296 + offLo, len);
    if (len === 0) {
      this.pstate = P_HEADER;
      return;
    }
    this.dataLeft = len;
    if (op === undefined) {
      this.pstate = P_SKIP;
      return;
    }
    this.dataOp = op;
    this.dataOpFill = 0;
    this.dataFile = op.file;
    this.pstate = P_DATA_BYTES;
  }

  /**
   * A DATA header (control connection or a data stream): checks it against the file's
   * stream or coverage and returns the write its bytes go to, or undefined to skip them.
   */
  beginData(id: number, offset: number, len: number): WriteOp | undefined {
    const f = this.streamFile(id, "DATA", true);
    this.advance(f, offset, len, "DATA");
    this.sawData = true;
    if (len === 0) {
      if (f.cov !== undefined) this.progressFile(f);
      return undefined;
    }
    if (f.failure !== undefined || f.aborted) return undefined;
    const op = this.writePool.pop() ?? new WriteOp(this);
    op.file = f;
    op.block = this.blocks.allocate(len);
    op.len = len;
    op.off = offset;
    op.done = 0;
    if (f.cov !== undefined) f.receiving++;
    return op;
  }

  /** A HOLE (control connection or a data stream). */
  hole(id: number, offset: number, len: number): void {
    const f = this.streamFile(id, "HOLE", true);
    this.advance(f, offset, len, "HOLE");
    this.stats.settledBytes += len;
    if (f.cov !== undefined) this.progressFile(f);
  }

  private endData(): void {
    this.pstate = P_HEADER;
    const op = this.dataOp as WriteOp;
    this.dataOp = undefined;
    this.dataFile = undefined;
    this.commitData(op);
  }

  /** A DATA frame's bytes are all in memory: write them. */
  commitData(op: WriteOp): void {
    const f = op.file;
    if (f.cov !== undefined) f.receiving--;
    f.dataEnd = Math.max(f.dataEnd, op.off + op.len);
    f.writesInFlight++;
    if (f.state === ST_OPENING) f.waiting.push(op);
    else if (f.failure !== undefined) this.dropWrite(op);
    // Through the ring even for small files, although ext4 makes io_uring hand each
    // buffered WRITE to a worker thread: measured against pwrite here (docs/DESIGN.md), that
    // costs ~10% more receiver CPU but the workers run beside this thread, which is the
    // bottleneck on many small files (small100k finished ~12% sooner).
    else this.submitWrite(op);
  }

  /** The file a DATA/HOLE/FILE_END refers to: announced, and not yet ended. */
  private streamFile(id: number, what: string, data = false): DstFile {
    const f = this.files.get(id);
    // With data streams a file's FILE_END (control connection) may come before its last pieces.
    if (f === undefined || (f.ended && !(data && f.cov !== undefined))) {
      throw new ProtocolError("frame", `${what} for ${this.ids.has(id) ? "a file that already ended" : `unknown id ${id}`}`);
    }
    return f;
  }

  /** DATA and HOLE must continue exactly where the file's stream is, within its size. */
  private advance(f: DstFile, offset: number, len: number, what: string): void {
    const cov = f.cov;
    if (cov !== undefined) {
      // Data streams: any order, but every byte exactly once, within the size.
      if (!f.started) {
        f.started = true;
        if (f.resumeFrom > 0 && offset === 0) {
          // The sender's prefix differs from ours: it restarts from 0 (docs/PROTOCOL.md 8.4, 8.8).
          this.stats.settledBytes -= f.resumeFrom;
          f.resumeFrom = 0;
          f.dataEnd = 0;
          cov.clear();
          if (f.fd >= 0 && libc.ftruncate(f.fd, 0) !== 0) f.failure ??= recvFailure(new SysError("ftruncate", errno(), f.rel), f.rel);
        }
      }
      cov.add(offset, len, f.rel);
      f.next = cov.prefix;
      return;
    }
    if (!f.started) {
      f.started = true;
      if (f.resumeFrom > 0 && offset === 0) {
        // The sender's prefix differs from ours: it restarts from 0 (docs/PROTOCOL.md 8.4).
        this.stats.settledBytes -= f.resumeFrom;
        f.resumeFrom = 0;
        f.next = 0;
        f.dataEnd = 0;
        if (f.fd >= 0 && libc.ftruncate(f.fd, 0) !== 0) f.failure ??= recvFailure(new SysError("ftruncate", errno(), f.rel), f.rel);
      } else if (offset !== f.next) {
        throw new ProtocolError("frame", `${what} for ${displaySafe(f.rel)} at offset ${offset}, expected ${f.next} (where the receiver's WANT asked for it${f.next > 0 ? ", or 0 to restart" : ""})`);
      }
    }
    if (offset !== f.next) {
      throw new ProtocolError("frame", `${what} for ${displaySafe(f.rel)} at offset ${offset}, expected ${f.next} (data must arrive in order)`);
    }
    if (offset + len > f.size) {
      throw new ProtocolError("frame", `the sender sent more bytes for ${displaySafe(f.rel)} than the ${f.size} it announced`);
    }
    f.next = offset + len;
  }

  private handle(m: SenderMessage): void {
    switch (m.type) {
      case "entry":
        return this.onEntry(m);
      case "hole":
        return this.hole(m.id, Number(m.offset), Number(m.length));
      case "file-end": {
        const f = this.streamFile(m.id, "FILE_END");
        if (f.cov === undefined && f.next !== f.size) {
          throw new ProtocolError("frame", `the sender sent ${f.next} bytes for ${displaySafe(f.rel)}, fewer than the ${f.size} it announced`);
        }
        return this.endFile(f, false);
      }
      case "file-abort":
        return this.endFile(this.streamFile(m.id, "FILE_ABORT"), true);
      case "list-end":
        if (this.wireOpen > 0) {
          const open = [...this.files.values()].find((f) => !f.ended);
          throw new ProtocolError("frame", `LIST_END while ${open !== undefined ? displaySafe(open.rel) : "a file"} has not ended`);
        }
        this.listEnded = true;
        this.listingIncomplete = m.incomplete === true;
        trace("LIST_END parsed");
        this.checkStreamsEnded();
        this.maybeFinish();
        return;
      case "listed":
        return this.onListed(m.files, m.bytes);
      case "root":
        if (this.entries > 0 || this.rootMeta !== undefined || this.stats.listed !== null) throw new ProtocolError("frame", "ROOT must be the first frame of a transfer");
        this.rootMeta = { mode: m.mode, mtimeNs: m.mtimeNs };
        return;
      case "rekey":
        this.rekeyAnnounced = true;
        return;
      case "continue":
        throw new ProtocolError("frame", "CONTINUE is only valid as the first frame of a continuation connection");
      case "join":
        throw new ProtocolError("frame", "JOIN is only valid as the first frame of a data stream");
      case "checksum": {
        const e = this.awaitingChecksum;
        if (e === undefined) throw new ProtocolError("frame", this.sync.checksum ? "CHECKSUM that does not follow a file ENTRY" : "CHECKSUM without the HELLO flag CHECKSUM");
        if (m.id !== e.id) throw new ProtocolError("frame", `CHECKSUM for id ${m.id} after the ENTRY of id ${e.id}`);
        this.awaitingChecksum = undefined;
        return this.onFileEntry(e.id, e.path, Number(e.size), e.mode, e.mtimeNs, m.hash);
      }
      case "filter":
        if (!this.sync.delete) throw new ProtocolError("frame", "FILTER without the HELLO flag DELETE");
        if (this.entries > 0 || this.listEnded || this.stats.listed !== null) throw new ProtocolError("frame", "FILTER after the first ENTRY");
        if (this.excludes.length + this.includes.length >= MAX_FILTERS) throw new ProtocolError("limit", `more than ${MAX_FILTERS} FILTER frames`);
        (m.rule === "exclude" ? this.excludes : this.includes).push(m.pattern);
        try {
          this.filter = new Filter(this.excludes, this.includes);
        } catch (e) {
          throw new ProtocolError("frame", `FILTER pattern refused: ${displaySafe((e as Error).message)}`);
        }
        return;
      case "keepalive":
        // The sender is hashing (--checksum); the bytes alone reset our idle timer.
        return;
      case "error":
        throw new ProtocolError("peer", `the sender reported an error: ${displaySafe(m.message)}`);
      case "data":
        throw new ProtocolError("state", "DATA outside the streaming parser");
    }
  }

  /**
   * LISTED: the sender's listing is complete. Only shown as progress, but still peer input:
   * once, before LIST_END, and exactly the file ENTRYs counted here (docs/PROTOCOL.md 8.3g).
   */
  private onListed(files: number, bytes: number): void {
    if (this.stats.listed !== null) throw new ProtocolError("frame", "LISTED twice");
    if (this.listEnded) throw new ProtocolError("frame", "LISTED after LIST_END");
    if (files !== this.stats.announcedFiles || bytes !== this.stats.announcedBytes) {
      throw new ProtocolError("frame", `LISTED says ${files} files of ${bytes} bytes, but ${this.stats.announcedFiles} files of ${this.stats.announcedBytes} bytes were announced`);
    }
    this.stats.listed = { files, bytes };
  }

  private onEntry(m: EntryMessage): void {
    if (this.listEnded) throw new ProtocolError("frame", "ENTRY after LIST_END");
    if (this.stats.listed !== null) throw new ProtocolError("frame", "ENTRY after LISTED (the sender said its listing was complete)");
    if (++this.entries > this.limits.maxEntries) throw new ProtocolError("limit", `more than ${this.limits.maxEntries} entries in one session`);
    if (this.ids.has(m.id) || this.files.has(m.id)) throw new ProtocolError("frame", `ENTRY id ${m.id} used twice`);
    this.seen?.add(m.path);
    if (m.path.endsWith(PARTIAL_SUFFIX)) this.claimPartialName(m.path);
    // Taken now, in ENTRY order (the table stays dense for a sender counting up); the path
    // is set when the file is done.
    this.ids.set(m.id, NO_PATH);
    switch (m.kind) {
      case "file":
        if (this.sync.checksum) {
          // Answered when its CHECKSUM (the next frame) has arrived.
          this.awaitingChecksum = m;
          return;
        }
        return this.onFileEntry(m.id, m.path, Number(m.size), m.mode, m.mtimeNs);
      case "dir":
        this.ids.set(m.id, NO_PATH);
        return this.onDirEntry(m.path, m.mode, m.mtimeNs);
      case "symlink":
        this.ids.set(m.id, NO_PATH);
        return this.onSymlinkEntry(m.path, m.linkTarget, m.mtimeNs);
      case "hardlink":
        this.ids.set(m.id, NO_PATH);
        return this.onHardlinkEntry(m.path, m.linkId, m.mtimeNs);
    }
  }

  // ---------------------------------------------------------------------------------
  // Regular files

  private onFileEntry(id: number, rel: string, size: number, mode: number, mtimeNs: bigint, hash?: Uint8Array): void {
    if (this.wireOpen >= this.limits.maxOpenFiles) {
      throw new ProtocolError("limit", `more than ${this.limits.maxOpenFiles} files announced and not ended at once`);
    }
    this.stats.announcedFiles++;
    this.stats.announcedBytes += size;
    let parent: { dir: DirHandle; name: string };
    try {
      parent = this.dest.parent(rel);
    } catch (e) {
      if (this.sync.dryRun) {
        // Its directory is not there (yet): it would be sent.
        this.remember(id, rel);
        this.queueWantAll(id);
        return;
      }
      // The file's bytes still have to be consumed: a placeholder that drops them.
      const f = new DstFile(this, id, rel, this.dest.rootHandle, "", size, mode, mtimeNs, this.names.get());
      this.dest.rootHandle.refs++;
      f.failure = recvFailure(e, rel);
      f.state = ST_OPEN;
      if (this.split) f.cov = new Coverage(size);
      this.files.set(id, f);
      this.wireOpen++;
      if (!this.push) this.queueWantAll(id);
      return;
    }
    // Large files in want mode go under their partial name, unless the listing named a file of its own there.
    const pname = !this.push && size >= RESUME_MIN ? this.partialNameFor(rel, parent.name) : undefined;
    const p: Agreeing = { id, rel, size, mode, mtimeNs, parent, pname };
    if (this.push) return this.createFile(p, 0);
    // Want mode: what does DST hold? (A new, staged directory holds nothing.)
    const answer = parent.dir.staged
      ? WANT_FROM_0
      : agreeFileSteps(parent.dir.fd, parent.name, { size, mode, mtimeNs, hash }, this.sync, this.st,
        { buf: (this.hashBuf ??= new Uint8Array(1024 * 1024)), inlineMax: INLINE_HASH_MAX }, pname !== undefined);
    if (answer.kind === "hash") {
      // Counted as open on the wire meanwhile (the limit on files announced at once holds).
      this.wireOpen++;
      this.agreeing++;
      this.agreeingIds.set(id, p);
      this.awaitHash(p, answer);
      return;
    }
    this.onAnswer(p, answer);
  }

  /**
   * A hash the answer for `p` waits for runs on the hash pool (hash-pool.ts): this thread
   * goes on receiving and writing meanwhile, and tells the sender it is still here.
   */
  private awaitHash(p: Agreeing, step: HashStep): void {
    hashPoolFor(this.loop.ring).submit(step.fd, step.length, (r) => {
      const answer = (): void => {
        if (this.state !== "running") return;
        this.lastProgress = performance.now();
        try {
          const next = step.then(r instanceof Uint8Array ? r : undefined);
          if (next.kind === "hash") return this.awaitHash(p, next);
          this.wireOpen--;
          this.agreeing--;
          this.agreeingIds.delete(p.id);
          this.onAnswer(p, next);
          if (!this.agreeingIds.has(p.id)) this.linksAfterAnswer(p);
          this.sendAnswers();
        } catch (e) {
          this.fail(e instanceof Error ? e : new Error(String(e)));
        }
      };
      // Between the connections of a re-key: answered on the continuation.
      if (this.state === "suspended") this.afterResume.push(answer);
      else answer();
    });
  }

  /**
   * The answer for `p` waits until the directory in its way is removed (a chore): counted
   * as open on the wire and agreeing meanwhile, as while a hash runs.
   */
  private awaitRemoval(p: Agreeing, answer: Answer): void {
    this.wireOpen++;
    this.agreeing++;
    this.agreeingIds.set(p.id, p);
    const { rel, parent } = p;
    let removed = true;
    const remover = new TreeRemover(parent.dir.fd, cstr(parent.name), rel, (syscall, err, path) => {
      removed = false;
      this.failures.push(recvFailure(new SysError(syscall, err < 0 ? -err : err, path), path));
    });
    this.addChore({
      step: (deadline) => remover.step(deadline),
      close: () => remover.close(),
      finish: () => {
        const go = (): void => {
          if (this.state !== "running") return;
          this.wireOpen--;
          this.agreeing--;
          this.agreeingIds.delete(p.id);
          if (removed) {
            this.dest.forget(rel);
            this.stats.deleted++;
            this.queueControl(encodeMessage({ type: "deleted", path: rel }));
          }
          p.cleared = true;
          this.onAnswer(p, answer);
          this.linksAfterAnswer(p);
          this.sendAnswers();
        };
        // Between the connections of a re-key: answered on the continuation.
        if (this.state === "suspended") this.afterResume.push(go);
        else go();
      },
    });
  }

  /** Hard links that came while `p` waited: made now (it was there), or when it is complete. */
  private linksAfterAnswer(p: Agreeing): void {
    if (p.links === undefined) return;
    const f = this.files.get(p.id);
    if (f !== undefined) {
      f.links.push(...p.links);
      return;
    }
    const h = this.ids.get(p.id) ?? NO_PATH;
    for (const l of p.links) {
      this.pendingLinks--;
      this.makeHardlink(l.rel, h < 0 ? null : this.paths.get(h), l.mtimeNs);
    }
  }

  /** Busy with work of our own the sender waits for: hashes for answers, the --delete pass. */
  get busyLocally(): boolean {
    return this.agreeing > 0 || this.chores.length > 0;
  }

  /** KEEPALIVE to the sender while we work and say nothing else (its idle timer must not fire). */
  keepalive(now: number, intervalMs: number): void {
    const ch = this.channel;
    if (!this.busyLocally || this.state !== "running" || ch === undefined || !ch.sendIdle || now - ch.lastSendProgress < intervalMs) return;
    this.queueControl(KEEPALIVE_FRAME);
    this.sendAnswers();
  }

  /** Want mode: the answer for a file ENTRY is known; it goes to the sender and the file is set up. */
  private onAnswer(p: Agreeing, answer: Answer): void {
    const { id, rel, parent } = p;
    if (answer.kind === "skip") {
      if (!this.sync.dryRun && (answer.modeDiffers || answer.mtimeDiffers)) {
        const f = applySkipMeta(parent.dir.fd, parent.name, answer.modeDiffers ? p.mode : undefined, answer.mtimeDiffers ? (fd) => this.setTimes(fd, null, p.mtimeNs, false) : undefined);
        if (f !== null) this.failures.push(recvFailure(new SysError(f.syscall, f.errno, rel), rel));
      }
      this.dest.release(parent.dir);
      this.stats.unchanged++;
      this.stats.settledBytes += p.size;
      this.remember(id, rel);
      this.queueSkip(id);
      return;
    }
    if (this.sync.dryRun) {
      if (answer.dirInTheWay === true && this.sync.delete) {
        // What the real run would remove first; the delete pass must not report its contents too.
        this.stats.deleted++;
        this.queueControl(encodeMessage({ type: "deleted", path: rel }));
        (this.dryReplaced ??= new Set()).add(rel);
      }
      this.dest.release(parent.dir);
      this.remember(id, rel);
      this.queueWantAll(id);
      return;
    }
    const offset = answer.offset;
    if (answer.dirInTheWay === true && this.sync.delete && !p.cleared) {
      // DST has a directory where the source has this file: --delete replaces it. The
      // directory may be huge: it goes as a chore, and the answer waits for it.
      this.awaitRemoval(p, answer);
      return;
    }
    if (offset === 0 && answer.prefixHash === undefined) this.queueWantAll(id);
    else this.queueControl(encodeMessage({ type: "want", id, offset: BigInt(offset), prefixHash: answer.prefixHash }));
    this.createFile(p, offset);
  }

  /** The file's state, and its open through the ring; data may come from `offset`. */
  private createFile(p: Agreeing, offset: number): void {
    const { id, rel, parent, pname, size } = p;
    const f = new DstFile(this, id, rel, parent.dir, parent.name, size, p.mode, p.mtimeNs, this.names.get());
    if (pname !== undefined) {
      // Large: received under its partial name, renamed when complete; kept if the session drops.
      f.partial = true;
      f.modeAtEnd = true;
      f.tmpName = pname;
      f.partialRel = siblingPath(rel, pname);
      this.partials.set(f.partialRel, f);
      f.resumeFrom = offset;
      this.stats.settledBytes += offset;
      f.next = offset;
      f.dataEnd = offset;
    } else f.direct = parent.dir.staged;
    if (this.split) {
      f.cov = new Coverage(size);
      if (offset > 0) f.cov.add(0, offset, rel);
    }
    this.files.set(id, f);
    this.wireOpen++;
    f.slot.set(SLOT_NAME, parent.name);
    this.submitOpen(f);
  }

  /**
   * Creates the file through the ring (OPENAT). io_uring always hands O_CREAT and O_TMPFILE
   * opens to its io-wq worker, and the session allows one (runRecv): the creating (~20 us
   * of ext4 work per file here) then runs on the other core while this thread parses and
   * lands other files. With several workers they spun on the same directory's lock, and
   * inline creating made this thread the bottleneck on small files (100,000 x 4 KiB: 3.2-3.5
   * s inline, 2.8-3.1 s through the ring with one worker; docs/DESIGN.md). Partials and
   * named temporaries (a file system without O_TMPFILE) are opened inline.
   */
  private submitOpen(f: DstFile): void {
    if (f.partial) {
      const fd = this.openPartial(f);
      if (fd >= 0) {
        f.tmpOnDisk = true;
        if (fstatx(fd, this.st) === 0) {
          f.pIno = this.st.ino;
          f.pDevMajor = this.st.devMajor;
          f.pDevMinor = this.st.devMinor;
        }
      }
      this.opsInFlight++;
      this.onFileOp(f, fd, TAG_OPEN);
      return;
    }
    if (f.direct || this.useTmpfile) {
      const ring = this.loop.ring;
      const sqe = ring.getSqe();
      if (f.direct) {
        // Inside a staged (not yet visible) directory: the final name at once; O_EXCL never
        // opens anything that exists, O_NOFOLLOW never a symlink.
        prepOpenat(ring, sqe, f.dir.fd, f.slot.mem.addr + SLOT_NAME, O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC | O.NOFOLLOW, f.mode);
      } else {
        // An unnamed file in the target directory: nothing to clean up if we die.
        prepOpenat(ring, sqe, f.dir.fd, f.slot.set(SLOT_TMP, "."), O.TMPFILE | O.WRONLY | O.CLOEXEC, f.mode);
      }
      ring.setUserData(sqe, ring.track(f, TAG_OPEN));
      this.opsInFlight++;
      return;
    }
    f.tmpName = this.tempName();
    const fd = libc.openat(f.dir.fd, cstr(f.tmpName), O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC | O.NOFOLLOW, f.mode);
    this.opsInFlight++;
    this.onFileOp(f, fd < 0 ? -errno() : fd, TAG_OPEN);
  }

  /**
   * Opens a large file's partial: the one to resume (exactly the WANT offset long, a
   * regular file with one link, never a symlink), or a new one (an old one is removed).
   * Created 0600, so a resume can open it; the real mode is applied when complete.
   */
  private openPartial(f: DstFile): number {
    const name = cstr(f.tmpName as string);
    if (f.resumeFrom > 0) {
      const fd = libc.openat(f.dir.fd, name, O.WRONLY | O.CLOEXEC | O.NOFOLLOW | O.NONBLOCK, 0);
      if (fd < 0) return -errno();
      const st = this.st;
      if (fstatxOk(fd, st) && st.nlink === 1 && st.size >= f.resumeFrom && libc.ftruncate(fd, f.resumeFrom) === 0) return fd;
      libc.close(fd);
      return -E.EINVAL;
    }
    if (libc.unlinkat(f.dir.fd, name, 0) !== 0 && errno() !== E.ENOENT) return -errno();
    const fd = libc.openat(f.dir.fd, name, O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC | O.NOFOLLOW, 0o600);
    return fd < 0 ? -errno() : fd;
  }

  /**
   * `name`'s partial name, or undefined: too long, or the listing named an entry of its
   * own there (or more such entries than are remembered): that name is the sender's.
   */
  private partialNameFor(rel: string, name: string): string | undefined {
    const p = partialName(name);
    if (p === undefined || this.claimsFull) return undefined;
    return this.claimed.has(siblingPath(rel, p)) ? undefined : p;
  }

  /**
   * A listed entry's path ends like a partial name: if it is one, no file of this session
   * uses it as its partial from now on, and a file under it now moves aside first (the
   * entry will land there, and the file must not be renamed, kept or removed by that name).
   */
  private claimPartialName(rel: string): void {
    if (!looksPartial(rel.slice(rel.lastIndexOf("/") + 1))) return;
    if (this.claimedChars + rel.length <= MAX_CLAIMED_CHARS) {
      this.claimed.add(rel);
      this.claimedChars += rel.length;
    } else this.claimsFull = true;
    const f = this.partials.get(rel);
    if (f !== undefined) this.moveAside(f);
  }

  /**
   * `f`, under its partial name, goes on under an ordinary temporary name (renamed only
   * while the partial name is still its inode), no longer kept for resuming. If the name
   * is not its inode any more, it is never used again: `f` lands from its fd.
   */
  private moveAside(f: DstFile): void {
    this.unlistPartial(f);
    f.partial = false;
    if (!f.tmpOnDisk) return;
    const tmp = this.tempName();
    if (this.ownsPartialName(f) && libc.renameat2(f.dir.fd, cstr(f.tmpName as string), f.dir.fd, cstr(tmp), RENAME.NOREPLACE) === 0) {
      f.tmpName = tmp;
      return;
    }
    f.tmpOnDisk = false;
    f.nameLost = true;
  }

  private unlistPartial(f: DstFile): void {
    if (f.partialRel !== undefined && this.partials.get(f.partialRel) === f) this.partials.delete(f.partialRel);
    f.partialRel = undefined;
  }

  /** Whether `f`'s partial name still refers to the inode it created or resumed (never followed). */
  private ownsPartialName(f: DstFile): boolean {
    const st = this.st;
    return f.pIno >= 0 && lstatAt(f.dir.fd, cstr(f.tmpName as string), st) === 0 && st.ino === f.pIno && st.devMajor === f.pDevMajor && st.devMinor === f.pDevMinor;
  }

  /**
   * A complete file under its partial name: renamed over its final name while that
   * partial name is still its inode (synchronously: nothing can take the name between the
   * check and the rename); otherwise it lands from its fd, and the name is left alone.
   */
  private landPartial(f: DstFile): void {
    this.unlistPartial(f);
    if (f.partial && this.ownsPartialName(f)) {
      if (libc.renameat2(f.dir.fd, cstr(f.tmpName as string), f.dir.fd, cstr(f.name), 0) === 0) f.tmpOnDisk = false;
      else f.failure ??= recvFailure(new SysError("rename", errno(), f.rel), f.rel);
      this.closeFile(f);
      return;
    }
    f.partial = false;
    f.tmpOnDisk = false;
    this.replaceExisting(f);
  }

  /** `.usync-tmp-<session>-<n>`: never a name a finished file is stored under by us. */
  private tempName(): string {
    return `.usync-tmp-${this.session}-${(this.tmpCounter++).toString(36)}`;
  }

  private submitWrite(op: WriteOp): void {
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    prepWrite(ring, sqe, op.file.fd, op.block.mem.addr + op.done, op.len - op.done, op.off + op.done);
    ring.setUserData(sqe, ring.track(op, 0));
    this.opsInFlight++;
  }

  /** A DATA frame cut off by the end of the session: its block goes back (nothing to write). */
  dropOp(op: WriteOp): void {
    this.blocks.release(op.block);
    if (op.file.cov !== undefined) op.file.receiving--;
  }

  /** A write that will not happen (its file failed): release it as if done. */
  private dropWrite(op: WriteOp): void {
    const f = op.file;
    this.stats.settledBytes += op.len;
    f.writesInFlight--;
    this.blocks.release(op.block);
    this.writePool.push(op);
    this.progressFile(f);
  }

  onWrite(op: WriteOp, res: number): void {
    this.opsInFlight--;
    this.lastProgress = performance.now();
    const f = op.file;
    if (res < 0 && (res === -E.EINTR || res === -E.EAGAIN)) return this.submitWrite(op);
    if (res > 0) {
      op.done += res;
      if (op.done < op.len) return this.submitWrite(op);
      this.stats.written += op.len;
      f.written += op.len;
    } else if (f.failure === undefined) {
      f.failure = recvFailure(new SysError("write", res === 0 ? E.EIO : -res, f.rel), f.rel);
    }
    f.writesInFlight--;
    this.blocks.release(op.block);
    this.writePool.push(op);
    this.progressFile(f);
    this.resume();
  }

  private endFile(f: DstFile, aborted: boolean): void {
    f.ended = true;
    f.aborted = aborted;
    this.wireOpen--;
    this.finishing++;
    this.progressFile(f);
  }

  onFileOp(f: DstFile, res: number, tag: number): void {
    this.opsInFlight--;
    this.lastProgress = performance.now();
    switch (tag) {
      case TAG_OPEN:
        if (res < 0 && !f.direct && !f.partial && this.useTmpfile && (res === -E.EOPNOTSUPP || res === -E.EISDIR || res === -E.EINVAL)) {
          // No O_TMPFILE on this file system: named temporaries from now on.
          this.useTmpfile = false;
          this.submitOpen(f);
          return;
        }
        if (res < 0) {
          f.failure ??= recvFailure(new SysError("open", -res, f.partial ? f.tmpName : f.rel), f.rel);
          f.state = ST_OPEN;
        } else {
          f.fd = res;
          f.state = ST_OPEN;
          if (f.direct) f.directOnDisk = true;
          else if (!this.useTmpfile) f.tmpOnDisk = true;
        }
        for (const op of f.waiting) {
          if (f.failure !== undefined) this.dropWrite(op);
          else this.submitWrite(op);
        }
        f.waiting.length = 0;
        this.progressFile(f);
        return;
      case TAG_LINK:
        if (res === -E.ENOENT && this.linkMode === "empty-path" && f.tmpName === undefined) {
          // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH: use /proc/self/fd instead.
          this.linkMode = "proc";
          this.submitLink(f);
          return;
        }
        if (res === -E.EEXIST && f.tmpName === undefined) {
          // The name exists: link under a temporary name, then rename over it (atomic).
          this.replaceExisting(f);
          return;
        }
        if (res < 0) f.failure ??= recvFailure(new SysError(f.tmpName !== undefined ? "rename" : "link", -res, f.rel), f.rel);
        else f.tmpOnDisk = false;
        this.closeFile(f);
        return;
      case TAG_UNLINK:
        this.doneFile(f);
        return;
    }
  }

  /** Moves a file on once its open, data and end are in: finalize or discard. */
  private progressFile(f: DstFile): void {
    if (f.state !== ST_OPEN || !f.ended || f.writesInFlight > 0) return;
    // Data streams: also every byte arrived (a FILE_END may overtake the last pieces).
    if (f.cov !== undefined && (f.receiving > 0 || !f.cov.complete)) return;
    if (f.failure !== undefined || f.aborted) {
      if (f.fd >= 0) this.closeFile(f);
      else this.doneFile(f);
      return;
    }
    // Complete: size (a trailing hole), mtime, then the final name.
    if (f.dataEnd < f.size && libc.ftruncate(f.fd, f.size) !== 0) {
      f.failure = recvFailure(new SysError("ftruncate", errno(), f.rel), f.rel);
      this.closeFile(f);
      return;
    }
    if (f.modeAtEnd && libc.fchmod(f.fd, f.mode) !== 0) {
      f.failure = recvFailure(new SysError("chmod", errno(), f.rel), f.rel);
      this.closeFile(f);
      return;
    }
    if (!this.setTimes(f.fd, null, f.mtimeNs, false)) {
      f.failure = recvFailure(new SysError("futimens", errno(), f.rel), f.rel);
      this.closeFile(f);
      return;
    }
    if (f.direct) {
      // Complete, under its final name in a staged directory: nothing left but closing.
      f.directOnDisk = false;
      this.closeFile(f);
      return;
    }
    f.state = ST_LINKING;
    if (f.partial || f.nameLost) return this.landPartial(f);
    this.submitLink(f);
  }

  private submitLink(f: DstFile): void {
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    const nameAddr = f.slot.mem.addr + SLOT_NAME;
    if (f.tmpName !== undefined) {
      prepRenameat(ring, sqe, f.dir.fd, f.slot.set(SLOT_TMP, f.tmpName), f.dir.fd, nameAddr, 0);
    } else if (this.linkMode === "empty-path") {
      prepLinkat(ring, sqe, f.fd, this.emptyPath.addr, f.dir.fd, nameAddr, AT.EMPTY_PATH);
    } else {
      prepLinkat(ring, sqe, AT.FDCWD, f.slot.set(SLOT_PROC, `/proc/self/fd/${f.fd}`), f.dir.fd, nameAddr, AT.SYMLINK_FOLLOW);
    }
    ring.setUserData(sqe, ring.track(f, TAG_LINK));
    this.opsInFlight++;
  }

  /**
   * The final name exists (or a partial's own name is no longer its own): give the file a
   * temporary name through its fd and rename that over the final name.
   */
  private replaceExisting(f: DstFile): void {
    const tmp = this.tempName();
    const t = cstr(tmp);
    const link = (): number => this.linkMode === "empty-path"
      ? libc.linkat(f.fd, this.emptyPath.u8, f.dir.fd, t, AT.EMPTY_PATH)
      : libc.linkat(AT.FDCWD, cstr(`/proc/self/fd/${f.fd}`), f.dir.fd, t, AT.SYMLINK_FOLLOW);
    let r = link();
    if (r !== 0 && errno() === E.ENOENT && this.linkMode === "empty-path") {
      // A partial landing from its fd may be the first link of the session: AT_EMPTY_PATH
      // needs CAP_DAC_READ_SEARCH, /proc/self/fd does not.
      this.linkMode = "proc";
      r = link();
    }
    if (r !== 0) {
      f.failure ??= recvFailure(new SysError("link", errno(), f.rel), f.rel);
      this.closeFile(f);
      return;
    }
    if (libc.renameat2(f.dir.fd, t, f.dir.fd, cstr(f.name), 0) !== 0) {
      const e = errno();
      libc.unlinkat(f.dir.fd, t, 0);
      f.failure ??= recvFailure(new SysError("rename", e, f.rel), f.rel);
    }
    this.closeFile(f);
  }

  private closeFile(f: DstFile): void {
    f.state = ST_CLOSING;
    this.unlistPartial(f);
    if (f.partial && f.tmpOnDisk) {
      // A failed partial: removed by name only while the name is still its own (synchronously).
      if (this.ownsPartialName(f)) libc.unlinkat(f.dir.fd, cstr(f.tmpName as string), 0);
      f.tmpOnDisk = false;
    }
    if (f.fd >= 0) {
      // Nothing waits for the close: no completion unless it fails (and then nothing to do).
      const ring = this.loop.ring;
      const sqe = ring.getSqe();
      prepClose(ring, sqe, f.fd);
      sqeSetFlags(ring, sqe, IOSQE.CQE_SKIP_SUCCESS);
      ring.setUserData(sqe, UNTRACKED);
      f.fd = -1;
    }
    const incomplete = f.tmpOnDisk && f.tmpName !== undefined ? f.slot.set(SLOT_TMP, f.tmpName) : f.directOnDisk ? f.slot.mem.addr + SLOT_NAME : 0;
    if (incomplete !== 0) {
      // A failed file: remove its temporary (named-temp mode) or its incomplete direct file.
      const ring = this.loop.ring;
      const sqe = ring.getSqe();
      prepUnlinkat(ring, sqe, f.dir.fd, incomplete, 0);
      ring.setUserData(sqe, ring.track(f, TAG_UNLINK));
      this.opsInFlight++;
      f.tmpOnDisk = false;
      f.directOnDisk = false;
      return;
    }
    this.doneFile(f);
  }

  private doneFile(f: DstFile): void {
    if (f.state === ST_DONE && f.counted) return;
    f.state = ST_DONE;
    f.counted = true;
    this.files.delete(f.id);
    this.unlistPartial(f);
    if (f.ended) this.finishing--;
    this.names.put(f.slot);
    const ok = f.failure === undefined && !f.aborted;
    if (f.failure !== undefined) this.failures.push(f.failure);
    if (ok) {
      this.stats.files++;
      this.stats.bytes += f.written;
      if (f.resumeFrom > 0) this.stats.resumed++;
      this.remember(f.id, f.rel);
    } else {
      this.ids.set(f.id, NO_PATH);
    }
    this.pendingLinks -= f.links.length;
    for (const l of f.links) this.makeHardlink(l.rel, ok ? f.rel : null, l.mtimeNs);
    f.links.length = 0;
    this.dest.release(f.dir);
    this.resume();
    this.maybeFinish();
  }

  private remember(id: number, rel: string): void {
    if (this.linkPathBytes + rel.length * 3 + 2 > this.limits.maxLinkPathBytes) {
      this.ids.set(id, NO_PATH);
      return;
    }
    const h = this.paths.add(rel);
    this.linkPathBytes = this.paths.bytes;
    this.ids.set(id, h);
  }

  // ---------------------------------------------------------------------------------
  // Directories, symlinks, hard links (synchronous: they are small and ordered)

  private onDirEntry(rel: string, mode: number, mtimeNs: bigint): void {
    if (this.sync.dryRun) {
      this.stats.dirs++;
      return;
    }
    try {
      if (!this.push) this.removeNonDir(rel);
      // Created private (a new one under a temporary name: see dest.ts, staging); its
      // real mode is applied at the end, once its contents are in. Opening it confined
      // proves it is a directory and not a symlink.
      const h = this.dest.makeDir(rel, () => this.tempName());
      this.dest.release(h);
      this.dirMeta.push({ rel, mode, mtimeNs });
      this.stats.dirs++;
    } catch (e) {
      this.failures.push(recvFailure(e, rel));
    }
  }

  /** Want mode: a file or symlink in DST where the source has a directory is replaced (unlinked, never followed). */
  private removeNonDir(rel: string): void {
    const p = this.dest.parent(rel);
    try {
      const name = cstr(p.name);
      if (p.dir.staged || lstatAt(p.dir.fd, name, this.st) !== 0 || this.st.type === S.IFDIR) return;
      if (libc.unlinkat(p.dir.fd, name, 0) !== 0) throw new SysError("unlink", errno(), rel);
    } finally {
      this.dest.release(p.dir);
    }
  }

  private onSymlinkEntry(rel: string, target: Uint8Array, mtimeNs: bigint): void {
    if (this.sync.dryRun) {
      this.stats.symlinks++;
      return;
    }
    let parent: { dir: DirHandle; name: string };
    try {
      parent = this.dest.parent(rel);
    } catch (e) {
      this.failures.push(recvFailure(e, rel));
      return;
    }
    try {
      const t = cstr(target);
      const name = cstr(parent.name);
      if (!this.push && !parent.dir.staged && this.sameSymlink(parent.dir.fd, name, target)) {
        // Already there: only its mtime, if that differs.
        if (BigInt(this.st.mtimeSec) * 1_000_000_000n + BigInt(this.st.mtimeNsec) !== mtimeNs) {
          if (!this.setTimes(parent.dir.fd, name, mtimeNs, true)) throw new SysError("utimensat", errno(), rel);
        }
        this.stats.symlinks++;
        return;
      }
      if (libc.symlinkat(t, parent.dir.fd, name) !== 0) {
        const e = errno();
        if (e !== E.EEXIST || parent.dir.staged) throw new SysError("symlink", e, rel);
        this.placeReplacing(parent.dir, name, rel, (tmp) => libc.symlinkat(t, parent.dir.fd, tmp), "symlink");
      }
      if (!this.setTimes(parent.dir.fd, name, mtimeNs, true)) throw new SysError("utimensat", errno(), rel);
      this.stats.symlinks++;
    } catch (e) {
      this.failures.push(recvFailure(e, rel));
    } finally {
      this.dest.release(parent.dir);
    }
  }

  /** Whether `name` in `dirfd` is a symlink to exactly `target` (its statx stays in this.st). */
  private sameSymlink(dirfd: number, name: Uint8Array, target: Uint8Array): boolean {
    if (lstatAt(dirfd, name, this.st) !== 0 || this.st.type !== S.IFLNK || this.st.size !== target.length) return false;
    const got = readlinkAt(dirfd, name, (this.hashBuf ??= new Uint8Array(1024 * 1024)));
    return typeof got !== "number" && Buffer.compare(got, target) === 0;
  }

  /** Creates an entry under a temporary name with `make`, then renames it over `name`. */
  private placeReplacing(dir: DirHandle, name: Uint8Array, rel: string, make: (tmp: Buffer) => number, what: string): void {
    const tmp = cstr(this.tempName());
    if (make(tmp) !== 0) throw new SysError(what, errno(), rel);
    if (libc.renameat2(dir.fd, tmp, dir.fd, name, 0) !== 0) {
      const e = errno();
      libc.unlinkat(dir.fd, tmp, 0);
      throw new SysError("rename", e, rel);
    }
  }

  private onHardlinkEntry(rel: string, linkId: number, mtimeNs: bigint): void {
    if (this.sync.dryRun) {
      if (!this.ids.has(linkId)) throw new ProtocolError("frame", `hard link ${displaySafe(rel)} to unknown id ${linkId}`);
      this.stats.hardlinks++;
      return;
    }
    const inProgress = this.files.get(linkId);
    if (inProgress !== undefined) {
      // Made when that file is complete. Not flow control (which could wait forever on a
      // file the sender never ends): a hard limit instead.
      if (++this.pendingLinks > this.limits.maxPendingLinks) {
        throw new ProtocolError("limit", `more than ${this.limits.maxPendingLinks} hard links waiting for files still being received`);
      }
      inProgress.links.push({ rel, mtimeNs });
      return;
    }
    const waiting = this.agreeingIds.get(linkId);
    if (waiting !== undefined) {
      if (++this.pendingLinks > this.limits.maxPendingLinks) {
        throw new ProtocolError("limit", `more than ${this.limits.maxPendingLinks} hard links waiting for files still being received`);
      }
      (waiting.links ??= []).push({ rel, mtimeNs });
      return;
    }
    if (!this.ids.has(linkId)) throw new ProtocolError("frame", `hard link ${displaySafe(rel)} to unknown id ${linkId}`);
    const h = this.ids.get(linkId) ?? NO_PATH;
    this.makeHardlink(rel, h < 0 ? null : this.paths.get(h), mtimeNs);
  }

  private makeHardlink(rel: string, targetRel: string | null, _mtimeNs: bigint): void {
    if (targetRel === null) {
      this.failures.push({ path: rel, code: "link-target-failed", message: `${rel}: not linked: the file it links to was not stored` });
      return;
    }
    let parent: { dir: DirHandle; name: string } | undefined;
    let target: { dir: DirHandle; name: string } | undefined;
    try {
      target = this.dest.parent(targetRel);
      parent = this.dest.parent(rel);
      const tname = cstr(target.name);
      const name = cstr(parent.name);
      const tdir = target.dir;
      const pdir = parent.dir;
      // linkat without AT_SYMLINK_FOLLOW links the entry itself, never what it points to.
      if (libc.linkat(tdir.fd, tname, pdir.fd, name, 0) !== 0) {
        const e = errno();
        if (e === E.EEXIST && this.sameInode(tdir.fd, tname, pdir.fd, name)) {
          // Already that link (an unchanged tree).
          this.stats.hardlinks++;
          return;
        }
        if (e !== E.EEXIST || pdir.staged) throw new SysError("link", e, rel);
        this.placeReplacing(pdir, name, rel, (tmp) => libc.linkat(tdir.fd, tname, pdir.fd, tmp, 0), "link");
      }
      this.stats.hardlinks++;
    } catch (e) {
      this.failures.push(recvFailure(e, rel));
    } finally {
      if (parent !== undefined) this.dest.release(parent.dir);
      if (target !== undefined) this.dest.release(target.dir);
    }
    this.maybeFinish();
  }

  /** Whether two names are the same inode (neither followed). */
  private sameInode(adir: number, a: Uint8Array, bdir: number, b: Uint8Array): boolean {
    if (lstatAt(adir, a, this.st) !== 0) return false;
    const dev = this.st.dev;
    const ino = this.st.ino;
    return lstatAt(bdir, b, this.st) === 0 && this.st.dev === dev && this.st.ino === ino;
  }

  /** futimens (name null) or utimensat(dir, name, AT_SYMLINK_NOFOLLOW): mtime set, atime untouched. */
  private setTimes(fd: number, name: Uint8Array | null, mtimeNs: bigint, nofollow: boolean): boolean {
    let sec = mtimeNs / 1_000_000_000n;
    let nsec = mtimeNs % 1_000_000_000n;
    if (nsec < 0n) {
      nsec += 1_000_000_000n;
      sec -= 1n;
    }
    this.times[0] = 0n;
    this.times[1] = BigInt(UTIME_OMIT);
    this.times[2] = sec;
    this.times[3] = nsec;
    const r = name === null ? libc.futimens(fd, this.tsBuf) : libc.utimensat(fd, name, this.tsBuf, nofollow ? AT.SYMLINK_NOFOLLOW : 0);
    return r === 0;
  }

  // ---------------------------------------------------------------------------------
  // The end

  private resume(): void {
    if (this.blocked()) return;
    if (this.state === "running") this.channel?.resumeReceive();
    if (this.state === "running" || this.state === "suspended") for (const d of this.streams) if (!d.closed) d.channel.resumeReceive();
  }

  /** Stop reading every stream while local I/O catches up (the memory cap covers them all). */
  get overBudget(): boolean {
    return this.blocked();
  }

  /**
   * A data stream connected (HELLO flag JOIN): its first frame must be JOIN with `token`.
   * Returns it so the session can close its connection at the end.
   */
  addStream(channel: Channel, token: Uint8Array): DataStream {
    const d = new DataStream(this, channel, token);
    this.streams.add(d);
    channel.startReceive(d);
    return d;
  }

  /** A data stream ended: cleanly (nothing more comes on it) or not (the session fails). */
  streamEnded(d: DataStream, error: Error | undefined): void {
    // After the REPORT (a last stream that connected too late to carry anything) or a
    // failure, how a stream goes away no longer matters.
    if (this.state !== "running" && this.state !== "suspended") {
      if (d.op === undefined) this.streams.delete(d);
      return;
    }
    // Kept on failure: a frame it was cutting off still counts against what a resume keeps.
    if (error !== undefined) return this.fail(error);
    this.streams.delete(d);
    this.checkStreamsEnded();
  }

  /**
   * LIST_END came and no data stream is open (any more): a file still missing bytes never
   * gets them, unless a stream is being replaced. A data stream whose key is used up is
   * closed before its replacement connects, and its unsent pieces go on the new one: so
   * the verdict waits STREAM_REPLACE_GRACE_MS for a new stream (one that joins, or is in
   * its handshake, by then defers it again).
   */
  checkStreamsEnded(): void {
    if (!this.split || !this.listEnded || this.streams.size > 0 || this.state !== "running" || this.handshaking()) return;
    if (this.firstShortFile() === undefined || this.starvedCheck) return;
    this.starvedCheck = true;
    this.loop.after(STREAM_REPLACE_GRACE_MS, () => {
      this.starvedCheck = false;
      if (!this.split || this.streams.size > 0 || this.state !== "running" || this.handshaking()) return;
      const f = this.firstShortFile();
      if (f === undefined || f.cov === undefined) return;
      this.fail(new ProtocolError("frame", `the sender sent ${f.cov.intervals().reduce((n, [a, b]) => n + b - a, 0)} bytes for ${displaySafe(f.rel)}, fewer than the ${f.size} it announced`));
    });
  }

  /** A split file whose FILE_END came while some of its bytes did not. */
  private firstShortFile(): DstFile | undefined {
    for (const f of this.files.values()) if (f.cov !== undefined && f.ended && !f.cov.complete) return f;
    return undefined;
  }

  private maybeFinish(): void {
    if (!this.listEnded || this.state !== "running" || this.files.size > 0 || this.finishing > 0 || this.agreeing > 0) return;
    if (this.sync.delete && this.rootMeta !== undefined && !this.listingIncomplete && !this.deletionDone) {
      if (!this.deletionStarted) this.startDeletion();
      return;
    }
    trace("all files on disk");
    for (const { rel, error } of this.dest.finishStaging()) this.failures.push(recvFailure(error, rel));
    if (!this.sync.dryRun) this.applyDirMeta();
    const { failures, omittedFailures } = capFailures(this.failures.map((f) => ({
      path: truncateUtf8(f.path, 4096),
      code: f.code,
      message: truncateUtf8(f.message, MAX_TEXT_BYTES),
    })));
    // Entries now in place: stored, or already there (unchanged).
    const report = encodeMessage({
      type: "report", files: this.stats.files + this.stats.unchanged + this.stats.symlinks + this.stats.hardlinks, bytes: BigInt(this.stats.bytes), failures, omittedFailures,
    });
    const ch = this.channel as Channel;
    const buf = pinned(report.length);
    buf.u8.set(report);
    ch.send(buf.u8, buf.addr, report.length, false, () => recycle(buf));
    ch.sendCloseNotify();
    this.state = "reported";
    trace("REPORT queued");
  }

  /**
   * --delete (the sender's whole tree is a directory, ROOT came): what DST has and the
   * listing did not name goes, each removal reported to the sender as DELETED. The pass
   * runs in slices from the loop (deleteSlice), so a DST with millions of extraneous
   * entries keeps the connection answered; the REPORT follows when it is over.
   */
  private startDeletion(): void {
    trace("delete pass starts");
    this.deletionStarted = true;
    const pass = new DeletePass(this.dest.rootFd, {
      seen: this.seen ?? new ListedPaths(),
      filter: this.filter,
      ownPrefix: `.usync-tmp-${this.session}-`,
      dryRun: this.sync.dryRun,
      replaced: this.dryReplaced,
      onDeleted: (rel) => {
        this.stats.deleted++;
        this.queueControl(encodeMessage({ type: "deleted", path: truncateUtf8(rel, 4096) }));
      },
      onError: (rel, error) => this.failures.push(recvFailure(error, rel)),
    });
    this.addChore({
      step: (deadline) => pass.step(deadline),
      close: () => pass.close(),
      finish: () => {
        trace("delete pass over");
        this.deletionDone = true;
        this.seen = undefined;
        this.flushControl();
        this.maybeFinish();
      },
    });
  }

  private addChore(c: Chore): void {
    this.chores.push(c);
    this.loop.work = () => this.workSlice();
  }

  /** Chores for one slice (Loop.work); each one's finish() runs after its last step. */
  private workSlice(): "more" | "blocked" | "done" {
    if (this.chores.length === 0) return "done";
    if (this.state !== "running" && this.state !== "suspended") {
      this.stopChores();
      return "done";
    }
    // The sender reads our DELETED frames more slowly than we make them: wait for it.
    if (this.ctlInFlight >= CHORE_SENDS_AHEAD) return "blocked";
    const deadline = performance.now() + CHORE_SLICE_MS;
    try {
      while (this.chores.length > 0) {
        const c = this.chores[0];
        if (!c.step(deadline)) break;
        this.chores.shift();
        c.finish();
        if (performance.now() > deadline) break;
      }
    } catch (e) {
      this.stopChores();
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return "done";
    }
    this.lastProgress = performance.now();
    if (this.state === "running") this.sendAnswers();
    return this.chores.length > 0 ? "more" : "done";
  }

  private stopChores(): void {
    for (const c of this.chores.splice(0)) c.close();
  }

  /** Directory modes and times, deepest first (their contents are complete), then DST's own. */
  private applyDirMeta(): void {
    const dirs = [...this.dirMeta].sort((a, b) => depth(b.rel) - depth(a.rel));
    for (const d of dirs) {
      let h: DirHandle | undefined;
      try {
        h = this.dest.dir(d.rel);
        if (libc.fchmod(h.fd, d.mode) !== 0) throw new SysError("chmod", errno(), d.rel);
        if (!this.setTimes(h.fd, null, d.mtimeNs, false)) throw new SysError("futimens", errno(), d.rel);
      } catch (e) {
        this.failures.push(recvFailure(e, d.rel));
      } finally {
        if (h !== undefined) this.dest.release(h);
      }
    }
    if (this.rootMeta !== undefined) {
      const fd = this.dest.rootFd;
      if (libc.fchmod(fd, this.rootMeta.mode) !== 0 || !this.setTimes(fd, null, this.rootMeta.mtimeNs, false)) {
        this.failures.push(recvFailure(new SysError("chmod", errno(), "."), "."));
      }
    }
  }

  /** Ends the session with an error; cleanup() releases files once nothing is in flight. */
  fail(e: Error): void {
    if (this.state === "failed" || this.state === "done") return;
    this.state = "failed";
    this.error = e;
    const ch = this.channel;
    // A timeout is told too: the sender then says why the session ended, not just that it did.
    const tell = e instanceof ProtocolError ? e.kind !== "record" && e.kind !== "peer" : e.name === "InterruptedError";
    if (ch !== undefined && tell) {
      // Tell the sender why (best effort; the record layer is still sound).
      try {
        const text = e.name === "InterruptedError" ? "the receiver was interrupted" : e.message;
        const msg = encodeMessage({ type: "error", message: truncateUtf8(text, MAX_TEXT_BYTES) });
        const buf = pinned(msg.length);
        buf.u8.set(msg);
        ch.send(buf.u8, buf.addr, msg.length, false, () => recycle(buf));
        ch.sendCloseNotify();
      } catch {
        // The connection is already gone.
      }
    }
  }

  /**
   * After a failure, once quiescent: closes every temporary (O_TMPFILE ones vanish) and
   * removes named ones. Finished files stay: each is complete under its final name.
   */
  cleanup(): void {
    this.stopChores();
    // A dropped connection (a reset, EOF even inside a record, a timeout, an interrupt,
    // the sender's ERROR) keeps what large files had received, for the next run to resume
    // (every byte kept was authenticated, and a resume checks its hash); a sender that
    // broke the protocol leaves nothing.
    const e = this.error;
    const keep = !(e instanceof ProtocolError) || e.kind === "peer" || e.kind === "timeout" || e.kind === "record";
    for (const f of this.files.values()) {
      if (keep && f.partial && f.fd >= 0 && f.tmpOnDisk && f.failure === undefined && !f.aborted && f.writesInFlight === 0) this.keepPartial(f);
      if (f.fd >= 0) {
        libc.close(f.fd);
        f.fd = -1;
      }
      if (f.tmpOnDisk && f.tmpName !== undefined) {
        // A partial's name may have been taken by a listed file meanwhile: never removed then.
        if (!f.partial || this.ownsPartialName(f)) libc.unlinkat(f.dir.fd, cstr(f.tmpName), 0);
        f.tmpOnDisk = false;
      }
      if (f.directOnDisk) {
        libc.unlinkat(f.dir.fd, cstr(f.name), 0);
        f.directOnDisk = false;
      }
      for (const op of f.waiting) this.blocks.release(op.block);
      f.waiting.length = 0;
      this.dest.release(f.dir);
    }
    this.files.clear();
    this.partials.clear();
    // Only complete files are left in the staged directories: put them in place.
    for (const { rel, error } of this.dest.finishStaging()) this.failures.push(recvFailure(error, rel));
    if (this.dataOp !== undefined) {
      this.blocks.release(this.dataOp.block);
      this.dataOp = undefined;
    }
    for (const d of this.streams) d.release();
  }

  /**
   * Truncates an incomplete large file to the prefix known to be on disk and marks it
   * (mtime = the source file's: "exact", see agree.ts trustedPrefix) so the next run
   * resumes from its end; too short a prefix is not worth keeping.
   */
  private keepPartial(f: DstFile): void {
    // Truncated and marked through the fd, but only while its name is still its own: a
    // name taken by a listed file is left alone (and the inode goes with the fd).
    if (!this.ownsPartialName(f)) {
      f.tmpOnDisk = false;
      return;
    }
    let prefix = this.dataFile === f && this.dataOp !== undefined ? Math.min(this.dataOp.off, f.next) : f.next;
    for (const op of f.waiting) prefix = Math.min(prefix, op.off);
    // Bytes a data stream was still reading are claimed but not on disk.
    for (const d of this.streams) if (d.op !== undefined && d.op.file === f) prefix = Math.min(prefix, d.op.off);
    if (prefix < RESUME_MIN) return;
    if (libc.ftruncate(f.fd, prefix) !== 0 || !this.setTimes(f.fd, null, f.mtimeNs, false)) return;
    libc.close(f.fd);
    f.fd = -1;
    f.tmpOnDisk = false;
    trace(`kept ${prefix} bytes of ${f.rel} for resuming`);
  }

  /** Whether a first frame on a fresh connection has been seen (for CONTINUE checks). */
  get started(): boolean {
    return this.entries > 0 || this.sawData || this.rootMeta !== undefined;
  }
}

/**
 * One data stream of a session (docs/PROTOCOL.md 8.8): a connection of its own (own
 * handshake, own keys) whose first frame is JOIN with the session's token, and then only
 * DATA and HOLE for files the control connection announced and WANTed. It has its own
 * frame parser; the files, the memory cap and every rule about bytes are the engine's.
 */
export class DataStream implements ChannelSink {
  private joinedOk = false;
  private ended = false;
  private pstate = P_HEADER;
  private readonly hdr = new SplitHeader();
  private ftype = 0;
  private flen = 0;
  private readonly small = new Uint8Array(64);
  private smallFill = 0;
  private dataLeft = 0;
  /** The DATA frame being read (its block is filled straight from the stream). */
  op: WriteOp | undefined;
  private opFill = 0;

  constructor(private readonly engine: RecvEngine, readonly channel: Channel, private readonly token: Uint8Array) {}

  /** Nothing more will come: the stream closed or the session ended. */
  get closed(): boolean {
    return this.ended;
  }

  onData(chunk: Uint8Array): number {
    const e = this.engine;
    if (this.ended || (e.state !== "running" && e.state !== "suspended")) return chunk.length;
    try {
      return this.parse(chunk);
    } catch (err) {
      this.end(err instanceof Error ? err : new Error(String(err)));
      return chunk.length;
    }
  }

  onClose(clean: boolean): void {
    if (this.ended) return;
    // A data stream ends at a frame boundary, with close_notify (or EOF in plaintext).
    if (clean && this.joinedOk && this.pstate === P_HEADER && this.hdr.fill === 0) this.end(undefined);
    else this.end(new ProtocolError("peer", clean ? "a data stream ended in the middle of a frame" : "a data stream was closed before the end of the transfer"));
  }

  onError(e: Error): void {
    if (!this.ended) this.end(e);
  }

  private end(error: Error | undefined): void {
    this.ended = true;
    this.engine.streamEnded(this, error);
  }

  /** Releases the block of a frame cut off (the session failed). */
  release(): void {
    if (this.op !== undefined) this.engine.dropOp(this.op);
    this.op = undefined;
  }

  private parse(chunk: Uint8Array): number {
    const e = this.engine;
    let p = 0;
    const end = chunk.length;
    while (p < end && !this.ended && (e.state === "running" || e.state === "suspended")) {
      switch (this.pstate) {
        case P_HEADER: {
          if (this.hdr.fill === 0 && e.overBudget) return p;
          p += this.hdr.take(chunk, p, end);
          if (!this.hdr.complete()) break;
          this.ftype = this.hdr.type;
          this.flen = this.hdr.length;
          const name = checkFrameHeader(this.ftype, this.flen, "to-receiver");
          if (!this.joinedOk) {
            if (this.ftype !== MSG_JOIN) throw new ProtocolError("frame", `a data stream must start with JOIN, not ${name}`);
          } else if (this.ftype !== MSG_DATA && this.ftype !== MSG_HOLE) {
            throw new ProtocolError("frame", `a data stream carries only DATA and HOLE, not ${name}`);
          }
          this.smallFill = 0;
          this.pstate = this.ftype === MSG_DATA ? P_DATA_FIELDS : P_SMALL;
          break;
        }
        case P_SMALL:
        case P_DATA_FIELDS: {
          const need = this.pstate === P_SMALL ? this.flen : DATA_FIELDS_LENGTH;
          const take = Math.min(need - this.smallFill, end - p);
          this.small.set(chunk.subarray(p, p + take), this.smallFill);
          this.smallFill += take;
          p += take;
          if (this.smallFill < need) break;
          if (this.pstate === P_SMALL) this.finishSmall();
          else this.startData();
          break;
        }
        case P_DATA_BYTES: {
          const take = Math.min(this.dataLeft, end - p);
          const op = this.op as WriteOp;
          op.block.mem.u8.set(chunk.subarray(p, p + take), this.opFill);
          this.opFill += take;
          this.dataLeft -= take;
          p += take;
          if (this.dataLeft === 0) {
            this.pstate = P_HEADER;
            this.op = undefined;
            e.commitData(op);
          }
          break;
        }
        case P_SKIP: {
          const take = Math.min(this.dataLeft, end - p);
          this.dataLeft -= take;
          p += take;
          if (this.dataLeft === 0) this.pstate = P_HEADER;
          break;
        }
      }
    }
    return this.ended || e.state === "running" || e.state === "suspended" ? p : end;
  }

  private finishSmall(): void {
    this.pstate = P_HEADER;
    const msg = decodeSenderMessage({ type: this.ftype, payload: this.small.subarray(0, this.flen) });
    if (msg.type === "join") {
      if (!timingSafeEqual(msg.token, this.token)) throw new ProtocolError("auth", "JOIN token does not match the session");
      this.joinedOk = true;
      this.engine.joined++;
      return;
    }
    if (msg.type !== "hole") throw new ProtocolError("frame", `a data stream carries only DATA and HOLE, not ${msg.type.toUpperCase()}`);
    this.engine.hole(msg.id, Number(msg.offset), Number(msg.length));
  }

  private startData(): void {
    const v = new DataView(this.small.buffer, 0, DATA_FIELDS_LENGTH);
    const id = v.getUint32(0);
    const offset = v.getBigUint64(4);
    const len = this.flen - DATA_FIELDS_LENGTH;
    if (offset > MAX_FILE_SIZE || offset + BigInt(len) > MAX_FILE_SIZE) throw new ProtocolError("limit", `DATA offset ${offset} past 2^62`);
    const op = this.engine.beginData(id, Number(offset), len);
    this.dataLeft = len;
    if (len === 0) {
      this.pstate = P_HEADER;
      return;
    }
    if (op === undefined) {
      this.pstate = P_SKIP;
      return;
    }
    this.op = op;
    this.opFill = 0;
    this.pstate = P_DATA_BYTES;
  }
}

const NO_PATH = -1;
const UNUSED = -2;

/**
 * Session ids → path handle (or NO_PATH). The reference sender counts ids up from 1, so
 * they are kept in a growing Int32Array (4 bytes per id; a Map costs about 55 at a million
 * ids); ids that do not continue the dense run (any order a peer may choose) go to a Map.
 */
class IdTable {
  private dense = new Int32Array(1024).fill(UNUSED);
  private denseLen = 0;
  private readonly sparse = new Map<number, number>();

  has(id: number): boolean {
    return (id >= 1 && id <= this.denseLen && this.dense[id - 1] !== UNUSED) || this.sparse.has(id);
  }

  get(id: number): number | undefined {
    if (id >= 1 && id <= this.denseLen) {
      const v = this.dense[id - 1];
      if (v !== UNUSED) return v;
    }
    return this.sparse.get(id);
  }

  set(id: number, v: number): void {
    if (id >= 1 && id <= this.denseLen) {
      // Every slot of the dense run holds a value: replace it.
      this.dense[id - 1] = v;
      return;
    }
    if (id === this.denseLen + 1 && !this.sparse.has(id)) {
      if (this.denseLen === this.dense.length) {
        const grown = new Int32Array(this.dense.length * 2).fill(UNUSED);
        grown.set(this.dense);
        this.dense = grown;
      }
      this.dense[this.denseLen++] = v;
      return;
    }
    this.sparse.set(id, v);
  }
}
const ARENA_SLAB = 1024 * 1024;

/**
 * The paths of finished files, kept for hard links that may name them later: UTF-8 in
 * 1 MiB slabs, addressed by a number. A Map of strings cost about 230 bytes per file
 * (230 MB at a million files); this costs the bytes of the path plus 2.
 */
class PathArena {
  private readonly slabs: Uint8Array[] = [];
  private fill = ARENA_SLAB;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  /** Bytes used (for the link-path budget). */
  bytes = 0;

  add(s: string): number {
    const b = this.enc.encode(s);
    if (this.fill + 2 + b.length > ARENA_SLAB) {
      this.slabs.push(new Uint8Array(ARENA_SLAB));
      this.fill = 0;
    }
    const slab = this.slabs[this.slabs.length - 1];
    const at = this.fill;
    slab[at] = b.length >> 8;
    slab[at + 1] = b.length & 0xff;
    slab.set(b, at + 2);
    this.fill += 2 + b.length;
    this.bytes += 2 + b.length;
    return (this.slabs.length - 1) * ARENA_SLAB + at;
  }

  get(h: number): string {
    const slab = this.slabs[Math.floor(h / ARENA_SLAB)];
    const at = h % ARENA_SLAB;
    const len = (slab[at] << 8) | slab[at + 1];
    return this.dec.decode(slab.subarray(at + 2, at + 2 + len));
  }
}

function fstatxOk(fd: number, st: StatBuf): boolean {
  return fstatx(fd, st) === 0 && st.type === S.IFREG;
}

/** The path of `name` in the same directory as `rel`. */
function siblingPath(rel: string, name: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? name : `${rel.slice(0, i + 1)}${name}`;
}

function depth(rel: string): number {
  let n = 0;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 0x2f) n++;
  return n;
}

export function recvFailure(e: unknown, rel: string): ReportFailure {
  if (e instanceof SysError) {
    const why = e.code === "ELOOP" ? " (the path goes through a symlink: not followed)" : e.code === "EXDEV" ? " (the path leaves the destination)" : "";
    return { path: rel, code: e.code, message: `${e.message}${why}` };
  }
  if (e instanceof ProtocolError) return { path: rel, code: e.kind === "path" ? "bad-path" : e.kind, message: `${rel}: ${e.message}` };
  return { path: rel, code: "error", message: `${rel}: ${e instanceof Error ? e.message : String(e)}` };
}
