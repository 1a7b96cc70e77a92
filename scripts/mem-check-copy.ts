#!/usr/bin/env bun
/**
 * Memory check for the local copy (issue 3): a 1,000,000-file tree of empty and tiny
 * files copies with a peak RSS under 300 MB.
 *
 * What it does: mounts a tmpfs (never the root file system: FIELD_NOTES section 3; or
 * `--fs ext4` for a work directory on the journaled ext4 bench mount), builds SRC there
 * (1,000 directories x 1,000 files, every 10th file 100 bytes, the rest empty), runs the
 * CLI on it (`uring-sync SRC DST --quiet --json`, the compiled binary when URING_SYNC_BIN
 * is set), and measures the peak resident set of the whole process: the kernel's
 * ru_maxrss from wait4 (via GNU time) and VmHWM from /proc/PID/status, sampled while it
 * runs (scripts/lib/mem-check.ts). Workers are threads of that process, so both cover them.
 * Exits 0 when the peak is under the limit and every file arrived, 1 otherwise.
 *
 *   bun scripts/mem-check-copy.ts [--files N] [--limit-mb 300] [--fs tmpfs|ext4] [--keep]
 *
 * Needs root (mount). Takes about a minute.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildSmallFileTree, formatPeak, option, PER_DIR, requireRoot, runMeasured, uringCommand, workspace } from "./lib/mem-check.ts";

const args = process.argv.slice(2);
const FILES = Number(option(args, "--files", "1000000"));
const LIMIT_MB = Number(option(args, "--limit-mb", "300"));
const KEEP = args.includes("--keep");

requireRoot("mem-check-copy", "it mounts a tmpfs");

const ws = workspace(option(args, "--fs", "tmpfs"), "uring-sync-memcheck");
try {
  const src = join(ws.dir, "src");
  const dst = join(ws.dir, "dst");
  const built = buildSmallFileTree(src, FILES);
  console.log(`built ${FILES.toLocaleString("en-US")} files in ${Math.ceil(FILES / PER_DIR)} directories on ${ws.description} in ${built.toFixed(1)} s`);

  const r = await runMeasured([...uringCommand(), src, dst, "--quiet", "--json"]).done;
  let copied = -1;
  try {
    copied = Number((JSON.parse(r.stdout) as { filesCopied: number }).filesCopied);
  } catch {
    console.error(`no JSON summary from the copy:\n${r.stdout}\n${r.stderr}`);
  }
  console.log(`copy: exit ${r.code}, ${copied.toLocaleString("en-US")} files copied in ${r.seconds.toFixed(1)} s`);
  console.log(formatPeak("", r, LIMIT_MB));
  const ok = r.code === 0 && copied === FILES && r.peakMb < LIMIT_MB && existsSync(dst);
  console.log(ok ? "OK" : "FAILED");
  ws.cleanup(KEEP);
  process.exit(ok ? 0 : 1);
} catch (e) {
  console.error(e);
  ws.cleanup(KEEP);
  process.exit(1);
}
