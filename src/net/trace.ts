/**
 * Phase timestamps for performance work: with URING_SYNC_TRACE=1, `trace("what")` writes
 * one line with the milliseconds since the process started to stderr. Off by default;
 * costs one boolean test when off. Never used for anything a user relies on.
 */
import { writeSync } from "node:fs";

const on = process.env.URING_SYNC_TRACE === "1";

export function trace(what: string): void {
  if (!on) return;
  writeSync(2, `[trace ${process.pid} ${performance.now().toFixed(1)} ms] ${what}\n`);
}
