// tests/net/scan.test.ts — the sender's walk (src/net/scan.ts) with deferred opens: files
// come back unopened, a skipped file never costs an open, directory fds live exactly as
// long as a deferred file in them may still be opened, and a name that was replaced
// after the walk saw it is refused instead of sending another file's bytes.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { E } from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";
import { Scanner, type ScanItem } from "../../src/net/scan.ts";

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function tree(): string {
  const d = mkdtempSync(join(tmpdir(), "usync-scan-"));
  dirs.push(d);
  mkdirSync(join(d, "a/b"), { recursive: true });
  writeFileSync(join(d, "top.txt"), "top");
  writeFileSync(join(d, "a/one.txt"), "one");
  writeFileSync(join(d, "a/b/two.txt"), "two");
  return d;
}

/** fds of this process that point into `root`. */
function fdsUnder(root: string): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(root)) n++;
    } catch {
      // Closed while listing.
    }
  }
  return n;
}

function walk(s: Scanner): ScanItem[] {
  const out: ScanItem[] = [];
  for (let it = s.next(); it !== null; it = s.next()) out.push(it);
  return out;
}

function read(fd: number): string {
  const buf = new Uint8Array(64);
  const n = libc.read(fd, buf, buf.length);
  return new TextDecoder().decode(buf.subarray(0, Number(n)));
}

describe("Scanner with deferred opens", () => {
  test("files come back unopened; openFile opens the file the walk saw", () => {
    const root = tree();
    const s = new Scanner(root, undefined, true);
    const files = walk(s).filter((i) => i.kind === "file");
    expect(files.map((f) => f.rel).sort()).toEqual(["a/b/two.txt", "a/one.txt", "top.txt"]);
    for (const f of files) {
      expect(f.fd).toBe(-1);
      expect(f.at).toBeDefined();
    }
    // Every directory is still open: each holds a file that may yet be opened.
    expect(fdsUnder(root)).toBe(3);
    for (const f of files) {
      const fd = s.openFile(f.at!);
      expect(fd).toBeGreaterThanOrEqual(0);
      expect(read(fd)).toBe(readFileSync(join(root, f.rel), "utf8"));
      libc.close(fd);
    }
    // The walk is over and nothing holds a directory: all closed.
    expect(fdsUnder(root)).toBe(0);
  });

  test("released (skipped) files open nothing, and their directories close", () => {
    const root = tree();
    const s = new Scanner(root, undefined, true);
    const items = walk(s);
    for (const i of items) s.discard(i);
    expect(fdsUnder(root)).toBe(0);
    // A second release of the same file must not close some other fd.
    const again = items.find((i) => i.kind === "file")!;
    s.discard(again);
    expect(fdsUnder(root)).toBe(0);
  });

  test("without deferOpen, files come back open (the --checksum walk)", () => {
    const root = tree();
    const s = new Scanner(root, undefined, false);
    const files = walk(s).filter((i) => i.kind === "file");
    for (const f of files) {
      expect(f.fd).toBeGreaterThanOrEqual(0);
      expect(f.at).toBeUndefined();
      libc.close(f.fd);
    }
    expect(fdsUnder(root)).toBe(0);
  });

  test("a name replaced by another file after the walk is refused (ESTALE), a symlink is not followed (ELOOP)", () => {
    const root = tree();
    const s = new Scanner(root, undefined, true);
    const files = walk(s).filter((i) => i.kind === "file");
    const top = files.find((f) => f.rel === "top.txt")!;
    const one = files.find((f) => f.rel === "a/one.txt")!;
    const two = files.find((f) => f.rel === "a/b/two.txt")!;
    writeFileSync(join(root, "other"), "another file entirely");
    renameSync(join(root, "other"), join(root, "top.txt"));
    expect(s.openFile(top.at!)).toBe(-E.ESTALE);
    unlinkSync(join(root, "a/one.txt"));
    symlinkSync("/etc/passwd", join(root, "a/one.txt"));
    expect(s.openFile(one.at!)).toBe(-E.ELOOP);
    unlinkSync(join(root, "a/b/two.txt"));
    expect(s.openFile(two.at!)).toBe(-E.ENOENT);
    expect(fdsUnder(root)).toBe(0);
  });

  test("close() after an aborted walk closes every directory once", () => {
    const root = tree();
    const s = new Scanner(root, undefined, true);
    const first = [s.next(), s.next(), s.next()].filter((i): i is ScanItem => i !== null);
    s.close();
    expect(fdsUnder(root)).toBe(0);
    for (const i of first) s.discard(i);
    expect(fdsUnder(root)).toBe(0);
  });
});

describe("names like a receiver's partial", () => {
  test("come first in their directory (`.X.usync-partial`, X not empty; not `..usync-partial`, `.usync-partial` or `X.usync-partial`)", () => {
    const d = mkdtempSync(join(tmpdir(), "usync-scan-"));
    dirs.push(d);
    mkdirSync(join(d, "sub"));
    // Created last: by inode they would come last.
    const names = ["big", "a.txt", "sub/big", ".usync-partial", "big.usync-partial", "..usync-partial", ".big.usync-partial", "..a.txt.usync-partial", "sub/.big.usync-partial"];
    for (const n of names) writeFileSync(join(d, n), n);
    const s = new Scanner(d, undefined, true);
    const order = walk(s).map((i) => i.rel);
    s.close();
    const top = order.filter((r) => !r.startsWith("sub"));
    expect(top.slice(0, 2).sort()).toEqual(["..a.txt.usync-partial", ".big.usync-partial"].sort());
    const sub = order.filter((r) => r.startsWith("sub/"));
    expect(sub[0]).toBe("sub/.big.usync-partial");
    expect(order.length).toBe(names.length + 1);
  });
});
