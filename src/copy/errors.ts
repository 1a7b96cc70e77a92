/**
 * The copy engine's error vocabulary: what one failed entry looks like when it is
 * collected, and the one failure that has no errno (a file that changed size while it was
 * copied).
 *
 * Owns: turning a thrown error into a CopyErrorInfo record. Never prints.
 */
import { E } from "../../ffi/errno.ts";
import { SysError } from "../errors.ts";

/** A failure that concerned one path; the run went on (unless it was ENOSPC). */
export interface CopyErrorInfo {
  /** The path as the user knows it (SRC/... or DST/...). */
  path: string;
  /** Errno name ("EACCES"), or "ECHANGED" for a file that changed size mid-copy. */
  code: string;
  /** One line: "open SRC/x: EACCES (Permission denied)". */
  message: string;
}

/**
 * A source file whose size changed while it was being copied (it grew, shrank or was
 * truncated). Nothing is placed under the final name; the old copy, if any, is kept.
 */
export class FileChangedError extends SysError {
  constructor(path: string, expected: number, seen: number, grew: boolean) {
    super("read", E.EAGAIN, path);
    Object.defineProperty(this, "code", { value: "ECHANGED" });
    const how = grew ? "grew" : "shrank";
    this.message = `read ${path}: ECHANGED (file changed size during copy: ${how} from ${expected} to ${grew ? "more than " : ""}${seen} bytes)`;
  }
}

/** The record kept for an error; anything that is not a SysError is kept with code "EIO". */
export function errorInfo(e: unknown, path: string): CopyErrorInfo {
  if (e instanceof SysError) return { path: e.path ?? path, code: e.code, message: e.message };
  const msg = e instanceof Error ? e.message : String(e);
  return { path, code: "EIO", message: `${path}: ${msg}` };
}

/** Errors that end the whole run: the destination is full, or cannot take writes at all. */
export function isFatalErrno(errno: number): boolean {
  return errno === E.ENOSPC || errno === 122 /* EDQUOT */ || errno === 30 /* EROFS */;
}
