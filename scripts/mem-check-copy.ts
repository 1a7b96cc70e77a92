#!/usr/bin/env bun
/**
 * Memory check for the local copy (issue 3): a 1,000,000-file tree of empty and tiny
 * files copies with a peak RSS under 300 MB.
 *
 * What it does: mounts a tmpfs (never the root file system: FIELD_NOTES section 3), builds
 * SRC there (1,000 directories x 1,000 files, every 10th file 100 bytes, the rest empty),
 * runs the CLI on it (`uring-sync SRC DST --quiet --json`, the compiled binary when
 * URING_SYNC_BIN is set), and measures the peak resident set of the whole process: the
 * kernel's ru_maxrss from wait4 (via GNU time) and VmHWM from /proc/PID/status, sampled
 * while it runs. Workers are threads of that process, so both cover them.
 * Exits 0 when the peak is under the limit and every file arrived, 1 otherwise.
 *
 *   bun scripts/mem-check-copy.ts [--files N] [--limit-mb 300] [--keep]
 *
 * Needs root (mount). Takes about a minute.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { dlopen } from "bun:ffi";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const FILES = Number(opt("--files", "1000000"));
const LIMIT_MB = Number(opt("--limit-mb", "300"));
const KEEP = args.includes("--keep");
const PER_DIR = 1000;
const REPO = resolve(import.meta.dir, "..");

if (process.getuid?.() !== 0) {
  console.error("mem-check-copy: needs root (it mounts a tmpfs)");
  process.exit(2);
}

const mnt = mkdtempSync("/tmp/uring-sync-memcheck-");
const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=6G,nr_inodes=3000000,mode=0755", "tmpfs", mnt]);
if (mount.status !== 0) {
  console.error(`mount -t tmpfs failed: ${mount.stderr}`);
  process.exit(2);
}

function cleanup(): void {
  if (KEEP) {
    console.log(`kept ${mnt} mounted (umount it when done)`);
    return;
  }
  spawnSync("umount", [mnt]);
  rmSync(mnt, { recursive: true, force: true });
}

try {
  const src = join(mnt, "src");
  const dst = join(mnt, "dst");
  // Build SRC with plain system calls: Node's fs would take minutes for a million files.
  const libc = dlopen("libc.so.6", {
    openat: { args: ["i32", "ptr", "i32", "u32"], returns: "i32" },
    write: { args: ["i32", "ptr", "u64"], returns: "i64" },
    close: { args: ["i32"], returns: "i32" },
    open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  }).symbols;
  const t0 = performance.now();
  const tiny = Buffer.alloc(100, 0x61);
  for (let d = 0; d * PER_DIR < FILES; d++) {
    const dir = join(src, `d${String(d).padStart(4, "0")}`);
    mkdirSync(dir, { recursive: true });
    const dfd = libc.open(Buffer.from(`${dir}\0`), 0o200000, 0);
    for (let f = 0; f < PER_DIR && d * PER_DIR + f < FILES; f++) {
      const fd = libc.openat(dfd, Buffer.from(`f${f}\0`), 0o1101 /* O_WRONLY|O_CREAT|O_TRUNC */, 0o644);
      if (fd < 0) throw new Error(`creating ${dir}/f${f} failed`);
      if (f % 10 === 0) libc.write(fd, tiny, tiny.length);
      libc.close(fd);
    }
    libc.close(dfd);
  }
  console.log(`built ${FILES.toLocaleString("en-US")} files in ${Math.ceil(FILES / PER_DIR)} directories on tmpfs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const bin = process.env.URING_SYNC_BIN?.trim().split(/\s+/) ?? [process.execPath, join(REPO, "src/cli/main.ts")];
  const argv = ["/usr/bin/time", "-f", "MAXRSS_KB=%M", ...bin, src, dst, "--quiet", "--json"];
  const started = performance.now();
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  // The copier is time's child: sample its VmHWM (and its threads' via the process).
  let hwmKb = 0;
  const sampler = setInterval(() => {
    try {
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      for (const k of kids) {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${k}/status`, "utf8"));
        if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
      }
    } catch {
      // Not started yet, or already gone.
    }
  }, 20);
  const code: number = await new Promise((res) => child.on("exit", (c) => res(c ?? -1)));
  clearInterval(sampler);
  const seconds = (performance.now() - started) / 1000;
  const maxrss = Number(/MAXRSS_KB=(\d+)/.exec(err)?.[1] ?? "0");
  let copied = -1;
  try {
    copied = Number((JSON.parse(out) as { filesCopied: number }).filesCopied);
  } catch {
    console.error(`no JSON summary from the copy:\n${out}\n${err}`);
  }
  const peakMb = Math.max(maxrss, hwmKb) / 1024;
  console.log(`copy: exit ${code}, ${copied.toLocaleString("en-US")} files copied in ${seconds.toFixed(1)} s`);
  console.log(`peak RSS: ${(maxrss / 1024).toFixed(1)} MB (ru_maxrss), ${(hwmKb / 1024).toFixed(1)} MB (VmHWM sampled); limit ${LIMIT_MB} MB`);
  const ok = code === 0 && copied === FILES && peakMb < LIMIT_MB && existsSync(dst);
  console.log(ok ? "OK" : "FAILED");
  cleanup();
  process.exit(ok ? 0 : 1);
} catch (e) {
  console.error(e);
  cleanup();
  process.exit(1);
}
