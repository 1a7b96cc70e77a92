/**
 * Network transfer under a kernel that HAS kernel TLS: runs inside the ktls-vm guest only
 * (URING_SYNC_IN_VM=1, set by scripts/vm-test.sh). On the host its single placeholder is
 * skipped: tests/vm/net-vm.test.ts boots the VM once, runs this file there, and checks the
 * result, so a host run still fails when these assertions fail.
 *
 * Checks, with a tree of at least 64 MiB, byte-identical on arrival: kernel -> kernel
 * (--crypto kernel on both ends), a kernel sender -> a userspace receiver, and a userspace
 * sender -> a kernel receiver; /proc/net/tls_stat proves the kernel did the crypto on the
 * kernel ends (TlsTxSw/TlsRxSw grow, no decrypt errors, no sockets left); --json says
 * "kernel" or "user" on each end. A small tree then crosses kernel <-> userspace with
 * AES-256-GCM and ChaCha20-Poly1305, and `--crypto auto` picks the kernel here.
 * The guest is emulated (TCG, 10-50x slower than the host): 64 MiB through kTLS takes
 * 4-6 s, so each big case gets a generous timeout and the file stays under ~3 min.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, symlinkSync, linkSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseJson } from "../helpers/cli.ts";
import { expectBothExit, formatBoth, killAllReceivers, transfer, type TransferResult } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeBigFile, writeRandom, type Snapshot } from "../helpers/tree.ts";
import { IN_VM, kernelHasTls } from "../system/machine.ts";

type TlsStat = Record<string, number>;

/** /proc/net/tls_stat as name -> count. */
function tlsStat(): TlsStat {
  const out: TlsStat = {};
  for (const line of readFileSync("/proc/net/tls_stat", "utf8").split("\n")) {
    const m = /^(\w+)\s+(\d+)/.exec(line.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function delta(a: TlsStat, b: TlsStat): TlsStat {
  const d: TlsStat = {};
  for (const k of Object.keys(b)) d[k] = b[k] - (a[k] ?? 0);
  return d;
}

if (!IN_VM) {
  test.skip("runs inside the kTLS VM only (tests/vm/net-vm.test.ts runs it there)", () => {});
} else {
  describe("network transfer inside the kTLS VM", () => {
    let work: string;
    let big: string;
    let small: string;
    let bigBefore: Snapshot;
    let smallBefore: Snapshot;
    let bigBytes = 0;
    let n = 0;

    beforeAll(() => {
      work = mkdtempSync("/tmp/uring-sync-vm-net-");
      big = join(work, "big");
      // >= 64 MiB of real (non-repeating) data: one 40 MiB file, 24 files of 1 MiB + 13,
      // some small files, a hard link, a symlink and an empty directory.
      writeBigFile(join(big, "large/forty.bin"), 40 * MiB);
      for (let i = 0; i < 24; i++) writeRandom(join(big, `mid/m${String(i).padStart(2, "0")}.bin`), MiB + 13);
      for (let i = 0; i < 40; i++) writeRandom(join(big, `small/s${i}.txt`), 100 + i * 37);
      linkSync(join(big, "small/s1.txt"), join(big, "small/s1-hardlink.txt"));
      symlinkSync("../large/forty.bin", join(big, "small/to-large"));
      mkdirSync(join(big, "empty"));
      bigBefore = snapshotTree(big);
      const inodes = new Map<number, number>();
      for (const [, e] of bigBefore) if (e.type === "file") inodes.set(e.ino, e.size);
      for (const size of inodes.values()) bigBytes += size;
      small = join(work, "small");
      writeRandom(join(small, "one.bin"), MiB + 5);
      writeFileSync(join(small, "hello.txt"), "hello through kTLS\n");
      smallBefore = snapshotTree(small);
      process.stdout.write(`[net.vm] tree: ${bigBytes} bytes in ${[...bigBefore.values()].filter((e) => e.type === "file").length} files\n`);
    });
    afterAll(async () => {
      await killAllReceivers();
      rmSync(work, { recursive: true, force: true });
    });

    test("the guest kernel has kTLS and the big tree is at least 64 MiB", () => {
      expect(kernelHasTls()).toBe(true);
      expect(tlsStat()).toHaveProperty("TlsTxSw");
      expect(bigBytes).toBeGreaterThanOrEqual(64 * MiB);
    });

    /** One session; the received tree must be identical; returns the tls_stat deltas. */
    async function session(src: string, before: Snapshot, recvArgs: string[], sendArgs: string[], what: string): Promise<{ t: TransferResult; d: TlsStat; ms: number }> {
      const dst = join(work, `dst-${++n}`);
      const s0 = tlsStat();
      const t0 = performance.now();
      const t = await transfer({ src, dst, recvArgs: [...recvArgs, "--json"], sendArgs: [...sendArgs, "--json"], timeoutMs: 150_000 });
      const ms = Math.round(performance.now() - t0);
      const d = delta(s0, tlsStat());
      process.stdout.write(`[net.vm] ${what}: ${ms} ms; tls_stat delta ${JSON.stringify(d)}\n`);
      expectBothExit(t, 0, 0);
      expectNetCopy(before, dst, what, formatBoth(t));
      rmSync(dst, { recursive: true, force: true });
      expect(d.TlsDecryptError ?? 0, "no kTLS decrypt errors").toBe(0);
      expect(tlsStat().TlsCurrTxSw ?? 0, "no kTLS socket left open").toBe(s0.TlsCurrTxSw ?? 0);
      expect(tlsStat().TlsCurrRxSw ?? 0, "no kTLS socket left open").toBe(s0.TlsCurrRxSw ?? 0);
      return { t, d, ms };
    }

    function cryptoOf(t: TransferResult): { send: unknown; recv: unknown } {
      return { send: parseJson(t.send).crypto, recv: parseJson(t.recv).crypto };
    }

    test("kernel -> kernel: 64 MiB byte-identical, the kernel encrypted and decrypted on both ends", async () => {
      const { t, d } = await session(big, bigBefore, ["--crypto", "kernel"], ["--crypto", "kernel"], "kernel -> kernel");
      expect(cryptoOf(t), formatBoth(t)).toEqual({ send: "kernel", recv: "kernel" });
      // Each end keys TX and RX on its socket: two of each at least.
      expect(d.TlsTxSw, "kernel TX on both ends").toBeGreaterThanOrEqual(2);
      expect(d.TlsRxSw, "kernel RX on both ends").toBeGreaterThanOrEqual(2);
    }, 170_000);

    test("kernel sender -> userspace receiver: 64 MiB byte-identical", async () => {
      const { t, d } = await session(big, bigBefore, ["--crypto", "user"], ["--crypto", "kernel"], "kernel sender -> user receiver");
      expect(cryptoOf(t), formatBoth(t)).toEqual({ send: "kernel", recv: "user" });
      expect(d.TlsTxSw, "the sender's kernel TX").toBeGreaterThanOrEqual(1);
      expect(d.TlsRxSw, "the sender's kernel RX").toBeGreaterThanOrEqual(1);
      expect(d.TlsTxSw, "only the kernel end uses kTLS").toBe(d.TlsRxSw);
    }, 170_000);

    test("userspace sender -> kernel receiver: 64 MiB byte-identical", async () => {
      const { t, d } = await session(big, bigBefore, ["--crypto", "kernel"], ["--crypto", "user"], "user sender -> kernel receiver");
      expect(cryptoOf(t), formatBoth(t)).toEqual({ send: "user", recv: "kernel" });
      expect(d.TlsRxSw, "the receiver's kernel RX").toBeGreaterThanOrEqual(1);
      expect(d.TlsTxSw, "the receiver's kernel TX").toBeGreaterThanOrEqual(1);
      expect(d.TlsTxSw, "only the kernel end uses kTLS").toBe(d.TlsRxSw);
    }, 170_000);

    for (const cipher of ["aes-256-gcm", "chacha20-poly1305"] as const) {
      test(`${cipher}: kernel sender -> userspace receiver and userspace sender -> kernel receiver`, async () => {
        const a = await session(small, smallBefore, ["--crypto", "user", "--cipher", cipher], ["--crypto", "kernel", "--cipher", cipher], `${cipher} kernel -> user`);
        expect(cryptoOf(a.t)).toEqual({ send: "kernel", recv: "user" });
        expect(a.d.TlsTxSw).toBeGreaterThanOrEqual(1);
        const b = await session(small, smallBefore, ["--crypto", "kernel", "--cipher", cipher], ["--crypto", "user", "--cipher", cipher], `${cipher} user -> kernel`);
        expect(cryptoOf(b.t)).toEqual({ send: "user", recv: "kernel" });
        expect(b.d.TlsRxSw).toBeGreaterThanOrEqual(1);
      }, 120_000);
    }

    test("--crypto auto on both ends picks the kernel here", async () => {
      const { t, d } = await session(small, smallBefore, [], [], "auto -> auto");
      expect(cryptoOf(t), formatBoth(t)).toEqual({ send: "kernel", recv: "kernel" });
      expect(d.TlsTxSw).toBeGreaterThanOrEqual(2);
      expect(d.TlsRxSw).toBeGreaterThanOrEqual(2);
    }, 90_000);
  });
}
