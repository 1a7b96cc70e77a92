/**
 * scripts/lib/mem-check.ts — what the memory-check scripts (mem-check-copy.ts,
 * mem-check-net.ts) share: where the million-file tree lives (a private tmpfs, or a work
 * directory on the journaled ext4 bench mount; never the root file system, FIELD_NOTES
 * section 3), building that tree fast with plain system calls, and running a command while
 * measuring its peak resident set (ru_maxrss via GNU time, plus VmHWM sampled from
 * /proc/PID/status while it runs; workers are threads of the process, so both cover them).
 * Owns no verdict: the scripts decide what passes.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { E } from "../../ffi/errno.ts";
import { cstr, errno, libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/structs.ts";
import { SysError } from "../../src/errors.ts";
import { ensureExt4 } from "../../bench/lib/mount.ts";

export const REPO = resolve(import.meta.dir, "..", "..");

export function requireRoot(script: string, why: string): void {
  if (process.getuid?.() !== 0) {
    console.error(`${script}: needs root (${why})`);
    process.exit(2);
  }
}

/** A tiny argv reader: `--name value` or the default. */
export function option(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}

export interface Workspace {
  dir: string;
  description: string;
  /** Unmounts / removes everything (or, with keep, says what was left). */
  cleanup: (keep: boolean) => void;
}

/** A tmpfs mounted on a fresh /tmp directory, large enough for two million-file trees. */
export function privateTmpfs(prefix: string): Workspace {
  const mnt = mkdtempSync(`/tmp/${prefix}-`);
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=6G,nr_inodes=3000000,mode=0755", "tmpfs", mnt]);
  if (m.status !== 0) throw new Error(`mount -t tmpfs failed: ${m.stderr}`);
  return {
    dir: mnt,
    description: `tmpfs at ${mnt}`,
    cleanup: (keep) => {
      if (keep) {
        console.log(`kept ${mnt} mounted (umount it when done)`);
        return;
      }
      spawnSync("umount", [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    },
  };
}

/** A fresh work directory on the journaled ext4 bench mount (mounted first if needed). */
export function ext4Workspace(prefix: string): Workspace {
  const fs = ensureExt4();
  const dir = mkdtempSync(join(fs.dir, `${prefix}-`));
  return {
    dir,
    description: `${dir} on ${fs.description}`,
    cleanup: (keep) => {
      if (keep) {
        console.log(`kept ${dir}`);
        return;
      }
      spawnSync("rm", ["-rf", "--one-file-system", "--", dir]);
      spawnSync("fstrim", [fs.dir]);
    },
  };
}

/** `--fs tmpfs` (default) or `--fs ext4`. */
export function workspace(kind: string, prefix: string): Workspace {
  if (kind === "tmpfs") return privateTmpfs(prefix);
  if (kind === "ext4") return ext4Workspace(prefix);
  throw new Error(`--fs must be tmpfs or ext4, not ${JSON.stringify(kind)}`);
}

export const PER_DIR = 1000;

/**
 * Builds `files` files in directories of PER_DIR (d0000/f0 ...), every 10th file 100
 * bytes and the rest empty, with plain openat/write/close: Node's fs would take minutes
 * for a million files. Returns the seconds it took.
 */
export function buildSmallFileTree(src: string, files: number): number {
  const t0 = performance.now();
  const tiny = Buffer.alloc(100, 0x61);
  for (let d = 0; d * PER_DIR < files; d++) {
    const dir = join(src, `d${String(d).padStart(4, "0")}`);
    mkdirSync(dir, { recursive: true });
    const dfd = libc.open(cstr(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    if (dfd < 0) throw new SysError("open", errno(), dir);
    try {
      for (let f = 0; f < PER_DIR && d * PER_DIR + f < files; f++) {
        const fd = libc.openat(dfd, cstr(`f${f}`), O.WRONLY | O.CREAT | O.TRUNC | O.CLOEXEC, 0o644);
        if (fd < 0) throw new SysError("openat", errno(), `${dir}/f${f}`);
        const n = f % 10 === 0 ? Number(libc.write(fd, tiny, tiny.length)) : tiny.length;
        const e = n !== tiny.length ? errno() : 0;
        libc.close(fd);
        if (n !== tiny.length) throw new SysError("write", n < 0 ? e : E.EIO, `${dir}/f${f}`);
      }
    } finally {
      libc.close(dfd);
    }
  }
  return (performance.now() - t0) / 1000;
}

/** The uring-sync command: $URING_SYNC_BIN (split on spaces), else bun src/cli/main.ts. */
export function uringCommand(): string[] {
  return process.env.URING_SYNC_BIN?.trim().split(/\s+/) ?? [process.execPath, join(REPO, "src/cli/main.ts")];
}

export interface Measured {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
  /** ru_maxrss of the process (GNU time), kB. */
  maxrssKb: number;
  /** Highest VmHWM seen while sampling, kB. */
  hwmKb: number;
  /** max of the two, MB (2^20 bytes). */
  peakMb: number;
}

export interface MeasuredRun {
  /** Pid of the measured process (the child of GNU time), once it exists. */
  pid: () => number | undefined;
  /** Alive until `done` resolves. */
  kill: (sig: NodeJS.Signals) => void;
  done: Promise<Measured>;
}

/** Runs argv under GNU time and samples its VmHWM every 20 ms until it exits. */
export function runMeasured(argv: readonly string[], env?: Record<string, string>): MeasuredRun {
  const full = ["/usr/bin/time", "-f", "MAXRSS_KB=%M", ...argv];
  const started = performance.now();
  const child = spawn(full[0], full.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: env ? { ...process.env, ...env } : process.env });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  let measuredPid: number | undefined;
  let hwmKb = 0;
  const sampler = setInterval(() => {
    try {
      // The measured process is time's child.
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      for (const k of kids) {
        measuredPid ??= Number(k);
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${k}/status`, "utf8"));
        if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
      }
    } catch {
      // Not started yet, or already gone.
    }
  }, 20);
  const done = new Promise<Measured>((res) => {
    // "close": the process exited and its output pipes drained.
    child.on("close", (c) => {
      clearInterval(sampler);
      const maxrssKb = Number(/MAXRSS_KB=(\d+)/.exec(err)?.[1] ?? "0");
      res({
        code: c ?? -1,
        stdout: out,
        stderr: err.replace(/^MAXRSS_KB=\d+\n?/m, ""),
        seconds: (performance.now() - started) / 1000,
        maxrssKb,
        hwmKb,
        peakMb: Math.max(maxrssKb, hwmKb) / 1024,
      });
    });
  });
  return {
    pid: () => measuredPid,
    kill: (sig) => {
      if (measuredPid !== undefined) {
        try {
          process.kill(measuredPid, sig);
        } catch {
          // gone
        }
      }
      child.kill(sig);
    },
    done,
  };
}

export function formatPeak(what: string, m: Measured, limitMb: number): string {
  return `${what === "" ? "" : `${what} `}peak RSS: ${(m.maxrssKb / 1024).toFixed(1)} MB (ru_maxrss), ${(m.hwmKb / 1024).toFixed(1)} MB (VmHWM sampled); limit ${limitMb} MB`;
}
