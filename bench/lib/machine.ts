// bench/lib/machine.ts — owns the description of the machine and tool versions recorded
// next to every benchmark result (nproc, CPU model, kernel, memory, versions of cp,
// rsync, tar, ssh, bun), the load at measurement time, and the exact command line.

import { availableParallelism, totalmem } from "node:os";
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { tryRunSync } from "./run.ts";

export interface MachineInfo {
  nproc: number;
  cpu: string;
  kernel: string;
  memGiB: number;
}

export function machineInfo(): MachineInfo {
  let cpu = "unknown CPU";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) cpu = m[1].trim();
  } catch {
    // keep the default
  }
  const nprocOut = tryRunSync(["nproc"]);
  const nproc = nprocOut !== undefined ? Number.parseInt(nprocOut.trim(), 10) : availableParallelism();
  const kernel = (tryRunSync(["uname", "-r"]) ?? "unknown").trim();
  return { nproc, cpu, kernel, memGiB: Math.round(totalmem() / 2 ** 30) };
}

/** 1-minute load average (our own runs contribute to it too). */
export function loadAvg(): number {
  try {
    return Number.parseFloat(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}

/** Other processes using the CPU right now (top 3 by %CPU, excluding ours), for noisy-run warnings. */
export function busyProcesses(): string[] {
  const out = tryRunSync(["ps", "-eo", "pid,ppid,pcpu,comm", "--sort=-pcpu", "--no-headers"]) ?? "";
  const mine = String(process.pid);
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && f[0] !== mine && f[1] !== mine && Number.parseFloat(f[2]) >= 20)
    .slice(0, 3)
    .map((f) => `${f[3]} (${f[2]}% CPU)`);
}

export function formatMachine(m: MachineInfo): string {
  return `${m.nproc} CPUs (nproc), ${m.cpu}, Linux ${m.kernel}, ${m.memGiB} GiB RAM`;
}

function firstLine(argv: readonly string[], stderr = false): string {
  const r = Bun.spawnSync([...argv], { stdout: "pipe", stderr: "pipe" });
  const text = (stderr ? r.stderr : r.stdout).toString().trim();
  return text.split("\n")[0] ?? "";
}

/** Versions of the competitors, one short string each. */
export function toolVersions(which: readonly ("cp" | "rsync" | "tar" | "ssh")[]): string {
  const parts: string[] = [];
  for (const w of which) {
    if (w === "cp") parts.push(firstLine(["cp", "--version"]));
    if (w === "rsync") parts.push(firstLine(["rsync", "--version"]).replace(/\s+/g, " "));
    if (w === "tar") parts.push(firstLine(["tar", "--version"]));
    if (w === "ssh") parts.push(firstLine(["ssh", "-V"], true));
  }
  parts.push(`bun ${Bun.version}`);
  return parts.join("; ");
}

/** The command line that was run, relative to the repository root where possible. */
export function commandLine(repoRoot: string): string {
  const args = process.argv.slice(1).map((a) => (a.startsWith(repoRoot) ? relative(repoRoot, a) : a));
  return ["bun", ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}
