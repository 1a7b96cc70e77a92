/**
 * The receiver's answer for one file ENTRY (src/net/agree.ts) when a hash decides it:
 * agreeFileSteps hands a large hash to the caller (a HashStep with an fd of the file
 * and the length to hash) and gives the same answers from the digest as the inline
 * agreeFile does: --checksum equal -> SKIP (mtime to fix), different or unreadable ->
 * WANT from 0; a resumable partial -> WANT from its trusted end with the prefix hash;
 * a directory in the way keeps saying so after the hash.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/structs.ts";
import { agreeFile, agreeFileSteps, RESUME_MIN, type Answer, type HashStep } from "../../src/net/agree.ts";
import { StatBuf } from "../../src/copy/sys.ts";

const root = mkdtempSync(join(tmpdir(), "usync-agree-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dirfd = libc.open(Buffer.from(`${root}\0`), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
const buf = new Uint8Array(1 << 20);
const sha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash("sha256").update(b).digest());
const MTIME_S = 1_600_000_000;
const mtimeNs = BigInt(MTIME_S) * 1_000_000_000n;
const opts = { checksum: true, ignoreTimes: false, dryRun: false };

/** Runs a HashStep the way the receiver does, hashing its fd here (and closing it). */
function finish(a: Answer | HashStep): Answer {
  while (a.kind === "hash") {
    const data = Buffer.alloc(a.length);
    const n = libc.pread(a.fd, data, a.length, 0);
    libc.close(a.fd);
    a = a.then(n === a.length ? sha(data) : undefined);
  }
  return a;
}

describe("agreeFileSteps", () => {
  const content = Buffer.alloc(300_000, 7);

  test("--checksum: a large equal file is a HashStep; equal digest -> SKIP with the mtime to fix, other -> WANT 0", () => {
    writeFileSync(join(root, "same"), content);
    utimesSync(join(root, "same"), MTIME_S - 100, MTIME_S - 100);
    const f = { size: content.length, mode: 0o644, mtimeNs, hash: sha(content) };
    const step = agreeFileSteps(dirfd, "same", f, opts, new StatBuf(), { buf, inlineMax: 1024 });
    expect(step.kind).toBe("hash");
    const s = step as HashStep;
    expect(s.length).toBe(content.length);
    expect(finish(step)).toEqual({ kind: "skip", modeDiffers: false, mtimeDiffers: true });
    const other = agreeFileSteps(dirfd, "same", { ...f, hash: sha(Buffer.from("else")) }, opts, new StatBuf(), { buf, inlineMax: 1024 });
    expect(finish(other)).toEqual({ kind: "want", offset: 0 });
    // Unreadable (the caller's hash failed): WANT from 0.
    const failed = agreeFileSteps(dirfd, "same", f, opts, new StatBuf(), { buf, inlineMax: 1024 }) as HashStep;
    libc.close(failed.fd);
    expect(failed.then(undefined)).toEqual({ kind: "want", offset: 0 });
    // Inline (no step) gives the same answers.
    expect(agreeFile(dirfd, "same", f, opts, new StatBuf(), buf)).toEqual({ kind: "skip", modeDiffers: false, mtimeDiffers: true });
    expect(agreeFileSteps(dirfd, "same", f, opts, new StatBuf(), { buf, inlineMax: Infinity }).kind).toBe("skip");
  });

  test("resume: a partial with the source's mtime -> WANT from its end with the prefix hash, after a HashStep", () => {
    const size = 3 * RESUME_MIN;
    const prefix = Buffer.alloc(2 * RESUME_MIN, 9);
    writeFileSync(join(root, ".big.usync-partial"), prefix);
    utimesSync(join(root, ".big.usync-partial"), MTIME_S, MTIME_S);
    const f = { size, mode: 0o644, mtimeNs };
    const o = { ...opts, checksum: false };
    const step = agreeFileSteps(dirfd, "big", f, o, new StatBuf(), { buf, inlineMax: 1024 });
    expect(step.kind).toBe("hash");
    expect((step as HashStep).length).toBe(prefix.length);
    expect(finish(step)).toEqual({ kind: "want", offset: prefix.length, prefixHash: sha(prefix) });
    expect(agreeFile(dirfd, "big", f, o, new StatBuf(), buf)).toEqual({ kind: "want", offset: prefix.length, prefixHash: sha(prefix) });
    // Not ours to resume from (resume = false): WANT from 0 and nothing to hash.
    expect(agreeFileSteps(dirfd, "big", f, o, new StatBuf(), { buf, inlineMax: 1024 }, false)).toEqual({ kind: "want", offset: 0 });
  });

  test("a directory in the way: still flagged after the partial's hash", () => {
    const size = 3 * RESUME_MIN;
    mkdirSync(join(root, "dirfile"));
    const prefix = Buffer.alloc(RESUME_MIN, 1);
    writeFileSync(join(root, ".dirfile.usync-partial"), prefix);
    utimesSync(join(root, ".dirfile.usync-partial"), MTIME_S, MTIME_S);
    const f = { size, mode: 0o644, mtimeNs };
    const step = agreeFileSteps(dirfd, "dirfile", f, { ...opts, checksum: false }, new StatBuf(), { buf, inlineMax: 1024 });
    expect(step.kind).toBe("hash");
    expect(finish(step)).toEqual({ kind: "want", offset: prefix.length, prefixHash: sha(prefix), dirInTheWay: true });
  });
});
