/**
 * `uring-sync doctor` as a user runs it: a child process (`bun src/cli/main.ts doctor`),
 * its exit status, its JSON and its human-readable lines, and the backend it reports
 * under URING_SYNC_NO_LIBURING=1 and URING_SYNC_BACKEND=sync. Rendering details are
 * checked in-process with synthetic reports (a missing opcode, a kTLS table).
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { USED_OPS } from "../../ffi/structs.ts";
import { renderDoctor } from "../../src/cli/doctor.ts";
import { collectDoctorReport, type DoctorReport } from "../../src/system/doctor.ts";
import type { KtlsCipherProbe } from "../../src/system/ktls-probe.ts";
import { kernelHasTls } from "../system/machine.ts";

const ROOT = resolve(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function doctor(args: string[], env: Record<string, string | undefined> = {}): Run {
  const childEnv: Record<string, string | undefined> = { ...process.env, URING_SYNC_BACKEND: undefined, URING_SYNC_NO_LIBURING: undefined, ...env };
  const r = Bun.spawnSync([process.execPath, MAIN, "doctor", ...args], { cwd: "/", env: childEnv as Record<string, string>, timeout: 30_000 });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function json(env: Record<string, string | undefined> = {}): DoctorReport {
  const r = doctor(["--json"], env);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as DoctorReport;
}

describe("doctor --json (child process)", () => {
  test("default: liburing backend, every used opcode listed, kTLS as the kernel allows, exit 0", () => {
    const rep = json();
    expect(rep.backend.kind).toBe("liburing");
    expect(rep.backend.liburing.loaded).toBe(true);
    expect(rep.ioUring.available).toBe(true);
    expect(rep.opcodes.ops.map((o) => o.name)).toEqual([...USED_OPS]);
    expect(rep.opcodes.source).toBe("kernel");
    if (kernelHasTls()) expect(rep.ktls.available).toBe(true);
    else {
      expect(rep.ktls.available).toBe(false);
      expect(rep.ktls.tlsUlp).toMatchObject({ ok: false, error: "ENOENT" });
    }
    expect(rep.verdict).toStartWith("ready: io_uring via liburing ");
  });

  test("URING_SYNC_NO_LIBURING=1: raw io_uring syscalls, and the report says why", () => {
    const rep = json({ URING_SYNC_NO_LIBURING: "1" });
    expect(rep.backend.kind).toBe("raw");
    expect(rep.backend.liburing).toEqual({ loaded: false, reason: "disabled by URING_SYNC_NO_LIBURING=1" });
    expect(rep.backend.detail).toBe("raw io_uring syscalls via libc");
    expect(rep.opcodes.source).toBe("kernel");
    expect(rep.opcodes.missing).toEqual([]);
    expect(rep.verdict).toStartWith("ready: io_uring via raw syscalls (liburing not loaded: disabled by URING_SYNC_NO_LIBURING=1)");
  });

  test("URING_SYNC_BACKEND=sync: the synchronous emulation, its own opcode list, io_uring still reported available", () => {
    const rep = json({ URING_SYNC_BACKEND: "sync" });
    expect(rep.backend.kind).toBe("sync");
    expect(rep.backend.forced).toBe("sync");
    expect(rep.backend.detail).toStartWith("synchronous system calls");
    expect(rep.opcodes.source).toBe("emulation");
    expect(rep.ioUring.available).toBe(true);
    expect(rep.status).toBe("ready");
    expect(rep.verdict).toStartWith("ready: synchronous system calls (forced by URING_SYNC_BACKEND=sync), ");
  });
});

describe("doctor without a usable loopback (a fresh network namespace: lo is down)", () => {
  test("kTLS is reported untested with the errno, not absent; still exit 0", () => {
    const r = Bun.spawnSync(["unshare", "-n", process.execPath, MAIN, "doctor", "--json"], { cwd: "/", timeout: 30_000 });
    // unshare needs CAP_SYS_ADMIN: the test suite runs as root here (scripts/test.sh).
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const rep = JSON.parse(r.stdout.toString()) as DoctorReport;
    expect(rep.ktls.tlsUlp.tested).toBe(false);
    expect(rep.ktls.tlsUlp.error).toMatch(/^E(NETUNREACH|ADDRNOTAVAIL)$/);
    expect(rep.verdict).toContain("kernel TLS untested: could not make a loopback TCP connection to test kTLS");
    expect(rep.backend.kind).toBe("liburing");
  });
});

describe("doctor, human-readable (child process)", () => {
  const KEY = /^([a-zA-Z_][a-zA-Z_ -]*):( +)(\S.*)$/;

  test("aligned key: value lines, a compact opcode list, the verdict last; exit 0", () => {
    const r = doctor([]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    const keys: string[] = [];
    for (const l of lines) {
      const m = KEY.exec(l);
      if (m !== null) {
        keys.push(m[1]);
        expect(m[1].length + 1 + m[2].length).toBe(16); // every value starts in column 17
      } else expect(l).toMatch(/^ {16}\S/); // continuation lines sit under the values
    }
    expect(keys).toEqual(["uring-sync", "bun", "kernel", "io_uring", "backend", "opcodes", "kernel TLS", "tls_stat", "cpu", "open files", "verdict"]);
    const opLines = lines.slice(lines.findIndex((l) => l.startsWith("opcodes:")) + 1, lines.findIndex((l) => l.startsWith("kernel TLS:")));
    expect(opLines.join(" ").trim().split(/\s+/)).toEqual([...USED_OPS]);
    expect(opLines.length).toBeLessThanOrEqual(4);
    const verdict = lines.at(-1)!.replace(/^verdict: +/, "");
    expect(verdict).toBe(json().verdict);
    if (!kernelHasTls()) expect(r.stdout).toContain('kernel TLS:     unavailable: TCP_ULP "tls" -> ENOENT');
  });

  test("-v adds detail: ring setup flags, opcode numbers, CPU model", () => {
    const plain = doctor([]);
    const r = doctor(["-v"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ring setup:");
    expect(r.stdout).toContain("22:READ=yes");
    expect(r.stdout).toMatch(/^cpu: +.+, \d+ CPUs: /m);
    expect(r.stdout.split("\n").length).toBeGreaterThan(plain.stdout.split("\n").length);
  });

  test("--quiet prints the verdict only; a stray option is a usage error (exit 2)", () => {
    const q = doctor(["--quiet"]);
    expect(q.code).toBe(0);
    expect(q.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(q.stdout).toMatch(/^(ready|degraded|not ready): /);
    const bad = doctor(["--jsno"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option --jsno");
  });

  test("--help describes what is checked and the options that exist", () => {
    const r = doctor(["--help"]);
    expect(r.code).toBe(0);
    for (const s of ["--json", "--verbose", "--quiet", "io_uring_disabled", "TLS_TX", "round trip", "Exit status 0"]) expect(r.stdout).toContain(s);
  });
});

describe("doctor in a compiled executable", () => {
  test("reports compiled: true and its own path; exit 0", () => {
    const dir = mkdtempSync("/tmp/uring-sync-doctor-bin-");
    try {
      const bin = join(dir, "uring-sync");
      const b = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts"), "--outfile", bin], { cwd: ROOT, timeout: 120_000 });
      expect(b.exitCode).toBe(0);
      const r = Bun.spawnSync([bin, "doctor", "--json"], { cwd: "/", timeout: 30_000 });
      expect(r.exitCode).toBe(0);
      const rep = JSON.parse(r.stdout.toString()) as DoctorReport;
      expect(rep.runtime.compiled).toBe(true);
      expect(rep.runtime.execPath).toBe(bin);
      expect(rep.uringSync.buildDate).not.toBe("source");
      expect(rep.backend.kind).toBe("liburing");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});

describe("renderDoctor", () => {
  const base = collectDoctorReport({ ktls: false });

  test("a missing opcode is marked in the list and named in the summary", () => {
    const r: DoctorReport = structuredClone(base);
    const splice = r.opcodes.ops.find((o) => o.name === "SPLICE")!;
    splice.supported = false;
    r.opcodes.missing = ["SPLICE"];
    r.opcodes.supported = r.opcodes.total - 1;
    const out = renderDoctor(r, false);
    expect(out).toContain(`${r.opcodes.total - 1}/${r.opcodes.total} used opcodes supported (kernel probe); missing: SPLICE`);
    expect(out).toMatch(/ !SPLICE /);
    expect(renderDoctor(r, true)).toContain("30:SPLICE=NO");
  });

  test("with kernel TLS: one row per cipher, one column per TLS version, failures spelt out", () => {
    const r: DoctorReport = structuredClone(base);
    const ok = { ok: true };
    const probe = (version: "1.2" | "1.3", cipher: KtlsCipherProbe["cipher"]): KtlsCipherProbe => ({ version, cipher, tx: ok, rx: ok, roundTrip: ok });
    r.ktls = {
      available: true,
      tlsUlp: { ok: true, tested: true, reason: "x" },
      probes: [
        probe("1.2", "aes-128-gcm"), probe("1.3", "aes-128-gcm"),
        { ...probe("1.2", "aes-128-ccm"), rx: { ok: false, error: "ENOENT" }, roundTrip: { ok: false, error: "skipped: TLS_RX failed" } },
        { ...probe("1.3", "aes-128-ccm"), roundTrip: { ok: false, error: "mismatch: data differs after TX -> RX" } },
      ],
      usableTls13: ["aes-128-gcm"],
      tlsStat: { TlsTxSw: 4, TlsRxSw: 4, TlsDecryptError: 0 },
    };
    const lines = renderDoctor(r, false).split("\n");
    const at = lines.findIndex((l) => l.startsWith("kernel TLS:"));
    expect(lines[at]).toContain("available");
    expect(lines[at + 1].trim().split(/\s{2,}/)).toEqual(["cipher", "TLS 1.2", "TLS 1.3"]);
    expect(lines[at + 2].trim().split(/\s{2,}/)).toEqual(["aes-128-gcm", "ok", "ok"]);
    expect(lines[at + 3].trim().split(/\s{2,}/)).toEqual(["aes-128-ccm", "RX ENOENT", "round trip: mismatch: data differs after TX -> RX"]);
    expect(lines[at + 4]).toBe("tls_stat:       TlsTxSw=4 TlsRxSw=4");
    expect(renderDoctor(r, true)).toContain("tx ok, rx ENOENT, rt skipped: TLS_RX failed");
  });
});
