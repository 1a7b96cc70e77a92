/**
 * Loopback smoke tests of the whole transport: `recv` and `send` as two child processes
 * (bun src/cli/main.ts), a small tree with a symlink, a hard link, an empty directory and
 * a large sparse file, byte-identical on arrival, over userspace TLS and plaintext; a
 * transfer forced to re-key many times (URING_SYNC_MAX_RECORDS); and the synchronous
 * (no io_uring) backend. The e2e suite (tests/e2e/net.test.ts) covers the CLI in depth.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, symlinkSync, writeFileSync, writeSync, ftruncateSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const work = mkdtempSync("/tmp/uring-sync-smoke-");
const src = join(work, "src");
const GiB = 1024 ** 3;
const SPARSE_SIZE = 2 * GiB + 12345;
const pieces: [number, Buffer][] = [];
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
    pieces.push([off, b]);
  }
  ftruncateSync(fd, SPARSE_SIZE);
  closeSync(fd);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  return await new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => res(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}

function listening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  return readFileSync("/proc/net/tcp", "utf8").split("\n").some((l) => l.includes(hex) && / 0A /.test(l));
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function finish(p: ReturnType<typeof Bun.spawn>): Promise<Run> {
  const [stdout, stderr] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text()]);
  return { code: await p.exited, stdout, stderr };
}

/** recv then send over 127.0.0.1; both results. */
async function transfer(flags: string[], env: Record<string, string> = {}, sendOnly: string[] = []): Promise<{ dst: string; send: Run; recv: Run }> {
  const dst = join(work, `dst-${++n}`);
  const port = await freePort();
  const childEnv = { ...process.env, URING_SYNC_SECRET: "smoke secret", NO_COLOR: "1", ...env };
  delete (childEnv as Record<string, string | undefined>).URING_SYNC_CRYPTO;
  const recv = Bun.spawn([process.execPath, MAIN, "recv", dst, "--listen", `127.0.0.1:${port}`, "--json", ...flags], { env: childEnv, stdout: "pipe", stderr: "pipe" });
  const t0 = performance.now();
  while (!listening(port)) {
    if (performance.now() - t0 > 20_000) throw new Error("the receiver did not listen");
    await Bun.sleep(20);
  }
  const send = Bun.spawn([process.execPath, MAIN, "send", src, `127.0.0.1:${port}`, "--json", ...flags, ...sendOnly], { env: childEnv, stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => {
    send.kill("SIGKILL");
    recv.kill("SIGKILL");
  }, 60_000);
  const [s, r] = await Promise.all([finish(send), finish(recv)]);
  clearTimeout(killer);
  return { dst, send: s, recv: r };
}

function expectSame(dst: string, ctx: string): void {
  const walk = (rel: string): string[] => readdirSync(join(src, rel)).flatMap((name) => {
    const p = rel === "" ? name : `${rel}/${name}`;
    return lstatSync(join(src, p)).isDirectory() ? [p, ...walk(p)] : [p];
  });
  for (const p of walk("")) {
    const a = lstatSync(join(src, p), { bigint: true });
    const b = lstatSync(join(dst, p), { bigint: true });
    expect(b.mode, `${p} mode\n${ctx}`).toBe(a.mode);
    expect(b.mtimeNs, `${p} mtime\n${ctx}`).toBe(a.mtimeNs);
    if (a.isSymbolicLink()) expect(readlinkSync(join(dst, p))).toBe(readlinkSync(join(src, p)));
    else if (a.isFile() && p !== "sparse.bin") expect(readFileSync(join(dst, p)).equals(readFileSync(join(src, p))), `${p} content\n${ctx}`).toBe(true);
  }
  expect(lstatSync(join(dst, "sub/hard.txt")).ino).toBe(lstatSync(join(dst, "hello.txt")).ino);
  // The sparse file: same size, same data where there is data, and still sparse.
  const st = lstatSync(join(dst, "sparse.bin"));
  expect(st.size).toBe(SPARSE_SIZE);
  expect(st.blocks * 512, "holes stay holes").toBeLessThan(1024 * 1024);
  const fd = openSync(join(dst, "sparse.bin"), "r");
  try {
    for (const [off, b] of pieces) {
      const got = Buffer.alloc(b.length);
      readSync(fd, got, 0, b.length, off);
      expect(got.equals(b), `sparse data at ${off}`).toBe(true);
    }
  } finally {
    closeSync(fd);
  }
}

describe("send -> recv over loopback (two processes)", () => {
  for (const [name, flags] of [["userspace TLS", ["--crypto", "user"]], ["plaintext", ["--plaintext"]]] as const) {
    test(`${name}: the tree arrives byte-identical, holes as holes`, async () => {
      const t = await transfer([...flags]);
      const ctx = `--- send ---\n${t.send.stderr}${t.send.stdout}\n--- recv ---\n${t.recv.stderr}${t.recv.stdout}`;
      expect(t.send.code, ctx).toBe(0);
      expect(t.recv.code, ctx).toBe(0);
      expectSame(t.dst, ctx);
      const s = JSON.parse(t.send.stdout);
      const r = JSON.parse(t.recv.stdout);
      expect(s.crypto).toBe(flags[0] === "--plaintext" ? "plaintext" : "user");
      expect(r.crypto).toBe(s.crypto);
      // Only the sparse file's data went over the wire, not its 2 GiB of zeros.
      expect(s.bytes).toBeLessThan(8 * 1024 * 1024);
      expect(r.filesReceived).toBe(s.filesSent + s.hardlinks);
    }, 90_000);
  }

  test("a key limit of 200 records forces many re-keys (new connections and handshakes); the stream continues exactly", async () => {
    const t = await transfer(["--crypto", "user"], { URING_SYNC_MAX_RECORDS: "200" });
    const ctx = `--- send ---\n${t.send.stderr}${t.send.stdout}\n--- recv ---\n${t.recv.stderr}${t.recv.stdout}`;
    expect(t.send.code, ctx).toBe(0);
    expect(t.recv.code, ctx).toBe(0);
    expectSame(t.dst, ctx);
    // ~3.2 MiB of data at <= 200 records of 16 KiB per key.
    expect(JSON.parse(t.send.stdout).rekeys, ctx).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(t.recv.stdout).rekeys, ctx).toBe(JSON.parse(t.send.stdout).rekeys);
  }, 90_000);

  test("the synchronous backend (--sync: no io_uring) interoperates with the io_uring one", async () => {
    const t = await transfer(["--crypto", "user"], {}, ["--sync"]);
    const ctx = `--- send ---\n${t.send.stderr}${t.send.stdout}\n--- recv ---\n${t.recv.stderr}${t.recv.stdout}`;
    expect(t.send.code, ctx).toBe(0);
    expect(t.recv.code, ctx).toBe(0);
    expect(JSON.parse(t.send.stdout).backend).toBe("sync");
    expect(JSON.parse(t.recv.stdout).backend).not.toBe("sync");
    expectSame(t.dst, ctx);
  }, 90_000);
});

describe("timeouts (URING_SYNC_IDLE_TIMEOUT_MS shortens the 60 s idle timeout)", () => {
  test("an authenticated sender that goes silent mid-session is dropped at the idle timeout; the receiver stays up and keeps no partial file", async () => {
    const { startReceiver, killAllReceivers, TEST_SECRET } = await import("../helpers/net.ts");
    const { Peer, rawEntry, dataFrame, KIND } = await import("../helpers/net-peer.ts");
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
    const { startReceiver, runSender, receiverEnds, killAllReceivers } = await import("../helpers/net.ts");
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
    const { startReceiver, runSender, receiverEnds, killAllReceivers } = await import("../helpers/net.ts");
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
