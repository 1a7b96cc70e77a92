// bench/lib/results-parse.ts — owns reading the figures back out of bench/RESULTS.md: the
// marked sections that copy.ts and net.ts write (results.ts), each entry's title (data set,
// description, counts, cache mode, file system), its meta line (date, machine, file system,
// runs) and its table (tool, runs, median/min/max seconds, ratio, target, skipped rows).
// The committed RESULTS.md is the source of truth for the charts (bench/out/ is git-ignored).
// Pure functions; never touches the file system. A line that does not have the shape
// report.ts and harness.ts write is an error naming the line, not a silently dropped figure.

import { parseEntries } from "./results.ts";

export interface ResultRow {
  tool: string;
  runs: number;
  /** null when the tool was skipped (then `skipped` says why). */
  median: number | null;
  min: number | null;
  max: number | null;
  /** median / baseline median; null when the table printed "-" or the row was skipped. */
  ratio: number | null;
  /** The issue's target for this tool's ratio, e.g. 0.8, and whether it was met. */
  target?: { value: number; met: boolean | null };
  skipped?: string;
}

export interface ResultEntry {
  /** "small10k:warm:ext4" (or "rerun:small100k:warm:ext4" for a scenario), as in the entry marker. */
  key: string;
  /** bench/net.ts --scenario entries: the id (key prefix) and the title (heading prefix). */
  scenario?: { id: string; title: string };
  set: string;
  mode: string;
  fs: string;
  /** "10,000 files of 3-5 KiB over 100-1000 directories" */
  description: string;
  files: number;
  dirs: number;
  mib: number;
  /** "2026-11-21 08:35 UTC" */
  date: string;
  /** "2 CPUs (nproc), AMD EPYC, Linux 6.18.44-fc-v669, 24 GiB RAM" */
  machine: string;
  /** "ext4 (journaled, rw,relatime) on /dev/loop0 <- /work/.bench-img/ext4.img" */
  fsDescription: string;
  /** The label of the baseline the ratios refer to ("cp -r", "rsync over ssh"). */
  baseline: string;
  rows: ResultRow[];
}

export interface ResultSection {
  name: string;
  /** The "## ..." heading line without the hashes. */
  heading: string;
  entries: ResultEntry[];
}

/** The text between <!-- NAME:begin --> and <!-- NAME:end -->, or undefined when absent. */
export function sectionBody(text: string, name: string): string | undefined {
  const b = `<!-- ${name}:begin -->`;
  const e = `<!-- ${name}:end -->`;
  const i = text.indexOf(b);
  const j = text.indexOf(e);
  if (i < 0 || j < i) return undefined;
  return text.slice(i + b.length, j);
}

/** Splits a markdown table row on unescaped '|' and unescapes "\|" in the cells. */
export function splitRow(line: string): string[] {
  const t = line.trim();
  if (!t.startsWith("|") || !t.endsWith("|")) throw new Error(`not a table row: ${line}`);
  const cells: string[] = [];
  let cur = "";
  for (let i = 1; i < t.length - 1; i++) {
    const c = t[i];
    if (c === "\\" && t[i + 1] === "|") {
      cur += "|";
      i++;
    } else if (c === "|") {
      cells.push(cur.trim());
      cur = "";
    } else {
      cur += c;
    }
  }
  cells.push(cur.trim());
  return cells;
}

function num(cell: string, what: string, line: string): number | null {
  if (cell === "-" || cell === "") return null;
  const v = Number(cell);
  if (!Number.isFinite(v)) throw new Error(`${what} is not a number ('${cell}') in: ${line}`);
  return v;
}

// "### [SCENARIO TITLE — ]SET: DESCRIPTION (N files, N dirs, X MiB), MODE cache, FS"
const TITLE_RE = /^### (?:(.+) — )?([^:\s]+): (.+) \((\d+) files, (\d+) dirs, ([\d.]+) MiB\), (\w+) cache, (\S+)$/;
const META_RE = /^(\d{4}-\d\d-\d\d \d\d:\d\d UTC); (\d+) timed runs? per tool.*?; file system: (.+); machine: (.+)\.$/;
const TARGET_RE = /^≤ ([\d.]+)(?: \((met|MISSED)\))?$/;

function parseRow(cells: string[], header: string[], line: string): ResultRow {
  const col = (name: string): string => cells[header.indexOf(name)] ?? "";
  const ratioCol = header.findIndex((h) => h.startsWith("ratio to "));
  const row: ResultRow = {
    tool: cells[0],
    runs: Number(cells[1]),
    median: null,
    min: null,
    max: null,
    ratio: null,
  };
  if (!Number.isInteger(row.runs)) throw new Error(`runs is not a count in: ${line}`);
  const med = col("median s");
  if (med.startsWith("skipped: ")) {
    row.skipped = med.slice("skipped: ".length);
  } else {
    row.median = num(med, "median", line);
    row.min = num(col("min s"), "min", line);
    row.max = num(col("max s"), "max", line);
    row.ratio = num(cells[ratioCol] ?? "", "ratio", line);
  }
  if (header.includes("target") && col("target") !== "") {
    const m = TARGET_RE.exec(col("target"));
    if (!m) throw new Error(`target not understood ('${col("target")}') in: ${line}`);
    row.target = { value: Number(m[1]), met: m[2] === undefined ? null : m[2] === "met" };
  }
  return row;
}

/** One entry body (title, meta lines, table), as report.ts's entryFor writes it. */
export function parseEntry(key: string, body: string): ResultEntry {
  const lines = body.split("\n").map((l) => l.trimEnd());
  const titleLine = lines.find((l) => l.startsWith("### "));
  const t = titleLine === undefined ? null : TITLE_RE.exec(titleLine);
  if (t === null) throw new Error(`entry ${key}: no title line of the form '### SET: DESCRIPTION (N files, N dirs, X MiB), MODE cache, FS'`);
  const metaLine = lines.find((l) => META_RE.test(l));
  const m = metaLine === undefined ? null : META_RE.exec(metaLine);
  if (m === null) throw new Error(`entry ${key}: no meta line ('DATE UTC; N timed runs per tool ...; file system: ...; machine: ....')`);
  const tableLines = lines.filter((l) => l.startsWith("|"));
  if (tableLines.length < 3) throw new Error(`entry ${key}: no table`);
  const header = splitRow(tableLines[0]);
  if (header[0] !== "tool" || header[1] !== "runs" || !header.includes("median s")) {
    throw new Error(`entry ${key}: unexpected table header: ${tableLines[0]}`);
  }
  const ratioHead = header.find((h) => h.startsWith("ratio to "));
  if (ratioHead === undefined) throw new Error(`entry ${key}: the table has no 'ratio to ...' column`);
  const rows = tableLines.slice(2).map((l) => parseRow(splitRow(l), header, l));
  const entry: ResultEntry = {
    key,
    set: t[2],
    description: t[3],
    files: Number(t[4]),
    dirs: Number(t[5]),
    mib: Number(t[6]),
    mode: t[7],
    fs: t[8],
    date: m[1],
    fsDescription: m[3],
    machine: m[4],
    baseline: ratioHead.slice("ratio to ".length),
    rows,
  };
  // A scenario entry (bench/net.ts --scenario) has the scenario id first in its key and its title first in its heading.
  const parts = key.split(":");
  if (t[1] !== undefined) {
    if (parts.length !== 4) throw new Error(`entry ${key}: a scenario title ('${t[1]}') but no scenario in the key`);
    entry.scenario = { id: parts[0], title: t[1] };
  }
  const expectKey = `${entry.scenario ? `${entry.scenario.id}:` : ""}${entry.set}:${entry.mode}:${entry.fs}`;
  if (key !== expectKey) {
    throw new Error(`entry ${key}: its title says ${entry.scenario ? `${entry.scenario.title}, ` : ""}${entry.set}, ${entry.mode} cache, ${entry.fs}`);
  }
  return entry;
}

/** The named section of a RESULTS.md text, or undefined when it has no such markers. */
export function parseSection(text: string, name: string): ResultSection | undefined {
  const body = sectionBody(text, name);
  if (body === undefined) return undefined;
  const heading = body.split("\n").find((l) => l.startsWith("## "));
  return {
    name,
    heading: heading === undefined ? name : heading.slice(3).trim(),
    entries: parseEntries(body).map((e) => parseEntry(e.key, e.body)),
  };
}
