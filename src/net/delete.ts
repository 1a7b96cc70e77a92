/**
 * The receiver's --delete pass (docs/PROTOCOL.md 8.7): after LIST_END, everything in DST
 * that the sender's listing did not name goes, except what the sender's --exclude
 * patterns protect (as rsync does) and the receiver's own temporaries of this session.
 *
 * Owns: the walk of DST (directory fds opened relative to their parent with O_NOFOLLOW,
 * so a symlink in DST is removed as a symlink and never followed), the decision per
 * entry, and the removal (src/copy/remove.ts, which never follows a symlink either).
 * A directory the listing named is entered; one it did not name is removed whole. In a
 * dry run nothing is removed: the entries are only reported.
 *
 * Memory: a directory is read one getdents64 buffer at a time (src/copy/scan.ts DirReader)
 * and an entry is looked up by its path bytes, so an entry the listing named costs no
 * objects at all; strings are made only for an entry that goes (or, with FILTER, for each
 * entry the patterns must see). Only the names of listed directories wait, per level,
 * until their parent has been read; then they are entered one after the other.
 *
 * Time: the walk keeps its place (a stack of open directories, the entry it is at, a removal
 * under way), so it runs in slices: step(deadline) works until the deadline and returns, and
 * the receiver answers its connection in between. A pass over millions of entries must not
 * look like a dead peer to the sender waiting for the REPORT.
 *
 * Must never: leave DST, follow a symlink, remove an excluded path or anything under an
 * excluded directory, or throw for one entry (failures are reported and the walk goes on).
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { O, S } from "../../ffi/structs.ts";
import { TreeRemover } from "../copy/remove.ts";
import { DirReader } from "../copy/scan.ts";
import { lstatAt, StatBuf } from "../copy/sys.ts";
import type { Filter } from "../copy/filter.ts";
import { SysError } from "../errors.ts";

export interface DeletePassOptions {
  /**
   * The paths the sender listed (every kind), looked up by their UTF-8 bytes. May answer
   * true for a path that was not listed (src/net/listed-paths.ts keeps hashes): that entry
   * is then kept, never removed.
   */
  seen: { hasBytes(path: Uint8Array, len: number): boolean };
  /** The sender's --exclude/--include: excluded paths are protected. */
  filter: Filter | undefined;
  /** Names starting with this are the receiver's own (its staging directories): never touched. */
  ownPrefix: string;
  dryRun: boolean;
  /**
   * Dry run: listed paths (files in the listing) where DST has a directory, already
   * reported as going whole; the pass does not enter them.
   */
  replaced?: ReadonlySet<string>;
  /** Called for every entry removed (or, in a dry run, that would be). */
  onDeleted: (rel: string) => void;
  onError: (rel: string, error: SysError) => void;
}

const lossy = new TextDecoder("utf-8");

/** A directory of DST the listing named: read it, then enter its own listed subdirectories. */
interface Frame {
  fd: number;
  /** Its path relative to DST ("" for DST itself), for messages. */
  rel: string;
  /** The length of its path plus "/" in DeletePass.path (0 for DST). */
  prefix: number;
  /** Read to the end: its listed subdirectories are entered now, from `nextSub`. */
  read: boolean;
  /** Listed subdirectories found while reading (NUL-terminated names). */
  subdirs: Uint8Array[];
  nextSub: number;
  /** The reader's current fill, while `read` is false. */
  next: number;
  count: number;
}

/** Walks DST from `rootFd` and removes what the listing did not name, a slice at a time. */
export class DeletePass {
  private readonly st = new StatBuf();
  /** One reader serves every frame: a frame's subdirectories are entered only after it was read. */
  private readonly reader = new DirReader();
  private readonly own: Uint8Array;
  /** The path being looked at, as bytes: the directory's path and "/", then the name. */
  private path = new Uint8Array(4096);
  private readonly stack: Frame[] = [];
  /** An extraneous directory being removed, and the path reported when it is gone. */
  private removing: { remover: TreeRemover; rel: string; failed: boolean } | undefined;
  private finished = false;

  constructor(rootFd: number, private readonly o: DeletePassOptions) {
    this.own = new TextEncoder().encode(o.ownPrefix);
    // A descriptor of its own for DST: a directory's read position belongs to its open file.
    const fd = libc.openat(rootFd, DOT, O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    if (fd < 0) {
      o.onError(".", new SysError("open", errno(), "."));
      this.finished = true;
      return;
    }
    this.reader.open(fd);
    this.stack.push({ fd, rel: "", prefix: 0, read: false, subdirs: [], nextSub: 0, next: 0, count: 0 });
  }

  get done(): boolean {
    return this.finished;
  }

  /**
   * Works until the pass is over or performance.now() passes `deadline` (checked every few
   * dozen entries). Returns true when the pass is over.
   */
  step(deadline: number): boolean {
    let n = 0;
    while (!this.finished) {
      if (this.removing !== undefined) {
        const r = this.removing;
        if (!r.remover.step(deadline)) return false;
        this.removing = undefined;
        if (!r.failed) this.o.onDeleted(r.rel);
        continue;
      }
      if ((++n & 63) === 0 && performance.now() > deadline) return false;
      const top = this.stack[this.stack.length - 1];
      if (top === undefined) {
        this.finished = true;
        break;
      }
      if (!top.read) this.readOne(top);
      else this.enterNext(top);
    }
    return true;
  }

  /** Stops early: every directory still open is closed. */
  close(): void {
    this.removing?.remover.close();
    this.removing = undefined;
    for (const f of this.stack) libc.close(f.fd);
    this.stack.length = 0;
    this.finished = true;
  }

  /** Looks at the next entry of the frame being read (or reads the next getdents batch). */
  private readOne(f: Frame): void {
    const reader = this.reader;
    if (f.next >= f.count) {
      const n = reader.fill(false);
      if (n < 0) this.o.onError(f.rel || ".", new SysError("getdents64", -n, f.rel || "."));
      if (n <= 0) {
        f.read = true;
        return;
      }
      f.next = 0;
      f.count = n;
    }
    const o = this.o;
    const rec = reader.order[f.next++];
    const b = reader.buf;
    const at = reader.nameOff(rec);
    const len = reader.nameLen(rec);
    const prefix = f.prefix;
    // At every depth: a directory new in this session sits under a temporary name inside
    // its (existing) parent until the session ends, after this pass.
    if (this.isOwn(b, at, len)) return;
    const r = lstatAt(f.fd, reader.nameAddr(rec), this.st);
    if (r === -E.ENOENT) return;
    const isDir = r === 0 && this.st.type === S.IFDIR;
    this.room(prefix + len + 1);
    const path = this.path;
    for (let i = 0; i < len; i++) path[prefix + i] = b[at + i];
    let rel: string | undefined;
    if (o.filter !== undefined) {
      rel = lossy.decode(path.subarray(0, prefix + len));
      if (o.filter.excluded(rel, isDir)) return;
    }
    // A name that is not valid UTF-8 cannot be in the listing: its bytes match no listed path.
    if (o.seen.hasBytes(path, prefix + len)) {
      if (isDir && !(o.replaced !== undefined && o.replaced.has(rel ?? lossy.decode(path.subarray(0, prefix + len))))) f.subdirs.push(b.slice(at, at + len + 1));
      return;
    }
    rel ??= lossy.decode(path.subarray(0, prefix + len));
    if (o.dryRun) {
      o.onDeleted(rel);
      return;
    }
    const removing = {
      remover: new TreeRemover(f.fd, reader.zname(rec), rel, (syscall: string, err: number, p: string) => {
        removing.failed = true;
        o.onError(p, new SysError(syscall, err < 0 ? -err : err, p));
      }),
      rel,
      failed: false,
    };
    this.removing = removing;
  }

  /** Enters the frame's next listed subdirectory, or leaves the frame when none is left. */
  private enterNext(f: Frame): void {
    if (f.nextSub >= f.subdirs.length) {
      this.stack.pop();
      libc.close(f.fd);
      return;
    }
    const z = f.subdirs[f.nextSub];
    f.subdirs[f.nextSub++] = EMPTY;
    const len = z.length - 1;
    this.room(f.prefix + len + 1);
    this.path.set(z.subarray(0, len), f.prefix);
    this.path[f.prefix + len] = 0x2f;
    const rel = lossy.decode(this.path.subarray(0, f.prefix + len));
    const fd = libc.openat(f.fd, z, O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC, 0);
    if (fd < 0) {
      this.o.onError(rel, new SysError("open", errno(), rel));
      return;
    }
    this.reader.open(fd);
    this.stack.push({ fd, rel, prefix: f.prefix + len + 1, read: false, subdirs: [], nextSub: 0, next: 0, count: 0 });
  }

  private room(need: number): void {
    if (need <= this.path.length) return;
    const bigger = new Uint8Array(Math.max(need, 2 * this.path.length));
    bigger.set(this.path);
    this.path = bigger;
  }

  private isOwn(b: Uint8Array, at: number, len: number): boolean {
    const own = this.own;
    if (own.length === 0 || len < own.length) return false;
    for (let i = 0; i < own.length; i++) if (b[at + i] !== own[i]) return false;
    return true;
  }
}

const EMPTY = new Uint8Array(0);
const DOT = new Uint8Array([0x2e, 0]);

/** The whole pass in one call (for callers with nothing else to serve meanwhile). */
export function deletePass(rootFd: number, o: DeletePassOptions): void {
  new DeletePass(rootFd, o).step(Infinity);
}
