#!/usr/bin/env bun
/**
 * Entry point: picks the command, parses its options strictly, runs it, and turns what
 * comes back (a code or a typed error) into an exit status.
 *
 * `uring-sync SRC DST` is `uring-sync copy SRC DST`: any first word that is not a
 * command name is taken as the copy's SRC.
 *
 * Owns: the top-level --help/--version and the one catch that turns an error into a line
 * on stderr (and, with --json, an object on stdout) and an exit status. Never does a command's work: commands.ts lists them.
 */
import "./jit.ts";
import { defineCommand, renderUsage } from "citty";
import { buildInfo, VERSION } from "../version.ts";
import { parseStrict } from "./args.ts";
import { cittyDef, helpText, plain } from "./command.ts";
import { commandNamed, COMMANDS, DEFAULT_COMMAND, DESCRIPTION, PROGRAM, ROOT_EXAMPLES } from "./commands.ts";
import { EXIT } from "./exit.ts";
import { describeError, log, printJson, setVerbosity } from "./report.ts";

const root = defineCommand({
  meta: { name: PROGRAM, version: VERSION, description: DESCRIPTION },
  subCommands: Object.fromEntries(Object.values(COMMANDS).map((c) => [c.name, cittyDef(c)])),
});

const ROOT_DETAILS = `
Examples:
${ROOT_EXAMPLES.map(([cmd, what]) => `  ${cmd.padEnd(44)}${what}`).join("\n")}

Run 'uring-sync <command> --help' for a command's options.
Exit codes: 0 ok, 1 failed (some files or I/O), 2 usage, 3 unsupported here, 4 peer/auth, 130 interrupted.`;

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    process.stderr.write(plain(`${await renderUsage(root)}\n${ROOT_DETAILS.trim()}\n`));
    return EXIT.USAGE;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    const sub = first === "help" ? commandNamed(argv[1] ?? "") : undefined;
    process.stdout.write(sub ? await helpText(sub, root) : plain(`${await renderUsage(root)}\n${ROOT_DETAILS.trim()}\n`));
    return EXIT.OK;
  }
  if (first === "--version" || first === "-V") {
    const b = buildInfo();
    process.stdout.write(`uring-sync ${b.version} (commit ${b.commit}, built ${b.buildDate})\n`);
    return EXIT.OK;
  }
  const named = commandNamed(first);
  const cmd = named ?? DEFAULT_COMMAND;
  const rest = named ? argv.slice(1) : argv;
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(await helpText(cmd, root));
    return EXIT.OK;
  }
  // Until the options parse, the word alone says whether the output should be JSON.
  wantsJson = "json" in cmd.options && rest.includes("--json");
  const args = parseStrict(rest, cmd.options, cmd.name);
  wantsJson = args.json === true;
  setVerbosity({ verbose: args.verbose === true, quiet: args.quiet === true });
  return await cmd.run(args);
}

/** --json was asked for: a failure is a JSON object on stdout too (scripts get one either way). */
let wantsJson = false;

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  const { message, code } = describeError(e);
  log.error(message);
  if (wantsJson) printJson({ error: message, exitCode: code }, true);
  if (process.env.URING_SYNC_DEBUG === "1" && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exitCode = code;
}
