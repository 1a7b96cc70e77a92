// Unit tests for src/copy/plan.ts: incremental decisions and content hashing.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { S } from "../../ffi/structs.ts";
import { decideFile, FIX_MODE, FIX_OWNER, metaFixes, sha256Fd, type Facts, type PlanOptions } from "../../src/copy/plan.ts";

const file = (over: Partial<Facts> = {}): Facts => ({
  type: S.IFREG, size: 100, mtimeSec: 1_000_000, mtimeNsec: 123_456_789, perm: 0o644, uid: 0, gid: 0, ...over,
});
const plain: PlanOptions = { checksum: false, ignoreTimes: false, delete: false };

describe("decideFile", () => {
  test("nothing in DST: copy", () => {
    expect(decideFile(file(), null, plain)).toBe("copy");
  });

  test("same size and mtime to the nanosecond: skip", () => {
    expect(decideFile(file(), file(), plain)).toBe("skip");
  });

  test("a nanosecond of difference, either way, is a change", () => {
    expect(decideFile(file(), file({ mtimeNsec: 123_456_788 }), plain)).toBe("update");
    expect(decideFile(file(), file({ mtimeNsec: 123_456_790 }), plain)).toBe("update");
    expect(decideFile(file(), file({ mtimeSec: 1_000_001 }), plain)).toBe("update");
  });

  test("a newer DST file is still replaced (mirror, not 'update only')", () => {
    expect(decideFile(file({ mtimeSec: 10 }), file({ mtimeSec: 20 }), plain)).toBe("update");
  });

  test("size differs: update", () => {
    expect(decideFile(file(), file({ size: 101 }), plain)).toBe("update");
  });

  test("mode or owner differences alone do not rewrite data", () => {
    expect(decideFile(file(), file({ perm: 0o600, uid: 5 }), plain)).toBe("skip");
  });

  test("--ignore-times copies even identical files", () => {
    expect(decideFile(file(), file(), { ...plain, ignoreTimes: true })).toBe("update");
  });

  test("--checksum: other size is an update without hashing; same size asks to compare", () => {
    const o = { ...plain, checksum: true };
    expect(decideFile(file(), file({ size: 7 }), o)).toBe("update");
    expect(decideFile(file(), file({ mtimeSec: 5 }), o)).toBe("compare");
  });

  test("a directory in DST: replaced only with --delete, else a conflict", () => {
    expect(decideFile(file(), file({ type: S.IFDIR }), plain)).toBe("conflict");
    expect(decideFile(file(), file({ type: S.IFDIR }), { ...plain, delete: true })).toBe("replace-dir");
  });

  test("a symlink or special file in DST is replaced (renamed over, never written through)", () => {
    expect(decideFile(file(), file({ type: S.IFLNK, size: 100 }), plain)).toBe("update");
    expect(decideFile(file(), file({ type: S.IFIFO }), plain)).toBe("update");
  });
});

describe("metaFixes", () => {
  test("mode and owner differences are reported separately; owner only when owners are kept", () => {
    expect(metaFixes(file(), file(), true)).toBe(0);
    expect(metaFixes(file({ perm: 0o600 }), file(), true)).toBe(FIX_MODE);
    expect(metaFixes(file({ uid: 7 }), file(), true)).toBe(FIX_OWNER);
    expect(metaFixes(file({ uid: 7 }), file(), false)).toBe(0);
    expect(metaFixes(file({ gid: 9, perm: 0o4755 }), file(), true)).toBe(FIX_MODE | FIX_OWNER);
  });
});

describe("sha256Fd", () => {
  test("hashes exactly the first `size` bytes, through a buffer smaller than the file", () => {
    const d = mkdtempSync("/tmp/uring-sync-plan-");
    try {
      const data = Buffer.alloc(100_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
      writeFileSync(join(d, "f"), data);
      const fd = openSync(join(d, "f"), "r");
      try {
        const buf = new Uint8Array(4096);
        expect(sha256Fd(fd, data.length, buf)).toBe(createHash("sha256").update(data).digest("hex"));
        expect(sha256Fd(fd, 5000, buf)).toBe(createHash("sha256").update(data.subarray(0, 5000)).digest("hex"));
        expect(sha256Fd(fd, 0, buf)).toBe(createHash("sha256").digest("hex"));
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test("a bad descriptor is reported as -errno", () => {
    expect(sha256Fd(-1, 10, new Uint8Array(16))).toBe(-9);
  });
});
