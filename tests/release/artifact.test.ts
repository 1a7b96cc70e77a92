// tests/release/artifact.test.ts — the release executable in a clean room: dist/uring-sync
// (built first if stale, by tests/helpers/dist.ts) is copied alone into a fresh directory and
// run there with `env -i`: no PATH, no HOME, no Bun, no node_modules. It must print its
// version, commit and build date, help, doctor --json, copy a tree byte for byte, and run a
// loopback send/recv pair (both ends the artifact, secret through URING_SYNC_SECRET). Then
// without liburing: URING_SYNC_NO_LIBURING=1, and liburing hidden from the dynamic loader in a
// private mount namespace (the machine-without-liburing case, for real). And it must not
// take code or settings from the directory it runs in (bunfig.toml, .env).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { expectExit, formatResult, parseJson, REPO_ROOT, requireRoot, runCli, type RunOptions } from "../helpers/cli.ts";
import { ensureDistBinary } from "../helpers/dist.ts";
import { expectSameTree, removeDir, summaryOf } from "../helpers/e2e.ts";
import { expectBothExit, formatBoth, TEST_SECRET, transfer } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeRandom, writeTree } from "../helpers/tree.ts";

let room: string; // the clean directory: the artifact and nothing else (plus the trees the tests make)
let bin: string;
const ENV = Bun.which("env") ?? "/usr/bin/env";

/** `env -i [VAR=value...] ./uring-sync`: the artifact with exactly these variables and no others. */
function clean(vars: Record<string, string> = {}): string[] {
  return [ENV, "-i", ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), bin];
}

function inRoom(vars: Record<string, string> = {}): RunOptions {
  return { command: clean(vars), cwd: room };
}

function git(...args: string[]): string {
  const r = Bun.spawnSync(["git", ...args], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout.toString().trim();
}

/** A small tree with a few MiB of random bytes, a nested dir, an empty file and a symlink. */
function smallTree(root: string): void {
  writeTree(root, { "a.txt": "alpha\n", "dir/b.txt": "beta\n", "dir/deeper/empty": "" });
  writeRandom(join(root, "dir", "random.bin"), 3 * MiB + 17);
  Bun.spawnSync(["ln", "-s", "a.txt", join(root, "link")]);
}

beforeAll(() => {
  const dist = ensureDistBinary();
  room = mkdtempSync("/tmp/uring-sync-cleanroom-");
  chmodSync(room, 0o755);
  bin = join(room, "uring-sync");
  copyFileSync(dist, bin);
  chmodSync(bin, 0o755);
}, 180_000);
afterAll(() => removeDir(room), 60_000);

describe("release artifact (dist/uring-sync) in a clean room", () => {
  test("dist/uring-sync.sha256 verifies with sha256sum -c from dist/", () => {
    const r = Bun.spawnSync(["sha256sum", "--check", "--strict", "uring-sync.sha256"], { cwd: join(REPO_ROOT, "dist"), stdout: "pipe", stderr: "pipe" });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe("uring-sync: OK");
    expect(r.exitCode).toBe(0);
  });

  test("--version names the version, a commit of this repository and the build date", async () => {
    const r = await runCli(["--version"], inRoom());
    expectExit(r, 0);
    const m = /^uring-sync (\d+\.\d+\.\d+\S*) \(commit ([0-9a-f]{7,})(-dirty)?, built (\S+)\)\n$/.exec(r.stdout);
    expect(m, formatResult(r)).not.toBeNull();
    const [, version, commit, , built] = m!;
    expect(version).toBe((await Bun.file(join(REPO_ROOT, "package.json")).json()).version);
    // A real commit (not "unknown"), and the build date is a date no earlier than that commit.
    const commitTime = Number(git("show", "-s", "--format=%ct", `${commit}^{commit}`)) * 1000;
    const builtTime = Date.parse(built);
    expect(Number.isNaN(builtTime), `build date ${built}`).toBe(false);
    expect(builtTime, `built ${built}, commit ${commit} is from ${new Date(commitTime).toISOString()}`).toBeGreaterThanOrEqual(commitTime - 1000);
    expect(builtTime).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  test("--help", async () => {
    const r = await runCli(["--help"], inRoom());
    expectExit(r, 0);
    for (const word of ["uring-sync", "recv", "send", "doctor", "Exit codes"]) expect(r.stdout, formatResult(r)).toContain(word);
  });

  test("doctor --json: a compiled binary with io_uring ready", async () => {
    const r = await runCli(["doctor", "--json"], inRoom());
    expectExit(r, 0);
    const d = parseJson(r) as { runtime: { compiled: boolean; execPath: string }; backend: { kind: string } };
    expect(d.runtime.compiled).toBe(true);
    expect(d.runtime.execPath).toBe(bin);
    expect(["liburing", "raw"]).toContain(d.backend.kind);
  });

  test("copies a small tree byte for byte", async () => {
    smallTree(join(room, "src1"));
    const before = snapshotTree(join(room, "src1"));
    const r = await runCli(["src1", "dst1", "--json"], inRoom());
    expectExit(r, 0);
    expectSameTree(before, join(room, "dst1"), {}, r, "clean-room copy");
    expect(summaryOf(r).filesCopied, "4 files and the symlink").toBe(5);
  });

  test("loopback send/recv, both ends the artifact, secret from URING_SYNC_SECRET", async () => {
    smallTree(join(room, "src2"));
    const before = snapshotTree(join(room, "src2"));
    const t = await transfer({
      src: join(room, "src2"),
      dst: join(room, "dst2"),
      command: clean({ URING_SYNC_SECRET: TEST_SECRET }),
      secret: null, // env -i drops the helper's variables: the secret is the one passed above
    });
    expectBothExit(t, 0, 0);
    expectNetCopy(before, join(room, "dst2"), "clean-room send/recv", formatBoth(t));
  }, 120_000);

  test("takes no code or settings from its working directory (bunfig.toml preload, .env)", async () => {
    // A directory a peer could have filled: Bun's defaults would run preload code from its
    // bunfig.toml and load its .env.
    const hostile = join(room, "hostile");
    writeTree(hostile, {
      "bunfig.toml": 'preload = ["./preload.ts"]\n',
      "preload.ts": `require("node:fs").writeFileSync(${JSON.stringify(join(room, "PRELOAD-RAN"))}, "x");\n`,
      ".env": "URING_SYNC_NO_LIBURING=1\n",
    });
    const r = await runCli(["doctor", "--json"], { command: clean(), cwd: hostile });
    expectExit(r, 0);
    expect(existsSync(join(room, "PRELOAD-RAN")), "bunfig.toml preload ran").toBe(false);
    const doc = parseJson(r) as { backend: { liburing: { reason?: string } } };
    expect(doc.backend.liburing.reason ?? "", ".env was loaded").not.toContain("URING_SYNC_NO_LIBURING");
  });

  test("URING_SYNC_NO_LIBURING=1: raw io_uring syscalls, and it still copies", async () => {
    const d = await runCli(["doctor", "--json"], inRoom({ URING_SYNC_NO_LIBURING: "1" }));
    expectExit(d, 0);
    const doc = parseJson(d) as { backend: { kind: string; liburing: { loaded: boolean } } };
    expect(doc.backend.liburing.loaded).toBe(false);
    expect(doc.backend.kind).toBe("raw");

    smallTree(join(room, "src3"));
    const before = snapshotTree(join(room, "src3"));
    const r = await runCli(["src3", "dst3", "--json"], inRoom({ URING_SYNC_NO_LIBURING: "1" }));
    expectExit(r, 0);
    expectSameTree(before, join(room, "dst3"), {}, r, "copy without liburing");
  });

  test("liburing not installed (hidden from the loader in a mount namespace): doctor says so, copy works", async () => {
    requireRoot("bind-mounting over liburing in a private mount namespace");
    // Every liburing.so* the loader could find, as real files; /dev/null is bind-mounted over
    // each inside `unshare --mount` (private propagation: the host never sees it).
    const libs = new Set<string>();
    for (const dir of ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        if (!n.startsWith("liburing.so")) continue;
        const real = realpathSync(join(dir, n));
        if (statSync(real).isFile()) libs.add(real);
      }
    }
    const hide = [...libs].map((f) => `mount --bind /dev/null '${f}' || exit 97;`).join(" ");
    const noLiburing = (): RunOptions => ({
      command: ["unshare", "--mount", "--propagation", "private", "sh", "-c", `${hide} exec ${clean().join(" ")} "$@"`, "sh"],
      cwd: room,
    });

    const d = await runCli(["doctor", "--json"], noLiburing());
    expectExit(d, 0);
    const doc = parseJson(d) as { backend: { kind: string; liburing: { loaded: boolean; reason?: string } } };
    expect(doc.backend.liburing.loaded, formatResult(d)).toBe(false);
    expect(doc.backend.liburing.reason ?? "", "the loader failed, not the opt-out variable").not.toContain("URING_SYNC_NO_LIBURING");
    expect(doc.backend.kind).toBe("raw");

    smallTree(join(room, "src4"));
    const before = snapshotTree(join(room, "src4"));
    const r = await runCli(["src4", "dst4", "--json"], noLiburing());
    expectExit(r, 0);
    expectSameTree(before, join(room, "dst4"), {}, r, "copy with liburing absent");
  });
});
