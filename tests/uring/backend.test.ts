// tests/uring/backend.test.ts — which backend openBackend() picks, and why: liburing when
// it loads; raw syscalls with URING_SYNC_NO_LIBURING=1; the emulation when asked
// (URING_SYNC_BACKEND=sync) or when io_uring_setup is refused. "Refused" is real here: the
// child runs under a seccomp filter (a tiny loader compiled from C by this test) that makes
// io_uring_setup fail with EPERM or ENOSYS for that process only.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { liburing } from "../../ffi/liburing.ts";
import { SETUP } from "../../ffi/structs.ts";
import { openBackend } from "../../src/uring/backend.ts";

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

// A seccomp loader: deny io_uring_setup with the errno given on the command line, allow
// everything else, then exec the rest of the command line. x86_64 only, like the project.
const SECCOMP_C = `
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: deny-uring ERRNO cmd...\\n"); return 2; }
  int err = atoi(argv[1]);
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("PR_SET_NO_NEW_PRIVS"); return 3; }
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) { perror("seccomp"); return 3; }
  execvp(argv[2], argv + 2);
  perror("execvp");
  return 4;
}
`;

let dir = "";
let denyUring = "";
let buildError: string | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "uring-seccomp-"));
  if (Bun.which("gcc") === null) {
    buildError = "gcc not found: the seccomp fallback test compiles a small C loader (install gcc)";
    return;
  }
  writeFileSync(join(dir, "deny-uring.c"), SECCOMP_C);
  const cc = Bun.spawnSync(["gcc", "-O1", "-Wall", "-o", "deny-uring", "deny-uring.c"], { cwd: dir, stderr: "pipe" });
  if (cc.exitCode !== 0) buildError = `gcc failed: ${cc.stderr.toString()}`;
  else denyUring = join(dir, "deny-uring");
});

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

function loader(): string {
  if (buildError !== undefined) throw new Error(buildError);
  return denyUring;
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
