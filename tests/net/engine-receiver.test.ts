/**
 * The receiving engine (src/net/receiver.ts) and its confined destination
 * (src/net/dest.ts), driven in-process: frames are written by hand into one end of a
 * loopback TCP pair, the engine reads the other end through a plaintext Channel on a real
 * ring. Checks confinement against a symlink planted in DST, that nothing partial or
 * temporary survives a dropped connection (O_TMPFILE and named temporaries), FILE_ABORT,
 * byte-count rules, holes, want mode, and the REPORT.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, lstatSync, mkdirSync, openSync, readSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errno, libc } from "../../ffi/libc.ts";
import { MSG } from "../../ffi/structs.ts";
import { ProtocolError, SysError } from "../../src/errors.ts";
import { Channel } from "../../src/net/channel.ts";
import { Destination } from "../../src/net/dest.ts";
import { Loop } from "../../src/net/loop.ts";
import { RecvEngine, type ReceiverLimits } from "../../src/net/receiver.ts";
import { decodeReceiverMessage, encodeMessage, FLAG_CHECKSUM, FLAG_PUSH, FrameReader, MSG_DATA, type ReceiverMessage, type WireMessage } from "../../src/net/wire.ts";
import { LoopbackListener } from "../../src/system/loopback.ts";
import { openRing } from "../../src/uring/backend.ts";

const root = mkdtempSync("/tmp/uring-sync-engine-recv-");
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const enc = new TextEncoder();

const entry = (id: number, path: string, size: number, kind: "file" | "dir" = "file", mode = 0o644): WireMessage =>
  kind === "file"
    ? { type: "entry", kind, id, mode, mtimeNs: 1_600_000_000_123_456_789n, size: BigInt(size), path }
    : { type: "entry", kind, id, mode, mtimeNs: 1_600_000_000_123_456_789n, size: 0n, path };
const data = (id: number, offset: number, bytes: Uint8Array): WireMessage => ({ type: "data", id, offset: BigInt(offset), bytes });
const fileEnd = (id: number): WireMessage => ({ type: "file-end", id });

interface Rig {
  dst: string;
  outside: string;
  engine: RecvEngine;
  loop: Loop;
  write(...msgs: WireMessage[]): void;
  /** Raw bytes as they are. */
  raw(bytes: Uint8Array): void;
  /** Half-close the sender side (EOF for the engine). */
  end(): void;
  /** Runs until the engine leaves "running" (or `ms`). */
  settle(ms?: number): Promise<void>;
  /** Receiver -> sender messages read so far. */
  replies(): ReceiverMessage[];
  /** After a failure: wait until nothing is in flight, then clean up like the session does. */
  teardown(): Promise<void>;
}

async function rig(opts: { plant?: (dst: string, outside: string) => void; limits?: Partial<ReceiverLimits>; push?: boolean; flags?: number } = {}): Promise<Rig> {
  const base = join(root, `case-${++n}`);
  const dst = join(base, "dst");
  const outside = join(base, "outside");
  mkdirSync(dst, { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, "canary.txt"), "canary\n");
  opts.plant?.(dst, outside);
  const ring = openRing({ entries: 64 });
  const loop = new Loop(ring);
  const listener = new LoopbackListener(3000);
  const pair = listener.connect();
  listener.close();
  const dest = new Destination(dst);
  const channel = new Channel(loop, pair.server, { tx: "plain", rx: "plain", cipher: "aes-128-gcm", maxSend: 1 << 20 });
  const engine = new RecvEngine(loop, dest, opts.limits);
  engine.attach(channel, undefined, opts.flags ?? ((opts.push ?? true) ? FLAG_PUSH : 0));
  const frames = new FrameReader({ direction: "to-sender", copyPayloads: true });
  const got: ReceiverMessage[] = [];
  const inbuf = new Uint8Array(1 << 16);
  const drainReplies = (): void => {
    for (;;) {
      const r = libc.recv(pair.client, inbuf, inbuf.length, MSG.DONTWAIT);
      if (r <= 0) return;
      for (const f of frames.push(inbuf.subarray(0, r))) got.push(decodeReceiverMessage(f));
    }
  };
  return {
    dst, outside, engine, loop,
    write(...msgs) {
      for (const m of msgs) {
        const b = encodeMessage(m);
        for (let at = 0; at < b.length;) {
          const r = libc.send(pair.client, b.subarray(at), b.length - at, MSG.NOSIGNAL);
          if (r < 0) throw new SysError("send", errno());
          at += r;
        }
      }
    },
    raw(bytes) {
      for (let at = 0; at < bytes.length;) {
        const r = libc.send(pair.client, bytes.subarray(at), bytes.length - at, MSG.NOSIGNAL);
        if (r < 0) throw new SysError("send", errno());
        at += r;
      }
    },
    end() {
      libc.shutdown(pair.client, 1);
    },
    async settle(ms = 5000) {
      const until = loop.now() + ms;
      await loop.run(() => engine.state !== "running" || loop.now() > until);
      drainReplies();
    },
    replies() {
      drainReplies();
      return got;
    },
    async teardown() {
      channel.abort();
      const until = loop.now() + 5000;
      await loop.run(() => (engine.quiescent && !channel.busy) || loop.now() > until);
      channel.close();
      if (engine.state === "failed") engine.cleanup();
      dest.close();
      pair.close();
      ring.close();
    },
  };
}

describe("confinement", () => {
  test("a symlink planted in DST is never followed: link/x fails with ELOOP, a file named like the link replaces the link itself", async () => {
    const r = await rig({ plant: (dst, outside) => symlinkSync(outside, join(dst, "link")) });
    r.write(entry(1, "link/x", 5), data(1, 0, enc.encode("pwned")), fileEnd(1));
    r.write(entry(2, "link", 3), data(2, 0, enc.encode("new")), fileEnd(2), { type: "list-end" });
    await r.settle();
    expect(r.engine.state, String(r.engine.error)).toBe("reported");
    expect(r.engine.failures.map((f) => [f.path, f.code])).toEqual([["link/x", "ELOOP"]]);
    expect(r.engine.failures[0].message).toMatch(/symlink/);
    expect(readdirSync(r.outside)).toEqual(["canary.txt"]);
    expect(readFileSync(join(r.outside, "canary.txt"), "utf8")).toBe("canary\n");
    expect(lstatSync(join(r.dst, "link")).isFile()).toBe(true);
    expect(readFileSync(join(r.dst, "link"), "utf8")).toBe("new");
    const report = r.replies().find((m) => m.type === "report");
    expect(report).toMatchObject({ type: "report", files: 1, bytes: 3n });
    await r.teardown();
  });

  test("the Destination refuses '..', absolute paths and paths through a symlink", async () => {
    const base = join(root, `dest-${++n}`);
    mkdirSync(join(base, "dst/real"), { recursive: true });
    symlinkSync("/etc", join(base, "dst/etc-link"));
    symlinkSync("real", join(base, "dst/inner-link"));
    const d = new Destination(join(base, "dst"));
    try {
      expect(() => d.dir("../")).toThrow(ProtocolError);
      expect(() => d.parent("/etc/passwd")).toThrow(ProtocolError);
      expect(() => d.parent("a/../../x")).toThrow(ProtocolError);
      expect(() => d.dir("etc-link")).toThrow(/ELOOP/);
      // Even a symlink that stays inside DST is not followed.
      expect(() => d.dir("inner-link")).toThrow(/ELOOP/);
      const ok = d.parent("real/file");
      expect(ok.name).toBe("file");
      expect(ok.dir.rel).toBe("real");
      d.release(ok.dir);
    } finally {
      d.close();
    }
  });
});

describe("nothing partial survives", () => {
  for (const tmpfile of [true, false]) {
    test(`a connection dropped mid-file leaves DST empty (${tmpfile ? "O_TMPFILE" : "named temporaries"})`, async () => {
      const r = await rig({ limits: { tmpfile } });
      r.write(entry(1, "done.txt", 4), data(1, 0, enc.encode("ok!\n")), fileEnd(1));
      r.write(entry(2, "half.bin", 100), data(2, 0, new Uint8Array(50).fill(1)));
      await r.settle(300);
      r.end();
      await r.settle();
      expect(r.engine.state).toBe("failed");
      expect(r.engine.error?.message).toMatch(/before the end of the transfer/);
      await r.teardown();
      // The complete file stays; the half file and every temporary are gone.
      expect(readdirSync(r.dst).sort()).toEqual(["done.txt"]);
    });
  }

  test("a new directory is staged under a temporary name: a drop keeps only its complete files, put in place, and no temporary", async () => {
    const r = await rig();
    r.write({ type: "entry", kind: "dir", id: 1, mode: 0o755, mtimeNs: 1n, size: 0n, path: "new" });
    r.write({ type: "entry", kind: "dir", id: 2, mode: 0o755, mtimeNs: 1n, size: 0n, path: "new/sub" });
    r.write(entry(3, "new/sub/complete.txt", 3), data(3, 0, enc.encode("yes")), fileEnd(3));
    r.write(entry(4, "new/partial.bin", 100), data(4, 0, new Uint8Array(10)));
    await r.settle(300);
    // Mid-session nothing is visible under the final name yet.
    expect(readdirSync(r.dst).filter((x) => !x.startsWith(".usync-tmp-"))).toEqual([]);
    r.end();
    await r.settle();
    expect(r.engine.state).toBe("failed");
    await r.teardown();
    expect(readdirSync(r.dst)).toEqual(["new"]);
    expect(readdirSync(join(r.dst, "new"))).toEqual(["sub"]);
    expect(readFileSync(join(r.dst, "new/sub/complete.txt"), "utf8")).toBe("yes");
  });

  test("a finished session leaves no temporary directory behind", async () => {
    const r = await rig();
    r.write({ type: "entry", kind: "dir", id: 1, mode: 0o700, mtimeNs: 5n, size: 0n, path: "d" });
    r.write(entry(2, "d/f", 1), data(2, 0, enc.encode("f")), fileEnd(2));
    r.write({ type: "entry", kind: "symlink", id: 3, mode: 0o777, mtimeNs: 5n, size: 0n, path: "d/s", linkTarget: enc.encode("f") });
    r.write({ type: "entry", kind: "hardlink", id: 4, mode: 0o644, mtimeNs: 5n, size: 0n, path: "d/h", linkId: 2 });
    r.write({ type: "list-end" });
    await r.settle();
    expect(r.engine.state, String(r.engine.error)).toBe("reported");
    expect(r.engine.failures).toEqual([]);
    expect(readdirSync(r.dst)).toEqual(["d"]);
    expect(readdirSync(join(r.dst, "d")).sort()).toEqual(["f", "h", "s"]);
    expect(lstatSync(join(r.dst, "d"), { bigint: true }).mtimeNs).toBe(5n);
    await r.teardown();
  });

  test("hard links find their file whatever order the sender's ids come in (dense or not)", async () => {
    const r = await rig();
    // 1, 2 continue the dense run; 4000000000 and 9 do not; the links name all of them.
    r.write(entry(1, "one", 1), data(1, 0, enc.encode("1")), fileEnd(1));
    r.write(entry(4_000_000_000, "big-id", 1), data(4_000_000_000, 0, enc.encode("b")), fileEnd(4_000_000_000));
    r.write(entry(2, "two", 1), data(2, 0, enc.encode("2")), fileEnd(2));
    r.write(entry(9, "nine", 1), data(9, 0, enc.encode("9")), fileEnd(9));
    r.write({ type: "entry", kind: "hardlink", id: 3, mode: 0o644, mtimeNs: 5n, size: 0n, path: "l-one", linkId: 1 });
    r.write({ type: "entry", kind: "hardlink", id: 5, mode: 0o644, mtimeNs: 5n, size: 0n, path: "l-big", linkId: 4_000_000_000 });
    r.write({ type: "entry", kind: "hardlink", id: 6, mode: 0o644, mtimeNs: 5n, size: 0n, path: "l-nine", linkId: 9 });
    r.write({ type: "list-end" });
    await r.settle();
    expect(r.engine.state, String(r.engine.error)).toBe("reported");
    expect(r.engine.failures).toEqual([]);
    for (const [l, f] of [["l-one", "one"], ["l-big", "big-id"], ["l-nine", "nine"]]) {
      expect(lstatSync(join(r.dst, l)).ino).toBe(lstatSync(join(r.dst, f)).ino);
    }
    await r.teardown();
  });

  test("an id used twice is refused, in the dense run and outside it", async () => {
    for (const ids of [[1, 1], [7, 7], [1, 2, 3, 2]]) {
      const r = await rig();
      for (const [i, id] of ids.entries()) r.write(entry(id, `f${i}`, 0), fileEnd(id));
      await r.settle();
      expect(r.engine.error?.message ?? "no error").toMatch(/used twice|already ended/);
      await r.teardown();
    }
  });

  test("FILE_ABORT discards the file; the session goes on", async () => {
    const r = await rig({ limits: { tmpfile: false } });
    r.write(entry(1, "a.bin", 3), data(1, 0, enc.encode("abc")), { type: "file-abort", id: 1 });
    r.write(entry(2, "b.bin", 1), data(2, 0, enc.encode("b")), fileEnd(2), { type: "list-end" });
    await r.settle();
    expect(r.engine.state).toBe("reported");
    expect(r.engine.failures).toEqual([]);
    expect(readdirSync(r.dst)).toEqual(["b.bin"]);
    await r.teardown();
  });

  test("more bytes than announced, and fewer, are protocol errors that leave no file", async () => {
    const more = await rig();
    more.write(entry(1, "m.bin", 2), data(1, 0, enc.encode("abc")));
    await more.settle();
    expect(more.engine.error).toBeInstanceOf(ProtocolError);
    expect(more.engine.error?.message).toMatch(/more bytes .* than the 2 it announced/);
    await more.teardown();
    expect(readdirSync(more.dst)).toEqual([]);

    const fewer = await rig();
    fewer.write(entry(1, "f.bin", 10), data(1, 0, enc.encode("abc")), fileEnd(1));
    await fewer.settle();
    expect(fewer.engine.error?.message).toMatch(/sent 3 bytes .* fewer than the 10/);
    await fewer.teardown();
    expect(readdirSync(fewer.dst)).toEqual([]);
    // The sender was told why.
    expect(fewer.replies().find((m) => m.type === "error")).toBeDefined();
  });

  test("DATA ending past 2^62 is refused, whole or cut byte by byte; up to 2^62 it is a plain offset check", async () => {
    // A DATA frame by hand (the encoder refuses such offsets): type, length, id, offset, bytes.
    const dataFrame = (id: number, offset: bigint, len: number): Uint8Array => {
      const b = new Uint8Array(5 + 12 + len);
      const v = new DataView(b.buffer);
      b[0] = MSG_DATA;
      v.setUint32(1, 12 + len);
      v.setUint32(5, id);
      v.setBigUint64(9, offset);
      return b;
    };
    const cases: [bigint, number, RegExp][] = [
      [(1n << 62n) - 1n, 2, /DATA offset 4611686018427387903 past 2\^62/],
      [(1n << 64n) - 1n, 1, /DATA offset 18446744073709551615 past 2\^62/],
      [1n << 62n, 1, /past 2\^62/],
      [(1n << 62n) - 2n, 2, /at offset \d+, expected 0/],
    ];
    for (const step of [undefined, 1]) {
      for (const [offset, len, re] of cases) {
        const r = await rig();
        r.write(entry(1, "big.bin", 8));
        if (step === undefined) r.raw(dataFrame(1, offset, len));
        else {
          // Straight into the parser, one byte at a time (TCP would coalesce the pieces).
          await r.settle(200);
          for (const byte of dataFrame(1, offset, len)) if (r.engine.state === "running") r.engine.onData(Uint8Array.of(byte));
        }
        await r.settle();
        expect(r.engine.error?.message, `offset ${offset} + ${len}, step ${step}`).toMatch(re);
        await r.teardown();
        expect(readdirSync(r.dst)).toEqual([]);
      }
    }
  });

  test("DATA out of order (a gap) is refused", async () => {
    const r = await rig();
    r.write(entry(1, "g.bin", 10), data(1, 4, enc.encode("abc")));
    await r.settle();
    expect(r.engine.error?.message).toMatch(/at offset 4, expected 0/);
    await r.teardown();
    expect(readdirSync(r.dst)).toEqual([]);
  });
});

describe("the file pipeline", () => {
  test("HOLE frames make a sparse file of the announced size", async () => {
    const r = await rig();
    const size = 1024 * 1024 * 1024;
    const head = new Uint8Array(4096).fill(9);
    r.write(entry(1, "sparse.bin", size), data(1, 0, head), { type: "hole", id: 1, offset: 4096n, length: BigInt(size - 4096) }, fileEnd(1));
    r.write({ type: "list-end" });
    await r.settle();
    expect(r.engine.state, String(r.engine.error)).toBe("reported");
    const st = lstatSync(join(r.dst, "sparse.bin"));
    expect(st.size).toBe(size);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    const fd = openSync(join(r.dst, "sparse.bin"), "r");
    const first = Buffer.alloc(4097);
    readSync(fd, first, 0, 4097, 0);
    closeSync(fd);
    expect(first.equals(Buffer.concat([Buffer.from(head), Buffer.alloc(1)]))).toBe(true);
    await r.teardown();
  });

  test("directories, modes (special bits dropped), mtimes, symlinks, hard links and ROOT", async () => {
    const r = await rig();
    const mtime = 1_234_567_890_987_654_321n;
    r.write({ type: "root", mode: 0o750, mtimeNs: mtime });
    r.write({ type: "entry", kind: "dir", id: 1, mode: 0o555, mtimeNs: mtime, size: 0n, path: "d" });
    r.write({ type: "entry", kind: "file", id: 2, mode: 0o4755, mtimeNs: mtime, size: 2n, path: "d/x" }, data(2, 0, enc.encode("hi")), fileEnd(2));
    r.write({ type: "entry", kind: "hardlink", id: 3, mode: 0o644, mtimeNs: mtime, size: 0n, path: "y", linkId: 2 });
    r.write({ type: "entry", kind: "symlink", id: 4, mode: 0o777, mtimeNs: mtime, size: 0n, path: "s", linkTarget: enc.encode("../nowhere") });
    r.write({ type: "list-end" });
    await r.settle();
    expect(r.engine.state, String(r.engine.error)).toBe("reported");
    const stat = (p: string) => lstatSync(join(r.dst, p), { bigint: true });
    expect(Number(stat("d").mode) & 0o7777).toBe(0o555);
    expect(Number(stat("d/x").mode) & 0o7777).toBe(0o755);
    expect(stat("d/x").mtimeNs).toBe(mtime);
    expect(stat("d").mtimeNs).toBe(mtime);
    expect(stat("s").mtimeNs).toBe(mtime);
    expect(stat("y").ino).toBe(stat("d/x").ino);
    expect(readlinkSync(join(r.dst, "s"))).toBe("../nowhere");
    expect(Number(stat(".").mode) & 0o777).toBe(0o750);
    expect(stat(".").mtimeNs).toBe(mtime);
    expect(r.replies().find((m) => m.type === "report")).toMatchObject({ files: 3, bytes: 2n });
    // A hard link is counted as a hard link, not as one more file (as the sender counts it).
    expect(r.engine.stats).toMatchObject({ files: 1, hardlinks: 1, symlinks: 1, dirs: 1 });
    await r.teardown();
  });

  test("want mode: each file ENTRY is answered with WANT from offset 0", async () => {
    const r = await rig({ push: false });
    r.write(entry(7, "w.txt", 1));
    await r.settle(300);
    r.write(data(7, 0, enc.encode("w")), fileEnd(7), { type: "list-end" });
    await r.settle();
    expect(r.replies().filter((m) => m.type === "want")).toEqual([{ type: "want", id: 7, offset: 0n }]);
    expect(readFileSync(join(r.dst, "w.txt"), "utf8")).toBe("w");
    await r.teardown();
  });

  test("more files open at once than the limit is a protocol error", async () => {
    const r = await rig({ limits: { maxOpenFiles: 2 } });
    r.write(entry(1, "a", 1), entry(2, "b", 1), entry(3, "c", 1));
    await r.settle();
    expect(r.engine.error?.message).toMatch(/more than 2 files/);
    await r.teardown();
    expect(readdirSync(r.dst)).toEqual([]);
  });
});

describe("LISTED (docs/PROTOCOL.md 8.3g): the sender's totals, for the receiver's ETA", () => {
  const listed = (files: number, bytes: number): WireMessage => ({ type: "listed", files, bytes });
  const hardlink = (id: number, path: string, linkId: number): WireMessage => ({ type: "entry", kind: "hardlink", id, mode: 0o644, mtimeNs: 5n, size: 0n, path, linkId });

  test("accepted when it matches the file ENTRYs (hard links, directories not counted); kept in the stats with the bytes settled", async () => {
    const r = await rig();
    r.write(entry(1, "d", 0, "dir"), entry(2, "d/a", 3), data(2, 0, enc.encode("abc")), fileEnd(2));
    r.write(entry(3, "b", 4), { type: "hole", id: 3, offset: 0n, length: 4n }, hardlink(4, "l", 2), listed(2, 7));
    await r.settle(300);
    expect(r.engine.state, String(r.engine.error)).toBe("running");
    expect(r.engine.stats.listed).toEqual({ files: 2, bytes: 7 });
    r.write(fileEnd(3), { type: "list-end" });
    await r.settle();
    expect(r.engine.state, String(r.engine.error)).toBe("reported");
    // 3 bytes written, the 4 of the hole need none: everything of the 7 is accounted for.
    expect(r.engine.stats).toMatchObject({ written: 3, settledBytes: 4, files: 2, hardlinks: 1 });
    await r.teardown();
  });

  test("an empty tree may say LISTED 0, 0 right away", async () => {
    const r = await rig();
    r.write({ type: "root", mode: 0o755, mtimeNs: 5n }, listed(0, 0), { type: "list-end" });
    await r.settle();
    expect(r.engine.state, String(r.engine.error)).toBe("reported");
    await r.teardown();
  });

  const bad: [string, WireMessage[], RegExp][] = [
    ["wrong file count", [entry(1, "a", 1), data(1, 0, enc.encode("a")), fileEnd(1), listed(2, 1)], /LISTED says 2 files/],
    ["wrong byte count", [entry(1, "a", 1), data(1, 0, enc.encode("a")), fileEnd(1), listed(1, 2)], /LISTED says 1 files of 2 bytes/],
    ["a hard link counted as a file", [entry(1, "a", 0), fileEnd(1), hardlink(2, "l", 1), listed(2, 0)], /LISTED says 2 files/],
    ["twice", [listed(0, 0), listed(0, 0)], /LISTED twice/],
    // In one chunk with a file still being written: the session is not over at LIST_END yet.
    ["after LIST_END", [entry(1, "a", 1), data(1, 0, enc.encode("a")), fileEnd(1), { type: "list-end" }, listed(1, 1)], /LISTED after LIST_END/],
    ["an ENTRY after it", [listed(0, 0), entry(1, "late", 0)], /ENTRY after LISTED/],
    ["ROOT after it", [listed(0, 0), { type: "root", mode: 0o755, mtimeNs: 5n }], /ROOT must be the first/],
  ];
  for (const [name, msgs, err] of bad) {
    test(`refused: ${name}`, async () => {
      const r = await rig();
      r.raw(Buffer.concat(msgs.map((m) => encodeMessage(m))));
      await r.settle();
      expect(r.engine.state).toBe("failed");
      expect(r.engine.error).toBeInstanceOf(ProtocolError);
      expect((r.engine.error as ProtocolError).kind).toBe("frame");
      expect(r.engine.error?.message ?? "").toMatch(err);
      await r.teardown();
    });
  }

  test("refused between a file ENTRY and its CHECKSUM (want mode, CHECKSUM flag)", async () => {
    const r = await rig({ flags: FLAG_CHECKSUM });
    r.write(entry(1, "a", 1), listed(1, 1));
    await r.settle();
    expect(r.engine.error?.message ?? "no error").toMatch(/LISTED where the CHECKSUM of a must come/);
    await r.teardown();
  });
});

describe("a listed file named like a partial (.NAME.usync-partial)", () => {
  const SEC = 1_600_000_000;
  const fileAt = (id: number, path: string, size: number, mtimeNs = BigInt(SEC) * 1_000_000_000n): WireMessage =>
    ({ type: "entry", kind: "file", id, mode: 0o644, mtimeNs, size: BigInt(size), path });
  const big = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7 + (i >> 12)) & 0xff);
  const LIT = ".big.usync-partial";
  /** big's bytes [from, to) as DATA frames of 256 KiB. */
  const bigData = (id: number, from: number, to: number): WireMessage[] => {
    const out: WireMessage[] = [];
    for (let at = from; at < to; at += 256 * 1024) out.push(data(id, at, big.subarray(at, Math.min(to, at + 256 * 1024))));
    return out;
  };
  const wants = (r: Rig) => r.replies().filter((m) => m.type === "want" || m.type === "skip");

  test("listed while big is being received under that name: big moves aside, both land intact", async () => {
    const r = await rig({ push: false });
    r.write(fileAt(1, "big", big.length), ...bigData(1, 0, 1024 * 1024));
    await r.settle(300);
    expect(lstatSync(join(r.dst, LIT)).size).toBe(1024 * 1024);
    r.write(fileAt(2, LIT, 6), data(2, 0, enc.encode("mine!\n")), fileEnd(2));
    await r.settle(300);
    r.write(...bigData(1, 1024 * 1024, big.length), fileEnd(1), { type: "list-end" });
    await r.settle();
    expect(r.engine.error).toBeUndefined();
    expect(wants(r)).toEqual([{ type: "want", id: 1, offset: 0n }, { type: "want", id: 2, offset: 0n }]);
    expect(readdirSync(r.dst).sort()).toEqual([LIT, "big"]);
    expect(readFileSync(join(r.dst, LIT), "utf8")).toBe("mine!\n");
    expect(Buffer.compare(readFileSync(join(r.dst, "big")), Buffer.from(big))).toBe(0);
    expect(lstatSync(join(r.dst, "big")).mode & 0o777).toBe(0o644);
    await r.teardown();
  });

  for (const got of [512 * 1024, 2 * 1024 * 1024]) test(`a drop after such a file landed (big had ${got} bytes) keeps nothing of big and leaves the listed file alone`, async () => {
    const r = await rig({ push: false });
    r.write(fileAt(1, "big", big.length), ...bigData(1, 0, got));
    await r.settle(300);
    r.write(fileAt(2, LIT, 6), data(2, 0, enc.encode("mine!\n")), fileEnd(2));
    await r.settle(300);
    r.end();
    await r.settle();
    expect(r.engine.state).toBe("failed");
    await r.teardown();
    expect(readdirSync(r.dst)).toEqual([LIT]);
    expect(readFileSync(join(r.dst, LIT), "utf8")).toBe("mine!\n");
  });

  test("listed first: never resumed from (even an exact prefix of big with its mtime), never truncated or removed by a drop", async () => {
    const prefix = 1536 * 1024;
    const plantPrefix = (dst: string) => {
      writeFileSync(join(dst, LIT), big.subarray(0, prefix));
      utimesSync(join(dst, LIT), SEC, SEC);
    };
    // Without the listing naming it, that prefix is a partial of ours, offered for resuming.
    const own = await rig({ push: false, plant: plantPrefix });
    own.write(fileAt(1, "big", big.length));
    await own.settle(300);
    expect(wants(own)).toMatchObject([{ type: "want", id: 1, offset: BigInt(prefix) }]);
    own.end();
    await own.settle();
    await own.teardown();

    const r = await rig({ push: false, plant: plantPrefix });
    r.write(fileAt(2, LIT, prefix), fileAt(1, "big", big.length), ...bigData(1, 0, 2 * 1024 * 1024));
    await r.settle(300);
    expect(wants(r)).toEqual([{ type: "skip", id: 2 }, { type: "want", id: 1, offset: 0n }]);
    r.end();
    await r.settle();
    expect(r.engine.state).toBe("failed");
    await r.teardown();
    expect(readdirSync(r.dst)).toEqual([LIT]);
    const st = lstatSync(join(r.dst, LIT));
    expect(st.size).toBe(prefix);
    expect(st.mtimeMs).toBe(SEC * 1000);
    expect(Buffer.compare(readFileSync(join(r.dst, LIT)), Buffer.from(big.subarray(0, prefix)))).toBe(0);
  });

  test("a partial name replaced from outside mid-transfer: big never renames, truncates or removes what is there now", async () => {
    const r = await rig({ push: false });
    r.write(fileAt(1, "big", big.length), ...bigData(1, 0, 1024 * 1024));
    await r.settle(300);
    writeFileSync(join(r.dst, "foreign"), "not the receiver's\n");
    renameSync(join(r.dst, "foreign"), join(r.dst, LIT));
    r.write(...bigData(1, 1024 * 1024, big.length), fileEnd(1), { type: "list-end" });
    await r.settle();
    await r.teardown();
    expect(readFileSync(join(r.dst, LIT), "utf8")).toBe("not the receiver's\n");
    // Its inode is gone with its name (a file of no links cannot be linked again): reported, never stored with other bytes.
    expect(readdirSync(r.dst).filter((x) => x !== LIT)).toEqual([]);
    expect(r.engine.failures.map((f) => f.path)).toEqual(["big"]);
  });

  test("listed first, then big completes: both land, the listed file untouched", async () => {
    const r = await rig({ push: false });
    r.write(fileAt(2, LIT, 6), data(2, 0, enc.encode("mine!\n")), fileEnd(2));
    r.write(fileAt(1, "big", big.length), ...bigData(1, 0, big.length), fileEnd(1), { type: "list-end" });
    await r.settle();
    expect(r.engine.error).toBeUndefined();
    expect(readdirSync(r.dst).sort()).toEqual([LIT, "big"]);
    expect(readFileSync(join(r.dst, LIT), "utf8")).toBe("mine!\n");
    expect(Buffer.compare(readFileSync(join(r.dst, "big")), Buffer.from(big))).toBe(0);
    await r.teardown();
  });
});
