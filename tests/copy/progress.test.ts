// Unit tests for src/cli/progress.ts: what the copy's progress line says.
import { describe, expect, test } from "bun:test";
import { formatBytes, formatCount, formatDuration, plural, progressLine } from "../../src/cli/progress.ts";
import type { CopyProgress } from "../../src/copy/engine.ts";

const p = (over: Partial<CopyProgress>): CopyProgress => ({
  scanning: false, filesTotal: 0, bytesTotal: 0, filesDone: 0, bytesDone: 0, filesCopied: 0, filesSkipped: 0,
  filesFailed: 0, seconds: 1, rate: 0, eta: null, ...over,
});

describe("formatting", () => {
  test("sizes in binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(100 * 1024 * 1024)).toBe("100 MiB");
    expect(formatBytes(4.5 * 1024 ** 3)).toBe("4.50 GiB");
  });

  test("durations and counts", () => {
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(75)).toBe("1:15");
    expect(formatDuration(3725)).toBe("1:02:05");
    expect(formatCount(1234567)).toBe("1,234,567");
  });

  test("counted nouns: singular for exactly one, the plural otherwise", () => {
    expect(plural(1, "file")).toBe("1 file");
    expect(plural(0, "file")).toBe("0 files");
    expect(plural(12345, "file")).toBe("12,345 files");
    expect(plural(1, "entry", "entries")).toBe("1 entry");
    expect(plural(2, "entry", "entries")).toBe("2 entries");
  });
});

describe("progressLine", () => {
  test("while scanning: the count found so far, no ETA", () => {
    const l = progressLine(p({ scanning: true, filesTotal: 12345, bytesTotal: 2 * 1024 ** 3, filesDone: 100, bytesDone: 1024 ** 2, rate: 1024 ** 2, eta: 5 }));
    expect(l).toStartWith("scanning: 12,345 files (2.00 GiB) found; done 100 files,");
    expect(progressLine(p({ scanning: true, filesTotal: 1, filesDone: 1 }))).toStartWith("scanning: 1 file (0 B) found; done 1 file,");
    expect(l).toContain("1.00 MiB/s");
    expect(l).not.toContain("ETA");
  });

  test("after scanning: files, bytes, percentage, rate and ETA", () => {
    const l = progressLine(p({ filesTotal: 200, bytesTotal: 1000, filesDone: 50, bytesDone: 250, rate: 100, eta: 65, filesFailed: 2 }));
    expect(l).toBe("50/200 files, 250 B/1000 B (25%), 2 failed, 100 B/s, ETA 1:05");
  });
});
