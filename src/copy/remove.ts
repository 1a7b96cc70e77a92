/**
 * Removing a DST entry and everything under it (--delete, and a directory replaced by a
 * file with --delete).
 *
 * Owns: a recursive unlink that works relative to open directory fds, never follows a
 * symlink (a symlink to a directory is unlinked, its target untouched), and never needs a
 * path longer than one name. The walk keeps its own stack (one open directory and one
 * getdents buffer per level), so it can stop at any entry and go on later: the network
 * receiver removes a huge directory in slices between its I/O completions (TreeRemover),
 * where one call that ran for minutes would starve its connection. Never decides what to
 * remove.
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AT } from "../../ffi/structs.ts";
import { DirReader } from "./scan.ts";
import { decodePath, DIR_FLAGS } from "./sys.ts";

export type RemoveReport = (syscall: string, err: number, path: string) => void;

/** How many rmdir attempts a directory gets when something appears in it meanwhile. */
const RMDIR_ATTEMPTS = 3;

/** A directory being emptied: its fd, where its reader stands, and how to remove it after. */
interface Level {
  fd: number;
  reader: DirReader;
  /** The next entry of the reader's current fill, and how many that fill has. */
  next: number;
  count: number;
  /** Where the directory itself is: its parent's fd and its NUL-terminated name there. */
  parentFd: number;
  zname: Uint8Array;
  path: string;
  /** False once anything inside could not be removed (the directory then stays). */
  ok: boolean;
  attempt: number;
}

/**
 * Removes one entry, recursively, in as many step() calls as it takes. Until it is done
 * it holds one fd per directory level it is inside; close() lets them go early.
 */
export class TreeRemover {
  private readonly levels: Level[] = [];
  private readonly spare: DirReader[] = [];
  private started = false;
  private outcome: boolean | undefined;

  constructor(
    private readonly dirfd: number,
    private readonly zname: Uint8Array,
    private readonly path: string,
    private readonly report: RemoveReport,
  ) {}

  /** True when everything was removed (valid once step() returned true). */
  get ok(): boolean {
    return this.outcome === true;
  }

  /**
   * Removes entries until the whole tree is gone or performance.now() passes `deadline`
   * (checked every few dozen entries). Returns true when done.
   */
  step(deadline: number): boolean {
    if (this.outcome !== undefined) return true;
    if (!this.started) {
      this.started = true;
      const r = this.enter(this.dirfd, this.zname, this.path);
      if (r !== undefined) {
        this.outcome = r;
        return true;
      }
    }
    let n = 0;
    while (this.levels.length > 0) {
      if ((++n & 63) === 0 && performance.now() > deadline) return false;
      const top = this.levels[this.levels.length - 1];
      if (top.next < top.count) {
        const r = top.reader;
        const rec = r.order[top.next++];
        if (this.enter(top.fd, r.zname(rec), `${top.path}/${decodePath(r.name(rec))}`) === false) top.ok = false;
        continue;
      }
      const got = top.reader.fill(false);
      if (got > 0) {
        top.next = 0;
        top.count = got;
        continue;
      }
      if (got < 0) {
        this.report("getdents", got, top.path);
        top.ok = false;
      }
      this.levels.pop();
      libc.close(top.fd);
      this.spare.push(top.reader);
      const r = this.removeEmptied(top);
      if (r === undefined) continue;
      const parent = this.levels[this.levels.length - 1];
      if (parent === undefined) this.outcome = r;
      else if (!r) parent.ok = false;
    }
    return true;
  }

  /** Gives up: the directories still open are closed (what was removed stays removed). */
  close(): void {
    for (const l of this.levels) libc.close(l.fd);
    this.levels.length = 0;
    this.outcome ??= false;
  }

  /** Unlinks `zname`; a directory becomes a new level (undefined) to empty first. */
  private enter(parentFd: number, zname: Uint8Array, path: string): boolean | undefined {
    if (libc.unlinkat(parentFd, zname, 0) === 0) return true;
    const e = errno();
    if (e === E.ENOENT) return true;
    if (e !== E.EISDIR && e !== E.EPERM) {
      this.report("unlink", -e, path);
      return false;
    }
    return this.open(parentFd, zname, path, 0);
  }

  private open(parentFd: number, zname: Uint8Array, path: string, attempt: number): boolean | undefined {
    const fd = libc.openat(parentFd, zname, DIR_FLAGS, 0);
    if (fd < 0) {
      this.report("open", -errno(), path);
      return false;
    }
    const reader = this.spare.pop() ?? new DirReader(16 * 1024);
    reader.open(fd);
    this.levels.push({ fd, reader, next: 0, count: 0, parentFd, zname, path, ok: true, attempt });
    return undefined;
  }

  /** rmdir of a level read to its end; reopened (undefined) if something appeared in it meanwhile. */
  private removeEmptied(l: Level): boolean | undefined {
    if (!l.ok) return false;
    if (libc.unlinkat(l.parentFd, l.zname, AT.REMOVEDIR) === 0) return true;
    const e = errno();
    if (e === E.ENOTEMPTY && l.attempt + 1 < RMDIR_ATTEMPTS) return this.open(l.parentFd, l.zname, l.path, l.attempt + 1);
    this.report("rmdir", -e, l.path);
    return false;
  }
}

/** Remove `zname` in `dirfd` (recursively if it is a directory), in one call. `path` is for messages. */
export function removeTree(dirfd: number, zname: Uint8Array, path: string, report: RemoveReport): boolean {
  const t = new TreeRemover(dirfd, zname, path, report);
  t.step(Infinity);
  return t.ok;
}
