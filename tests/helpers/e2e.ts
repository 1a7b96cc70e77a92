/**
 * Shared bits of the copy e2e tests: temp work dirs, the --json summary contract, and
 * assertions that print the whole CLI run next to the tree differences when they fail.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { formatResult, parseJson, type RunResult } from "./cli.ts";
import { diffTrees, snapshotTree, type DiffOptions, type Snapshot } from "./tree.ts";

/** A fresh dir under /tmp (world-traversable so an unprivileged child can reach inside). */
export function workDir(name: string): string {
  const d = mkdtempSync(`/tmp/uring-sync-e2e-${name}-`);
  chmodSync(d, 0o755);
  return d;
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
}

/** The documented --json fields and their types. */
export interface Summary {
  filesCopied: number;
  filesSkipped: number;
  filesFailed: number;
  bytes: number;
  seconds: number;
  backend: string;
  errors: unknown[];
  [other: string]: unknown;
}

const FIELDS: Record<string, "number" | "string" | "array"> = {
  filesCopied: "number",
  filesSkipped: "number",
  filesFailed: "number",
  bytes: "number",
  seconds: "number",
  backend: "string",
  errors: "array",
};

/** Parse and check the --json summary: every documented field, with its type. */
export function summaryOf(r: RunResult): Summary {
  const j = parseJson(r);
  const bad: string[] = [];
  for (const [k, t] of Object.entries(FIELDS)) {
    const v = j[k];
    const ok = t === "array" ? Array.isArray(v) : typeof v === t && (t !== "number" || Number.isFinite(v as number));
    if (!ok) bad.push(`${k} should be ${t === "array" ? "an array" : `a ${t}`}, is ${JSON.stringify(v)}`);
  }
  for (const k of ["filesCopied", "filesSkipped", "filesFailed", "bytes"]) {
    const v = j[k];
    if (typeof v === "number" && !(Number.isInteger(v) && v >= 0)) bad.push(`${k} should be a count >= 0, is ${v}`);
  }
  if (typeof j.seconds === "number" && !(j.seconds >= 0)) bad.push(`seconds should be >= 0, is ${j.seconds}`);
  if (typeof j.backend === "string" && j.backend.trim() === "") bad.push("backend is empty");
  if (bad.length > 0) throw new Error(`--json summary: ${bad.join("; ")}\n${formatResult(r)}`);
  return j as Summary;
}

/** Throw, listing differences and the run, unless the copy matches the source snapshot. */
export function expectSameTree(before: Snapshot, dstRoot: string, opts: DiffOptions = {}, r?: RunResult, what = "copy"): Snapshot {
  const after = snapshotTree(dstRoot);
  expectNoDiff(diffTrees(before, after, opts), what, r);
  return after;
}

export function expectNoDiff(diffs: string[], what: string, r?: RunResult): void {
  if (diffs.length === 0) return;
  const shown = diffs.slice(0, 60).join("\n  ");
  const more = diffs.length > 60 ? `\n  ... and ${diffs.length - 60} more` : "";
  throw new Error(`${what}: ${diffs.length} difference(s) from the source:\n  ${shown}${more}${r ? `\n${formatResult(r)}` : ""}`);
}

/** Names in a directory that are not in `allowed` (leftover temp files, strays). */
export function strays(dir: string, allowed: Iterable<string>): string[] {
  const ok = new Set(allowed);
  return readdirSync(dir).filter((n) => !ok.has(n));
}

/** A stderr line that mentions all the given fragments, or undefined. */
export function lineWith(text: string, ...fragments: string[]): string | undefined {
  return text.split("\n").find((l) => fragments.every((f) => l.includes(f)));
}
