// tests/e2e/net-progress.test.ts — the receiver's progress line on a real terminal: `recv`
// runs inside `script` (a pseudo-terminal that reports 0 columns, as an acceptance tester
// ran it without `stty cols`), the sender talks to it through scripts/delay-proxy.ts so
// the session lasts long enough for several redraws. The line must show in full (a width
// of 0 once cut it to "receiving:…" for the whole transfer), show the sender's totals once
// its LISTED frame arrived (docs/PROTOCOL.md 8.3g), and never an ETA before that.
// Black box: only the CLI, sockets, the file system and what the terminal received.

import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { DelayProxy } from "../../scripts/delay-proxy.ts";
import { cliCommand, formatResult } from "../helpers/cli.ts";
import { removeDir, workDir } from "../helpers/e2e.ts";
import { collect, freePort, netEnv, runSender, TEST_SECRET } from "../helpers/net.ts";
import { expectNetCopy } from "../helpers/net-tree.ts";
import { MiB, snapshotTree, writeRandom } from "../helpers/tree.ts";

const work = workDir("net-progress");
afterAll(() => removeDir(work));

/** Runs the program given after it inside `script`: its stderr is a terminal of unknown width. */
const IN_PTY = ["bash", "-c", 'exec script -qfec "$(printf "%q " "$@")" /dev/null', "in-pty"];

/** Waits (polling) for `ok`, or throws with `what`. */
async function until(ok: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out waiting: ${what()}`);
    await Bun.sleep(20);
  }
}

test("recv on a terminal of unknown width: the whole line, the sender's totals once listed, no ETA before", async () => {
  const src = join(work, "src");
  for (let i = 0; i < 12; i++) writeRandom(join(src, `f${i}.bin`), MiB + i);
  const before = snapshotTree(src);
  const dst = join(work, "dst");
  const port = await freePort();
  // Not startReceiver: it finds its receiver's socket among the child's own, and here the
  // receiver is script's child. The terminal's output (stderr too) is script's stdout.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...netEnv(TEST_SECRET) })) if (v !== undefined) env[k] = v;
  delete env.URING_SYNC_NO_PROGRESS;
  const proc = Bun.spawn([...IN_PTY, ...cliCommand(), "recv", dst, "--listen", `127.0.0.1:${port}`, "--crypto", "user"], { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const screen = { text: "" };
  const reading = Promise.all([collect(proc.stdout, screen), collect(proc.stderr, screen)]);
  const killer = setTimeout(() => proc.kill("SIGKILL"), 150_000);
  // 100 ms each way: a round trip for the answers, then the data, over several redraws (100 ms apart).
  const proxy = new DelayProxy({ targetHost: "127.0.0.1", targetPort: port, delayMs: 100 });
  try {
    await until(() => screen.text.includes("listening on") || proc.exitCode !== null, 30_000, () => `the receiver to listen:\n${screen.text}`);
    await proxy.start();
    const send = await runSender(src, proxy.address, { args: ["-j", "1"], timeoutMs: 120_000 });
    const code = await proc.exited;
    await reading;
    const ctx = `--- sender ---\n${formatResult(send)}\n--- receiver's terminal ---\n${screen.text}`;
    expect(send.code, ctx).toBe(0);
    expect(code, ctx).toBe(0);
    expectNetCopy(before, dst, "received on a terminal", ctx);
    const lines = screen.text.split(/\r|\n|\x1b\[K/).filter((l) => l.startsWith("receiving: "));
    expect(lines.length, ctx).toBeGreaterThan(0);
    // Never cut: 0 columns means an unknown width, not a narrow one.
    expect(screen.text, ctx).not.toContain("…");
    // The totals (12 files, 12 MiB and a few bytes) once the sender said its listing was complete.
    expect(lines.some((l) => /^receiving: \d+\/12 files, [\d.]+ [KM]i?B\/12\.0 MiB \(\d+%\), /.test(l)), lines.join("\n")).toBe(true);
    // An ETA only with the totals, never on the line that knows only what was announced so far.
    for (const l of lines) if (l.includes("announced so far")) expect(l).not.toContain("ETA");
    for (const l of lines) if (l.includes("ETA")) expect(l).toMatch(/\/12 files, .*\/12\.0 MiB/);
  } finally {
    clearTimeout(killer);
    if (proc.exitCode === null) proc.kill("SIGKILL");
    await proxy.stop();
  }
}, 200_000);
