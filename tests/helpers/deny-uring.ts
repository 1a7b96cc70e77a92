// tests/helpers/deny-uring.ts — the one seccomp fixture that makes io_uring unavailable to a
// child process, the way a container runtime's profile does (Docker's default seccomp profile
// answers io_uring_setup with EPERM; gVisor and old kernels give ENOSYS). A tiny C loader
// installs a filter that fails io_uring_setup with the errno given on its command line,
// allows everything else, then execs the rest of the command line; the filter is inherited by
// every thread and child of that command. Compiled once per source version into a fixed
// /tmp path (reused across test processes; built under a temp name and renamed, so parallel
// test files never see a half-written binary). Used by tests/uring/backend.test.ts and
// tests/e2e/ci-recipe.test.ts. Never decides what a result means.
// Usage: Bun.spawn([denyUringLoader(), "1", ...command])   (1 = EPERM, 38 = ENOSYS)

import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// A seccomp loader: deny io_uring_setup with the errno given on the command line, allow
// everything else, then exec the rest of the command line. x86_64 only, like the project.
export const SECCOMP_C = `
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

let built: string | undefined;

/**
 * Path of the compiled loader, building it on first use. Throws (failing the test, never
 * skipping it) when gcc is missing or the build fails.
 */
export function denyUringLoader(): string {
  if (built !== undefined) return built;
  const hash = createHash("sha256").update(SECCOMP_C).digest("hex").slice(0, 12);
  const dir = `/tmp/uring-sync-deny-uring-${hash}`;
  const bin = join(dir, "deny-uring");
  if (!existsSync(bin)) {
    if (Bun.which("gcc") === null) {
      throw new Error("gcc not found: the io_uring-denying seccomp fixture compiles a small C loader (install gcc)");
    }
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    const src = join(dir, `deny-uring-${process.pid}.c`);
    const tmp = join(dir, `deny-uring-${process.pid}.tmp`);
    writeFileSync(src, SECCOMP_C);
    const cc = Bun.spawnSync(["gcc", "-O1", "-Wall", "-o", tmp, src], { stderr: "pipe" });
    rmSync(src, { force: true });
    if (cc.exitCode !== 0) throw new Error(`gcc failed building the seccomp fixture: ${cc.stderr.toString()}`);
    chmodSync(tmp, 0o755);
    renameSync(tmp, bin);
  }
  built = bin;
  return bin;
}
