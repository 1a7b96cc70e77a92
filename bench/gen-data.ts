// bench/gen-data.ts — CLI: generates (or reuses) the benchmark data sets on the benchmark
// file system, deterministically from a seed. Usage: bun bench/gen-data.ts --help

import { parseArgs } from "node:util";
import { DATASETS, DATASET_NAMES, parseDatasetList } from "./lib/datasets.ts";
import { FS_HELP, FS_OPTIONS, makeLogger, parseGen, prepareDatasets, selectFs } from "./lib/cli.ts";

const HELP = `Usage: bun bench/gen-data.ts [--sets a,b,...] [file-system options]

Generates the data sets under <fs>/data/<set> (a <set>.complete.json marker next to it
lets later runs reuse a complete set). --sets all generates every set.

Data sets:
${DATASET_NAMES.map((n) => `  ${n.padEnd(10)} ${DATASETS[n].description}`).join("\n")}

${FS_HELP}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { ...FS_OPTIONS, sets: { type: "string", default: "small10k,medium10k" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const log = makeLogger();
  const sets = values.sets === "all" ? [...DATASET_NAMES] : parseDatasetList(values.sets);
  const fs = selectFs(values);
  log(`file system: ${fs.description}`);
  const got = prepareDatasets(fs, sets, { ...parseGen(values), regen: values.regen }, log);
  for (const [name, r] of got) {
    const m = r.marker;
    console.log(`${name.padEnd(10)} ${r.dir}  ${m.files} files, ${m.dirs} dirs, ${(m.bytes / 2 ** 20).toFixed(1)} MiB (generated in ${m.generateSeconds.toFixed(1)} s)`);
  }
}

main().catch((e: unknown) => {
  console.error(`gen-data: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
