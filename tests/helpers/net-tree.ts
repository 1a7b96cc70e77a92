/**
 * What a network transfer must reproduce of a tree (issue 4, "Metadata"), as a comparison
 * on top of tests/helpers/tree.ts: content, permission bits (the copy has exactly
 * source mode & 0o777: setuid/setgid/sticky dropped), mtime in ns, symlinks as links with
 * the same target, empty directories, hard links inside the tree. Not compared: owners,
 * atimes, xattrs, allocation (holes travel as bytes), and DST's own attributes (the root is
 * never an ENTRY).
 */
import { expectNoDiff } from "./e2e.ts";
import { diffTrees, snapshotTree, type DiffOptions, type Snapshot } from "./tree.ts";

export const NET_DIFF: DiffOptions = {
  ignoreAtime: true,
  ignoreOwner: true,
  ignoreXattrs: true,
  ignoreBlocks: true,
  ignoreRoot: true,
  skip: (_p, f) => f === "mode",
};

/** Entries whose mode in the copy is not exactly the source's mode & 0o777. */
export function modeDiffs(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const [p, e] of before) {
    if (p === "." || e.type === "symlink") continue;
    const got = after.get(p);
    if (got === undefined || got.type !== e.type) continue; // reported by diffTrees
    const want = e.mode & 0o777;
    if (got.mode !== want) {
      out.push(`${JSON.stringify(p)}: mode 0${got.mode.toString(8)} in the copy, want 0${want.toString(8)} (source 0${e.mode.toString(8)}: permission bits kept, setuid/setgid/sticky dropped)`);
    }
  }
  return out;
}

/** Throw, listing the differences (and `context`), unless DST is the source as the protocol carries it. */
export function expectNetCopy(before: Snapshot, dst: string, what: string, context?: string): Snapshot {
  const after = snapshotTree(dst);
  const diffs = [...diffTrees(before, after, NET_DIFF), ...modeDiffs(before, after)];
  try {
    expectNoDiff(diffs, what);
  } catch (e) {
    throw new Error(context === undefined ? (e as Error).message : `${(e as Error).message}\n${context}`);
  }
  return after;
}
