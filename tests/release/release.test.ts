// tests/release/release.test.ts — scripts/release.ts end to end: it builds the AVX2 binary, the
// baseline binary and the npm tarball into an output directory, each with a .sha256 that
// `sha256sum -c` accepts, and both binaries name the checkout's commit. Then the baseline
// binary runs on a CPU without AVX/AVX2: the ktls-vm guest (scripts/vm-test.sh) with QEMU's
// Nehalem CPU model, where a control program that executes one AVX2 instruction must die with
// SIGILL (so the guest really lacks AVX2) while the baseline binary prints its version, runs
// doctor --json and copies a tree.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/cli.ts";
import { expectNoDiff } from "../helpers/e2e.ts";
import { diffTrees, MiB, snapshotTree, writeRandom, writeTree } from "../helpers/tree.ts";

// Inside the repository: the VM shares the repository (and only it) with the guest.
const out = join(REPO_ROOT, ".tmp", "release-test");
const version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
let release: { code: number; log: string };

function sh(cmd: string[], cwd = REPO_ROOT): { code: number; out: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  rmSync(out, { recursive: true, force: true });
  const r = sh([process.execPath, join(REPO_ROOT, "scripts", "release.ts"), "--outdir", out]);
  release = { code: r.code, log: r.out };
}, 300_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("scripts/release.ts", () => {
  test("builds the three artifacts, each with a .sha256 that sha256sum -c accepts", () => {
    expect(release.code, release.log).toBe(0);
    const files = readdirSync(out).filter((f) => !f.startsWith(".")).sort();
    expect(files).toEqual([
      "uring-sync", `uring-sync-${version}.tgz`, `uring-sync-${version}.tgz.sha256`,
      "uring-sync-baseline", "uring-sync-baseline.sha256", "uring-sync.sha256",
    ]);
    const sums = files.filter((f) => f.endsWith(".sha256"));
    const check = sh(["sha256sum", "--check", "--strict", ...sums], out);
    expect(check.code, check.out).toBe(0);
    expect(check.out.trim().split("\n").sort()).toEqual([`uring-sync-${version}.tgz: OK`, "uring-sync-baseline: OK", "uring-sync: OK"]);
  });

  test("both binaries print the version, the checkout's commit and a build date; they embed different runtimes", () => {
    const head = sh(["git", "rev-parse", "--short", "HEAD"]).out.trim();
    for (const b of ["uring-sync", "uring-sync-baseline"]) {
      const v = sh([join(out, b), "--version"], out);
      expect(v.code, v.out).toBe(0);
      expect(v.out, b).toMatch(new RegExp(`^uring-sync ${version.replaceAll(".", "\\.")} \\(commit ${head}(-dirty)?, built \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\)\\n$`));
    }
    expect(sh(["cmp", "-s", join(out, "uring-sync"), join(out, "uring-sync-baseline")]).code, "the baseline is a different runtime").toBe(1);
  });

  test("the baseline binary runs on a CPU without AVX2 (QEMU Nehalem); an AVX2 instruction there is SIGILL", () => {
    // The control: one AVX2 instruction. It must run here (the host has AVX2) and die in the guest.
    writeFileSync(join(out, "avx2.c"), '#include <stdio.h>\nint main(void){__asm__ volatile("vpaddd %%ymm0,%%ymm1,%%ymm2":::"xmm0","xmm1","xmm2");puts("avx2 ok");return 0;}\n');
    const cc = sh(["gcc", "-O0", "-o", join(out, "avx2"), join(out, "avx2.c")]);
    expect(cc.code, `gcc (scripts/setup.sh --test installs it): ${cc.out}`).toBe(0);
    expect(sh([join(out, "avx2")]).out).toBe("avx2 ok\n");
    writeTree(join(out, "src"), { "a.txt": "alpha\n", "d/b.txt": "beta\n" });
    writeRandom(join(out, "src", "d", "random.bin"), 2 * MiB + 5);
    const before = snapshotTree(join(out, "src"));

    const script = [
      `cd '${out}'`,
      "grep -m1 '^flags' /proc/cpuinfo | grep -qw avx2 && echo 'cpu has avx2'",
      "./avx2; echo \"probe exit $?\"",
      "./uring-sync-baseline --version",
      "./uring-sync-baseline doctor --json > doctor.json; echo \"doctor exit $?\"",
      "./uring-sync-baseline src dst; echo \"copy exit $?\"",
    ].join("\n");
    const r = Bun.spawnSync(["bash", join(REPO_ROOT, "scripts", "vm-test.sh"), "--", "sh", "-c", script], {
      cwd: REPO_ROOT,
      env: { ...process.env, KTLS_VM_CPU: "Nehalem", KTLS_VM_TIMEOUT: "200" },
      stdout: "pipe",
      stderr: "pipe",
      timeout: 240_000,
    });
    const log = `exit ${r.exitCode}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
    const stdout = r.stdout.toString();
    expect(r.exitCode, log).toBe(0);
    expect(stdout, log).not.toContain("cpu has avx2");
    expect(stdout, `the AVX2 probe must die of SIGILL (exit 132) in the guest\n${log}`).toContain("probe exit 132");
    expect(stdout, log).toMatch(new RegExp(`^uring-sync ${version.replaceAll(".", "\\.")} \\(commit `, "m"));
    expect(stdout, log).toContain("doctor exit 0");
    expect(stdout, log).toContain("copy exit 0");
    const doctor = JSON.parse(readFileSync(join(out, "doctor.json"), "utf8")) as { runtime: { compiled: boolean } };
    expect(doctor.runtime.compiled).toBe(true);
    // The guest sees the files through 9p, which keeps whole seconds of mtime only.
    const diff = { ignoreAtime: true, ignoreRoot: true, skip: (_p: string, f: string) => f === "mtime" };
    expectNoDiff(diffTrees(before, snapshotTree(join(out, "dst")), diff), "baseline copy in the guest");
  }, 300_000);
});
