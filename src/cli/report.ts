/**
 * How the CLI talks to people: one consola instance writing plain lines to stderr, and
 * the mapping from typed errors to one-line messages and exit codes.
 *
 * Owns: message format, verbosity, and error -> exit code. Engines never print; they
 * return results or throw typed errors that end up here.
 */
import { createConsola, type ConsolaInstance, type LogObject } from "consola";
import { InterruptedError, ProtocolError, SysError, UnsupportedError, UsageError } from "../errors.ts";
import { EXIT, type ExitCode } from "./exit.ts";

const PREFIX: Record<string, string> = { error: "error: ", fatal: "error: ", warn: "warning: ", info: "", success: "", log: "", debug: "" };

function plainReporter(logObj: LogObject): void {
  const text = logObj.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
  process.stderr.write(`uring-sync: ${PREFIX[logObj.type] ?? ""}${text}\n`);
}

/** Level 3 = info (default), 4 = debug (-v), 1 = warnings and errors only (--quiet). */
export const log: ConsolaInstance = createConsola({
  level: 3,
  reporters: [{ log: plainReporter }],
});

export function setVerbosity(opts: { verbose?: boolean; quiet?: boolean }): void {
  log.level = opts.quiet ? 1 : opts.verbose ? 4 : 3;
}

/** One line for the user and the exit code that goes with it. */
export function describeError(e: unknown): { message: string; code: ExitCode } {
  if (e instanceof UsageError) return { message: e.message, code: EXIT.USAGE };
  if (e instanceof InterruptedError) return { message: e.message, code: EXIT.INTERRUPTED };
  if (e instanceof UnsupportedError) return { message: e.message, code: EXIT.UNSUPPORTED };
  if (e instanceof ProtocolError) return { message: e.message, code: EXIT.PEER };
  if (e instanceof SysError) return { message: e.message, code: EXIT.FAILED };
  if (e instanceof Error) return { message: e.message, code: EXIT.FAILED };
  return { message: String(e), code: EXIT.FAILED };
}

/**
 * Write machine-readable output to stdout (for --json): one indented document, or with
 * `oneLine` one object per line (JSON Lines, for a stream of them, e.g. one per session).
 */
export function printJson(value: unknown, oneLine = false): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v), oneLine ? undefined : 2) + "\n");
}
