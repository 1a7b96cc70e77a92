// bench/lib/harness.ts — owns the measurement protocol shared by copy.ts and net.ts:
// round-robin alternation of the tools (the start rotates, every other round backwards), untimed
// destination clean-up and cache preparation before every run, completeness verification
// after each tool's first run, the skip-with-a-note rule for optional tools (uring-sync)
// versus abort-on-failure for competitors, and the per-data-set markdown table. For re-run
// benchmarks (keepDst) each tool's destination is filled once by its own untimed run and
// then kept, verified after every run, with optional untimed steps before and checks after
// each run (e.g. changing 1% of the files).

import { existsSync, mkdirSync, openSync, readSync, closeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DatasetName } from "./datasets.ts";
import { busyProcesses, loadAvg } from "./machine.ts";
import type { BenchFs } from "./mount.ts";
import type { SetReport } from "./report.ts";
import { trim } from "./mount.ts";
import { failureNote, interrupted, ok, prepareCache, removeTree, type CacheMode, type RunResult } from "./run.ts";
import { formatRatio, formatSeconds, formatTarget, markdownTable, ratio, summarize } from "./stats.ts";
import { formatStats, treeStats, verifyCopy, type TreeStats } from "./verify.ts";

export interface Tool {
  /** Stable key; also the name of the tool's destination directory. */
  id: string;
  /** Row label in the table. */
  label: string;
  /** The command as shown in the results (SRC/DST placeholders). */
  display: string;
  /** An optional tool is skipped with a note when it fails; a competitor's failure aborts. */
  optional: boolean;
  /** Untimed preparation of the destination (e.g. mkdir for tar -C DST). */
  prepare?: (dst: string) => void;
  /** The timed run. */
  run: (src: string, dst: string) => Promise<RunResult>;
}

export interface ToolOutcome {
  tool: Tool;
  /** Wall seconds of each successful run, in run order. */
  samples: number[];
  /** Set when the tool was dropped; the reason is shown in the table. */
  skipped?: string;
}

export interface RoundsOptions {
  title: string;
  tools: readonly Tool[];
  src: string;
  /** Parent of the per-tool destinations; must be on the benchmark file system. */
  dstRoot: string;
  runs: number;
  /** Untimed rounds before the timed ones (the first copies into a fresh file system are slower). */
  warmup: number;
  mode: CacheMode;
  expected: TreeStats;
  fs: BenchFs;
  /** fstrim after every this many rounds (ext4 only); 0 disables. */
  trimEvery: number;
  log: (msg: string) => void;
  /**
   * Re-run mode: each tool's destination is filled once by an untimed run of the tool itself
   * (verified), then kept between runs (every run is verified) and removed at the end.
   */
  keepDst?: boolean;
  /** Untimed, before each warm-up or timed run (after the destination is in place, before the cache preparation). */
  beforeRun?: (tool: Tool, dst: string, round: number) => void;
  /** Extra check after each successful run; a string is the reason the run is a failure. */
  afterRun?: (tool: Tool, dst: string, round: number) => string | undefined;
}

export class CompetitorFailure extends Error {}
export class Interrupted extends Error {}

/** Reads every file once so a warm run starts with the source in the page cache. */
export function primeCache(src: string): void {
  const files: string[] = [];
  treeStats(src, files);
  const buf = new Uint8Array(1 << 20);
  for (const rel of files) {
    const fd = openSync(join(src, rel), "r");
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0) {
        // discard
      }
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * The k-th tool to run in a round. The start rotates each round and every other round runs
 * backwards, so no tool always follows the same one: a tool that leaves dirty page cache or
 * fragmented memory behind (tar | tar did, measured) would otherwise always slow down the
 * same successor.
 */
export function roundOrder(round: number, k: number, n: number): number {
  const start = Math.floor(round / 2) % n;
  return round % 2 === 0 ? (start + k) % n : (start + n - k) % n;
}

/**
 * Runs every tool `warmup` times untimed, then `runs` timed rounds, alternating tools run
 * by run (the start rotates each round). Each tool's first copy (warm-up or timed) is
 * verified; with keepDst, every run is (after an untimed initial fill, see RoundsOptions).
 */
export async function runRounds(o: RoundsOptions): Promise<ToolOutcome[]> {
  const dstRoot = resolve(o.dstRoot);
  mkdirSync(dstRoot, { recursive: true });
  const outcomes: ToolOutcome[] = o.tools.map((tool) => ({ tool, samples: [] }));
  const verified = new Set<ToolOutcome>();
  const n = outcomes.length;
  const keep = o.keepDst === true;
  const dstOf = (out: ToolOutcome): string => join(dstRoot, out.tool.id);

  /** One run of one tool; false when it failed (and the tool is now skipped). */
  const attempt = async (out: ToolOutcome, round: number, tag: string, timed: boolean, fill: boolean): Promise<boolean> => {
    const dst = dstOf(out);
    if (!keep || fill) {
      if (existsSync(dst)) removeTree(dst);
      out.tool.prepare?.(dst);
    }
    if (!fill) o.beforeRun?.(out.tool, dst, round);
    prepareCache(o.mode);
    if (interrupted() !== undefined) throw new Interrupted(`interrupted by ${interrupted()}`);
    const r = await out.tool.run(o.src, dst);
    if (interrupted() !== undefined) throw new Interrupted(`interrupted by ${interrupted()}`);
    let problem: string | undefined;
    if (!ok(r)) problem = failureNote(r);
    else if (keep || !verified.has(out)) problem = verifyCopy(o.src, dst, o.expected);
    if (problem === undefined && !fill) problem = o.afterRun?.(out.tool, dst, round);
    if (problem !== undefined) {
      const what = `${o.title} ${o.mode}: ${out.tool.label}${fill ? " (initial fill)" : ""} failed: ${problem}`;
      if (existsSync(dst)) removeTree(dst);
      if (!out.tool.optional) throw new CompetitorFailure(`${what}\n  command: ${r.argv.join(" ")}\n  stderr: ${r.stderr.trim()}`);
      o.log(`  ${what} -> skipped for the rest of this run`);
      out.skipped = problem;
      return false;
    }
    verified.add(out);
    if (timed) out.samples.push(r.seconds);
    o.log(`  [${o.title} ${o.mode} ${tag}] ${out.tool.label.padEnd(26)} ${r.seconds.toFixed(3)} s${timed ? "" : " (untimed)"}`);
    if (!keep) removeTree(dst);
    return true;
  };

  if (o.mode === "warm") primeCache(o.src);
  if (keep) {
    for (const out of outcomes) await attempt(out, -1, "initial fill", false, true);
    if (o.trimEvery > 0) trim(o.fs);
  }
  const total = o.warmup + o.runs;
  for (let round = 0; round < total; round++) {
    const warmup = round < o.warmup;
    const tag = warmup ? `warm-up ${round + 1}/${o.warmup}` : `${round - o.warmup + 1}/${o.runs}`;
    for (let k = 0; k < n; k++) {
      const out = outcomes[roundOrder(round, k, n)];
      if (out.skipped !== undefined) continue;
      await attempt(out, round, tag, !warmup, false);
    }
    if (o.trimEvery > 0 && (round + 1) % o.trimEvery === 0) trim(o.fs);
  }
  if (keep) for (const out of outcomes) if (existsSync(dstOf(out))) removeTree(dstOf(out));
  trim(o.fs);
  return outcomes;
}

function cell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}


/**
 * One data set in one cache mode, as copy.ts and net.ts report it: a warning when other
 * processes load the machine, every tool over the rounds (runRounds), the table that
 * `render` makes of the outcomes, and the load average before and after.
 */
export async function measureSet(set: DatasetName, o: RoundsOptions, render: (outcomes: ToolOutcome[]) => string): Promise<SetReport> {
  const startedAt = new Date().toISOString();
  const loadBefore = loadAvg();
  const busy = busyProcesses();
  if (busy.length > 0) o.log(`warning: the machine is busy (${busy.join(", ")}); expect noise`);
  const t0 = performance.now();
  o.log(`${set} ${o.mode}: ${o.tools.map((t) => t.label).join(", ")}; ${o.runs} runs each`);
  const outcomes = await runRounds(o);
  const table = render(outcomes);
  const seconds = (performance.now() - t0) / 1000;
  return { set, mode: o.mode, stats: o.expected, outcomes, table, startedAt, seconds, loadBefore, loadAfter: loadAvg() };
}
/** One markdown table: tool, runs, median, min, max, ratio to the baseline, and a target column. */
export function renderTable(
  outcomes: readonly ToolOutcome[],
  baselineId: string,
  baselineLabel: string,
  targetFor: (tool: Tool) => number | undefined,
): string {
  const base = outcomes.find((o) => o.tool.id === baselineId && o.skipped === undefined && o.samples.length > 0);
  const baseMedian = base !== undefined ? summarize(base.samples).median : undefined;
  const anyTarget = outcomes.some((o) => targetFor(o.tool) !== undefined);
  const header = ["tool", "runs", "median s", "min s", "max s", `ratio to ${baselineLabel}`];
  if (anyTarget) header.push("target");
  const rows = outcomes.map((o) => {
    const t = targetFor(o.tool);
    if (o.skipped !== undefined || o.samples.length === 0) {
      const row = [cell(o.tool.label), String(o.samples.length), `skipped: ${cell(o.skipped ?? "no runs")}`, "", "", ""];
      if (anyTarget) row.push(t === undefined ? "" : formatTarget(Number.NaN, t));
      return row;
    }
    const s = summarize(o.samples);
    const r = ratio(s.median, baseMedian);
    const row = [cell(o.tool.label), String(s.n), formatSeconds(s.median), formatSeconds(s.min), formatSeconds(s.max), formatRatio(r)];
    if (anyTarget) row.push(formatTarget(r, t));
    return row;
  });
  return markdownTable(header, rows);
}

/** The commands behind the table rows, as a markdown list. */
export function renderCommands(tools: readonly Tool[]): string {
  return tools.map((t) => `- ${t.label}: \`${t.display}\``).join("\n");
}

/** Counts the source once and, if the marker recorded counts, checks they still match. */
export function expectedStats(src: string, marker?: { files: number; dirs: number; bytes: number }): TreeStats {
  const st = treeStats(src);
  if (marker !== undefined && (st.files !== marker.files || st.dirs !== marker.dirs || st.bytes !== marker.bytes)) {
    throw new Error(
      `data set ${src} does not match its marker (${formatStats(st)} vs ${marker.files} files, ${marker.dirs} dirs, ${marker.bytes} bytes); regenerate it with --regen`,
    );
  }
  return st;
}
