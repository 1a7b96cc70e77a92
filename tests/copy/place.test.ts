// Unit tests for src/copy/place.ts: temp names and atomic placement on a real directory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/structs.ts";
import { Placer, PlaceKind, runToken, TempNames, TEMP_MARK } from "../../src/copy/place.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const nameOf = (t: TempNames): Uint8Array => t.buf.subarray(0, t.len);

describe("TempNames", () => {
  test("shape: .<name>.usync-<token><counter>, NUL-terminated, each one new", () => {
    const t = new TempNames("cafe0123");
    const a = t.next(enc.encode("report.pdf"));
    expect(a[a.length - 1]).toBe(0);
    expect(dec.decode(a.subarray(0, a.length - 1))).toBe(`.report.pdf${TEMP_MARK}cafe01230`);
    const b = dec.decode(t.next(enc.encode("report.pdf")).subarray(0, -1));
    expect(b).toBe(`.report.pdf${TEMP_MARK}cafe01231`);
  });

  test("a 255-byte name gives a temp name within NAME_MAX that still says whose it is", () => {
    const t = new TempNames("cafe0123");
    for (const name of ["n".repeat(255), "漢".repeat(85), "x".repeat(250)]) {
      t.next(enc.encode(name));
      expect(t.len).toBeLessThanOrEqual(255);
      expect(t.isOurs(nameOf(t))).toBe(true);
      // Never cut inside a UTF-8 sequence: the kept part decodes without replacement characters.
      expect(dec.decode(nameOf(t))).not.toContain("\uFFFD");
    }
  });

  test("isOurs recognises this run's temp names only", () => {
    const t = new TempNames("cafe0123");
    t.next(enc.encode("a"));
    expect(t.isOurs(nameOf(t).slice())).toBe(true);
    expect(t.isOurs(enc.encode(`.a${TEMP_MARK}deadbeef0`))).toBe(false);
    expect(t.isOurs(enc.encode("cafe0123"))).toBe(false);
    expect(t.isOurs(enc.encode("plain.txt"))).toBe(false);
  });

  test("runToken: 8 hex digits, different per run", () => {
    const a = runToken();
    expect(a).toMatch(/^[0-9a-f]{8}$/);
    const many = new Set(Array.from({ length: 20 }, () => runToken()));
    expect(many.size).toBeGreaterThan(15);
  });
});

describe("Placer", () => {
  let d = "";
  let dirfd = -1;
  beforeAll(() => {
    d = mkdtempSync("/tmp/uring-sync-place-");
    dirfd = libc.open(enc.encode(`${d}\0`), O.RDONLY | O.DIRECTORY, 0);
  });
  afterAll(() => {
    libc.close(dirfd);
    rmSync(d, { recursive: true, force: true });
  });

  const write = (fd: number, s: string): void => {
    const b = enc.encode(s);
    expect(libc.write(fd, b, b.length)).toBe(b.length);
  };
  const z = (s: string): Uint8Array => enc.encode(`${s}\0`);

  test("a new small file: invisible (O_TMPFILE) until committed, then complete under its name", () => {
    const p = new Placer("aaaa0001", true);
    const fd = p.create(dirfd, z("new.txt"), 0o640, false, true);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(p.kind).toBe(PlaceKind.Tmpfile);
    write(fd, "hello");
    expect(readdirSync(d)).toEqual([]);
    expect(p.commit(fd, z("new.txt"))).toBe(0);
    libc.close(fd);
    expect(readFileSync(join(d, "new.txt"), "utf8")).toBe("hello");
    expect(readdirSync(d)).toEqual(["new.txt"]);
  });

  test("a big file gets a visible temp name next to its final name, renamed when committed", () => {
    const p = new Placer("aaaa0002", true);
    const fd = p.create(dirfd, z("big.bin"), 0o600, false, false);
    expect(p.kind).toBe(PlaceKind.Named);
    write(fd, "data");
    const during = readdirSync(d).filter((n) => n.includes("big.bin"));
    expect(during.length).toBe(1);
    expect(during[0]).toStartWith(".big.bin.usync-aaaa0002");
    expect(p.commit(fd, z("big.bin"))).toBe(0);
    libc.close(fd);
    expect(readdirSync(d).filter((n) => n.includes("big.bin"))).toEqual(["big.bin"]);
    expect(readFileSync(join(d, "big.bin"), "utf8")).toBe("data");
  });

  test("an update replaces the old file atomically (new inode; the old one untouched)", () => {
    writeFileSync(join(d, "upd.txt"), "old");
    const oldFd = openSync(join(d, "upd.txt"), "r");
    const oldIno = lstatSync(join(d, "upd.txt")).ino;
    const p = new Placer("aaaa0003", true);
    const fd = p.create(dirfd, z("upd.txt"), 0o644, true, true);
    expect(p.kind).toBe(PlaceKind.Named);
    write(fd, "new content");
    expect(readFileSync(join(d, "upd.txt"), "utf8")).toBe("old");
    expect(p.commit(fd, z("upd.txt"))).toBe(0);
    libc.close(fd);
    expect(readFileSync(join(d, "upd.txt"), "utf8")).toBe("new content");
    expect(lstatSync(join(d, "upd.txt")).ino).not.toBe(oldIno);
    const buf = Buffer.alloc(10);
    expect(buf.subarray(0, require("node:fs").readSync(oldFd, buf, 0, 10, 0)).toString()).toBe("old");
    closeSync(oldFd);
  });

  test("abandoning leaves nothing behind, either way", () => {
    const before = readdirSync(d).sort();
    for (const tmpfile of [true, false]) {
      const p = new Placer("aaaa0004", true);
      const fd = p.create(dirfd, z("gone.txt"), 0o644, false, tmpfile);
      write(fd, "partial");
      libc.close(fd);
      p.abandon();
    }
    expect(readdirSync(d).sort()).toEqual(before);
  });

  test("a name that appeared meanwhile is replaced, not an error (tmpfile commit over EEXIST)", () => {
    const p = new Placer("aaaa0005", true);
    const fd = p.create(dirfd, z("race.txt"), 0o644, false, true);
    write(fd, "mine");
    writeFileSync(join(d, "race.txt"), "theirs");
    expect(p.commit(fd, z("race.txt"))).toBe(0);
    libc.close(fd);
    expect(readFileSync(join(d, "race.txt"), "utf8")).toBe("mine");
    expect(readdirSync(d).filter((n) => n.includes(TEMP_MARK))).toEqual([]);
  });

  test("without O_TMPFILE (disabled) new files use named temps too", () => {
    const p = new Placer("aaaa0006", false);
    const fd = p.create(dirfd, z("named.txt"), 0o644, false, true);
    expect(p.kind).toBe(PlaceKind.Named);
    expect(p.commit(fd, z("named.txt"))).toBe(0);
    libc.close(fd);
    expect(lstatSync(join(d, "named.txt")).isFile()).toBe(true);
  });
});
