/**
 * Incremental decisions: what to do with one source entry given what DST already holds.
 *
 * Owns: the rules, as pure functions over stat-like facts (unit-tested), plus SHA-256 of
 * file contents for --checksum (node:crypto, which uses SHA-NI here). Rules:
 *  - nothing in DST: copy;
 *  - a directory in DST where SRC has a non-directory: replace it with --delete, else a
 *    conflict (reported; the directory and what it holds are never removed silently);
 *  - any other non-regular file in DST (symlink, FIFO...): replace (rename over it: a
 *    symlink in DST is replaced, never written through);
 *  - --ignore-times: copy;
 *  - --checksum: copy when sizes differ, else compare SHA-256 of both contents;
 *  - otherwise copy unless size and mtime (to the nanosecond) are equal;
 *  - a skipped file still gets its mode and owner fixed when they differ.
 * Never writes anything.
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { S } from "../../ffi/structs.ts";

/** Facts about one side, as the decision needs them. */
export interface Facts {
  /** S_IFMT bits. */
  type: number;
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** st_mode & 07777. */
  perm: number;
  uid: number;
  gid: number;
}

export type Decision =
  /** DST has nothing there. */
  | "copy"
  /** DST has an older or different version: replace it. */
  | "update"
  /** Sizes equal under --checksum: hash both, then update or skip. */
  | "compare"
  /** Unchanged. */
  | "skip"
  /** DST has a directory where SRC has something else: with --delete it is removed first. */
  | "replace-dir"
  /** DST has a directory there and --delete was not given. */
  | "conflict";

export interface PlanOptions {
  checksum: boolean;
  ignoreTimes: boolean;
  delete: boolean;
}

/** What to do with a regular file `src` when DST holds `dst` (null: nothing). */
export function decideFile(src: Facts, dst: Facts | null, o: PlanOptions): Decision {
  if (dst === null) return "copy";
  if (dst.type === S.IFDIR) return o.delete ? "replace-dir" : "conflict";
  if (dst.type !== S.IFREG) return "update";
  if (o.ignoreTimes) return "update";
  if (o.checksum) return src.size === dst.size ? "compare" : "update";
  return src.size === dst.size && src.mtimeSec === dst.mtimeSec && src.mtimeNsec === dst.mtimeNsec ? "skip" : "update";
}

/** Metadata fixes a skipped entry needs: bit 1 = mode, bit 2 = owner. */
export const FIX_MODE = 1;
export const FIX_OWNER = 2;

export function metaFixes(src: Facts, dst: Facts, owner: boolean): number {
  let f = 0;
  if (src.perm !== dst.perm) f |= FIX_MODE;
  if (owner && (src.uid !== dst.uid || src.gid !== dst.gid)) f |= FIX_OWNER;
  return f;
}

/**
 * SHA-256 of the first `size` bytes of `fd`, read with pread through `buf`, or -errno.
 * Returns the hex digest.
 */
export function sha256Fd(fd: number, size: number, buf: Uint8Array): string | number {
  // Loaded on first use: node:crypto costs several ms to import in every worker, and only
  // --checksum needs it.
  const { createHash } = require("node:crypto") as typeof import("node:crypto");
  const h = createHash("sha256");
  let off = 0;
  while (off < size) {
    const n = libc.pread(fd, buf, Math.min(buf.length, size - off), off);
    if (n < 0) {
      const e = errno();
      if (e === E.EINTR || e === E.EAGAIN) continue;
      return -e;
    }
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    off += n;
  }
  return h.digest("hex");
}
