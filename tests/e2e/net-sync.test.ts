// tests/e2e/net-sync.test.ts — sync over the network (issue 5) as a user runs it: a real
// `uring-sync recv` child and real `uring-sync send` children over loopback. Only what
// changed moves (a re-run of an unchanged tree sends no file data; one changed file in
// 10,000 moves just that file; --checksum catches a same-size same-mtime change the
// default misses; --ignore-times resends), --delete (files, dirs, symlinks; never through
// a symlink in DST; --exclude protects), --dry-run (changes nothing on either side, lists
// the right changes), and resume: the sender SIGKILLed at several points of a large
// transfer, then re-run, continues from the receiver's verified partial; a receiver
// SIGKILLed mid-transfer leaves no partial file under a final name and a re-run completes.
// Black box: only the CLI, sockets, the file system and the output.

import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseJson, startCli, type RunResult } from "../helpers/cli.ts";
import { expectBothExit, netWorkDir, RESUME_BIG, resumeSource, formatBoth, killSenderAt, netEnv, partialSize, receiverEnds, runSender, startReceiver, transfer } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { diffTrees, MiB, snapshotTree, writeRandom, writeTree } from "../helpers/tree.ts";

const { fresh } = netWorkDir("net-sync");

/** One session with --json on the sender; both must exit 0. Returns the sender's JSON. */
async function sync(src: string, dst: string, sendArgs: string[] = [], recvArgs: string[] = []): Promise<{ json: Record<string, unknown>; recv: Record<string, unknown>; t: { recv: RunResult; send: RunResult } }> {
  const t = await transfer({ src, dst, sendArgs: [...sendArgs, "--json"], recvArgs: ["--crypto", "user", "--json", ...recvArgs], timeoutMs: 120_000 });
  expectBothExit(t, 0, 0);
  return { json: parseJson(t.send), recv: parseJson(t.recv), t };
}

function mixedTree(root: string): void {
  writeTree(root, {
    "a.txt": "alpha\n",
    "b.txt": "bravo bravo\n",
    "sub/c.txt": "charlie\n",
    "sub/deeper/d.bin": Buffer.alloc(5000, 3),
  });
  writeRandom(join(root, "big.bin"), 3 * MiB + 17);
  mkdirSync(join(root, "empty"));
  symlinkSync("a.txt", join(root, "link"));
  writeFileSync(join(root, "hard1"), "linked twice\n");
  require("node:fs").linkSync(join(root, "hard1"), join(root, "sub/hard2"));
}

describe("only what changed", () => {
  let src: string;
  beforeAll(() => {
    src = fresh("mixed");
    mixedTree(src);
  });

  test("a second run of an unchanged tree moves no file data and changes nothing", async () => {
    const dst = fresh("dst");
    const before = snapshotTree(src);
    const first = await sync(src, dst);
    expect(first.json.filesSent).toBe(6);
    expect(first.json.bytesSent).toBe(first.json.bytesTotal as number);
    const copied = expectNetCopy(before, dst, "first run", formatBoth(first.t));
    const again = await sync(src, dst);
    expect(again.json.bytesSent).toBe(0);
    expect(again.json.bytes).toBe(0);
    expect(again.json.filesSent).toBe(0);
    expect(again.json.filesUnchanged).toBe(6);
    expect(again.json.bytesTotal).toBe(first.json.bytesTotal as number);
    expect(again.json.filesFailed).toBe(0);
    expect(again.recv.filesUnchanged as number).toBeGreaterThanOrEqual(6);
    expect(again.recv.bytes).toBe(0);
    // Nothing in DST changed, not even a directory's mtime.
    expect(diffTrees(copied, snapshotTree(dst), { ignoreAtime: true })).toEqual([]);
    expect(again.t.send.stderr).not.toMatch(/\bsent [1-9]/);
  });

  test("both ends count a session alike (a hard link is a hard link, not a file), first run and re-run; the summaries say what happened", async () => {
    // 4 distinct files, one of them with a second name (a hard-link pair), 2 symlinks.
    const tree = fresh("counts");
    writeTree(tree, { "a.txt": "alpha\n", "b.txt": "bravo\n", "sub/c.txt": "charlie\n", "h1": "linked twice\n" });
    require("node:fs").linkSync(join(tree, "h1"), join(tree, "sub/h2"));
    symlinkSync("a.txt", join(tree, "s1"));
    symlinkSync("../b.txt", join(tree, "sub/s2"));
    const dst = fresh("dst-counts");
    const first = await sync(tree, dst);
    expect(first.json).toMatchObject({ filesSent: 4, filesUnchanged: 0, hardlinks: 1, symlinks: 2, receiver: { files: 7 } });
    expect(first.recv).toMatchObject({ filesReceived: 4, filesUnchanged: 0, hardlinks: 1, symlinks: 2 });
    const again = await sync(tree, dst);
    expect(again.json).toMatchObject({ filesSent: 0, filesUnchanged: 4, hardlinks: 1, symlinks: 2, receiver: { files: 7, bytes: 0 } });
    expect(again.recv).toMatchObject({ filesReceived: 0, filesUnchanged: 4, hardlinks: 1, symlinks: 2, bytes: 0 });
    // The same numbers on both ends.
    for (const r of [first, again]) {
      expect(r.recv.filesReceived).toBe(r.json.filesSent as number);
      expect(r.recv.filesUnchanged).toBe(r.json.filesUnchanged as number);
      expect(r.recv.hardlinks).toBe(r.json.hardlinks as number);
      expect(r.recv.symlinks).toBe(r.json.symlinks as number);
    }
    // The summary lines of a re-run: nothing was stored, and neither end says otherwise.
    const t = await transfer({ src: tree, dst, recvArgs: ["--crypto", "user"], timeoutMs: 120_000 });
    expectBothExit(t, 0, 0);
    expect(t.send.stderr).toMatch(/sent 0 files \(0 B\) in [\d.]+ s, 4 unchanged, receiver has 7 entries in place, 0 B written, 0 failed/);
    expect(t.send.stderr).not.toMatch(/stored/);
    expect(t.recv.stderr).toMatch(/received 0 files \(0 B\) in [\d.]+ s, 1 directory, 2 symlinks, 1 hard link, 4 unchanged, 0 failed/);
  });

  test("one changed file in 10,000 moves just that file", async () => {
    const big = fresh("tenk");
    const files: Record<string, string> = {};
    for (let i = 0; i < 10_000; i++) files[`d${i % 20}/f${i}.txt`] = `file number ${i}\n`;
    writeTree(big, files);
    const dst = fresh("dst-tenk");
    const first = await sync(big, dst);
    expect(first.json.filesSent).toBe(10_000);
    const changed = join(big, "d7/f4567.txt");
    writeFileSync(changed, "this one changed, and its size too\n");
    const size = statSync(changed).size;
    const again = await sync(big, dst);
    expect(again.json.filesSent).toBe(1);
    expect(again.json.bytesSent).toBe(size);
    expect(again.json.filesUnchanged).toBe(9_999);
    expect(readFileSync(join(dst, "d7/f4567.txt"), "utf8")).toBe("this one changed, and its size too\n");
    expectNetCopy(snapshotTree(big), dst, "after the change", formatBoth(again.t));
  }, 180_000);

  test("--checksum catches a same-size, same-mtime change that the default misses; --ignore-times resends", async () => {
    const s = fresh("cks");
    writeTree(s, { "x.txt": "AAAA content\n", "y.txt": "unchanged\n" });
    // Whole seconds: utimes sets them exactly, so the mtime can be put back.
    utimesSync(join(s, "x.txt"), 1_600_000_000, 1_600_000_000);
    const dst = fresh("dst-cks");
    await sync(s, dst);
    writeFileSync(join(s, "x.txt"), "BBBB content\n");
    utimesSync(join(s, "x.txt"), 1_600_000_000, 1_600_000_000);
    // Same size, same mtime: the default skips it.
    const quick = await sync(s, dst);
    expect(quick.json.filesSent).toBe(0);
    expect(readFileSync(join(dst, "x.txt"), "utf8")).toBe("AAAA content\n");
    const deep = await sync(s, dst, ["--checksum"]);
    expect(deep.json.filesSent).toBe(1);
    expect(deep.json.filesUnchanged).toBe(1);
    expect(readFileSync(join(dst, "x.txt"), "utf8")).toBe("BBBB content\n");
    const all = await sync(s, dst, ["--ignore-times"]);
    expect(all.json.filesSent).toBe(2);
    expect(all.json.filesUnchanged).toBe(0);
    expectNetCopy(snapshotTree(s), dst, "after --ignore-times", formatBoth(all.t));
  }, 120_000);

  test("--checksum with the same content but another mode and mtime fixes the metadata without data", async () => {
    const s = fresh("meta");
    writeTree(s, { "m.txt": "same bytes\n" });
    const dst = fresh("dst-meta");
    await sync(s, dst);
    require("node:fs").chmodSync(join(s, "m.txt"), 0o600);
    utimesSync(join(s, "m.txt"), new Date(1_500_000_000_000), new Date(1_500_000_000_000));
    const r = await sync(s, dst, ["--checksum"]);
    expect(r.json.filesSent).toBe(0);
    expect(r.json.bytesSent).toBe(0);
    expectNetCopy(snapshotTree(s), dst, "metadata fixed", formatBoth(r.t));
  });

  test("--checksum and --ignore-times together are a usage error", async () => {
    const r = await runSender(src, "127.0.0.1:9", { args: ["--checksum", "--ignore-times"] });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--checksum.*--ignore-times/);
  });
});

describe("--delete and --dry-run", () => {
  function planted(dst: string, outside: string): void {
    writeTree(dst, { "extra.txt": "not in the source\n", "olddir/inner/x.txt": "old\n", "sub/stale.txt": "stale\n", "keep.cache": "protected\n", "sub/k.cache": "protected too\n" });
    writeTree(outside, { "canary.txt": "outside canary\n" });
    symlinkSync(outside, join(dst, "escape-link"));
    // A symlink in DST where the walk goes on: it must be removed as a link, never followed.
    symlinkSync(outside, join(dst, "sub/into-outside"));
  }

  test("--delete removes extra files, dirs and symlinks, never follows a symlink, keeps --exclude'd paths", async () => {
    const s = fresh("del-src");
    writeTree(s, { "a.txt": "a\n", "sub/b.txt": "b\n", "sub/c.cache": "source cache\n" });
    const dst = fresh("del-dst");
    const outside = fresh("outside");
    planted(dst, outside);
    const r = await sync(s, dst, ["--delete", "--exclude", "*.cache"]);
    expect(r.json.filesDeleted).toBe(5);
    expect(r.recv.filesDeleted).toBe(5);
    for (const gone of ["extra.txt", "olddir", "sub/stale.txt", "escape-link", "sub/into-outside"]) expect(existsSync(join(dst, gone)) || isLink(join(dst, gone))).toBe(false);
    expect(readFileSync(join(dst, "keep.cache"), "utf8")).toBe("protected\n");
    expect(readFileSync(join(dst, "sub/k.cache"), "utf8")).toBe("protected too\n");
    expect(existsSync(join(dst, "sub/c.cache"))).toBe(false); // excluded: not sent either
    expect(readdirSync(outside)).toEqual(["canary.txt"]);
    expect(readFileSync(join(outside, "canary.txt"), "utf8")).toBe("outside canary\n");
    expect(readFileSync(join(dst, "a.txt"), "utf8")).toBe("a\n");
    expect(readFileSync(join(dst, "sub/b.txt"), "utf8")).toBe("b\n");
  });

  test("a file in DST where the source has a directory is replaced; a directory where it has a file only with --delete", async () => {
    const s = fresh("types-src");
    writeTree(s, { "x/in.txt": "inside x\n", "y": "y is a file now\n" });
    const dst = fresh("types-dst");
    writeTree(dst, { "x": "x was a file\n", "y/old.txt": "y was a directory\n" });
    const plain = await transfer({ src: s, dst, sendArgs: ["--json"], recvArgs: ["--crypto", "user"] });
    expectBothExit(plain, 1, 1);
    expect(readFileSync(join(dst, "x/in.txt"), "utf8")).toBe("inside x\n");
    expect(readFileSync(join(dst, "y/old.txt"), "utf8")).toBe("y was a directory\n");
    const r = await sync(s, dst, ["--delete"]);
    expect(r.json.filesDeleted).toBe(1);
    expect(readFileSync(join(dst, "y"), "utf8")).toBe("y is a file now\n");
    expectNetCopy(snapshotTree(s), dst, "types replaced", formatBoth(r.t));
  });

  test("--delete keeps directories that are new in this run, also inside existing directories", async () => {
    const s = fresh("del-new-src");
    writeTree(s, { "a/new/f.txt": "new file in a new dir\n", "a/new/deeper/g.txt": "deeper\n", "a/keep.txt": "keep\n", "top/h.txt": "new top dir\n" });
    const dst = fresh("del-new-dst");
    writeTree(dst, { "a/old.txt": "goes\n" });
    const r = await sync(s, dst, ["--delete"]);
    expect(r.json.filesDeleted).toBe(1);
    expect(r.json.filesFailed).toBe(0);
    expect(existsSync(join(dst, "a/old.txt"))).toBe(false);
    expectNetCopy(snapshotTree(s), dst, "new dirs with --delete", formatBoth(r.t));
  });

  test("--delete deletes nothing when the sender could not read part of its tree", async () => {
    const s = fresh("del-inc-src");
    writeTree(s, { "a.txt": "a\n" });
    const dst = fresh("del-inc-dst");
    writeTree(dst, { "extra.txt": "would go\n" });
    // A name that is not UTF-8: the protocol cannot carry it, so the listing is incomplete.
    writeFileSync(Buffer.concat([Buffer.from(`${s}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from(".txt")]), "x");
    writeFileSync(join(dst, "bad-copy.txt"), "a copy of that file under a UTF-8 name\n");
    const t = await transfer({ src: s, dst, sendArgs: ["--delete", "--json"], recvArgs: ["--crypto", "user"] });
    expectBothExit(t, 1, 0);
    const j = parseJson(t.send);
    expect(j.deleteSkipped).toBe(true);
    expect(j.filesDeleted).toBe(0);
    expect(t.send.stderr).toMatch(/nothing was deleted/);
    expect(readFileSync(join(dst, "extra.txt"), "utf8")).toBe("would go\n");
    expect(readFileSync(join(dst, "a.txt"), "utf8")).toBe("a\n");
  });

  test("--dry-run changes nothing on either side and lists what would be sent and deleted", async () => {
    const s = fresh("dry-src");
    writeTree(s, { "same.txt": "same\n", "new.txt": "new\n", "sub/changed.txt": "changed content\n", "newdir/n.txt": "n\n" });
    const dst = fresh("dry-dst");
    const outside = fresh("dry-outside");
    await sync(s, dst);
    writeFileSync(join(s, "sub/changed.txt"), "changed content, now longer\n");
    require("node:fs").rmSync(join(dst, "new.txt"));
    require("node:fs").rmSync(join(dst, "newdir"), { recursive: true });
    planted(dst, outside);
    const srcBefore = snapshotTree(s);
    const dstBefore = snapshotTree(dst);
    const t = await transfer({ src: s, dst, sendArgs: ["--dry-run", "--delete"], recvArgs: ["--crypto", "user"] });
    expectBothExit(t, 0, 0);
    const lines = t.send.stdout.trim().split("\n").sort();
    expect(lines).toEqual([
      "delete escape-link", "delete extra.txt", "delete keep.cache", "delete olddir", "delete sub/into-outside", "delete sub/k.cache", "delete sub/stale.txt",
      "send new.txt", "send newdir/n.txt", "send sub/changed.txt",
    ]);
    expect(t.send.stderr).toMatch(/dry run: would send 3 files/);
    // The receiver's summary says it was a dry run too (nothing received, nothing deleted).
    expect(t.recv.stderr).toMatch(/dry run: would receive 3 files in [0-9.]+ s, nothing changed, 1 unchanged, would delete 7/);
    expect(t.recv.stderr).not.toMatch(/received|\b7 deleted/);
    expect(diffTrees(dstBefore, snapshotTree(dst), { ignoreAtime: true })).toEqual([]);
    expect(diffTrees(srcBefore, snapshotTree(s), { ignoreAtime: true })).toEqual([]);
    // --json: the same, as data.
    const j = await sync(s, dst, ["--dry-run", "--delete"]);
    expect(j.json.dryRun).toBe(true);
    expect(j.recv.dryRun).toBe(true);
    expect(j.json.filesSent).toBe(3);
    expect(j.json.filesDeleted).toBe(7);
    const changes = (j.json.changes as { action: string; path: string }[]).map((c) => `${c.action} ${c.path}`).sort();
    expect(changes).toEqual(lines);
    expect(diffTrees(dstBefore, snapshotTree(dst), { ignoreAtime: true })).toEqual([]);
  });
});

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

describe("resume", () => {
  const SIZE = RESUME_BIG;
  let src: string;
  beforeAll(() => {
    src = resumeSource(fresh("resume-src"));
  }, 60_000);

  test("the sender SIGKILLed at several points: re-runs resume from the verified prefix", async () => {
    const dst = fresh("resume-dst");
    const rcv = await startReceiver({ dst, args: ["--crypto", "user", "--keep-listening", "--json"] });
    // -j 1: one stream writes the file in order, so the partial's size is the prefix a
    // resume keeps (with data streams only the contiguous prefix is kept: net-streams.test.ts).
    await killSenderAt(rcv, src, dst, "big.bin", 24 * MiB, 1);
    const first = partialSize(dst, "big.bin");
    expect(first).toBeGreaterThanOrEqual(MiB);
    expect(existsSync(join(dst, "big.bin"))).toBe(false);
    await killSenderAt(rcv, src, dst, "big.bin", first + 32 * MiB, 1);
    const second = partialSize(dst, "big.bin");
    expect(second).toBeGreaterThan(first);
    const done = await runSender(src, rcv.address, { args: ["-j", "1", "--json"], timeoutMs: 120_000 });
    expect(done.code).toBe(0);
    const j = parseJson(done);
    expect(j.filesResumed).toBe(1);
    expect(j.bytesSent as number).toBeLessThan(SIZE);
    expect(j.bytesSent as number).toBeLessThanOrEqual(SIZE - second + 16);
    expect(j.bytesTotal as number).toBe(SIZE + 6);
    expect(partialSize(dst, "big.bin")).toBe(-1);
    await rcv.stop("SIGTERM");
    expectNetCopy(snapshotTree(src), dst, "resumed transfer");
  }, 240_000);

  test("the receiver SIGKILLed mid-transfer leaves no partial file under a final name; a re-run completes", async () => {
    const dst = fresh("rkill-dst");
    const rcv = await startReceiver({ dst, args: ["--crypto", "user"] });
    const s = startCli(["send", src, rcv.address], { env: netEnv(undefined), timeoutMs: 120_000 });
    const until = performance.now() + 60_000;
    while (partialSize(dst, "big.bin") < 8 * MiB && performance.now() < until) await Bun.sleep(2);
    rcv.proc.kill("SIGKILL");
    const sent = await s.result;
    expect(sent.code).not.toBe(0);
    expect(existsSync(join(dst, "big.bin"))).toBe(false);
    for (const name of readdirSync(dst)) expect(name === "small.txt" || name.startsWith(".")).toBe(true);
    const t = await transfer({ src, dst, sendArgs: ["--json"], recvArgs: ["--crypto", "user"], timeoutMs: 120_000 });
    expectBothExit(t, 0, 0);
    expect(partialSize(dst, "big.bin")).toBe(-1);
    expect(readdirSync(dst).filter((x) => x.startsWith(".usync-tmp"))).toEqual([]);
    expectNetCopy(snapshotTree(src), dst, "after the receiver was killed", formatBoth(t));
  }, 240_000);
});

void receiverEnds;
