/**
 * Options shared by several commands, defined once so --help stays consistent.
 *
 * Owns: the specs (names, aliases, help text, validation) of the option groups more than
 * one command takes: output, ring, parallelism, filters, sync. Never acts on a value:
 * each command does, through the args.ts helpers.
 */
import { intIn, sizeIn, type OptionSpecs } from "./args.ts";

export const OUTPUT_OPTIONS: OptionSpecs = {
  verbose: { type: "boolean", alias: ["v"], description: "Say more: backend in use, per-file errors as they happen" },
  quiet: { type: "boolean", description: "Only errors and warnings on stderr; no progress, no summary line" },
  json: { type: "boolean", description: "Write a machine-readable summary to stdout when done (a failure: {\"error\", \"exitCode\"})" },
};

export const RING_OPTIONS: OptionSpecs = {
  sync: { type: "boolean", description: "Use plain synchronous system calls instead of io_uring" },
  "queue-depth": { type: "string", alias: ["q"], valueHint: "N", description: "io_uring queue depth per worker (1-4096, default 256)", validate: intIn(1, 4096) },
};

export const PARALLEL_OPTIONS: OptionSpecs = {
  jobs: { type: "string", alias: ["j"], valueHint: "N", description: "Copier threads, each with its own ring, the main thread included (1-64; default: number of CPUs)", validate: intIn(1, 64) },
  chunk: { type: "string", alias: ["c"], valueHint: "BYTES", description: "I/O chunk size, e.g. 256K or 1M (4K-64M, default 1M)", validate: sizeIn(4096, 64 * 1024 * 1024) },
};

export const FILTER_OPTIONS: OptionSpecs = {
  exclude: { type: "string", repeatable: true, valueHint: "GLOB", description: "Skip paths matching GLOB (relative to SRC; repeatable)" },
  include: { type: "string", repeatable: true, valueHint: "GLOB", description: "Do not skip paths matching GLOB, even if excluded (repeatable)" },
};

export const SYNC_OPTIONS: OptionSpecs = {
  checksum: { type: "boolean", description: "Decide what changed by SHA-256 of the content, not size and mtime" },
  "ignore-times": { type: "boolean", description: "Copy every file, even when size and mtime match" },
  delete: { type: "boolean", description: "Remove files in DST that are not in SRC" },
  "dry-run": { type: "boolean", alias: ["n"], description: "Show what would change; change nothing" },
};
