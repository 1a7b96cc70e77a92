// tests/bench/datasets.test.ts — deterministic data-set generation, scaled down: the same
// seed gives the same file list and bytes, another seed differs, counts and size ranges
// follow the definitions, the completion marker is honoured, and the copy verifier
// catches an incomplete or altered copy.

import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import {
  DATASETS,
  ensureDataset,
  planDataset,
  readMarker,
  writeDataset,
  type DatasetName,
} from "../../bench/lib/datasets.ts";
import { treeStats, verifyCopy } from "../../bench/lib/verify.ts";

const tmp = mkdtempSync(join(tmpdir(), "uring-sync-bench-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SCALE = 0.01; // 10k files -> 100, 100-1000 dirs -> 1-10
const SIZE_SCALE = 1 / 64; // large8's 256 MiB -> 4 MiB (several pool chunks per file)

function listing(dir: string): Map<string, Buffer> {
  const files: string[] = [];
  treeStats(dir, files);
  files.sort();
  return new Map(files.map((f) => [f, readFileSync(join(dir, f))]));
}

describe("planDataset", () => {
  test("same seed, same plan; other seed, other plan", () => {
    const a = planDataset("small10k", { seed: 7, scale: SCALE });
    const b = planDataset("small10k", { seed: 7, scale: SCALE });
    const c = planDataset("small10k", { seed: 8, scale: SCALE });
    expect(b).toEqual(a);
    expect(c.files.map((f) => `${f.path}:${f.size}`)).not.toEqual(a.files.map((f) => `${f.path}:${f.size}`));
  });

  const cases: [DatasetName, number, number][] = [
    ["small10k", SCALE, 1],
    ["small100k", SCALE / 10, 1],
    ["medium10k", SCALE, 1],
    ["large8", 1, SIZE_SCALE],
    ["flat100k", SCALE / 10, 1],
  ];
  for (const [name, scale, sizeScale] of cases) {
    test(`${name}: counts and size ranges follow the definition`, () => {
      const spec = DATASETS[name];
      const p = planDataset(name, { scale, sizeScale });
      expect(p.files.length).toBe(Math.max(1, Math.round(spec.files * scale)));
      const dmin = spec.dirsMin === 0 ? 0 : Math.max(1, Math.round(spec.dirsMin * scale));
      const dmax = spec.dirsMax === 0 ? 0 : Math.max(1, Math.round(spec.dirsMax * scale));
      expect(p.dirs.length).toBeGreaterThanOrEqual(dmin);
      expect(p.dirs.length).toBeLessThanOrEqual(dmax);
      const lo = Math.round(spec.sizeMin * sizeScale);
      const hi = Math.round(spec.sizeMax * sizeScale);
      for (const f of p.files) {
        expect(f.size).toBeGreaterThanOrEqual(lo);
        expect(f.size).toBeLessThanOrEqual(hi);
      }
      expect(p.totalBytes).toBe(p.files.reduce((s, f) => s + f.size, 0));
      expect(new Set(p.files.map((f) => f.path)).size).toBe(p.files.length);
      if (spec.dirsMax === 0) expect(p.files.every((f) => !f.path.includes("/"))).toBe(true);
      // Sizes actually vary around the nominal.
      expect(new Set(p.files.map((f) => f.size)).size).toBeGreaterThan(Math.min(4, p.files.length - 1));
    });
  }

  test("full-size definitions: nominal counts and sizes", () => {
    const p = planDataset("small10k");
    expect(p.files.length).toBe(10_000);
    expect(p.dirs.length).toBeGreaterThanOrEqual(100);
    expect(p.dirs.length).toBeLessThanOrEqual(1000);
    const mean = p.totalBytes / p.files.length;
    expect(mean).toBeGreaterThan(3.9 * 1024);
    expect(mean).toBeLessThan(4.1 * 1024);
    expect(planDataset("flat100k").dirs.length).toBe(0);
    expect(planDataset("large8").files.length).toBe(8);
  });
});

describe("writeDataset", () => {
  test("same seed writes the same file list and bytes; another seed does not", () => {
    const plan = planDataset("small10k", { seed: 42, scale: SCALE });
    writeDataset(plan, join(tmp, "a"));
    writeDataset(planDataset("small10k", { seed: 42, scale: SCALE }), join(tmp, "b"));
    writeDataset(planDataset("small10k", { seed: 43, scale: SCALE }), join(tmp, "c"));
    const a = listing(join(tmp, "a"));
    const b = listing(join(tmp, "b"));
    const c = listing(join(tmp, "c"));
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [k, v] of a) expect(v.equals(b.get(k) as Buffer)).toBe(true);
    const st = treeStats(join(tmp, "a"));
    expect(st.files).toBe(plan.files.length);
    expect(st.dirs).toBe(plan.dirs.length);
    expect(st.bytes).toBe(plan.totalBytes);
    // Different seed: different content for files of the same name (if any overlap).
    let same = 0;
    for (const [k, v] of c) if (a.get(k)?.equals(v)) same++;
    expect(same).toBe(0);
  });

  test("contents are incompressible-ish and differ between files", () => {
    const plan = planDataset("large8", { scale: 1, sizeScale: SIZE_SCALE });
    const dir = join(tmp, "large");
    writeDataset(plan, dir);
    const files = listing(dir);
    expect(files.size).toBe(8);
    const bufs = [...files.values()];
    expect(bufs[0].equals(bufs[1])).toBe(false);
    const gz = gzipSync(bufs[0]);
    expect(gz.length).toBeGreaterThan(bufs[0].length * 0.9);
  });
});

describe("ensureDataset", () => {
  test("generates once, then reuses while the marker matches", () => {
    const root = join(tmp, "data");
    const first = ensureDataset(root, "medium10k", { scale: 0.002 });
    expect(first.reused).toBe(false);
    expect(readMarker(root, "medium10k")?.files).toBe(first.marker.files);
    const again = ensureDataset(root, "medium10k", { scale: 0.002 });
    expect(again.reused).toBe(true);
    const other = ensureDataset(root, "medium10k", { scale: 0.003 });
    expect(other.reused).toBe(false);
    expect(treeStats(other.dir).files).toBe(30);
  });
});

describe("verifyCopy", () => {
  test("accepts a complete copy, rejects missing files and altered bytes", () => {
    const plan = planDataset("small10k", { seed: 5, scale: SCALE });
    const src = join(tmp, "vsrc");
    writeDataset(plan, src);
    const expected = treeStats(src);
    const good = join(tmp, "vgood");
    cpSync(src, good, { recursive: true });
    expect(verifyCopy(src, good, expected)).toBeUndefined();

    const missing = join(tmp, "vmissing");
    cpSync(src, missing, { recursive: true });
    rmSync(join(missing, plan.files[3].path));
    expect(verifyCopy(src, missing, expected)).toContain("incomplete copy");

    const altered = join(tmp, "valtered");
    cpSync(src, altered, { recursive: true });
    const victim = plan.files.map((f) => f.path).sort()[0];
    const size = readFileSync(join(src, victim)).length;
    writeFileSync(join(altered, victim), Buffer.alloc(size)); // same size, zeros
    expect(verifyCopy(src, altered, expected)).toContain("content differs");

    expect(verifyCopy(src, join(tmp, "absent"), expected)).toContain("unreadable");
  });
});
