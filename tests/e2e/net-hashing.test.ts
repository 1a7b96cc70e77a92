// tests/e2e/net-hashing.test.ts — hashing never stalls a network session (issue 5:
// --checksum "computed on both sides, in parallel with the listing"; resume verifies a
// prefix hash). Both ends hash large files on worker threads while their loop keeps
// going, and say KEEPALIVE while they do, so a hash that takes longer than the idle
// timeout ends nothing. Here the idle timeout is cut to 300 ms on both ends and a 1.5 GiB
// file takes well over that to hash on either side; before the hash pool the receiver
// dropped such a session with "idle timeout: nothing received".
// Black box: the real CLI over loopback; only files, exit codes and --json.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, readFileSync, statSync, utimesSync, writeSync } from "node:fs";
import { join } from "node:path";
import { expectBothExit, formatBoth, netWorkDir, transferJson } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeTree } from "../helpers/tree.ts";

const { fresh } = netWorkDir("net-hashing");
const IDLE = { URING_SYNC_IDLE_TIMEOUT_MS: "300" };

/** `size` bytes from a random MiB repeated with a counter in each block (fast to write, distinct blocks). */
function writeBig(path: string, size: number): void {
  const block = randomBytes(MiB);
  const fd = openSync(path, "w");
  try {
    for (let at = 0, i = 0; at < size; at += MiB, i++) {
      block.writeUInt32LE(i, 0);
      writeSync(fd, block, 0, Math.min(MiB, size - at));
    }
  } finally {
    closeSync(fd);
  }
}

const sync = (src: string, dst: string, sendArgs: string[]) => transferJson(src, dst, sendArgs, IDLE);

describe("--checksum with files that take longer to hash than the idle timeout", () => {
  test("both ends hash 1.5 GiB, a same-size change is caught, a hard link to a file being hashed is kept; nothing times out", async () => {
    const src = fresh("src");
    const dst = fresh("dst");
    writeTree(src, { "a.txt": "alpha\n", "sub/b.txt": "bravo\n" });
    const big = join(src, "big.bin");
    writeBig(big, 1536 * MiB);
    linkSync(big, join(src, "big-link.bin"));
    const mid = join(src, "mid.bin");
    writeBig(mid, 48 * MiB + 5);
    // Whole seconds, so the mtime can be put back exactly after a change.
    utimesSync(mid, 1_600_000_000, 1_600_000_000);

    // The first run stores everything (no hashing: nothing is there yet).
    const first = await sync(src, dst, []);
    expectBothExit(first.t, 0, 0);

    // DST's big file: same bytes, another mtime -> only a hash can tell it is unchanged.
    utimesSync(join(dst, "big.bin"), 1_500_000_000, 1_500_000_000);
    // The source's mid file: other bytes, same size and mtime -> only a hash can tell it changed.
    const fd = openSync(mid, "r+");
    writeSync(fd, Buffer.from("changed!"), 0, 8, 12345);
    closeSync(fd);
    utimesSync(mid, 1_600_000_000, 1_600_000_000);

    const r = await sync(src, dst, ["--checksum"]);
    expectBothExit(r.t, 0, 0);
    expect(r.t.recv.stderr + r.t.send.stderr).not.toMatch(/idle timeout/);
    expect(r.send.filesSent).toBe(1);
    expect(r.send.bytesSent).toBe(48 * MiB + 5);
    expect(r.send.filesFailed).toBe(0);
    // big.bin: hashed on both sides and found equal; its mtime is the source's again.
    expect(r.send.filesUnchanged).toBe(3);
    expect(statSync(join(dst, "big.bin")).mtimeMs).toBe(statSync(big).mtimeMs);
    expect(readFileSync(join(dst, "mid.bin")).subarray(12345, 12353).toString()).toBe("changed!");
    // The hard link came while its file's answer waited for the hash: still one inode.
    expect(statSync(join(dst, "big-link.bin")).ino).toBe(statSync(join(dst, "big.bin")).ino);
    expectNetCopy(snapshotTree(src), dst, "after --checksum", formatBoth(r.t));
  }, 300_000);
});
