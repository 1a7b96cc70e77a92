/**
 * Where `send` and `recv` get the shared secret: `--secret-file PATH`, `--secret S` (with a
 * warning: argv is readable by other local users), `$URING_SYNC_SECRET`, an interactive
 * prompt (a terminal on stdin, no echo), or, for `recv` only, a freshly generated one-time
 * code printed for the user to give the sender.
 *
 * Owns: those sources and their precedence (file, then argv, then the environment, then
 * the prompt or the generated code), the one-time code format, and normalising a typed
 * code so "k7q2m 8xw4p ..." and "K7Q2M-8XW4P-..." are the same secret. Never prints the
 * secret itself (the generated code is returned for the caller to show) and never logs it.
 */
import { readFileSync, statSync } from "node:fs";
import { InterruptedError, UsageError } from "../errors.ts";

/** Crockford base32: no I, L, O, U, so nothing is mistaken when read aloud or retyped. */
export const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** 4 groups of 5 characters: 20 × 5 = 100 bits. */
export const CODE_GROUPS = 4;
export const CODE_GROUP_LENGTH = 5;
const CODE_CHARS = CODE_GROUPS * CODE_GROUP_LENGTH;

/** A one-time code with 100 bits of entropy, e.g. "K7Q2M-8XW4P-3J9TD-VB6RC". */
export function generateCode(random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  // Rejection-free: 32 symbols, so the low 5 bits of each byte are uniform.
  const bytes = random(CODE_CHARS);
  let s = "";
  for (let i = 0; i < CODE_CHARS; i++) {
    if (i > 0 && i % CODE_GROUP_LENGTH === 0) s += "-";
    s += CODE_ALPHABET[bytes[i] & 31];
  }
  return s;
}

/**
 * A secret that looks like a one-time code (20 base32 symbols, any case, with or without
 * dashes or spaces; O read as 0, I and L as 1) becomes the canonical code; anything else
 * is returned unchanged. Both ends apply this, so it never makes two secrets differ.
 */
export function normalizeSecret(secret: string): string {
  const compact = secret.trim().replace(/[-\s]/g, "").toUpperCase().replace(/O/g, "0").replace(/[IL]/g, "1");
  if (compact.length !== CODE_CHARS) return secret;
  for (const c of compact) if (!CODE_ALPHABET.includes(c)) return secret;
  const groups: string[] = [];
  for (let i = 0; i < CODE_CHARS; i += CODE_GROUP_LENGTH) groups.push(compact.slice(i, i + CODE_GROUP_LENGTH));
  return groups.join("-");
}

export type SecretSource = "file" | "argv" | "env" | "prompt" | "generated";

export interface SecretChoice {
  secret: string;
  source: SecretSource;
  /** Things to tell the user (e.g. the --secret warning). */
  warnings: string[];
}

export interface SecretInputs {
  file?: string;
  argv?: string;
  env?: string;
  /** recv: generate a code when nothing else gives a secret. send: prompt (TTY) or fail. */
  role: "send" | "recv";
  stdinIsTTY: boolean;
  /** Reads a line from the terminal without echo (injected for tests). */
  prompt?: (question: string) => Promise<string>;
}

/** Reads a secret file: one trailing newline (LF or CRLF) is dropped, nothing else. */
export function readSecretFile(path: string): { secret: string; warnings: string[] } {
  let text: string;
  const warnings: string[] = [];
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new UsageError(`--secret-file ${path}: is a directory`);
    if ((st.mode & 0o077) !== 0) {
      warnings.push(`--secret-file ${path} is readable by other users (mode 0${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    throw new UsageError(`--secret-file ${path}: cannot read it (${code})`);
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret.length === 0) throw new UsageError(`--secret-file ${path} is empty`);
  return { secret, warnings };
}

export const ARGV_WARNING =
  "--secret puts the secret on the command line, where other local users can read it (ps, /proc/PID/cmdline); prefer URING_SYNC_SECRET or --secret-file";

/** Picks the secret by precedence; see the module comment. */
export async function chooseSecret(i: SecretInputs): Promise<SecretChoice> {
  if (i.file !== undefined && i.argv !== undefined) throw new UsageError("give the secret once: --secret-file or --secret, not both");
  if (i.file !== undefined) {
    const { secret, warnings } = readSecretFile(i.file);
    return { secret: normalizeSecret(secret), source: "file", warnings };
  }
  if (i.argv !== undefined) {
    if (i.argv.length === 0) throw new UsageError("--secret must not be empty");
    return { secret: normalizeSecret(i.argv), source: "argv", warnings: [ARGV_WARNING] };
  }
  if (i.env !== undefined && i.env !== "") return { secret: normalizeSecret(i.env), source: "env", warnings: [] };
  if (i.role === "recv") return { secret: generateCode(), source: "generated", warnings: [] };
  if (!i.stdinIsTTY || i.prompt === undefined) {
    throw new UsageError("no secret: set URING_SYNC_SECRET, use --secret-file PATH, or run send from a terminal to be asked for the receiver's code");
  }
  const typed = await i.prompt("Code (or secret) from the receiver: ");
  if (typed.length === 0) throw new UsageError("no secret given");
  return { secret: normalizeSecret(typed), source: "prompt", warnings: [] };
}

/**
 * Reads one line from the terminal on stdin with echo off (raw mode), writing `question`
 * to stderr. Ctrl-C or Ctrl-D abort with a UsageError.
 */
export async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return await new Promise<string>((resolve, reject) => {
    let buf = "";
    const done = (err?: Error): void => {
      stdin.off("data", onData);
      try {
        stdin.setRawMode?.(false);
      } catch {
        // not a TTY after all
      }
      stdin.pause();
      process.stderr.write("\n");
      if (err !== undefined) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === "string" ? chunk : chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done();
        // Ctrl-C is an interruption (exit 130, as everywhere); Ctrl-D means no secret.
        if (ch === "\u0003") return done(new InterruptedError("interrupted at the secret prompt"));
        if (ch === "\u0004") return done(new UsageError("no secret given (input cancelled)"));
        if (ch === "\u007f" || ch === "\b") buf = buf.slice(0, -1);
        else if (ch >= " ") buf += ch;
      }
    };
    try {
      stdin.setRawMode?.(true);
    } catch {
      // fall through: still read a line
    }
    stdin.resume();
    stdin.on("data", onData);
  });
}
