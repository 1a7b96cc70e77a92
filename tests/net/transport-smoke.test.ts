/**
 * Loopback smoke tests of the whole transport: `recv` and `send` as two child processes
 * (tests/helpers/net.ts), a small tree with a symlink, a hard link, an empty directory and
 * a large sparse file, byte-identical on arrival, over userspace TLS and plaintext; a
 * transfer forced to re-key many times (URING_SYNC_MAX_RECORDS); and the synchronous
 * (no io_uring) backend. The e2e suite (tests/e2e/net.test.ts) covers the CLI in depth.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeSync, ftruncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatBoth, killAllReceivers, receiverEnds, runSender, startReceiver, TEST_SECRET, transfer, type Env, type TransferResult } from "../helpers/net.ts";
import { dataFrame, KIND, Peer, rawEntry } from "../helpers/net-peer.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { snapshotTree, type Snapshot } from "../helpers/tree.ts";

const work = mkdtempSync("/tmp/uring-sync-smoke-");
const src = join(work, "src");
const GiB = 1024 ** 3;
const SPARSE_SIZE = 2 * GiB + 12345;
let n = 0;

beforeAll(() => {
  mkdirSync(join(src, "sub/deeper"), { recursive: true });
  mkdirSync(join(src, "empty"));
  writeFileSync(join(src, "hello.txt"), "hello, smoke\n");
  writeFileSync(join(src, "sub/deeper/rand.bin"), crypto.getRandomValues(new Uint8Array(3 * 1024 * 1024 + 17)));
  for (let i = 0; i < 50; i++) writeFileSync(join(src, "sub", `small-${i}`), crypto.getRandomValues(new Uint8Array(i * 97)));
  symlinkSync("../hello.txt", join(src, "sub/link"));
  linkSync(join(src, "hello.txt"), join(src, "sub/hard.txt"));
  // A sparse file: data at the start, past 2 GiB and at the very end.
  const fd = openSync(join(src, "sparse.bin"), "w");
  for (const off of [0, 2 * GiB - 100, SPARSE_SIZE - 3000]) {
    const b = Buffer.from(crypto.getRandomValues(new Uint8Array(3000)));
    writeSync(fd, b, 0, b.length, off);
  }
  ftruncateSync(fd, SPARSE_SIZE);
  closeSync(fd);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The smoke tree as it was made; what every copy of it is compared with. */
let before: Snapshot;
beforeAll(() => {
  before = snapshotTree(src);
});

/** recv then send over 127.0.0.1 (`--json` and `flags` on both ends); both results. */
async function smoke(flags: string[], env: Env = {}, sendOnly: string[] = []): Promise<TransferResult & { dst: string; ctx: string }> {
  const dst = join(work, `dst-${++n}`);
  const t = await transfer({ src, dst, recvArgs: ["--json", ...flags], sendArgs: ["--json", ...flags, ...sendOnly], recvEnv: env, sendEnv: env });
  return { ...t, dst, ctx: formatBoth(t) };
}

/** DST is the smoke tree as the protocol carries it, and the sparse file stayed sparse. */
function expectSame(dst: string, ctx: string): void {
  expectNetCopy(before, dst, "smoke transfer", ctx);
  expect(lstatSync(join(dst, "sparse.bin")).blocks * 512, `holes stay holes\n${ctx}`).toBeLessThan(1024 * 1024);
}

describe("send -> recv over loopback (two processes)", () => {
  for (const [name, flags] of [["userspace TLS", ["--crypto", "user"]], ["plaintext", ["--plaintext"]]] as const) {
    test(`${name}: the tree arrives byte-identical, holes as holes`, async () => {
      const t = await smoke([...flags]);
      const { ctx } = t;
      expect(t.send.code, ctx).toBe(0);
      expect(t.recv.code, ctx).toBe(0);
      expectSame(t.dst, ctx);
      const s = JSON.parse(t.send.stdout);
      const r = JSON.parse(t.recv.stdout);
      expect(s.crypto).toBe(flags[0] === "--plaintext" ? "plaintext" : "user");
      expect(r.crypto).toBe(s.crypto);
      // Only the sparse file's data went over the wire, not its 2 GiB of zeros.
      expect(s.bytes).toBeLessThan(8 * 1024 * 1024);
      // Both ends count alike: a hard link is a hard link, not one more file.
      expect(r.filesReceived).toBe(s.filesSent);
      expect(r.hardlinks).toBe(s.hardlinks);
    }, 90_000);
  }

  test("a key limit of 200 records forces many re-keys (new connections and handshakes); the stream continues exactly", async () => {
    const t = await smoke(["--crypto", "user"], { URING_SYNC_MAX_RECORDS: "200" });
    const { ctx } = t;
    expect(t.send.code, ctx).toBe(0);
    expect(t.recv.code, ctx).toBe(0);
    expectSame(t.dst, ctx);
    // ~3.2 MiB of data at <= 200 records of 16 KiB per key.
    expect(JSON.parse(t.send.stdout).rekeys, ctx).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(t.recv.stdout).rekeys, ctx).toBe(JSON.parse(t.send.stdout).rekeys);
  }, 90_000);

  test("the synchronous backend (--sync: no io_uring) interoperates with the io_uring one", async () => {
    const t = await smoke(["--crypto", "user"], {}, ["--sync"]);
    const { ctx } = t;
    expect(t.send.code, ctx).toBe(0);
    expect(t.recv.code, ctx).toBe(0);
    expect(JSON.parse(t.send.stdout).backend).toBe("sync");
    expect(JSON.parse(t.recv.stdout).backend).not.toBe("sync");
    expectSame(t.dst, ctx);
  }, 90_000);
});

describe("timeouts (URING_SYNC_IDLE_TIMEOUT_MS shortens the 60 s idle timeout)", () => {
  test("an authenticated sender that goes silent mid-session is dropped at the idle timeout; the receiver stays up and keeps no partial file", async () => {
    const dst = join(work, `dst-idle-${++n}`);
    const rcv = await startReceiver({ dst, args: ["--crypto", "user"], env: { URING_SYNC_IDLE_TIMEOUT_MS: "1000" } });
    try {
      const p = await Peer.connect(rcv.host, rcv.port);
      const hs = await p.handshake({ secret: TEST_SECRET });
      expect(hs.ok, p.describe()).toBe(true);
      await p.send(rawEntry({ id: 1, kind: KIND.file, size: 100n, path: "partial.bin" }), dataFrame(1, 0n, new Uint8Array(10)));
      const t0 = performance.now();
      expect(await p.waitClosed(8_000), `the silent session must be dropped\n${p.describe()}\n${rcv.describe()}`).toBe(true);
      const waited = performance.now() - t0;
      expect(waited).toBeGreaterThan(700);
      await rcv.waitStderr(/idle timeout/i, 5_000, "the idle-timeout error");
      expect(rcv.alive(), rcv.describe()).toBe(true);
      expect(readdirSync(dst)).toEqual([]);
      p.destroy();
    } finally {
      await killAllReceivers();
    }
  }, 60_000);
});

describe("what the sender leaves out", () => {
  test("a FIFO is skipped with a warning, a non-UTF-8 name is a per-file failure (exit 1), --exclude leaves paths out; everything else arrives", async () => {
    const s2 = join(work, `odd-src-${++n}`);
    mkdirSync(join(s2, "keep"), { recursive: true });
    writeFileSync(join(s2, "keep/a.txt"), "a");
    writeFileSync(join(s2, "skip.log"), "excluded");
    mkdirSync(join(s2, "cache"));
    writeFileSync(join(s2, "cache/big"), "excluded too");
    Bun.spawnSync(["mkfifo", join(s2, "fifo")]);
    // A name that is not UTF-8 (0xff): the protocol cannot carry it.
    Bun.spawnSync(["sh", "-c", `printf x > "${s2}/bad-$(printf '\\377')"`]);
    const dst = join(work, `odd-dst-${n}`);
    const rcv = await startReceiver({ dst });
    try {
      const s = await runSender(s2, rcv.address, { args: ["--exclude", "*.log", "--exclude", "cache/"] });
      const r = await receiverEnds(rcv, 15_000, s);
      const ctx = `--- send ---\n${s.stderr}\n--- recv ---\n${r.stderr}`;
      expect(s.code, ctx).toBe(1);
      expect(s.stderr, ctx).toMatch(/not valid UTF-8/);
      expect(s.stderr, ctx).toMatch(/warning: skipped special file fifo \(fifo\)/);
      expect(r.code, ctx).toBe(0);
      expect(readdirSync(dst).sort()).toEqual(["keep"]);
      expect(readFileSync(join(dst, "keep/a.txt"), "utf8")).toBe("a");
    } finally {
      await killAllReceivers();
    }
  }, 60_000);
});

describe("a file that changes while it is sent", () => {
  // sysfs files say 4096 bytes and hold fewer: the sender has already announced 4096 and
  // framed a DATA header of that size when the read comes back short.
  const SYSFS = ["/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/transparent_hugepage/defrag", "/sys/kernel/uevent_seqnum"];
  const pick = SYSFS.find((p) => {
    try {
      return lstatSync(p).size === 4096 && readFileSync(p).length < 4096;
    } catch {
      return false;
    }
  });

  test("reading fewer bytes than announced: FILE_ABORT, the receiver stores nothing, the sender exits 1 naming the file", async () => {
    if (pick === undefined) throw new Error(`no sysfs file with size 4096 and shorter content among ${SYSFS.join(", ")}`);
    const dst = join(work, `shrink-dst-${++n}`);
    const rcv = await startReceiver({ dst });
    try {
      const s = await runSender(pick, rcv.address, { args: ["--json"] });
      const r = await receiverEnds(rcv, 15_000, s);
      const ctx = `--- send ---\n${s.stderr}${s.stdout}\n--- recv ---\n${r.stderr}`;
      expect(s.code, ctx).toBe(1);
      expect(s.stderr, ctx).toMatch(/shrank while it was being sent/);
      const j = JSON.parse(s.stdout);
      expect(j.filesSent).toBe(0);
      expect(j.receiver).toEqual({ files: 0, bytes: 0 });
      expect(r.code, ctx).toBe(0);
      expect(readdirSync(dst)).toEqual([]);
    } finally {
      await killAllReceivers();
    }
  }, 60_000);
});
