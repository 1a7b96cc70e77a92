// tests/uring/prep.test.ts — every prep* helper round-trips through each backend
// (liburing, raw syscalls, synchronous emulation): the SQE it builds must make the kernel
// (or the emulation) do the operation, and the result must be visible with plain libc /
// node:fs calls. Also link-chain semantics, which the emulation must share with the kernel.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { E } from "../../ffi/errno.ts";
import { addressOf, cstr, libc } from "../../ffi/libc.ts";
import {
  AT, FALLOC, FILE_INDEX_ALLOC, FSYNC_DATASYNC, IOSQE, KERNEL_TIMESPEC, MSGHDR, O, OPEN_HOW, RESOLVE, S, SEEK,
  SHUT, SOCK, SOCKADDR_IN, SOL, STATX, STATX_MASK,
} from "../../ffi/structs.ts";
import { openRing } from "../../src/uring/backend.ts";
import {
  prepAccept, prepClose, prepCloseDirect, prepConnect, prepFallocate, prepFsync, prepLinkat, prepMkdirat, prepNop,
  prepOpenat, prepOpenat2, prepOpenatDirect, prepRead, prepReadFixed, prepReadv, prepRecv, prepRecvmsg, prepRenameat,
  prepSend, prepSendmsg, prepShutdown, prepSplice, prepStatx, prepSymlinkat, prepTimeout, prepUnlinkat, prepWrite,
  prepWriteFixed, prepWritev, sqeSetFlags,
} from "../../src/uring/prep.ts";
import type { Ring } from "../../src/uring/ring.ts";
import {
  BACKENDS, check, closeAll, iovecs, listenLoopback, msghdr, NativeBuf, pipe, Recorder, runBatch, tcpPair, tcpSocket,
  tempDir,
} from "./helpers.ts";

const TCP_INQ = 36; // <linux/tcp.h>: ask for a TCP_CM_INQ cmsg on every recvmsg
const BAD_FD = 1_000_000;

function openFile(path: string, flags = O.RDWR | O.CREAT | O.CLOEXEC): number {
  return check(`open ${path}`, libc.open(cstr(path), flags, 0o644));
}

function timespec(sec: number, nsec: number): BigInt64Array {
  const ts = new BigInt64Array(KERNEL_TIMESPEC.size / 8);
  ts[KERNEL_TIMESPEC.sec / 8] = BigInt(sec);
  ts[KERNEL_TIMESPEC.nsec / 8] = BigInt(nsec);
  return ts;
}

describe.each(BACKENDS)("prep helpers on the %s backend", (backend) => {
  let ring: Ring;
  const tmp = tempDir(`prep-${backend}`);
  const fds: number[] = [];
  const track = (fd: number): number => (fds.push(fd), fd);

  beforeAll(() => {
    ring = openRing({ backend, entries: 32 });
  });
  afterAll(() => {
    ring.close();
    closeAll(fds);
    tmp.rm();
  });

  test("openRing gives the backend asked for", () => {
    expect(ring.kind).toBe(backend);
    expect(ring.entries).toBe(32);
  });

  test("NOP", () => {
    expect(runBatch(ring, [(s) => prepNop(ring, s), (s) => prepNop(ring, s)])).toEqual([0, 0]);
  });

  test("WRITE then READ back at offsets", () => {
    const fd = track(openFile(tmp.path("rw")));
    const a = Buffer.from("0123456789abcdef".repeat(8));
    const b = Buffer.from("the second piece, far away");
    expect(runBatch(ring, [
      (s) => prepWrite(ring, s, fd, addressOf(a), a.length, 0),
      (s) => prepWrite(ring, s, fd, addressOf(b), b.length, 10_000),
    ])).toEqual([a.length, b.length]);
    const ra = Buffer.alloc(a.length);
    const rb = Buffer.alloc(b.length + 10);
    expect(runBatch(ring, [
      (s) => prepRead(ring, s, fd, addressOf(ra), ra.length, 0),
      (s) => prepRead(ring, s, fd, addressOf(rb), rb.length, 10_000),
    ])).toEqual([a.length, b.length]);
    expect(ra.equals(a)).toBe(true);
    expect(rb.subarray(0, b.length).equals(b)).toBe(true);
    expect(statSync(tmp.path("rw")).size).toBe(10_000 + b.length);
    // The hole between the pieces reads as zeros.
    const hole = Buffer.alloc(16, 0xff);
    expect(runBatch(ring, [(s) => prepRead(ring, s, fd, addressOf(hole), 16, 5000)])).toEqual([16]);
    expect(hole.every((x) => x === 0)).toBe(true);
  });

  test("WRITE and READ at offset -1 use and advance the file position", () => {
    const fd = track(openFile(tmp.path("pos")));
    const one = Buffer.from("first;");
    const two = Buffer.from("second;");
    expect(runBatch(ring, [(s) => prepWrite(ring, s, fd, addressOf(one), one.length, -1)])).toEqual([one.length]);
    expect(runBatch(ring, [(s) => prepWrite(ring, s, fd, addressOf(two), two.length, -1)])).toEqual([two.length]);
    expect(libc.lseek(fd, 0, SEEK.CUR)).toBe(one.length + two.length);
    expect(readFileSync(tmp.path("pos"), "utf8")).toBe("first;second;");
    libc.lseek(fd, 0, SEEK.SET);
    const r1 = Buffer.alloc(6);
    const r2 = Buffer.alloc(100);
    expect(runBatch(ring, [(s) => prepRead(ring, s, fd, addressOf(r1), 6, -1)])).toEqual([6]);
    expect(runBatch(ring, [(s) => prepRead(ring, s, fd, addressOf(r2), 100, -1)])).toEqual([7]);
    expect(r1.toString()).toBe("first;");
    expect(r2.subarray(0, 7).toString()).toBe("second;");
    expect(libc.lseek(fd, 0, SEEK.CUR)).toBe(13);
  });

  test("WRITEV and READV", () => {
    const fd = track(openFile(tmp.path("vec")));
    const a = Buffer.from("alpha-");
    const b = Buffer.from("beta-gamma");
    const wv = iovecs([[addressOf(a), a.length], [addressOf(b), b.length]]);
    expect(runBatch(ring, [(s) => prepWritev(ring, s, fd, addressOf(wv), 2, 100)])).toEqual([16]);
    const x = Buffer.alloc(4);
    const y = Buffer.alloc(20);
    const rv = iovecs([[addressOf(x), 4], [addressOf(y), 20]]);
    expect(runBatch(ring, [(s) => prepReadv(ring, s, fd, addressOf(rv), 2, 100)])).toEqual([16]);
    expect(x.toString()).toBe("alph");
    expect(y.subarray(0, 12).toString()).toBe("a-beta-gamma");
  });

  test("WRITE_FIXED and READ_FIXED with registered buffers", () => {
    const fd = track(openFile(tmp.path("fixed")));
    const bufs = [new NativeBuf(8192), new NativeBuf(8192)];
    try {
      const iov = iovecs(bufs.map((b) => [b.addr, b.size]));
      expect(ring.backend.registerBuffers(addressOf(iov), 2)).toBe(0);
      for (let i = 0; i < 8192; i++) bufs[1].bytes[i] = (i * 7) & 0xff;
      bufs[0].bytes.fill(0);
      // Part of a registered buffer is fine, as long as it lies inside it.
      expect(runBatch(ring, [(s) => prepWriteFixed(ring, s, fd, bufs[1].addr + 4096, 4096, 0, 1)])).toEqual([4096]);
      expect(runBatch(ring, [(s) => prepReadFixed(ring, s, fd, bufs[0].addr, 4096, 0, 0)])).toEqual([4096]);
      expect(Buffer.from(bufs[0].bytes.subarray(0, 4096)).equals(Buffer.from(bufs[1].bytes.subarray(4096)))).toBe(true);
      expect(readFileSync(tmp.path("fixed")).equals(Buffer.from(bufs[1].bytes.subarray(4096)))).toBe(true);
      expect(ring.backend.unregisterBuffers()).toBe(0);
    } finally {
      for (const b of bufs) b.free();
    }
  });

  test("OPENAT and CLOSE", () => {
    writeFileSync(tmp.path("hello"), "hello from openat");
    const path = tmp.c("hello");
    const missing = tmp.c("does-not-exist");
    const [fd, enoent] = runBatch(ring, [
      (s) => prepOpenat(ring, s, AT.FDCWD, addressOf(path), O.RDONLY | O.CLOEXEC, 0),
      (s) => prepOpenat(ring, s, AT.FDCWD, addressOf(missing), O.RDONLY, 0),
    ]);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(enoent).toBe(-E.ENOENT);
    const buf = Buffer.alloc(64);
    expect(libc.pread(fd, buf, 64, 0)).toBe(17);
    expect(buf.subarray(0, 17).toString()).toBe("hello from openat");
    expect(runBatch(ring, [(s) => prepClose(ring, s, fd)])).toEqual([0]);
    expect(runBatch(ring, [(s) => prepClose(ring, s, fd)])).toEqual([-E.EBADF]);
    // O_CREAT with a mode makes a new file.
    const created = tmp.c("created");
    const [cfd] = runBatch(ring, [(s) => prepOpenat(ring, s, AT.FDCWD, addressOf(created), O.WRONLY | O.CREAT | O.EXCL, 0o600)]);
    expect(cfd).toBeGreaterThanOrEqual(0);
    expect(statSync(tmp.path("created")).mode & 0o777).toBe(0o600);
    expect(runBatch(ring, [(s) => prepClose(ring, s, cfd)])).toEqual([0]);
  });

  test("OPENAT2 with RESOLVE_BENEATH: inside works, escaping with .. fails with EXDEV", () => {
    writeFileSync(tmp.path("beneath"), "inside");
    const dirfd = track(check("open dir", libc.open(cstr(tmp.dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0)));
    const how = new BigUint64Array(OPEN_HOW.size / 8);
    how[OPEN_HOW.flags / 8] = BigInt(O.RDONLY | O.CLOEXEC);
    how[OPEN_HOW.resolve / 8] = BigInt(RESOLVE.BENEATH);
    const inside = cstr("beneath");
    const escape = cstr("../beneath");
    const absolute = cstr(tmp.path("beneath"));
    const [fd, exdev, abs] = runBatch(ring, [
      (s) => prepOpenat2(ring, s, dirfd, addressOf(inside), addressOf(how), OPEN_HOW.size),
      (s) => prepOpenat2(ring, s, dirfd, addressOf(escape), addressOf(how), OPEN_HOW.size),
      (s) => prepOpenat2(ring, s, dirfd, addressOf(absolute), addressOf(how), OPEN_HOW.size),
    ]);
    expect(fd).toBeGreaterThanOrEqual(0);
    track(fd);
    expect(exdev).toBe(-E.EXDEV);
    expect(abs).toBe(-E.EXDEV);
    const buf = Buffer.alloc(16);
    expect(libc.pread(fd, buf, 16, 0)).toBe(6);
  });

  test("io-wq worker limits can be raised (and the ring still works after)", () => {
    expect(ring.backend.setIowqMaxWorkers(64, 0)).toBe(0);
    writeFileSync(tmp.path("after-iowq"), "still fine");
    const path = tmp.c("after-iowq");
    const [fd] = runBatch(ring, [(s) => prepOpenat(ring, s, AT.FDCWD, addressOf(path), O.RDONLY, 0)]);
    expect(fd).toBeGreaterThanOrEqual(0);
    track(fd);
  });

  test("OPENAT direct into a sparse file table, READ through the fixed file, CLOSE direct", () => {
    writeFileSync(tmp.path("direct"), "direct descriptor data");
    expect(ring.backend.registerFiles(4)).toBe(0);
    try {
      const path = tmp.c("direct");
      const [slot, slot2] = runBatch(ring, [
        (s) => prepOpenatDirect(ring, s, AT.FDCWD, addressOf(path), O.RDONLY, 0, FILE_INDEX_ALLOC),
        (s) => prepOpenatDirect(ring, s, AT.FDCWD, addressOf(path), O.RDONLY, 0, FILE_INDEX_ALLOC),
      ]);
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(slot).toBeLessThan(4);
      expect(slot2).toBeGreaterThanOrEqual(0);
      expect(slot2).not.toBe(slot);
      const buf = Buffer.alloc(64);
      const [n] = runBatch(ring, [
        (s) => {
          prepRead(ring, s, slot, addressOf(buf), 64, 0);
          sqeSetFlags(ring, s, IOSQE.FIXED_FILE);
        },
      ]);
      expect(n).toBe(22);
      expect(buf.subarray(0, n).toString()).toBe("direct descriptor data");
      // An explicit slot: open into slot 3 (res 0 when a slot is named).
      const [named] = runBatch(ring, [(s) => prepOpenatDirect(ring, s, AT.FDCWD, addressOf(path), O.RDONLY, 0, 3)]);
      expect(named).toBe(0);
      expect(runBatch(ring, [(s) => prepCloseDirect(ring, s, slot), (s) => prepCloseDirect(ring, s, slot2), (s) => prepCloseDirect(ring, s, 3)]))
        .toEqual([0, 0, 0]);
      // The slot is empty now.
      const [bad] = runBatch(ring, [
        (s) => {
          prepRead(ring, s, slot, addressOf(buf), 64, 0);
          sqeSetFlags(ring, s, IOSQE.FIXED_FILE);
        },
      ]);
      expect(bad).toBe(-E.EBADF);
    } finally {
      expect(ring.backend.unregisterFiles()).toBe(0);
    }
  });

  test("STATX: size, mode and mtime (ns) match node:fs", () => {
    writeFileSync(tmp.path("stat"), Buffer.alloc(12345, 1));
    const path = tmp.c("stat");
    const sx = new Uint8Array(STATX.size);
    expect(runBatch(ring, [(s) => prepStatx(ring, s, AT.FDCWD, addressOf(path), 0, STATX_MASK.BASIC_STATS, addressOf(sx))]))
      .toEqual([0]);
    const dv = new DataView(sx.buffer);
    const st = statSync(tmp.path("stat"), { bigint: true });
    expect(dv.getUint32(STATX.mask, true) & STATX_MASK.SIZE).toBe(STATX_MASK.SIZE);
    expect(dv.getBigUint64(STATX.size_, true)).toBe(12345n);
    expect(dv.getUint16(STATX.mode, true)).toBe(Number(st.mode));
    expect(dv.getUint16(STATX.mode, true) & S.IFMT).toBe(S.IFREG);
    expect(dv.getBigUint64(STATX.ino, true)).toBe(st.ino);
    const sec = dv.getBigInt64(STATX.mtime + STATX.tsSec, true);
    const nsec = dv.getUint32(STATX.mtime + STATX.tsNsec, true);
    expect(sec * 1_000_000_000n + BigInt(nsec)).toBe(st.mtimeNs);
    // A symlink with AT_SYMLINK_NOFOLLOW is the link itself.
    const link = tmp.c("stat-link");
    check("symlinkat", libc.symlinkat(cstr("stat"), AT.FDCWD, link));
    expect(runBatch(ring, [(s) => prepStatx(ring, s, AT.FDCWD, addressOf(link), AT.SYMLINK_NOFOLLOW, STATX_MASK.BASIC_STATS, addressOf(sx))]))
      .toEqual([0]);
    expect(dv.getUint16(STATX.mode, true) & S.IFMT).toBe(S.IFLNK);
  });

  test("SPLICE file -> pipe -> file", () => {
    const data = Buffer.alloc(20_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
    writeFileSync(tmp.path("splice-src"), data);
    const src = track(openFile(tmp.path("splice-src"), O.RDONLY | O.CLOEXEC));
    const dst = track(openFile(tmp.path("splice-dst")));
    const [r, w] = pipe();
    fds.push(r, w);
    expect(runBatch(ring, [(s) => prepSplice(ring, s, src, 1000, w, -1, 15_000, 0)])).toEqual([15_000]);
    expect(runBatch(ring, [(s) => prepSplice(ring, s, r, -1, dst, 500, 15_000, 0)])).toEqual([15_000]);
    const out = readFileSync(tmp.path("splice-dst"));
    expect(out.length).toBe(15_500);
    expect(out.subarray(500).equals(data.subarray(1000, 16_000))).toBe(true);
  });

  test("SEND and RECV over loopback TCP (RECV submitted first)", () => {
    const [c, s] = tcpPair();
    fds.push(c, s);
    const msg = Buffer.from("ping over io_uring");
    const buf = Buffer.alloc(100);
    const [got, sent] = runBatch(ring, [
      (q) => prepRecv(ring, q, s, addressOf(buf), buf.length, 0),
      (q) => prepSend(ring, q, c, addressOf(msg), msg.length, 0),
    ]);
    expect(sent).toBe(msg.length);
    expect(got).toBe(msg.length);
    expect(buf.subarray(0, got).toString()).toBe("ping over io_uring");
  });

  test("SENDMSG and RECVMSG with iovecs, msghdr and a control buffer", () => {
    const [c, s] = tcpPair();
    fds.push(c, s);
    check("setsockopt TCP_INQ", libc.setsockopt(s, SOL.TCP, TCP_INQ, new Int32Array([1]), 4));
    const a = Buffer.from("scatter ");
    const b = Buffer.from("and gather");
    const siov = iovecs([[addressOf(a), a.length], [addressOf(b), b.length]]);
    const smsg = msghdr(siov, 2);
    const x = Buffer.alloc(10);
    const y = Buffer.alloc(10);
    const riov = iovecs([[addressOf(x), 10], [addressOf(y), 10]]);
    const control = new Uint8Array(64);
    const rmsg = msghdr(riov, 2, control);
    const [got, sent] = runBatch(ring, [
      (q) => prepRecvmsg(ring, q, s, addressOf(rmsg), 0),
      (q) => prepSendmsg(ring, q, c, addressOf(smsg), 0),
    ]);
    expect(sent).toBe(18);
    expect(got).toBe(18);
    expect(x.toString() + y.subarray(0, 8).toString()).toBe("scatter and gather");
    // The kernel wrote one cmsg (SOL_TCP, TCP_CM_INQ: bytes left to read = 0) and its length.
    const m = new DataView(rmsg.buffer);
    const cm = new DataView(control.buffer);
    expect(Number(m.getBigUint64(MSGHDR.controllen, true))).toBe(24);
    expect(cm.getBigUint64(0, true)).toBe(20n);
    expect(cm.getInt32(8, true)).toBe(SOL.TCP);
    expect(cm.getInt32(12, true)).toBe(TCP_INQ);
    expect(cm.getInt32(16, true)).toBe(0);
  });

  test("ACCEPT and CONNECT over loopback TCP", () => {
    const l = listenLoopback();
    const c = tcpSocket();
    fds.push(l.fd, c);
    const peer = new Uint8Array(SOCKADDR_IN.size * 2);
    const peerLen = new Uint32Array([peer.length]);
    const [afd, conn] = runBatch(ring, [
      (q) => prepAccept(ring, q, l.fd, addressOf(peer), addressOf(peerLen), SOCK.CLOEXEC),
      (q) => prepConnect(ring, q, c, addressOf(l.addr), SOCKADDR_IN.size),
    ]);
    expect(conn).toBe(0);
    expect(afd).toBeGreaterThanOrEqual(0);
    track(afd);
    // The peer address the kernel filled in is the client's own address.
    const mine = new Uint8Array(SOCKADDR_IN.size);
    check("getsockname", libc.getsockname(c, mine, new Uint32Array([SOCKADDR_IN.size])));
    expect(peerLen[0]).toBe(SOCKADDR_IN.size);
    expect(Buffer.from(peer.subarray(0, SOCKADDR_IN.size)).equals(Buffer.from(mine))).toBe(true);
    // And the two ends are connected to each other.
    const msg = Buffer.from("accepted");
    expect(libc.send(c, msg, msg.length, 0)).toBe(8);
    const buf = Buffer.alloc(16);
    expect(libc.recv(afd, buf, 16, 0)).toBe(8);
    expect(buf.subarray(0, 8).toString()).toBe("accepted");
  });

  test("SHUTDOWN: the peer sees EOF", () => {
    const [c, s] = tcpPair();
    fds.push(c, s);
    const msg = Buffer.from("last words");
    expect(runBatch(ring, [(q) => prepSend(ring, q, c, addressOf(msg), msg.length, 0)])).toEqual([10]);
    expect(runBatch(ring, [(q) => prepShutdown(ring, q, c, SHUT.WR)])).toEqual([0]);
    const buf = Buffer.alloc(64);
    expect(runBatch(ring, [(q) => prepRecv(ring, q, s, addressOf(buf), 64, 0)])).toEqual([10]);
    expect(runBatch(ring, [(q) => prepRecv(ring, q, s, addressOf(buf), 64, 0)])).toEqual([0]);
    // Sending on the shut-down side fails.
    expect(runBatch(ring, [(q) => prepSend(ring, q, c, addressOf(msg), msg.length, 0x4000 /* MSG_NOSIGNAL */)])).toEqual([-E.EPIPE]);
  });

  test("FSYNC (full and datasync); a bad fd is EBADF", () => {
    const fd = track(openFile(tmp.path("fsync")));
    const data = Buffer.alloc(4096, 7);
    expect(runBatch(ring, [
      (s) => prepWrite(ring, s, fd, addressOf(data), data.length, 0),
    ])).toEqual([4096]);
    expect(runBatch(ring, [
      (s) => prepFsync(ring, s, fd, 0),
      (s) => prepFsync(ring, s, fd, FSYNC_DATASYNC),
      (s) => prepFsync(ring, s, BAD_FD, 0),
    ])).toEqual([0, 0, -E.EBADF]);
  });

  test("MKDIRAT, SYMLINKAT, LINKAT, RENAMEAT, UNLINKAT", () => {
    const umask = process.umask();
    const dir = tmp.c("made-dir");
    expect(runBatch(ring, [(s) => prepMkdirat(ring, s, AT.FDCWD, addressOf(dir), 0o750)])).toEqual([0]);
    expect(statSync(tmp.path("made-dir")).isDirectory()).toBe(true);
    expect(statSync(tmp.path("made-dir")).mode & 0o777).toBe(0o750 & ~umask);
    expect(runBatch(ring, [(s) => prepMkdirat(ring, s, AT.FDCWD, addressOf(dir), 0o750)])).toEqual([-E.EEXIST]);

    const target = cstr("some/where/else");
    const link = tmp.c("symlink");
    expect(runBatch(ring, [(s) => prepSymlinkat(ring, s, addressOf(target), AT.FDCWD, addressOf(link))])).toEqual([0]);
    expect(readlinkSync(tmp.path("symlink"))).toBe("some/where/else");

    writeFileSync(tmp.path("orig"), "linked content");
    const orig = tmp.c("orig");
    const hard = tmp.c("hard");
    expect(runBatch(ring, [(s) => prepLinkat(ring, s, AT.FDCWD, addressOf(orig), AT.FDCWD, addressOf(hard), 0)])).toEqual([0]);
    expect(statSync(tmp.path("hard")).ino).toBe(statSync(tmp.path("orig")).ino);
    expect(statSync(tmp.path("orig")).nlink).toBe(2);

    const renamed = tmp.c("renamed");
    expect(runBatch(ring, [(s) => prepRenameat(ring, s, AT.FDCWD, addressOf(hard), AT.FDCWD, addressOf(renamed), 0)])).toEqual([0]);
    expect(existsSync(tmp.path("hard"))).toBe(false);
    expect(readFileSync(tmp.path("renamed"), "utf8")).toBe("linked content");
    // RENAME_NOREPLACE refuses to overwrite.
    expect(runBatch(ring, [(s) => prepRenameat(ring, s, AT.FDCWD, addressOf(orig), AT.FDCWD, addressOf(renamed), 1)]))
      .toEqual([-E.EEXIST]);

    expect(runBatch(ring, [
      (s) => prepUnlinkat(ring, s, AT.FDCWD, addressOf(renamed), 0),
      (s) => prepUnlinkat(ring, s, AT.FDCWD, addressOf(link), 0),
      (s) => prepUnlinkat(ring, s, AT.FDCWD, addressOf(dir), 0),
    ])).toEqual([0, 0, -E.EISDIR]);
    expect(existsSync(tmp.path("renamed"))).toBe(false);
    expect(() => lstatSync(tmp.path("symlink"))).toThrow();
    expect(statSync(tmp.path("orig")).nlink).toBe(1);
    expect(runBatch(ring, [(s) => prepUnlinkat(ring, s, AT.FDCWD, addressOf(dir), AT.REMOVEDIR)])).toEqual([0]);
    expect(existsSync(tmp.path("made-dir"))).toBe(false);
  });

  test("FALLOCATE grows size and blocks; KEEP_SIZE grows only blocks", () => {
    const fd = track(openFile(tmp.path("falloc")));
    expect(runBatch(ring, [(s) => prepFallocate(ring, s, fd, 0, 0, 1 << 20)])).toEqual([0]);
    const st = statSync(tmp.path("falloc"));
    expect(st.size).toBe(1 << 20);
    expect(st.blocks * 512).toBeGreaterThanOrEqual(1 << 20);
    expect(runBatch(ring, [(s) => prepFallocate(ring, s, fd, FALLOC.KEEP_SIZE, 1 << 20, 1 << 20)])).toEqual([0]);
    const st2 = statSync(tmp.path("falloc"));
    expect(st2.size).toBe(1 << 20);
    expect(st2.blocks * 512).toBeGreaterThanOrEqual(2 << 20);
  });

  test("TIMEOUT by time completes with -ETIME", () => {
    const ts = timespec(0, 50_000_000);
    expect(runBatch(ring, [(s) => prepTimeout(ring, s, addressOf(ts), 0, 0)])).toEqual([-E.ETIME]);
  });

  test("TIMEOUT by count completes with 0 after N other completions, not before", () => {
    const ts = timespec(30, 0);
    const rec = new Recorder();
    const sqe = ring.getSqe();
    prepTimeout(ring, sqe, addressOf(ts), 3, 0);
    ring.setUserData(sqe, ring.track(rec, 100));
    expect(runBatch(ring, [(s) => prepNop(ring, s), (s) => prepNop(ring, s)], rec)).toEqual([0, 0]);
    ring.submit();
    ring.processCompletions();
    expect(rec.res.has(100)).toBe(false);
    expect(runBatch(ring, [(s) => prepNop(ring, s)], rec)).toEqual([0]);
    ring.runUntil(() => rec.res.has(100));
    expect(rec.get(100)).toBe(0);
    // It completed after the third NOP (its CQE follows the one that made the count).
    expect(rec.order.indexOf(100)).toBe(3);
  });

  test("an IO_LINK chain is broken by a short READ: the rest completes with -ECANCELED", () => {
    writeFileSync(tmp.path("short"), Buffer.alloc(100, 1));
    const fd = track(openFile(tmp.path("short"), O.RDWR | O.CLOEXEC));
    const out = track(openFile(tmp.path("short-out")));
    const buf = Buffer.alloc(200);
    const res = runBatch(ring, [
      (s) => {
        prepRead(ring, s, fd, addressOf(buf), 200, 0);
        sqeSetFlags(ring, s, IOSQE.IO_LINK);
      },
      (s) => {
        prepWrite(ring, s, out, addressOf(buf), 200, 0);
        sqeSetFlags(ring, s, IOSQE.IO_LINK);
      },
      (s) => prepNop(ring, s),
      // Not linked to the chain: runs normally.
      (s) => prepNop(ring, s),
    ]);
    expect(res).toEqual([100, -E.ECANCELED, -E.ECANCELED, 0]);
    expect(statSync(tmp.path("short-out")).size).toBe(0);
    // An exact-length chain runs to the end.
    expect(runBatch(ring, [
      (s) => {
        prepRead(ring, s, fd, addressOf(buf), 100, 0);
        sqeSetFlags(ring, s, IOSQE.IO_LINK);
      },
      (s) => prepWrite(ring, s, out, addressOf(buf), 100, 0),
    ])).toEqual([100, 100]);
  });

  test("an IO_LINK chain is broken by a failure; IO_HARDLINK is not", () => {
    const buf = Buffer.alloc(16);
    expect(runBatch(ring, [
      (s) => {
        prepRead(ring, s, BAD_FD, addressOf(buf), 16, 0);
        sqeSetFlags(ring, s, IOSQE.IO_LINK);
      },
      (s) => prepNop(ring, s),
    ])).toEqual([-E.EBADF, -E.ECANCELED]);
    expect(runBatch(ring, [
      (s) => {
        prepRead(ring, s, BAD_FD, addressOf(buf), 16, 0);
        sqeSetFlags(ring, s, IOSQE.IO_HARDLINK);
      },
      (s) => {
        prepNop(ring, s);
        sqeSetFlags(ring, s, IOSQE.IO_HARDLINK);
      },
      (s) => prepNop(ring, s),
    ])).toEqual([-E.EBADF, 0, 0]);
  });

  test("a linked member waits for the one before it (RECV -> WRITE of the received bytes)", () => {
    const [c, s] = tcpPair();
    fds.push(c, s);
    const out = track(openFile(tmp.path("chain-out")));
    const buf = Buffer.alloc(5);
    const rec = new Recorder();
    const a = ring.getSqe();
    prepRecv(ring, a, s, addressOf(buf), 5, 0);
    sqeSetFlags(ring, a, IOSQE.IO_LINK);
    ring.setUserData(a, ring.track(rec, 0));
    const b = ring.getSqe();
    prepWrite(ring, b, out, addressOf(buf), 5, 0);
    ring.setUserData(b, ring.track(rec, 1));
    ring.submit();
    ring.processCompletions();
    // Nothing sent yet: neither may have completed.
    expect(rec.order).toEqual([]);
    expect(libc.send(c, Buffer.from("hello"), 5, 0)).toBe(5);
    ring.runUntil(() => rec.order.length === 2);
    expect(rec.order).toEqual([0, 1]);
    expect([rec.get(0), rec.get(1)]).toEqual([5, 5]);
    expect(readFileSync(tmp.path("chain-out"), "utf8")).toBe("hello");
  });
});
