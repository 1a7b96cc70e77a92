// bench/copy.ts — the local-copy benchmark: runs the real uring-sync CLI against cp -r,
// cp -a, rsync -a and a tar pipe on the same data sets in the same run, alternating tools
// run by run, and reports medians, min/max and ratios to cp -r (with the issue's targets
// next to uring-sync), then rewrites the copy section of bench/RESULTS.md.
// Usage: bun bench/copy.ts --help

import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { DATASETS, DATASET_NAMES, type DatasetName } from "./lib/datasets.ts";
import {
  FS_HELP,
  FS_OPTIONS,
  RUN_OPTIONS,
  rebuildNote,
  runSettings,
  REPO_ROOT,
  dstRoot,
  makeLogger,
  parseGen,
  prepareDatasets,
  selectFs,
  splitFlags,
  uringSyncCommand,
} from "./lib/cli.ts";
import { CompetitorFailure, expectedStats, measureSet, renderCommands, renderTable, type Tool } from "./lib/harness.ts";
import { commandLine, formatMachine, machineInfo, toolVersions } from "./lib/machine.ts";
import { dumpJson, entryFor, type SetReport } from "./lib/report.ts";
import { updateSection } from "./lib/results.ts";
import { interrupted, pipeline, timedRun, type CacheMode } from "./lib/run.ts";

const BASELINE = "cp-r";
const COMPETITORS = ["cp-r", "cp-a", "rsync", "tar"] as const;

const HELP = `Usage: bun bench/copy.ts [options]

Local copy: uring-sync vs cp -r, cp -a, rsync -a, tar | tar, same data, same run,
tools alternated run by run (the starting tool rotates), medians and ratios to cp -r.

  --sets a,b,...        data sets (default small10k,medium10k,large8,small100k; "all" = every set)
                        ${DATASET_NAMES.join(", ")}
  --mode warm|cold|both warm: sync before each run; cold: sync + drop_caches (default warm)
  --runs N              timed runs per tool and data set (default 5)
  --warmup N            untimed rounds first (default 1; every tool once; verified)
  --uring-flags FLAGS   extra uring-sync flags, e.g. "-j 2"; repeat for several variants
                        (each is its own row); "" is the plain variant
  --tools a,b,...       subset of: uring-sync,${COMPETITORS.join(",")} (default all)
  --results PATH        results file (default bench/RESULTS.md); --no-results to skip writing
  --no-snapshot         run dist/uring-sync in place (default: run a private copy taken at
                        the start, so a rebuild during the run cannot mix versions)
  --timeout SEC         kill a run after SEC seconds (default 1800)
  --trim-every N        fstrim every N rounds on ext4 (default 1)

uring-sync is $URING_SYNC_BIN, else dist/uring-sync if built, else bun src/cli/main.ts,
invoked as <bin> SRC DST --quiet [flags]. If it fails, it is skipped with a note;
a competitor failure aborts.

${FS_HELP}`;

/** The issue's targets for uring-sync's ratio to cp -r (never above 1.0 anywhere). */
export function copyTarget(set: DatasetName, mode: CacheMode): number {
  if (mode === "cold") {
    if (set === "small100k") return 0.45;
    if (set === "medium10k") return 0.4;
    return 1.0;
  }
  if (set === "small10k" || set === "small100k") return 0.8;
  if (set === "large8") return 0.7;
  return 1.0;
}

function competitorTools(timeoutMs: number): Tool[] {
  const o = { timeoutMs };
  return [
    {
      id: "cp-r",
      label: "cp -r",
      display: "cp -r SRC DST",
      optional: false,
      run: (src, dst) => timedRun(["cp", "-r", src, dst], o),
    },
    {
      id: "cp-a",
      label: "cp -a",
      display: "cp -a SRC DST",
      optional: false,
      run: (src, dst) => timedRun(["cp", "-a", src, dst], o),
    },
    {
      id: "rsync",
      label: "rsync -a",
      display: "rsync -a SRC/ DST/",
      optional: false,
      run: (src, dst) => timedRun(["rsync", "-a", `${src}/`, `${dst}/`], o),
    },
    {
      id: "tar",
      label: "tar | tar",
      display: "tar -C SRC -cf - . | tar -C DST -xf -   (DST made before timing)",
      optional: false,
      prepare: (dst) => mkdirSync(dst, { recursive: true }),
      run: (src, dst) => timedRun(pipeline(["tar", "-C", src, "-cf", "-", "."], ["tar", "-C", dst, "-xf", "-"]), o),
    },
  ];
}

function uringTools(variants: readonly string[], timeoutMs: number): Tool[] {
  const bin = uringSyncCommand();
  return variants.map((v) => {
    const flags = splitFlags(v);
    const suffix = flags.join(" ");
    return {
      id: suffix === "" ? "uring-sync" : `uring-sync_${suffix.replace(/[^A-Za-z0-9]+/g, "")}`,
      label: suffix === "" ? "uring-sync" : `uring-sync ${suffix}`,
      display: `${bin.display} SRC DST --quiet${suffix ? ` ${suffix}` : ""}`,
      optional: true,
      run: (src, dst) => timedRun([...bin.argv, src, dst, "--quiet", ...flags], { timeoutMs }),
    };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...FS_OPTIONS,
      ...RUN_OPTIONS,
      "uring-flags": { type: "string", multiple: true },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const log = makeLogger();
  const { sets, modes, runs, warmup, timeoutMs, trimEvery } = runSettings(values);
  const variants = values["uring-flags"] ?? [""];
  let tools = [...uringTools(variants, timeoutMs), ...competitorTools(timeoutMs)];
  if (values.tools !== undefined) {
    const want = new Set(values.tools.split(",").map((s) => s.trim()));
    tools = tools.filter((t) => want.has(t.id) || (want.has("uring-sync") && t.id.startsWith("uring-sync")));
    if (tools.length === 0) throw new Error(`--tools selected nothing`);
  }

  const command = commandLine(REPO_ROOT);
  const us = uringSyncCommand({ snapshot: !values["no-snapshot"] });
  log(`uring-sync: ${us.display} (${us.identity})${us.snapshot ? `, running a snapshot copy: ${us.snapshot}` : ""}`);
  const notes = new Map<string, string>();
  const fs = selectFs(values);
  const machine = formatMachine(machineInfo());
  log(`file system: ${fs.description}`);
  log(`machine: ${machine}`);
  const data = prepareDatasets(fs, sets, { ...parseGen(values), regen: values.regen }, log);
  if (fs.kind === "tmpfs" && modes.includes("cold")) log("note: cold mode on tmpfs drops no data caches (tmpfs lives in the page cache)");

  const reports: SetReport[] = [];
  const tStart = performance.now();
  try {
    for (const set of sets) {
      const d = data.get(set);
      if (d === undefined) continue;
      const expected = expectedStats(d.dir, d.marker);
      for (const mode of modes) {
        const report = await measureSet(
          set,
          { title: set, tools, src: d.dir, dstRoot: dstRoot(fs, "copy"), runs, warmup, mode, expected, fs, trimEvery, log },
          (outcomes) => renderTable(outcomes, BASELINE, "cp -r", (t) => (t.id.startsWith("uring-sync") ? copyTarget(set, mode) : undefined)),
        );
        reports.push(report);
        const note = rebuildNote(us);
        if (note !== undefined) {
          notes.set(`${set}:${mode}`, note);
          log(`warning: ${note}`);
        }
        console.log(`\n### ${set} (${DATASETS[set].description}), ${mode} cache, ${fs.kind}\n\n${report.table}\n`);
        log(`${set} ${mode} took ${report.seconds.toFixed(1)} s`);
      }
    }
  } catch (e) {
    if (interrupted() !== undefined) return; // the signal handler kills the running tool and exits
    if (e instanceof CompetitorFailure) {
      console.error(`\nABORTED: a competitor failed, so no comparison is valid.\n${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  log(`all benchmarks took ${((performance.now() - tStart) / 1000).toFixed(1)} s`);
  const json = dumpJson(REPO_ROOT, "copy", { command, fs, reports });
  log(`raw samples: ${json}`);
  if (!values["no-results"]) {
    const header = [
      "## Local copy (bench/copy.ts)",
      "",
      "Generated by `bench/copy.ts`; each entry below is replaced when the same data set, cache mode and file system is measured again.",
      "Wall seconds per run (lower is better): median, min and max over the runs; ratio = median / median of `cp -r` measured in the same run.",
      "Warm: `sync` before each run; cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before each run. The destination is deleted (untimed) between runs.",
      "One untimed warm-up round first (--warmup); each tool's first copy is checked (file count, directory count, total bytes, a byte-compared sample of files).",
      "Targets (uring-sync / cp -r): cold <= 0.45 on small100k, <= 0.40 on medium10k; warm <= 0.8 on small10k and small100k, <= 0.7 on large8; never > 1.0 anywhere.",
      "",
      "Commands:",
      "",
      renderCommands(tools),
      "",
      `Last run: ${toolVersions(["cp", "rsync", "tar"])}.`,
    ].join("\n");
    const extra = `uring-sync: \`${us.display}\` (${us.identity})`;
    updateSection(values.results, "copy", header, reports.map((r) => {
        const note = notes.get(`${r.set}:${r.mode}`);
        return entryFor(r, fs, { command, machine, runs, warmup, extra: note ? `${extra}; NOTE: ${note}` : extra });
      }));
    log(`updated the copy section of ${values.results}`);
    for (const line of (await import("./chart.ts")).writeCharts(values.results)) log(line); // charts/ next to the results file
  }
}

main().catch((e: unknown) => {
  const detail = e instanceof Error ? (process.env.BENCH_DEBUG ? (e.stack ?? e.message) : e.message) : String(e);
  console.error(`copy: ${detail}`);
  process.exit(1);
});
