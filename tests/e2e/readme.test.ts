/**
 * Every example command in README.md runs, as a reader would type it, against sample
 * trees: the README cannot drift from the code.
 *
 * How the examples are run (the rules a README author needs to know):
 * - Each `sh example` block runs in a fresh directory holding `./data` and `./build`
 *   (small trees with nested directories, a symlink and a larger file), with the
 *   compiled `uring-sync` first on PATH and HOME set to that directory.
 * - Lines run one after another with bash; `export` lines apply to the lines after them.
 * - `uring-sync recv ...` starts in the background (as in a second terminal or on another
 *   host); the next line starts once it is listening. A one-time code it prints is typed
 *   at the prompt of a later `uring-sync send` that has no other secret, through a
 *   pseudo-terminal, as a user would. Every receiver must exit 0 by the end of its block.
 * - Port 7000 in a command is replaced by a free port (this machine is shared).
 * - Every other line must exit 0. After a send, the receiver's tree must equal the
 *   sender's.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DIST_BIN, REPO_ROOT, waitFor } from "../helpers/cli.ts";
import { collect, freePort } from "../helpers/net.ts";
import { extractExamples, stripComment, type Example } from "../helpers/readme.ts";
import { diffTrees, snapshotTree } from "../helpers/tree.ts";

const README = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
const examples = extractExamples(README);
const roots: string[] = [];

afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function binDir(): string {
  if (!existsSync(DIST_BIN)) {
    const b = Bun.spawnSync([process.execPath, join(REPO_ROOT, "scripts", "build.ts")], { stdout: "ignore", stderr: "inherit" });
    if (b.exitCode !== 0) throw new Error("could not build dist/uring-sync");
  }
  const dir = mkdtempSync("/tmp/uring-sync-readme-bin-");
  roots.push(dir);
  chmodSync(dir, 0o755);
  copyFileSync(DIST_BIN, join(dir, "uring-sync"));
  chmodSync(join(dir, "uring-sync"), 0o755);
  return dir;
}

function sampleTree(root: string, seed: number): void {
  mkdirSync(join(root, "docs", "deep", "er"), { recursive: true });
  mkdirSync(join(root, "empty"), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(root, `f${i}.txt`), `file ${i} of tree ${seed}\n`.repeat(i + 1));
  writeFileSync(join(root, "docs", "deep", "er", "notes.md"), "# notes\n");
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  writeFileSync(join(root, "big.bin"), big);
  symlinkSync("docs/deep/er/notes.md", join(root, "link"));
}

function sandbox(): string {
  const dir = mkdtempSync("/tmp/uring-sync-readme-");
  roots.push(dir);
  chmodSync(dir, 0o755);
  sampleTree(join(dir, "data"), 1);
  sampleTree(join(dir, "build"), 2);
  return dir;
}

/** The words of a command line, good enough for the examples' simple quoting. */
function words(cmd: string): string[] {
  return (cmd.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((w) => w.replace(/^["']|["']$/g, ""));
}

/** First positional argument after the command word (recv DST / send SRC). */
function firstPositional(cmd: string, verb: string): string | undefined {
  const w = words(cmd);
  const at = w.indexOf(verb);
  return w.slice(at + 1).find((x) => !x.startsWith("-"));
}

interface Background {
  cmd: string;
  proc: ReturnType<typeof Bun.spawn>;
  stderr: () => string;
}

async function runExample(ex: Example, bin: string): Promise<void> {
  const dir = sandbox();
  const env: Record<string, string> = { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, HOME: dir, LANG: "C.UTF-8" };
  const exports: string[] = [];
  const receivers: Background[] = [];
  let code: string | undefined;
  const port = await freePort("::");
  const steps = mkdtempSync("/tmp/uring-sync-readme-steps-");
  roots.push(steps);
  let n = 0;
  /** Each line becomes a script (after the exports so far), run by bash with errexit. */
  const script = (cmd: string): string => {
    const file = join(steps, `step${n++}.sh`);
    writeFileSync(file, ["set -euo pipefail", ...exports, cmd, ""].join("\n"));
    return file;
  };

  try {
    await runCommands();
  } finally {
    for (const r of receivers) if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
  }

  async function runCommands(): Promise<void> {
  for (const line of ex.commands) {
    // The README's port may be taken on a shared machine: same command, a free port.
    const cmd = line.replace(/\b7000\b/g, String(port));
    const where = `README.md:${ex.line} \`${cmd}\``;
    if (cmd.startsWith("export ")) {
      exports.push(cmd);
      continue;
    }
    if (/^uring-sync recv\b/.test(cmd)) {
      // exec: the receiver is the process we watch and, on failure, kill.
      const proc = Bun.spawn(["bash", script(`exec ${cmd}`)], { cwd: dir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const err = { text: "" };
      void collect(proc.stderr as ReadableStream<Uint8Array>, err);
      void collect(proc.stdout as ReadableStream<Uint8Array>, { text: "" });
      receivers.push({ cmd, proc, stderr: () => err.text });
      await waitFor(() => err.text.includes("listening on") || proc.exitCode !== null, 20_000, `${where} to listen`, 20);
      expect(proc.exitCode, `${where} exited early:\n${err.text}`).toBeNull();
      code = /give this code to the sender: (\S+)/.exec(err.text)?.[1] ?? code;
      continue;
    }
    const typed = /^uring-sync send\b/.test(cmd) && !/--secret/.test(cmd) && !exports.some((e) => e.includes("URING_SYNC_SECRET"));
    const file = script(cmd);
    // `script` gives send a terminal, so it asks for the code, and types stdin into it.
    const argv = typed ? ["script", "-qfec", `bash ${file}`, "/dev/null"] : ["bash", file];
    if (typed) expect(code, `${where}: no receiver printed a code to type`).toBeDefined();
    const proc = Bun.spawn(argv, { cwd: dir, env, stdin: typed ? "pipe" : "ignore", stdout: "pipe", stderr: "pipe" });
    const sink = { text: "" };
    const reading = Promise.all([collect(proc.stdout as ReadableStream<Uint8Array>, sink), collect(proc.stderr as ReadableStream<Uint8Array>, sink)]);
    if (typed) {
      // Type the code when the prompt is on the screen, as a user would.
      await waitFor(() => sink.text.includes("Code (or secret) from the receiver") || proc.exitCode !== null, 60_000, `${where} to ask for the code`, 20);
      const stdin = proc.stdin as import("bun").FileSink;
      stdin.write(`${code}\n`);
      await stdin.flush();
    }
    const timer = setTimeout(() => proc.kill("SIGKILL"), 120_000);
    const exitCode = await proc.exited;
    clearTimeout(timer);
    await reading;
    const out = sink.text;
    expect(exitCode, `${where} failed:\n${out}\n${receivers.map((r) => r.stderr()).join("\n")}`).toBe(0);
    if (typed) expect(out, `${where}: the prompt was not shown`).toContain("Code (or secret) from the receiver");
    if (/^uring-sync send\b/.test(cmd)) {
      const src = firstPositional(cmd, "send");
      const r = receivers.at(-1);
      expect(r, `${where}: no receiver for this send`).toBeDefined();
      const exited = await r!.proc.exited;
      expect(exited, `${r!.cmd} failed:\n${r!.stderr()}`).toBe(0);
      const dst = firstPositional(r!.cmd, "recv");
      if (src !== undefined && dst !== undefined) {
        const diffs = diffTrees(snapshotTree(join(dir, src)), snapshotTree(join(dir, dst)), { ignoreAtime: true, ignoreBlocks: true, ignoreOwner: true, ignoreXattrs: true, ignoreRoot: true });
        expect(diffs, `${where}: received tree differs`).toEqual([]);
      }
    }
  }
  for (const r of receivers) {
    const exited = await Promise.race([r.proc.exited, Bun.sleep(30_000).then(() => "timeout" as const)]);
    if (exited === "timeout") r.proc.kill();
    expect(exited, `${r.cmd} did not finish cleanly:\n${r.stderr()}`).toBe(0);
  }
  }
}

describe("README.md examples", () => {
  test("there are examples to run, covering the commands a user needs most", () => {
    const all = examples.flatMap((e) => e.commands).join("\n");
    for (const needed of [/^uring-sync \.\/\S+ \S+/m, /^uring-sync recv /m, /^uring-sync send /m, /^uring-sync doctor/m, /send .*--delete/m]) {
      expect(all).toMatch(needed);
    }
  });

  const bin = binDir();
  for (const ex of examples) {
    test(`README.md:${ex.line} (${ex.heading})`, async () => {
      await runExample(ex, bin);
    }, 180_000);
  }
});

describe("extractExamples", () => {
  test("takes only `sh example` blocks, strips comments, joins continued lines", () => {
    const md = [
      "# Title",
      "```sh",
      "not run",
      "```",
      "## Use",
      "```sh example",
      "uring-sync a b   # copy",
      "uring-sync send ./x \\",
      "  host:1 --json",
      "",
      "echo '# not a comment'",
      "```",
    ].join("\n");
    const ex = extractExamples(md);
    expect(ex).toHaveLength(1);
    expect(ex[0]).toEqual({ line: 6, heading: "Use", commands: ["uring-sync a b", "uring-sync send ./x host:1 --json", "echo '# not a comment'"] });
  });

  test("an unclosed example block is an error, not silently skipped", () => {
    expect(() => extractExamples("```sh example\nuring-sync a b\n")).toThrow("not closed");
  });

  test("stripComment keeps # inside quotes and words", () => {
    expect(stripComment("a#b c  # d")).toBe("a#b c");
    expect(stripComment(`echo "x # y" # z`)).toBe(`echo "x # y"`);
  });
});
