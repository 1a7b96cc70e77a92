// tests/bench/results.test.ts — RESULTS.md section handling: only the text between a
// section's markers is rewritten, entries are replaced by key and kept otherwise, and
// other sections (e.g. the ring benchmark's) survive byte for byte.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEntries, updateSection } from "../../bench/lib/results.ts";

const tmp = mkdtempSync(join(tmpdir(), "uring-sync-results-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("sections are appended, then updated in place; foreign text is untouched", () => {
  const path = join(tmp, "RESULTS.md");
  const ring = "# Results\n\n## Ring\n<!-- ring:begin -->\nring table\n<!-- ring:end -->\n";
  writeFileSync(path, ring);
  updateSection(path, "copy", "## Copy", [
    { key: "small10k:warm:ext4", rank: 0, body: "A1" },
    { key: "medium10k:warm:ext4", rank: 4, body: "B1" },
  ]);
  let text = readFileSync(path, "utf8");
  expect(text.startsWith(ring)).toBe(true);
  expect(text).toContain("<!-- copy:begin -->");
  expect(text).toContain("<!-- copy:end -->");

  updateSection(path, "net", "## Net", [{ key: "small10k:warm:ext4", rank: 0, body: "N1" }]);
  updateSection(path, "copy", "## Copy v2", [
    { key: "medium10k:warm:ext4", rank: 4, body: "B2" },
    { key: "large8:warm:ext4", rank: 6, body: "C1" },
  ]);
  text = readFileSync(path, "utf8");
  expect(text.startsWith(ring)).toBe(true);
  const copy = text.slice(text.indexOf("<!-- copy:begin -->") + 19, text.indexOf("<!-- copy:end -->"));
  expect(copy).toContain("## Copy v2");
  expect(copy).not.toContain("## Copy\n");
  expect(parseEntries(copy).map((e) => `${e.key}=${e.body}`)).toEqual([
    "small10k:warm:ext4=A1",
    "medium10k:warm:ext4=B2",
    "large8:warm:ext4=C1",
  ]);
  const net = text.slice(text.indexOf("<!-- net:begin -->"), text.indexOf("<!-- net:end -->"));
  expect(parseEntries(net).map((e) => e.body)).toEqual(["N1"]);
  expect(text.indexOf("<!-- copy:begin -->")).toBeLessThan(text.indexOf("<!-- net:begin -->"));
});
