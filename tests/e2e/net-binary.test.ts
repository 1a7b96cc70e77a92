// tests/e2e/net-binary.test.ts — `send` and `recv` of the compiled executable (dist/uring-sync,
// or $URING_SYNC_BIN): they re-execute themselves once with JavaScriptCore's FTL tier off
// (src/cli/jit.ts), keep their pid, arguments and environment, and still transfer a tree
// faithfully; URING_SYNC_JIT=default leaves the JIT alone. The binary is built first if
// missing or older than the sources.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDistBinary } from "../helpers/dist.ts";
import { removeDir, workDir } from "../helpers/e2e.ts";
import { expectBothExit, killAllReceivers, receiverEnds, runSender, startReceiver } from "../helpers/net.ts";
import { diffTrees, snapshotTree, writeRandom, writeTree } from "../helpers/tree.ts";

const work = workDir("net-binary");
let bin: string[];
let src: string;

/** The environment of a running process, from /proc. */
function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter((s) => s !== "");
}

beforeAll(() => {
  const env = process.env.URING_SYNC_BIN;
  bin = env !== undefined && env.trim() !== "" ? env.trim().split(/\s+/) : [ensureDistBinary()];
  src = join(work, "src");
  writeTree(src, { "a.txt": "a\n", "sub/b.txt": "b\n", "sub/deeper/empty.txt": "" });
  for (let i = 0; i < 50; i++) writeRandom(join(src, "many", `f${i}.bin`), 1000 + i * 97);
}, 180_000);
afterEach(async () => {
  await killAllReceivers();
});
afterAll(() => removeDir(work), 60_000);

describe("compiled send/recv", () => {
  test("run with FTL off (one re-exec, same pid and arguments) and transfer faithfully", async () => {
    const dst = join(work, "dst-ftl-off");
    const rcv = await startReceiver({ dst, command: bin, env: { URING_SYNC_JIT: undefined } });
    const env = environOf(rcv.proc.pid);
    expect(env, rcv.describe()).toContain("BUN_JSC_useFTLJIT=0");
    expect(env.filter((e) => e.startsWith("BUN_JSC_useFTLJIT=")).length).toBe(1);
    expect(env.some((e) => e.startsWith("URING_SYNC_SECRET="))).toBe(true);
    const cmdline = readFileSync(`/proc/${rcv.proc.pid}/cmdline`, "utf8").split("\0").filter((s) => s !== "");
    expect(cmdline.slice(1)).toEqual(rcv.argv.slice(bin.length));
    const send = await runSender(src, rcv.address, { command: bin });
    const recv = await receiverEnds(rcv, 15_000, send);
    expectBothExit({ send, recv }, 0, 0);
    expect(diffTrees(snapshotTree(src), snapshotTree(dst), { ignoreAtime: true })).toEqual([]);
  }, 120_000);

  test("URING_SYNC_JIT=default: no re-exec, the JIT as it is", async () => {
    const dst = join(work, "dst-default");
    const rcv = await startReceiver({ dst, command: bin, env: { URING_SYNC_JIT: "default" } });
    expect(environOf(rcv.proc.pid).some((e) => e.startsWith("BUN_JSC_useFTLJIT=")), rcv.describe()).toBe(false);
    const send = await runSender(src, rcv.address, { command: bin, env: { URING_SYNC_JIT: "default" } });
    const recv = await receiverEnds(rcv, 15_000, send);
    expectBothExit({ send, recv }, 0, 0);
    expect(diffTrees(snapshotTree(src), snapshotTree(dst), { ignoreAtime: true })).toEqual([]);
  }, 120_000);
});
