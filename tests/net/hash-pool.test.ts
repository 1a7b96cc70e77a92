/**
 * The hash pool (src/net/hash-pool.ts): digests from worker threads equal node:crypto's
 * over the same bytes, for whole files and prefixes, several at once; a read error comes
 * back as -errno; the fd handed over is closed by the pool; the loop stays free meanwhile.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errno, libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/structs.ts";
import { HashPool, type HashResult } from "../../src/net/hash-pool.ts";
import { Loop } from "../../src/net/loop.ts";
import { openRing } from "../../src/uring/backend.ts";

const dir = mkdtempSync(join(tmpdir(), "usync-hashpool-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function open(path: string): number {
  const fd = libc.open(Buffer.from(`${path}\0`), O.RDONLY | O.CLOEXEC, 0);
  if (fd < 0) throw new Error(`open ${path}: errno ${errno()}`);
  return fd;
}

function fdIsOpen(fd: number): boolean {
  return libc.fcntl(fd, 1 /* F_GETFD */, 0) >= 0;
}

describe("HashPool", () => {
  test("whole files and prefixes, more jobs than threads, digests equal node:crypto's; fds closed", async () => {
    const ring = openRing({ entries: 64 });
    const loop = new Loop(ring, 20);
    const pool = new HashPool(ring, 2);
    const files = [0, 1, 4096, 3 * 1024 * 1024 + 17, 9 * 1024 * 1024].map((size, i) => {
      const data = new Uint8Array(size);
      for (let j = 0; j < size; j += 4093) data[j] = (i * 31 + j) & 255;
      const path = join(dir, `f${i}`);
      writeFileSync(path, data);
      return { path, data };
    });
    const jobs = files.flatMap(({ path, data }) => [data.length, Math.floor(data.length / 3)].map((length) => ({ path, data, length })));
    const results: (HashResult | undefined)[] = jobs.map(() => undefined);
    const fds: number[] = [];
    let turns = 0;
    jobs.forEach((j, i) => {
      const fd = open(j.path);
      fds.push(fd);
      pool.submit(fd, j.length, (r) => {
        expect(results[i]).toBeUndefined();
        results[i] = r;
      });
    });
    expect(pool.busy).toBe(true);
    await loop.run(() => {
      turns++;
      return !pool.busy;
    });
    jobs.forEach((j, i) => {
      const want = createHash("sha256").update(j.data.subarray(0, j.length)).digest();
      expect(Buffer.from(results[i] as Uint8Array).equals(want)).toBe(true);
    });
    // Each fd handed over was closed by its worker (give the last close a moment).
    await Bun.sleep(50);
    for (const fd of fds) expect(fdIsOpen(fd)).toBe(false);
    expect(turns).toBeGreaterThan(1);
    pool.close();
    ring.close();
  });

  test("a length beyond the file's end hashes what is there; a read error is -errno", async () => {
    const ring = openRing({ entries: 64 });
    const loop = new Loop(ring, 20);
    const pool = new HashPool(ring, 1);
    const path = join(dir, "short");
    writeFileSync(path, "hello");
    let short: HashResult | undefined;
    let bad: HashResult | undefined;
    pool.submit(open(path), 1000, (r) => (short = r));
    // A directory: read() fails with EISDIR.
    pool.submit(open(dir), 10, (r) => (bad = r));
    await loop.run(() => !pool.busy);
    expect(Buffer.from(short as Uint8Array).equals(createHash("sha256").update("hello").digest())).toBe(true);
    expect(bad).toBe(-21);
    pool.close();
    ring.close();
  });
});
