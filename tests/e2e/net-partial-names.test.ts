// tests/e2e/net-partial-names.test.ts — a source file whose name looks like one of the
// receiver's partials (`.NAME.usync-partial`, docs/PROTOCOL.md 8.7) is an ordinary file:
// with `big` (>= 1 MiB, received under that partial name) beside it, both land
// byte-identical (content, mode, mtime) whatever order the entries come in (the tests
// make each order likely by creating the files in both orders: the sender walks by
// inode), with -j 4, with --delete, when the literal file is itself >= 1 MiB and exactly
// a prefix of big (same mtime: it would pass as a resumable partial), and when DST holds
// a kept partial of big from a killed sender. A re-run moves no data and changes nothing.
// Black box: the real CLI over loopback.

import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { parseJson } from "../helpers/cli.ts";
import { expectBothExit, formatBoth, killSenderAt, netWorkDir, partialSize, runSender, startReceiver, transfer } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeRandom } from "../helpers/tree.ts";

const { fresh } = netWorkDir("net-partial");
const LITERAL = ".big.usync-partial";

/** One session, --json on both ends; both must exit 0. */
async function sync(src: string, dst: string, sendArgs: string[] = [], recvArgs: string[] = []) {
  const t = await transfer({ src, dst, sendArgs: [...sendArgs, "--json"], recvArgs: ["--crypto", "user", "--json", ...recvArgs], timeoutMs: 120_000 });
  expectBothExit(t, 0, 0);
  return { json: parseJson(t.send), t };
}

interface Shape {
  bigSize: number;
  /** The literal file's bytes: a Buffer, or "prefix:N" (big's first N bytes). */
  literal: Buffer | `prefix:${number}`;
  literalFirst: boolean;
  /** Both files get the same mtime (a literal prefix then passes as an exact partial). */
  sameMtime?: boolean;
}

/** A source directory (in `sub/` too) with `big` and `.big.usync-partial`, created in the order asked. */
function source(tag: string, s: Shape): string {
  const src = fresh(tag);
  for (const dir of [src, join(src, "sub")]) {
    mkdirSync(dir, { recursive: true });
    const lit = join(dir, LITERAL);
    const big = join(dir, "big");
    const data = randomBytes(s.bigSize);
    const literal = typeof s.literal === "string" ? data.subarray(0, Number(s.literal.slice(7))) : s.literal;
    const files: [string, Buffer, number][] = [[big, data, 0o751], [lit, literal, 0o640]];
    if (s.literalFirst) files.reverse();
    for (const [path, bytes, mode] of files) {
      writeFileSync(path, bytes);
      chmodSync(path, mode);
    }
    utimesSync(big, 1_700_000_000, 1_700_000_000);
    const t = s.sameMtime ? 1_700_000_000 : 1_650_000_000;
    utimesSync(lit, t, t);
  }
  return src;
}

const ORDERS = [true, false];

describe("a source file named like a partial", () => {
  for (const literalFirst of ORDERS) {
    const order = literalFirst ? "the literal file created first" : "big created first";
    test(`small literal file beside a 3 MiB big (${order}): both land, a re-run sends nothing`, async () => {
      const src = source("small", { bigSize: 3 * MiB, literal: Buffer.from("I am an ordinary file\n"), literalFirst });
      const dst = fresh("dst-small");
      const before = snapshotTree(src);
      const first = await sync(src, dst);
      expectNetCopy(before, dst, "first run", formatBoth(first.t));
      expect(first.json.filesSent).toBe(4);
      const again = await sync(src, dst, ["--delete"]);
      expectNetCopy(before, dst, "re-run", formatBoth(again.t));
      expect(again.json.bytesSent).toBe(0);
      expect(again.json.filesSent).toBe(0);
      expect(again.json.filesUnchanged).toBe(4);
    }, 120_000);

    test(`a 2 MiB literal file that is exactly big's prefix, same mtime (${order}): never resumed from or consumed`, async () => {
      const src = source("prefix", { bigSize: 3 * MiB, literal: "prefix:2097152", literalFirst, sameMtime: true });
      const dst = fresh("dst-prefix");
      const before = snapshotTree(src);
      const first = await sync(src, dst);
      expectNetCopy(before, dst, "first run", formatBoth(first.t));
      expect(first.json.filesResumed).toBe(0);
      const again = await sync(src, dst);
      expectNetCopy(before, dst, "re-run", formatBoth(again.t));
      expect(again.json.bytesSent).toBe(0);
      expect(again.json.filesUnchanged).toBe(4);
    }, 120_000);

    test(`-j 4 with a 24 MiB big split across streams and --delete (${order})`, async () => {
      const src = source("j4", { bigSize: 24 * MiB, literal: Buffer.alloc(1536 * 1024, 7), literalFirst });
      const dst = fresh("dst-j4");
      const before = snapshotTree(src);
      const first = await sync(src, dst, ["-j", "4", "--delete"]);
      expectNetCopy(before, dst, "first run", formatBoth(first.t));
      const again = await sync(src, dst, ["-j", "4", "--delete"]);
      expectNetCopy(before, dst, "re-run", formatBoth(again.t));
      expect(again.json.bytesSent).toBe(0);
    }, 120_000);
  }

  test("an earlier run landed the literal file (a prefix of big, same mtime); big added later is not resumed from it", async () => {
    const src = source("later", { bigSize: 3 * MiB, literal: "prefix:2097152", literalFirst: true, sameMtime: true });
    const bigData = readFileSync(join(src, "big"));
    const subBig = readFileSync(join(src, "sub/big"));
    rmSync(join(src, "big"));
    rmSync(join(src, "sub/big"));
    const dst = fresh("dst-later");
    await sync(src, dst);
    writeFileSync(join(src, "big"), bigData);
    writeFileSync(join(src, "sub/big"), subBig);
    for (const b of ["big", "sub/big"]) {
      chmodSync(join(src, b), 0o751);
      utimesSync(join(src, b), 1_700_000_000, 1_700_000_000);
    }
    const before = snapshotTree(src);
    const second = await sync(src, dst);
    expectNetCopy(before, dst, "second run", formatBoth(second.t));
    expect(second.json.filesResumed).toBe(0);
    expect(second.json.filesSent).toBe(2);
    expect(second.json.filesUnchanged).toBe(2);
  }, 120_000);

  for (const jobs of [1, 4]) {
    test(`DST holds a kept partial of big from a killed sender, the source now also has the literal file (-j ${jobs})`, async () => {
      const src = fresh("resume-src");
      mkdirSync(src);
      writeRandom(join(src, "big"), 160 * MiB);
      const dst = fresh("resume-dst");
      const rcv = await startReceiver({ dst, args: ["--crypto", "user", "--keep-listening", "--json"] });
      try {
        await killSenderAt(rcv, src, dst, "big", 24 * MiB, jobs);
        expect(partialSize(dst, "big")).toBeGreaterThanOrEqual(MiB);
        writeFileSync(join(src, LITERAL), "the literal file, added after the drop\n");
        const before = snapshotTree(src);
        const done = await runSender(src, rcv.address, { args: ["-j", String(jobs), "--json", "--delete"], timeoutMs: 120_000 });
        expect(done.code, done.stderr).toBe(0);
        expectNetCopy(before, dst, "after the re-run", done.stderr);
        const again = await runSender(src, rcv.address, { args: ["-j", String(jobs), "--json"], timeoutMs: 120_000 });
        expect(again.code, again.stderr).toBe(0);
        expect(parseJson(again).bytesSent).toBe(0);
        expectNetCopy(before, dst, "after a second re-run", again.stderr);
      } finally {
        await rcv.stop("SIGTERM").catch(() => undefined);
      }
      expect(existsSync(join(dst, "big"))).toBe(true);
    }, 240_000);
  }
});
