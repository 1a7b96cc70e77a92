/**
 * Frames and messages of the data stream that runs inside the TLS records after the
 * handshake, plus the receiver's path and link-target rules.
 *
 * Owns: the byte layout of every message (docs/PROTOCOL.md section 8), strict decoding,
 * incremental framing with bounded memory, and `checkRelativePath`, the gate every path
 * from the network passes before the receiver touches the file system.
 *
 * Must never: trust a length before checking it against a hard limit, buffer more than one
 * frame of peer data, follow or interpret a symlink target, return a path that could
 * escape the destination (absolute, "..", empty or "." components, NUL), keep setuid,
 * setgid or sticky bits from the network, or throw anything but ProtocolError on peer
 * input. No I/O, no printing.
 */
import { ProtocolError } from "../errors.ts";

// ---------------------------------------------------------------------------------------
// Limits

/** type u8 | payload length u32 BE */
export const FRAME_HEADER_LENGTH = 5;
/** Largest payload of any frame: a 1 MiB DATA chunk plus room for its fields. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024 + 64;
/** Largest DATA chunk a sender may put in one frame. */
export const MAX_DATA_CHUNK = 1024 * 1024;
/** DATA fields before the bytes: id u32 | offset u64. */
export const DATA_FIELDS_LENGTH = 12;
export const MAX_PATH_BYTES = 4096;
export const MAX_COMPONENT_BYTES = 255;
/** Linux PATH_MAX minus the NUL. */
export const MAX_LINK_TARGET_BYTES = 4095;
/** Sizes and offsets above 2^62 are refused: no file system here gets near it. */
export const MAX_FILE_SIZE = 1n << 62n;
export const MAX_REPORT_FAILURES = 100;
export const MAX_TEXT_BYTES = 1024;
export const MAX_CODE_BYTES = 32;
export const PREFIX_HASH_LENGTH = 32;
/** CONTINUE carries a 32-byte token proving the new connection continues the old session. */
export const CONTINUE_TOKEN_LENGTH = 32;
/** SHA-256 of a file's content (CHECKSUM frame). */
export const CONTENT_HASH_LENGTH = 32;
/** FILTER: longest pattern, and most FILTER frames in one session. */
export const MAX_PATTERN_BYTES = 4096;
export const MAX_FILTERS = 1024;

// ---------------------------------------------------------------------------------------
// HELLO flags (docs/PROTOCOL.md 3.2): what the sender asks for, bound into the keys.

/** This connection continues a session whose key was used up (section 12). */
export const FLAG_CONTINUATION = 0x1;
/** The sender streams data without waiting for WANT/SKIP, the receiver sends neither. */
export const FLAG_PUSH = 0x2;
/** Want mode: compare by SHA-256 of the content (CHECKSUM frame after each file ENTRY). */
export const FLAG_CHECKSUM = 0x4;
/** Want mode: WANT every file, whatever DST holds. */
export const FLAG_IGNORE_TIMES = 0x8;
/** Want mode: after LIST_END the receiver removes what the listing did not name (DELETED frames). */
export const FLAG_DELETE = 0x10;
/** Want mode: agree on what would change, move no file data, change nothing. */
export const FLAG_DRY_RUN = 0x20;
/** Connection 0 of a session with data streams (send -j N > 1): file data may arrive on any stream, in any order (section 8.8). */
export const FLAG_STREAMS = 0x40;
/** This connection is a data stream of a live session: its first frame is JOIN (section 8.8). */
export const FLAG_JOIN = 0x80;
/** Every bit a version 1 receiver accepts from a sender. */
export const SENDER_FLAGS = 0xff;

/** The sync options a sender asks for through its HELLO flags. */
export interface SyncOptions {
  checksum: boolean;
  ignoreTimes: boolean;
  delete: boolean;
  dryRun: boolean;
}

export function syncFlagBits(o: SyncOptions): number {
  return (o.checksum ? FLAG_CHECKSUM : 0) | (o.ignoreTimes ? FLAG_IGNORE_TIMES : 0) | (o.delete ? FLAG_DELETE : 0) | (o.dryRun ? FLAG_DRY_RUN : 0);
}

/**
 * The options a sender's flags ask for; ProtocolError("options") for a combination that
 * means nothing: any of them with PUSH (they need want mode), CHECKSUM with IGNORE_TIMES.
 */
export function syncOptionsOf(flags: number): SyncOptions & { push: boolean; streams: boolean } {
  const o = {
    push: (flags & FLAG_PUSH) !== 0,
    checksum: (flags & FLAG_CHECKSUM) !== 0,
    ignoreTimes: (flags & FLAG_IGNORE_TIMES) !== 0,
    delete: (flags & FLAG_DELETE) !== 0,
    dryRun: (flags & FLAG_DRY_RUN) !== 0,
    streams: (flags & FLAG_STREAMS) !== 0,
  };
  if ((flags & ~SENDER_FLAGS) !== 0) throw new ProtocolError("options", `unknown HELLO flags 0x${(flags & ~SENDER_FLAGS).toString(16)}`);
  if (o.push && (o.checksum || o.ignoreTimes || o.delete || o.dryRun)) {
    throw new ProtocolError("options", "HELLO flags CHECKSUM, IGNORE_TIMES, DELETE and DRY_RUN need want mode, not PUSH");
  }
  if (o.checksum && o.ignoreTimes) throw new ProtocolError("options", "HELLO flags CHECKSUM and IGNORE_TIMES contradict each other");
  if (o.streams && (o.push || o.dryRun)) throw new ProtocolError("options", "HELLO flag STREAMS needs want mode and file data (not PUSH, not DRY_RUN)");
  return o;
}

// ---------------------------------------------------------------------------------------
// Messages

export const MSG_ENTRY = 0x01;
export const MSG_DATA = 0x02;
export const MSG_FILE_END = 0x03;
export const MSG_LIST_END = 0x04;
export const MSG_HOLE = 0x05;
export const MSG_FILE_ABORT = 0x06;
export const MSG_REKEY = 0x07;
export const MSG_CONTINUE = 0x08;
export const MSG_ROOT = 0x09;
export const MSG_CHECKSUM = 0x0a;
export const MSG_FILTER = 0x0b;
export const MSG_JOIN = 0x0c;
export const MSG_LISTED = 0x0d;
export const MSG_WANT = 0x11;
export const MSG_SKIP = 0x12;
export const MSG_REPORT = 0x13;
export const MSG_DELETED = 0x14;
/** Either direction, empty: "still here" while this end hashes (hash-pool.ts) and sends nothing else. */
export const MSG_KEEPALIVE = 0x7e;
export const MSG_ERROR = 0x7f;

export type EntryKind = "file" | "dir" | "symlink" | "hardlink";
const KIND_ID: Readonly<Record<EntryKind, number>> = { file: 1, dir: 2, symlink: 3, hardlink: 4 };
const KIND_BY_ID: readonly (EntryKind | undefined)[] = [undefined, "file", "dir", "symlink", "hardlink"];

interface EntryCommon {
  type: "entry";
  /** Sender-chosen id, unique within the session; DATA/FILE_END/WANT/SKIP refer to it. */
  id: number;
  /** Permission bits only (≤ 0o7777 on the wire; decode keeps 0o777). */
  mode: number;
  /** Modification time, nanoseconds since the epoch (i64). */
  mtimeNs: bigint;
  /** File size (u64, ≤ 2^62); 0 for every other kind. */
  size: bigint;
  /** Relative path, already checked by checkRelativePath on decode. */
  path: string;
}
export interface FileEntry extends EntryCommon {
  kind: "file";
}
export interface DirEntry extends EntryCommon {
  kind: "dir";
}
export interface SymlinkEntry extends EntryCommon {
  kind: "symlink";
  /** Raw target bytes: stored with symlink(2), never followed or resolved here. */
  linkTarget: Uint8Array;
}
export interface HardlinkEntry extends EntryCommon {
  kind: "hardlink";
  /** Id of an earlier FILE entry this path links to (the receiver checks "earlier"). */
  linkId: number;
}
export type EntryMessage = FileEntry | DirEntry | SymlinkEntry | HardlinkEntry;

export interface DataMessage {
  type: "data";
  id: number;
  offset: bigint;
  bytes: Uint8Array;
}
export interface FileEndMessage {
  type: "file-end";
  id: number;
}
export interface ListEndMessage {
  type: "list-end";
  /**
   * The sender could not list everything (entries it failed to read are missing): the
   * receiver must not run its --delete pass, which would remove their copies.
   */
  incomplete?: boolean;
}
/** Bytes [offset, offset + length) of file `id` are zeros (a hole): nothing to write. */
export interface HoleMessage {
  type: "hole";
  id: number;
  offset: bigint;
  length: bigint;
}
/** The sender could not read file `id` completely: the receiver discards it. */
export interface FileAbortMessage {
  type: "file-abort";
  id: number;
}
/** The sender ends this connection and continues the session on a new one (fresh keys). */
export interface RekeyMessage {
  type: "rekey";
}
/** First frame on a connection that continues a session (HELLO flag CONTINUATION). */
export interface ContinueMessage {
  type: "continue";
  token: Uint8Array;
}
/** First frame on a data stream (HELLO flag JOIN): the token of the session's connection 0. */
export interface JoinMessage {
  type: "join";
  token: Uint8Array;
}
/**
 * Sender → receiver, optional, once: the listing is complete (no ENTRY follows); `files`
 * file ENTRYs (kind 1) were announced, `bytes` the sum of their sizes. Only for progress
 * (the receiver's ETA); the receiver checks both against what it counted.
 */
export interface ListedMessage {
  type: "listed";
  files: number;
  bytes: number;
}
/** Permission bits and mtime for the destination directory itself. */
export interface RootMessage {
  type: "root";
  mode: number;
  mtimeNs: bigint;
}
/** Receiver → sender: send file `id` from `offset`; prefixHash = SHA-256 of bytes [0, offset) it already has. */
export interface WantMessage {
  type: "want";
  id: number;
  offset: bigint;
  prefixHash?: Uint8Array;
}
/** Sender → receiver (HELLO flag CHECKSUM), right after a file ENTRY: SHA-256 of its content. */
export interface ChecksumMessage {
  type: "checksum";
  id: number;
  hash: Uint8Array;
}
/** Sender → receiver (with DELETE), before the first ENTRY: one --exclude/--include pattern. */
export interface FilterMessage {
  type: "filter";
  rule: "exclude" | "include";
  pattern: string;
}
/** Receiver → sender (with DELETE): `path` was (dry run: would be) removed from DST. */
export interface DeletedMessage {
  type: "deleted";
  /** As the receiver says; display with displaySafe(). */
  path: string;
}
/** Receiver → sender: file `id` is up to date, send nothing. */
export interface SkipMessage {
  type: "skip";
  id: number;
}
export interface ReportFailure {
  /** As the receiver knows it; display with displaySafe(). */
  path: string;
  /** errno name ("EACCES") or a short reason ("checksum-mismatch"): [A-Za-z0-9_.-]{1,32}. */
  code: string;
  message: string;
}
/** Receiver → sender, at the end: what landed and what failed. */
export interface ReportMessage {
  type: "report";
  files: number;
  bytes: bigint;
  /** At most MAX_REPORT_FAILURES; the rest are only counted in omittedFailures. */
  failures: ReportFailure[];
  omittedFailures: number;
}
/** Either direction: no content; the peer's idle timer sees traffic while this end is busy hashing. */
export interface KeepaliveMessage {
  type: "keepalive";
}
/** Either direction: fatal error, the connection closes after it. */
export interface ErrorMessage {
  type: "error";
  message: string;
}

export type SenderMessage =
  | EntryMessage | DataMessage | FileEndMessage | ListEndMessage | HoleMessage | FileAbortMessage | RekeyMessage | ContinueMessage | JoinMessage
  | RootMessage | ChecksumMessage | FilterMessage | ListedMessage | KeepaliveMessage | ErrorMessage;
export type ReceiverMessage = WantMessage | SkipMessage | ReportMessage | DeletedMessage | KeepaliveMessage | ErrorMessage;
export type WireMessage = SenderMessage | ReceiverMessage;

/** Entry layout: id(4) kind(1) mode(4) mtimeNs(8) size(8) pathLen(2) path ... */
const ENTRY_FIXED = 27;
const REPORT_FIXED = 22;
const REPORT_FAILURE_MAX = 2 + MAX_PATH_BYTES + 1 + MAX_CODE_BYTES + 2 + MAX_TEXT_BYTES;

interface TypeRule {
  name: string;
  from: "sender" | "receiver" | "both";
  min: number;
  max: number;
}

/** Checked on the frame header, before a single payload byte is buffered. */
const RULES: ReadonlyMap<number, TypeRule> = new Map<number, TypeRule>([
  [MSG_ENTRY, { name: "ENTRY", from: "sender", min: ENTRY_FIXED + 1, max: ENTRY_FIXED + MAX_PATH_BYTES + 2 + MAX_LINK_TARGET_BYTES }],
  [MSG_DATA, { name: "DATA", from: "sender", min: DATA_FIELDS_LENGTH, max: MAX_FRAME_PAYLOAD }],
  [MSG_FILE_END, { name: "FILE_END", from: "sender", min: 4, max: 4 }],
  [MSG_LIST_END, { name: "LIST_END", from: "sender", min: 0, max: 1 }],
  [MSG_HOLE, { name: "HOLE", from: "sender", min: 20, max: 20 }],
  [MSG_FILE_ABORT, { name: "FILE_ABORT", from: "sender", min: 4, max: 4 }],
  [MSG_REKEY, { name: "REKEY", from: "sender", min: 0, max: 0 }],
  [MSG_CONTINUE, { name: "CONTINUE", from: "sender", min: CONTINUE_TOKEN_LENGTH, max: CONTINUE_TOKEN_LENGTH }],
  [MSG_ROOT, { name: "ROOT", from: "sender", min: 12, max: 12 }],
  [MSG_JOIN, { name: "JOIN", from: "sender", min: CONTINUE_TOKEN_LENGTH, max: CONTINUE_TOKEN_LENGTH }],
  [MSG_CHECKSUM, { name: "CHECKSUM", from: "sender", min: 4 + CONTENT_HASH_LENGTH, max: 4 + CONTENT_HASH_LENGTH }],
  [MSG_FILTER, { name: "FILTER", from: "sender", min: 2, max: 1 + MAX_PATTERN_BYTES }],
  [MSG_LISTED, { name: "LISTED", from: "sender", min: 16, max: 16 }],
  [MSG_WANT, { name: "WANT", from: "receiver", min: 13, max: 13 + PREFIX_HASH_LENGTH }],
  [MSG_SKIP, { name: "SKIP", from: "receiver", min: 4, max: 4 }],
  [MSG_REPORT, { name: "REPORT", from: "receiver", min: REPORT_FIXED, max: REPORT_FIXED + MAX_REPORT_FAILURES * REPORT_FAILURE_MAX }],
  [MSG_DELETED, { name: "DELETED", from: "receiver", min: 1, max: MAX_PATH_BYTES }],
  [MSG_KEEPALIVE, { name: "KEEPALIVE", from: "both", min: 0, max: 0 }],
  [MSG_ERROR, { name: "ERROR", from: "both", min: 0, max: MAX_TEXT_BYTES }],
]);

// ---------------------------------------------------------------------------------------
// Text and path rules

const utf8 = new TextEncoder();
// fatal: invalid UTF-8 throws instead of becoming U+FFFD; ignoreBOM: a leading U+FEFF is
// part of the name, not a byte-order mark to drop.
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array, what: string, kind = "frame"): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new ProtocolError(kind, `${what} is not valid UTF-8`);
  }
}

/** UTF-8 bytes of a string, refusing lone surrogates (they would not round-trip). */
function encodeUtf8(s: string, what: string, kind: string): Uint8Array {
  if (!s.isWellFormed()) throw new ProtocolError(kind, `${what} is not valid Unicode (lone surrogate)`);
  return utf8.encode(s);
}

/**
 * The receiver's gate for every path from the network. Accepts only a relative path of
 * non-empty components, none "." or "..", no NUL, ≤ 4096 bytes in all and ≤ 255 per
 * component, that survives a strict UTF-8 round trip. "a..b" and "..a" are ordinary
 * names. Returns the path unchanged; throws ProtocolError("path").
 */
export function checkRelativePath(p: string): string {
  const shown = JSON.stringify(p.length > 80 ? `${p.slice(0, 80)}…` : p);
  if (p.length === 0) throw new ProtocolError("path", "empty path");
  if (p.includes("\0")) throw new ProtocolError("path", `path contains NUL: ${shown}`);
  if (p.startsWith("/")) throw new ProtocolError("path", `absolute path not allowed: ${shown}`);
  const bytes = encodeUtf8(p, `path ${shown}`, "path");
  if (bytes.length > MAX_PATH_BYTES) throw new ProtocolError("path", `path longer than ${MAX_PATH_BYTES} bytes: ${shown}`);
  if (decodeUtf8(bytes, `path ${shown}`, "path") !== p) throw new ProtocolError("path", `path does not round-trip through UTF-8: ${shown}`);
  for (const c of p.split("/")) {
    if (c === "") throw new ProtocolError("path", `empty path component: ${shown}`);
    if (c === "." || c === "..") throw new ProtocolError("path", `"${c}" component not allowed: ${shown}`);
    if (utf8.encode(c).length > MAX_COMPONENT_BYTES) {
      throw new ProtocolError("path", `path component longer than ${MAX_COMPONENT_BYTES} bytes: ${shown}`);
    }
  }
  return p;
}

/**
 * checkRelativePath for raw bytes off the wire, the same rules in one pass over the bytes
 * (it runs for every ENTRY: a million-file listing pays for it a million times). A strict
 * (fatal) UTF-8 decode is exactly the round trip: valid UTF-8 holds no lone surrogate, and
 * a leading U+FEFF is kept (ignoreBOM).
 */
export function checkRelativePathBytes(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n > MAX_PATH_BYTES) throw new ProtocolError("path", `path longer than ${MAX_PATH_BYTES} bytes`);
  if (n === 0) throw new ProtocolError("path", "empty path");
  if (bytes[0] === 0x2f) throw new ProtocolError("path", `absolute path not allowed: ${shownPath(bytes)}`);
  let start = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? bytes[i] : 0x2f;
    if (c === 0) throw new ProtocolError("path", `path contains NUL: ${shownPath(bytes)}`);
    if (c !== 0x2f) continue;
    const len = i - start;
    if (len === 0) throw new ProtocolError("path", `empty path component: ${shownPath(bytes)}`);
    if (bytes[start] === 0x2e && (len === 1 || (len === 2 && bytes[start + 1] === 0x2e))) {
      throw new ProtocolError("path", `"${len === 1 ? "." : ".."}" component not allowed: ${shownPath(bytes)}`);
    }
    if (len > MAX_COMPONENT_BYTES) throw new ProtocolError("path", `path component longer than ${MAX_COMPONENT_BYTES} bytes: ${shownPath(bytes)}`);
    start = i + 1;
  }
  return decodeUtf8(bytes, "path", "path");
}

/** A hostile path for an error message: lossy UTF-8, quoted, cut at 80 characters. */
function shownPath(bytes: Uint8Array): string {
  const p = new TextDecoder().decode(bytes);
  return JSON.stringify(p.length > 80 ? `${p.slice(0, 80)}…` : p);
}

/** Symlink targets are opaque bytes (never followed): only non-empty, no NUL, ≤ 4095. */
export function checkLinkTarget(target: Uint8Array): Uint8Array {
  if (target.length === 0) throw new ProtocolError("path", "empty symlink target");
  if (target.length > MAX_LINK_TARGET_BYTES) throw new ProtocolError("path", `symlink target longer than ${MAX_LINK_TARGET_BYTES} bytes`);
  if (target.includes(0)) throw new ProtocolError("path", "symlink target contains NUL");
  return target;
}

/** Permission bits a receiver applies: rwx for user/group/other, never setuid/setgid/sticky. */
export function receiverMode(mode: number): number {
  return mode & 0o777;
}

/**
 * Peer-supplied text (paths, messages) made safe for a terminal: control characters and
 * bidirectional overrides become visible escapes, so a file name cannot move the cursor
 * or recolour the screen.
 */
export function displaySafe(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    const control = c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    out += control ? (c <= 0xff ? `\\x${c.toString(16).padStart(2, "0")}` : `\\u{${c.toString(16)}}`) : ch;
  }
  return out;
}

/** Truncates to at most maxBytes of UTF-8 without splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (utf8.encode(s).length <= maxBytes) return s;
  let out = "";
  let n = 0;
  for (const ch of s.toWellFormed()) {
    const len = utf8.encode(ch).length;
    if (n + len > maxBytes) break;
    out += ch;
    n += len;
  }
  return out;
}

/** Splits a failure list at MAX_REPORT_FAILURES for a REPORT. */
export function capFailures(all: readonly ReportFailure[]): { failures: ReportFailure[]; omittedFailures: number } {
  return { failures: all.slice(0, MAX_REPORT_FAILURES), omittedFailures: Math.max(0, all.length - MAX_REPORT_FAILURES) };
}

// ---------------------------------------------------------------------------------------
// Encoding (our own messages: violations are caller bugs but still ProtocolErrors so a
// sender can turn a bad local file name into a per-file failure).

class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private at = FRAME_HEADER_LENGTH;
  constructor(capacity: number) {
    this.buf = new Uint8Array(FRAME_HEADER_LENGTH + capacity);
    this.view = new DataView(this.buf.buffer);
  }
  u8(v: number): this {
    this.view.setUint8(this.at, v);
    this.at += 1;
    return this;
  }
  u16(v: number): this {
    this.view.setUint16(this.at, v);
    this.at += 2;
    return this;
  }
  u32(v: number): this {
    this.view.setUint32(this.at, v);
    this.at += 4;
    return this;
  }
  u64(v: bigint): this {
    this.view.setBigUint64(this.at, v);
    this.at += 8;
    return this;
  }
  i64(v: bigint): this {
    this.view.setBigInt64(this.at, v);
    this.at += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }
  frame(type: number): Uint8Array {
    const len = this.at - FRAME_HEADER_LENGTH;
    this.view.setUint8(0, type);
    this.view.setUint32(1, len);
    return this.buf.subarray(0, this.at);
  }
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ProtocolError("frame", `${what} must be a u32, got ${v}`);
}

function checkFileOffset(v: bigint, what: string): void {
  if (v < 0n || v > MAX_FILE_SIZE) throw new ProtocolError("limit", `${what} ${v} outside 0..2^62`);
}

function textBytes(s: string, max: number, what: string): Uint8Array {
  const b = encodeUtf8(s, what, "frame");
  if (b.length > max) throw new ProtocolError("limit", `${what} longer than ${max} bytes`);
  return b;
}

const CODE_RE = /^[A-Za-z0-9_.-]{1,32}$/;

/** Encodes any message as one complete frame (header included). */
export function encodeMessage(msg: WireMessage): Uint8Array {
  switch (msg.type) {
    case "entry":
      return encodeEntry(msg);
    case "data": {
      if (msg.bytes.length > MAX_DATA_CHUNK) throw new ProtocolError("limit", `DATA chunk of ${msg.bytes.length} bytes exceeds ${MAX_DATA_CHUNK}`);
      const out = new Uint8Array(FRAME_HEADER_LENGTH + DATA_FIELDS_LENGTH + msg.bytes.length);
      out.set(encodeDataHeader(msg.id, msg.offset, msg.bytes.length), 0);
      out.set(msg.bytes, FRAME_HEADER_LENGTH + DATA_FIELDS_LENGTH);
      return out;
    }
    case "file-end":
      checkU32(msg.id, "FILE_END id");
      return new Writer(4).u32(msg.id).frame(MSG_FILE_END);
    case "list-end":
      // The flags byte only when a flag is set: the empty LIST_END of version 1 stays valid.
      return msg.incomplete === true ? new Writer(1).u8(1).frame(MSG_LIST_END) : new Writer(0).frame(MSG_LIST_END);
    case "hole":
      checkU32(msg.id, "HOLE id");
      checkFileOffset(msg.offset, "HOLE offset");
      checkFileOffset(msg.length, "HOLE length");
      if (msg.offset + msg.length > MAX_FILE_SIZE) throw new ProtocolError("limit", "HOLE extends past 2^62");
      return new Writer(20).u32(msg.id).u64(msg.offset).u64(msg.length).frame(MSG_HOLE);
    case "file-abort":
      checkU32(msg.id, "FILE_ABORT id");
      return new Writer(4).u32(msg.id).frame(MSG_FILE_ABORT);
    case "rekey":
      return new Writer(0).frame(MSG_REKEY);
    case "continue":
      if (msg.token.length !== CONTINUE_TOKEN_LENGTH) throw new ProtocolError("frame", `CONTINUE token must be ${CONTINUE_TOKEN_LENGTH} bytes`);
      return new Writer(CONTINUE_TOKEN_LENGTH).bytes(msg.token).frame(MSG_CONTINUE);
    case "join":
      if (msg.token.length !== CONTINUE_TOKEN_LENGTH) throw new ProtocolError("frame", `JOIN token must be ${CONTINUE_TOKEN_LENGTH} bytes`);
      return new Writer(CONTINUE_TOKEN_LENGTH).bytes(msg.token).frame(MSG_JOIN);
    case "root":
      if (!Number.isInteger(msg.mode) || msg.mode < 0 || msg.mode > 0o7777) throw new ProtocolError("frame", `ROOT mode ${msg.mode} is not permission bits`);
      if (msg.mtimeNs < -(1n << 63n) || msg.mtimeNs >= 1n << 63n) throw new ProtocolError("frame", "ROOT mtime outside i64");
      return new Writer(12).u32(msg.mode).i64(msg.mtimeNs).frame(MSG_ROOT);
    case "checksum":
      checkU32(msg.id, "CHECKSUM id");
      if (msg.hash.length !== CONTENT_HASH_LENGTH) throw new ProtocolError("frame", `CHECKSUM hash must be ${CONTENT_HASH_LENGTH} bytes`);
      return new Writer(4 + CONTENT_HASH_LENGTH).u32(msg.id).bytes(msg.hash).frame(MSG_CHECKSUM);
    case "filter": {
      const p = textBytes(msg.pattern, MAX_PATTERN_BYTES, "FILTER pattern");
      if (p.length === 0) throw new ProtocolError("frame", "FILTER pattern is empty");
      return new Writer(1 + p.length).u8(msg.rule === "exclude" ? 1 : 2).bytes(p).frame(MSG_FILTER);
    }
    case "deleted": {
      const p = textBytes(msg.path, MAX_PATH_BYTES, "DELETED path");
      if (p.length === 0) throw new ProtocolError("frame", "DELETED path is empty");
      return new Writer(p.length).bytes(p).frame(MSG_DELETED);
    }
    case "want": {
      checkU32(msg.id, "WANT id");
      checkFileOffset(msg.offset, "WANT offset");
      if ((msg.offset > 0n) !== (msg.prefixHash !== undefined)) throw new ProtocolError("frame", "WANT carries a prefix hash exactly when its offset is above 0");
      const w = new Writer(13 + PREFIX_HASH_LENGTH).u32(msg.id).u64(msg.offset);
      if (msg.prefixHash === undefined) return w.u8(0).frame(MSG_WANT);
      if (msg.prefixHash.length !== PREFIX_HASH_LENGTH) throw new ProtocolError("frame", `WANT prefixHash must be ${PREFIX_HASH_LENGTH} bytes`);
      return w.u8(1).bytes(msg.prefixHash).frame(MSG_WANT);
    }
    case "listed":
      for (const [v, what] of [[msg.files, "files"], [msg.bytes, "bytes"]] as const) {
        if (!Number.isSafeInteger(v) || v < 0) throw new ProtocolError("limit", `LISTED ${what} ${v} outside 0..2^53-1`);
      }
      return new Writer(16).u64(BigInt(msg.files)).u64(BigInt(msg.bytes)).frame(MSG_LISTED);
    case "skip":
      checkU32(msg.id, "SKIP id");
      return new Writer(4).u32(msg.id).frame(MSG_SKIP);
    case "report":
      return encodeReport(msg);
    case "keepalive":
      return new Writer(0).frame(MSG_KEEPALIVE);
    case "error": {
      const text = textBytes(msg.message, MAX_TEXT_BYTES, "ERROR message");
      return new Writer(text.length).bytes(text).frame(MSG_ERROR);
    }
  }
}

/**
 * Frame header + DATA fields (17 bytes) for `length` bytes that follow: lets the
 * transport send file bytes straight from its read buffer instead of copying them.
 */
export function encodeDataHeader(id: number, offset: bigint, length: number): Uint8Array {
  checkU32(id, "DATA id");
  if (!Number.isInteger(length) || length < 0 || length > MAX_DATA_CHUNK) {
    throw new ProtocolError("limit", `DATA chunk of ${length} bytes outside 0..${MAX_DATA_CHUNK}`);
  }
  checkFileOffset(offset, "DATA offset");
  if (offset + BigInt(length) > MAX_FILE_SIZE) throw new ProtocolError("limit", "DATA extends past 2^62");
  const h = new Uint8Array(FRAME_HEADER_LENGTH + DATA_FIELDS_LENGTH);
  const v = new DataView(h.buffer);
  v.setUint8(0, MSG_DATA);
  v.setUint32(1, DATA_FIELDS_LENGTH + length);
  v.setUint32(5, id);
  v.setBigUint64(9, offset);
  return h;
}

function encodeEntry(e: EntryMessage): Uint8Array {
  checkU32(e.id, "ENTRY id");
  if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777) throw new ProtocolError("frame", `ENTRY mode ${e.mode} is not permission bits`);
  if (e.mtimeNs < -(1n << 63n) || e.mtimeNs >= 1n << 63n) throw new ProtocolError("frame", "ENTRY mtime outside i64");
  checkFileOffset(e.size, "ENTRY size");
  if (e.kind !== "file" && e.size !== 0n) throw new ProtocolError("frame", `ENTRY of kind ${e.kind} must have size 0`);
  const path = utf8.encode(checkRelativePath(e.path));
  const extra = e.kind === "symlink" ? 2 + checkLinkTarget(e.linkTarget).length : e.kind === "hardlink" ? 4 : 0;
  const w = new Writer(ENTRY_FIXED + path.length + extra)
    .u32(e.id)
    .u8(KIND_ID[e.kind])
    .u32(e.mode)
    .i64(e.mtimeNs)
    .u64(e.size)
    .u16(path.length)
    .bytes(path);
  if (e.kind === "symlink") {
    const t = checkLinkTarget(e.linkTarget);
    w.u16(t.length).bytes(t);
  } else if (e.kind === "hardlink") {
    checkU32(e.linkId, "ENTRY linkId");
    if (e.linkId === e.id) throw new ProtocolError("frame", "hardlink ENTRY links to itself");
    w.u32(e.linkId);
  }
  return w.frame(MSG_ENTRY);
}

function encodeReport(r: ReportMessage): Uint8Array {
  if (!Number.isSafeInteger(r.files) || r.files < 0) throw new ProtocolError("frame", "REPORT files must be a safe non-negative integer");
  if (r.bytes < 0n || r.bytes >= 1n << 64n) throw new ProtocolError("frame", "REPORT bytes outside u64");
  checkU32(r.omittedFailures, "REPORT omittedFailures");
  if (r.failures.length > MAX_REPORT_FAILURES) {
    throw new ProtocolError("limit", `REPORT carries at most ${MAX_REPORT_FAILURES} failures (use capFailures)`);
  }
  const parts = r.failures.map((f) => {
    if (!CODE_RE.test(f.code)) throw new ProtocolError("frame", `REPORT failure code ${JSON.stringify(f.code)} must match [A-Za-z0-9_.-]{1,32}`);
    return {
      path: textBytes(f.path, MAX_PATH_BYTES, "REPORT failure path"),
      code: utf8.encode(f.code),
      message: textBytes(f.message, MAX_TEXT_BYTES, "REPORT failure message"),
    };
  });
  let size = REPORT_FIXED;
  for (const p of parts) size += 2 + p.path.length + 1 + p.code.length + 2 + p.message.length;
  const w = new Writer(size).u64(BigInt(r.files)).u64(r.bytes).u32(r.omittedFailures).u16(parts.length);
  for (const p of parts) w.u16(p.path.length).bytes(p.path).u8(p.code.length).bytes(p.code).u16(p.message.length).bytes(p.message);
  return w.frame(MSG_REPORT);
}

// ---------------------------------------------------------------------------------------
// Decoding

export interface RawFrame {
  type: number;
  payload: Uint8Array;
}

/** Cursor over one payload; every read is bounds-checked into a ProtocolError. */
class Reader {
  private at = 0;
  private readonly view: DataView;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  }
  private need(n: number): number {
    if (this.at + n > this.buf.length) throw new ProtocolError("frame", `truncated ${this.what}`);
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(): number {
    return this.view.getUint8(this.need(1));
  }
  u16(): number {
    return this.view.getUint16(this.need(2));
  }
  u32(): number {
    return this.view.getUint32(this.need(4));
  }
  u64(): bigint {
    return this.view.getBigUint64(this.need(8));
  }
  i64(): bigint {
    return this.view.getBigInt64(this.need(8));
  }
  bytes(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }
  rest(): Uint8Array {
    return this.bytes(this.buf.length - this.at);
  }
  end(): void {
    if (this.at !== this.buf.length) throw new ProtocolError("frame", `${this.buf.length - this.at} trailing bytes in ${this.what}`);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Decodes one frame of either direction. */
export function decodeMessage(frame: RawFrame): WireMessage {
  const rule = RULES.get(frame.type);
  if (rule === undefined) throw new ProtocolError("frame", `unknown message type 0x${frame.type.toString(16)}`);
  const n = frame.payload.length;
  if (n < rule.min || n > rule.max) throw new ProtocolError("frame", `${rule.name} payload of ${n} bytes outside ${rule.min}..${rule.max}`);
  const r = new Reader(frame.payload, rule.name);
  let msg: WireMessage;
  switch (frame.type) {
    case MSG_ENTRY:
      msg = decodeEntry(r);
      break;
    case MSG_DATA: {
      const id = r.u32();
      const offset = r.u64();
      const bytes = r.rest();
      if (offset > MAX_FILE_SIZE || offset + BigInt(bytes.length) > MAX_FILE_SIZE) throw new ProtocolError("limit", `DATA offset ${offset} past 2^62`);
      msg = { type: "data", id, offset, bytes };
      break;
    }
    case MSG_FILE_END:
      msg = { type: "file-end", id: r.u32() };
      break;
    case MSG_LIST_END:
      if (frame.payload.length === 0) msg = { type: "list-end" };
      else {
        const flags = r.u8();
        if (flags !== 1) throw new ProtocolError("frame", `LIST_END flags 0x${flags.toString(16)}: only 0x1 (incomplete listing) is defined, and an empty LIST_END says 0`);
        msg = { type: "list-end", incomplete: true };
      }
      break;
    case MSG_HOLE: {
      const id = r.u32();
      const offset = r.u64();
      const length = r.u64();
      if (offset > MAX_FILE_SIZE || length > MAX_FILE_SIZE || offset + length > MAX_FILE_SIZE) {
        throw new ProtocolError("limit", `HOLE [${offset}, +${length}) past 2^62`);
      }
      msg = { type: "hole", id, offset, length };
      break;
    }
    case MSG_FILE_ABORT:
      msg = { type: "file-abort", id: r.u32() };
      break;
    case MSG_REKEY:
      msg = { type: "rekey" };
      break;
    case MSG_CONTINUE:
      msg = { type: "continue", token: r.bytes(CONTINUE_TOKEN_LENGTH).slice() };
      break;
    case MSG_JOIN:
      msg = { type: "join", token: r.bytes(CONTINUE_TOKEN_LENGTH).slice() };
      break;
    case MSG_ROOT: {
      const mode = r.u32();
      if (mode > 0o7777) throw new ProtocolError("frame", `ROOT mode 0o${mode.toString(8)} is not permission bits`);
      msg = { type: "root", mode: receiverMode(mode), mtimeNs: r.i64() };
      break;
    }
    case MSG_LISTED: {
      const files = r.u64();
      const bytes = r.u64();
      // Counts a receiver adds up exactly in a double: anything larger is not a real listing.
      if (files > MAX_SAFE || bytes > MAX_SAFE) throw new ProtocolError("limit", `LISTED totals ${files} files, ${bytes} bytes outside 0..2^53-1`);
      msg = { type: "listed", files: Number(files), bytes: Number(bytes) };
      break;
    }
    case MSG_WANT: {
      const id = r.u32();
      const offset = r.u64();
      if (offset > MAX_FILE_SIZE) throw new ProtocolError("limit", `WANT offset ${offset} past 2^62`);
      const has = r.u8();
      if (has > 1) throw new ProtocolError("frame", `WANT has bad prefix-hash flag ${has}`);
      if ((has === 1) !== (offset > 0n)) throw new ProtocolError("frame", `WANT at offset ${offset} with has_hash ${has}: a prefix hash comes exactly with an offset above 0`);
      msg = has === 1 ? { type: "want", id, offset, prefixHash: r.bytes(PREFIX_HASH_LENGTH).slice() } : { type: "want", id, offset };
      break;
    }
    case MSG_SKIP:
      msg = { type: "skip", id: r.u32() };
      break;
    case MSG_CHECKSUM:
      msg = { type: "checksum", id: r.u32(), hash: r.bytes(CONTENT_HASH_LENGTH).slice() };
      break;
    case MSG_FILTER: {
      const rule = r.u8();
      if (rule !== 1 && rule !== 2) throw new ProtocolError("frame", `FILTER has unknown rule ${rule}`);
      const pattern = decodeUtf8(r.rest(), "FILTER pattern");
      if (pattern.includes("\0")) throw new ProtocolError("frame", "FILTER pattern contains NUL");
      msg = { type: "filter", rule: rule === 1 ? "exclude" : "include", pattern };
      break;
    }
    case MSG_DELETED:
      msg = { type: "deleted", path: decodeUtf8(r.rest(), "DELETED path") };
      break;
    case MSG_REPORT:
      msg = decodeReport(r);
      break;
    case MSG_KEEPALIVE:
      msg = { type: "keepalive" };
      break;
    default:
      msg = { type: "error", message: decodeUtf8(r.rest(), "ERROR message") };
  }
  r.end();
  return msg;
}

/** Decodes a frame the receiver got: only sender messages are acceptable. */
export function decodeSenderMessage(frame: RawFrame): SenderMessage {
  checkDirection(frame.type, "to-receiver");
  return decodeMessage(frame) as SenderMessage;
}

/** Decodes a frame the sender got: only receiver messages are acceptable. */
export function decodeReceiverMessage(frame: RawFrame): ReceiverMessage {
  checkDirection(frame.type, "to-sender");
  return decodeMessage(frame) as ReceiverMessage;
}

function decodeEntry(r: Reader): EntryMessage {
  const id = r.u32();
  const kindId = r.u8();
  const kind = KIND_BY_ID[kindId];
  if (kind === undefined) throw new ProtocolError("frame", `ENTRY has unknown kind ${kindId}`);
  const rawMode = r.u32();
  if (rawMode > 0o7777) throw new ProtocolError("frame", `ENTRY mode 0o${rawMode.toString(8)} is not permission bits`);
  const mtimeNs = r.i64();
  const size = r.u64();
  if (size > MAX_FILE_SIZE) throw new ProtocolError("limit", `ENTRY size ${size} exceeds 2^62`);
  if (kind !== "file" && size !== 0n) throw new ProtocolError("frame", `ENTRY of kind ${kind} must have size 0`);
  const pathLength = r.u16();
  if (pathLength > MAX_PATH_BYTES) throw new ProtocolError("path", `path longer than ${MAX_PATH_BYTES} bytes`);
  const path = checkRelativePathBytes(r.bytes(pathLength));
  const mode = receiverMode(rawMode);
  // Object literals, not a spread of a shared base: one ENTRY per file, a million times.
  switch (kind) {
    case "symlink": {
      const len = r.u16();
      if (len > MAX_LINK_TARGET_BYTES) throw new ProtocolError("path", `symlink target longer than ${MAX_LINK_TARGET_BYTES} bytes`);
      return { type: "entry", kind, id, mode, mtimeNs, size, path, linkTarget: checkLinkTarget(r.bytes(len).slice()) };
    }
    case "hardlink": {
      const linkId = r.u32();
      if (linkId === id) throw new ProtocolError("frame", "hardlink ENTRY links to itself");
      return { type: "entry", kind, id, mode, mtimeNs, size, path, linkId };
    }
    default:
      return { type: "entry", kind, id, mode, mtimeNs, size, path };
  }
}

function decodeReport(r: Reader): ReportMessage {
  const files = r.u64();
  if (files > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError("frame", "REPORT file count too large");
  const bytes = r.u64();
  const omittedFailures = r.u32();
  const count = r.u16();
  if (count > MAX_REPORT_FAILURES) throw new ProtocolError("limit", `REPORT lists ${count} failures, more than ${MAX_REPORT_FAILURES}`);
  const failures: ReportFailure[] = [];
  for (let i = 0; i < count; i++) {
    const pathLength = r.u16();
    if (pathLength > MAX_PATH_BYTES) throw new ProtocolError("frame", "REPORT failure path too long");
    const path = decodeUtf8(r.bytes(pathLength), "REPORT failure path");
    const code = decodeUtf8(r.bytes(r.u8()), "REPORT failure code");
    if (!CODE_RE.test(code)) throw new ProtocolError("frame", "REPORT failure code malformed");
    const messageLength = r.u16();
    if (messageLength > MAX_TEXT_BYTES) throw new ProtocolError("frame", "REPORT failure message too long");
    failures.push({ path, code, message: decodeUtf8(r.bytes(messageLength), "REPORT failure message") });
  }
  return { type: "report", files: Number(files), bytes, failures, omittedFailures };
}

// ---------------------------------------------------------------------------------------
// Framing

export type Direction = "to-receiver" | "to-sender" | "any";

/**
 * The checks FrameReader makes on a 5-byte frame header, for transports that parse the
 * stream themselves (to stream DATA bytes without buffering whole frames): the payload
 * length against the global limit ("limit"), then the type, its direction and its
 * per-type length range ("frame"). Returns the message name.
 */
export function checkFrameHeader(type: number, length: number, direction: Direction): string {
  if (length > MAX_FRAME_PAYLOAD) throw new ProtocolError("limit", `frame payload of ${length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  const rule = checkDirection(type, direction);
  if (length < rule.min || length > rule.max) throw new ProtocolError("frame", `${rule.name} payload of ${length} bytes outside ${rule.min}..${rule.max}`);
  return rule.name;
}

function checkDirection(type: number, direction: Direction): TypeRule {
  const rule = RULES.get(type);
  if (rule === undefined) throw new ProtocolError("frame", `unknown message type 0x${type.toString(16)}`);
  if (direction !== "any" && rule.from !== "both" && (rule.from === "sender") !== (direction === "to-receiver")) {
    throw new ProtocolError("frame", `${rule.name} is not valid in this direction`);
  }
  return rule;
}

export interface FrameReaderOptions {
  /** Reject messages that cannot travel this way, on the header. Default "any". */
  direction?: Direction;
  /**
   * By default a frame that lies wholly inside one pushed chunk is returned as a view of
   * that chunk (no copy): consume it before reusing the chunk's memory. Set true when the
   * chunk is a reused receive buffer and frames outlive the call.
   */
  copyPayloads?: boolean;
}

/**
 * A frame header that arrived split across received chunks: its bytes gathered until all 5
 * are in. One piece shared by every parser of the stream (FrameReader and the receiver's).
 */
export class SplitHeader {
  readonly bytes = new Uint8Array(FRAME_HEADER_LENGTH);
  /** Bytes gathered so far (0: no header in progress). */
  fill = 0;

  /** Takes what it can of the header from chunk[p, end); returns how many bytes it took. */
  take(chunk: Uint8Array, p: number, end: number): number {
    const n = Math.min(FRAME_HEADER_LENGTH - this.fill, end - p);
    this.bytes.set(chunk.subarray(p, p + n), this.fill);
    this.fill += n;
    return n;
  }

  /** Whether the header is whole; if so, the next take() starts a new one. */
  complete(): boolean {
    if (this.fill < FRAME_HEADER_LENGTH) return false;
    this.fill = 0;
    return true;
  }

  get type(): number {
    return this.bytes[0];
  }

  /** The payload length, big-endian (not checked: that is the caller's checkFrameHeader). */
  get length(): number {
    const b = this.bytes;
    return ((b[1] << 24) | (b[2] << 16) | (b[3] << 8) | b[4]) >>> 0;
  }
}

/**
 * Splits a byte stream into frames. Memory is bounded: at most one partial frame
 * (≤ 5 + MAX_FRAME_PAYLOAD bytes), allocated only after its header passed the limits.
 */
export class FrameReader {
  private readonly direction: Direction;
  private readonly copy: boolean;
  private readonly header = new SplitHeader();
  private partial: Uint8Array | undefined;
  private partialType = 0;
  private partialFill = 0;
  private failure: ProtocolError | undefined;

  constructor(options: FrameReaderOptions = {}) {
    this.direction = options.direction ?? "any";
    this.copy = options.copyPayloads ?? false;
  }

  /** Bytes of an incomplete frame held between push() calls. */
  get bufferedBytes(): number {
    return this.header.fill + (this.partial === undefined ? 0 : this.partialFill);
  }

  /** Feeds stream bytes; returns the frames they complete, in order. */
  push(chunk: Uint8Array): RawFrame[] {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.consume(chunk);
    } catch (e) {
      if (e instanceof ProtocolError) this.failure = e;
      throw e;
    }
  }

  /** Feeds stream bytes and decodes the completed frames. */
  pushMessages(chunk: Uint8Array): WireMessage[] {
    return this.push(chunk).map((f) => {
      try {
        return decodeMessage(f);
      } catch (e) {
        if (e instanceof ProtocolError) this.failure = e;
        throw e;
      }
    });
  }

  /** Validates type, direction and length; returns the payload length. */
  private checkHeader(h: Uint8Array, p: number): number {
    const type = h[p];
    const len = ((h[p + 1] << 24) | (h[p + 2] << 16) | (h[p + 3] << 8) | h[p + 4]) >>> 0;
    if (len > MAX_FRAME_PAYLOAD) throw new ProtocolError("limit", `frame payload of ${len} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
    const rule = checkDirection(type, this.direction);
    if (len < rule.min || len > rule.max) throw new ProtocolError("frame", `${rule.name} payload of ${len} bytes outside ${rule.min}..${rule.max}`);
    return len;
  }

  private consume(chunk: Uint8Array): RawFrame[] {
    const out: RawFrame[] = [];
    let p = 0;
    const end = chunk.length;
    while (p < end) {
      if (this.partial !== undefined) {
        const take = Math.min(this.partial.length - this.partialFill, end - p);
        this.partial.set(chunk.subarray(p, p + take), this.partialFill);
        this.partialFill += take;
        p += take;
        if (this.partialFill < this.partial.length) break;
        out.push({ type: this.partialType, payload: this.partial });
        this.partial = undefined;
        continue;
      }
      if (this.header.fill > 0 || end - p < FRAME_HEADER_LENGTH) {
        p += this.header.take(chunk, p, end);
        if (!this.header.complete()) break;
        this.startFrame(this.header.type, this.checkHeader(this.header.bytes, 0), out);
        continue;
      }
      const len = this.checkHeader(chunk, p);
      const type = chunk[p];
      p += FRAME_HEADER_LENGTH;
      if (end - p >= len) {
        const payload = chunk.subarray(p, p + len);
        out.push({ type, payload: this.copy ? payload.slice() : payload });
        p += len;
      } else {
        this.startFrame(type, len, out);
      }
    }
    return out;
  }

  /** Begins buffering a frame whose header passed checkHeader (an empty one completes at once). */
  private startFrame(type: number, len: number, out: RawFrame[]): void {
    if (len === 0) {
      out.push({ type, payload: new Uint8Array(0) });
      return;
    }
    this.partial = new Uint8Array(len);
    this.partialType = type;
    this.partialFill = 0;
  }
}
