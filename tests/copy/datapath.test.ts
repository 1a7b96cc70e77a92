// Unit tests for src/copy/datapath.ts: choosing the data path, and moving bytes on real
// files (plain, sparse, short, growing), with every fallback path forced once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { chooseDataPath, DataMover, looksSparse, type DataPathInput } from "../../src/copy/datapath.ts";

const base: DataPathInput = { size: 4096, blocks: 8, pseudo: false, ringMax: 1 << 20, clone: false, cfrBroken: false, splice: true };

describe("chooseDataPath", () => {
  test("small files go through the ring, larger ones through copy_file_range", () => {
    expect(chooseDataPath(base)).toBe("ring");
    expect(chooseDataPath({ ...base, size: 1 << 20, blocks: 2048 })).toBe("ring");
    expect(chooseDataPath({ ...base, size: (1 << 20) + 1, blocks: 2056 })).toBe("copy_file_range");
    expect(chooseDataPath({ ...base, size: 0, blocks: 0 })).toBe("ring");
  });

  test("a smaller ring limit (-c) moves the boundary", () => {
    expect(chooseDataPath({ ...base, size: 8192, blocks: 16, ringMax: 4096 })).toBe("copy_file_range");
  });

  test("sparse files never go through the ring (their holes would be filled)", () => {
    expect(chooseDataPath({ ...base, size: 512 * 1024, blocks: 8 })).toBe("copy_file_range");
  });

  test("clone first where extents can be shared", () => {
    expect(chooseDataPath({ ...base, size: 10 << 20, blocks: 20480, clone: true })).toBe("clone");
  });

  test("copy_file_range known broken: splice, or read/write with --no-splice", () => {
    const big = { ...base, size: 10 << 20, blocks: 20480, cfrBroken: true };
    expect(chooseDataPath(big)).toBe("splice");
    expect(chooseDataPath({ ...big, splice: false })).toBe("read_write");
  });

  test("pseudo files (/proc) are streamed whatever their size says", () => {
    expect(chooseDataPath({ ...base, size: 0, blocks: 0, pseudo: true })).toBe("stream");
    expect(chooseDataPath({ ...base, size: 4096, pseudo: true })).toBe("stream");
  });

  test("looksSparse allows a block of slack", () => {
    expect(looksSparse(0, 0)).toBe(false);
    expect(looksSparse(100, 0)).toBe(false);
    expect(looksSparse(8192, 8)).toBe(false);
    expect(looksSparse(1 << 20, 8)).toBe(true);
  });
});

describe("DataMover on real files", () => {
  let d = "";
  let n = 0;
  const abort = new Int32Array(1);
  beforeAll(() => {
    d = mkdtempSync("/tmp/uring-sync-datapath-");
  });
  afterAll(() => rmSync(d, { recursive: true, force: true }));

  function pair(content: Buffer | null, size?: number): { src: number; dst: number; dstPath: string; srcPath: string } {
    const srcPath = join(d, `src-${++n}`);
    const dstPath = join(d, `dst-${n}`);
    if (content !== null) writeFileSync(srcPath, content);
    else {
      const fd = openSync(srcPath, "w");
      ftruncateSync(fd, size ?? 0);
      closeSync(fd);
    }
    return { src: openSync(srcPath, "r"), dst: openSync(dstPath, "w+"), dstPath, srcPath };
  }

  for (const path of ["copy_file_range", "splice", "read_write"] as const) {
    test(`${path}: a 3 MiB + 13 file arrives byte for byte, in 64 KiB chunks`, () => {
      const data = randomBytes(3 * 1024 * 1024 + 13);
      const p = pair(data);
      const m = new DataMover({ chunk: 64 * 1024, splice: true, abort });
      const r = m.copyFile(p.src, p.dst, data.length, Math.ceil(data.length / 512), path, 1, 1);
      expect(r.err).toBe(0);
      expect(r.changed).toBe(0);
      expect(r.bytes).toBe(data.length);
      expect(r.path).toBe(path);
      closeSync(p.src);
      closeSync(p.dst);
      expect(readFileSync(p.dstPath).equals(data)).toBe(true);
      m.close();
    });
  }

  test("preallocated (ext4): the bytes arrive, the size is the source's, nothing is allocated past it; a sparse file is not preallocated", () => {
    const data = randomBytes(5 * 1024 * 1024 + 333);
    const p = pair(data);
    const m = new DataMover({ chunk: 1 << 20, splice: true, abort });
    const r = m.copyFile(p.src, p.dst, data.length, Math.ceil(data.length / 512), "copy_file_range", 1, 1, true);
    expect(r.err).toBe(0);
    expect(r.changed).toBe(0);
    expect(r.bytes).toBe(data.length);
    const st = fstatSync(p.dst);
    expect(st.size).toBe(data.length);
    expect(st.blocks * 512).toBeLessThanOrEqual(Math.ceil(data.length / 4096) * 4096 + 64 * 1024);
    closeSync(p.src);
    closeSync(p.dst);
    expect(readFileSync(p.dstPath).equals(data)).toBe(true);
    // Sparse: holes must stay holes even when the caller asks for preallocation.
    const size = 32 * 1024 * 1024;
    const q = pair(null, size);
    const w = openSync(q.srcPath, "r+");
    writeSync(w, randomBytes(65536), 0, 65536, 8 * 1024 * 1024);
    closeSync(w);
    const r2 = m.copyFile(q.src, q.dst, size, Number(fstatSync(q.src).blocks), "copy_file_range", 1, 1, true);
    expect(r2.err).toBe(0);
    expect(Number(fstatSync(q.dst).blocks) * 512).toBeLessThan(1024 * 1024);
    closeSync(q.src);
    closeSync(q.dst);
    m.close();
  });

  test("preallocated: a source that shrinks before the copy is reported, not passed off as complete", () => {
    const data = randomBytes(2 * 1024 * 1024);
    const p = pair(data);
    const m = new DataMover({ chunk: 1 << 20, splice: true, abort });
    // Stat'ed at 3 MiB, holds 2 MiB: EOF comes early.
    const r = m.copyFile(p.src, p.dst, 3 * 1024 * 1024, 6144, "copy_file_range", 1, 1, true);
    expect(r.err).toBe(0);
    expect(r.changed).toBe(2);
    expect(r.bytes).toBe(data.length);
    closeSync(p.src);
    closeSync(p.dst);
    m.close();
  });

  test("a sparse file: only its data segments are written, the holes stay holes", () => {
    const size = 64 * 1024 * 1024;
    const p = pair(null, size);
    const w = openSync(p.srcPath, "r+");
    const piece = randomBytes(64 * 1024);
    writeSync(w, piece, 0, piece.length, 0);
    writeSync(w, piece, 0, piece.length, 40 * 1024 * 1024);
    closeSync(w);
    const blocks = Number(fstatSync(p.src).blocks);
    const m = new DataMover({ chunk: 1 << 20, splice: true, abort });
    const r = m.copyFile(p.src, p.dst, size, blocks, "copy_file_range", 1, 1);
    expect(r.err).toBe(0);
    expect(r.changed).toBe(0);
    const st = fstatSync(p.dst);
    expect(st.size).toBe(size);
    expect(st.blocks * 512).toBeLessThanOrEqual(blocks * 512 + 64 * 1024);
    closeSync(p.src);
    closeSync(p.dst);
    const got = readFileSync(p.dstPath);
    expect(got.subarray(0, piece.length).equals(piece)).toBe(true);
    expect(got.subarray(40 * 1024 * 1024, 40 * 1024 * 1024 + piece.length).equals(piece)).toBe(true);
    expect(got.subarray(1 << 20, 2 << 20).every((b) => b === 0)).toBe(true);
    m.close();
  });

  test("an all-hole file is copied as a hole of the right size", () => {
    const p = pair(null, 16 << 20);
    const m = new DataMover({ chunk: 1 << 20, splice: true, abort });
    const r = m.copyFile(p.src, p.dst, 16 << 20, 0, "copy_file_range", 1, 1);
    expect(r.err).toBe(0);
    const st = fstatSync(p.dst);
    expect(st.size).toBe(16 << 20);
    expect(st.blocks).toBe(0);
    closeSync(p.src);
    closeSync(p.dst);
    m.close();
  });

  test("a source with more data than its stat said is reported as grown", () => {
    const data = randomBytes(2 << 20);
    const p = pair(data);
    const m = new DataMover({ chunk: 1 << 20, splice: true, abort });
    const r = m.copyFile(p.src, p.dst, data.length - 1000, 4096, "copy_file_range", 1, 1);
    expect(r.err).toBe(0);
    expect(r.changed).toBe(1);
    closeSync(p.src);
    closeSync(p.dst);
    m.close();
  });

  test("a source with less data than its stat said is reported as shrunk, not waited on", () => {
    const data = randomBytes(1 << 20);
    for (const path of ["copy_file_range", "read_write"] as const) {
      const p = pair(data);
      const m = new DataMover({ chunk: 64 * 1024, splice: true, abort });
      const r = m.copyFile(p.src, p.dst, data.length + 5000, 4096, path, 1, 1);
      expect(r.err).toBe(0);
      expect(r.changed).toBe(2);
      expect(r.seen).toBe(data.length);
      closeSync(p.src);
      closeSync(p.dst);
      m.close();
    }
  });

  test("the abort flag stops a copy between chunks with ECANCELED", () => {
    const data = randomBytes(1 << 20);
    const p = pair(data);
    const stop = new Int32Array([1]);
    const m = new DataMover({ chunk: 64 * 1024, splice: true, abort: stop });
    const r = m.copyFile(p.src, p.dst, data.length, 4096, "read_write", 1, 1);
    expect(r.err).toBe(-125);
    closeSync(p.src);
    closeSync(p.dst);
    m.close();
  });

  test("stream reads a /proc file to EOF whatever its size says", () => {
    const src = openSync("/proc/self/maps", "r");
    const dstPath = join(d, "maps");
    const dst = openSync(dstPath, "w+");
    const m = new DataMover({ chunk: 4096, splice: true, abort });
    const r = m.stream(src, dst, 0);
    expect(r.err).toBe(0);
    expect(r.bytes).toBeGreaterThan(4096);
    expect(fstatSync(dst).size).toBe(r.bytes);
    closeSync(src);
    closeSync(dst);
    expect(readFileSync(dstPath, "utf8")).toMatch(/^[0-9a-f]+-[0-9a-f]+ /);
    m.close();
  });
});
