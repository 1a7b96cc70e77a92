#!/usr/bin/env bun
/**
 * Writes man/uring-sync.1 (roff, man(7) macros) from the command definitions: the
 * registry (src/cli/commands.ts), each command's option specs, summary and details, the
 * exit codes (src/cli/exit.ts) and the environment variables listed here. The file is
 * committed; tests/cli/man.test.ts checks it equals what this script renders now.
 *
 *   bun scripts/gen-man.ts           rewrite man/uring-sync.1
 *   bun scripts/gen-man.ts --check   exit 1 if the committed page is out of date
 *
 * Owns: the page's layout and roff escaping. Never invents option text: a flag's words
 * come from its spec, so --help and the man page say the same thing.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { flagOf, aliasFlagsOf, valueHintOf, type OptionSpec } from "../src/cli/args.ts";
import type { Command } from "../src/cli/command.ts";
import { COMMANDS, DEFAULT_COMMAND, DESCRIPTION, PROGRAM, ROOT_EXAMPLES } from "../src/cli/commands.ts";
import { EXIT, EXIT_MEANING } from "../src/cli/exit.ts";
import { VERSION } from "../src/version.ts";

export const MAN_PATH = join(import.meta.dir, "..", "man", `${PROGRAM}.1`);

/**
 * The environment variables a user may set. Every URING_SYNC_* variable the code reads
 * is either here or in NOT_DOCUMENTED (tests/cli/man.test.ts checks both ways).
 */
export const ENVIRONMENT: readonly (readonly [string, string])[] = [
  ["URING_SYNC_SECRET", "The shared secret for send and recv when neither --secret-file nor --secret is given (preferred over --secret: other local users can read a process's arguments)."],
  ["URING_SYNC_CRYPTO", "auto, kernel or user: the default of --crypto for send and recv."],
  ["URING_SYNC_BACKEND", "liburing, raw or sync: force one io_uring backend instead of choosing automatically (for tests and diagnosis; sync is the same as --sync)."],
  ["URING_SYNC_NO_LIBURING", "1: do not load liburing; the ring runs on raw io_uring system calls instead."],
  ["URING_SYNC_NO_LIBCRYPTO", "1: do not load OpenSSL's libcrypto; user-space TLS records are sealed and opened with node:crypto instead (as when libcrypto is missing)."],
  ["URING_SYNC_NO_PROGRESS", "1: no progress line, even on a terminal."],
  ["URING_SYNC_DEBUG", "1: print a stack trace with an error message."],
  ["NO_COLOR", "Set: no colours in --help, even on a terminal."],
];

/** Read by the code but not for users: test hooks and measurement knobs. */
export const NOT_DOCUMENTED: Record<string, string> = {
  URING_SYNC_PLACE: "measurement knob (named temporaries everywhere), docs/DESIGN.md",
  URING_SYNC_STAGE: "measurement knob (0: no staging of a new DST), docs/DESIGN.md",
  URING_SYNC_PREFETCH: "measurement knob and test hook (0: never read directories ahead; always: from the start), docs/DESIGN.md",
  URING_SYNC_TRACE: "phase timestamps for performance work",
  URING_SYNC_JIT: "measurement knob (default: send/recv keep JSC's FTL tier, no re-exec), src/cli/jit.ts",
  URING_SYNC_GC_EVERY: "internal tuning of the network channel",
  URING_SYNC_RECORD_AEAD: "measurement knob (openssl|node|portable: the user-space record AEAD back end), src/net/record.ts",
  URING_SYNC_HANDSHAKE_TIMEOUT_MS: "test hook, docs/PROTOCOL.md",
  URING_SYNC_IDLE_TIMEOUT_MS: "test hook, docs/PROTOCOL.md",
  URING_SYNC_MAX_RECORDS: "test hook (forces re-keying early)",
  URING_SYNC_COMMIT: "build-time define, not an environment variable",
  URING_SYNC_BUILD_DATE: "build-time define, not an environment variable",
};

const MORE_EXAMPLES: readonly (readonly [string, string])[] = [
  ["uring-sync ./build /srv/artifacts --delete --json > summary.json", "mirror a build output and keep a machine-readable summary (CI)"],
  ["URING_SYNC_SECRET=... uring-sync recv /srv/in --listen 7000 --keep-listening", "a receiver that serves one sender after another"],
  [`${PROGRAM} completion bash > ~/.local/share/bash-completion/completions/${PROGRAM}`, "install bash completion (zsh and fish alike)"],
];

// ---- roff escaping ---------------------------------------------------------------------

/**
 * Text for a roff text line or macro argument: backslashes as \e, every hyphen as \-
 * (so flags and commands copy and paste as typed), non-ASCII as \[uXXXX], `code` in bold.
 */
export function roff(text: string): string {
  let out = "";
  const parts = text.split("`");
  parts.forEach((part, i) => {
    const body = [...part]
      .map((ch) => {
        if (ch === "\\") return "\\e";
        if (ch === "-") return "\\-";
        const cp = ch.codePointAt(0) ?? 0;
        if (cp > 126) return `\\[u${cp.toString(16).toUpperCase().padStart(4, "0")}]`;
        return ch;
      })
      .join("");
    // Odd parts were inside backticks (an unpaired backtick stays literal text).
    out += i % 2 === 1 && i < parts.length - 1 ? `\\fB${body}\\fR` : i % 2 === 1 ? `\\(ga${body}` : body;
  });
  return out;
}

/** A text line that is never taken for a request: a leading . or ' gets \& in front. */
const line = (text: string): string => (/^[.']/.test(text) ? `\\&${text}` : text);
/** A macro argument: double quotes inside become \(dq. */
const arg = (text: string): string => `"${roff(text).replace(/"/g, "\\(dq")}"`;
const bold = (text: string): string => `\\fB${roff(text)}\\fR`;
const italic = (text: string): string => `\\fI${roff(text)}\\fR`;

// ---- sections -------------------------------------------------------------------------

function synopsisOf(c: Command, named: boolean): string {
  const pos = Object.entries(c.options)
    .filter(([, s]) => s.type === "positional")
    .map(([name, s]) => {
      const hint = italic(valueHintOf(s) ?? name.toUpperCase());
      return s.required === false ? `[${hint}]` : hint;
    });
  const hasFlags = Object.values(c.options).some((s) => s.type !== "positional");
  return [bold(named ? `${PROGRAM} ${c.name}` : PROGRAM), ...(hasFlags ? [`[${italic("OPTIONS")}]`] : []), ...pos].join(" ");
}

function optionItem(name: string, s: OptionSpec): string[] {
  const hint = valueHintOf(s);
  const forms = [...aliasFlagsOf(s), flagOf(name)].map(bold).join(", ");
  const head = s.type === "string" && hint !== undefined ? `${forms} ${italic(hint)}` : forms;
  const notes = [s.repeatable && !/repeatable/i.test(s.description) ? "May be given more than once." : "", s.required ? "Required." : ""].filter((n) => n !== "");
  return [".TP", line(head), line(roff([s.description.endsWith(".") ? s.description : `${s.description}.`, ...notes].join(" ")))];
}

const TOPIC = /^[A-Z][A-Za-z ]{0,20}:/;

/** A command's details: prose paragraphs filled, indented runs (examples) kept as typed. */
function detailsLines(details: string): string[] {
  const out: string[] = [];
  for (const para of details.trim().split(/\n\s*\n/)) {
    out.push(".PP");
    const lines = para.split("\n");
    for (let i = 0; i < lines.length; ) {
      if (lines[i].startsWith("  ")) {
        out.push(".RS 2", ".nf");
        while (i < lines.length && lines[i].startsWith("  ")) out.push(line(roff(lines[i++].slice(2))));
        out.push(".fi", ".RE");
      } else {
        // "Safety: ..." starts a topic of its own in --help's hard-wrapped text; keep it apart.
        if (i > 0 && TOPIC.test(lines[i])) out.push(".PP");
        out.push(line(roff(lines[i++].trim())));
      }
    }
  }
  return out;
}

function commandSection(c: Command): string[] {
  const out = [`.SS ${arg(`${PROGRAM} ${c.name}`)}`, line(synopsisOf(c, true)), ".PP", line(roff(`${c.summary}.`))];
  const positionals = Object.entries(c.options).filter(([, s]) => s.type === "positional");
  const flags = Object.entries(c.options).filter(([, s]) => s.type !== "positional");
  if (positionals.length > 0) {
    out.push(".PP", "Arguments:");
    for (const [name, s] of positionals) {
      out.push(".TP", line(italic(valueHintOf(s) ?? name.toUpperCase())), line(roff(s.description.endsWith(".") ? s.description : `${s.description}.`)));
    }
  }
  if (flags.length > 0) {
    out.push(".PP", "Options:");
    for (const [name, s] of flags) out.push(...optionItem(name, s));
  }
  out.push(...detailsLines(c.details));
  return out;
}

function examples(list: readonly (readonly [string, string])[]): string[] {
  return list.flatMap(([cmd, what]) => [".TP", line(bold(cmd)), line(roff(`${what[0].toUpperCase()}${what.slice(1)}.`))]);
}

export function renderManPage(): string {
  const commands = Object.values(COMMANDS);
  const out: string[] = [
    `.\\" Generated by scripts/gen-man.ts from the command definitions in src/cli/; do not edit.`,
    `.\\" Regenerate with: bun scripts/gen-man.ts`,
    `.TH ${arg(PROGRAM.toUpperCase())} 1 "" ${arg(`${PROGRAM} ${VERSION}`)} "User Commands"`,
    // No hyphenation and a ragged right edge: flags and paths stay whole and copyable.
    ".nh",
    ".ad l",
    ".SH NAME",
    line(`${roff(PROGRAM)} \\- ${roff(DESCRIPTION.charAt(0).toLowerCase() + DESCRIPTION.slice(1))}`),
    ".SH SYNOPSIS",
    line(synopsisOf(DEFAULT_COMMAND, false)),
  ];
  for (const c of commands) out.push(".br", line(synopsisOf(c, true)));
  out.push(".br", line(`${bold(PROGRAM)} ${bold("--help")} | ${bold("--version")}`));
  out.push(
    ".SH DESCRIPTION",
    line(roff(`${DESCRIPTION}.`)),
    ".PP",
    line(roff(`With no command name, the first argument is the SRC of \`${DEFAULT_COMMAND.name}\`: \`${PROGRAM} SRC DST\` is \`${PROGRAM} ${DEFAULT_COMMAND.name} SRC DST\`.`)),
    line(roff(`Options may come before or after the arguments; \`--\` ends the options. Unknown options and malformed values are refused with an error that names them (exit status 2). Every command takes \`-h\`/\`--help\`; a boolean flag \`--x\` also has the form \`--no-x\`.`)),
    ".SH COMMANDS",
  );
  for (const c of commands) out.push(...commandSection(c));
  out.push(".SH \"EXIT STATUS\"");
  for (const [key, code] of Object.entries(EXIT) as [keyof typeof EXIT, number][]) out.push(".TP", line(bold(String(code))), line(roff(EXIT_MEANING[key])));
  out.push(".SH ENVIRONMENT");
  for (const [name, what] of ENVIRONMENT) out.push(".TP", line(bold(name)), line(roff(what)));
  out.push(".SH EXAMPLES", ...examples([...ROOT_EXAMPLES, ...MORE_EXAMPLES]));
  out.push(
    ".SH \"SEE ALSO\"",
    ".BR cp (1),",
    ".BR rsync (1),",
    ".BR io_uring (7),",
    ".BR openat2 (2)",
    ".PP",
    line(roff("README.md, docs/DESIGN.md and docs/PROTOCOL.md in the uring-sync source.")),
  );
  return `${out.join("\n")}\n`;
}

if (import.meta.main) {
  const page = renderManPage();
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(MAN_PATH, "utf8");
    } catch {
      // missing counts as out of date
    }
    if (current !== page) {
      process.stderr.write(`${MAN_PATH} is out of date: run bun scripts/gen-man.ts\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(MAN_PATH, page);
    process.stdout.write(`wrote ${MAN_PATH}\n`);
  }
}
