// tests/e2e/net-latency.test.ts — network transfer where the network has latency (issue 5:
// "where the network adds latency, behaviour stays correct"): a real `uring-sync recv` and a
// real `uring-sync send` talk through scripts/delay-proxy.ts, which delays every chunk by
// 20 ms each way (this kernel has no tc netem). A tree of small files, a few MiB-sized
// files, symlinks and an empty directory must arrive byte-identical with exit 0 on both
// ends; a second run into the same DST through the proxy must send no file data, and after
// one file changed in DST a third run exactly that file (the `--json` counts of the
// sender). Correctness only: nothing here is timed.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, symlinkSync, utimesSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DelayProxy } from "../../scripts/delay-proxy.ts";
import { parseJson, type RunResult } from "../helpers/cli.ts";
import { removeDir, workDir } from "../helpers/e2e.ts";
import { expectBothExit, formatBoth, killAllReceivers, receiverEnds, runSender, startReceiver, transfer } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeRandom, writeTree, type Snapshot } from "../helpers/tree.ts";

const DELAY_MS = 20;
const work = workDir("net-latency");
let src: string;
let before: Snapshot;
let fileCount = 0;
let fileBytes = 0;
const proxies: DelayProxy[] = [];

beforeAll(() => {
  src = join(work, "src");
  const files: Record<string, string | Buffer> = {};
  // 300 small files (0 to ~6 KiB, a few empty) over nested directories.
  for (let i = 0; i < 300; i++) {
    const size = i % 37 === 0 ? 0 : (i * 7919) % 6000;
    files[`small/d${i % 12}/sub${i % 3}/f${i}.dat`] = Buffer.alloc(size, (i * 31) & 0xff);
  }
  files["README.txt"] = "a tree sent through a proxy that adds 20 ms each way\n";
  writeTree(src, files);
  // A few MiB-sized random files, none a multiple of a record or chunk size.
  writeRandom(join(src, "big/one.bin"), 3 * MiB + 123);
  writeRandom(join(src, "big/two.bin"), 5 * MiB - 77);
  writeRandom(join(src, "big/nested/three.bin"), 2 * MiB + 4097);
  mkdirSync(join(src, "empty-dir"));
  symlinkSync("big/one.bin", join(src, "link-to-file"));
  symlinkSync("small/d3", join(src, "link-to-dir"));
  symlinkSync("does/not/exist", join(src, "dangling"));
  symlinkSync("/etc/hostname", join(src, "absolute"));
  // Old, distinct mtimes (what size+mtime skipping on a re-run compares).
  utimesSync(join(src, "README.txt"), 1_600_000_000, 1_600_000_000.123456);
  utimesSync(join(src, "big/two.bin"), 1_500_000_000, 1_500_000_000);
  before = snapshotTree(src);
  for (const e of before.values()) {
    if (e.type === "file") {
      fileCount++;
      fileBytes += e.size;
    }
  }
});
afterEach(async () => {
  await killAllReceivers();
  for (const p of proxies.splice(0)) await p.stop();
});
afterAll(() => removeDir(work));

/** One session through a fresh delaying proxy in front of a fresh receiver on `dst`. */
async function sessionThroughProxy(dst: string, sendArgs: string[]): Promise<{ send: RunResult; recv: RunResult; proxy: DelayProxy }> {
  const rcv = await startReceiver({ dst, lifetimeMs: 180_000 });
  const proxy = new DelayProxy({ targetHost: "127.0.0.1", targetPort: rcv.port, delayMs: DELAY_MS });
  proxies.push(proxy);
  await proxy.start();
  let send: RunResult;
  try {
    send = await runSender(src, proxy.address, { args: sendArgs, timeoutMs: 150_000 });
  } catch (e) {
    await rcv.stop("SIGKILL", 2_000).catch(() => undefined);
    throw new Error(`${(e as Error).message}\n--- receiver ---\n${rcv.describe()}`);
  }
  const recv = await receiverEnds(rcv, 30_000, send);
  return { send, recv, proxy };
}

function num(j: Record<string, unknown>, key: string, context: string): number {
  const v = j[key];
  if (typeof v !== "number") throw new Error(`send --json: ${key} must be a number, got ${JSON.stringify(v)}\n${context}`);
  return v;
}

describe(`through a proxy adding ${DELAY_MS} ms each way`, () => {
  test("small files, MiB-sized files and symlinks arrive byte-identical; exit 0 on both ends", async () => {
    const dst = join(work, "dst-first");
    const t = await sessionThroughProxy(dst, ["--json"]);
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "send through the delaying proxy", formatBoth(t));
    // The data really went through the proxy (not around it).
    const st = t.proxy.stats();
    expect(st.accepted).toBeGreaterThanOrEqual(1);
    expect(st.bytesUp).toBeGreaterThanOrEqual(fileBytes);
    const j = parseJson(t.send);
    expect(num(j, "filesFailed", formatBoth(t))).toBe(0);
  }, 200_000);

  test("a second run into the same DST through the proxy sends no file data", async () => {
    const dst = join(work, "dst-rerun");
    // The first run goes direct (its correctness through the proxy is the test above).
    const first = await transfer({ src, dst });
    expectBothExit(first, 0, 0);
    expectNetCopy(before, dst, "the first, direct run", formatBoth(first));
    const t = await sessionThroughProxy(dst, ["--json"]);
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "the re-run through the delaying proxy", formatBoth(t));
    const j = parseJson(t.send);
    const ctx = formatBoth(t);
    expect(num(j, "bytesSent", ctx), `nothing changed, so no file bytes may be sent\n${ctx}`).toBe(0);
    expect(num(j, "bytes", ctx)).toBe(0); // = bytesSent
    expect(num(j, "filesSent", ctx)).toBe(0);
    expect(num(j, "filesUnchanged", ctx)).toBeGreaterThanOrEqual(fileCount);
    expect(num(j, "filesFailed", ctx)).toBe(0);
    expect(num(j, "bytesTotal", ctx)).toBeGreaterThanOrEqual(fileBytes);
    expect(j.dryRun).toBe(false);
    // The session itself (handshake, file list) still crossed the proxy, but no file data:
    // far fewer bytes than the tree holds.
    expect(t.proxy.stats().bytesUp).toBeLessThan(fileBytes / 4);

    // One file in DST altered (content and mtime): a third run sends exactly that file.
    const victim = "big/nested/three.bin";
    const fd = openSync(join(dst, victim), "r+");
    writeSync(fd, Buffer.from("altered"), 0, 7, 1000);
    closeSync(fd);
    utimesSync(join(dst, victim), 1_234_567_890, 1_234_567_890);
    const t3 = await sessionThroughProxy(dst, ["--json"]);
    expectBothExit(t3, 0, 0);
    expectNetCopy(before, dst, "the run after one file changed", formatBoth(t3));
    const j3 = parseJson(t3.send);
    const ctx3 = formatBoth(t3);
    expect(num(j3, "filesSent", ctx3)).toBe(1);
    expect(num(j3, "bytesSent", ctx3)).toBe(before.get(victim)!.size);
    expect(num(j3, "filesUnchanged", ctx3)).toBeGreaterThanOrEqual(fileCount - 1);
  }, 200_000);
});
