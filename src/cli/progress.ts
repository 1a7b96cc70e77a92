/**
 * The copy's progress line on stderr, for terminals only: a scanning count while the
 * tree is being discovered, then files, bytes, rate and ETA. One line, redrawn in place
 * at most a few times a second, erased before anything else is printed and at the end.
 *
 * Owns: formatting sizes, rates and durations for people, the receiver's line and ETA
 * (`recv`), fitting a line to the terminal, and the redraw. Never decides whether to show
 * itself (the caller checks isTTY and --quiet).
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

/** What the receiver knows of a session, for its progress line (src/net/receiver.ts RecvStats). */
export interface ReceiveSnapshot {
  /** Files stored, and files DST already had (SKIP). */
  files: number;
  unchanged: number;
  /** Bytes written so far, and bytes that need no writing (unchanged files, resumed prefixes, holes). */
  written: number;
  settled: number;
  /** File ENTRYs so far and their bytes. */
  announcedFiles: number;
  announcedBytes: number;
  /** The sender's totals once its listing is complete (LISTED); null before. */
  listed: { files: number; bytes: number } | null;
  /** Since the session started. */
  seconds: number;
}

/**
 * Seconds left for the receiver: the bytes still to be written at the rate so far. Null
 * (no ETA shown) until the sender's totals are known, or while nothing was written yet.
 */
export function receiveEta(s: ReceiveSnapshot): number | null {
  if (s.listed === null || s.seconds <= 0 || s.written <= 0) return null;
  const remaining = Math.max(0, s.listed.bytes - s.written - s.settled);
  return remaining / (s.written / s.seconds);
}

/** The receiver's progress line: what arrived so far, then (totals known) against them, with an ETA. */
export function receiveLine(s: ReceiveSnapshot): string {
  const rate = `${formatBytes(s.seconds > 0 ? s.written / s.seconds : 0)}/s`;
  if (s.listed === null) {
    // The sender is still listing: only what has been announced so far is known.
    return `receiving: ${plural(s.files, "file")}, ${formatBytes(s.written)} written (${formatCount(s.announcedFiles)} files, ${formatBytes(s.announcedBytes)} announced so far), ${rate}`;
  }
  const total = s.listed.bytes;
  const done = Math.min(total, s.written + s.settled);
  const pct = total > 0 ? ` (${Math.min(100, Math.floor((100 * done) / total))}%)` : "";
  const eta = receiveEta(s);
  return `receiving: ${formatCount(s.files + s.unchanged)}/${formatCount(s.listed.files)} files, ${formatBytes(done)}/${formatBytes(total)}${pct}, ${rate}${eta === null ? "" : `, ETA ${formatDuration(eta)}`}`;
}

/**
 * `line` cut to a terminal `columns` wide (one column kept free, so the cursor never wraps).
 * A terminal of unknown width (undefined, or a pseudo-terminal reporting 0 columns) gets
 * the whole line: cutting it to a guess hid everything but "receiving:".
 */
export function fitLine(line: string, columns: number | undefined): string {
  if (columns === undefined || !(columns > 0) || line.length <= columns - 1) return line;
  return `${line.slice(0, Math.max(10, columns - 2))}…`;
}

/** Draws the progress line on a terminal stream, and gets it out of the way. */
export class ProgressLine {
  private shown = false;
  private last = "";

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(p: CopyProgress): void {
    this.show(progressLine(p));
  }

  /** Draws `text` (no terminal control characters) in place of the previous line. */
  show(text: string): void {
    const line = fitLine(text, this.out.columns);
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
