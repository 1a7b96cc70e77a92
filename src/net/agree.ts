/**
 * The receiver's half of "only what changed" (docs/PROTOCOL.md 8.7, want mode): for one
 * file ENTRY, what DST already holds decides the answer, WANT (from 0 or, to resume, from
 * the end of a verified partial) or SKIP.
 *
 * Owns: the look at DST for one name (lstat, never following a symlink), the rules (the
 * same as the local copy's, src/copy/plan.ts: size + mtime to the nanosecond by default,
 * SHA-256 of the content with --checksum, everything with --ignore-times), the metadata a
 * skipped file still needs (mode, and with --checksum the mtime), and the partial files
 * a dropped transfer leaves for resuming (`.NAME.usync-partial`, PARTIAL_SUFFIX): their
 * naming, how much of one can be trusted, and the hash of that prefix. Such a name is
 * also a legal name for an ordinary file: the caller passes resume = false when the
 * listing named a file of its own there (looksPartial), and no resume is then offered.
 *
 * Must never: follow a symlink, read or write outside the directory fd it is given, or
 * change anything in dry-run (the caller passes dryRun; metadata updates are the caller's call).
 */
import { E } from "../../ffi/errno.ts";
import { cstr, errno, libc } from "../../ffi/libc.ts";
import { O, S } from "../../ffi/structs.ts";
import { decideFile, sha256Fd, type Facts } from "../copy/plan.ts";
import { fstatx, lstatAt, StatBuf } from "../copy/sys.ts";

/** Files at least this large are received under a partial name and can be resumed. */
export const RESUME_MIN = 1024 * 1024;
/** `.NAME` + this: where an incomplete large file is kept between runs. */
export const PARTIAL_SUFFIX = ".usync-partial";
/**
 * A partial left by a killed receiver may have unwritten gaps in its last writes: every
 * write in flight was within the receiver's memory cap (64 MiB) of the end plus one frame.
 * Such a partial is trusted only up to its size minus this, rounded down to 1 MiB.
 */
export const TORN_TAIL = 65 * 1024 * 1024;

export interface AgreeOptions {
  checksum: boolean;
  ignoreTimes: boolean;
  /** A dry run offers no resumes (WANT from 0): no partial is hashed. */
  dryRun: boolean;
}

export interface FileFacts {
  size: number;
  mode: number;
  mtimeNs: bigint;
  /** --checksum: the sender's SHA-256 of the content. */
  hash?: Uint8Array;
}

export type Answer =
  | { kind: "skip"; modeDiffers: boolean; mtimeDiffers: boolean }
  | { kind: "want"; offset: number; prefixHash?: Uint8Array; dirInTheWay?: boolean };

/** The partial name of `name`, or undefined when it would be longer than a name may be. */
export function partialName(name: string): string | undefined {
  const p = `.${name}${PARTIAL_SUFFIX}`;
  return Buffer.byteLength(p) <= 255 ? p : undefined;
}

/**
 * Whether `name` (one path component) has the form of a partial name, `.X.usync-partial`:
 * a listed entry of that name is the sender's own file, never one of our partials.
 */
export function looksPartial(name: string): boolean {
  return name.endsWith(PARTIAL_SUFFIX) && name.length > PARTIAL_SUFFIX.length + 1 && name.charCodeAt(0) === 0x2e;
}

function mtimeNsOf(st: StatBuf): bigint {
  return BigInt(st.mtimeSec) * 1_000_000_000n + BigInt(st.mtimeNsec);
}

function factsOf(size: number, mode: number, mtimeNs: bigint, type: number): Facts {
  let sec = mtimeNs / 1_000_000_000n;
  let nsec = mtimeNs % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return { type, size, mtimeSec: Number(sec), mtimeNsec: Number(nsec), perm: mode, uid: 0, gid: 0 };
}

const SKIP_SAME: Answer = Object.freeze({ kind: "skip", modeDiffers: false, mtimeDiffers: false });
const SKIP_MODE: Answer = Object.freeze({ kind: "skip", modeDiffers: true, mtimeDiffers: false });
const WANT_ALL = Object.freeze({ kind: "want" as const, offset: 0 });

/** `name` NUL-terminated in a reused buffer (valid until the next call): one per ENTRY, no allocation. */
const zbuf = Buffer.alloc(4 * 255 + 1);
function nameZ(name: string): Buffer {
  const n = zbuf.write(name, 0, "utf8");
  if (n >= zbuf.length - 1) return cstr(name);
  zbuf[n] = 0;
  return zbuf;
}

/**
 * An fd for hashing the first `size` bytes of `name` in `dirfd`: a regular file at least
 * that long, never followed; -1 when it is not one (or cannot be opened).
 */
export function openForHash(dirfd: number, name: string, size: number): number {
  const fd = libc.openat(dirfd, cstr(name), O.RDONLY | O.NOFOLLOW | O.CLOEXEC | O.NONBLOCK | O.NOCTTY, 0);
  if (fd < 0) return -1;
  const st = new StatBuf();
  if (fstatx(fd, st) !== 0 || st.type !== S.IFREG || st.size < size) {
    libc.close(fd);
    return -1;
  }
  return fd;
}

/** SHA-256 of the first `size` bytes of `name` in `dirfd` (a regular file, not followed), or undefined. */
export function hashPrefix(dirfd: number, name: string, size: number, buf: Uint8Array): Uint8Array | undefined {
  const fd = openForHash(dirfd, name, size);
  if (fd < 0) return undefined;
  try {
    const hex = sha256Fd(fd, size, buf);
    return typeof hex === "string" ? Uint8Array.from(Buffer.from(hex, "hex")) : undefined;
  } finally {
    libc.close(fd);
  }
}

/**
 * A hash the answer waits for, too large to compute inline: the caller hands `fd` (its
 * own, to close) to the hash pool and calls `then` with the digest, or with undefined
 * when the file could not be read.
 */
export interface HashStep {
  kind: "hash";
  fd: number;
  length: number;
  then(digest: Uint8Array | undefined): Answer | HashStep;
}

/** Where agreeing hashes: inline up to `inlineMax` bytes, else a HashStep for the caller's pool. */
interface Hashing {
  buf: Uint8Array;
  inlineMax: number;
}

function hashThen(dirfd: number, name: string, size: number, h: Hashing, then: (d: Uint8Array | undefined) => Answer | HashStep): Answer | HashStep {
  if (size <= h.inlineMax) return then(hashPrefix(dirfd, name, size, h.buf));
  const fd = openForHash(dirfd, name, size);
  if (fd < 0) return then(undefined);
  return { kind: "hash", fd, length: size, then };
}

/**
 * How much of a partial of `size` bytes can be resumed from: all of it when its mtime is
 * the source file's (the receiver truncated it to exactly what was written, then marked it
 * so), else all but a possibly torn tail; 0 when that leaves less than RESUME_MIN.
 */
export function trustedPrefix(partialSize: number, partialMtimeNs: bigint, f: FileFacts): number {
  if (partialSize <= 0 || partialSize > f.size) return 0;
  const n = partialMtimeNs === f.mtimeNs ? partialSize : Math.floor((partialSize - TORN_TAIL) / RESUME_MIN) * RESUME_MIN;
  return n >= RESUME_MIN ? n : 0;
}

/**
 * WANT or SKIP for a file ENTRY whose final name is `name` in `dirfd`. `st` and `buf` are
 * scratch (a statx buffer and a read buffer for hashing). Synchronous: hashing with
 * --checksum reads the whole existing file (only when the sizes are equal), and a resume
 * hashes the partial's prefix. `resume` false: the partial name is not ours to resume
 * from (WANT is then from 0).
 */
export function agreeFile(dirfd: number, name: string, f: FileFacts, o: AgreeOptions, st: StatBuf, buf: Uint8Array, resume = true): Answer {
  const a = agreeFileSteps(dirfd, name, f, o, st, { buf, inlineMax: Infinity }, resume);
  if (a.kind === "hash") throw new Error("agreeFile: a hash step with inline hashing");
  return a;
}

/**
 * agreeFile, except that a hash of more than `h.inlineMax` bytes is not computed here: the
 * result is then a HashStep, whose `then` gives the answer (or the next HashStep).
 */
export function agreeFileSteps(dirfd: number, name: string, f: FileFacts, o: AgreeOptions, st: StatBuf, h: Hashing, resume = true): Answer | HashStep {
  const r = lstatAt(dirfd, nameZ(name), st);
  if (r === 0 && st.type === S.IFREG && !o.checksum && !o.ignoreTimes) {
    // The common case of a re-run, once per file: no objects made (decideFile's rules).
    if (st.size === f.size && mtimeNsOf(st) === f.mtimeNs) {
      return (st.perm & 0o777) === f.mode ? SKIP_SAME : SKIP_MODE;
    }
    return o.dryRun || !resume ? WANT_ALL : resumeOffer(dirfd, name, f, st, h);
  }
  const otherwise = (): Answer | HashStep => (o.dryRun || !resume ? { kind: "want", offset: 0 } : resumeOffer(dirfd, name, f, st, h));
  if (r === 0) {
    const src = factsOf(f.size, f.mode, f.mtimeNs, S.IFREG);
    const dst: Facts = { type: st.type, size: st.size, mtimeSec: st.mtimeSec, mtimeNsec: st.mtimeNsec, perm: st.perm & 0o777, uid: 0, gid: 0 };
    const d = decideFile(src, dst, { checksum: o.checksum, ignoreTimes: o.ignoreTimes, delete: false });
    const sameTime = mtimeNsOf(st) === f.mtimeNs;
    if (d === "skip") return { kind: "skip", modeDiffers: dst.perm !== f.mode, mtimeDiffers: false };
    const sent = f.hash;
    if (d === "compare" && sent !== undefined) {
      return hashThen(dirfd, name, f.size, h, (mine) => mine !== undefined && Buffer.compare(mine, sent) === 0
        ? { kind: "skip", modeDiffers: dst.perm !== f.mode, mtimeDiffers: !sameTime }
        : otherwise());
    }
    // A directory where the file goes: the caller removes it with --delete (else storing fails).
    if (d === "replace-dir" || d === "conflict") return withDirInTheWay(otherwise());
  } else if (r !== -E.ENOENT && r !== -E.ENOTDIR) {
    // Cannot look: want it; storing it will report the real problem.
    return { kind: "want", offset: 0 };
  }
  return otherwise();
}

function withDirInTheWay(a: Answer | HashStep): Answer | HashStep {
  if (a.kind === "hash") return { ...a, then: (d) => withDirInTheWay(a.then(d)) };
  return a.kind === "want" ? { ...a, dirInTheWay: true } : a;
}

/** WANT from the end of a usable partial (with its prefix hash), else from 0. */
function resumeOffer(dirfd: number, name: string, f: FileFacts, st: StatBuf, h: Hashing): Extract<Answer, { kind: "want" }> | HashStep {
  if (f.size < RESUME_MIN) return { kind: "want", offset: 0 };
  const p = partialName(name);
  if (p === undefined || lstatAt(dirfd, cstr(p), st) !== 0 || st.type !== S.IFREG || st.nlink !== 1) return { kind: "want", offset: 0 };
  const offset = trustedPrefix(st.size, mtimeNsOf(st), f);
  if (offset === 0) return { kind: "want", offset: 0 };
  return hashThen(dirfd, p, offset, h, (d) => (d === undefined ? { kind: "want", offset: 0 } : { kind: "want", offset, prefixHash: d })) as Extract<Answer, { kind: "want" }> | HashStep;
}
/** What failed while updating an unchanged file's metadata: the syscall and its errno. */
export interface MetaFailure {
  syscall: "open" | "fchmod" | "futimens";
  errno: number;
}

/**
 * Brings a skipped file's mode and mtime in line with the sender's, never through a
 * symlink. Returns null, or which call failed and why.
 */
export function applySkipMeta(dirfd: number, name: string, mode: number | undefined, setTime: ((fd: number) => boolean) | undefined): MetaFailure | null {
  const fd = libc.openat(dirfd, cstr(name), O.RDONLY | O.NOFOLLOW | O.CLOEXEC | O.NONBLOCK | O.NOCTTY, 0);
  if (fd < 0) return { syscall: "open", errno: errno() };
  try {
    if (mode !== undefined && libc.fchmod(fd, mode) !== 0) return { syscall: "fchmod", errno: errno() };
    if (setTime !== undefined && !setTime(fd)) return { syscall: "futimens", errno: errno() };
    return null;
  } finally {
    libc.close(fd);
  }
}
