// tests/net/coverage.test.ts — the receiver's per-file coverage of split files
// (src/net/coverage.ts, docs/PROTOCOL.md 8.8): pieces in any order merge into one
// interval, overlaps and bytes past the size are refused, the count of separate pieces is
// capped, and the prefix a resume may keep is only the contiguous range from 0.

import { describe, expect, test } from "bun:test";
import { Coverage, MAX_INTERVALS } from "../../src/net/coverage.ts";
import { kindOf } from "../helpers/throws.ts";

describe("Coverage", () => {
  test("pieces in any order merge; complete only when [0, size) is covered", () => {
    const c = new Coverage(100);
    expect(c.empty).toBe(true);
    c.add(50, 25, "f");
    expect(c.intervals()).toEqual([[50, 75]]);
    expect(c.prefix).toBe(0);
    c.add(0, 10, "f");
    expect(c.prefix).toBe(10);
    c.add(75, 25, "f");
    expect(c.intervals()).toEqual([[0, 10], [50, 100]]);
    expect(c.complete).toBe(false);
    c.add(30, 20, "f");
    expect(c.intervals()).toEqual([[0, 10], [30, 100]]);
    c.add(10, 20, "f");
    expect(c.intervals()).toEqual([[0, 100]]);
    expect(c.complete).toBe(true);
    expect(c.prefix).toBe(100);
  });

  test("an empty file is complete; empty pieces change nothing", () => {
    expect(new Coverage(0).complete).toBe(true);
    const c = new Coverage(10);
    c.add(5, 0, "f");
    expect(c.empty).toBe(true);
  });

  test("overlaps are refused, whichever side they touch", () => {
    const base = (): Coverage => {
      const c = new Coverage(1000);
      c.add(100, 100, "f");
      c.add(300, 100, "f");
      return c;
    };
    for (const [s, n] of [[150, 10], [50, 51], [199, 2], [250, 51], [100, 100], [0, 1000], [199, 102], [200, 101]] as const) {
      expect(kindOf(() => base().add(s, n, "f")), `[${s}, +${n})`).toBe("frame");
    }
    // Touching is fine.
    const c = base();
    c.add(200, 100, "f");
    expect(c.intervals()).toEqual([[100, 400]]);
  });

  test("bytes past the announced size are refused", () => {
    const c = new Coverage(100);
    expect(kindOf(() => c.add(90, 11, "f"))).toBe("frame");
    expect(kindOf(() => c.add(100, 1, "f"))).toBe("frame");
    c.add(90, 10, "f");
    expect(c.intervals()).toEqual([[90, 100]]);
  });

  test(`more than ${MAX_INTERVALS} separate pieces: "limit"`, () => {
    const c = new Coverage(4 * MAX_INTERVALS + 10);
    for (let i = 0; i < MAX_INTERVALS; i++) c.add(2 * i, 1, "f");
    expect(kindOf(() => c.add(2 * MAX_INTERVALS + 4, 1, "f"))).toBe("limit");
    // Filling a gap merges (no new interval), so it is still accepted.
    c.add(1, 1, "f");
    expect(c.intervals().length).toBe(MAX_INTERVALS - 1);
  });

  test("clear() forgets everything (a restarted resume)", () => {
    const c = new Coverage(10);
    c.add(0, 5, "f");
    c.clear();
    expect(c.empty).toBe(true);
    c.add(0, 10, "f");
    expect(c.complete).toBe(true);
  });
});
