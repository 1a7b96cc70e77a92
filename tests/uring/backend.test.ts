// tests/uring/backend.test.ts — which backend openBackend() picks, and why: liburing when
// it loads; raw syscalls with URING_SYNC_NO_LIBURING=1; the emulation when asked
// (URING_SYNC_BACKEND=sync) or when io_uring_setup is refused. "Refused" is real here: the
// child runs under a seccomp filter (tests/helpers/deny-uring.ts, a tiny loader compiled from
// C) that makes io_uring_setup fail with EPERM or ENOSYS for that process only.

import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { liburing } from "../../ffi/liburing.ts";
import { SETUP } from "../../ffi/structs.ts";
import { openBackend } from "../../src/uring/backend.ts";
import { denyUringLoader as loader } from "../helpers/deny-uring.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** What a child process reports about the backend it got. */
interface Picked {
  kind?: string;
  detail?: string;
  nop?: number;
  error?: string;
}

const CHILD = `
import { openBackend } from ${JSON.stringify(join(ROOT, "src/uring/backend.ts"))};
import { Ring } from ${JSON.stringify(join(ROOT, "src/uring/ring.ts"))};
import { runOne } from ${JSON.stringify(join(ROOT, "src/uring/ops.ts"))};
import { prepNop } from ${JSON.stringify(join(ROOT, "src/uring/prep.ts"))};
try {
  const ring = new Ring(openBackend(process.env.CHILD_FORCE ? { backend: process.env.CHILD_FORCE } : {}));
  const nop = runOne(ring, (s) => prepNop(ring, s));
  console.log(JSON.stringify({ kind: ring.kind, detail: ring.backend.detail, nop }));
  ring.close();
} catch (e) {
  console.log(JSON.stringify({ error: String(e && e.message || e) }));
}
`;

function child(env: Record<string, string>, wrapper: string[] = []): Picked {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("URING_SYNC_")) clean[k] = v;
  }
  const r = Bun.spawnSync([...wrapper, process.execPath, "-e", CHILD], {
    env: { ...clean, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = r.stdout.toString().trim().split("\n").pop() ?? "";
  if (r.exitCode !== 0 || !out.startsWith("{")) {
    throw new Error(`child failed (exit ${r.exitCode}): ${out}\n${r.stderr.toString()}`);
  }
  return JSON.parse(out) as Picked;
}

describe("backend selection", () => {
  test("in this process: liburing, when it loads", () => {
    expect(liburing).not.toBeNull();
    const saved = process.env.URING_SYNC_BACKEND;
    delete process.env.URING_SYNC_BACKEND;
    try {
      const b = openBackend();
      expect(b.kind).toBe("liburing");
      expect(b.detail).toContain("liburing 2.");
      expect(b.setupFlags & SETUP.SINGLE_ISSUER).toBe(SETUP.SINGLE_ISSUER);
      b.close();
    } finally {
      if (saved !== undefined) process.env.URING_SYNC_BACKEND = saved;
    }
  });

  test("child with no environment overrides: liburing", () => {
    const p = child({});
    expect(p).toMatchObject({ kind: "liburing", nop: 0 });
  });

  test("child with URING_SYNC_NO_LIBURING=1: raw syscalls", () => {
    expect(child({ URING_SYNC_NO_LIBURING: "1" })).toMatchObject({ kind: "raw", nop: 0, detail: "raw io_uring syscalls via libc" });
  });

  test("child with URING_SYNC_BACKEND=sync: the emulation", () => {
    const p = child({ URING_SYNC_BACKEND: "sync" });
    expect(p).toMatchObject({ kind: "sync", nop: 0 });
    expect(p.detail).toContain("forced");
  });

  test("child with URING_SYNC_BACKEND=raw: raw even though liburing loads", () => {
    expect(child({ URING_SYNC_BACKEND: "raw" })).toMatchObject({ kind: "raw", nop: 0 });
  });

  test("the seccomp loader really denies io_uring_setup (and only that)", () => {
    // Without io_uring the forced raw backend must fail with the errno the filter returns.
    const p = child({ CHILD_FORCE: "raw" }, [loader(), "38"]);
    expect(p.error).toContain("io_uring_setup");
    expect(p.error).toContain("ENOSYS");
  });

  for (const [errno, name] of [[38, "ENOSYS"], [1, "EPERM"]] as const) {
    test(`io_uring_setup refused with ${name} under seccomp: falls back to the emulation`, () => {
      const p = child({}, [loader(), String(errno)]);
      expect(p).toMatchObject({ kind: "sync", nop: 0 });
      expect(p.detail).toContain(`io_uring_setup failed with ${name}`);
      // Also without liburing (raw is tried, refused, then the emulation).
      const q = child({ URING_SYNC_NO_LIBURING: "1" }, [loader(), String(errno)]);
      expect(q).toMatchObject({ kind: "sync", nop: 0 });
    });
  }

  test("a forced io_uring backend does not fall back silently", () => {
    const p = child({ URING_SYNC_BACKEND: "liburing" }, [loader(), "1"]);
    expect(p.kind).toBeUndefined();
    expect(p.error).toContain("EPERM");
  });
});
