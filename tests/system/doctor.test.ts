/**
 * src/system/doctor.ts and its probes, in-process: every fact checked against a source
 * that does not go through the code under test (/proc, the shell, ffi/structs.ts), and
 * no descriptor left behind by the probes.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { liburing } from "../../ffi/liburing.ts";
import { OP, USED_OPS } from "../../ffi/structs.ts";
import { collectDoctorReport, verdictOf, type DoctorReport } from "../../src/system/doctor.ts";
import { parseCpuinfo } from "../../src/system/facts.ts";
import { parseTlsStat, type KtlsFacts } from "../../src/system/ktls-probe.ts";
import { kernelHasTls } from "./machine.ts";

const report: DoctorReport = collectDoctorReport();

describe("doctor report on this machine", () => {
  test("kernel release is /proc/sys/kernel/osrelease", () => {
    expect(report.kernel.release).toBe(readFileSync("/proc/sys/kernel/osrelease", "utf8").trim());
  });

  test("io_uring is available: io_uring_setup works and io_uring_disabled is 0", () => {
    expect(report.ioUring.available).toBe(true);
    expect(report.ioUring.setup.ok).toBe(true);
    expect(report.ioUring.reason).toBeNull();
    expect(report.ioUring.disabledSetting).toBe(Number(readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim()));
  });

  test("backend: liburing, with its version and the file it was loaded from", () => {
    expect(liburing).not.toBeNull();
    expect(report.backend.kind).toBe("liburing");
    expect(report.backend.error).toBeNull();
    expect(report.backend.liburing).toEqual({ loaded: true, version: liburing!.version, path: liburing!.path });
    expect(report.backend.liburing.loaded && report.backend.liburing.path).toMatch(/liburing\.so\.2\.\d+$/);
    expect(report.backend.detail).toContain(`liburing ${liburing!.version}`);
  });

  test("opcodes: every USED_OPS entry, in order, with its number, as the kernel probe says", () => {
    expect(report.opcodes.source).toBe("kernel");
    expect(report.opcodes.ops.map((o) => o.name)).toEqual([...USED_OPS]);
    for (const o of report.opcodes.ops) expect(o.opcode).toBe(OP[o.name as keyof typeof OP]);
    // FIELD_NOTES section 1: this kernel supports every opcode up to 62.
    expect(report.opcodes.missing).toEqual([]);
    expect(report.opcodes.supported).toBe(USED_OPS.length);
    expect(report.opcodes.total).toBe(USED_OPS.length);
  });

  if (!kernelHasTls()) {
    test("kTLS absent here: TCP_ULP tls -> ENOENT, no cipher probes, no tls_stat", () => {
      expect(report.ktls.available).toBe(false);
      expect(report.ktls.tlsUlp).toMatchObject({ ok: false, tested: true, error: "ENOENT" });
      expect(report.ktls.tlsUlp.reason).toContain("CONFIG_TLS");
      expect(report.ktls.probes).toEqual([]);
      expect(report.ktls.usableTls13).toEqual([]);
      expect(report.ktls.tlsStat).toBeNull();
    });
  } else {
    // On a kernel with kTLS (the ktls-vm guest runs tests/vm/doctor.vm.ts for the details).
    test("kTLS present here: the ULP attaches and every version x cipher was probed", () => {
      expect(report.ktls.available).toBe(true);
      expect(report.ktls.probes.length).toBe(8);
    });
  }

  test("CPU flags are those of /proc/cpuinfo", () => {
    const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "").split(/\s+/));
    expect(report.cpu).not.toBeNull();
    for (const f of ["aes", "vaes", "pclmulqdq", "avx2", "sha_ni"] as const) expect(report.cpu!.flags[f]).toBe(flags.has(f));
  });

  test("open-file limit is what the shell reports (ulimit -Sn / -Hn)", () => {
    const sh = Bun.spawnSync(["sh", "-c", "ulimit -Sn; ulimit -Hn"]);
    const [soft, hard] = sh.stdout.toString().trim().split("\n");
    const asLimit = (s: string): number | string => (s === "unlimited" ? s : Number(s));
    expect(report.limits.openFiles).toEqual({ soft: asLimit(soft), hard: asLimit(hard) } as never);
  });

  test("runtime: this Bun, not a compiled executable", () => {
    expect(report.runtime.bun).toBe(Bun.version);
    expect(report.runtime.compiled).toBe(false);
    expect(report.runtime.execPath).toBe(process.execPath);
  });

  test("verdict: ready, io_uring via liburing, and where TLS records get encrypted", () => {
    expect(report.status).toBe("ready");
    const io = `ready: io_uring via liburing ${liburing!.version}, `;
    if (kernelHasTls()) expect(report.verdict).toStartWith(`${io}kernel TLS available (TLS 1.3 aes-128-gcm`);
    else expect(report.verdict).toBe(`${io}kernel TLS unavailable (userspace AES-GCM will be used)`);
  });

  test("the report is plain JSON (survives a round trip unchanged)", () => {
    expect(JSON.parse(JSON.stringify(report))).toEqual(report as never);
  });
});

describe("no descriptor leaks (checked in a fresh process: see fixtures/fd-leaks.ts)", () => {
  const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "fixtures", "fd-leaks.ts")], { stderr: "pipe" });
  const out = JSON.parse(r.stdout.toString()) as {
    afterReports: string[]; afterProbes: string[]; whileOpen: number; port: number; afterClose: string[];
  };

  test("collectDoctorReport closes every fd it opens (ring, probe sockets, raw io_uring_setup)", () => {
    expect(r.exitCode).toBe(0);
    expect(out.afterReports).toEqual([]);
  });

  test("probeKtls and the loopback listener close their sockets", () => {
    expect(out.afterProbes).toEqual([]);
    expect(out.whileOpen).toBe(3); // listener, client, accepted: the check can see sockets
    expect(out.port).toBeGreaterThan(0);
    expect(out.afterClose).toEqual([]);
  });
});

describe("pure parts", () => {
  const ktls = (over: Partial<KtlsFacts>): KtlsFacts => ({
    available: false,
    tlsUlp: { ok: false, tested: true, error: "ENOENT", reason: "x" },
    probes: [],
    usableTls13: [],
    tlsStat: null,
    ...over,
  });

  test("verdict when io_uring is refused and the emulation takes over: degraded", () => {
    const v = verdictOf({
      backend: { ...report.backend, kind: "sync", forced: null, detail: "synchronous system calls (io_uring_setup failed with EPERM)" },
      ioUring: { ...report.ioUring, available: false, reason: "io_uring_setup failed with EPERM (io_uring_disabled=2)" },
      ktls: ktls({}),
    });
    expect(v.status).toBe("degraded");
    expect(v.verdict).toBe("degraded: synchronous system calls, no io_uring (io_uring_setup failed with EPERM (io_uring_disabled=2)), kernel TLS unavailable (userspace AES-GCM will be used)");
  });

  test("verdict with kernel TLS: lists the TLS 1.3 ciphers that passed; no ring at all is 'not ready'", () => {
    const good = verdictOf({ backend: report.backend, ioUring: report.ioUring, ktls: ktls({ available: true, usableTls13: ["aes-128-gcm", "chacha20-poly1305"] }) });
    expect(good.verdict).toEndWith("kernel TLS available (TLS 1.3 aes-128-gcm, chacha20-poly1305)");
    const noAes = verdictOf({ backend: report.backend, ioUring: report.ioUring, ktls: ktls({ available: true, usableTls13: ["chacha20-poly1305"] }) });
    expect(noAes.verdict).toContain("aes-128-gcm will be encrypted in userspace");
    const broken = verdictOf({ backend: report.backend, ioUring: report.ioUring, ktls: ktls({ available: true, usableTls13: [] }) });
    expect(broken.verdict).toContain("no TLS 1.3 cipher passed the round trip");
    const none = verdictOf({ backend: { ...report.backend, kind: null, error: "io_uring_setup: EPERM" }, ioUring: report.ioUring, ktls: ktls({}) });
    expect(none.status).toBe("not ready");
    expect(none.verdict).toStartWith("not ready: no usable I/O backend (io_uring_setup: EPERM)");
  });

  test("parseTlsStat and parseCpuinfo", () => {
    expect(parseTlsStat("TlsCurrTxSw                     \t0\nTlsTxSw                         \t8\n\n")).toEqual({ TlsCurrTxSw: 0, TlsTxSw: 8 });
    const cpu = parseCpuinfo("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu aes avx2\n\nprocessor\t: 1\nflags\t\t: fpu aes avx2\n");
    expect(cpu.model).toBe("Test CPU");
    expect(cpu.count).toBe(2);
    expect(cpu.flags).toEqual({ aes: true, vaes: false, pclmulqdq: false, avx2: true, avx512f: false, sha_ni: false });
  });
});
