/**
 * The registry of uring-sync's commands and the program's one-line description: the
 * single source that main.ts dispatches from, --help lists, `uring-sync completion`
 * turns into shell completion and scripts/gen-man.ts into the man page.
 *
 * Owns: which commands exist and in what order. Never parses or runs anything.
 */
import { PROGRAM, type Command } from "./command.ts";
import { completionCommand } from "./completion.ts";
import { copy } from "./copy.ts";
import { doctor } from "./doctor.ts";
import { recv } from "./recv.ts";
import { send } from "./send.ts";

export { PROGRAM };
export const DESCRIPTION = "Copy and sync directory trees fast, locally (io_uring) or between machines (TLS, kernel-accelerated)";

/** The examples of the top-level --help and the man page: [command line, what it does]. */
export const ROOT_EXAMPLES: readonly (readonly [string, string])[] = [
  ["uring-sync ./src ./dst", "copy a tree (the contents of ./src land in ./dst)"],
  ["uring-sync recv ./dst --listen 7000", "receive (prints a one-time code to give the sender)"],
  ["uring-sync send ./src host:7000", "send (asks for the code, or reads $URING_SYNC_SECRET)"],
  ["uring-sync doctor", "what this machine supports (io_uring, kTLS...)"],
];

/** `uring-sync SRC DST` runs this one: a first word that is no command name is its SRC. */
export const DEFAULT_COMMAND: Command = copy;

// completion.ts takes the registry as a function, so it need not import this module.
export const COMMANDS: Record<string, Command> = {
  copy,
  send,
  recv,
  doctor,
  completion: completionCommand(() => Object.values(COMMANDS), DEFAULT_COMMAND.name),
};

/** The command called `name`, if any (own keys only: "constructor" is a path, not a command). */
export function commandNamed(name: string): Command | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}
