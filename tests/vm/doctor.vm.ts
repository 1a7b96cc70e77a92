/**
 * doctor under a kernel that HAS kernel TLS: runs inside the ktls-vm guest only
 * (URING_SYNC_IN_VM=1, set by scripts/vm-test.sh). Not named *.test.ts, so the host's
 * `bun test` does not collect it (and reports no skipped test): tests/vm/vm.test.ts boots
 * the VM, runs this file there, and checks the result, so a host run still fails when these
 * assertions fail. Run by hand on the host, its one placeholder is skipped.
 *
 * Checks: the tls ULP attaches; TLS_TX and TLS_RX accept keys for TLS 1.2 and 1.3 with
 * AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305; a real TX -> RX round trip (1 KiB and
 * an alert record) passes for each; /proc/net/tls_stat counts the probes' sockets;
 * nothing leaks; the CLI prints the cipher table and the verdict.
 */
import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { renderDoctor } from "../../src/cli/doctor.ts";
import { collectDoctorReport, type DoctorReport } from "../../src/system/doctor.ts";
import { kernelHasTls, openFdCount, IN_VM } from "../system/machine.ts";

const ROOT = resolve(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const VERSIONS = ["1.2", "1.3"] as const;
const REQUIRED = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"] as const;

if (!IN_VM) {
  test.skip("runs inside the kTLS VM only (tests/vm/vm.test.ts runs it there)", () => {});
} else {
  describe("doctor inside the kTLS VM", () => {
    const before = openFdCount();
    const report: DoctorReport = collectDoctorReport();
    const after = openFdCount();
    // The shape the human report has, for the host-side log and for people reading it.
    process.stdout.write(`--- doctor (in-process, guest) ---\n${renderDoctor(report, false)}--- end doctor ---\n`);

    test("the guest kernel has kTLS and doctor finds the tls ULP", () => {
      expect(kernelHasTls()).toBe(true);
      expect(report.ktls.tlsUlp).toMatchObject({ ok: true });
      expect(report.ktls.available).toBe(true);
      expect(report.ktls.probes).toHaveLength(8);
    });

    for (const version of VERSIONS) {
      for (const cipher of REQUIRED) {
        test(`TLS ${version} ${cipher}: TLS_TX ok, TLS_RX ok, TX -> RX round trip ok`, () => {
          const p = report.ktls.probes.find((x) => x.version === version && x.cipher === cipher);
          expect(p).toBeDefined();
          expect(p!.tx).toEqual({ ok: true });
          expect(p!.rx).toEqual({ ok: true });
          expect(p!.roundTrip).toEqual({ ok: true });
          if (version === "1.3") expect(p!.rxNoPad).toEqual({ ok: true }); // Linux 6.0+
          else expect(p!.rxNoPad).toBeUndefined();
        });
      }
    }

    test("AES-128-CCM is probed too and has a definite answer for each step", () => {
      for (const version of VERSIONS) {
        const p = report.ktls.probes.find((x) => x.version === version && x.cipher === "aes-128-ccm");
        expect(p).toBeDefined();
        for (const s of [p!.tx, p!.rx, p!.roundTrip]) expect(s.ok || typeof s.error === "string").toBe(true);
      }
    });

    test("/proc/net/tls_stat counts the probes' software kTLS sockets, and no decrypt errors", () => {
      const st = report.ktls.tlsStat;
      expect(st).not.toBeNull();
      expect(st!.TlsTxSw).toBeGreaterThanOrEqual(8);
      expect(st!.TlsRxSw).toBeGreaterThanOrEqual(8);
      expect(st!.TlsDecryptError).toBe(0);
      expect(st!.TlsCurrTxSw).toBe(0); // every probe socket is closed again
      expect(st!.TlsCurrRxSw).toBe(0);
    });

    test("no descriptor leaks from the kTLS probes", () => {
      expect(after).toBe(before);
      collectDoctorReport();
      expect(openFdCount()).toBe(before);
    });

    test("backend: liburing shipped into the guest by scripts/vm-test.sh (else raw syscalls)", () => {
      const shipped = process.env.URING_SYNC_VM_LIBURING ?? "";
      if (shipped !== "") {
        expect(report.backend.kind).toBe("liburing");
        expect(report.backend.liburing).toMatchObject({ loaded: true, version: shipped });
      } else expect(report.backend.kind).toBe("raw");
      expect(report.ioUring.available).toBe(true);
      expect(report.opcodes.missing).toEqual([]);
    });

    test("verdict: ready, kernel TLS available with the TLS 1.3 ciphers", () => {
      expect(report.status).toBe("ready");
      expect(report.ktls.usableTls13).toEqual(expect.arrayContaining([...REQUIRED]));
      expect(report.verdict).toContain("kernel TLS available (TLS 1.3 aes-128-gcm, aes-256-gcm, chacha20-poly1305");
    });

    test("the CLI in the guest: exit 0, the cipher table, and the same verdict", () => {
      const r = Bun.spawnSync([process.execPath, MAIN, "doctor"], { cwd: ROOT, timeout: 60_000 });
      const out = r.stdout.toString();
      process.stdout.write(`--- uring-sync doctor (CLI, guest) ---\n${out}--- end CLI ---\n`);
      expect(r.exitCode).toBe(0);
      expect(out).toMatch(/^kernel TLS: +available/m);
      for (const c of REQUIRED) expect(out).toMatch(new RegExp(`^ +${c} +ok +ok *$`, "m"));
      expect(out).toMatch(/^verdict: +ready: .*kernel TLS available \(TLS 1\.3 aes-128-gcm/m);
    });
  });
}
