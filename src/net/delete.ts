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
 * Must never: leave DST, follow a symlink, remove an excluded path or anything under an
 * excluded directory, or throw for one entry (failures are reported and the walk goes on).
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { O, S } from "../../ffi/structs.ts";
import { removeTree } from "../copy/remove.ts";
import { lstatAt, StatBuf } from "../copy/sys.ts";
import type { Filter } from "../copy/filter.ts";
import { SysError } from "../errors.ts";
import { readNames } from "./dest.ts";

export interface DeletePassOptions {
  /**
   * Relative paths the sender listed (every kind). May answer true for a path that was not
   * listed (src/net/listed-paths.ts keeps hashes): that entry is then kept, never removed.
   */
  seen: { has(rel: string): boolean };
  /** The sender's --exclude/--include: excluded paths are protected. */
  filter: Filter | undefined;
  /** Names the receiver itself is using (its staging directories): never touched. */
  ownName: (name: string) => boolean;
  dryRun: boolean;
  /** Called for every entry removed (or, in a dry run, that would be). */
  onDeleted: (rel: string) => void;
  onError: (rel: string, error: SysError) => void;
}

const lossy = new TextDecoder("utf-8");
const strict = new TextDecoder("utf-8", { fatal: true });

/** Walks DST from `rootFd` and removes what the listing did not name. */
export function deletePass(rootFd: number, o: DeletePassOptions): void {
  const st = new StatBuf();
  const walk = (dirfd: number, dirRel: string): void => {
    let names: Uint8Array[];
    try {
      names = readNames(dirfd);
    } catch (e) {
      o.onError(dirRel || ".", e as SysError);
      return;
    }
    for (const z of names) {
      const bare = z.subarray(0, z.length - 1);
      let name: string;
      let utf8 = true;
      try {
        name = strict.decode(bare);
      } catch {
        // Not a name the protocol can carry: never in the listing.
        name = lossy.decode(bare);
        utf8 = false;
      }
      // At every depth: a directory new in this session sits under a temporary name inside
      // its (existing) parent until the session ends, after this pass.
      if (o.ownName(name)) continue;
      const rel = dirRel === "" ? name : `${dirRel}/${name}`;
      const r = lstatAt(dirfd, z, st);
      if (r === -E.ENOENT) continue;
      const isDir = r === 0 && st.type === S.IFDIR;
      if (o.filter !== undefined && o.filter.excluded(rel, isDir)) continue;
      if (utf8 && o.seen.has(rel)) {
        if (!isDir) continue;
        const fd = libc.openat(dirfd, z, O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC, 0);
        if (fd < 0) {
          o.onError(rel, new SysError("open", errno(), rel));
          continue;
        }
        try {
          walk(fd, rel);
        } finally {
          libc.close(fd);
        }
        continue;
      }
      if (o.dryRun) {
        o.onDeleted(rel);
        continue;
      }
      let failed = false;
      removeTree(dirfd, z, rel, (syscall, err, path) => {
        failed = true;
        o.onError(path, new SysError(syscall, err < 0 ? -err : err, path));
      });
      if (!failed) o.onDeleted(rel);
    }
  };
  walk(rootFd, "");
}
