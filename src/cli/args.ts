/**
 * Strict command-line parsing on top of citty's argument definitions.
 *
 * citty renders --help from the definitions but, like most parsers, silently accepts
 * unknown flags and any value. Here every token is checked against the definition:
 * an unknown or misspelt flag, a missing or malformed value, or a stray positional is
 * a UsageError that names it. Owns: tokenising argv and validating values. Never reads
 * the file system or the network.
 */
import type { ArgDef, ArgsDef } from "citty";
import { UsageError } from "../errors.ts";

export type Validator = (value: string, flag: string) => void;

export interface OptionSpec {
  type: "boolean" | "string" | "positional";
  description: string;
  alias?: string[];
  valueHint?: string;
  /** The only values accepted (checked by parseStrict; offered by shell completion and --help). */
  choices?: readonly string[];
  default?: string | boolean;
  required?: boolean;
  /** May be given several times; the values are collected in order. */
  repeatable?: boolean;
  validate?: Validator;
}
export type OptionSpecs = Record<string, OptionSpec>;

export type ParsedValue = string | boolean | string[] | undefined;
export type Parsed = Record<string, ParsedValue>;

/** The placeholder for an option's value: its valueHint, else its choices ("auto|kernel|user"). */
export function valueHintOf(s: OptionSpec): string | undefined {
  return s.valueHint ?? s.choices?.join("|");
}

/** The flag as typed: "--queue-depth" for the spec named "queue-depth" (or "queueDepth"). */
export const flagOf = (name: string): string => `--${kebab(name)}`;

/** Aliases as typed: "-q" for a one-letter alias, "--long" otherwise. */
export const aliasFlagsOf = (s: OptionSpec): string[] => (s.alias ?? []).map((a) => (a.length === 1 ? `-${a}` : `--${a}`));

/** citty's view of our specs, for defineCommand and renderUsage. */
export function toCittyArgs(specs: OptionSpecs): ArgsDef {
  const out: ArgsDef = {};
  for (const [name, s] of Object.entries(specs)) {
    const hint = valueHintOf(s);
    const def: ArgDef = s.type === "positional"
      ? { type: "positional", description: s.description, required: s.required ?? true, valueHint: hint }
      : s.type === "boolean"
        ? { type: "boolean", description: s.description, alias: s.alias, default: s.default as boolean | undefined }
        : { type: "string", description: s.description, alias: s.alias, valueHint: hint, default: s.default as string | undefined };
    out[name] = def;
  }
  return out;
}

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function parseStrict(argv: readonly string[], specs: OptionSpecs, command: string): Parsed {
  const byFlag = new Map<string, [string, OptionSpec]>();
  const positionals: [string, OptionSpec][] = [];
  for (const [name, s] of Object.entries(specs)) {
    if (s.type === "positional") {
      positionals.push([name, s]);
      continue;
    }
    byFlag.set(flagOf(name), [name, s]);
    for (const a of aliasFlagsOf(s)) byFlag.set(a, [name, s]);
  }
  const out: Parsed = {};
  const pos: string[] = [];
  const set = (name: string, s: OptionSpec, flag: string, value: string | boolean): void => {
    if (typeof value === "string") check(s, value, flag);
    if (s.repeatable) {
      const prev = out[name];
      out[name] = [...(Array.isArray(prev) ? prev : []), String(value)];
    } else {
      if (out[name] !== undefined && typeof value === "string") throw new UsageError(`${flag} given more than once`);
      out[name] = value;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    if (tok === "--") {
      pos.push(...argv.slice(i + 1));
      break;
    }
    if (!tok.startsWith("-") || tok === "-") {
      pos.push(tok);
      continue;
    }
    let flag = tok;
    let inline: string | undefined;
    if (tok.startsWith("--")) {
      const eq = tok.indexOf("=");
      if (eq > 0) {
        flag = tok.slice(0, eq);
        inline = tok.slice(eq + 1);
      }
    } else if (tok.length > 2) {
      // -j4 style: a short flag with its value attached.
      flag = tok.slice(0, 2);
      inline = tok.slice(2);
    }
    let hit = byFlag.get(flag);
    let negated = false;
    if (hit === undefined && flag.startsWith("--no-")) {
      const base = byFlag.get(`--${flag.slice(5)}`);
      if (base !== undefined && base[1].type === "boolean") {
        hit = base;
        negated = true;
      }
    }
    if (hit === undefined) throw new UsageError(`unknown option ${flag} for '${command}'${suggest(flag, byFlag)}`);
    const [name, s] = hit;
    if (s.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value (got '${inline}')`);
      set(name, s, flag, !negated);
      continue;
    }
    const value = inline ?? argv[++i];
    const hint = valueHintOf(s);
    if (value === undefined) throw new UsageError(`${flag} needs a value${hint ? ` (${hint})` : ""}`);
    set(name, s, flag, value);
  }
  for (const [name, s] of positionals) {
    const v = pos.shift();
    if (v === undefined) {
      if (s.required ?? true) throw new UsageError(`missing argument ${valueHintOf(s) ?? name.toUpperCase()} for '${command}'`);
      continue;
    }
    check(s, v, name.toUpperCase());
    out[name] = v;
  }
  if (pos.length > 0) throw new UsageError(`unexpected argument '${pos[0]}' for '${command}'`);
  for (const [name, s] of Object.entries(specs)) {
    if (out[name] === undefined && s.type !== "positional" && s.required) {
      throw new UsageError(`${flagOf(name)} is required for '${command}'`);
    }
    if (out[name] === undefined && s.default !== undefined) out[name] = s.default;
  }
  return out;
}

/** A value against the spec's choices, then its validator. */
function check(s: OptionSpec, value: string, what: string): void {
  if (s.choices !== undefined) oneOf(s.choices)(value, what);
  s.validate?.(value, what);
}

function suggest(flag: string, known: Map<string, unknown>): string {
  let best = "";
  let bestD = 3;
  for (const k of known.keys()) {
    const d = distance(flag, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best === "" ? "" : ` (did you mean ${best}?)`;
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

// ---- validators --------------------------------------------------------------------

export function intIn(min: number, max: number): Validator {
  return (v, flag) => {
    if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got '${v}')`);
    }
  };
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parse "65536", "64K", "1M", "2G" (binary units). Returns NaN when malformed. */
export function parseSize(v: string): number {
  const m = /^(\d+)([kmg]?)(i?b)?$/i.exec(v.trim());
  if (m === null) return NaN;
  return Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()];
}

export function sizeIn(min: number, max: number): Validator {
  return (v, flag) => {
    const n = parseSize(v);
    if (!(n >= min && n <= max)) throw new UsageError(`${flag} must be a size from ${min} to ${max} bytes, like 1M (got '${v}')`);
  };
}

export function oneOf(values: readonly string[]): Validator {
  return (v, flag) => {
    if (!values.includes(v)) throw new UsageError(`${flag} must be one of ${values.join(", ")} (got '${v}')`);
  };
}

// ---- typed getters ------------------------------------------------------------------

export const str = (p: Parsed, k: string): string | undefined => (typeof p[k] === "string" ? (p[k] as string) : undefined);
export const bool = (p: Parsed, k: string): boolean => p[k] === true;
export const list = (p: Parsed, k: string): string[] => (Array.isArray(p[k]) ? (p[k] as string[]) : []);
export const int = (p: Parsed, k: string): number | undefined => (typeof p[k] === "string" ? Number(p[k]) : undefined);
export const size = (p: Parsed, k: string): number | undefined => (typeof p[k] === "string" ? parseSize(p[k] as string) : undefined);
