// Unit tests for src/cli/progress.ts: fitting a line to the terminal (0 columns = unknown
// width, as a pseudo-terminal without `stty cols` reports), and the receiver's line and ETA.
// (The copy's line: tests/copy/progress.test.ts.)
import { describe, expect, test } from "bun:test";
import { fitLine, ProgressLine, receiveEta, receiveLine, type ReceiveSnapshot } from "../../src/cli/progress.ts";
import { sendSnapshot } from "../../src/cli/send.ts";
import type { SendStats } from "../../src/net/sender.ts";

const MiB = 1024 * 1024;
const snap = (over: Partial<ReceiveSnapshot>): ReceiveSnapshot => ({
  files: 0, unchanged: 0, written: 0, settled: 0, announcedFiles: 0, announcedBytes: 0, listed: null, seconds: 1, ...over,
});

/** A stand-in for process.stderr: a terminal `columns` wide (or of unknown width). */
function term(columns: number | undefined): { out: NodeJS.WriteStream; text: () => string } {
  let text = "";
  const out = { columns, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  return { out, text: () => text };
}

const LONG = "receiving: 20/23 files, 149 MiB/150 MiB (99%), 28.6 MiB/s, ETA 0:01";

describe("fitLine", () => {
  test("unknown width (undefined, 0, NaN): the whole line, never just 'receiving:…'", () => {
    for (const cols of [undefined, 0, Number.NaN, -1]) expect(fitLine(LONG, cols)).toBe(LONG);
  });

  test("a known width: cut with an ellipsis, one column kept free", () => {
    expect(fitLine(LONG, 200)).toBe(LONG);
    expect(fitLine(LONG, LONG.length + 1)).toBe(LONG);
    const cut = fitLine(LONG, 40);
    expect(cut).toBe(`${LONG.slice(0, 38)}…`);
    expect(cut.length).toBe(39);
    // A very narrow terminal still shows a useful start.
    expect(fitLine(LONG, 5)).toBe(`${LONG.slice(0, 10)}…`);
  });

  test("ProgressLine (both ends draw with it): 0 columns shows the line whole; a redraw erases the old one", () => {
    const t = term(0);
    const bar = new ProgressLine(t.out);
    bar.show(LONG);
    expect(t.text()).toBe(`\r\x1b[K${LONG}`);
    bar.show(LONG); // unchanged: not drawn again
    expect(t.text()).toBe(`\r\x1b[K${LONG}`);
    bar.clear();
    expect(t.text()).toEndWith("\r\x1b[K");
    const narrow = term(30);
    new ProgressLine(narrow.out).show(LONG);
    expect(narrow.text()).toBe(`\r\x1b[K${LONG.slice(0, 28)}…`);
  });
});

describe("the receiver's ETA", () => {
  test("none before the sender's totals (LISTED) are known, however far along", () => {
    expect(receiveEta(snap({ written: 100 * MiB, announcedBytes: 150 * MiB, seconds: 5 }))).toBeNull();
  });

  test("none while nothing was written (no rate yet), or at time 0", () => {
    expect(receiveEta(snap({ listed: { files: 3, bytes: 10 * MiB }, written: 0, seconds: 3 }))).toBeNull();
    expect(receiveEta(snap({ listed: { files: 3, bytes: 10 * MiB }, written: MiB, seconds: 0 }))).toBeNull();
  });

  test("remaining bytes at the rate so far; what needs no writing (unchanged, resumed, holes) is not remaining", () => {
    // 100 MiB of 400 in 10 s (10 MiB/s), 100 MiB unchanged: 200 MiB left = 20 s.
    expect(receiveEta(snap({ listed: { files: 10, bytes: 400 * MiB }, written: 100 * MiB, settled: 100 * MiB, seconds: 10 }))).toBe(20);
    // Everything accounted for: 0, never negative.
    expect(receiveEta(snap({ listed: { files: 1, bytes: 10 }, written: 8, settled: 5, seconds: 1 }))).toBe(0);
  });
});

describe("the receiver's line", () => {
  test("before LISTED: what arrived and what was announced so far, no ETA and no made-up total", () => {
    const l = receiveLine(snap({ files: 20, written: 149 * MiB, announcedFiles: 23, announcedBytes: 150 * MiB, seconds: 149 / 28.6 }));
    expect(l).toBe("receiving: 20 files, 149 MiB written (23 files, 150 MiB announced so far), 28.6 MiB/s");
    expect(l).not.toContain("ETA");
  });

  test("after LISTED: done/total files and bytes, percentage, rate and ETA", () => {
    const l = receiveLine(snap({ files: 15, unchanged: 5, written: 100 * MiB, settled: 100 * MiB, announcedFiles: 23, announcedBytes: 400 * MiB, listed: { files: 23, bytes: 400 * MiB }, seconds: 10 }));
    expect(l).toBe("receiving: 20/23 files, 200 MiB/400 MiB (50%), 10.0 MiB/s, ETA 0:20");
  });

  test("after LISTED with nothing written yet (a re-run of unchanged files): totals, no ETA", () => {
    const l = receiveLine(snap({ unchanged: 7, settled: 70, listed: { files: 9, bytes: 90 }, seconds: 2 }));
    expect(l).toBe("receiving: 7/9 files, 70 B/90 B (77%), 0 B/s");
  });
});

describe("the sender's ETA", () => {
  const stats = (over: Partial<SendStats>): SendStats => ({
    files: 0, dirs: 0, symlinks: 0, hardlinks: 0, skipped: 0, bytes: 0, announcedFiles: 0, announcedBytes: 0,
    unchanged: 0, deleted: 0, resumed: 0, wantedBytes: 0, settledBytes: 0, ...over,
  });

  test("none while the tree is still being listed", () => {
    expect(sendSnapshot({ stats: stats({ announcedBytes: 100 * MiB }), sentBytes: 10 * MiB, scanning: true }, 1).eta).toBeNull();
  });

  test("unchanged files are done, not remaining: a re-run that skips 90 of 100 MiB has 5 MiB left, not 95", () => {
    const s = sendSnapshot({ stats: stats({ announcedFiles: 10, announcedBytes: 100 * MiB, unchanged: 9, settledBytes: 90 * MiB }), sentBytes: 5 * MiB, scanning: false }, 1);
    expect(s.bytesDone).toBe(95 * MiB);
    expect(s.filesDone).toBe(9);
    expect(s.eta).toBe(1); // 5 MiB left at 5 MiB/s
    // Nothing but SKIPs so far, nothing sent: no rate, so no ETA (not "forever").
    expect(sendSnapshot({ stats: stats({ announcedBytes: 100 * MiB, settledBytes: 50 * MiB }), sentBytes: 0, scanning: false }, 1).eta).toBeNull();
  });
});
