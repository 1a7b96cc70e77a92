/**
 * The copy's progress line on stderr, for terminals only: a scanning count while the
 * tree is being discovered, then files, bytes, rate and ETA. One line, redrawn in place
 * at most a few times a second, erased before anything else is printed and at the end.
 *
 * Owns: formatting sizes, rates and durations for people, and the redraw. Never decides
 * whether to show itself (the caller checks isTTY and --quiet).
 */
import type { CopyProgress } from "../copy/engine.ts";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 -> "1.5 KiB"; below 1 KiB in bytes. */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(v)} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${UNITS[u]}`;
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(sec).padStart(2, "0")}`;
}

/** 12345 -> "12,345". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/**
 * A count and its noun for people: plural(1, "file") -> "1 file", plural(12345, "file") ->
 * "12,345 files", plural(2, "entry", "entries") -> "2 entries". --json keeps bare numbers.
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${Math.round(n) === 1 ? one : many}`;
}

/** The progress line for one snapshot (no terminal control characters). */
export function progressLine(p: CopyProgress): string {
  const rate = `${formatBytes(p.rate)}/s`;
  const failed = p.filesFailed > 0 ? `, ${formatCount(p.filesFailed)} failed` : "";
  if (p.scanning) {
    return `scanning: ${plural(p.filesTotal, "file")} (${formatBytes(p.bytesTotal)}) found; done ${plural(p.filesDone, "file")}, ${formatBytes(p.bytesDone)}${failed}, ${rate}`;
  }
  const pct = p.bytesTotal > 0 ? ` (${Math.min(100, Math.floor((100 * p.bytesDone) / p.bytesTotal))}%)` : "";
  const eta = p.eta === null ? "" : `, ETA ${formatDuration(p.eta)}`;
  return `${formatCount(p.filesDone)}/${formatCount(p.filesTotal)} files, ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}${pct}${failed}, ${rate}${eta}`;
}

/** Draws the progress line on a terminal stream, and gets it out of the way. */
export class ProgressLine {
  private shown = false;
  private last = "";

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(p: CopyProgress): void {
    // A pseudo-terminal may report 0 columns: assume a usual width then.
    const cols = this.out.columns !== undefined && this.out.columns >= 20 ? this.out.columns : 100;
    let line = progressLine(p);
    if (line.length > cols - 1) line = line.slice(0, Math.max(10, cols - 2)) + "…";
    if (line === this.last && this.shown) return;
    this.last = line;
    this.out.write(`\r\x1b[K${line}`);
    this.shown = true;
  }

  /** Erase the line (before printing a message, and at the end). */
  clear(): void {
    if (!this.shown) return;
    this.out.write("\r\x1b[K");
    this.shown = false;
  }
}
