/**
 * `uring-sync doctor` (placeholder until the doctor report lands).
 */
import type { Command } from "./command.ts";
import { OUTPUT_OPTIONS } from "./common.ts";
import { EXIT } from "./exit.ts";

export const doctor: Command = {
  name: "doctor",
  summary: "Report what this machine supports: io_uring backend and opcodes, kTLS ciphers, limits",
  details: "Example:\n  uring-sync doctor --json",
  options: { ...OUTPUT_OPTIONS },
  run: () => EXIT.NOT_IMPLEMENTED,
};
