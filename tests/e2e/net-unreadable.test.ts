// tests/e2e/net-unreadable.test.ts — a source file the sender cannot read, over the
// network, as a user sees it: the real sender runs as uid 65534 (setpriv; the tests run as
// root, for whom chmod 000 means nothing) against a real root receiver on loopback. The
// sender's open of an announced file fails on its WANT: that must be one per-file failure
// (a one-line error with the path and EACCES, filesFailed in --json, exit 1), never a
// broken session; the receiver completes the session (exit 0) with every readable file
// byte-identical and nothing (no partial, no temporary) for the unreadable ones. Covers a
// small file, a large one (partial-name and split sizes) with -j 1 and -j 2 (data streams:
// the receiver tracks per-file coverage), and --delete (the listing is then incomplete:
// nothing deleted, the old copy of the unreadable file kept). Black box: only the CLI,
// sockets, the file system and --json.

import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatResult, lines, parseJson, requireRoot, type RunResult } from "../helpers/cli.ts";
import { expectNoDiff, lineWith } from "../helpers/e2e.ts";
import { formatBoth, netWorkDir, receiverEnds, runSender, startReceiver } from "../helpers/net.ts";
import { expectNetCopy, modeDiffs, NET_DIFF } from "../helpers/net-tree.ts";
import { diffTrees, MiB, snapshotTree, writeRandom, writeTree, type Snapshot } from "../helpers/tree.ts";

const { fresh } = netWorkDir("net-unreadable");
const NOBODY = { uid: 65534, gid: 65534 };
const SMALL_LOCKED = "small/locked.txt";
/** At least the receiver's partial-name size and the sender's split size (16 MiB): both large-file paths. */
const BIG_LOCKED = "big/locked.bin";
const LOCKED = [SMALL_LOCKED, BIG_LOCKED];

/** Every name below `dir`, relative ("a/b"). */
function allNames(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const p = rel === "" ? e.name : `${rel}/${e.name}`;
    out.push(p);
    if (e.isDirectory()) out.push(...allNames(dir, p));
  }
  return out;
}

/** One session: a root receiver (default: one session, then exit), the sender as uid 65534 with --json. */
async function session(src: string, dst: string, sendArgs: string[]): Promise<{ send: RunResult; recv: RunResult }> {
  const rcv = await startReceiver({ dst, args: ["--json"] });
  let send: RunResult;
  try {
    send = await runSender(src, rcv.address, { args: [...sendArgs, "--json"], user: NOBODY, timeoutMs: 120_000 });
  } catch (e) {
    await rcv.stop("SIGKILL", 2_000).catch(() => undefined);
    throw new Error(`${(e as Error).message}\n--- receiver ---\n${rcv.describe()}`);
  }
  const recv = await receiverEnds(rcv, 15_000, send);
  return { send, recv };
}

/** The sender's report: exit 1, one line per unreadable file naming it and EACCES, the --json failures. */
function expectTwoFailures(t: { send: RunResult; recv: RunResult }): Record<string, unknown> {
  const both = formatBoth(t);
  expect(t.send.code, `sender exit 1 (some files failed)\n${both}`).toBe(1);
  expect(t.recv.code, `receiver exit 0 (the session completed)\n${both}`).toBe(0);
  for (const p of LOCKED) {
    const line = lineWith(t.send.stderr, p, "EACCES");
    expect(line, `one line naming ${p} and EACCES\n${both}`).toBeDefined();
    expect(line as string, both).toMatch(/\bopen\b/);
  }
  expect(t.send.stderr, both).not.toMatch(/receiver reported an error|fewer than/);
  expect(lines(t.send.stderr).filter((l) => /error/i.test(l)).length, `one error line per unreadable file, no other error\n${both}`).toBe(2);
  const j = parseJson(t.send);
  expect(j.filesFailed, both).toBe(2);
  const failures = j.failures as { path: string; code: string }[];
  expect(failures.map((f) => `${f.path} ${f.code}`).sort(), both).toEqual(LOCKED.map((p) => `${p} EACCES`).sort());
  return j;
}

/** DST holds exactly the readable files, byte-identical; nothing of the unreadable ones (no partial, no temp name). */
function expectReadableCopied(readable: Snapshot, dst: string, t: { send: RunResult; recv: RunResult }): void {
  expectNetCopy(readable, dst, "the readable files", formatBoth(t));
  const stray = allNames(dst).filter((n) => n.includes("locked") || n.includes("usync"));
  expect(stray, `nothing for the unreadable files in DST\n${formatBoth(t)}`).toEqual([]);
}

describe("send: a source file the sender cannot read (run as uid 65534)", () => {
  let src: string;
  /** What must arrive: the source without the unreadable files. */
  let readable: Snapshot;
  let readableFiles = 0;

  beforeAll(() => {
    requireRoot("runs the sender as uid 65534 with setpriv");
    src = fresh("src");
    const small: Record<string, string> = {};
    for (let i = 0; i < 40; i++) small[`small/f${String(i).padStart(2, "0")}.txt`] = `small file ${i}\n`.repeat(1 + (i % 7));
    small[SMALL_LOCKED] = "not for you\n";
    writeTree(src, small);
    mkdirSync(join(src, "big"));
    writeRandom(join(src, "big/split.bin"), 20 * MiB + 5); // split across the streams with -j 2
    writeRandom(join(src, "big/partial.bin"), 9 * MiB); // under a partial name on the receiver
    writeRandom(join(src, BIG_LOCKED), 17 * MiB + 1);
    for (let i = 0; i < 4; i++) writeRandom(join(src, `big/m${i}.bin`), 2 * MiB);
    for (const p of LOCKED) chmodSync(join(src, p), 0o000);
    readable = snapshotTree(src);
    for (const p of LOCKED) readable.delete(p);
    readableFiles = [...readable.values()].filter((e) => e.type === "file").length;
  }, 60_000);

  for (const jobs of ["1", "2"]) {
    test(`-j ${jobs}: sender exit 1 with both unreadable files reported, every readable file stored, receiver exit 0`, async () => {
      const dst = fresh("dst");
      const t = await session(src, dst, ["-j", jobs]);
      const j = expectTwoFailures(t);
      expect(j.filesSent, formatBoth(t)).toBe(readableFiles);
      expect(j.deleteSkipped, formatBoth(t)).toBe(false);
      if (jobs === "2") expect(j.streams as number, `the split file went over a data stream\n${formatBoth(t)}`).toBeGreaterThan(1);
      expectReadableCopied(readable, dst, t);
      const r = parseJson(t.recv);
      expect(r.filesReceived, formatResult(t.recv)).toBe(readableFiles);
    }, 180_000);
  }

  test("--delete: the listing is incomplete, so nothing is deleted and the old copy of an unreadable file stays", async () => {
    const dst = fresh("dst");
    mkdirSync(join(dst, "small"), { recursive: true });
    writeFileSync(join(dst, "extraneous.txt"), "not in SRC\n");
    writeFileSync(join(dst, SMALL_LOCKED), "an older copy\n");
    const t = await session(src, dst, ["-j", "2", "--delete"]);
    const j = expectTwoFailures(t);
    expect(j.deleteSkipped, `--delete skipped: the listing is incomplete\n${formatBoth(t)}`).toBe(true);
    expect(j.filesDeleted, formatBoth(t)).toBe(0);
    expect(lineWith(t.send.stderr, "--delete", "nothing was deleted"), `the sender says why nothing was deleted\n${formatBoth(t)}`).toBeDefined();
    expect(readFileSync(join(dst, "extraneous.txt"), "utf8")).toBe("not in SRC\n");
    expect(readFileSync(join(dst, SMALL_LOCKED), "utf8"), "the aborted file did not replace the old copy").toBe("an older copy\n");
    // Everything else is the readable source, as without --delete.
    const have = snapshotTree(dst);
    have.delete("extraneous.txt");
    have.delete(SMALL_LOCKED);
    expectNoDiff([...diffTrees(readable, have, NET_DIFF), ...modeDiffs(readable, have)], "the readable files (with --delete)", t.send);
    expect(allNames(dst).filter((n) => n.includes("usync") || n === BIG_LOCKED), formatBoth(t)).toEqual([]);
  }, 180_000);
});
