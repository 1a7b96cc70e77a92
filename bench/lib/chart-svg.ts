// bench/lib/chart-svg.ts — owns drawing one grouped horizontal bar chart as a plain SVG
// string: title and subtitle lines, a legend naming every series, one group of bars per
// category with value labels, grid lines, an emphasised baseline line and optional target
// ticks. Hand-written SVG, no dependency. Accessible (role="img", <title>, <desc> with the
// figures as text) and readable in GitHub's light and dark themes (an explicit opaque
// background; the chart is drawn as a light card in both). Deterministic: the same input
// gives the same bytes (no clock, no randomness, fixed number formatting). Knows nothing
// about benchmarks; bench/chart.ts decides what the bars mean.

export interface Series {
  name: string;
  color: string;
}

export interface Bar {
  /** The series (tool) this bar belongs to. */
  series: string;
  /** Bar length in axis units; null draws no bar (e.g. a skipped tool), only the text. */
  value: number | null;
  /** The label printed after the bar. */
  text: string;
  /** A target on the axis, drawn as a tick across the bar. */
  target?: number;
}

export interface Group {
  label: string;
  /** Smaller lines under the label (wrapped to the label column). */
  sublabel: string;
  bars: Bar[];
}

export interface BarChart {
  /** Used as the id prefix of <title>/<desc>; letters, digits and '-' only. */
  id: string;
  title: string;
  /** Lines under the title (each wrapped to the chart width). */
  subtitle: string[];
  /** The whole chart as text, for screen readers and search. */
  desc: string;
  series: Series[];
  groups: Group[];
  /** A vertical reference line, e.g. the baseline tool at 1.0. */
  reference?: { value: number; label: string };
  /** What the axis numbers are, e.g. "× the time of cp -r". */
  axisLabel: string;
  /** Tick label for an axis value, e.g. v => `${v}×`. */
  tickFormat: (v: number) => string;
  /** The legend entry explaining target ticks; omitted when no bar has a target. */
  targetLegend?: string;
  footer: string[];
}

const W = 820;
const PAD = 20;
const LABEL_W = 180;
const VALUE_ROOM = 150;
const BAR_H = 14;
const BAR_GAP = 4;
const GROUP_GAP = 18;
const FONT = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const INK = "#1f2328";
const MUTED = "#57606a";
const GRID = "#d0d7de";
const BG = "#ffffff";

/** Escapes text for XML character data and attribute values. */
export function xmlEscape(s: string): string {
  return s
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/** Fixed-precision coordinates so output does not depend on float noise. */
function n(v: number): string {
  const r = Math.round(v * 10) / 10;
  return Object.is(r, -0) ? "0" : String(r);
}

/** Rough text width in px for the sans-serif font at `size` (no font metrics in a script). */
export function textWidth(s: string, size: number): number {
  return [...s].length * size * 0.56;
}

/** Greedy word wrap to at most `max` characters per line (a longer word gets its own line). */
export function wrap(s: string, max: number): string[] {
  const out: string[] = [];
  let cur = "";
  for (const word of s.split(/\s+/).filter((w) => w !== "")) {
    if (cur === "") cur = word;
    else if (cur.length + 1 + word.length <= max) cur += ` ${word}`;
    else {
      out.push(cur);
      cur = word;
    }
  }
  if (cur !== "") out.push(cur);
  return out;
}

/** A "nice" axis maximum and tick step covering `max`. */
export function axisScale(max: number): { max: number; step: number } {
  const m = Math.max(max, 1e-9);
  const steps = [0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000];
  for (const step of steps) {
    const top = Math.ceil(m / step - 1e-9) * step;
    if (top / step <= 8) return { max: Math.round(top * 1e6) / 1e6, step };
  }
  const step = 10 ** Math.ceil(Math.log10(m / 8));
  return { max: Math.ceil(m / step) * step, step };
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${n(x)}" y="${n(y)}"${attrs === "" ? "" : ` ${attrs}`}>${xmlEscape(s)}</text>`;
}

export function renderBarChart(c: BarChart): string {
  if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(c.id)) throw new Error(`chart id must be letters, digits and '-': ${c.id}`);
  const colors = new Map(c.series.map((s) => [s.name, s.color]));
  for (const g of c.groups) {
    for (const b of g.bars) if (!colors.has(b.series)) throw new Error(`bar of unknown series '${b.series}' in group ${g.label}`);
  }
  const body: string[] = [];
  let y = PAD;

  // Title and subtitle.
  y += 20;
  body.push(text(PAD, y, c.title, `font-size="18" font-weight="600"`));
  y += 6;
  for (const line of c.subtitle.flatMap((l) => wrap(l, Math.floor((W - 2 * PAD) / (12 * 0.56))))) {
    y += 17;
    body.push(text(PAD, y, line, `font-size="12" fill="${MUTED}"`));
  }

  // Legend: a swatch per series (flowing into rows), then the target tick if any.
  y += 14;
  const legend: { w: number; draw: (x: number, y: number) => string }[] = c.series.map((s) => ({
    w: 18 + textWidth(s.name, 12) + 22,
    draw: (x, yy) =>
      `<rect x="${n(x)}" y="${n(yy - 10)}" width="12" height="12" rx="2" fill="${s.color}"/>` + text(x + 18, yy, s.name, `font-size="12"`),
  }));
  const anyTarget = c.groups.some((g) => g.bars.some((b) => b.target !== undefined));
  if (anyTarget && c.targetLegend !== undefined) {
    const label = c.targetLegend;
    legend.push({
      w: 18 + textWidth(label, 12) + 22,
      draw: (x, yy) =>
        `<line x1="${n(x + 6)}" y1="${n(yy - 12)}" x2="${n(x + 6)}" y2="${n(yy + 3)}" stroke="${INK}" stroke-width="2"/>` +
        text(x + 18, yy, label, `font-size="12"`),
    });
  }
  let lx = PAD;
  y += 14;
  body.push(`<g class="legend">`);
  for (const item of legend) {
    if (lx > PAD && lx + item.w > W - PAD) {
      lx = PAD;
      y += 20;
    }
    body.push(item.draw(lx, y));
    lx += item.w;
  }
  body.push(`</g>`);

  // Plot area.
  const x0 = PAD + LABEL_W;
  const plotW = W - x0 - PAD - VALUE_ROOM;
  let maxV = c.reference?.value ?? 0;
  for (const g of c.groups) {
    for (const b of g.bars) {
      if (b.value !== null) maxV = Math.max(maxV, b.value);
      if (b.target !== undefined) maxV = Math.max(maxV, b.target);
    }
  }
  const scale = axisScale(maxV);
  const xOf = (v: number): number => x0 + (v / scale.max) * plotW;
  y += 34;
  const plotTop = y;
  const groupsSvg: string[] = [];
  for (const g of c.groups) {
    // Both wrapped to the label column (bold 13 px runs wider than the 0.56 em estimate).
    const label = wrap(g.label, Math.floor(LABEL_W / (13 * 0.64)));
    const subl = wrap(g.sublabel, Math.floor(LABEL_W / (11 * 0.56)) - 1);
    const barsH = g.bars.length * (BAR_H + BAR_GAP) - BAR_GAP;
    const labelH = label.length * 15 + 1 + subl.length * 14;
    const h = Math.max(barsH, labelH);
    groupsSvg.push(`<g class="group">`);
    label.forEach((l, i) => groupsSvg.push(text(PAD, y + 12 + i * 15, l, `font-size="13" font-weight="600"`)));
    const sy = y + 12 + label.length * 15;
    subl.forEach((l, i) => groupsSvg.push(text(PAD, sy + i * 14, l, `font-size="11" fill="${MUTED}"`)));
    g.bars.forEach((b, i) => {
      const by = y + i * (BAR_H + BAR_GAP);
      const w = b.value === null ? 0 : Math.max(b.value > 0 ? 1 : 0, xOf(b.value) - x0);
      if (b.value !== null) {
        groupsSvg.push(`<rect x="${n(x0)}" y="${n(by)}" width="${n(w)}" height="${BAR_H}" fill="${colors.get(b.series)}"><title>${xmlEscape(`${b.series}: ${b.text}`)}</title></rect>`);
      }
      if (b.target !== undefined) {
        const tx = xOf(b.target);
        groupsSvg.push(`<line x1="${n(tx)}" y1="${n(by - 2)}" x2="${n(tx)}" y2="${n(by + BAR_H + 2)}" stroke="${INK}" stroke-width="2"/>`);
      }
      // After the bar, or after the target tick when that lies beyond the bar. A
      // background-coloured plate keeps the label legible where it crosses a grid or reference line.
      const lx = Math.max(x0 + w, b.target !== undefined ? xOf(b.target) + 1 : 0);
      groupsSvg.push(`<rect x="${n(lx + 3)}" y="${n(by)}" width="${n(textWidth(b.text, 11) + 4)}" height="${BAR_H}" fill="${BG}" fill-opacity="0.85"/>`);
      groupsSvg.push(text(lx + 5, by + BAR_H - 3, b.text, `font-size="11"`));
    });
    groupsSvg.push(`</g>`);
    y += h + GROUP_GAP;
  }
  const plotBottom = y - GROUP_GAP + 6;

  // Grid and axis under the bars, reference line over the grid.
  const grid: string[] = [`<g class="axis">`];
  for (let i = 0; ; i++) {
    const v = Math.round(i * scale.step * 1e6) / 1e6;
    if (v > scale.max + 1e-9) break;
    const x = xOf(v);
    grid.push(`<line x1="${n(x)}" y1="${n(plotTop - 6)}" x2="${n(x)}" y2="${n(plotBottom)}" stroke="${GRID}" stroke-width="1"/>`);
    grid.push(text(x, plotBottom + 14, c.tickFormat(v), `font-size="11" fill="${MUTED}" text-anchor="middle"`));
  }
  grid.push(text(x0 + plotW / 2, plotBottom + 30, c.axisLabel, `font-size="12" fill="${MUTED}" text-anchor="middle"`));
  if (c.reference !== undefined) {
    const rx = xOf(c.reference.value);
    grid.push(`<line x1="${n(rx)}" y1="${n(plotTop - 10)}" x2="${n(rx)}" y2="${n(plotBottom)}" stroke="${INK}" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    grid.push(text(rx, plotTop - 13, c.reference.label, `font-size="11" text-anchor="middle"`));
  }
  grid.push(`</g>`);
  y = plotBottom + 30;

  // Footer.
  const foot: string[] = [];
  y += 8;
  for (const line of c.footer.flatMap((l) => wrap(l, Math.floor((W - 2 * PAD) / (11 * 0.56))))) {
    y += 15;
    foot.push(text(PAD, y, line, `font-size="11" fill="${MUTED}"`));
  }
  const H = Math.ceil(y + PAD);

  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${c.id}-title ${c.id}-desc">`,
    `<title id="${c.id}-title">${xmlEscape(c.title)}</title>`,
    `<desc id="${c.id}-desc">${xmlEscape(c.desc)}</desc>`,
    `<rect width="${W}" height="${H}" fill="${BG}"/>`,
    `<g font-family="${xmlEscape(FONT)}" fill="${INK}">`,
    ...body,
    ...grid,
    ...groupsSvg,
    ...foot,
    `</g>`,
    `</svg>`,
    "",
  ].join("\n");
}
