// Unit tests for src/copy/stage.ts: the hidden, locked staging sibling of a new DST, its
// publication by rename, and the removal of leftovers of killed runs (only unlocked ones).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { E } from "../../ffi/errno.ts";
import { closeStaging, discardStaging, openStaging, publishStaging, removeLeftovers, stagePrefix } from "../../src/copy/stage.ts";
import { copy } from "../../src/copy/engine.ts";

const work = mkdtempSync(join(tmpdir(), "uring-sync-stage-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const hidden = (dir: string, base: string): string[] => readdirSync(dir).filter((e) => e.startsWith(stagePrefix(base)));

describe("stagePrefix", () => {
  test("hidden, names the DST, and leaves room for a token within NAME_MAX (cut at a UTF-8 boundary)", () => {
    expect(stagePrefix("out")).toBe(".out.usync-stage-");
    for (const base of ["n".repeat(255), "漢".repeat(85)]) {
      const p = stagePrefix(base);
      expect(new TextEncoder().encode(p).length + 8 + 4).toBeLessThanOrEqual(255);
      expect(p).not.toContain("\uFFFD");
      expect(p.startsWith(".")).toBe(true);
    }
  });
});

describe("openStaging / publishStaging", () => {
  test("a private hidden sibling (parents made like mkdir -p), renamed to DST when published", () => {
    const dst = join(work, "a/b/out");
    const s = openStaging(dst, "cafe0123");
    expect(s.path.startsWith(join(work, "a/b/.out.usync-stage-cafe0123"))).toBe(true);
    expect(statSync(s.path).mode & 0o777).toBe(0o700);
    expect(existsSync(dst)).toBe(false);
    writeFileSync(join(s.path, "f"), "x");
    expect(publishStaging(s, false)).toBeNull();
    expect(readFileSync(join(dst, "f"), "utf8")).toBe("x");
    expect(hidden(join(work, "a/b"), "out")).toEqual([]);
  });

  test("an empty directory that appeared at DST meanwhile is replaced", () => {
    const dst = join(work, "empty-appeared");
    const s = openStaging(dst, "cafe0123");
    writeFileSync(join(s.path, "f"), "x");
    mkdirSync(dst);
    expect(publishStaging(s, true)).toBeNull();
    expect(readdirSync(dst)).toEqual(["f"]);
  });

  test("a non-empty DST that appeared meanwhile is left alone: error, and the staged tree is removed", () => {
    const dst = join(work, "full-appeared");
    const s = openStaging(dst, "cafe0123");
    writeFileSync(join(s.path, "f"), "mine");
    mkdirSync(dst);
    writeFileSync(join(dst, "theirs"), "theirs");
    const f = publishStaging(s, false);
    expect(f?.syscall).toBe("rename");
    expect<number[]>([E.ENOTEMPTY, E.EEXIST]).toContain(f?.errno ?? 0);
    expect(readdirSync(dst)).toEqual(["theirs"]);
    expect(hidden(work, "full-appeared")).toEqual([]);
  });

  test("discardStaging removes the staged tree", () => {
    const dst = join(work, "discarded");
    const s = openStaging(dst, "cafe0123");
    mkdirSync(join(s.path, "sub"));
    writeFileSync(join(s.path, "sub/f"), "x");
    discardStaging(s);
    expect(hidden(work, "discarded")).toEqual([]);
    expect(existsSync(dst)).toBe(false);
  });
});

describe("leftovers", () => {
  test("a locked staging tree (its run alive) is kept; once unlocked (its run gone) the next openStaging removes it", () => {
    const dst = join(work, "left");
    const first = openStaging(dst, "aaaaaaaa");
    writeFileSync(join(first.path, "partial"), "half");
    // Another run staging the same DST while the first is alive: both trees exist.
    const second = openStaging(dst, "bbbbbbbb");
    expect(hidden(work, "left").sort()).toEqual([first.name, second.name].sort());
    expect(removeLeftovers(second.parentFd, stagePrefix("left"))).toBe(0);
    // The first run dies (its lock goes with its fds): the next run cleans up.
    closeStaging(first);
    discardStaging(second);
    const third = openStaging(dst, "cccccccc");
    expect(hidden(work, "left")).toEqual([third.name]);
    discardStaging(third);
  });

  test("entries that merely look similar (other DST names, files) are not touched", () => {
    writeFileSync(join(work, ".left2.usync-stage-x-file"), "a file, not a staging tree");
    mkdirSync(join(work, ".left22.usync-stage-zzzz"));
    const s = openStaging(join(work, "left2"), "dddddddd");
    // The file is not a directory (cannot be opened as one), the other belongs to "left22".
    expect(existsSync(join(work, ".left2.usync-stage-x-file"))).toBe(true);
    expect(existsSync(join(work, ".left22.usync-stage-zzzz"))).toBe(true);
    discardStaging(s);
  });
});

describe("the engine stages a new DST", () => {
  test("a copy into an absent DST leaves no hidden sibling and the files under their names; into an existing DST nothing is staged", async () => {
    const src = join(work, "esrc");
    mkdirSync(join(src, "d/e"), { recursive: true });
    for (let i = 0; i < 40; i++) writeFileSync(join(src, `d/e/f${i}`), `file ${i}`);
    writeFileSync(join(src, "top"), "top");
    const dst = join(work, "edst/new");
    const r = await copy({ src, dst, jobs: 2 });
    expect(r.filesFailed).toBe(0);
    expect(r.filesCopied).toBe(41);
    expect(readFileSync(join(dst, "d/e/f7"), "utf8")).toBe("file 7");
    expect(readdirSync(join(work, "edst"))).toEqual(["new"]);
    // A second run into the now existing DST: nothing copied, nothing staged.
    const r2 = await copy({ src, dst });
    expect(r2.filesSkipped).toBe(41);
    expect(readdirSync(join(work, "edst"))).toEqual(["new"]);
  });

  test("an interrupted copy into an absent DST still publishes what was complete, and nothing partial", async () => {
    const src = join(work, "isrc");
    mkdirSync(src);
    for (let i = 0; i < 300; i++) writeFileSync(join(src, `f${i}`), Buffer.alloc(8192, i & 0xff));
    const dst = join(work, "idst");
    const ac = new AbortController();
    let seen = 0;
    const r = await copy({ src, dst, jobs: 1, queueDepth: 4 }, {
      signal: ac.signal,
      onProgress: () => {
        if (++seen === 1) ac.abort();
      },
      progressMs: 1,
    });
    if (!r.interrupted) return; // finished before the abort landed: nothing to check here
    expect(hidden(work, "idst")).toEqual([]);
    for (const name of existsSync(dst) ? readdirSync(dst) : []) {
      const i = Number(name.slice(1));
      expect(readFileSync(join(dst, name)).equals(Buffer.alloc(8192, i & 0xff)), `${name} is partial`).toBe(true);
    }
  });
});
