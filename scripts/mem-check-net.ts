#!/usr/bin/env bun
/**
 * Memory check for the network transfer (issue 5, "Scale"): sending or receiving
 * 1,000,000 small files keeps each side's peak RSS under 300 MB.
 *
 * What it does: builds SRC (1,000 directories x 1,000 files, every 10th file 100 bytes,
 * the rest empty) on a private tmpfs (default) or in a work directory on the journaled
 * ext4 bench mount (`--fs ext4`); never on the root file system (FIELD_NOTES section 3).
 * Starts `uring-sync recv DST --listen 127.0.0.1:PORT --json --quiet`, waits until it
 * listens, runs `uring-sync send SRC 127.0.0.1:PORT --json --quiet`, and measures each
 * process's peak resident set separately: ru_maxrss (GNU time) and VmHWM sampled from
 * /proc/PID/status while it runs (scripts/lib/mem-check.ts). The secret is random, in
 * URING_SYNC_SECRET. The program is $URING_SYNC_BIN (e.g. dist/uring-sync) else
 * `bun src/cli/main.ts`. Not a timed test: times are printed for information only.
 * Exits 0 when both ends exit 0, both report all files, and each peak is under the limit;
 * 1 otherwise.
 *
 * --dst says what DST holds before: `empty` (the default: it does not exist), `copy` (an
 * up-to-date copy made with the local `uring-sync SRC DST`: nothing is sent, the receiver
 * only agrees; the common re-run) or `stale` (the same names and sizes with other mtimes:
 * every file is agreed on and sent again into existing directories). --delete runs
 * `send --delete` and first adds to DST (with `empty`: to the tree's directories) extra
 * entries the pass must remove (one extra file in every directory, an extra directory
 * inside d0000 and one at the top, each with files in it); afterwards it checks that
 * exactly the extras were reported deleted and are gone and that the tree is intact
 * (every directory holds exactly its files, each of the right size).
 *
 *   bun scripts/mem-check-net.ts [--files N] [--limit-mb 300] [--fs tmpfs|ext4] [--port 7450]
 *                                [--dst empty|copy|stale] [--delete] [--extra "FLAGS"]
 *                                [--send-extra "FLAGS"] [--keep]
 *                                [--record [--results PATH]]
 *
 * --extra adds flags to both ends (e.g. "--plaintext"), --send-extra to the sender only
 * (e.g. "-j 4"). --record writes the result as an entry of the "memory" section of
 * bench/RESULTS.md (bench/lib/results.ts markers; an entry with the same file count, file
 * system, DST state and flags is replaced).
 * Needs root (mount).
 */
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isListening } from "../bench/lib/servers.ts";
import { commandLine, formatMachine, loadAvg, machineInfo } from "../bench/lib/machine.ts";
import { updateSection } from "../bench/lib/results.ts";
import { buildSmallFileTree, formatPeak, option, PER_DIR, REPO, requireRoot, runMeasured, uringCommand, workspace, type Measured } from "./lib/mem-check.ts";

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log("Usage: bun scripts/mem-check-net.ts [--files N] [--limit-mb 300] [--fs tmpfs|ext4] [--port 7450] [--dst empty|copy|stale] [--delete] [--extra FLAGS] [--send-extra FLAGS] [--keep] [--timeout SEC] [--record [--results PATH]]");
  process.exit(0);
}
const FILES = Number(option(args, "--files", "1000000"));
const LIMIT_MB = Number(option(args, "--limit-mb", "300"));
const PORT = Number(option(args, "--port", "7450"));
const TIMEOUT_S = Number(option(args, "--timeout", "3600"));
const EXTRA = option(args, "--extra", "").trim().split(/\s+/).filter((w) => w.length > 0);
const SEND_EXTRA = option(args, "--send-extra", "").trim().split(/\s+/).filter((w) => w.length > 0);
/** Flags as they are shown and keyed: both ends', then the sender's own. */
const ALL_EXTRA = [...EXTRA, ...SEND_EXTRA];
const KEEP = args.includes("--keep");
const RECORD = args.includes("--record");
const RESULTS = option(args, "--results", join(REPO, "bench", "RESULTS.md"));
const FS_KIND = option(args, "--fs", "tmpfs");
const DST_STATE = option(args, "--dst", "empty");
const DELETE = args.includes("--delete");
if (DST_STATE !== "empty" && DST_STATE !== "copy" && DST_STATE !== "stale") throw new Error("--dst expects empty, copy or stale");
const DST_TEXT = DST_STATE === "copy" ? "an up-to-date copy" : DST_STATE === "stale" ? "the same names and sizes, other mtimes" : DELETE ? "the tree's directories, no files" : "empty";
if (!Number.isInteger(FILES) || FILES < 1) throw new Error("--files expects a positive integer");
if (!Number.isInteger(PORT) || PORT < 1 || PORT > 65535) throw new Error("--port expects 1..65535");

requireRoot("mem-check-net", "it mounts a tmpfs");
if (isListening(PORT)) {
  console.error(`mem-check-net: port ${PORT} is in use; pick another with --port`);
  process.exit(2);
}

/** A number field of a --json document, or -1 (with the output shown) if it is missing. */
function jsonCount(what: string, m: Measured, key: string): number {
  try {
    const v = (JSON.parse(m.stdout) as Record<string, unknown>)[key];
    if (typeof v === "number") return v;
  } catch {
    // reported below
  }
  console.error(`${what}: no numeric "${key}" in its --json output:\n${m.stdout}\n${m.stderr}`);
  return -1;
}

/**
 * --delete: extra entries in DST that the pass must remove. One file in every directory of
 * the tree, a directory with files inside d0000, a directory with a subdirectory at the top.
 * Returns how many DELETED reports that makes (a removed directory is one entry).
 */
function addExtras(dst: string, dirs: number): number {
  for (let d = 0; d < dirs; d++) writeFileSync(join(dst, dirName(d), "extra"), "not in SRC\n");
  mkdirSync(join(dst, dirName(0), "extra-dir"));
  for (let i = 0; i < 10; i++) writeFileSync(join(dst, dirName(0), "extra-dir", `e${i}`), "x");
  mkdirSync(join(dst, "extra-top", "sub"), { recursive: true });
  for (let i = 0; i < 100; i++) writeFileSync(join(dst, "extra-top", "sub", `e${i}`), "x");
  return dirs + 2;
}

function dirName(d: number): string {
  return `d${String(d).padStart(4, "0")}`;
}

/** --delete: what is wrong with DST afterwards (extras left, tree files missing or wrong). */
function checkTree(dst: string, files: number): string[] {
  const problems: string[] = [];
  const dirs = Math.ceil(files / PER_DIR);
  const top = readdirSync(dst).sort();
  const wantTop = Array.from({ length: dirs }, (_, d) => dirName(d));
  if (existsSync(join(dst, "extra-top"))) problems.push("extra-top was not deleted");
  if (top.length !== wantTop.length || top.some((n, i) => n !== wantTop[i])) problems.push(`DST top level holds ${top.length} entries, expected the ${dirs} tree directories`);
  let bad = 0;
  for (let d = 0; d < dirs; d++) {
    const dir = join(dst, dirName(d));
    const n = Math.min(PER_DIR, files - d * PER_DIR);
    const names = readdirSync(dir);
    if (names.length !== n) problems.push(`${dirName(d)} holds ${names.length} entries, expected ${n}${names.includes("extra") ? " (its extra file is still there)" : ""}`);
    for (let f = 0; f < n; f++) {
      try {
        const st = lstatSync(join(dir, `f${f}`));
        if (!st.isFile() || st.size !== (f % 10 === 0 ? 100 : 0)) bad++;
      } catch {
        bad++;
      }
    }
  }
  if (bad > 0) problems.push(`${bad} tree files missing or of the wrong kind or size`);
  return problems;
}

/** What one end's --json says it did. */
interface Counts {
  /** Files sent (send) or received (recv). */
  moved: number;
  unchanged: number;
  deleted: number;
}

function counts(what: string, m: Measured, movedKey: string): Counts {
  return { moved: jsonCount(what, m, movedKey), unchanged: jsonCount(what, m, "filesUnchanged"), deleted: jsonCount(what, m, "filesDeleted") };
}

const n = (x: number): string => x.toLocaleString("en-US");

/** One entry of the memory section of RESULTS.md. */
function record(o: {
  send: Measured;
  recv: Measured;
  sent: Counts;
  received: Counts;
  problems: string[];
  built: number;
  prepared: number;
  fsDescription: string;
  loadBefore: number;
  bin: string[];
  extras: number;
}): void {
  const mb = (kb: number): string => (kb / 1024).toFixed(1);
  const dstText = DST_STATE === "empty" && !DELETE ? "" : `; DST: ${DST_TEXT}${DELETE ? `, + ${n(o.extras)} extra entries` : ""}`;
  const flags = `${DELETE ? " --delete" : ""}${ALL_EXTRA.length ? ` ${ALL_EXTRA.join(" ")}` : ""}${dstText}`;
  const row = (side: string, m: Measured, c: Counts): string =>
    `| ${side} | ${m.code} | ${DST_STATE === "empty" && !DELETE ? n(c.moved) : `${n(c.moved)} moved, ${n(c.unchanged)} unchanged, ${n(c.deleted)} deleted`} | ${mb(m.maxrssKb)} | ${mb(m.hwmKb)} | ${m.peakMb < LIMIT_MB ? `< ${LIMIT_MB} (met)` : `< ${LIMIT_MB} (MISSED)`} |`;
  const body = [
    `### send/recv of ${FILES.toLocaleString("en-US")} small files, ${FS_KIND}${flags}`,
    "",
    `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; file system: ${o.fsDescription}; machine: ${formatMachine(machineInfo())}; load average (1 min) ${o.loadBefore.toFixed(2)} before, ${loadAvg().toFixed(2)} after.`,
    `Command: \`${commandLine(REPO)}\`; program: \`${o.bin.map((a) => a.replace(`${REPO}/`, "")).join(" ")}\`; tree: ${Math.ceil(FILES / PER_DIR)} directories x ${PER_DIR} files, every 10th file 100 bytes, the rest empty (built in ${o.built.toFixed(0)} s${o.prepared === 0 ? "" : `, DST prepared in ${o.prepared.toFixed(0)} s`}); send took ${o.send.seconds.toFixed(1)} s (for information, not a benchmark). Verdict: ${o.problems.length === 0 ? "OK" : `FAILED (${o.problems.join("; ")})`}.`,
    "",
    "| side | exit | files | peak RSS MB (ru_maxrss) | peak RSS MB (VmHWM sampled) | limit MB |",
    "|---|---|---|---|---|---|",
    row("send", o.send, o.sent),
    row("recv", o.recv, o.received),
  ].join("\n");
  const header = [
    "## Memory (scripts/mem-check-net.ts)",
    "",
    "Peak resident set of each end of a network transfer of many small files (issue 5: under 300 MB each for 1,000,000 files).",
    "Measured, not timed: ru_maxrss of each process (GNU time) and its VmHWM sampled every 20 ms from /proc/PID/status; both ends on this machine over 127.0.0.1.",
  ].join("\n");
  updateSection(RESULTS, "memory", header, [{ key: `net:${FILES}:${FS_KIND}${DST_STATE === "empty" ? "" : `:dst-${DST_STATE}`}${DELETE ? ":delete" : ""}${ALL_EXTRA.length ? `:${ALL_EXTRA.join("_")}` : ""}`, rank: 0, body }]);
}

const ws = workspace(FS_KIND, "uring-sync-memcheck-net");
try {
  const src = join(ws.dir, "src");
  const dst = join(ws.dir, "dst");
  const built = buildSmallFileTree(src, FILES);
  console.log(`built ${FILES.toLocaleString("en-US")} files in ${Math.ceil(FILES / PER_DIR)} directories on ${ws.description} in ${built.toFixed(1)} s`);

  const bin = uringCommand();
  let prepared = 0;
  let extras = 0;
  if (DST_STATE !== "empty" || DELETE) {
    const t0 = performance.now();
    if (DST_STATE === "copy") {
      const c = spawnSync(bin[0], [...bin.slice(1), "copy", src, dst, "--quiet"], { stdio: ["ignore", "ignore", "pipe"] });
      if (c.status !== 0) throw new Error(`the local copy SRC -> DST failed (exit ${c.status}): ${String(c.stderr).trim()}`);
    } else if (DST_STATE === "stale") {
      buildSmallFileTree(dst, FILES);
    } else {
      // Empty with --delete: the tree's directories without files, for the extras to be in.
      for (let d = 0; d * PER_DIR < FILES; d++) mkdirSync(join(dst, dirName(d)), { recursive: true });
    }
    if (DELETE) extras = addExtras(dst, Math.ceil(FILES / PER_DIR));
    prepared = (performance.now() - t0) / 1000;
    console.log(`prepared DST (${DST_TEXT}${DELETE ? ` + ${n(extras)} extra entries` : ""}) in ${prepared.toFixed(1)} s`);
  }
  const loadBefore = loadAvg();
  const env = { URING_SYNC_SECRET: randomBytes(16).toString("hex") };
  const recv = runMeasured([...bin, "recv", dst, "--listen", `127.0.0.1:${PORT}`, "--json", "--quiet", ...EXTRA], env);
  let recvExited = false;
  void recv.done.then(() => (recvExited = true));
  const deadline = performance.now() + 60_000;
  while (!isListening(PORT)) {
    if (recvExited || performance.now() > deadline) {
      recv.kill("SIGKILL");
      const r = await recv.done;
      throw new Error(`the receiver did not start listening on 127.0.0.1:${PORT} (exit ${r.code}): ${r.stderr.trim()}`);
    }
    await Bun.sleep(10);
  }
  const send = runMeasured([...bin, "send", src, `127.0.0.1:${PORT}`, "--json", "--quiet", ...(DELETE ? ["--delete"] : []), ...EXTRA, ...SEND_EXTRA], env);
  const timer = setTimeout(() => {
    console.error(`mem-check-net: still running after ${TIMEOUT_S} s; killing both ends`);
    send.kill("SIGKILL");
    recv.kill("SIGKILL");
  }, TIMEOUT_S * 1000);
  const s = await send.done;
  // A receiver whose sender failed may wait for its idle timeout: do not wait for that.
  if (s.code !== 0) setTimeout(() => recv.kill("SIGTERM"), 5000).unref();
  const r = await recv.done;
  clearTimeout(timer);

  const sent = counts("send", s, "filesSent");
  const received = counts("recv", r, "filesReceived");
  const mode = DELETE ? " --delete" : "";
  console.log(`command: ${bin.join(" ")} {recv,send}${EXTRA.length ? ` ${EXTRA.join(" ")}` : ""}; send${mode}${SEND_EXTRA.length ? ` ${SEND_EXTRA.join(" ")}` : ""}`);
  console.log(`send: exit ${s.code}, ${n(sent.moved)} files sent, ${n(sent.unchanged)} unchanged, ${n(sent.deleted)} deleted in ${s.seconds.toFixed(1)} s`);
  console.log(`recv: exit ${r.code}, ${n(received.moved)} files received, ${n(received.unchanged)} unchanged, ${n(received.deleted)} deleted (${r.seconds.toFixed(1)} s incl. waiting for the sender)`);
  console.log(formatPeak("send", s, LIMIT_MB));
  console.log(formatPeak("recv", r, LIMIT_MB));
  const problems: string[] = [];
  if (s.code !== 0) problems.push(`send exit ${s.code}: ${s.stderr.trim().split("\n").slice(-2).join(" / ")}`);
  if (r.code !== 0) problems.push(`recv exit ${r.code}: ${r.stderr.trim().split("\n").slice(-2).join(" / ")}`);
  // Into an empty or stale DST every file moves; into an up-to-date copy, none.
  const moved = DST_STATE === "copy" ? 0 : FILES;
  for (const [side, c] of [["send", sent], ["recv", received]] as const) {
    if (c.moved !== moved || c.unchanged !== FILES - moved) problems.push(`${side} reports ${c.moved} files moved and ${c.unchanged} unchanged, expected ${moved} and ${FILES - moved}`);
    if (c.deleted !== extras) problems.push(`${side} reports ${c.deleted} entries deleted, expected ${extras}`);
  }
  if (s.peakMb >= LIMIT_MB) problems.push(`send peak ${s.peakMb.toFixed(1)} MB >= ${LIMIT_MB} MB`);
  if (r.peakMb >= LIMIT_MB) problems.push(`recv peak ${r.peakMb.toFixed(1)} MB >= ${LIMIT_MB} MB`);
  if (DELETE && r.code === 0) {
    const t0 = performance.now();
    problems.push(...checkTree(dst, FILES));
    console.log(`checked DST (extras gone, tree intact) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  for (const p of problems) console.log(`problem: ${p}`);
  console.log(problems.length === 0 ? "OK" : "FAILED");
  if (RECORD) {
    record({ send: s, recv: r, sent, received, problems, built, prepared, extras, fsDescription: ws.description, loadBefore, bin });
    console.log(`recorded in the memory section of ${RESULTS}`);
  }
  ws.cleanup(KEEP);
  process.exit(problems.length === 0 ? 0 : 1);
} catch (e) {
  console.error(`mem-check-net: ${e instanceof Error ? e.message : String(e)}`);
  ws.cleanup(KEEP);
  process.exit(1);
}
