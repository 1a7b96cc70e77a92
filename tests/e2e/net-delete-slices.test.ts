// tests/e2e/net-delete-slices.test.ts — a long --delete pass never looks like a dead
// session (issue 5: --delete on "datasets of millions of files"). The receiver deletes in
// slices between its I/O completions and the sender waits for the REPORT meanwhile, so a
// pass that takes longer than the idle timeout ends nothing. Here the idle timeout is cut
// to 300 ms on both ends; removing a directory of 60,000 entries takes longer than that,
// and it is one DELETED message, so nothing else crosses the wire while it goes. The same
// for a directory of 80,000 entries in the way of a file the source has, which goes in
// the middle of the transfer (the file's answer, and a hard link to it, wait for it).
// Before both ran in slices, the sender gave up with "idle timeout".
// Black box: the real CLI over loopback; only files, exit codes and --json.

import { describe, expect, test } from "bun:test";
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { expectBothExit, formatBoth, netWorkDir, transferJson } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { snapshotTree, writeTree } from "../helpers/tree.ts";

const { fresh } = netWorkDir("net-delete-slices");
const IDLE = { URING_SYNC_IDLE_TIMEOUT_MS: "300" };

/** `count` empty files named f0..f{count-1} in `dir` (made if missing). */
function emptyFiles(dir: string, count: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) closeSync(openSync(join(dir, `f${i}`), "w"));
}

const sync = (src: string, dst: string, sendArgs: string[]) => transferJson(src, dst, sendArgs, IDLE);

describe("--delete with more to remove than fits in the idle timeout", () => {
  test("a huge extraneous directory and thousands of extraneous files go; nothing times out; the dry run first changes nothing", async () => {
    const src = fresh("src");
    const dst = fresh("dst");
    writeTree(src, { "a.txt": "alpha\n", "sub/b.txt": "bravo\n", "sub/deeper/c.txt": "charlie\n" });
    const first = await sync(src, dst, []);
    expectBothExit(first.t, 0, 0);

    // One extraneous directory, three levels of it, 60,000 files: a single DELETED when it is gone.
    for (let d = 0; d < 3; d++) emptyFiles(join(dst, "junk", `d${d}`, "inner"), 20_000);
    // A file new in the source, with a hard link, where DST has a directory of 80,000 files.
    writeTree(src, { "now-a-file": "was a directory\n" });
    linkSync(join(src, "now-a-file"), join(src, "link-to-it"));
    for (let d = 0; d < 2; d++) emptyFiles(join(dst, "now-a-file", `x${d}`), 40_000);
    // Extraneous files inside a listed directory: one DELETED each.
    emptyFiles(join(dst, "sub", "deeper"), 3_000);

    const dry = await sync(src, dst, ["--delete", "--dry-run"]);
    expectBothExit(dry.t, 0, 0);
    expect(dry.send.filesDeleted).toBe(3_002);
    // The directory in the file's way would go whole, as the real run reports it.
    const changes = (dry.send.changes as { action: string; path: string }[]).filter((c) => c.path.startsWith("now-a-file"));
    expect(changes.map((c) => `${c.action} ${c.path}`).sort()).toEqual(["delete now-a-file", "send now-a-file"]);
    // Nothing went (counting is enough: a dry run that removed anything would have removed these).
    for (let d = 0; d < 3; d++) expect(readdirSync(join(dst, "junk", `d${d}`, "inner")).length).toBe(20_000);
    for (let d = 0; d < 2; d++) expect(readdirSync(join(dst, "now-a-file", `x${d}`)).length).toBe(40_000);
    expect(readdirSync(join(dst, "sub", "deeper")).length).toBe(3_001);

    const r = await sync(src, dst, ["--delete"]);
    expectBothExit(r.t, 0, 0);
    expect(r.t.recv.stderr + r.t.send.stderr).not.toMatch(/idle timeout/);
    expect(r.send.filesDeleted).toBe(3_002);
    expect(r.recv.filesDeleted).toBe(3_002);
    expect(r.send.filesFailed).toBe(0);
    expect(r.send.filesSent).toBe(1);
    expect(r.send.bytesSent).toBe("was a directory\n".length);
    expect(existsSync(join(dst, "junk"))).toBe(false);
    expect(readFileSync(join(dst, "now-a-file"), "utf8")).toBe("was a directory\n");
    expect(statSync(join(dst, "link-to-it")).ino).toBe(statSync(join(dst, "now-a-file")).ino);
    expect(readdirSync(join(dst, "sub", "deeper"))).toEqual(["c.txt"]);
    expectNetCopy(snapshotTree(src), dst, "after --delete", formatBoth(r.t));
  }, 300_000);
});
