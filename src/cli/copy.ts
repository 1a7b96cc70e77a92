/**
 * `uring-sync [copy] SRC DST`: the local copy command.
 */
import type { Command } from "./command.ts";
import { FILTER_OPTIONS, OUTPUT_OPTIONS, PARALLEL_OPTIONS, RING_OPTIONS, SYNC_OPTIONS } from "./common.ts";
import { EXIT } from "./exit.ts";
import { log } from "./report.ts";

export const copy: Command = {
  name: "copy",
  summary: "Copy a file or directory tree (the default command: `uring-sync SRC DST`)",
  details: "Examples:\n  uring-sync ./data /backup/data",
  options: {
    src: { type: "positional", valueHint: "SRC", description: "File or directory to copy" },
    dst: { type: "positional", valueHint: "DST", description: "Destination (created if missing)" },
    ...SYNC_OPTIONS, ...FILTER_OPTIONS, ...PARALLEL_OPTIONS, ...RING_OPTIONS, ...OUTPUT_OPTIONS,
  },
  run: () => {
    log.error("local copy is not built yet in this version");
    return EXIT.NOT_IMPLEMENTED;
  },
};
