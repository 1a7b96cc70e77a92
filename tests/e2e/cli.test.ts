/**
 * The CLI shell as a user meets it: help, version, strict option checking, exit codes,
 * and the compiled executable run from another directory, also with liburing made
 * unavailable (a private mount namespace hides the library file) to prove the fallback.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const BIN = join(ROOT, "dist", "uring-sync");
const BUN = process.execPath;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(argv: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Run {
  const r = Bun.spawnSync(argv, {
    cwd: opts.cwd ?? mkdtempSync(join(tmpdir(), "usync-cli-")),
    env: { ...process.env, ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

const cli = (...args: string[]): Run => run([BUN, join(ROOT, "src", "cli", "main.ts"), ...args]);

describe("uring-sync CLI shell", () => {
  test("--help lists every command and the exit codes", () => {
    const r = cli("--help");
    expect(r.code).toBe(0);
    for (const c of ["copy", "send", "recv", "doctor"]) expect(r.stdout).toContain(c);
    expect(r.stdout).toContain("Exit codes");
    expect(r.stdout).not.toContain("\x1b["); // no colour codes into a pipe
  });

  test("each command's --help shows its real options", () => {
    expect(cli("copy", "--help").stdout).toContain("--queue-depth");
    expect(cli("recv", "--help").stdout).toContain("--listen");
    expect(cli("send", "--help").stdout).toContain("--secret-file");
    expect(cli("help", "send").stdout).toContain("HOST:PORT");
  });

  test("--version prints version, commit and build date", () => {
    const r = cli("--version");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^uring-sync \d+\.\d+\.\d+ \(commit \S+, built \S+\)\n$/);
  });

  test("no arguments: usage on stderr, exit 2", () => {
    const r = cli();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("USAGE");
  });

  test("a misspelt option is refused and named, with a suggestion", () => {
    const r = cli("a", "b", "--jbos", "3");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option --jbos");
    expect(r.stderr).toContain("--jobs");
  });

  test("a port of 70000 is refused", () => {
    const r = cli("recv", "dst", "--listen", "70000");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("70000");
    expect(cli("send", "src", "host:70000").code).toBe(2);
    expect(cli("send", "src", "::1:7000").stderr).toContain("[::1]");
  });

  test("recv into a DST that is a file (or a symlink to one) is refused before listening", () => {
    const dir = mkdtempSync(join(tmpdir(), "usync-cli-"));
    writeFileSync(join(dir, "afile"), "x");
    symlinkSync("afile", join(dir, "alink"));
    for (const dst of ["afile", "alink"]) {
      // A timeout, so that a receiver which does start listening fails the test instead of hanging it.
      const r = Bun.spawnSync([BUN, join(ROOT, "src", "cli", "main.ts"), "recv", dst, "--listen", "127.0.0.1:47391"], {
        cwd: dir, env: { ...process.env, URING_SYNC_SECRET: "x-secret-123" }, stdout: "pipe", stderr: "pipe", timeout: 20_000,
      });
      expect(r.exitCode).toBe(2);
      expect(r.stderr.toString()).toContain(`DST ${dst} exists and is not a directory`);
      expect(r.stderr.toString()).not.toContain("listening");
    }
  });

  test("a negative queue depth is refused", () => {
    const r = cli("a", "b", "-q", "-5");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("-q must be an integer");
  });

  test("malformed values: chunk size, jobs, enum, missing value, stray argument", () => {
    expect(cli("a", "b", "-c", "12Q").stderr).toContain("-c must be a size");
    expect(cli("a", "b", "-j", "0").code).toBe(2);
    expect(cli("send", "a", "h:1", "--crypto", "magic").stderr).toContain("auto, kernel, user");
    expect(cli("a", "b", "--exclude").stderr).toContain("needs a value");
    expect(cli("a", "b", "c").stderr).toContain("unexpected argument 'c'");
    expect(cli("a", "b", "--json=yes").stderr).toContain("takes no value");
    expect(cli("recv", "dst").stderr).toContain("--listen is required");
  });

  test("a first word named like an Object property is copy's SRC, not a command", () => {
    const r = cli("constructor", "dst");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("constructor: ENOENT");
    expect(cli("help", "toString").stdout).toContain("USAGE uring-sync copy|send|recv|doctor");
  });
});

describe("compiled executable", () => {
  beforeAll(() => {
    if (!existsSync(BIN)) {
      const b = Bun.spawnSync([BUN, join(ROOT, "scripts", "build.ts")], { stdout: "inherit", stderr: "inherit" });
      expect(b.exitCode).toBe(0);
    }
  });

  test("runs from another directory and reports its build", () => {
    const r = run([BIN, "--version"], { cwd: "/" });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^uring-sync \d+\.\d+\.\d+ \(commit [0-9a-f]+(-dirty)?, built \d{4}-\d\d-\d\dT/);
  });

  test("refuses bad options like the source version", () => {
    const r = run([BIN, "recv", "x", "--listen", "70000"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("port must be from 1 to 65535");
  });

  test("falls back to the raw syscalls when liburing cannot be loaded", () => {
    const lib = "/usr/lib/x86_64-linux-gnu/liburing.so.2";
    expect(existsSync(lib)).toBe(true);
    // A private mount namespace: the library file reads as empty, so dlopen fails for real.
    const script = `mount --bind /dev/null "$(readlink -f ${lib})" && exec "${BIN}" doctor --json`;
    const r = run(["unshare", "-m", "sh", "-c", script]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { backend: { kind: string } };
    expect(report.backend.kind).toBe("raw");
  });

  test("uses liburing when it is there", () => {
    const r = run([BIN, "doctor", "--json"]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { backend: { kind: string } }).backend.kind).toBe("liburing");
  });
});
