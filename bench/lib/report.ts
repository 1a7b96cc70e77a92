// bench/lib/report.ts — owns the shared shape of a benchmark report: one entry per
// (data set, cache mode, file system) with its meta line and table, the raw JSON dump
// under bench/out/ (git-ignored), and the console output.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DATASETS, DATASET_NAMES, type DatasetName } from "./datasets.ts";
import type { ToolOutcome } from "./harness.ts";
import type { BenchFs } from "./mount.ts";
import type { CacheMode } from "./run.ts";
import { summarize } from "./stats.ts";
import type { TreeStats } from "./verify.ts";
import type { Entry } from "./results.ts";

export interface SetReport {
  /** The bench/net.ts scenario that produced it, when not the plain transfer/copy. */
  scenario?: string;
  set: DatasetName;
  mode: CacheMode;
  stats: TreeStats;
  outcomes: ToolOutcome[];
  table: string;
  startedAt: string;
  seconds: number;
  /** 1-minute load average just before and just after the measurements. */
  loadBefore: number;
  loadAfter: number;
}

const FS_RANK: Record<BenchFs["kind"], number> = { ext4: 0, tmpfs: 1, dir: 2 };

export function entryFor(
  r: SetReport,
  fs: BenchFs,
  meta: {
    command: string;
    machine: string;
    runs: number;
    warmup: number;
    extra?: string;
    /** A named scenario (bench/net.ts --scenario): prefixes the key and the title, ranks entries by scenario. */
    scenario?: { id: string; title: string; rank: number };
  },
): Entry {
  const st = r.stats;
  const sc = meta.scenario;
  const title = `### ${sc ? `${sc.title} — ` : ""}${r.set}: ${DATASETS[r.set].description} (${st.files} files, ${st.dirs} dirs, ${(st.bytes / 2 ** 20).toFixed(1)} MiB), ${r.mode} cache, ${fs.kind}`;
  const lines = [
    title,
    "",
    `${r.startedAt.slice(0, 16).replace("T", " ")} UTC; ${meta.runs} timed runs per tool after ${meta.warmup} untimed warm-up round${meta.warmup === 1 ? "" : "s"}, alternated; file system: ${fs.description}; machine: ${meta.machine}.`,
    `Command: \`${meta.command}\`${meta.extra ? `; ${meta.extra}` : ""}; took ${r.seconds.toFixed(0)} s; load average (1 min) ${r.loadBefore.toFixed(2)} before, ${r.loadAfter.toFixed(2)} after.`,
    "",
    r.table,
  ];
  return {
    key: `${sc ? `${sc.id}:` : ""}${r.set}:${r.mode}:${fs.kind}`,
    rank: (sc ? sc.rank * 1000 : 0) + FS_RANK[fs.kind] * 100 + DATASET_NAMES.indexOf(r.set) * 2 + (r.mode === "warm" ? 0 : 1),
    body: lines.join("\n"),
  };
}

/** Writes all samples to bench/out/<name>-<timestamp>.json and returns the path. */
export function dumpJson(repoRoot: string, name: string, data: { command: string; fs: BenchFs; reports: SetReport[] }): string {
  const dir = join(repoRoot, "bench", "out");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  const json = {
    command: data.command,
    fs: data.fs,
    reports: data.reports.map((r) => ({
      ...(r.scenario !== undefined ? { scenario: r.scenario } : {}),
      set: r.set,
      mode: r.mode,
      stats: r.stats,
      startedAt: r.startedAt,
      seconds: r.seconds,
      loadBefore: r.loadBefore,
      loadAfter: r.loadAfter,
      tools: r.outcomes.map((o) => ({
        id: o.tool.id,
        label: o.tool.label,
        command: o.tool.display,
        samples: o.samples,
        summary: o.samples.length > 0 ? summarize(o.samples) : null,
        skipped: o.skipped ?? null,
      })),
    })),
  };
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
  return path;
}
