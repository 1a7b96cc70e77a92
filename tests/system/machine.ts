/**
 * What the machine running the tests should have, decided without the code under test,
 * so tests can check doctor and src/net/ktls.ts against it. Here (kernel 6.18 without
 * CONFIG_TLS) kernelHasTls() is false; in the ktls-vm guest (tls.ko loaded) it is true.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** The kernel has kernel TLS: the module is loaded, or shipped for this kernel. */
export function kernelHasTls(): boolean {
  const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  return existsSync("/sys/module/tls") || existsSync(`/lib/modules/${release}/kernel/net/tls`);
}

/** Open descriptors of this process. */
export function openFdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/** The fd numbers open now. */
export function openFds(): Set<string> {
  return new Set(readdirSync("/proc/self/fd"));
}

/**
 * fds open now that were not open at `before`: a leak. bun test runs every file in one
 * process, so fds of other files' child processes may close meanwhile; only new ones count.
 */
export function newFds(before: Set<string>): string[] {
  return [...openFds()].filter((fd) => !before.has(fd));
}

/** Inside the ktls-vm guest, started by scripts/vm-test.sh. */
export const IN_VM = process.env.URING_SYNC_IN_VM === "1";
