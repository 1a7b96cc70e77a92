// bench/lib/results.ts — owns the writing of bench/RESULTS.md: each benchmark rewrites
// only its own marked section (<!-- copy:begin -->...<!-- copy:end -->, <!-- net:begin
// -->...<!-- net:end -->). Inside a section, results are kept per entry (data set, cache
// mode, file system), so a later run of one data set replaces that entry and keeps others.
// Everything outside the markers (e.g. the ring benchmark section) is left untouched.

import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";

export interface Entry {
  /** e.g. "small10k:warm:ext4"; a later entry with the same key replaces the earlier one. */
  key: string;
  /** Sort rank inside the section (lower first); ties sorted by key. */
  rank: number;
  body: string;
}

const ENTRY_RE = /^<!-- entry:([^ ]+) rank:(\d+) -->$/;

function beginMarker(section: string): string {
  return `<!-- ${section}:begin -->`;
}
function endMarker(section: string): string {
  return `<!-- ${section}:end -->`;
}

/** Parses the entries of a section body (text between the markers). */
export function parseEntries(body: string): Entry[] {
  const entries: Entry[] = [];
  let cur: Entry | undefined;
  const lines: string[] = [];
  const flush = (): void => {
    if (cur !== undefined) {
      cur.body = lines.join("\n").trim();
      entries.push(cur);
    }
    lines.length = 0;
  };
  for (const line of body.split("\n")) {
    const m = ENTRY_RE.exec(line);
    if (m) {
      flush();
      cur = { key: m[1], rank: Number(m[2]), body: "" };
    } else if (cur !== undefined) {
      lines.push(line);
    }
  }
  flush();
  return entries;
}

/** Merges new entries into old ones (same key replaces), sorted by rank then key. */
export function mergeEntries(old: readonly Entry[], fresh: readonly Entry[]): Entry[] {
  const map = new Map<string, Entry>();
  for (const e of old) map.set(e.key, e);
  for (const e of fresh) map.set(e.key, e);
  return [...map.values()].sort((a, b) => a.rank - b.rank || a.key.localeCompare(b.key));
}

/** Replaces (or appends) one marked section of the results file. */
export function updateSection(path: string, section: string, header: string, fresh: readonly Entry[]): void {
  const text = existsSync(path) ? readFileSync(path, "utf8") : "# uring-sync benchmark results\n";
  const b = beginMarker(section);
  const e = endMarker(section);
  const i = text.indexOf(b);
  const j = text.indexOf(e);
  let before: string;
  let after: string;
  let oldBody = "";
  if (i >= 0 && j > i) {
    before = text.slice(0, i);
    after = text.slice(j + e.length);
    oldBody = text.slice(i + b.length, j);
  } else {
    before = text.endsWith("\n") ? `${text}\n` : `${text}\n\n`;
    after = "\n";
  }
  const entries = mergeEntries(parseEntries(oldBody), fresh);
  const parts = [b, header.trim(), ""];
  for (const en of entries) parts.push(`<!-- entry:${en.key} rank:${en.rank} -->`, en.body.trim(), "");
  parts.push(e);
  const out = `${before}${parts.join("\n")}${after}`;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, out);
  renameSync(tmp, path);
}
