/**
 * The sending side of a transfer: walks SRC, reads files with io_uring and streams
 * ENTRY / DATA / HOLE / FILE_END frames into the channel (docs/PROTOCOL.md section 8.7,
 * want mode): every file ENTRY is answered by the receiver with WANT (from an offset, to
 * resume a partial whose prefix hash matches ours) or SKIP, and a file's data goes only
 * after its WANT. ENTRYs keep streaming while answers are outstanding, up to a window of
 * files (maxOpenFiles), so there is no round trip per file. With --checksum each file is
 * hashed while listing (CHECKSUM frame after its ENTRY); with --dry-run no data goes at
 * all; with --delete the receiver's DELETED frames are counted and reported.
 *
 * Owns: the output buffers (fixed memory, each holding whole frames only, so a buffer
 * boundary is always a frame boundary and a connection can be switched there for
 * re-keying), the file reads (READ straight into a reserved place after the DATA header:
 * one copy less), small files packed together so sends and records are full, large files
 * in chunks of up to 1 MiB, sparse files as DATA + HOLE, hard links, the per-file fds,
 * and the sender's own per-file failures. Never writes anything but frames; never
 * touches the socket directly (Channel does).
 *
 * A file that cannot be opened on its WANT (it was announced unopened), or shrinks or
 * fails while being read (its DATA headers already committed): the framed bytes are
 * zero-filled to keep the stream valid, the rest goes as one HOLE (a STREAMS receiver
 * needs every byte covered) and the file's FILE_END becomes FILE_ABORT, so the receiver
 * discards it; it is one of the sender's per-file failures, never a session error.
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { IOSQE, SEEK } from "../../ffi/structs.ts";
import { ProtocolError, SysError } from "../errors.ts";
import { sha256Fd } from "../copy/plan.ts";
import { prepClose, prepRead, sqeSetFlags } from "../uring/prep.ts";
import { UNTRACKED, type CompletionTarget } from "../uring/ring.ts";
import { Channel, type ChannelSink } from "./channel.ts";
import { hashPoolFor, INLINE_HASH_MAX } from "./hash-pool.ts";
import type { Loop } from "./loop.ts";
import { pinned, type Pinned } from "./mem.ts";
import { trace } from "./trace.ts";
import type { DeferredOpen, ScanItem, Scanner } from "./scan.ts";
import {
  CONTENT_HASH_LENGTH, DATA_FIELDS_LENGTH, displaySafe, encodeMessage, FRAME_HEADER_LENGTH, FrameReader, MAX_DATA_CHUNK, MAX_PATH_BYTES,
  MSG_CHECKSUM, MSG_DATA, MSG_ENTRY, MSG_FILE_ABORT, MSG_FILE_END, MSG_REKEY, MSG_SKIP, MSG_WANT, type ReportMessage, type SyncOptions, type WantMessage,
  type WireMessage,
} from "./wire.ts";

export interface SendFailure {
  path: string;
  code: string;
  message: string;
}

export interface SenderOptions {
  /** Largest DATA chunk (≤ 1 MiB). */
  chunk?: number;
  /** Size of one output buffer; a DATA chunk always fits in one. */
  bufferBytes?: number;
  /** Output buffers (memory in flight = buffers × bufferBytes). */
  buffers?: number;
  /** Files open at once (reads in flight or not yet fully framed). */
  maxOpenFiles?: number;
  /** --exclude/--include: true leaves a path out. */
  filter?: (rel: string, isDir: boolean) => boolean;
  /** The --exclude/--include patterns, sent to the receiver (FILTER) with --delete: they protect DST paths. */
  filterRules?: { exclude: readonly string[]; include: readonly string[] };
  /** --checksum, --ignore-times, --delete, --dry-run (the same as the HELLO flags). */
  sync?: SyncOptions;
  /** A file that is (dry run: would be) sent, an entry the receiver deleted (would delete). */
  onChange?: (action: "send" | "delete", path: string) => void;
  /** Connections (send -j N): 1 = the control connection only; more = N - 1 data streams (docs/PROTOCOL.md 8.8). */
  streams?: number;
  /** Files at least this large are split into pieces spread across the streams. */
  splitMin?: number;
  /** Size of one piece of a split file. */
  pieceBytes?: number;
}

export interface SendStats {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** Special files (fifo, socket, device) left out. */
  skipped: number;
  /** Bytes of the files sent completely (DATA payloads; holes not counted; after resume offsets). */
  bytes: number;
  /** Files being sent, and total file bytes announced so far (for progress; at the end: the whole tree). */
  announcedFiles: number;
  announcedBytes: number;
  /** Files the receiver already had (SKIP). */
  unchanged: number;
  /** Entries the receiver removed (--delete). */
  deleted: number;
  /** Files sent from the end of the receiver's verified partial instead of from 0. */
  resumed: number;
  /** Bytes the receiver needed (WANTed, from their offsets): progress totals. */
  wantedBytes: number;
  /**
   * Bytes of announced files that will not be sent (progress, the ETA): sizes of unchanged
   * files (SKIP), resumed prefixes, and every WANTed file of a dry run.
   */
  settledBytes: number;
}

/** One output buffer: frames, back to back; DATA bytes land by READ. */
class OutBuf {
  readonly view: DataView;
  fill = 0;
  reads = 0;
  closed = false;
  /** FILE_END frames in this buffer, patched to FILE_ABORT if their file failed. */
  ends: { at: number; file: SrcFile }[] = [];
  /** Split files whose FILE_END is here: the buffer waits until their reads (on any stream) are done. */
  waitFor: SrcFile[] = [];
  constructor(readonly mem: Pinned) {
    this.view = new DataView(mem.u8.buffer, mem.u8.byteOffset, mem.u8.byteLength);
  }
  reset(): void {
    this.fill = 0;
    this.reads = 0;
    this.closed = false;
    this.ends.length = 0;
    this.waitFor.length = 0;
  }
}

class SrcFile {
  /** Data segments [start, end) flattened; null = one segment [0, size). */
  segs: number[] | null = null;
  seg = 0;
  pos = 0;
  readsInFlight = 0;
  /** DATA bytes framed for this file. */
  bytes = 0;
  failure: SendFailure | undefined;
  ended = false;
  closed = false;
  /** Sent from a WANT offset above 0 whose prefix hash matched. */
  resumed = false;
  /** Where this cursor stops: the file's size (a piece of a split file stops earlier). */
  end: number;
  /** Split across the streams: pieces not framed completely yet (FILE_END goes on the control connection after the last). */
  piecesLeft = 0;
  /** Not opened yet (the scanner deferred it): opened on its WANT, never on a SKIP. */
  at: DeferredOpen | undefined;
  /** Has holes (fewer blocks than bytes): its data segments are found once it is open. */
  sparse = false;
  constructor(readonly id: number, public fd: number, readonly rel: string, readonly size: number) {
    this.end = size;
  }
}

/** A range of a split file, framed on whichever stream takes it. */
class Piece {
  seg = 0;
  constructor(readonly file: SrcFile, public pos: number, readonly end: number) {}
  get segs(): number[] | null {
    return this.file.segs;
  }
}

/** Where a file's frames are being produced: the whole file (control connection) or one piece. */
type Cursor = SrcFile | Piece;

/**
 * One connection's share of the output: its current and finished buffers. Lane 0 is the
 * control connection (everything); the others are data streams (DATA and HOLE of pieces).
 */
class Lane {
  channel: Channel | undefined;
  cur: OutBuf | undefined;
  readonly closedBufs: OutBuf[] = [];
  /** Buffers taken from the pool and not back yet. */
  held = 0;
  /** The piece being framed here. */
  piece: Piece | undefined;
  /** Data stream: its key is nearly used up; the session replaces the connection. */
  replace = false;
  /** Data stream: everything sent, close_notify queued. */
  done = false;
  constructor(readonly index: number) {}
}

/** One READ in flight into an output buffer. */
class ReadOp implements CompletionTarget {
  file!: SrcFile;
  buf!: OutBuf;
  at = 0;
  len = 0;
  off = 0;
  done = 0;
  constructor(private readonly engine: SendEngine) {}
  onCompletion(res: number): void {
    this.engine.onRead(this, res);
  }
}

const END_FRAME = FRAME_HEADER_LENGTH + 4;
const SKIP_FRAME = FRAME_HEADER_LENGTH + 4;
/** A WANT from offset 0 without a prefix hash: header + id + offset + flag. */
const WANT_ALL_FRAME = FRAME_HEADER_LENGTH + 13;

/** Whether bytes [from, to) of `b` are all 0. */
function zeros(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}
/** ENTRY payload before the path: id, kind, mode, mtime, size, path length. */
const ENTRY_FIXED = 27;
const utf8 = new TextEncoder();
const DATA_HDR = FRAME_HEADER_LENGTH + DATA_FIELDS_LENGTH;
const HOLE_FRAME = FRAME_HEADER_LENGTH + 20;
const CHECKSUM_FRAME = FRAME_HEADER_LENGTH + 4 + CONTENT_HASH_LENGTH;
/** --checksum: items scanned ahead of the listing, so that large files hash on the pool while earlier ones are listed. */
const HASH_LOOKAHEAD = 64;
/** Of those, at most this many hashing at once (each holds an fd of its own). */
const HASH_JOBS_AHEAD = 8;
const F_DUPFD_CLOEXEC = 1030;
const KEEPALIVE_FRAME = encodeMessage({ type: "keepalive" });

/** A scanned item waiting to be listed; `ready` once its hash (if it needs one from the pool) is in. */
interface Ahead {
  item: ScanItem;
  ready: boolean;
}
/** Below this much room, a buffer is closed rather than given a tiny chunk of a big file. */
const MIN_CHUNK = 64 * 1024;
/** Records kept for REKEY + close_notify when a key nears its limit. */
const REKEY_RESERVE = 8;
/** With data streams: files from this size on are split, in pieces of this size (docs/PROTOCOL.md 8.8). */
export const DEFAULT_SPLIT_MIN = 16 * 1024 * 1024;
export const DEFAULT_PIECE_BYTES = 8 * 1024 * 1024;
/** Connections per session at most (15 data streams besides the control connection; the receiver takes one more while a re-keyed one is replaced). */
export const MAX_STREAMS = 16;

export class SendEngine implements ChannelSink {
  readonly stats: SendStats = {
    files: 0, dirs: 0, symlinks: 0, hardlinks: 0, skipped: 0, bytes: 0, announcedFiles: 0, announcedBytes: 0, settledBytes: 0, unchanged: 0, deleted: 0, resumed: 0,
    wantedBytes: 0,
  };
  readonly failures: SendFailure[] = [];
  /** Paths of special files left out (for -v). */
  readonly skippedPaths: string[] = [];
  report: ReportMessage | undefined;
  error: Error | undefined;
  /** The current connection must be replaced (its key is nearly used up): see rekey(). */
  rekeyWanted = false;

  private readonly chunk: number;
  private readonly bufSize: number;
  private readonly maxOpen: number;
  private readonly free: OutBuf[] = [];
  /** lanes[0]: the control connection; the others: data streams. */
  readonly lanes: Lane[] = [];
  /** The lane being filled (the buffer helpers work on it). */
  private L: Lane;
  private laneCap: number;
  /** Pieces of split files waiting for a stream. */
  private readonly pieces: Piece[] = [];
  /** Split files whose pieces are all framed: their FILE_END goes on the control connection. */
  private readonly splitEnds: SrcFile[] = [];
  private readonly splitMin: number;
  private readonly pieceBytes: number;

  private readonly readPool: ReadOp[] = [];
  private readonly ctl: Pinned;
  private readonly pathScratch = new Uint8Array(3 * MAX_PATH_BYTES + 16);
  private channel: Channel | undefined;
  private frames = new FrameReader({ direction: "to-sender", copyPayloads: true });

  private active: SrcFile | undefined;
  /** Files announced, waiting for WANT or SKIP. */
  private readonly asked = new Map<number, SrcFile>();

  /** Some announced file still waits for its WANT or SKIP: the session waits on the receiver. */
  get awaitingAnswers(): boolean {
    return this.asked.size > 0;
  }
  /** Files WANTed, their data not framed yet. */
  private readonly ready: SrcFile[] = [];
  private readonly sync: SyncOptions;
  private readonly filterRules: { exclude: readonly string[]; include: readonly string[] } | undefined;
  private readonly onChange: ((action: "send" | "delete", path: string) => void) | undefined;
  private hashBuf: Uint8Array | undefined;
  private openFiles = 0;
  /** --checksum: items scanned but not yet listed (their hashes run meanwhile), in listing order. */
  private readonly look: Ahead[] = [];
  private lookEnded = false;
  /** Hashes from the pool, by item, until the item is listed (or a failure to say so). */
  private readonly hashes = new Map<ScanItem, Uint8Array | SysError>();
  /** Pool jobs running: hashes for the listing, and prefixes to verify before resuming. */
  private hashJobs = 0;
  /** Files whose resume waits for their prefix hash (their fds are closed on abort). */
  private readonly verifying = new Set<SrcFile>();
  private nextId = 1;
  private readonly linkIds = new Map<string, number>();
  private rootSent = false;
  /** LIST_END said the listing is incomplete: the receiver skipped --delete. */
  listingIncomplete = false;
  private filtersSent = 0;
  private scanDone = false;
  /** LISTED went out: the receiver knows the totals (its progress shows an ETA). */
  private listedSent = false;
  private listEndQueued = false;
  /** LIST_END has been handed to the channel: now waiting for REPORT. */
  listEndSent = false;
  /** The peer closed cleanly (close_notify / EOF). */
  peerClosed = false;
  private rekeyPhase: "none" | "closing" = "none";
  private inPump = false;

  constructor(private readonly loop: Loop, private readonly scanner: Scanner, opts: SenderOptions = {}) {
    this.chunk = Math.min(MAX_DATA_CHUNK, Math.max(4096, opts.chunk ?? MAX_DATA_CHUNK));
    this.bufSize = Math.max(opts.bufferBytes ?? 2 * 1024 * 1024, this.chunk + DATA_HDR + END_FRAME + 16 * 1024);
    this.maxOpen = opts.maxOpenFiles ?? defaultWindow();
    this.sync = opts.sync ?? { checksum: false, ignoreTimes: false, delete: false, dryRun: false };
    this.filterRules = this.sync.delete ? opts.filterRules : undefined;
    this.onChange = opts.onChange;
    const streams = Math.max(1, Math.min(MAX_STREAMS, opts.streams ?? 1));
    for (let i = 0; i < streams; i++) this.lanes.push(new Lane(i));
    this.L = this.lanes[0];
    this.splitMin = opts.splitMin ?? DEFAULT_SPLIT_MIN;
    this.pieceBytes = Math.max(this.chunk, opts.pieceBytes ?? DEFAULT_PIECE_BYTES);
    // Each stream may hold an equal share of the buffers (so none starves the others).
    const n = Math.max(2, opts.buffers ?? 8, 4 * streams);
    this.laneCap = streams === 1 ? n : Math.max(2, Math.floor(n / streams));
    for (let i = 0; i < n; i++) this.free.push(new OutBuf(pinned(this.bufSize)));
    this.ctl = pinned(4096);
  }

  /** The largest send() this engine makes (sizes the channel's sealing buffers). */
  get maxSend(): number {
    return this.bufSize;
  }

  /**
   * Starts (or, after a re-key, continues) on `channel`. `continueToken` (re-key) is sent
   * first, as the CONTINUE frame the receiver checks.
   */
  attach(channel: Channel, continueToken?: Uint8Array): void {
    this.channel = channel;
    this.lanes[0].channel = channel;
    this.frames = new FrameReader({ direction: "to-sender", copyPayloads: true });
    this.peerClosed = false;
    this.rekeyWanted = false;
    this.rekeyPhase = "none";
    if (continueToken !== undefined) this.sendControl(encodeMessage({ type: "continue", token: continueToken }));
    channel.startReceive(this);
    this.pump();
  }

  /**
   * Starts (or, after its key was used up, continues) data stream `index` on `channel`:
   * JOIN with `token` first, then DATA and HOLE of pieces. The receiver sends nothing on
   * it; a close or error from its side fails the session.
   */
  attachLane(index: number, channel: Channel, token: Uint8Array): void {
    const lane = this.lanes[index];
    lane.channel = channel;
    lane.replace = false;
    const frame = encodeMessage({ type: "join", token });
    const buf = pinned(frame.length);
    buf.u8.set(frame);
    channel.send(buf.u8, buf.addr, frame.length, false);
    channel.startReceive({
      onData: (chunk) => {
        this.fail(new ProtocolError("frame", "the receiver sent data on a data stream"));
        return chunk.length;
      },
      onClose: () => this.laneLost(lane, undefined),
      onError: (e) => this.laneLost(lane, e),
    });
    this.pump();
  }

  private laneLost(lane: Lane, e: Error | undefined): void {
    if (lane.done || lane.replace || this.finished) return;
    // The receiver usually said why on the control connection (ERROR): give it a moment.
    this.loop.after(1000, () => this.fail(e instanceof ProtocolError ? e : new ProtocolError("peer", "the receiver closed a data stream during the transfer")));
  }

  /** A data stream whose connection must be replaced (key nearly used up), or -1. */
  get laneToReplace(): number {
    for (const l of this.lanes) if (l.replace && l.channel !== undefined && l.channel.sendIdle) return l.index;
    return -1;
  }

  /** Pieces of split files wait for a stream (another data stream would help). */
  get piecesQueued(): boolean {
    return this.pieces.length > 0;
  }

  /** The channels of all connections now open (for idle checks, progress and teardown). */
  get channels(): Channel[] {
    const out: Channel[] = [];
    for (const l of this.lanes) if (l.channel !== undefined) out.push(l.channel);
    return out;
  }

  /** Every entry of the tree has been announced (the totals in stats are final). */
  get listingDone(): boolean {
    return this.scanDone;
  }

  /** The transfer is over: REPORT received (or a failure). */
  get finished(): boolean {
    return this.error !== undefined || this.report !== undefined;
  }

  // ---------------------------------------------------------------------------------
  // ChannelSink: what the receiver says (REPORT, ERROR)

  onData(chunk: Uint8Array): number {
    let msgs: WireMessage[];
    try {
      // A re-run's answers are mostly SKIPs: whole ones are taken here without the
      // general reader's objects; anything else (or a frame cut by the chunk) goes to it.
      // The same for a fresh transfer's WANTs from offset 0 (no prefix hash).
      let p = 0;
      while (this.frames.bufferedBytes === 0 && this.error === undefined && p + SKIP_FRAME <= chunk.length
        && chunk[p + 1] === 0 && chunk[p + 2] === 0 && chunk[p + 3] === 0) {
        const id = ((chunk[p + 5] << 24) | (chunk[p + 6] << 16) | (chunk[p + 7] << 8) | chunk[p + 8]) >>> 0;
        if (chunk[p] === MSG_SKIP && chunk[p + 4] === 4) {
          p += SKIP_FRAME;
          const f = this.answered(id, "SKIP");
          this.stats.unchanged++;
          this.stats.settledBytes += f.size;
          this.dropFile(f);
        } else if (chunk[p] === MSG_WANT && chunk[p + 4] === WANT_ALL_FRAME - FRAME_HEADER_LENGTH && p + WANT_ALL_FRAME <= chunk.length && zeros(chunk, p + 9, p + WANT_ALL_FRAME)) {
          p += WANT_ALL_FRAME;
          this.wanted(this.answered(id, "WANT"), 0, undefined);
        } else break;
      }
      msgs = this.frames.pushMessages(p === 0 ? chunk : chunk.subarray(p));
    } catch (e) {
      this.fail(e as Error);
      return chunk.length;
    }
    try {
      for (const m of msgs) {
        if (this.error !== undefined) break;
        if (m.type === "report") {
          if (!this.listEndSent) throw new ProtocolError("frame", "the receiver sent its REPORT before the end of the transfer");
          this.report = m;
        } else if (m.type === "error") {
          throw new ProtocolError("peer", `the receiver reported an error: ${displaySafe(m.message)}`);
        } else if (m.type === "want") {
          this.onWant(m);
        } else if (m.type === "skip") {
          const f = this.answered(m.id, "SKIP");
          this.stats.unchanged++;
          this.stats.settledBytes += f.size;
          this.dropFile(f);
        } else if (m.type === "keepalive") {
          // The receiver is hashing its copies; the bytes alone reset our idle timer.
        } else if (m.type === "deleted") {
          if (!this.sync.delete) throw new ProtocolError("frame", "DELETED from the receiver, but --delete was not asked for");
          if (this.report !== undefined) throw new ProtocolError("frame", "DELETED after the REPORT");
          this.stats.deleted++;
          this.onChange?.("delete", m.path);
        } else {
          throw new ProtocolError("frame", `unexpected ${(m as WireMessage).type.toUpperCase()} from the receiver`);
        }
      }
    } catch (e) {
      this.fail(e as Error);
      return chunk.length;
    }
    this.pump();
    return chunk.length;
  }

  /** The file a WANT or SKIP answers: announced and not answered yet; anything else is the receiver lying. */
  private answered(id: number, what: string): SrcFile {
    const f = this.asked.get(id);
    if (f === undefined) {
      throw new ProtocolError("frame", id > 0 && id < this.nextId
        ? `${what} for id ${id}, which is not a file waiting for an answer (answered twice, or not a file)`
        : `${what} for id ${id}, which was never announced`);
    }
    this.asked.delete(id);
    return f;
  }

  /**
   * Opens a file whose open the scanner deferred (its WANT came). False when it cannot be:
   * its failure is set and it goes as FILE_ABORT.
   */
  private openSrc(f: SrcFile): boolean {
    if (f.at !== undefined) {
      const fd = this.scanner.openFile(f.at);
      f.at = undefined;
      if (fd < 0) {
        f.failure = fd === -E.ESTALE
          ? { path: f.rel, code: "file-changed", message: `${f.rel}: replaced by another file while it was being sent; not sent` }
          : sendFailure(new SysError("open", -fd, f.rel), f.rel);
        return false;
      }
      f.fd = fd;
    }
    if (f.sparse) {
      f.sparse = false;
      f.segs = dataSegments(f.fd, f.size);
    }
    return true;
  }

  private onWant(m: WantMessage): void {
    const f = this.answered(m.id, "WANT");
    if (m.offset > BigInt(f.size)) {
      throw new ProtocolError("frame", `WANT for ${displaySafe(f.rel)} from offset ${m.offset}, beyond its ${f.size} bytes`);
    }
    this.wanted(f, Number(m.offset), m.prefixHash);
  }

  /** `f` is wanted from `offset` (at most its size), with the receiver's prefix hash when above 0. */
  private wanted(f: SrcFile, offset: number, prefixHash: Uint8Array | undefined): void {
    if (!this.sync.dryRun && !this.openSrc(f)) {
      // Nothing to split: a HOLE from the WANT offset (the receiver's stream is there) and
      // FILE_ABORT go on the control connection.
      f.piecesLeft = -1;
      f.pos = offset;
      this.ready.push(f);
      return;
    }
    if (this.sync.dryRun) {
      // Agreed: it would be sent. No data in a dry run.
      this.stats.files++;
      this.stats.bytes += f.size;
      this.stats.settledBytes += f.size;
      this.onChange?.("send", f.rel);
      this.dropFile(f);
      return;
    }
    if (offset > 0 && prefixHash !== undefined) {
      // Resume only if the receiver's prefix is ours, byte for byte (else restart from 0).
      const dup = offset > INLINE_HASH_MAX ? libc.fcntl(f.fd, F_DUPFD_CLOEXEC, 0) : -1;
      if (dup >= 0) {
        // A large prefix hashes on the pool; data of other files keeps going meanwhile.
        this.hashJobs++;
        this.verifying.add(f);
        hashPoolFor(this.loop.ring).submit(dup, offset, (r) => {
          this.hashJobs--;
          if (!this.verifying.delete(f) || this.error !== undefined) return;
          this.resumeFrom(f, offset, r instanceof Uint8Array && Buffer.from(r).equals(prefixHash));
          this.pump();
        });
        return;
      }
      const hex = sha256Fd(f.fd, offset, (this.hashBuf ??= new Uint8Array(1024 * 1024)));
      this.resumeFrom(f, offset, typeof hex === "string" && Buffer.from(hex, "hex").equals(prefixHash));
      return;
    }
    this.resumeFrom(f, 0, false);
  }

  /** `f` goes from `offset` when the receiver's prefix matched (`same`), else whole from 0. */
  private resumeFrom(f: SrcFile, offset: number, same: boolean): void {
    const restart = offset > 0 && !same;
    if (same) {
      f.pos = offset;
      f.resumed = true;
      this.stats.settledBytes += offset;
    }
    if (restart) f.piecesLeft = -1; // Restarted from 0: sent whole on the control connection (its first frame at 0 says so).
    this.stats.wantedBytes += f.size - f.pos;
    this.onChange?.("send", f.rel);
    this.ready.push(f);
  }

  /** A file that gets no data (SKIP, or a dry run): closed, out of the window. */
  private dropFile(f: SrcFile): void {
    f.ended = true;
    f.closed = true;
    this.openFiles--;
    this.closeSrc(f);
  }

  /** Closes a file's fd through the ring (no completion wanted), or gives back its unopened directory. */
  private closeSrc(f: SrcFile): void {
    if (f.at !== undefined) {
      this.scanner.release(f.at);
      f.at = undefined;
    }
    if (f.fd < 0) return;
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    prepClose(ring, sqe, f.fd);
    sqeSetFlags(ring, sqe, IOSQE.CQE_SKIP_SUCCESS);
    ring.setUserData(sqe, UNTRACKED);
    f.fd = -1;
  }

  onClose(clean: boolean): void {
    this.peerClosed = true;
    if (this.rekeyPhase !== "none") {
      this.maybeRekeyReady();
      return;
    }
    if (this.report === undefined) {
      this.fail(new ProtocolError("peer", clean
        ? "the receiver closed the connection before the end of the transfer"
        : "the connection was closed before the end of the transfer (no close_notify: truncated?)"));
    }
  }

  onError(e: Error): void {
    if (this.rekeyPhase === "closing" && !(e instanceof ProtocolError && e.kind !== "timeout")) {
      // The old connection going away while we hand over is expected.
      this.peerClosed = true;
      this.maybeRekeyReady();
      return;
    }
    if (e instanceof SysError && (e.code === "EPIPE" || e.code === "ECONNRESET") && this.error === undefined) {
      // The receiver went away. It usually said why (ERROR) just before: give that a
      // moment to arrive, so the user sees the reason, not "broken pipe".
      this.loop.after(1000, () => this.fail(new ProtocolError("peer", "the receiver closed the connection during the transfer")));
      return;
    }
    this.fail(e);
  }

  fail(e: Error): void {
    if (this.error === undefined && this.report === undefined) this.error = e;
  }

  // ---------------------------------------------------------------------------------
  // Filling buffers

  private takeBuf(): OutBuf | undefined {
    const L = this.L;
    if (L.cur !== undefined && !L.cur.closed) return L.cur;
    if (L.held >= this.laneCap) return undefined;
    const b = this.free.pop();
    if (b === undefined) return undefined;
    b.reset();
    L.cur = b;
    L.held++;
    return b;
  }

  private closeCur(): void {
    const L = this.L;
    const b = L.cur;
    if (b === undefined || b.closed) return;
    b.closed = true;
    L.cur = undefined;
    if (b.fill === 0) {
      this.free.push(b);
      L.held--;
      return;
    }
    L.closedBufs.push(b);
  }

  /**
   * A HOLE over [offset, offset + length) of file `id`: the bytes a failed file will never
   * send, so a receiver with data streams sees the file covered (docs/PROTOCOL.md 8.8).
   * False when the buffers are full (stall, and come back).
   */
  private putHole(id: number, offset: number, length: number): boolean {
    const b = this.room(HOLE_FRAME);
    if (b === undefined) return false;
    const hole = encodeMessage({ type: "hole", id, offset: BigInt(offset), length: BigInt(length) });
    b.mem.u8.set(hole, b.fill);
    b.fill += hole.length;
    return true;
  }

  /** Room for `n` bytes in the current buffer (opening one if needed); undefined = stall. */
  private room(n: number): OutBuf | undefined {
    let b = this.takeBuf();
    if (b === undefined) return undefined;
    if (b.fill + n > this.bufSize) {
      this.closeCur();
      b = this.takeBuf();
      if (b === undefined) return undefined;
    }
    return b;
  }

  private putFrame(bytes: Uint8Array): boolean {
    const b = this.room(bytes.length);
    if (b === undefined) return false;
    b.mem.u8.set(bytes, b.fill);
    b.fill += bytes.length;
    return true;
  }

  /** Frames the next pieces of the active file (or of one piece of it: `c`). Returns false when out of buffers. */
  private continueFile(f: SrcFile, c: Cursor = f): boolean {
    for (;;) {
      if (f.ended) return true;
      if (c !== f) {
        // A piece of a split file: done when framed to its end (a failed file's rest goes
        // as a HOLE: the receiver must see every byte covered, and discards the file).
        if (c.pos >= c.end) {
          if (--f.piecesLeft === 0) this.splitEnds.push(f);
          return true;
        }
        if (f.failure !== undefined) {
          if (!this.putHole(f.id, c.pos, c.end - c.pos)) return false;
          c.pos = c.end;
          continue;
        }
      } else if (f.failure !== undefined && f.pos < f.size) {
        // A failed file's unread rest (all of it when its open failed) goes as a HOLE, as a
        // split file's does: with data streams the receiver discards an aborted file only
        // once every byte of it is covered (docs/PROTOCOL.md 8.8), and a FILE_ABORT short of
        // bytes would read as a sender lying about the size.
        if (!this.putHole(f.id, f.pos, f.size - f.pos)) return false;
        f.pos = f.size;
        continue;
      } else if (f.failure !== undefined || f.pos >= f.size) {
        const b = this.room(END_FRAME);
        if (b === undefined) return false;
        const u8 = b.mem.u8;
        u8[b.fill] = f.failure !== undefined ? MSG_FILE_ABORT : MSG_FILE_END;
        u8[b.fill + 1] = 0;
        u8[b.fill + 2] = 0;
        u8[b.fill + 3] = 0;
        u8[b.fill + 4] = 4;
        b.view.setUint32(b.fill + 5, f.id);
        if (f.failure === undefined) b.ends.push({ at: b.fill, file: f });
        b.fill += END_FRAME;
        f.ended = true;
        this.maybeCloseFile(f);
        return true;
      }
      // Where is the next data, and is there a hole before it?
      let dataEnd = c.end;
      const segs = f.segs;
      if (segs !== null) {
        while (c.seg < segs.length && segs[c.seg + 1] <= c.pos) c.seg += 2;
        const start = c.seg < segs.length ? Math.min(c.end, Math.max(segs[c.seg], c.pos)) : c.end;
        if (start > c.pos) {
          const b = this.room(HOLE_FRAME);
          if (b === undefined) return false;
          const hole = encodeMessage({ type: "hole", id: f.id, offset: BigInt(c.pos), length: BigInt(start - c.pos) });
          b.mem.u8.set(hole, b.fill);
          b.fill += hole.length;
          c.pos = start;
          continue;
        }
        dataEnd = Math.min(c.end, segs[c.seg + 1]);
      }
      const want = Math.min(dataEnd - c.pos, this.chunk);
      let b = this.takeBuf();
      if (b === undefined) return false;
      let space = this.bufSize - b.fill - DATA_HDR - END_FRAME;
      if (space < want && space < MIN_CHUNK) {
        this.closeCur();
        b = this.takeBuf();
        if (b === undefined) return false;
        space = this.bufSize - b.fill - DATA_HDR - END_FRAME;
      }
      const len = Math.min(want, space);
      const u8 = b.mem.u8;
      const v = b.view;
      const at = b.fill;
      u8[at] = MSG_DATA;
      v.setUint32(at + 1, DATA_FIELDS_LENGTH + len);
      v.setUint32(at + 5, f.id);
      v.setBigUint64(at + 9, BigInt(c.pos));
      b.fill += DATA_HDR + len;
      f.bytes += len;
      this.startRead(f, b, at + DATA_HDR, len, c.pos);
      c.pos += len;
    }
  }

  private startRead(f: SrcFile, b: OutBuf, at: number, len: number, off: number): void {
    const op = this.readPool.pop() ?? new ReadOp(this);
    op.file = f;
    op.buf = b;
    op.at = at;
    op.len = len;
    op.off = off;
    op.done = 0;
    b.reads++;
    f.readsInFlight++;
    this.submitRead(op);
  }

  private submitRead(op: ReadOp): void {
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    prepRead(ring, sqe, op.file.fd, op.buf.mem.addr + op.at + op.done, op.len - op.done, op.off + op.done);
    ring.setUserData(sqe, ring.track(op, 0));
  }

  onRead(op: ReadOp, res: number): void {
    const f = op.file;
    if (res < 0 && (res === -E.EINTR || res === -E.EAGAIN)) return this.submitRead(op);
    if (res > 0) {
      op.done += res;
      if (op.done < op.len) return this.submitRead(op);
    } else if (f.failure === undefined) {
      f.failure = res === 0
        ? { path: f.rel, code: "file-changed", message: `${f.rel}: the file shrank while it was being sent; not sent` }
        : sendFailure(new SysError("read", -res, f.rel), f.rel);
    }
    if (op.done < op.len) op.buf.mem.u8.fill(0, op.at + op.done, op.at + op.len);
    op.buf.reads--;
    f.readsInFlight--;
    this.readPool.push(op);
    this.maybeCloseFile(f);
    this.pump();
  }

  private maybeCloseFile(f: SrcFile): void {
    if (f.closed || f.readsInFlight > 0 || !(f.ended || f.failure !== undefined)) return;
    if (!f.ended) return;
    f.closed = true;
    this.openFiles--;
    if (this.active === f) this.active = undefined;
    this.closeSrc(f);
    if (f.failure !== undefined) this.failures.push(f.failure);
    else {
      this.stats.files++;
      this.stats.bytes += f.bytes;
      if (f.resumed) this.stats.resumed++;
    }
  }

  /** Frames one walk item. Returns false when it could not (out of buffers): retry later. */
  private emit(item: ScanItem): boolean {
    switch (item.kind) {
      case "failure":
        this.failures.push(sendFailure(item.error ?? new Error("unknown error"), item.rel));
        return true;
      case "special":
        this.stats.skipped++;
        this.skippedPaths.push(`${item.rel} (${item.special ?? "special file"})`);
        return true;
      case "dir":
        return this.emitEntry(item, { type: "entry", kind: "dir", id: this.nextId, mode: item.mode, mtimeNs: item.mtimeNs, size: 0n, path: item.rel }, () => this.stats.dirs++);
      case "symlink":
        return this.emitEntry(item, {
          type: "entry", kind: "symlink", id: this.nextId, mode: item.mode, mtimeNs: item.mtimeNs, size: 0n, path: item.rel,
          linkTarget: item.target as Uint8Array,
        }, () => this.stats.symlinks++);
      case "file":
        return this.emitFile(item);
    }
  }

  private emitEntry(item: ScanItem, msg: WireMessage, counted: () => void): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(msg);
    } catch (e) {
      this.scanner.discard(item);
      this.failures.push(sendFailure(e as Error, item.rel));
      return true;
    }
    if (!this.putFrame(bytes)) return false;
    this.nextId++;
    counted();
    return true;
  }

  private emitFile(item: ScanItem): boolean {
    // Only a file with other names needs its identity remembered (a string per file otherwise).
    const key = item.nlink > 1 ? `${item.dev}:${item.ino}` : "";
    if (item.nlink > 1) {
      const target = this.linkIds.get(key);
      if (target !== undefined) {
        // Another name of a file already sent: a hard link; its fd is not needed.
        const done = this.emitEntry({ ...item, fd: -1, at: undefined }, {
          type: "entry", kind: "hardlink", id: this.nextId, mode: item.mode, mtimeNs: item.mtimeNs, size: 0n, path: item.rel, linkId: target,
        }, () => this.stats.hardlinks++);
        if (done) {
          this.hashes.delete(item);
          this.scanner.discard(item);
        }
        return done;
      }
    }
    const id = this.nextId;
    // The path comes from the file system: components are non-empty, never "." or "..",
    // without "/" or NUL, valid UTF-8 (the walk checked); only the total length can be
    // out of bounds. So the ENTRY is written straight into the buffer, unchecked.
    const pathLen = utf8.encodeInto(item.rel, this.pathScratch).written ?? 0;
    if (pathLen > MAX_PATH_BYTES || pathLen === 0 || item.rel.length * 3 + 3 > this.pathScratch.length) {
      this.scanner.discard(item);
      this.failures.push({ path: item.rel, code: "bad-path", message: `${item.rel}: the path is longer than ${MAX_PATH_BYTES} bytes` });
      return true;
    }
    const entryLen = FRAME_HEADER_LENGTH + ENTRY_FIXED + pathLen;
    const b = this.room(entryLen + (this.sync.checksum ? CHECKSUM_FRAME : 0));
    if (b === undefined) return false;
    let hash: Uint8Array | undefined;
    const pre = this.hashes.get(item);
    if (pre !== undefined) {
      // Hashed on the pool while earlier entries were listed.
      this.hashes.delete(item);
      if (pre instanceof SysError) {
        this.scanner.discard(item);
        this.failures.push(sendFailure(pre, item.rel));
        return true;
      }
      hash = pre;
    } else if (this.sync.checksum) {
      // Small: hashed here; the receiver compares it with what it has (opened now, not deferred).
      if (item.fd < 0 && item.at !== undefined) {
        const fd = this.scanner.openFile(item.at);
        item.at = undefined;
        if (fd < 0) {
          this.failures.push(sendFailure(new SysError("open", -fd, item.rel), item.rel));
          return true;
        }
        item.fd = fd;
      }
      const hex = sha256Fd(item.fd, item.size, (this.hashBuf ??= new Uint8Array(1024 * 1024)));
      if (typeof hex === "number") {
        this.scanner.discard(item);
        this.failures.push(sendFailure(new SysError("read", -hex, item.rel), item.rel));
        return true;
      }
      hash = Buffer.from(hex, "hex");
    }
    const u8 = b.mem.u8;
    const v = b.view;
    const at = b.fill;
    u8[at] = MSG_ENTRY;
    v.setUint32(at + 1, ENTRY_FIXED + pathLen);
    v.setUint32(at + 5, id);
    u8[at + 9] = 1; // kind: file
    v.setUint32(at + 10, item.mode);
    v.setBigInt64(at + 14, item.mtimeNs);
    v.setBigUint64(at + 22, BigInt(item.size));
    v.setUint16(at + 30, pathLen);
    u8.set(this.pathScratch.subarray(0, pathLen), at + 32);
    b.fill += entryLen;
    if (hash !== undefined) {
      u8[b.fill] = MSG_CHECKSUM;
      v.setUint32(b.fill + 1, 4 + CONTENT_HASH_LENGTH);
      v.setUint32(b.fill + 5, id);
      u8.set(hash, b.fill + 9);
      b.fill += CHECKSUM_FRAME;
    }
    this.nextId++;
    if (item.nlink > 1) this.linkIds.set(key, id);
    const f = new SrcFile(id, item.fd, item.rel, item.size);
    f.at = item.at;
    f.sparse = item.size > 0 && item.blocks * 512 < item.size;
    if (f.sparse && f.fd >= 0) {
      f.sparse = false;
      f.segs = dataSegments(f.fd, f.size);
    }
    this.openFiles++;
    this.stats.announcedFiles++;
    this.stats.announcedBytes += item.size;
    // Its data goes when the receiver WANTs it.
    this.asked.set(id, f);
    return true;
  }

  private pending: ScanItem | undefined;

  /**
   * --checksum: the next item to list, in scan order, once its hash is in; null at the end
   * of the walk, undefined while the head still hashes. Scanning runs ahead (bounded by
   * HASH_LOOKAHEAD and the open-file window) so that large files hash on the pool, several
   * at once, while the entries before them are listed and their data flows.
   */
  private nextHashed(): ScanItem | null | undefined {
    const look = this.look;
    let jobs = 0;
    for (const a of look) if (!a.ready) jobs++;
    while (!this.lookEnded && look.length < HASH_LOOKAHEAD && jobs < HASH_JOBS_AHEAD && this.openFiles + look.length < this.maxOpen) {
      const item = this.scanner.next();
      if (item === null) {
        this.lookEnded = true;
        break;
      }
      const a: Ahead = { item, ready: true };
      if (item.kind === "file" && item.size > INLINE_HASH_MAX && this.hashOnPool(a)) jobs++;
      look.push(a);
    }
    const head = look[0];
    if (head === undefined) return this.lookEnded ? null : undefined;
    if (!head.ready) return undefined;
    look.shift();
    return head.item;
  }

  /** Starts `a`'s hash on the pool (on a descriptor of its own); false when it is left to emitFile. */
  private hashOnPool(a: Ahead): boolean {
    const item = a.item;
    if (item.fd < 0 && item.at !== undefined) {
      const fd = this.scanner.openFile(item.at);
      item.at = undefined;
      if (fd < 0) {
        this.hashes.set(item, new SysError("open", -fd, item.rel));
        return false;
      }
      item.fd = fd;
    }
    const dup = libc.fcntl(item.fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return false;
    a.ready = false;
    this.hashJobs++;
    hashPoolFor(this.loop.ring).submit(dup, item.size, (r) => {
      this.hashJobs--;
      a.ready = true;
      this.hashes.set(item, typeof r === "number" ? new SysError("read", -r, item.rel) : r);
      if (this.error === undefined) this.pump();
    });
    return true;
  }

  /** Hashes of ours running on the pool (the receiver hears KEEPALIVEs meanwhile). */
  get hashing(): boolean {
    return this.hashJobs > 0;
  }

  /** KEEPALIVE to the receiver while we hash and send nothing else (its idle timer must not fire). */
  keepalive(now: number, intervalMs: number): void {
    const ch = this.channel;
    if (this.hashJobs === 0 || this.error !== undefined || ch === undefined || this.rekeyPhase !== "none") return;
    if (!ch.sendIdle || now - ch.lastSendProgress < intervalMs) return;
    this.L = this.lanes[0];
    if (this.putFrame(KEEPALIVE_FRAME)) this.dispatch();
  }

  /** Fills buffers as far as memory and open-file limits allow, and hands full ones to the channel. */
  pump(): void {
    if (this.inPump) return;
    this.inPump = true;
    try {
      this.fill();
      this.dispatch();
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.inPump = false;
    }
  }

  private fill(): void {
    if (this.error !== undefined || this.channel === undefined) return;
    this.L = this.lanes[0];
    this.fillControl();
    const ends = this.splitEnds.length;
    for (let i = 1; i < this.lanes.length; i++) {
      const lane = this.lanes[i];
      if (lane.channel === undefined || lane.done) continue;
      this.L = lane;
      this.fillPieces(lane);
      if (this.listEndQueued && lane.piece === undefined && this.pieces.length === 0 && lane.cur === undefined && lane.closedBufs.length === 0 && !lane.replace && lane.channel.sendIdle) {
        // Nothing more for this stream: end it (the receiver sees close_notify, or EOF in plaintext).
        lane.done = true;
        if (lane.channel.tx === "plain") lane.channel.shutdownWrite();
        else lane.channel.sendCloseNotify();
      }
    }
    this.L = this.lanes[0];
    // Pieces finished on the streams just now: their FILE_ENDs (and perhaps LIST_END).
    if (this.splitEnds.length > ends) this.fillControl();
  }

  /** A stream frames pieces of split files while it has buffers. Returns false when out of them. */
  private fillPieces(lane: Lane): boolean {
    for (;;) {
      const p = lane.piece ?? this.pieces.shift();
      if (p === undefined) {
        // Nothing queued: do not let the last pieces idle in a half-full buffer.
        if (lane.cur !== undefined) this.closeCur();
        return true;
      }
      lane.piece = p;
      if (!this.continueFile(p.file, p)) return false;
      lane.piece = undefined;
    }
  }

  /** Splits a WANTed file into pieces for the streams, or false to send it whole here. */
  private split(f: SrcFile): boolean {
    if (this.lanes.length < 2 || f.piecesLeft < 0 || f.size - f.pos < this.splitMin) {
      if (f.piecesLeft < 0) f.piecesLeft = 0;
      return false;
    }
    for (let at = f.pos; at < f.size; at += this.pieceBytes) {
      this.pieces.push(new Piece(f, at, Math.min(f.size, at + this.pieceBytes)));
      f.piecesLeft++;
    }
    f.pos = f.size;
    return true;
  }

  private fillControl(): void {
    // FILE_END of split files whose pieces are all framed (on whichever streams).
    while (this.splitEnds.length > 0) {
      const f = this.splitEnds[0];
      const b = this.room(END_FRAME);
      if (b === undefined) return;
      this.splitEnds.shift();
      const u8 = b.mem.u8;
      u8[b.fill] = f.failure !== undefined ? MSG_FILE_ABORT : MSG_FILE_END;
      b.view.setUint32(b.fill + 1, 4);
      b.view.setUint32(b.fill + 5, f.id);
      // Patched to FILE_ABORT if a read on another stream fails before this goes out.
      b.ends.push({ at: b.fill, file: f });
      b.waitFor.push(f);
      b.fill += END_FRAME;
      f.ended = true;
      this.maybeCloseFile(f);
    }
    if (!this.rootSent) {
      const r = this.scanner.root;
      if (r.isDir && !this.putFrame(encodeMessage({ type: "root", mode: r.mode, mtimeNs: r.mtimeNs }))) return;
      this.rootSent = true;
    }
    // --delete: the receiver protects what these patterns exclude.
    const rules = this.filterRules;
    while (rules !== undefined && this.filtersSent < rules.exclude.length + rules.include.length) {
      const i = this.filtersSent;
      const exclude = i < rules.exclude.length;
      const pattern = exclude ? rules.exclude[i] : rules.include[i - rules.exclude.length];
      if (!this.putFrame(encodeMessage({ type: "filter", rule: exclude ? "exclude" : "include", pattern }))) return;
      this.filtersSent++;
    }
    for (;;) {
      if (!this.putListed()) return;
      if (this.active !== undefined && !this.active.ended) {
        if (!this.continueFile(this.active)) return;
        continue;
      }
      this.active = undefined;
      // WANTed files first (they hold fds and the receiver waits for them), then more ENTRYs.
      const next = this.ready.shift();
      if (next !== undefined) {
        if (!this.split(next)) this.active = next;
        continue;
      }
      // Nothing of its own to do: the control connection takes pieces too.
      if ((this.scanDone || this.openFiles >= this.maxOpen) && (this.L.piece !== undefined || this.pieces.length > 0)) {
        if (!this.fillPieces(this.L)) return;
        if (this.splitEnds.length > 0) return this.fillControl();
      }
      if (this.scanDone) break;
      if (this.openFiles >= this.maxOpen) return;
      let item: ScanItem | null | undefined = this.pending;
      this.pending = undefined;
      if (item === undefined) {
        item = this.sync.checksum ? this.nextHashed() : this.scanner.next();
        // Waiting for a hash: its completion pumps again.
        if (item === undefined) return;
      }
      if (item === null) {
        this.scanDone = true;
        break;
      }
      if (!this.emit(item)) {
        this.pending = item;
        return;
      }
    }
    if (!this.putListed()) return;
    if (!this.listEndQueued && this.openFiles === 0) {
      // Entries that could not be read are not in the listing: with --delete the receiver
      // must then not remove their copies (as rsync skips deletion after I/O errors).
      this.listingIncomplete = this.sync.delete && this.failures.length > 0;
      if (!this.putFrame(encodeMessage({ type: "list-end", incomplete: this.listingIncomplete }))) return;
      this.listEndQueued = true;
      this.closeCur();
    }
  }

  /**
   * LISTED, as soon as every ENTRY is out: the receiver learns the totals for its ETA long
   * before LIST_END, which waits for the last file's data (docs/PROTOCOL.md 8.3g). Optional:
   * a tree whose byte count a receiver cannot add up exactly (2^53 and more) goes without.
   * False when there is no room for it yet.
   */
  private putListed(): boolean {
    if (!this.scanDone || this.listedSent) return true;
    const s = this.stats;
    if (Number.isSafeInteger(s.announcedBytes) && !this.putFrame(encodeMessage({ type: "listed", files: s.announcedFiles, bytes: s.announcedBytes }))) return false;
    this.listedSent = true;
    return true;
  }

  /** Hands finished buffers to the channels in order; partial buffers too when one would idle. */
  private dispatch(): void {
    for (const lane of this.lanes) {
      this.L = lane;
      this.dispatchLane(lane);
    }
    this.L = this.lanes[0];
  }

  private dispatchLane(lane: Lane): void {
    const ch = lane.channel;
    if (ch === undefined || lane.replace || lane.done || (lane.index === 0 && this.rekeyPhase !== "none")) return;
    for (;;) {
      if (lane.closedBufs.length === 0 && lane.cur !== undefined && lane.cur.fill > 0 && ch.sendIdle && lane.cur.reads === 0) {
        // Nothing else to send right now: do not let the connection idle behind a half-full buffer.
        this.closeCur();
      }
      const b = lane.closedBufs[0];
      if (b === undefined || b.reads > 0) return;
      // A split file's FILE_END waits for the reads of its pieces (a failure turns it into FILE_ABORT).
      for (const f of b.waitFor) if (f.readsInFlight > 0) return;
      if (ch.queuedBytes >= 2 * this.bufSize) return;
      if (ch.recordsRemaining() < Channel.recordsFor(b.fill) + REKEY_RESERVE) {
        if (lane.index === 0) this.startRekey();
        else {
          // A data stream's key is nearly used up: it ends here; the session opens a new one.
          lane.replace = true;
          ch.sendCloseNotify();
        }
        return;
      }
      lane.closedBufs.shift();
      for (const e of b.ends) if (e.file.failure !== undefined) b.mem.u8[e.at] = MSG_FILE_ABORT;
      const last = lane.index === 0 && this.listEndQueued && lane.closedBufs.length === 0 && (lane.cur === undefined || lane.cur.fill === 0);
      // MSG_MORE only when another buffer is ready right behind: ENTRYs waiting for their
      // WANT/SKIP must not sit in the kernel's cork (up to 200 ms) while the receiver waits.
      const more = !last && lane.closedBufs.length > 0;
      ch.send(b.mem.u8, b.mem.addr, b.fill, more, () => {
        this.free.push(b);
        lane.held--;
        this.pump();
      });
      if (last) {
        this.listEndSent = true;
        trace("send: LIST_END handed to the connection");
      }
    }
  }

  /** An ERROR frame after whatever is queued (a fatal problem on this side, e.g. SIGINT). */
  sendError(message: string): void {
    if (this.channel === undefined) return;
    try {
      const frame = encodeMessage({ type: "error", message });
      const buf = pinned(frame.length);
      buf.u8.set(frame);
      this.channel.send(buf.u8, buf.addr, frame.length, false);
    } catch {
      // The connection is gone already.
    }
  }

  /** A small control frame (CONTINUE, REKEY) in its own slot of the control page. */
  private sendControl(frame: Uint8Array): void {
    const ch = this.channel as Channel;
    // CONTINUE and REKEY can both be queued on one connection: never share their bytes.
    const at = frame[0] === MSG_REKEY ? 2048 : 0;
    this.ctl.u8.set(frame, at);
    ch.send(this.ctl.u8.subarray(at), this.ctl.addr + at, frame.length, false);
  }

  /** Waiting for the receiver to close the old connection of a re-key. */
  get rekeying(): boolean {
    return this.rekeyPhase !== "none";
  }

  // ---------------------------------------------------------------------------------
  // Re-keying (docs/PROTOCOL.md section 12)

  private startRekey(): void {
    this.rekeyPhase = "closing";
    const ch = this.channel as Channel;
    this.sendControl(encodeMessage({ type: "rekey" }));
    ch.sendCloseNotify();
    this.maybeRekeyReady();
  }

  /** Called on progress: once our REKEY is out and the receiver has closed its side, the session may switch. */
  maybeRekeyReady(): void {
    const ch = this.channel;
    if (this.rekeyPhase !== "closing" || ch === undefined) return;
    if (ch.sendFailure !== undefined && !this.peerClosed) return;
    if (!ch.sendIdle || !this.peerClosed) return;
    this.rekeyWanted = true;
  }

  /** Whether `ch` still has work in flight (the session drains it before closing). */
  get sendPending(): boolean {
    const ch = this.channel;
    return ch !== undefined && !ch.sendIdle;
  }

  /** Releases fds after a failure (reads must have drained: the loop runs until readsInFlight is 0). */
  abortFiles(): void {
    this.scanner.close();
    const split = new Set<SrcFile>();
    for (const p of this.pieces) split.add(p.file);
    for (const l of this.lanes) if (l.piece !== undefined) split.add(l.piece.file);
    for (const f of this.splitEnds) split.add(f);
    for (const f of [...this.asked.values(), ...this.ready, ...split]) if (!f.closed && f.readsInFlight === 0) {
      f.closed = true;
      if (f.fd >= 0) libc.close(f.fd);
      f.fd = -1;
      f.at = undefined; // The scanner closed its directory.
    }
    this.asked.clear();
    this.ready.length = 0;
    this.pieces.length = 0;
    this.splitEnds.length = 0;
    if (this.pending !== undefined && this.pending.fd >= 0) libc.close(this.pending.fd);
    this.pending = undefined;
    // Scanned ahead for hashing (the pool's jobs have descriptors of their own).
    for (const a of this.look) if (a.item.fd >= 0) libc.close(a.item.fd);
    this.look.length = 0;
    for (const f of this.verifying) if (f.fd >= 0 && f.readsInFlight === 0) libc.close(f.fd);
    this.verifying.clear();
  }

  /** Reads still in flight (buffers cannot be released before they complete). */
  get readsInFlight(): number {
    let n = 0;
    for (const l of this.lanes) {
      for (const b of l.closedBufs) n += b.reads;
      if (l.cur !== undefined) n += l.cur.reads;
    }
    return n;
  }
}

/**
 * Files announced and not finished at once (each holds an fd until its WANT/SKIP and its
 * data are done): the want-mode window. Larger means fewer round trips per file on a
 * distant link (1000 files per RTT); bounded by a quarter of RLIMIT_NOFILE (Bun raises the
 * soft limit to the hard one) and kept under the receiver's 1024 files open at once.
 */
export function defaultWindow(): number {
  let nofile = 1024;
  try {
    const line = require("node:fs").readFileSync("/proc/self/limits", "utf8").split("\n").find((l: string) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s+/)[3]);
    if (Number.isFinite(soft) && soft > 0) nofile = soft;
  } catch {
    // No procfs: the conservative default.
  }
  return Math.max(64, Math.min(1000, Math.floor(nofile / 4)));
}

function sendFailure(e: Error, rel: string): SendFailure {
  if (e instanceof SysError) return { path: rel, code: e.code, message: e.message };
  if (e instanceof ProtocolError) return { path: rel, code: e.kind === "path" ? "bad-path" : e.kind, message: `${rel}: ${e.message}` };
  return { path: rel, code: "error", message: e.message };
}

/** Data segments of a sparse file, [start, end) pairs flattened; one segment on any error. */
export function dataSegments(fd: number, size: number): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < size) {
    const start = libc.lseek(fd, pos, SEEK.DATA);
    if (start < 0) {
      if (errno() === E.ENXIO) break;
      return [0, size];
    }
    if (start >= size) break;
    let end = libc.lseek(fd, start, SEEK.HOLE);
    if (end < 0) return [0, size];
    if (end > size) end = size;
    out.push(start, end);
    pos = end;
  }
  return out;
}
