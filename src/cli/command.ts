/**
 * The shape of a uring-sync command: its options (strictly parsed), its help text and
 * what it runs. Each command lives in its own module in src/cli/.
 */
import { defineCommand, renderUsage, type CommandDef } from "citty";
import { toCittyArgs, type OptionSpecs, type Parsed } from "./args.ts";

/** The program's name as users type it. */
export const PROGRAM = "uring-sync";

export interface Command {
  name: string;
  /** One line, shown in the command list. */
  summary: string;
  /** Shown under the usage: what it does, with examples. */
  details: string;
  options: OptionSpecs;
  /** Returns the process exit code. */
  run(args: Parsed): Promise<number> | number;
}

export function cittyDef(c: Command): CommandDef {
  return defineCommand({ meta: { name: c.name, description: c.summary }, args: toCittyArgs(c.options) });
}

export async function helpText(c: Command, parent: CommandDef): Promise<string> {
  const usage = await renderUsage(cittyDef(c), parent);
  return plain(`${usage.trimEnd()}\n\n${c.details.trim()}\n`);
}

/** citty colours its output unconditionally; keep colour for terminals only. */
export function plain(text: string): string {
  const colour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
  return colour ? text : text.replace(/\x1b\[[0-9;]*m/g, "");
}
