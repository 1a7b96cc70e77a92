// tests/e2e/net.test.ts — network transfer (issue 4) run as a user would run it: a real
// `uring-sync recv` child and a real `uring-sync send` child over loopback. Fidelity of the
// variety tree (content, permission bits with setuid/setgid/sticky dropped, ns mtimes,
// symlinks as links, empty dirs, hard links; sparse files stay sparse) with userspace
// crypto, the default (auto, which is userspace on this kTLS-less host) and --plaintext;
// every cipher and a cipher mismatch; IPv6 and host names; one session vs
// --keep-listening; re-keying on new connections (a lowered per-key record limit); a single
// file as SRC; --quiet; the secret from the env, a file, argv (with a warning) or a
// generated one-time code; wrong secrets, plaintext on one side only, --crypto kernel /
// --tls / URING_SYNC_CRYPTO=kernel without kTLS (exit 3); --json and the human summary
// saying which crypto path ran; and failed or unauthenticated connections (garbage, a half
// handshake, a wrong secret, silence) that must not end or block a receiver.
// Black box: only the CLI, sockets, the file system and the output.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cliCommand, formatResult, parseJson, runCli, type RunResult } from "../helpers/cli.ts";
import { createServer, type Server } from "node:net";
import { expectNoDiff, removeDir, workDir } from "../helpers/e2e.ts";
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_ENV,
  TEST_SECRET,
  expectBothExit,
  expectNoCrash,
  formatBoth,
  collect,
  killAllReceivers,
  listeningInodes,
  netEnv,
  parseOneTimeCode,
  receiverEnds,
  runSender,
  startReceiver,
  transfer,
  type Receiver,
  type TransferResult,
} from "../helpers/net.ts";
import { Peer } from "../helpers/net-peer.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { buildVarietyTree, diffTrees, MiB, snapshotTree, writeRandom, writeTree, type Snapshot, type VarietyTree } from "../helpers/tree.ts";

const work = workDir("net");
let V: VarietyTree; // the variety tree without the 4.5 GiB sparse file (no holes on the wire)
let small: string; // a small tree: a few MiB across many records, small files, a link, a dir
let n = 0;
const freshDst = (tag: string): string => join(work, `dst-${tag}-${++n}`);
const CIPHERS = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"] as const;
/** Short handshake timeout for the receiver in tests that park a connection. */
const SHORT_HS = { [HANDSHAKE_TIMEOUT_ENV]: "2000" };

beforeAll(() => {
  V = buildVarietyTree(join(work, "variety"), { bigSparse: false });
  small = join(work, "small");
  writeTree(small, { "hello.txt": "hello, network\n", "sub/empty.txt": "", "sub/deeper/x.bin": Buffer.alloc(3000, 7) });
  writeRandom(join(small, "two-mib.bin"), 2 * MiB + 333); // > 128 records of 16 KiB, not a multiple
  mkdirSync(join(small, "empty-dir"));
});
afterEach(async () => {
  await killAllReceivers();
});
afterAll(async () => {
  await killAllReceivers();
  removeDir(work);
});

function both(t: TransferResult): string {
  return formatBoth(t);
}

/** Run one session and require exit 0 on both ends and a faithful copy. */
async function faithful(src: string, tag: string, recvArgs: string[], sendArgs: string[]): Promise<{ t: TransferResult; dst: string; before: Snapshot; after: Snapshot }> {
  const dst = freshDst(tag);
  const before = snapshotTree(src);
  const t = await transfer({ src, dst, recvArgs, sendArgs });
  expectBothExit(t, 0, 0);
  const after = expectNetCopy(before, dst, `send ${sendArgs.join(" ")} / recv ${recvArgs.join(" ")}`, both(t));
  return { t, dst, before, after };
}

/** DST must hold nothing at all (it may or may not exist). */
function expectEmptyDst(dst: string, context: string): void {
  const left = existsSync(dst) ? readdirSync(dst) : [];
  if (left.length > 0) throw new Error(`nothing may be written into DST, found ${JSON.stringify(left)}\n${context}`);
}

/** A sender that must succeed against `rcv`; the one-shot receiver then exits 0. */
async function goodSession(rcv: Receiver, dst: string, what: string): Promise<void> {
  const before = snapshotTree(small);
  const s = await runSender(small, rcv.address);
  if (s.code !== 0) throw new Error(`${what}: a good sender afterwards must succeed, exit ${s.code}\n${formatResult(s)}\n--- receiver ---\n${rcv.describe()}`);
  const r = await receiverEnds(rcv, 15_000, s);
  expectBothExit({ send: s, recv: r }, 0, 0);
  expectNetCopy(before, dst, `${what}: the good session after it`, formatBoth({ send: s, recv: r }));
}

const USER_PATH = /user[- ]?space|\buser\b/i;
const PLAINTEXT_PATH = /plain ?text|unencrypted|no encryption/i;
const NO_KTLS = /(kernel TLS|kTLS)[^\n]*(not available|unavailable|not supported|unsupported|missing|absent|ENOENT|no )|(no|not|without)[^\n]*(kernel TLS|kTLS)/i;

// ---------------------------------------------------------------------------------------

describe("the variety tree over loopback", () => {
  test("--crypto user on both ends: bytes, permission bits (special bits dropped), ns mtimes, symlinks, empty dirs, hard links", async () => {
    const { before, after, t } = await faithful(V.root, "user", ["--crypto", "user"], ["--crypto", "user"]);
    // Spelled out, so a reader sees what the diff above already enforced.
    for (const rel of V.symlinks) expect(after.get(rel)?.type, `${rel} must stay a symlink`).toBe("symlink");
    expect(after.get("sym/to-dir")?.target).toBe("../dir1");
    expect(after.get("sym/abs-into-src")?.target).toBe(join(V.root, "small.txt"));
    expect(after.get("sym/to-root")?.target).toBe("/");
    expect(after.get("empty-dir")?.type).toBe("dir");
    expect(after.get("nest/empty-a/empty-b")?.type).toBe("dir");
    for (const group of V.hardLinkGroups) {
      expect(new Set(group.map((p) => after.get(p)?.ino)).size, `hard links ${group.join(", ")} must share one inode`).toBe(1);
    }
    expect(after.get("modes/sticky1777")?.mode, "sticky dropped").toBe(0o777);
    expect(after.get("modes/setgid2755")?.mode, "setgid dropped").toBe(0o755);
    if (before.has("modes/suid04755")) expect(after.get("modes/suid04755")?.mode, "setuid dropped").toBe(0o755);
    if (before.has("owner/sgid-1234")) expect(after.get("owner/sgid-1234")?.mode, "setgid dropped").toBe(0o750);
    expect(after.get("times/pre-epoch.txt")?.mtimeNs).toBe(before.get("times/pre-epoch.txt")!.mtimeNs);
    expect(after.get("dir1/dir2")?.mtimeNs, "directory mtimes are set after their contents").toBe(before.get("dir1/dir2")!.mtimeNs);
    // DST itself gets SRC's permission bits and mtime (ROOT, docs/PROTOCOL.md 8.3d).
    expect(after.get(".")?.mode, "DST's mode").toBe(before.get(".")!.mode & 0o777);
    expect(after.get(".")?.mtimeNs, "DST's mtime").toBe(before.get(".")!.mtimeNs);
    // The source was only read.
    expectNoDiff(diffTrees(before, snapshotTree(V.root), { ignoreAtime: true }), "the source after sending");
    expectNoCrash(t.send.stderr + t.recv.stderr, "the session's output", both(t));
  }, 120_000);

  test("the default (--crypto auto, userspace here: no kTLS on this kernel) copies the tree faithfully and says so", async () => {
    const { t } = await faithful(V.root, "auto", ["--json"], ["--json"]);
    for (const [side, r] of [["sender", t.send], ["receiver", t.recv]] as const) {
      const j = parseJson(r);
      expect(j.crypto, `${side} --json: auto must fall back to userspace crypto here\n${both(t)}`).toBe("user");
    }
  }, 120_000);

  test("--plaintext on both ends copies the tree faithfully", async () => {
    await faithful(V.root, "plain", ["--plaintext"], ["--plaintext"]);
  }, 120_000);
});

describe("sparse files, re-keying, single files, --quiet", () => {
  test("sparse files stay sparse on the receiver (holes travel as HOLE, not zeros)", async () => {
    const { before, after } = await faithful(V.root, "sparse", ["--crypto", "user"], ["--crypto", "user"]);
    for (const rel of V.sparse) {
      expect(after.get(rel)!.blocks * 512, `${rel}: allocated in the copy vs the source`).toBeLessThanOrEqual(before.get(rel)!.blocks * 512 + 64 * 1024);
    }
  }, 120_000);

  test("a session longer than the per-key record limit re-keys on new connections and arrives intact", async () => {
    // URING_SYNC_MAX_RECORDS lowers the 2^24 records-per-key limit so re-keying happens
    // here: 150 records of at most 16 KiB per key (above one 2 MiB send buffer, 128 records
    // + the re-key reserve), 10 MiB to send: about 640 records, so 4 or more re-keys.
    const env = { URING_SYNC_MAX_RECORDS: "150" };
    const src = join(work, "rekey-src");
    writeRandom(join(src, "ten-mib.bin"), 10 * MiB + 99);
    writeTree(src, { "after/small.txt": "after the big file\n" });
    const dst = freshDst("rekey");
    const before = snapshotTree(src);
    const t = await transfer({ src, dst, recvArgs: ["--crypto", "user", "--json"], sendArgs: ["--crypto", "user", "--json"], recvEnv: env, sendEnv: env });
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "re-keyed session", both(t));
    const rekeys = Number(parseJson(t.recv).rekeys);
    expect(rekeys, `10 MiB with 150 records per key must re-key several times\n${both(t)}`).toBeGreaterThanOrEqual(3);
  }, 90_000);

  test("a single file as SRC lands as DST/NAME", async () => {
    const dst = freshDst("single");
    const file = join(small, "hello.txt");
    const t = await transfer({ src: file, dst });
    expectBothExit(t, 0, 0);
    expect(readFileSync(join(dst, "hello.txt"), "utf8")).toBe("hello, network\n");
    expect(readdirSync(dst)).toEqual(["hello.txt"]);
  }, 60_000);

  test("--quiet on both ends: nothing on stderr or stdout for a successful session", async () => {
    const t = await transfer({ src: small, dst: freshDst("quiet"), recvArgs: ["--quiet"], sendArgs: ["--quiet"] });
    expectBothExit(t, 0, 0);
    expect(t.send.stderr + t.send.stdout, both(t)).toBe("");
    expect(t.recv.stderr + t.recv.stdout, both(t)).toBe("");
  }, 60_000);
});

describe("ciphers", () => {
  for (const cipher of CIPHERS) {
    test(`--cipher ${cipher} on both ends (userspace records)`, async () => {
      const { t } = await faithful(small, `cipher-${cipher}`, ["--crypto", "user", "--cipher", cipher, "--json"], ["--crypto", "user", "--cipher", cipher, "--json"]);
      expect(parseJson(t.send).crypto).toBe("user");
      expect(parseJson(t.recv).crypto).toBe("user");
    }, 90_000);
  }

  test("different ciphers on the two ends: a clear option-mismatch error on both, and the receiver stays up", async () => {
    const dst = freshDst("cipher-mismatch");
    const rcv = await startReceiver({ dst, args: ["--cipher", "aes-128-gcm"] });
    const s = await runSender(small, rcv.address, { args: ["--cipher", "aes-256-gcm"] });
    expect(s.code, `sender with the other cipher\n${formatResult(s)}`).toBe(4);
    expect(s.stderr, formatResult(s)).toMatch(/cipher/i);
    await rcv.waitStderr(/cipher/i, 5_000, "a cipher-mismatch error");
    expect(rcv.alive(), `a failed connection must not end the receiver\n${rcv.describe()}`).toBe(true);
    expectEmptyDst(dst, rcv.describe());
    await goodSession(rcv, dst, "after a cipher mismatch");
  }, 90_000);
});

describe("addresses", () => {
  test("IPv6: recv --listen [::1]:PORT, send [::1]:PORT", async () => {
    const dst = freshDst("v6");
    const before = snapshotTree(small);
    const t = await transfer({ src: small, dst, host: "::1" });
    expect(t.recv.argv).toContain(`[::1]:${t.port}`);
    expect(t.send.argv).toContain(`[::1]:${t.port}`);
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "IPv6", both(t));
  }, 60_000);

  test("a host name: send localhost:PORT to a receiver on 127.0.0.1", async () => {
    const dst = freshDst("name");
    const before = snapshotTree(small);
    const t = await transfer({ src: small, dst, host: "127.0.0.1", senderAddress: (port) => `localhost:${port}` });
    expect(t.send.argv).toContain(`localhost:${t.port}`);
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "localhost", both(t));
  }, 60_000);
});

describe("a receiver that cannot listen", () => {
  test("a port in use, an address not on this machine: exit 1 with the errno, and no DST left behind", async () => {
    const busy: Server = createServer();
    await new Promise<void>((ok) => busy.listen(0, "127.0.0.1", ok));
    try {
      const port = (busy.address() as { port: number }).port;
      const parent = freshDst("cannot-listen");
      mkdirSync(parent, { recursive: true });
      for (const [listen, errno] of [[`127.0.0.1:${port}`, "EADDRINUSE"], [`192.0.2.1:${port}`, "EADDRNOTAVAIL"]]) {
        const dst = join(parent, "new", "dst");
        const r = await runCli(["recv", dst, "--listen", listen], { env: netEnv(TEST_SECRET), timeoutMs: 30_000 });
        expectNoCrash(r.stderr, "stderr", formatResult(r));
        expect(r.code, formatResult(r)).toBe(1);
        expect(r.stderr).toContain(errno);
        // The directories it made for DST went again; the one that was there stays.
        expect(existsSync(join(parent, "new")), formatResult(r)).toBe(false);
        expect(existsSync(parent)).toBe(true);
      }
    } finally {
      busy.close();
    }
  }, 60_000);
});

describe("sessions", () => {
  test("by default the receiver exits 0 after one session and stops listening", async () => {
    const dst = freshDst("oneshot");
    const before = snapshotTree(small);
    const t = await transfer({ src: small, dst });
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "one session", both(t));
    expect(listeningInodes(t.port), "the port is released after the session").toEqual([]);
  }, 60_000);

  test("--keep-listening serves two sessions one after the other, and stays up; --json is one line per session", async () => {
    const dst = freshDst("keep");
    const a = join(work, "keep-a");
    const b = join(work, "keep-b");
    writeTree(a, { "a/one.txt": "first session\n" });
    writeRandom(join(a, "a/blob.bin"), 300_000);
    writeTree(b, { "b/two.txt": "second session\n" });
    writeRandom(join(b, "b/blob.bin"), 200_000);
    const rcv = await startReceiver({ dst, args: ["--keep-listening", "--json"] });
    const s1 = await runSender(a, rcv.address);
    expect(s1.code, `first session\n${formatResult(s1)}\n${rcv.describe()}`).toBe(0);
    await Bun.sleep(500);
    expect(rcv.alive(), `--keep-listening: the receiver must still run after a session\n${rcv.describe()}`).toBe(true);
    const s2 = await runSender(b, rcv.address);
    expect(s2.code, `second session\n${formatResult(s2)}\n${rcv.describe()}`).toBe(0);
    await Bun.sleep(500);
    expect(rcv.alive(), rcv.describe()).toBe(true);
    for (const [src, rel] of [[a, "a/one.txt"], [a, "a/blob.bin"], [b, "b/two.txt"], [b, "b/blob.bin"]] as const) {
      expect(readFileSync(join(dst, rel)).equals(readFileSync(join(src, rel))), `${rel} after two sessions`).toBe(true);
    }
    const r = await rcv.stop("SIGINT");
    expect([0, 130], `a --keep-listening receiver stops on SIGINT\n${formatResult(r)}`).toContain(r.code ?? -1);
    expectNoCrash(r.stderr, "receiver", formatResult(r));
    // JSON Lines: each line parses on its own, one per session.
    const lines = r.stdout.trim().split("\n");
    expect(lines.length, formatResult(r)).toBe(2);
    const sessions = lines.map((l) => JSON.parse(l) as { filesReceived: number; bytes: number });
    expect(sessions.map((j) => j.filesReceived)).toEqual([2, 2]);
    expect(sessions.map((j) => j.bytes)).toEqual([300_000 + "first session\n".length, 200_000 + "second session\n".length]);
  }, 90_000);
});

describe("a long-lived receiver", () => {
  test("--keep-listening: memory stays flat over many sessions (buffers are reused, not mapped again per session)", async () => {
    // Each session maps ~10 MB of fixed-address buffers (seal/receive buffers, staging
    // blocks, name slots); before they were reused, 30 sessions grew the receiver by ~120 MB.
    const dst = freshDst("keep-mem");
    const src = join(work, "keep-mem-src");
    writeRandom(join(src, "blob.bin"), 4_000_000);
    writeTree(src, { "small.txt": "small\n" });
    const rcv = await startReceiver({ dst, args: ["--keep-listening", "--crypto", "user", "--quiet"] });
    const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${rcv.proc.pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;
    let at10 = 0;
    for (let i = 1; i <= 40; i++) {
      const s = await runSender(src, rcv.address, { args: ["--ignore-times", "--quiet"] });
      expect(s.code, `session ${i}\n${formatResult(s)}\n${rcv.describe()}`).toBe(0);
      if (i === 10) at10 = rssMiB();
    }
    const at40 = rssMiB();
    expect(readFileSync(join(dst, "blob.bin")).equals(readFileSync(join(src, "blob.bin")))).toBe(true);
    expect(at40 - at10, `receiver RSS after 10 sessions ${at10.toFixed(0)} MiB, after 40 ${at40.toFixed(0)} MiB`).toBeLessThan(30);
    const r = await rcv.stop("SIGINT");
    expect([0, 130]).toContain(r.code ?? -1);
  }, 240_000);
});

describe("the secret", () => {
  test("recv without a secret prints a one-time code; send with it succeeds; each receiver makes a new one", async () => {
    const dst = freshDst("code");
    const rcv = await startReceiver({ dst, secret: null });
    await rcv.waitStderr(/code/i, 10_000, "a line with the one-time code");
    const code = parseOneTimeCode(rcv.stderr());
    expect(code, `could not find the one-time code in recv's stderr:\n${rcv.stderr()}`).toBeDefined();
    expect(code!.replace(/[^A-Za-z0-9]/g, "").length, `a strong code, got ${code}`).toBeGreaterThanOrEqual(6);
    const before = snapshotTree(small);
    const s = await runSender(small, rcv.address, { secret: code! });
    const r = await receiverEnds(rcv, 15_000, s);
    expectBothExit({ send: s, recv: r }, 0, 0);
    expectNetCopy(before, dst, "one-time code", formatBoth({ send: s, recv: r }));
    // A second receiver gets a different code.
    const rcv2 = await startReceiver({ dst: freshDst("code2"), secret: null });
    await rcv2.waitStderr(/code/i, 10_000, "a line with the one-time code");
    const code2 = parseOneTimeCode(rcv2.stderr());
    expect(code2).toBeDefined();
    expect(code2, "one-time codes must not repeat").not.toBe(code);
    await rcv2.stop("SIGKILL");
  }, 90_000);

  test("at the sender's secret prompt (a terminal), Ctrl-C is an interruption (exit 130) and Ctrl-D gives no secret (exit 2)", async () => {
    const quote = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;
    for (const [key, code, message] of [["\u0003", 130, /interrupted at the secret prompt/], ["\u0004", 2, /no secret given/]] as const) {
      // `script` gives send a terminal, so it asks; the port is never reached.
      const cmd = [...cliCommand(), "send", small, "127.0.0.1:9"].map(quote).join(" ");
      const env = { ...netEnv(null) };
      const proc = Bun.spawn(["script", "-qfec", cmd, "/dev/null"], { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
      const sink = { text: "" };
      const reading = Promise.all([collect(proc.stdout as ReadableStream<Uint8Array>, sink), collect(proc.stderr as ReadableStream<Uint8Array>, sink)]);
      const until = performance.now() + 30_000;
      while (!sink.text.includes("Code (or secret) from the receiver") && proc.exitCode === null && performance.now() < until) await Bun.sleep(20);
      expect(sink.text, "the prompt was not shown").toContain("Code (or secret) from the receiver");
      const stdin = proc.stdin as import("bun").FileSink;
      stdin.write(key);
      await stdin.flush();
      const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
      const exit = await proc.exited;
      clearTimeout(timer);
      await reading;
      expect(exit, sink.text).toBe(code);
      expect(sink.text).toMatch(message);
      expectNoCrash(sink.text, "the terminal output", sink.text);
    }
  }, 90_000);

  test("--secret-file on the receiver, URING_SYNC_SECRET on the sender (no newline in the file)", async () => {
    const file = join(work, `secret-${++n}`);
    writeFileSync(file, "a secret from a file", { mode: 0o600 });
    const dst = freshDst("secret-file");
    const before = snapshotTree(small);
    const rcv = await startReceiver({ dst, secret: null, args: ["--secret-file", file] });
    const s = await runSender(small, rcv.address, { secret: "a secret from a file" });
    const r = await receiverEnds(rcv, 15_000, s);
    expectBothExit({ send: s, recv: r }, 0, 0);
    expectNetCopy(before, dst, "--secret-file", formatBoth({ send: s, recv: r }));
  }, 60_000);

  test("--secret-file on both ends (a file written by echo, trailing newline)", async () => {
    const file = join(work, `secret-${++n}`);
    writeFileSync(file, "another secret from a file\n", { mode: 0o600 });
    const dst = freshDst("secret-file2");
    const before = snapshotTree(small);
    const t = await transfer({ src: small, dst, secret: null, recvArgs: ["--secret-file", file], sendArgs: ["--secret-file", file] });
    expectBothExit(t, 0, 0);
    expectNetCopy(before, dst, "--secret-file both ends", both(t));
  }, 60_000);

  test("--secret S works but warns that other local users can read argv", async () => {
    const dst = freshDst("secret-argv");
    const t = await transfer({ src: small, dst, secret: null, recvArgs: ["--secret", "argv secret"], sendArgs: ["--secret", "argv secret"] });
    expectBothExit(t, 0, 0);
    for (const [side, r] of [["sender", t.send], ["receiver", t.recv]] as const) {
      expect(r.stderr, `${side} must warn about --secret\n${both(t)}`).toMatch(/warn/i);
      expect(r.stderr, `${side}: the warning says why\n${both(t)}`).toMatch(/argv|command line|other (local )?users|process list|\bps\b/i);
    }
  }, 60_000);

  test("a wrong secret: the sender exits 4 with 'authentication failed', the receiver says so too, writes nothing, and stays up", async () => {
    const dst = freshDst("wrong");
    const rcv = await startReceiver({ dst });
    const s = await runSender(small, rcv.address, { secret: "not the secret", args: ["--json"] });
    expect(s.code, formatResult(s)).toBe(4);
    expect(s.stderr, formatResult(s)).toMatch(/authentication failed/i);
    // --json: the failure is on stdout too, as an object scripts can read.
    const j = parseJson(s) as { error: string; exitCode: number };
    expect(j.exitCode).toBe(4);
    expect(j.error).toMatch(/authentication failed/i);
    expect(s.stderr.split("\n").filter((l) => /authentication failed/i.test(l)).length, "one clear line").toBeGreaterThanOrEqual(1);
    expectNoCrash(s.stderr, "sender", formatResult(s));
    await rcv.waitStderr(/authentication failed/i, 5_000, "the receiver's authentication error");
    expect(rcv.alive(), `a wrong secret must not end the receiver\n${rcv.describe()}`).toBe(true);
    expectEmptyDst(dst, rcv.describe());
    expect(s.stderr + rcv.stderr(), "the secret never appears in output").not.toContain(TEST_SECRET);
    await goodSession(rcv, dst, "after a wrong secret");
  }, 90_000);
});

describe("crypto paths and options", () => {
  test("--plaintext on the sender only: a clear error on both ends naming plaintext; the receiver stays up", async () => {
    const dst = freshDst("plain-send");
    const rcv = await startReceiver({ dst });
    const s = await runSender(small, rcv.address, { args: ["--plaintext"] });
    expect(s.code, formatResult(s)).toBe(4);
    expect(s.stderr, formatResult(s)).toMatch(/plaintext/i);
    await rcv.waitStderr(/plaintext/i, 5_000, "a plaintext-mismatch error");
    expect(rcv.alive(), rcv.describe()).toBe(true);
    expectEmptyDst(dst, rcv.describe());
    await goodSession(rcv, dst, "after a plaintext mismatch");
  }, 90_000);

  test("--plaintext on the receiver only: a clear error on both ends naming plaintext", async () => {
    const dst = freshDst("plain-recv");
    const rcv = await startReceiver({ dst, args: ["--plaintext"] });
    const s = await runSender(small, rcv.address);
    expect(s.code, formatResult(s)).toBe(4);
    expect(s.stderr, formatResult(s)).toMatch(/plaintext/i);
    await rcv.waitStderr(/plaintext/i, 5_000, "a plaintext-mismatch error");
    expect(rcv.alive(), rcv.describe()).toBe(true);
    expectEmptyDst(dst, rcv.describe());
    await rcv.stop("SIGKILL");
  }, 90_000);

  test("recv --crypto kernel on a kernel without kTLS: exit 3 with a clear message", async () => {
    const dst = freshDst("kernel-recv");
    const rcv = await startReceiver({ dst, args: ["--crypto", "kernel"], earlyExitOk: true });
    let r = await rcv.waitExit(3_000);
    let s: RunResult | undefined;
    if (r === null) {
      // It checks when a connection arrives: give it one.
      s = await runSender(small, rcv.address, { args: ["--crypto", "user"] });
      r = await receiverEnds(rcv, 15_000, s);
    }
    const ctx = `${formatResult(r)}${s ? `\n--- sender ---\n${formatResult(s)}` : ""}`;
    expect(r.code, ctx).toBe(3);
    expect(r.stderr, ctx).toMatch(NO_KTLS);
    expectNoCrash(r.stderr, "receiver", ctx);
    expectEmptyDst(dst, ctx);
  }, 60_000);

  test("send --crypto kernel, --tls and URING_SYNC_CRYPTO=kernel without kTLS: exit 3, and the receiver still serves a good sender", async () => {
    const dst = freshDst("kernel-send");
    const rcv = await startReceiver({ dst, args: ["--crypto", "user"] });
    for (const how of [{ args: ["--crypto", "kernel"] }, { args: ["--tls"] }, { args: [], env: { URING_SYNC_CRYPTO: "kernel" } }]) {
      const s = await runSender(small, rcv.address, how);
      expect(s.code, `send ${how.args.join(" ")} ${JSON.stringify(how.env ?? {})}\n${formatResult(s)}`).toBe(3);
      expect(s.stderr, formatResult(s)).toMatch(NO_KTLS);
      expectNoCrash(s.stderr, "sender", formatResult(s));
      expect(rcv.alive(), rcv.describe()).toBe(true);
    }
    expectEmptyDst(dst, rcv.describe());
    await goodSession(rcv, dst, "after senders that asked for kTLS");
  }, 90_000);

  test("--json on both ends: one JSON document each, crypto \"user\" or \"plaintext\"", async () => {
    for (const [mode, flags] of [["user", ["--crypto", "user"]], ["plaintext", ["--plaintext"]]] as const) {
      const dst = freshDst(`json-${mode}`);
      const t = await transfer({ src: small, dst, recvArgs: [...flags, "--json"], sendArgs: [...flags, "--json"] });
      expectBothExit(t, 0, 0);
      for (const [side, r] of [["sender", t.send], ["receiver", t.recv]] as const) {
        const j = parseJson(r);
        expect(j.crypto, `${side} --json crypto\n${both(t)}`).toBe(mode);
      }
    }
  }, 90_000);

  test("the human summary says which crypto path ran (userspace, or plaintext)", async () => {
    const t1 = await transfer({ src: small, dst: freshDst("sum-user"), recvArgs: ["--crypto", "user"], sendArgs: ["--crypto", "user"] });
    expectBothExit(t1, 0, 0);
    expect(t1.send.stdout + t1.send.stderr, `sender summary\n${both(t1)}`).toMatch(USER_PATH);
    expect(t1.recv.stdout + t1.recv.stderr, `receiver summary\n${both(t1)}`).toMatch(USER_PATH);
    const t2 = await transfer({ src: small, dst: freshDst("sum-plain"), recvArgs: ["--plaintext"], sendArgs: ["--plaintext"] });
    expectBothExit(t2, 0, 0);
    expect(t2.send.stdout + t2.send.stderr, `sender summary\n${both(t2)}`).toMatch(PLAINTEXT_PATH);
    expect(t2.recv.stdout + t2.recv.stderr, `receiver summary\n${both(t2)}`).toMatch(PLAINTEXT_PATH);
  }, 90_000);
});

describe("failed and unauthenticated connections never end a receiver", () => {
  test("garbage, a half-finished handshake and a wrong secret in a row; then a good sender succeeds", async () => {
    const dst = freshDst("survive");
    const rcv = await startReceiver({ dst, env: SHORT_HS });
    // 1. An HTTP request.
    const g = await Peer.connect(rcv.host, rcv.port);
    await g.writeRaw(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    expect(await g.waitClosed(5_000), `garbage must be dropped promptly\n${g.describe()}\n${rcv.describe()}`).toBe(true);
    g.destroy();
    expect(rcv.alive(), rcv.describe()).toBe(true);
    // 2. HELLO and SHARE, then nothing: dropped at the handshake timeout.
    const h = await Peer.connect(rcv.host, rcv.port);
    await h.handshake({ secret: TEST_SECRET, stopAfter: "share" });
    expect(await h.waitClosed(DEFAULT_HANDSHAKE_TIMEOUT_MS + 3_000), `a half-finished handshake must be dropped at the handshake timeout\n${h.describe()}\n${rcv.describe()}`).toBe(true);
    h.destroy();
    expect(rcv.alive(), rcv.describe()).toBe(true);
    // 3. The real sender with a wrong secret.
    const w = await runSender(small, rcv.address, { secret: "wrong secret" });
    expect(w.code, formatResult(w)).toBe(4);
    expect(rcv.alive(), rcv.describe()).toBe(true);
    expectEmptyDst(dst, rcv.describe());
    expectNoCrash(rcv.stderr(), "receiver", rcv.describe());
    await goodSession(rcv, dst, "after garbage, a half handshake and a wrong secret");
  }, 90_000);

  test("silence: the receiver drops a silent connection at the handshake timeout, stays up, and serves a good sender beside another", async () => {
    const dst = freshDst("silence");
    const rcv = await startReceiver({ dst, env: SHORT_HS });
    const quiet = await Peer.connect(rcv.host, rcv.port);
    expect(await quiet.waitClosed(DEFAULT_HANDSHAKE_TIMEOUT_MS + 3_000), `the silent connection must be closed by the receiver\n${quiet.describe()}\n${rcv.describe()}`).toBe(true);
    process.stderr.write(`[net.test] silent connection closed by the receiver after ${quiet.closedAfterMs} ms (${HANDSHAKE_TIMEOUT_ENV}=2000)\n`);
    quiet.destroy();
    expect(rcv.alive(), `a silent connection must not end the receiver\n${rcv.describe()}`).toBe(true);
    expectEmptyDst(dst, rcv.describe());
    // A good sender while another silent connection is parked: it must not be blocked
    // for longer than the handshake timeout.
    const parked = await Peer.connect(rcv.host, rcv.port);
    const before = snapshotTree(small);
    const s = await runSender(small, rcv.address);
    const r = await receiverEnds(rcv, 15_000, s);
    parked.destroy();
    expectBothExit({ send: s, recv: r }, 0, 0);
    expectNetCopy(before, dst, "a good session beside a silent connection", formatBoth({ send: s, recv: r }));
  }, 90_000);
});
