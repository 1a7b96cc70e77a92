/**
 * Host side of the kernel-TLS tests: boots the ktls-vm guest once with scripts/vm-test.sh
 * and runs tests/vm/doctor.vm.ts and tests/net/ktls.test.ts there (the host kernel
 * has no kTLS). Fails, never skips, when qemu or the VM image is missing, with the
 * command that installs them. Emulation (TCG) is slow: this takes about 15-40 s.
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..", "..");
const SCRIPT = join(ROOT, "scripts", "vm-test.sh");
const GUEST_TESTS = ["tests/vm/doctor.vm.ts", "tests/net/ktls.test.ts"];

test("kTLS VM prerequisites are installed (qemu, the ktls-vm image)", () => {
  const r = Bun.spawnSync(["bash", SCRIPT, "--check"], { cwd: ROOT });
  const msg = r.stderr.toString().trim();
  if (r.exitCode !== 0) throw new Error(`the kTLS VM cannot run here: ${msg}`);
  expect(r.stdout.toString()).toContain("vm-test: ok");
});

test(
  "in the kTLS VM: doctor finds TLS_TX/TLS_RX and a working round trip; ktls.ts keys sockets",
  () => {
    const r = Bun.spawnSync(["bash", SCRIPT, ...GUEST_TESTS], {
      cwd: ROOT,
      env: { ...process.env, KTLS_VM_TIMEOUT: "150" },
      timeout: 170_000,
    });
    const out = r.stdout.toString();
    const err = r.stderr.toString();
    const all = `${out}\n${err}`;
    if (r.exitCode !== 0) throw new Error(`scripts/vm-test.sh exited ${r.exitCode}\n--- stdout ---\n${out}\n--- stderr ---\n${err}`);
    // The guest really ran the tests (not the host-side skip), and every one passed.
    expect(all).toMatch(/^\s*0 fail$/m);
    const passed = Number(/^\s*(\d+) pass$/m.exec(all)?.[1] ?? "0");
    expect(passed).toBeGreaterThanOrEqual(28);
    expect(all).not.toContain("runs inside the kTLS VM only");
    expect(all).toContain("(pass) doctor inside the kTLS VM > TLS 1.3 aes-128-gcm: TLS_TX ok, TLS_RX ok, TX -> RX round trip ok");
    expect(all).toContain("(pass) setsockopt on this machine > kTLS here: each direction is keyed once (EBUSY), every version x cipher is accepted");
    expect(all).toContain("(pass) the same buffers through io_uring SENDMSG / RECVMSG > an alert record travels through kTLS TX -> RX");
    expect(out).toMatch(/^verdict: +ready: .*kernel TLS available \(TLS 1\.3 aes-128-gcm, aes-256-gcm, chacha20-poly1305/m);
    expect(err).toMatch(/\[ktls-vm\] accel=\w+ .* rc=0/);
  },
  180_000,
);
