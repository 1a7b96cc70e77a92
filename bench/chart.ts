// bench/chart.ts — renders the recorded figures of bench/RESULTS.md as SVG bar charts in
// bench/charts/: one chart per section (local copy, network, network sync scenarios) and
// cache mode and file system, one group of bars per data set (per scenario in net-sync),
// one bar per tool, bar = median wall time relative to the entry's baseline (cp -r for
// copies, rsync over ssh for the network, the scenario's own in net-sync), labelled with the
// ratio and the median seconds.
// The committed RESULTS.md is the only input (bench/out/ is git-ignored), and the output is
// deterministic, so tests/bench/chart.test.ts can check the committed charts still match it.
// Owns: what the bars mean, file names, and the directory's *.svg files (a chart whose
// figures vanished from RESULTS.md is deleted). Never edits RESULTS.md.
// Usage: bun bench/chart.ts [--results PATH] [--out DIR] [--check]

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { renderBarChart, type BarChart, type Series } from "./lib/chart-svg.ts";
import { parseSection, type ResultEntry, type ResultSection } from "./lib/results-parse.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");

/**
 * The sections that get charts, with the words the charts use for them. `modes`: say so when
 * a cache mode has no entries (the issue asks for warm and cold charts of these).
 */
const SECTIONS: readonly { name: string; what: string; script: string; modes: boolean }[] = [
  { name: "copy", what: "Local copy", script: "bench/copy.ts", modes: true },
  { name: "net", what: "Network transfer over loopback", script: "bench/net.ts", modes: true },
  { name: "net-sync", what: "Network sync scenarios over loopback", script: "bench/net.ts --scenario rerun,changed1,streams,latency", modes: false },
];

/** uring-sync in warm colours, competitors in cool/neutral ones; assigned in table order. */
const URING_COLORS = ["#e8590c", "#f59f00", "#c2255c", "#ff8787"];
const OTHER_COLORS = ["#1971c2", "#74c0fc", "#2f9e44", "#8ce99a", "#6741d9", "#868e96", "#0c8599", "#a9a9a9"];

export interface ChartFile {
  /** File name inside the charts directory, e.g. "copy-warm-ext4.svg". */
  name: string;
  svg: string;
  /** Every tool that has a row in the chart's data. */
  tools: string[];
  section: string;
  mode: string;
  fs: string;
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function seriesFor(entries: readonly ResultEntry[]): Series[] {
  const tools = unique(entries.flatMap((e) => e.rows.map((r) => r.tool)));
  let u = 0;
  let o = 0;
  return tools.map((name) => ({
    name,
    color: name.startsWith("uring-sync")
      ? URING_COLORS[u++ % URING_COLORS.length]
      : OTHER_COLORS[o++ % OTHER_COLORS.length],
  }));
}

function dateSpan(entries: readonly ResultEntry[]): string {
  const dates = entries.map((e) => e.date).sort();
  const first = dates[0];
  const last = dates[dates.length - 1];
  if (first === last) return first;
  // "2026-11-21 08:35 UTC" .. "2026-11-21 08:40 UTC": say the day once.
  if (first.slice(0, 10) === last.slice(0, 10)) return `${first.slice(0, 16)}-${last.slice(11)}`;
  return `${first} to ${last}`;
}

function barText(ratio: number | null, median: number | null): string {
  if (median === null) return "skipped";
  if (ratio === null) return `${median.toFixed(3)} s`;
  return `${ratio.toFixed(2)}× (${median.toFixed(3)} s)`;
}

function chartFor(section: ResultSection, what: string, script: string, mode: string, fs: string, entries: ResultEntry[]): ChartFile {
  // Scenario entries may each have their own baseline (rsync over ssh, -j 1): then every
  // group names its own, and the reference line is just "baseline".
  const baselines = unique(entries.map((e) => e.baseline));
  const baseline = baselines.length === 1 ? baselines[0] : "the baseline";
  const own = baselines.length > 1;
  const series = seriesFor(entries);
  const runs = unique(entries.flatMap((e) => e.rows.map((r) => r.runs)).filter((r) => r > 0)).sort((a, b) => a - b);
  const runsText = runs.length === 1 ? `${runs[0]}` : `${runs[0]}-${runs[runs.length - 1]}`;
  const machines = unique(entries.map((e) => e.machine));
  const fsDescs = unique(entries.map((e) => e.fsDescription));
  const id = `${section.name}-${mode}-${fs}`.replace(/[^A-Za-z0-9-]/g, "-");
  const days = unique(entries.map((e) => e.date.slice(0, 10)).sort());
  const title = `${what}, ${mode} cache, ${fs} (${days.join(", ")})`;
  const groups = entries.map((e) => ({
    label: e.scenario?.title ?? e.set,
    sublabel: `${e.scenario ? `${e.set}: ` : ""}${e.description}; ${e.mib.toFixed(1)} MiB${own ? `; relative to ${e.baseline}` : ""}`,
    bars: e.rows.map((r) => ({
      series: r.tool,
      value: r.median === null ? null : r.ratio,
      text: barText(r.ratio, r.median),
      target: r.target?.value,
    })),
  }));
  const descParts = entries.map((e) => {
    const rows = e.rows.map((r) => {
      if (r.median === null) return `${r.tool} skipped (${r.skipped ?? "no runs"})`;
      const ratio = r.ratio === null ? "" : `, ${r.ratio.toFixed(2)} times ${e.baseline}`;
      const target = r.target === undefined ? "" : `, target at most ${r.target.value.toFixed(2)}${r.target.met === null ? "" : r.target.met ? " (met)" : " (missed)"}`;
      return `${r.tool} ${r.median.toFixed(3)} s${ratio}${target}`;
    });
    return `${e.scenario ? `${e.scenario.title}, ` : ""}${e.set} (${e.description}, measured ${e.date}): ${rows.join("; ")}.`;
  });
  const chart: BarChart = {
    id,
    title,
    subtitle: [
      `Median wall time relative to ${baseline} measured in the same run (lower is better; ${runsText} timed runs per tool). Labels: ratio (median seconds).`,
      `Measured ${dateSpan(entries)}; machine: ${machines.join(" / ")}; file system: ${fsDescs.join(" / ")}.`,
    ],
    desc: `Horizontal bar chart, one group per ${own ? "scenario" : "data set"}, one bar per tool; bar length is the median wall time divided by that of ${baseline} (lower is better). ${descParts.join(" ")}`,
    series,
    groups,
    reference: { value: 1, label: `${own ? "baseline" : baseline} = 1.00` },
    axisLabel: `median wall time / ${own ? "baseline" : baseline} (lower is better)`,
    tickFormat: (v) => `${v}×`,
    targetLegend: "target for uring-sync",
    footer: [`Source: bench/RESULTS.md, ${section.heading}; written by ${script}; drawn by bench/chart.ts (regenerate: bun bench/chart.ts).`],
  };
  return { name: `${id}.svg`, svg: renderBarChart(chart), tools: series.map((s) => s.name), section: section.name, mode, fs };
}

export interface ChartSet {
  charts: ChartFile[];
  /** Things a reader should know, e.g. "no cold entries in the copy section". */
  notes: string[];
}

/** Every chart the given RESULTS.md text yields (pure: no file system access). */
export function chartsFromResults(text: string): ChartSet {
  const charts: ChartFile[] = [];
  const notes: string[] = [];
  for (const s of SECTIONS) {
    const section = parseSection(text, s.name);
    if (section === undefined || section.entries.length === 0) {
      notes.push(`no ${s.name} section with entries: run ${s.script}`);
      continue;
    }
    const groups = new Map<string, ResultEntry[]>();
    for (const e of section.entries) {
      const k = `${e.mode}\u0000${e.fs}`;
      const list = groups.get(k) ?? [];
      list.push(e);
      groups.set(k, list);
    }
    for (const [k, entries] of groups) {
      const [mode, fs] = k.split("\u0000");
      charts.push(chartFor(section, s.what, s.script, mode, fs, entries));
    }
    for (const mode of s.modes ? ["warm", "cold"] : []) {
      if (!section.entries.some((e) => e.mode === mode)) {
        notes.push(`no ${mode}-cache entries in the ${s.name} section: no ${s.name} ${mode} chart (run ${s.script} --mode ${mode})`);
      }
    }
  }
  return { charts, notes };
}

/** The charts directory belonging to a results file: next to it, "charts/". */
export function chartsDirFor(resultsPath: string): string {
  return join(dirname(resolve(resultsPath)), "charts");
}

/**
 * Writes every chart of `resultsPath` into `outDir` (default: charts/ next to it) and deletes
 * the *.svg there that it no longer produces. Returns lines to print.
 */
export function writeCharts(resultsPath: string, outDir = chartsDirFor(resultsPath)): string[] {
  const { charts, notes } = chartsFromResults(readFileSync(resultsPath, "utf8"));
  mkdirSync(outDir, { recursive: true });
  const wanted = new Set(charts.map((c) => c.name));
  const lines: string[] = [];
  for (const old of readdirSync(outDir)) {
    if (old.endsWith(".svg") && !wanted.has(old)) {
      rmSync(join(outDir, old));
      lines.push(`removed ${join(outDir, old)} (no longer in ${resultsPath})`);
    }
  }
  for (const c of charts) {
    const path = join(outDir, c.name);
    const same = existsSync(path) && readFileSync(path, "utf8") === c.svg;
    if (!same) writeFileSync(path, c.svg);
    const rel = relative(process.cwd(), path);
    lines.push(`${same ? "unchanged" : "wrote"} ${rel.startsWith("..") ? path : rel} (${c.tools.length} tools)`);
  }
  for (const note of notes) lines.push(`note: ${note}`);
  return lines;
}

const HELP = `Usage: bun bench/chart.ts [--results PATH] [--out DIR] [--check]

Draws bench/RESULTS.md's figures as SVG bar charts (one per section, cache mode and file
system) into bench/charts/ (or DIR); deletes charts whose figures are gone.
  --check   write nothing; exit 1 if the committed charts differ from what would be drawn`;

function main(): void {
  const { values } = parseArgs({
    options: {
      results: { type: "string", default: join(REPO_ROOT, "bench", "RESULTS.md") },
      out: { type: "string" },
      check: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const out = values.out ?? chartsDirFor(values.results);
  if (values.check) {
    const { charts } = chartsFromResults(readFileSync(values.results, "utf8"));
    const present = existsSync(out) ? readdirSync(out).filter((f) => f.endsWith(".svg")) : [];
    const stale = [
      ...charts.filter((c) => !existsSync(join(out, c.name)) || readFileSync(join(out, c.name), "utf8") !== c.svg).map((c) => c.name),
      ...present.filter((f) => !charts.some((c) => c.name === f)),
    ];
    if (stale.length > 0) {
      console.error(`chart: out of date: ${stale.join(", ")} (run bun bench/chart.ts)`);
      process.exit(1);
    }
    console.log(`chart: ${charts.length} charts up to date`);
    return;
  }
  for (const line of writeCharts(values.results, out)) console.log(line);
}

if (import.meta.main) {
  try {
    main();
  } catch (e) {
    console.error(`chart: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
