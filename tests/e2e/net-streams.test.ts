// tests/e2e/net-streams.test.ts — `send -j N` parallel streams (issue 5) as a user runs
// it: a real `uring-sync recv` child and real `uring-sync send` children over loopback.
// -j 4 lands a byte-identical tree whose large files were split into pieces across the
// streams (encrypted with userspace TLS, and --plaintext), with several 40 MiB files, a
// sparse file and many small ones; a re-run sends nothing; -j 1 uses one connection; a
// sender SIGKILLed mid-transfer with -j 4 is resumed by a re-run. kTLS per stream is
// covered by the VM test (each stream simply has its own keys). Black box: only the CLI,
// sockets, the file system and --json.

import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, openSync, closeSync, ftruncateSync, writeSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseJson } from "../helpers/cli.ts";
import { expectBothExit, netWorkDir, RESUME_BIG, resumeSource, killSenderAt, partialSize, runSender, startReceiver, transfer } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeRandom, writeTree } from "../helpers/tree.ts";

const { fresh } = netWorkDir("net-streams");

const BIG = 40 * MiB;

function bigTree(root: string): number {
  mkdirSync(root, { recursive: true });
  for (let i = 0; i < 3; i++) writeRandom(join(root, `big${i}.bin`), BIG + i * 4097);
  writeRandom(join(root, "sub/odd.bin"), 17 * MiB + 3);
  // Sparse: 48 MiB with two data islands (one crossing an 8 MiB piece boundary) and a trailing hole.
  const fd = openSync(join(root, "sparse.img"), "w");
  const island = Buffer.alloc(3 * MiB, 0x5a);
  writeSync(fd, island, 0, island.length, 7 * MiB);
  writeSync(fd, island, 0, 1000, 30 * MiB);
  ftruncateSync(fd, 48 * MiB);
  closeSync(fd);
  const small: Record<string, string> = {};
  for (let i = 0; i < 300; i++) small[`small/d${i % 7}/f${i}.txt`] = `small file ${i}\n`.repeat(1 + (i % 13));
  writeTree(root, small);
  return 3 * BIG + 3 * 4097 + 17 * MiB + 3 + 48 * MiB;
}

describe("send -j N", () => {
  let src: string;
  beforeAll(() => {
    src = fresh("src");
    bigTree(src);
  }, 60_000);

  for (const mode of ["userspace TLS", "plaintext"] as const) {
    test(`-j 4 (${mode}): byte-identical tree, large files split across the streams; a re-run sends nothing`, async () => {
      const dst = fresh("dst");
      const sec = mode === "plaintext" ? ["--plaintext"] : ["--crypto", "user"];
      const before = snapshotTree(src);
      const t = await transfer({ src, dst, sendArgs: ["-j", "4", "--json", ...sec], recvArgs: ["--json", ...sec], timeoutMs: 180_000 });
      expectBothExit(t, 0, 0);
      expectNetCopy(before, dst, `-j 4 ${mode}`);
      const j = parseJson(t.send);
      const r = parseJson(t.recv);
      // The data streams connect when the first large file is wanted; the transfer goes on meanwhile.
      expect(j.streams as number).toBeGreaterThan(1);
      expect(j.streams as number).toBeLessThanOrEqual(4);
      expect(r.streams as number).toBeGreaterThan(1);
      expect(r.streams as number).toBeLessThanOrEqual(j.streams as number);
      expect(j.crypto).toBe(mode === "plaintext" ? "plaintext" : "user");
      expect(j.filesSent).toBe(305);
      expect(statSync(join(dst, "sparse.img")).blocks * 512).toBeLessThan(16 * MiB);
      // Again: nothing to send, and no data stream needed.
      const again = await transfer({ src, dst, sendArgs: ["-j", "4", "--json", ...sec], recvArgs: ["--json", ...sec], timeoutMs: 120_000 });
      expectBothExit(again, 0, 0);
      const a = parseJson(again.send);
      expect(a.filesSent).toBe(0);
      expect(a.bytesSent).toBe(0);
      expect(a.filesUnchanged).toBe(305);
      expect(a.streams).toBe(1);
      expectNetCopy(before, dst, `-j 4 ${mode} re-run`);
    }, 240_000);
  }

  test("-j 4 with a tiny record limit per key: every stream re-keys (a data stream is replaced by a new one), byte-identical", async () => {
    const dst = fresh("dstrk");
    const before = snapshotTree(src);
    const env = { URING_SYNC_MAX_RECORDS: "1500" };
    const t = await transfer({ src, dst, sendArgs: ["-j", "4", "--json", "--crypto", "user"], recvArgs: ["--json", "--crypto", "user"], sendEnv: env, recvEnv: env, timeoutMs: 180_000 });
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "-j 4 re-keying");
    const j = parseJson(t.send);
    // 1500 records of 16 KiB: about 23 MiB per key, so the streams carrying 185 MiB must be replaced.
    expect(j.rekeys as number).toBeGreaterThanOrEqual(2);
    // The receiver reports the most connections it had open at once. A replaced data stream
    // and its replacement are separate TCP connections: the replacement's handshake and JOIN
    // can be read before the end of the stream it replaces (for instance while the receiver
    // has stopped reading data streams to let its writes catch up), so one more than -j is
    // possible for a moment; replaced streams must not pile up beyond that.
    expect(parseJson(t.recv).streams as number).toBeLessThanOrEqual(5);
  }, 240_000);

  test("-j 1: one connection, as without data streams", async () => {
    const dst = fresh("dst1");
    const before = snapshotTree(src);
    const t = await transfer({ src, dst, sendArgs: ["-j", "1", "--json"], recvArgs: ["--json", "--crypto", "user"], timeoutMs: 180_000 });
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "-j 1");
    expect(parseJson(t.send).streams).toBe(1);
    expect(parseJson(t.recv).streams).toBe(1);
  }, 240_000);

  test("-j out of range is a usage error", async () => {
    for (const bad of ["0", "17", "x"]) {
      const r = await runSender(src, "127.0.0.1:9", { args: ["-j", bad] });
      expect(r.code, `-j ${bad}`).toBe(2);
      expect(r.stderr).toMatch(/-j|--jobs/);
    }
  }, 60_000);
});

describe("send -j 4: resume", () => {
  const SIZE = RESUME_BIG;
  let src: string;
  beforeAll(() => {
    src = resumeSource(fresh("resume-src"));
  }, 60_000);

  test("the sender SIGKILLed mid-transfer: a re-run with -j 4 resumes from the contiguous prefix and completes byte-identical", async () => {
    const dst = fresh("resume-dst");
    const rcv = await startReceiver({ dst, args: ["--crypto", "user", "--keep-listening", "--json"] });
    await killSenderAt(rcv, src, dst, "big.bin", 64 * MiB, 4);
    const kept = partialSize(dst, "big.bin");
    // Only the contiguous prefix from 0 is kept (pieces beyond a gap are dropped).
    expect(kept).toBeGreaterThanOrEqual(MiB);
    expect(existsSync(join(dst, "big.bin"))).toBe(false);
    const done = await runSender(src, rcv.address, { args: ["-j", "4", "--json"], timeoutMs: 120_000 });
    expect(done.code).toBe(0);
    const j = parseJson(done);
    expect(j.filesResumed).toBe(1);
    expect(j.bytesSent as number).toBeLessThanOrEqual(SIZE - kept + 16);
    expect(partialSize(dst, "big.bin")).toBe(-1);
    await rcv.stop("SIGTERM");
    expectNetCopy(snapshotTree(src), dst, "resumed -j 4 transfer");
  }, 240_000);
});
