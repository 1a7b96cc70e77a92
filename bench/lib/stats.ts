// bench/lib/stats.ts — owns the arithmetic of benchmark summaries: median/min/max of
// wall-time samples, ratios against a baseline, and their fixed-width text formatting.
// Pure functions only (unit-tested in tests/bench/stats.test.ts).

export interface Summary {
  /** Number of samples. */
  n: number;
  median: number;
  min: number;
  max: number;
  mean: number;
}

function assertSamples(xs: readonly number[]): void {
  if (xs.length === 0) throw new RangeError("no samples");
  for (const x of xs) {
    if (!Number.isFinite(x)) throw new RangeError(`sample is not a finite number: ${x}`);
  }
}

/** Median; for an even count, the mean of the two middle samples. */
export function median(xs: readonly number[]): number {
  assertSamples(xs);
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarize(xs: readonly number[]): Summary {
  assertSamples(xs);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  return { n: xs.length, median: median(xs), min, max, mean: sum / xs.length };
}

/** value / baseline; NaN when the baseline is missing or not positive. */
export function ratio(value: number, baseline: number | undefined): number {
  if (baseline === undefined || !(baseline > 0) || !Number.isFinite(value)) return Number.NaN;
  return value / baseline;
}

/** Seconds with three decimals ("0.283"); "-" for NaN. */
export function formatSeconds(s: number): string {
  return Number.isFinite(s) ? s.toFixed(3) : "-";
}

/** Ratio with two decimals ("0.45"); "-" for NaN. */
export function formatRatio(r: number): string {
  return Number.isFinite(r) ? r.toFixed(2) : "-";
}

/** A target such as "≤ 0.45" checked against a measured ratio: "≤ 0.45 (met)" / "(MISSED)". */
export function formatTarget(r: number, target: number | undefined): string {
  if (target === undefined) return "";
  const t = `≤ ${target.toFixed(2)}`;
  if (!Number.isFinite(r)) return t;
  // Compare on the printed precision so "0.45" printed never reads as a miss of "≤ 0.45".
  return Number(r.toFixed(2)) <= target ? `${t} (met)` : `${t} (MISSED)`;
}

/** A GitHub-flavoured markdown table; cells must not contain '|'. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  const sep = `|${header.map(() => "---").join("|")}|`;
  return [line(header), sep, ...rows.map(line)].join("\n");
}
