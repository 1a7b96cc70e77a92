// tests/e2e/copy-errors.test.ts — the local copy command when things go wrong: permission
// errors (run as an unprivileged user), ENOSPC on a small tmpfs, files that vanish, grow
// or shrink during the copy, /proc files whose size says 0, 255-byte names and trees
// deeper than PATH_MAX, the refused SRC/DST combinations, usage errors, and a copy killed
// or interrupted mid-file. Black box: only the CLI, the file system and its output.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  chmodSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readSync,
  openSync,
  closeSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  lstatSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { basename, dirname, join } from "node:path";
import { expectExit, failIfNotBuilt, formatResult, lines, requireRoot, runCli, startCli, type RunResult } from "../helpers/cli.ts";
import { expectNoDiff, expectSameTree, lineWith, removeDir, strays, summaryOf, workDir } from "../helpers/e2e.ts";
import { contentDigest, diffTrees, KiB, MiB, snapshotTree, writeBigFile, writeRandom, writeTree, type Snapshot } from "../helpers/tree.ts";

const work = workDir("errors");
const NOBODY = { uid: 65534, gid: 65534 };
const mounts: string[] = [];
let n = 0;

afterAll(() => {
  for (const m of mounts.reverse()) spawnSync("umount", ["-l", m]);
  removeDir(work);
}, 120_000);

function chownTree(root: string, uid: number, gid: number): void {
  lchownSync(root, uid, gid);
  if (!lstatSync(root).isDirectory()) return;
  for (const name of readdirSync(root)) chownTree(join(root, name), uid, gid);
}

/** Mount a tmpfs of `size` (e.g. "1M") at a new dir under work; unmounted in afterAll. */
function mountTmpfs(size: string): string {
  requireRoot("mount -t tmpfs");
  const dir = join(work, `mnt-${++n}`);
  mkdirSync(dir);
  const p = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir]);
  if (p.status !== 0) throw new Error(`mount -t tmpfs failed: ${p.stderr}`);
  mounts.push(dir);
  return dir;
}

function restrict(s: Snapshot, keep: (path: string) => boolean): Snapshot {
  return new Map([...s].filter(([k]) => keep(k)));
}

/** Every regular file in `dst` under a final name is byte-identical to its source; no strays. */
function expectNoPartialFiles(src: Snapshot, dstRoot: string, r: RunResult): Snapshot {
  const dst = snapshotTree(dstRoot);
  const bad: string[] = [];
  for (const [rel, e] of dst) {
    const s = src.get(rel);
    if (s === undefined) bad.push(`${JSON.stringify(rel)}: not in SRC (a leftover temp file?)`);
    else if (e.type === "file" && (s.type !== "file" || s.size !== e.size || s.digest !== e.digest)) {
      bad.push(`${JSON.stringify(rel)}: under its final name but not identical to the source (${e.size} of ${s.size} bytes)`);
    }
  }
  expectNoDiff(bad, `${dstRoot}`, r);
  return dst;
}

describe("permissions (run as an unprivileged user)", () => {
  let base: string;
  let src: string;
  const readable = ["ok.txt", "sub/ok2.txt", "z-after/ok3.txt"];
  beforeAll(() => {
    requireRoot("runs the CLI as uid 65534 with setpriv");
    base = join(work, "perm");
    src = join(base, "src");
    writeTree(src, {
      "ok.txt": "ok\n",
      "sub/ok2.txt": randomBytes(100 * KiB),
      "sub/unreadable.txt": "secret\n",
      "locked/inside.txt": "inside a locked dir\n",
      "z-after/ok3.txt": "after the errors\n",
    });
    // A complete earlier copy, for the --delete test (made before anything is unreadable).
    spawnSync("cp", ["-a", src, join(base, "prev")]);
    chownTree(base, NOBODY.uid, NOBODY.gid);
    chmodSync(join(src, "sub/unreadable.txt"), 0o000);
    chmodSync(join(src, "locked"), 0o000);
  }, 60_000);

  test("unreadable file and directory: exit 1, each reported with its path and EACCES, the rest copied", async () => {
    const dst = join(base, "dst");
    const before = snapshotTree(src);
    const r = await runCli([src, dst], { user: NOBODY });
    expectExit(r, 1);
    const e1 = lineWith(r.stderr, "sub/unreadable.txt", "EACCES");
    const e2 = lineWith(r.stderr, "locked", "EACCES");
    expect(e1, `an error naming sub/unreadable.txt and EACCES\n${formatResult(r)}`).toBeDefined();
    expect(e2, `an error naming locked and EACCES\n${formatResult(r)}`).toBeDefined();
    expect(lines(r.stderr).filter((l) => l !== e1 && l !== e2).length, `a summary after the errors\n${formatResult(r)}`).toBeGreaterThan(0);
    const after = expectNoPartialFiles(before, dst, r);
    expect(after.has("sub/unreadable.txt")).toBe(false);
    const ok = (p: string): boolean => readable.includes(p);
    expectNoDiff(diffTrees(restrict(before, ok), restrict(after, ok)), "readable files", r);
  });

  test("--json lists the failures with path and errno, and counts them", async () => {
    const r = await runCli([src, join(base, "dst-json"), "--json"], { user: NOBODY });
    expectExit(r, 1);
    const s = summaryOf(r);
    expect(s.filesCopied, formatResult(r)).toBe(readable.length);
    expect(s.filesFailed, formatResult(r)).toBeGreaterThanOrEqual(1);
    const errs = s.errors.map((e) => JSON.stringify(e));
    expect(errs.some((e) => e.includes("unreadable.txt") && e.includes("EACCES")), `errors: ${errs.join("\n")}`).toBe(true);
    expect(errs.some((e) => e.includes("locked") && e.includes("EACCES")), `errors: ${errs.join("\n")}`).toBe(true);
  });

  test("--quiet still reports the errors (and nothing else), exit 1", async () => {
    const r = await runCli([src, join(base, "dst-quiet"), "--quiet"], { user: NOBODY });
    expectExit(r, 1);
    expect(r.stdout).toBe("");
    const errs = lines(r.stderr);
    expect(errs.length, formatResult(r)).toBeGreaterThanOrEqual(2);
    for (const l of errs) expect(l, `--quiet printed more than errors and warnings\n${formatResult(r)}`).toMatch(/^uring-sync: (error|warning): /);
  });

  test("read-only directories and files copy fine without root (modes applied after the contents)", async () => {
    const ro = join(work, "perm-ro");
    const roSrc = join(ro, "src");
    writeTree(roSrc, { "ro-dir/inner/f.txt": "f\n", "ro-dir/g.txt": "g\n", "r400.txt": "r\n" });
    chownTree(ro, NOBODY.uid, NOBODY.gid);
    chmodSync(join(roSrc, "r400.txt"), 0o400);
    chmodSync(join(roSrc, "ro-dir/g.txt"), 0o444);
    chmodSync(join(roSrc, "ro-dir/inner"), 0o500);
    chmodSync(join(roSrc, "ro-dir"), 0o555);
    const before = snapshotTree(roSrc);
    const r = await runCli([roSrc, join(ro, "dst")], { user: NOBODY });
    expectExit(r, 0);
    expectSameTree(before, join(ro, "dst"), {}, r, "read-only tree copied as uid 65534");
  });

  test("--delete never deletes from DST what SRC could not read", async () => {
    const dst = join(base, "prev");
    chmodSync(join(dst, "locked"), 0o755); // a buggy engine could empty it
    chmodSync(join(dst, "sub/unreadable.txt"), 0o644);
    const r = await runCli([src, dst, "--delete"], { user: NOBODY });
    expectExit(r, 1);
    expect(readFileSync(join(dst, "locked/inside.txt"), "utf8"), "deleted the copy of an unreadable source dir's content").toBe("inside a locked dir\n");
    expect(readFileSync(join(dst, "sub/unreadable.txt"), "utf8"), "deleted the copy of an unreadable source file").toBe("secret\n");
  });
});

describe("ENOSPC (1 MiB tmpfs)", () => {
  test("copying 3 MiB: exit 1 naming ENOSPC, and no file under a final name is truncated; no temp files left", async () => {
    const mnt = mountTmpfs("1M");
    const src = join(work, "nospace-src");
    for (const name of ["a.bin", "b.bin", "c.bin", "d.bin", "e.bin"]) writeRandom(join(src, name), 600 * KiB);
    writeTree(src, { "small-1.txt": "1\n", "sub/small-2.txt": "2\n" });
    const before = snapshotTree(src);
    const r = await runCli([src, join(mnt, "dst")]);
    expectExit(r, 1);
    expect(lineWith(r.stderr, "ENOSPC"), `an error naming ENOSPC\n${formatResult(r)}`).toBeDefined();
    expectNoPartialFiles(before, join(mnt, "dst"), r);
  });

  test("an existing good copy survives when its replacement does not fit", async () => {
    const mnt = mountTmpfs("1M");
    const src = join(work, "nospace-src2");
    const old = randomBytes(300 * KiB);
    writeRandom(join(src, "keep.bin"), 800 * KiB);
    mkdirSync(join(mnt, "dst"));
    writeFileSync(join(mnt, "dst", "keep.bin"), old);
    const r = await runCli([src, join(mnt, "dst")]);
    expectExit(r, 1);
    expect(lineWith(r.stderr, "ENOSPC"), `an error naming ENOSPC\n${formatResult(r)}`).toBeDefined();
    expect(readFileSync(join(mnt, "dst", "keep.bin")).equals(old), "the old copy was damaged").toBe(true);
    expect(readdirSync(join(mnt, "dst")), "leftover temp files").toEqual(["keep.bin"]);
  });
});

/**
 * Where a running copy is writing: DST itself, or, while DST does not exist yet, the
 * hidden staging sibling the whole tree is renamed from at the end (src/copy/stage.ts).
 */
function liveDir(dst: string): string | null {
  if (existsSync(dst)) return dst;
  const prefix = `.${basename(dst)}.usync-stage-`;
  const s = readdirSync(dirname(dst)).find((e) => e.startsWith(prefix));
  return s === undefined ? null : join(dirname(dst), s);
}

/**
 * The two ways files are placed: into a DST that does not exist (staged: created directly
 * under final names in a hidden tree renamed at the end) and into an existing one (each
 * file hidden until complete: O_TMPFILE + link, or a temp name + rename).
 */
const PLACEMENTS = [["into an absent DST (staged)", false], ["into an existing empty DST", true]] as const;

describe.each(PLACEMENTS)("files changing under the copy, %s", (_how, premade) => {
  test("files deleted mid-copy: reported with ENOENT, no hang, the rest copied, nothing partial", async () => {
    const src = join(work, `vanish-src${premade ? "-e" : ""}`);
    const dst = join(work, `vanish-dst${premade ? "-e" : ""}`);
    if (premade) mkdirSync(dst);
    const content = new Map<string, Buffer>();
    mkdirSync(src);
    for (let i = 0; i < 1500; i++) {
      const name = `${String(i).padStart(4, "0")}.bin`;
      const data = randomBytes(16 * KiB);
      writeFileSync(join(src, name), data);
      content.set(name, data);
    }
    const run = startCli([src, dst, "-j", "1", "-q", "4"]);
    // As soon as the copy has started, freeze it and delete every file not yet copied.
    let stopped = false;
    let live: string | null = null;
    while (!stopped) {
      live = liveDir(dst);
      const entries = live !== null && existsSync(live) ? readdirSync(live) : [];
      if (entries.length > 0 || run.proc.exitCode !== null) {
        run.proc.kill("SIGSTOP");
        stopped = true;
      } else await Bun.sleep(1);
    }
    live = liveDir(dst);
    const done = new Set(live !== null ? readdirSync(live) : []);
    const deleted = new Set([...content.keys()].filter((k) => !done.has(k)));
    for (const k of deleted) rmSync(join(src, k));
    run.proc.kill("SIGCONT");
    const r = await run.result;
    failIfNotBuilt(r);
    expect(deleted.size, "the copy finished before it could be interrupted; test inconclusive").toBeGreaterThan(100);
    expectExit(r, 1);
    const enoent = r.stderr.split("\n").filter((l) => l.includes("ENOENT"));
    expect(enoent.length, `the vanished files should be reported with ENOENT\n${formatResult(r)}`).toBeGreaterThan(0);
    for (const l of enoent) expect([...deleted].some((k) => l.includes(k)), `ENOENT for a file that was not deleted: ${l}`).toBe(true);
    for (const name of readdirSync(dst)) {
      const want = content.get(name);
      expect(want, `leftover temp file ${name}`).toBeDefined();
      expect(readFileSync(join(dst, name)).equals(want!), `${name} is partial`).toBe(true);
    }
    for (const k of content.keys()) if (!deleted.has(k)) expect(existsSync(join(dst, k)), `${k} (not deleted) was not copied`).toBe(true);
  }, 60_000);

  /** A line of stderr reporting a problem with `name` (an errno name, or words about a change). */
  const reportedIn = (stderr: string, name: string): boolean =>
    stderr.split("\n").some((l) => l.includes(name) && /\bE[A-Z]+\b|chang|grew|grow|shrank|shrink|size/i.test(l));

  test("a file appended to all through the copy: no hang; a consistent (prefix) copy or a report", async () => {
    const src = join(work, `grow-src${premade ? "-e" : ""}`);
    const dst = join(work, `grow-dst${premade ? "-e" : ""}`);
    if (premade) mkdirSync(dst);
    writeBigFile(join(src, "g/grow.bin"), 64 * MiB);
    for (let i = 0; i < 50; i++) writeRandom(join(src, `f/${i}.dat`), 64 * KiB);
    const filler = snapshotTree(join(src, "f"));
    const run = startCli([src, dst, "-j", "1", "-c", "64K"]);
    // About 128 MB/s of appends for as long as the copy runs: whenever grow.bin is read, it grows.
    const chunk = randomBytes(256 * KiB);
    const appender = setInterval(() => appendFileSync(join(src, "g/grow.bin"), chunk), 2);
    let r: RunResult;
    try {
      r = await run.result;
    } finally {
      clearInterval(appender);
    }
    failIfNotBuilt(r);
    expect([0, 1], formatResult(r)).toContain(r.code ?? -1);
    const p = join(dst, "g/grow.bin");
    if (existsSync(p)) {
      const copy = readFileSync(p);
      const now = readFileSync(join(src, "g/grow.bin"));
      expect(copy.length, "grow.bin copy shorter than the file when the copy began").toBeGreaterThanOrEqual(64 * MiB);
      expect(now.subarray(0, copy.length).equals(copy), "grow.bin copy is not a snapshot (prefix) of the file").toBe(true);
    } else {
      expect(reportedIn(r.stderr, "grow.bin"), `grow.bin missing from DST without a report\n${formatResult(r)}`).toBe(true);
    }
    if (r.code === 1) expect(reportedIn(r.stderr, "grow.bin"), `exit 1 without a report about grow.bin\n${formatResult(r)}`).toBe(true);
    expectNoDiff(diffTrees(filler, snapshotTree(join(dst, "f"))), "untouched files", r);
    expect(strays(join(dst, "g"), ["grow.bin"]), "leftovers in g/").toEqual([]);
  }, 90_000);

  test("a file truncated while it is being copied: no hang; the old or new content, or a report; never padding", async () => {
    const src = join(work, `shrink-src${premade ? "-e" : ""}`);
    const dst = join(work, `shrink-dst${premade ? "-e" : ""}`);
    const file = join(src, "s/shrink.bin");
    for (let i = 0; i < 50; i++) writeRandom(join(src, `f/${i}.dat`), 64 * KiB);
    // The truncation must land while the copier holds the file: when its temp name shows up
    // in DST/s (or, staged, when shrink.bin shows up in the hidden tree: it is written there
    // under its own name). Under load the copy can outrun the polling, so try up to 3 times.
    for (let attempt = 1; ; attempt++) {
      rmSync(dst, { recursive: true, force: true });
      if (premade) mkdirSync(dst);
      writeBigFile(file, 192 * MiB);
      const old = contentDigest(file);
      let fresh = "";
      const run = startCli([src, dst, "-j", "1", "-c", "64K"]);
      while (run.proc.exitCode === null && run.proc.signalCode === null) {
        const live = liveDir(dst);
        const entries = live !== null && existsSync(join(live, "s")) ? readdirSync(join(live, "s")) : [];
        if (entries.some((e) => e !== "shrink.bin") || (live !== dst && entries.includes("shrink.bin"))) {
          run.proc.kill("SIGSTOP");
          truncateSync(file, MiB);
          fresh = contentDigest(file);
          run.proc.kill("SIGCONT");
          break;
        }
        if (entries.includes("shrink.bin")) break;
        await Bun.sleep(1);
      }
      const r = await run.result;
      failIfNotBuilt(r);
      if (fresh === "") {
        if (attempt < 3) continue;
        throw new Error(`no temp name seen in DST/s while shrink.bin was copied (3 tries): test inconclusive\n${formatResult(r)}`);
      }
      expect([0, 1], formatResult(r)).toContain(r.code ?? -1);
      const p = join(dst, "s/shrink.bin");
      if (existsSync(p)) {
        const got = contentDigest(p);
        expect(got === fresh || got === old, `shrink.bin: DST holds neither the old nor the new content (size ${lstatSync(p).size})\n${formatResult(r)}`).toBe(true);
      } else {
        expect(reportedIn(r.stderr, "shrink.bin"), `shrink.bin missing from DST without a report\n${formatResult(r)}`).toBe(true);
      }
      expect(strays(join(dst, "s"), ["shrink.bin"]), "leftovers in s/").toEqual([]);
      expect(readdirSync(join(dst, "f")).length, "the other files").toBe(50);
      return;
    }
  }, 120_000);
});

describe("files that lie about their size", () => {
  test("/proc files whose size says 0 are copied with their real content", async () => {
    const d = join(work, "proc");
    mkdirSync(d);
    const r1 = await runCli(["/proc/version", join(d, "version")]);
    expectExit(r1, 0);
    expect(readFileSync(join(d, "version"), "utf8")).toBe(readFileSync("/proc/version", "utf8"));
    const r2 = await runCli(["/proc/self/status", join(d, "status")]);
    expectExit(r2, 0);
    const status = readFileSync(join(d, "status"), "utf8");
    expect(status, "copy of /proc/self/status").toMatch(/^Name:\t.*\n[\s\S]*\nPid:\t\d+\n[\s\S]*\n$/);
    const r3 = await runCli(["/proc/kallsyms", join(d, "kallsyms"), "-c", "4K"]);
    expectExit(r3, 0);
    const want = readFileSync("/proc/kallsyms");
    expect(want.length).toBeGreaterThan(64 * KiB);
    expect(readFileSync(join(d, "kallsyms")).equals(want), "copy of /proc/kallsyms (several MiB, size 0)").toBe(true);
    // A directory of them (content read at a different moment may differ: uuid changes each read).
    const r4 = await runCli(["/proc/sys/kernel/random", join(d, "random")]);
    expectExit(r4, 0);
    const names = readdirSync("/proc/sys/kernel/random").sort();
    expect(readdirSync(join(d, "random")).sort()).toEqual(names);
    for (const name of names) expect(readFileSync(join(d, "random", name), "utf8"), name).toMatch(/^\S.*\n$/);
    expect(readFileSync(join(d, "random", "poolsize"), "utf8")).toBe(readFileSync("/proc/sys/kernel/random/poolsize", "utf8"));
  });
});

describe("EIO", () => {
  test("a file whose read fails with EIO: reported with its path, exit 1, the rest copied, no file under its name", async () => {
    requireRoot("bind mount");
    // Reading /proc/PID/mem at offset 0 fails with EIO; bind-mounted over a file in SRC, it
    // is a regular file (size 0) whose every read fails.
    const src = join(work, "eio-src");
    const dst = join(work, "eio-dst");
    writeTree(src, { "a-before.txt": "a\n", "sub/eio.bin": "", "z-after.txt": "z\n" });
    const sleeper = Bun.spawn(["sleep", "600"], { stdout: "ignore", stderr: "ignore" });
    const target = join(src, "sub/eio.bin");
    const m = spawnSync("mount", ["--bind", `/proc/${sleeper.pid}/mem`, target]);
    try {
      if (m.status !== 0) throw new Error(`bind mount: ${m.stderr}`);
      const r = await runCli([src, dst]);
      expectExit(r, 1);
      expect(lineWith(r.stderr, "sub/eio.bin", "EIO"), `an error naming sub/eio.bin and EIO\n${formatResult(r)}`).toBeDefined();
      expect(readFileSync(join(dst, "a-before.txt"), "utf8")).toBe("a\n");
      expect(readFileSync(join(dst, "z-after.txt"), "utf8")).toBe("z\n");
      expect(existsSync(join(dst, "sub/eio.bin")), "an (empty) file under the final name of an unreadable file").toBe(false);
      expect(strays(join(dst, "sub"), []), "leftovers in sub/").toEqual([]);
      const r2 = await runCli([`/proc/${sleeper.pid}/mem`, join(work, "eio-single")]);
      expectExit(r2, 1);
      expect(lineWith(r2.stderr, "mem", "EIO"), formatResult(r2)).toBeDefined();
      expect(existsSync(join(work, "eio-single")), "a file was left under the final name").toBe(false);
    } finally {
      spawnSync("umount", ["-l", target]);
      sleeper.kill();
    }
  });
});

describe("long names", () => {
  test("255-byte names (ASCII and UTF-8, files and dirs) copy and update; temp names stay within NAME_MAX", async () => {
    const src = join(work, "long-src");
    const dst = join(work, "long-dst");
    const a = "n".repeat(255);
    const u = "漢".repeat(85); // 255 bytes in UTF-8
    const d = "d".repeat(255);
    writeTree(src, { [a]: "ascii\n", [u]: "utf-8\n", [`${d}/${"f".repeat(255)}`]: "nested\n" });
    expect(Buffer.byteLength(u)).toBe(255);
    const before = snapshotTree(src);
    const r1 = await runCli([src, dst]);
    expectExit(r1, 0);
    expectSameTree(before, dst, {}, r1, "255-byte names");
    writeFileSync(join(src, a), "ascii, version 2\n"); // replacing it needs a temp name next to it
    const before2 = snapshotTree(src);
    const r2 = await runCli([src, dst]);
    expectExit(r2, 0);
    expectSameTree(before2, dst, { ignoreAtime: true }, r2, "255-byte name updated");
  });

  test("a tree deeper than PATH_MAX: copied, or reported with ENAMETOOLONG while the rest is copied", async () => {
    const src = join(work, "deep-src");
    const dst = join(work, "deep-dst");
    mkdirSync(src);
    const mk = spawnSync("bash", ["-c", `set -e; cd "$1"; echo top > top.txt
      for i in $(seq 1 18); do n=$(printf 'd%02d_%0245d' $i 0); mkdir "$n"; cd "$n"; done; echo leaf-content > leaf.txt`, "bash", src]);
    if (mk.status !== 0) throw new Error(`building the deep tree: ${mk.stderr}`);
    const list = (root: string): string[] => spawnSync("find", [root, "-printf", "%P\\n"]).stdout.toString().split("\n").filter((l) => l !== "").sort();
    const want = list(src);
    expect(want.find((p) => p.endsWith("leaf.txt"))!.length + src.length).toBeGreaterThan(4096);
    const r = await runCli([src, dst]);
    expect([0, 1], formatResult(r)).toContain(r.code ?? -1);
    const got = list(dst);
    expect(got.filter((p) => !want.includes(p)), "entries in DST not in SRC").toEqual([]);
    expect(readFileSync(join(dst, "top.txt"), "utf8")).toBe("top\n");
    if (r.code === 0) {
      expect(got).toEqual(want);
      const leaf = spawnSync("find", [dst, "-name", "leaf.txt", "-execdir", "cat", "{}", ";"]).stdout.toString();
      expect(leaf).toBe("leaf-content\n");
    } else {
      expect(lineWith(r.stderr, "ENAMETOOLONG"), formatResult(r)).toBeDefined();
    }
  });
});

describe("refused and malformed command lines", () => {
  let src: string;
  let outer: string;
  let link: string;
  beforeAll(() => {
    src = join(work, "refuse-src");
    writeTree(src, { "a.txt": "a\n", "sub/b.txt": "b\n" });
    outer = join(work, "refuse-outer");
    writeTree(outer, { "inner/c.txt": "c\n", "other.txt": "o\n" });
    link = join(work, "refuse-link");
    symlinkSync(src, link);
  }, 60_000);

  const CASES: [string, () => [string, string], () => string[]][] = [
    ["DST inside SRC (existing subdir)", () => [src, join(src, "sub", "dst")], () => [join(src, "sub", "dst")]],
    ["DST inside SRC (new dir)", () => [src, join(src, "newdst")], () => [join(src, "newdst")]],
    ["DST inside SRC through a symlink", () => [src, `${link}/newdst`], () => [join(src, "newdst")]],
    ["SRC inside DST", () => [join(outer, "inner"), outer], () => []],
    ["SRC equal to DST", () => [src, src], () => []],
    ["SRC equal to DST with a trailing slash", () => [src, `${src}/`], () => []],
    ["SRC equal to DST through ..", () => [src, `${src}/sub/..`], () => []],
    ["SRC equal to DST through a symlink", () => [src, link], () => []],
    ["SRC a symlink to DST", () => [link, src], () => []],
  ];
  test.each(CASES)("%s: exit 2 with a clear error, nothing written", async (_label, paths, mustNotExist) => {
    const [s, d] = paths();
    const beforeSrc = snapshotTree(src);
    const beforeOuter = snapshotTree(outer);
    const r = await runCli([s, d]);
    expectExit(r, 2);
    expect(lines(r.stderr)[0] ?? "", formatResult(r)).toStartWith("uring-sync: error: ");
    for (const p of mustNotExist()) expect(existsSync(p), `${p} was created`).toBe(false);
    expectNoDiff(diffTrees(beforeSrc, snapshotTree(src), { ignoreAtime: true }), "SRC", r);
    expectNoDiff(diffTrees(beforeOuter, snapshotTree(outer), { ignoreAtime: true }), "outer", r);
  });

  test("SRC missing: non-zero exit, one line naming the path and ENOENT, DST not created", async () => {
    const missing = join(work, "does-not-exist");
    const dst = join(work, "never-created");
    const r = await runCli([missing, dst]);
    expect([1, 2], formatResult(r)).toContain(r.code ?? -1);
    expect(lines(r.stderr).length, formatResult(r)).toBe(1);
    expect(lineWith(r.stderr, missing, "ENOENT"), formatResult(r)).toBeDefined();
    expect(existsSync(dst)).toBe(false);
  });

  const USAGE: [string[], string][] = [
    [["--frobnicate"], "--frobnicate"],
    [["-q", "-5"], "-q"],
    [["-q", "0"], "-q"],
    [["-j", "0"], "-j"],
    [["-j", "65"], "-j"],
    [["-c", "1K"], "-c"],
    [["-c", "12Q"], "-c"],
    [["--exclude"], "--exclude"],
    [["third-positional"], "third-positional"],
  ];
  test.each(USAGE)("usage error %p: exit 2 naming it, nothing written", async (extra, named) => {
    const dst = join(work, `usage-dst-${++n}`);
    const r = await runCli([src, dst, ...extra]);
    expectExit(r, 2);
    expect(r.stderr, formatResult(r)).toContain(named);
    expect(existsSync(dst)).toBe(false);
  });

  test("DST missing: exit 2", async () => {
    const r = await runCli([src]);
    expectExit(r, 2);
    expect(r.stderr).toContain("DST");
  });
});

describe("killed or interrupted mid-file", () => {
  const SIZE = 1024 * MiB + 4097; // just over copy_file_range's 1 GiB chunk, unaligned tail
  let src: string;
  let digest: string;
  beforeAll(() => {
    src = join(work, "kill-src");
    writeBigFile(join(src, "big.bin"), SIZE);
    digest = contentDigest(join(src, "big.bin"));
  }, 120_000);

  /** wchar from /proc/PID/io: bytes the process has written. */
  function written(pid: number): number {
    try {
      const m = /wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** Start a copy, wait until it is writing big.bin (a new entry in DST, big.bin changing, or 64 MiB written), send `signal`. */
  async function interrupt(dst: string, signal: "SIGKILL" | "SIGTERM" | "SIGINT", known: string[]): Promise<RunResult> {
    const sizeOf = (p: string): number => (existsSync(p) ? lstatSync(p).size : -1);
    const initial = sizeOf(join(dst, "big.bin"));
    const run = startCli([src, dst, "-j", "1"]);
    const t0 = performance.now();
    for (;;) {
      if (run.proc.exitCode !== null) break;
      // A temp entry appeared (in DST, or in the hidden staging tree of an absent DST), or
      // big.bin itself is being written in place.
      const live = liveDir(dst);
      const midway = (live !== null && existsSync(live) && readdirSync(live).some((e) => !known.includes(e))) || (known.includes("big.bin") && sizeOf(join(dst, "big.bin")) !== initial);
      if (midway || written(run.proc.pid) > 64 * MiB || performance.now() - t0 > 10_000) break;
      await Bun.sleep(1);
    }
    run.proc.kill(signal);
    const r = await run.result;
    failIfNotBuilt(r);
    return r;
  }

  function finalIsWhole(path: string, old: Buffer | undefined): void {
    if (!existsSync(path)) return;
    const st = lstatSync(path);
    if (old !== undefined && st.size === old.length) {
      const fd = openSync(path, "r");
      const buf = Buffer.alloc(old.length);
      readSync(fd, buf, 0, old.length, 0);
      closeSync(fd);
      if (buf.equals(old)) return;
    }
    expect(st.size, `${path}: a partial file under the final name`).toBe(SIZE);
    expect(contentDigest(path), `${path}: under the final name but not the source's content`).toBe(digest);
  }

  test("a dense file over 1 GiB copies exactly (several copy_file_range chunks, unaligned tail)", async () => {
    const dst = join(work, "dense-dst");
    const before = snapshotTree(src);
    const r = await runCli([src, dst]);
    expectExit(r, 0);
    expectSameTree(before, dst, {}, r, "1 GiB + 4097 bytes");
    rmSync(dst, { recursive: true, force: true });
  }, 120_000);

  test("SIGKILL mid-copy into an absent DST: DST does not appear; the next run removes the hidden leftover and copies all", async () => {
    const dst = join(work, "kill-dst1");
    const r = await interrupt(dst, "SIGKILL", []);
    expect(r.signal, `the copy ended before it was killed; test inconclusive\n${formatResult(r)}`).toBe("SIGKILL");
    expect(existsSync(dst), "DST appeared before the copy was complete").toBe(false);
    const leftover = liveDir(dst);
    expect(leftover, "the killed run's hidden staging tree").not.toBeNull();
    const again = await runCli([src, dst, "-j", "1"]);
    expectExit(again, 0);
    finalIsWhole(join(dst, "big.bin"), undefined);
    expect(existsSync(join(dst, "big.bin")), "big.bin after the second run").toBe(true);
    expect(existsSync(leftover as string), "the killed run's leftover was not removed").toBe(false);
    expect(liveDir(dst), "DST").toBe(dst);
    expect(readdirSync(work).filter((e) => e.includes("kill-dst1.usync-")), "hidden staging trees left").toEqual([]);
    rmSync(dst, { recursive: true, force: true });
  }, 90_000);

  test("SIGKILL mid-copy into an existing empty DST: no partial file under the final name", async () => {
    const dst = join(work, "kill-dst1e");
    mkdirSync(dst);
    const r = await interrupt(dst, "SIGKILL", []);
    expect(r.signal, `the copy ended before it was killed; test inconclusive\n${formatResult(r)}`).toBe("SIGKILL");
    finalIsWhole(join(dst, "big.bin"), undefined);
    rmSync(dst, { recursive: true, force: true });
  }, 60_000);

  test("SIGKILL mid-copy over an older version: the old file is still there, whole", async () => {
    const dst = join(work, "kill-dst2");
    const old = Buffer.from("the previous, complete version\n");
    mkdirSync(dst);
    writeFileSync(join(dst, "big.bin"), old);
    const r = await interrupt(dst, "SIGKILL", ["big.bin"]);
    expect(r.signal, `the copy ended before it was killed; test inconclusive\n${formatResult(r)}`).toBe("SIGKILL");
    finalIsWhole(join(dst, "big.bin"), old);
    expect(existsSync(join(dst, "big.bin")), "the old version disappeared").toBe(true);
    rmSync(dst, { recursive: true, force: true });
  }, 60_000);

  test.each(["SIGTERM", "SIGINT"] as const)("%s mid-copy: exit 130, temp files removed, no partial file", async (sig) => {
    const dst = join(work, `${sig}-dst`);
    const r = await interrupt(dst, sig, []);
    expect(r.code, `${sig} should end the run with exit 130\n${formatResult(r)}`).toBe(130);
    if (existsSync(dst)) expect(strays(dst, ["big.bin"]), `temp files left after ${sig}`).toEqual([]);
    finalIsWhole(join(dst, "big.bin"), undefined);
    rmSync(dst, { recursive: true, force: true });
  }, 60_000);
});
