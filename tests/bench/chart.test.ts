// tests/bench/chart.test.ts — the benchmark charts: the RESULTS.md parser on a sample, the
// strict XML checker on good and broken inputs, the generator (deterministic, escapes text,
// names every tool, one chart per section/cache mode/file system), and the committed
// bench/charts/*.svg: well-formed, accessible, naming every tool of their data, and equal
// byte for byte to what bench/chart.ts draws from the committed bench/RESULTS.md (so the
// charts cannot drift from the figures).

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chartsFromResults, writeCharts } from "../../bench/chart.ts";
import { axisScale, wrap, xmlEscape } from "../../bench/lib/chart-svg.ts";
import { parseEntry, parseSection, splitRow } from "../../bench/lib/results-parse.ts";
import { findAll, parseXml, type XmlElement } from "./xml.ts";

const ROOT = resolve(import.meta.dir, "../..");
const RESULTS = join(ROOT, "bench", "RESULTS.md");
const CHARTS = join(ROOT, "bench", "charts");

const tmp = mkdtempSync(join(tmpdir(), "uring-sync-chart-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const META =
  "2026-11-21 08:35 UTC; 3 timed runs per tool after 1 untimed warm-up round, alternated; file system: ext4 (journaled) on /dev/loop0 <- /img & co; machine: 2 CPUs (nproc), Test CPU, Linux 6.1, 8 GiB RAM.";

function copyEntry(set: string, mode: string, rows: string[]): string {
  return [
    `<!-- entry:${set}:${mode}:ext4 rank:0 -->`,
    `### ${set}: 10,000 files of 3-5 KiB over 100-1000 directories (10000 files, 192 dirs, 38.9 MiB), ${mode} cache, ext4`,
    "",
    META,
    "Command: `bun bench/copy.ts --runs 3`; took 15 s; load average (1 min) 1.63 before, 2.24 after.",
    "",
    "| tool | runs | median s | min s | max s | ratio to cp -r | target |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}

const SAMPLE = [
  "# uring-sync benchmark results",
  "",
  "<!-- copy:begin -->",
  "## Local copy (bench/copy.ts)",
  "",
  "Header text | with a pipe.",
  "",
  copyEntry("small10k", "warm", [
    "| uring-sync | 3 | 0.250 | 0.200 | 0.300 | 0.50 | ≤ 0.80 (met) |",
    "| cp -r | 3 | 0.500 | 0.450 | 0.550 | 1.00 |  |",
    "| tar \\| tar | 3 | 0.750 | 0.700 | 0.800 | 1.50 |  |",
  ]),
  copyEntry("small10k", "cold", [
    "| uring-sync | 0 | skipped: exit 1: boom \\| bang |  |  |  | ≤ 0.45 |",
    "| cp -r | 3 | 1.000 | 0.900 | 1.100 | 1.00 |  |",
    "| cp -a | 3 | 1.200 | 1.100 | 1.300 | 1.20 |  |",
  ]),
  "<!-- copy:end -->",
  "",
  "<!-- ring:begin -->",
  "| not | a | results table |",
  "<!-- ring:end -->",
  "",
].join("\n");

function scenarioEntry(id: string, title: string, set: string, ratioTo: string, rows: string[], target = false): string {
  return [
    `<!-- entry:${id}:${set}:warm:ext4 rank:${id.length} -->`,
    `### ${title} — ${set}: 100,000 files of 3-5 KiB over 100-1000 directories (100000 files, 385 dirs, 390.4 MiB), warm cache, ext4`,
    "",
    META,
    "Command: `bun bench/net.ts --scenario all`; uring-sync: `dist/uring-sync` (sha256:0); commands: `a; b`; took 99 s; load average (1 min) 1.00 before, 1.00 after.",
    "",
    `| tool | runs | median s | min s | max s | ratio to ${ratioTo} |${target ? " target |" : ""}`,
    `|---|---|---|---|---|---|${target ? "---|" : ""}`,
    ...rows,
    "",
  ].join("\n");
}

/** A net-sync section as bench/net.ts --scenario writes it: scenario keys and titles, a baseline per scenario. */
const SCENARIOS_SAMPLE = [
  "<!-- net-sync:begin -->",
  "## Network sync scenarios over loopback (bench/net.ts --scenario)",
  "",
  scenarioEntry("rerun", "Re-run, nothing changed", "small100k", "rsync over ssh", [
    "| uring-sync (encrypted) | 3 | 0.900 | 0.800 | 1.000 | 0.30 | ≤ 0.33 (met) |",
    "| rsync -a over ssh (chacha20-poly1305) | 3 | 3.000 | 2.900 | 3.100 | 1.00 |  |",
  ], true),
  scenarioEntry("streams", "Parallel streams", "small100k", "-j 1", [
    "| uring-sync (encrypted) -j 1 | 0 | skipped: n/a: -j not supported (unknown option -j) |  |  |  |",
    "| uring-sync (encrypted) -j 2 | 0 | skipped: n/a: -j not supported (unknown option -j) |  |  |  |",
  ]),
  "<!-- net-sync:end -->",
  "",
].join("\n");

describe("RESULTS.md parser", () => {
  test("splitRow unescapes \\| and keeps empty cells", () => {
    expect(splitRow("| tar \\| tar | 3 |  | x |")).toEqual(["tar | tar", "3", "", "x"]);
    expect(() => splitRow("tar | tar")).toThrow("not a table row");
  });

  test("a section's entries: title, meta, rows, targets, skipped rows", () => {
    const s = parseSection(SAMPLE, "copy");
    expect(s).toBeDefined();
    if (s === undefined) return;
    expect(s.heading).toBe("Local copy (bench/copy.ts)");
    expect(s.entries.map((e) => e.key)).toEqual(["small10k:warm:ext4", "small10k:cold:ext4"]);
    const [warm, cold] = s.entries;
    expect(warm).toMatchObject({
      set: "small10k",
      mode: "warm",
      fs: "ext4",
      description: "10,000 files of 3-5 KiB over 100-1000 directories",
      files: 10000,
      dirs: 192,
      mib: 38.9,
      date: "2026-11-21 08:35 UTC",
      machine: "2 CPUs (nproc), Test CPU, Linux 6.1, 8 GiB RAM",
      fsDescription: "ext4 (journaled) on /dev/loop0 <- /img & co",
      baseline: "cp -r",
    });
    expect(warm.rows).toEqual([
      { tool: "uring-sync", runs: 3, median: 0.25, min: 0.2, max: 0.3, ratio: 0.5, target: { value: 0.8, met: true } },
      { tool: "cp -r", runs: 3, median: 0.5, min: 0.45, max: 0.55, ratio: 1 },
      { tool: "tar | tar", runs: 3, median: 0.75, min: 0.7, max: 0.8, ratio: 1.5 },
    ]);
    expect(cold.rows[0]).toEqual({
      tool: "uring-sync",
      runs: 0,
      median: null,
      min: null,
      max: null,
      ratio: null,
      skipped: "exit 1: boom | bang",
      target: { value: 0.45, met: null },
    });
  });

  test("scenario entries: the scenario id from the key, the title from the heading, per-entry baselines", () => {
    const s = parseSection(SCENARIOS_SAMPLE, "net-sync");
    expect(s?.entries.map((e) => [e.key, e.scenario, e.set, e.baseline])).toEqual([
      ["rerun:small100k:warm:ext4", { id: "rerun", title: "Re-run, nothing changed" }, "small100k", "rsync over ssh"],
      ["streams:small100k:warm:ext4", { id: "streams", title: "Parallel streams" }, "small100k", "-j 1"],
    ]);
    expect(s?.entries[0].rows[0].target).toEqual({ value: 0.33, met: true });
    expect(s?.entries[1].rows[1].skipped).toBe("n/a: -j not supported (unknown option -j)");
    const body = scenarioEntry("rerun", "Re-run, nothing changed", "small100k", "rsync over ssh", ["| x | 3 | 1.000 | 1.000 | 1.000 | 1.00 |"]);
    const withoutMarker = body.slice(body.indexOf("\n") + 1);
    expect(parseEntry("rerun:small100k:warm:ext4", withoutMarker).scenario?.id).toBe("rerun");
    expect(() => parseEntry("small100k:warm:ext4", withoutMarker)).toThrow("no scenario in the key");
    expect(() => parseEntry("streams:small100k:warm:ext4", withoutMarker.replace("Re-run, nothing changed — ", ""))).toThrow("its title says small100k");
  });

  test("absent sections are undefined; malformed entries are errors, not dropped figures", () => {
    expect(parseSection(SAMPLE, "net")).toBeUndefined();
    const good = copyEntry("small10k", "warm", ["| cp -r | 3 | 0.500 | 0.450 | 0.550 | 1.00 |  |"]).split("\n").slice(1).join("\n");
    expect(parseEntry("small10k:warm:ext4", good).rows).toHaveLength(1);
    expect(() => parseEntry("small10k:warm:ext4", good.replace("0.500", "fast"))).toThrow("median is not a number");
    expect(() => parseEntry("small10k:cold:ext4", good)).toThrow("its title says small10k, warm cache, ext4");
    expect(() => parseEntry("small10k:warm:ext4", good.replace(/^### .*$/m, "### nonsense"))).toThrow("no title line");
    expect(() => parseEntry("small10k:warm:ext4", good.replace("machine:", "box:"))).toThrow("no meta line");
    expect(() => parseEntry("small10k:warm:ext4", good.replace("ratio to cp -r", "speed"))).toThrow("no 'ratio to ...' column");
  });
});

describe("XML checker", () => {
  test("accepts a well-formed document and decodes text and attributes", () => {
    const doc = parseXml(
      `<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><svg a="1" b='x &amp; y'><title>A &lt;b&gt; &#x263A;&#65;</title><g/><![CDATA[<raw>]]></svg>\n`,
    );
    expect(doc.name).toBe("svg");
    expect(doc.attrs.get("b")).toBe("x & y");
    expect(findAll(doc, "title")[0].text).toBe("A <b> ☺A");
    expect(doc.children.map((c) => c.name)).toEqual(["title", "g"]);
    expect(doc.text).toBe("<raw>");
  });

  const broken: [string, string, string][] = [
    ["unclosed element", "<a><b></a>", "</a> closes <b>"],
    ["never closed", "<a><b/>", "unclosed <a>"],
    ["stray close tag", "<a/></b>", "content after the root element"],
    ["unquoted attribute", "<a x=1/>", "not quoted"],
    ["attribute without value", "<a x/>", "without '='"],
    ["duplicate attribute", `<a x="1" x="2"/>`, "duplicate attribute x"],
    ["attributes run together", `<a x="1"y="2"/>`, "expected whitespace"],
    ["'<' in an attribute", `<a x="<"/>`, "'<' in the value"],
    ["bare ampersand in text", "<a>fish & chips</a>", "'&' not followed"],
    ["unknown entity", "<a>&nbsp;</a>", "unknown entity"],
    ["bad character reference", "<a>&#0;</a>", "bad character reference"],
    ["two roots", "<a/><b/>", "content after the root element"],
    ["text after the root", "<a/>junk", "content after the root element"],
    ["text before the root", "junk<a/>", "expected the root element"],
    ["'--' in a comment", "<a><!-- x -- y --></a>", "'--' inside a comment"],
    ["XML declaration later", `<a><?xml version="1.0"?></a>`, "not at the start"],
    ["bad name", "<1a/>", "expected a name"],
    ["']]>' in text", "<a>x ]]> y</a>", "']]>' in text"],
    ["empty document", "", "expected the root element"],
  ];
  for (const [what, src, msg] of broken) {
    test(`rejects: ${what}`, () => {
      expect(() => parseXml(src)).toThrow(msg);
    });
  }
});

describe("chart helpers", () => {
  test("xmlEscape escapes the five XML specials", () => {
    expect(xmlEscape(`<a href="x">&'`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
  });
  test("wrap keeps words whole and lines within the limit", () => {
    expect(wrap("aa bb cc dd", 5)).toEqual(["aa bb", "cc dd"]);
    expect(wrap("averyverylongword x", 5)).toEqual(["averyverylongword", "x"]);
  });
  test("axisScale covers the maximum with at most 8 ticks", () => {
    for (const m of [0.3, 1, 1.06, 1.33, 2.42, 3.16, 7.9, 42]) {
      const s = axisScale(m);
      expect(s.max).toBeGreaterThanOrEqual(m);
      expect(s.max / s.step).toBeLessThanOrEqual(8);
      expect(s.max - s.step).toBeLessThan(m);
    }
  });
});

/** Visible text of the chart (the <text> elements), decoded. */
function visibleTexts(svg: XmlElement): string[] {
  return findAll(svg, "text").map((t) => t.text);
}

function checkAccessible(svg: XmlElement): void {
  expect(svg.name).toBe("svg");
  expect(svg.attrs.get("xmlns")).toBe("http://www.w3.org/2000/svg");
  expect(svg.attrs.get("role")).toBe("img");
  const [title, desc] = svg.children;
  expect(title.name).toBe("title");
  expect(desc.name).toBe("desc");
  expect(title.text.length).toBeGreaterThan(10);
  expect(desc.text.length).toBeGreaterThan(40);
  expect(svg.attrs.get("aria-labelledby")).toBe(`${title.attrs.get("id")} ${desc.attrs.get("id")}`);
  // An opaque background covering the whole canvas, so dark themes do not show dark-on-dark text.
  const bg = svg.children[2];
  expect(bg.name).toBe("rect");
  expect(bg.attrs.get("width")).toBe(svg.attrs.get("width"));
  expect(bg.attrs.get("height")).toBe(svg.attrs.get("height"));
  expect(bg.attrs.get("fill")).toBe("#ffffff");
  expect(bg.attrs.has("fill-opacity")).toBe(false);
}

describe("generator", () => {
  test("one chart per section and cache mode, deterministic, every tool named", () => {
    const a = chartsFromResults(SAMPLE);
    const b = chartsFromResults(SAMPLE);
    expect(a.charts.map((c) => c.name)).toEqual(["copy-warm-ext4.svg", "copy-cold-ext4.svg"]);
    expect(a.charts.map((c) => c.svg)).toEqual(b.charts.map((c) => c.svg));
    expect(a.notes).toEqual([
      "no net section with entries: run bench/net.ts",
      "no net-sync section with entries: run bench/net.ts --scenario rerun,changed1,streams,latency",
    ]);
    const [warm, cold] = a.charts;
    expect(warm.tools).toEqual(["uring-sync", "cp -r", "tar | tar"]);
    expect(cold.tools).toEqual(["uring-sync", "cp -r", "cp -a"]);
    for (const c of a.charts) {
      const svg = parseXml(c.svg);
      checkAccessible(svg);
      const texts = visibleTexts(svg);
      for (const tool of c.tools) expect(texts).toContain(tool);
    }
    const warmTexts = visibleTexts(parseXml(warm.svg));
    expect(warmTexts).toContain("0.50× (0.250 s)");
    expect(warmTexts).toContain("1.50× (0.750 s)");
    expect(warmTexts.some((t) => t.includes("/dev/loop0 <- /img & co"))).toBe(true);
    expect(warmTexts.some((t) => t.includes("2026-11-21"))).toBe(true);
    expect(warmTexts.some((t) => t.includes("2 CPUs (nproc), Test CPU, Linux 6.1, 8 GiB RAM"))).toBe(true);
    // The skipped tool is named and says so; it has no bar.
    const coldSvg = parseXml(cold.svg);
    expect(visibleTexts(coldSvg)).toContain("skipped");
    expect(findAll(coldSvg, "desc")[0].text).toContain("uring-sync skipped (exit 1: boom | bang)");
    const barTitles = findAll(coldSvg, "rect").flatMap((r) => findAll(r, "title").map((t) => t.text));
    expect(barTitles).toEqual(["cp -r: 1.00× (1.000 s)", "cp -a: 1.20× (1.200 s)"]);
  });

  test("scenario sections: one chart, a group per scenario naming its own baseline, skipped tools listed", () => {
    const { charts, notes } = chartsFromResults(SAMPLE + SCENARIOS_SAMPLE);
    expect(charts.map((c) => c.name)).toEqual(["copy-warm-ext4.svg", "copy-cold-ext4.svg", "net-sync-warm-ext4.svg"]);
    expect(notes).toEqual(["no net section with entries: run bench/net.ts"]);
    const c = charts[2];
    expect(c.section).toBe("net-sync");
    expect(c.tools).toEqual(["uring-sync (encrypted)", "rsync -a over ssh (chacha20-poly1305)", "uring-sync (encrypted) -j 1", "uring-sync (encrypted) -j 2"]);
    const svg = parseXml(c.svg);
    checkAccessible(svg);
    const texts = visibleTexts(svg);
    for (const tool of c.tools) expect(texts).toContain(tool);
    expect(texts.join(" ")).toContain("Re-run, nothing changed"); // wrapped to the label column
    expect(texts).toContain("baseline = 1.00");
    expect(texts.join(" ")).toContain("relative to -j 1");
    expect(texts.join(" ")).toContain("relative to rsync over ssh");
    expect(texts).toContain("0.30× (0.900 s)");
    expect(texts.filter((t) => t === "skipped")).toHaveLength(2);
  });

  test("writeCharts writes next to the results file and removes charts whose figures are gone", () => {
    const dir = join(tmp, "w");
    const results = join(tmp, "RESULTS.md");
    writeFileSync(results, SAMPLE);
    const lines = writeCharts(results, dir);
    expect(readdirSync(dir).sort()).toEqual(["copy-cold-ext4.svg", "copy-warm-ext4.svg"]);
    expect(lines.filter((l) => l.startsWith("wrote "))).toHaveLength(2);
    // Drop the cold entry: its chart goes, the warm one is unchanged.
    writeFileSync(results, SAMPLE.replace(/<!-- entry:small10k:cold:ext4[\s\S]*?(?=<!-- copy:end -->)/, ""));
    const again = writeCharts(results, dir);
    expect(readdirSync(dir)).toEqual(["copy-warm-ext4.svg"]);
    expect(again.some((l) => l.startsWith("removed ") && l.includes("copy-cold-ext4.svg"))).toBe(true);
    expect(again.some((l) => l.startsWith("unchanged ") && l.includes("copy-warm-ext4.svg"))).toBe(true);
    expect(again).toContain("note: no cold-cache entries in the copy section: no copy cold chart (run bench/copy.ts --mode cold)");
  });
});

describe("committed charts (bench/charts/) match bench/RESULTS.md", () => {
  const text = readFileSync(RESULTS, "utf8");
  const { charts } = chartsFromResults(text);

  test("the set of committed charts is exactly what the results yield", () => {
    expect(existsSync(CHARTS)).toBe(true);
    const committed = readdirSync(CHARTS).filter((f) => f.endsWith(".svg")).sort();
    expect(committed).toEqual(charts.map((c) => c.name).sort());
    // Every section/mode with entries has its chart (today: warm copy and warm net at least).
    expect(committed).toContain("copy-warm-ext4.svg");
    expect(committed).toContain("net-warm-ext4.svg");
  });

  for (const c of charts) {
    test(`${c.name}: well-formed, accessible, names every tool, equals the generator's output`, () => {
      const path = join(CHARTS, c.name);
      const committed = readFileSync(path, "utf8");
      const svg = parseXml(committed);
      checkAccessible(svg);
      const texts = visibleTexts(svg);
      const section = parseSection(text, c.section);
      const entries = (section?.entries ?? []).filter((e) => e.mode === c.mode && e.fs === c.fs);
      expect(entries.length).toBeGreaterThan(0);
      const all = texts.join(" ");
      for (const e of entries) {
        expect(all).toContain(e.set);
        if (e.scenario !== undefined) expect(all).toContain(e.scenario.title); // label lines are consecutive <text>s
        for (const r of e.rows) {
          expect(texts).toContain(r.tool);
          if (r.median !== null && r.ratio !== null) expect(texts).toContain(`${r.ratio.toFixed(2)}× (${r.median.toFixed(3)} s)`);
        }
      }
      if (committed !== c.svg) {
        throw new Error(`${path} is out of date with bench/RESULTS.md: run \`bun bench/chart.ts\` and commit the result`);
      }
    });
  }
});
