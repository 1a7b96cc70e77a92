// tests/bench/stats.test.ts — the benchmark summary math (median, min/max, ratios and
// their formatting, target checks, markdown tables). No timing here, only arithmetic.

import { describe, expect, test } from "bun:test";
import {
  formatRatio,
  formatSeconds,
  formatTarget,
  markdownTable,
  median,
  ratio,
  summarize,
} from "../../bench/lib/stats.ts";

describe("median", () => {
  test("odd count picks the middle of the sorted samples", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([5])).toBe(5);
    expect(median([0.9, 0.3, 0.5, 0.1, 0.7])).toBe(0.5);
  });
  test("even count averages the two middle samples", () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([1, 2])).toBe(1.5);
  });
  test("does not reorder its input", () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
  test("is robust to one outlier", () => {
    expect(median([1.0, 1.1, 0.9, 50])).toBeCloseTo(1.05, 12);
  });
  test("rejects empty and non-finite samples", () => {
    expect(() => median([])).toThrow();
    expect(() => median([1, Number.NaN])).toThrow();
    expect(() => median([Infinity])).toThrow();
  });
});

describe("summarize", () => {
  test("min, max, mean, n and median", () => {
    const s = summarize([0.5, 0.2, 0.4, 0.3]);
    expect(s.n).toBe(4);
    expect(s.min).toBe(0.2);
    expect(s.max).toBe(0.5);
    expect(s.mean).toBeCloseTo(0.35, 12);
    expect(s.median).toBeCloseTo(0.35, 12);
  });
});

describe("ratio", () => {
  test("value over baseline", () => {
    expect(ratio(0.45, 1.0)).toBeCloseTo(0.45, 12);
    expect(ratio(3, 1.5)).toBe(2);
    expect(ratio(1.5, 1.5)).toBe(1);
  });
  test("missing or non-positive baseline gives NaN", () => {
    expect(ratio(1, undefined)).toBeNaN();
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(1, -1)).toBeNaN();
    expect(ratio(Number.NaN, 1)).toBeNaN();
  });
});

describe("formatting", () => {
  test("seconds with three decimals, ratios with two", () => {
    expect(formatSeconds(0.28349)).toBe("0.283");
    expect(formatSeconds(11.5)).toBe("11.500");
    expect(formatSeconds(Number.NaN)).toBe("-");
    expect(formatRatio(0.4449)).toBe("0.44");
    expect(formatRatio(1)).toBe("1.00");
    expect(formatRatio(Number.NaN)).toBe("-");
  });
  test("targets compare at the printed precision", () => {
    expect(formatTarget(0.449, 0.45)).toBe("≤ 0.45 (met)");
    expect(formatTarget(0.4549, 0.45)).toBe("≤ 0.45 (met)"); // prints as 0.45
    expect(formatTarget(0.456, 0.45)).toBe("≤ 0.45 (MISSED)");
    expect(formatTarget(1.2, 1)).toBe("≤ 1.00 (MISSED)");
    expect(formatTarget(Number.NaN, 0.8)).toBe("≤ 0.80");
    expect(formatTarget(0.5, undefined)).toBe("");
  });
  test("markdown table", () => {
    expect(markdownTable(["a", "b"], [["1", "2"], ["3", "4"]])).toBe("| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |");
  });
});
