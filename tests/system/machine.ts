/**
 * What the machine running the tests should have, decided without the code under test,
 * so tests can check doctor and src/net/ktls.ts against it. Here (kernel 6.18 without
 * CONFIG_TLS) kernelHasTls() is false; in the ktls-vm guest (tls.ko loaded) it is true.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

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
  // readdir's own descriptor on /proc/self/fd is listed too, and closed right after: drop it,
  // or a socket that later reuses that number would not look new.
  return new Set(readdirSync("/proc/self/fd").filter((fd) => {
    try {
      readlinkSync(`/proc/self/fd/${fd}`);
      return true;
    } catch {
      return false;
    }
  }));
}

/**
 * fds open now that were not open at `before`: a leak. bun test runs every file in one
 * process, so fds of other files' child processes may close meanwhile; only new ones count.
 */
export function newFds(before: Set<string>): string[] {
  return [...openFds()].filter((fd) => !before.has(fd));
}

/**
 * New fds of the kinds doctor opens (sockets and io_uring instances), with what they point
 * to. Bun itself may open a pipe or eventfd meanwhile (a child of another test file ending);
 * those are not ours and not counted.
 */
export function newSocketOrRingFds(before: Set<string>): string[] {
  const out: string[] = [];
  for (const fd of newFds(before)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (target.startsWith("socket:") || target.includes("io_uring")) out.push(`${fd} -> ${target}`);
  }
  return out;
}

/** Inside the ktls-vm guest, started by scripts/vm-test.sh. */
export const IN_VM = process.env.URING_SYNC_IN_VM === "1";
