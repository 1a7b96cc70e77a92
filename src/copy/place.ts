/**
 * Atomic placement: every file is written where no one can see it under its final name,
 * and appears there only complete.
 *
 * Owns: temp names (`.<name>.usync-<run><n>`, shortened to fit NAME_MAX), creating the
 * hidden file, and committing or abandoning it. Three ways, chosen per file:
 *  - in a staged tree (stage.ts: a new DST copied under a hidden name, renamed at the
 *    end), the file is created directly under its final name: nothing there is visible
 *    under a final path until the whole tree is, so no per-file trick is needed; a file
 *    that fails is unlinked;
 *  - a small new file (final name absent): an O_TMPFILE inode in the target directory,
 *    linked under the final name with linkat(AT_EMPTY_PATH) when complete (nothing is
 *    ever left behind, even on SIGKILL; see docs/DESIGN.md for the measurement);
 *  - otherwise (an update, a big file, or no O_TMPFILE on that file system): a named temp
 *    file in the target directory, renamed over the final name (rename is atomic: readers
 *    see the old file or the new one, never a mix), removed if the copy fails or stops.
 * Never writes data, never follows a symlink in DST (O_NOFOLLOW|O_EXCL; rename replaces a
 * symlink itself).
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AT, O } from "../../ffi/structs.ts";
import { EMPTY_Z, DOT_Z, encoder } from "./sys.ts";
import { NAME_MAX } from "./sysconst.ts";

/** The marker every temp name carries. */
export const TEMP_MARK = ".usync-";
const MARK = encoder.encode(TEMP_MARK);

/** How the current file is being placed. */
export const PlaceKind = {
  None: 0,
  /** O_TMPFILE inode: commit with linkat. */
  Tmpfile: 1,
  /** Named temp: commit with renameat. */
  Named: 2,
  /** Created under its final name inside a staged tree: commit is a no-op, abandon unlinks it. */
  Direct: 3,
} as const;
export type PlaceKind = (typeof PlaceKind)[keyof typeof PlaceKind];

/** Why O_TMPFILE is unavailable on a file system: fall back to named temps. */
function tmpfileUnsupported(e: number): boolean {
  return e === E.EOPNOTSUPP || e === E.EISDIR || e === E.EINVAL || e === E.ENOENT;
}

const FILE_FLAGS = O.WRONLY | O.CLOEXEC;

/**
 * Generates temp names: one token per run and thread, a counter per file. Pure, so the
 * unit tests can check the shape and the NAME_MAX bound.
 */
export class TempNames {
  private readonly token: Uint8Array;
  private counter = 0;
  /** The last generated name, NUL-terminated, valid until the next call. */
  readonly buf = new Uint8Array(NAME_MAX + 1);
  len = 0;

  constructor(token: string) {
    this.token = encoder.encode(token);
  }

  /** Does `name` (bytes, no NUL) look like a temp name of this run? */
  isOurs(name: Uint8Array): boolean {
    return indexOf(name, MARK) >= 0 && indexOf(name, this.token) >= 0;
  }

  /** Build the next temp name for `name`; returns a NUL-terminated view of `buf`. */
  next(name: Uint8Array): Uint8Array {
    const suffix = (this.counter++).toString(36);
    const tail = MARK.length + this.token.length + suffix.length;
    // "." + name + MARK + token + counter, with the name cut (at a UTF-8 boundary) to fit.
    let keep = Math.min(name.length, NAME_MAX - 1 - tail);
    while (keep > 0 && keep < name.length && (name[keep] & 0xc0) === 0x80) keep--;
    const b = this.buf;
    let at = 0;
    b[at++] = 0x2e;
    b.set(name.subarray(0, keep), at);
    at += keep;
    b.set(MARK, at);
    at += MARK.length;
    b.set(this.token, at);
    at += this.token.length;
    for (let i = 0; i < suffix.length; i++) b[at++] = suffix.charCodeAt(i);
    b[at] = 0;
    this.len = at;
    return b.subarray(0, at + 1);
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** A random token for one run (8 hex digits). */
export function runToken(): string {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0].toString(16).padStart(8, "0");
}

/**
 * Creates, commits and abandons hidden files for one thread, one file at a time.
 * `create` returns an fd (or -errno); then exactly one of `commit`/`abandon` follows.
 */
export class Placer {
  readonly names: TempNames;
  private tmpfileOk: boolean;
  kind: PlaceKind = PlaceKind.None;
  private dirfd = -1;
  /** The temp name in use (NUL-terminated copy) for Named placements; the final name (view) for Direct ones. */
  private tmpName: Uint8Array = EMPTY_Z;
  private readonly procPath = new Uint8Array(64);

  constructor(token: string, useTmpfile: boolean) {
    this.names = new TempNames(token);
    this.tmpfileOk = useTmpfile;
  }

  /**
   * Create the hidden file in `dirfd` for final name `zname` (NUL-terminated) with `mode`.
   * `finalExists`: the final name is there now (an update), so it will be renamed over.
   * `mayTmpfile`: an O_TMPFILE inode is acceptable (small files, written in microseconds);
   * big files get a named temp, so a copy in progress can be seen (and sized) in DST.
   * `direct`: `dirfd` is inside a staged tree (stage.ts) and made by this run: create
   * the final name itself (`zname` must stay valid until commit/abandon).
   */
  create(dirfd: number, zname: Uint8Array, mode: number, finalExists: boolean, mayTmpfile = true, direct = false): number {
    this.dirfd = dirfd;
    if (direct && !finalExists) {
      const fd = libc.openat(dirfd, zname, O.CREAT | O.EXCL | O.NOFOLLOW | FILE_FLAGS, mode);
      if (fd < 0) return -errno();
      this.kind = PlaceKind.Direct;
      this.tmpName = zname;
      return fd;
    }
    if (!finalExists && mayTmpfile && this.tmpfileOk) {
      const fd = libc.openat(dirfd, DOT_Z, O.TMPFILE | FILE_FLAGS, mode);
      if (fd >= 0) {
        this.kind = PlaceKind.Tmpfile;
        return fd;
      }
      const e = errno();
      if (!tmpfileUnsupported(e)) return -e;
      this.tmpfileOk = false;
    }
    return this.createNamed(dirfd, zname.subarray(0, zname.length - 1), mode);
  }

  private createNamed(dirfd: number, name: Uint8Array, mode: number): number {
    for (let tries = 0; tries < 100; tries++) {
      const z = this.names.next(name);
      const fd = libc.openat(dirfd, z, O.CREAT | O.EXCL | O.NOFOLLOW | FILE_FLAGS, mode);
      if (fd >= 0) {
        this.kind = PlaceKind.Named;
        this.tmpName = z.slice();
        return fd;
      }
      const e = errno();
      if (e !== E.EEXIST) return -e;
    }
    return -E.EEXIST;
  }

  /** Make the file visible under `zname` (NUL-terminated). 0 or -errno. Does not close fd. */
  commit(fd: number, zname: Uint8Array | number): number {
    const dirfd = this.dirfd;
    if (this.kind === PlaceKind.Direct) {
      this.kind = PlaceKind.None;
      return 0;
    }
    if (this.kind === PlaceKind.Named) {
      const r = libc.renameat2(dirfd, this.tmpName, dirfd, zname as Uint8Array, 0);
      if (r === 0) {
        this.kind = PlaceKind.None;
        return 0;
      }
      return -errno();
    }
    // Tmpfile: link the anonymous inode in.
    let r = libc.linkat(fd, EMPTY_Z, dirfd, zname as Uint8Array, AT.EMPTY_PATH);
    if (r !== 0) {
      let e = errno();
      if (e === E.ENOENT || e === E.EPERM || e === E.EACCES) {
        // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH on older kernels: go through /proc.
        r = libc.linkat(AT.FDCWD, this.proc(fd), dirfd, zname as Uint8Array, AT.SYMLINK_FOLLOW);
        if (r === 0) {
          this.kind = PlaceKind.None;
          return 0;
        }
        e = errno();
      }
      if (e !== E.EEXIST) return -e;
      // The name appeared meanwhile: link under a temp name and rename over it.
      const z = this.names.next(EMPTY_Z.subarray(0, 0));
      if (libc.linkat(fd, EMPTY_Z, dirfd, z, AT.EMPTY_PATH) !== 0
        && libc.linkat(AT.FDCWD, this.proc(fd), dirfd, z, AT.SYMLINK_FOLLOW) !== 0) return -errno();
      if (libc.renameat2(dirfd, z, dirfd, zname as Uint8Array, 0) !== 0) {
        const e2 = errno();
        libc.unlinkat(dirfd, z, 0);
        return -e2;
      }
    }
    this.kind = PlaceKind.None;
    return 0;
  }

  /** Forget the hidden file: a named temp (or a direct one) is removed; an O_TMPFILE inode goes with its fd. */
  abandon(): void {
    if (this.kind === PlaceKind.Named || this.kind === PlaceKind.Direct) libc.unlinkat(this.dirfd, this.tmpName, 0);
    this.kind = PlaceKind.None;
  }

  private proc(fd: number): Uint8Array {
    const s = encoder.encode(`/proc/self/fd/${fd}\0`);
    this.procPath.fill(0);
    this.procPath.set(s);
    return this.procPath;
  }
}
