// tests/hostile/receiver.test.ts — the other direction: a real `uring-sync send` against
// a scripted, authenticated receiver that lies in the answers of incremental sync (issue
// 5): a WANT with an offset beyond the file, a WANT or SKIP for an id never announced,
// for a directory, or for a file already answered, DELETED frames without --delete, and
// DELETED paths full of terminal escapes (only counted, and shown escaped). The sender
// must end with a clear one-line error (exit 4) and never crash, or, for DELETED with
// --delete, finish and show the paths safely. A receiver that authenticates and then never
// answers is given up on at the idle timeout, not waited for forever.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseJson, type RunResult } from "../helpers/cli.ts";
import { workDir } from "../helpers/e2e.ts";
import { expectNoCrash, runSender } from "../helpers/net.ts";
import { FakeReceiver } from "../helpers/net-fake-receiver.ts";
import { encodeMessage, type SenderMessage } from "../../src/net/wire.ts";

const work = workDir("hostile-receiver");
afterAll(() => {
  Bun.spawnSync(["rm", "-rf", "--", work]);
});

let n = 0;
function tree(): string {
  const src = join(work, `src-${++n}`);
  mkdirSync(join(src, "sub"), { recursive: true });
  writeFileSync(join(src, "a.txt"), "0123456789");
  writeFileSync(join(src, "sub/b.txt"), "bbbb");
  return src;
}

/** Runs the sender against a fake receiver scripted by `answer`; returns the sender's result. */
async function against(answer: (m: SenderMessage, r: FakeReceiver) => void, args: string[] = [], env: Record<string, string> = {}): Promise<{ r: RunResult; fake: FakeReceiver }> {
  const fake = await FakeReceiver.listen();
  fake.onMessage = answer;
  try {
    const r = await runSender(tree(), fake.address, { args: ["--plaintext", ...args], timeoutMs: 30_000, env });
    expectNoCrash(r.stderr, "the sender's stderr", `${r.stderr}\n${fake.describe()}`);
    return { r, fake };
  } finally {
    fake.close();
  }
}

const want = (id: number, offset = 0n): Uint8Array =>
  encodeMessage(offset > 0n ? { type: "want", id, offset, prefixHash: new Uint8Array(32) } : { type: "want", id, offset });
const skip = (id: number): Uint8Array => encodeMessage({ type: "skip", id });
const report = (files = 0): Uint8Array => encodeMessage({ type: "report", files, bytes: 0n, failures: [], omittedFailures: 0 });

function expectProtocolError(r: RunResult, re: RegExp, context: string): void {
  if (r.code !== 4 || !re.test(r.stderr)) throw new Error(`expected exit 4 and an error matching ${re}, got exit ${r.code}\n${r.stderr}\n${context}`);
  const errorLines = r.stderr.split("\n").filter((l) => /error/i.test(l));
  expect(errorLines.length).toBeLessThanOrEqual(2);
}

describe("hostile receiver: lies in WANT, SKIP and DELETED", () => {
  test("a WANT offset beyond the file's size", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(want(m.id, m.size + 1000n));
    });
    expectProtocolError(r, /beyond/, fake.describe());
  });

  test("a WANT for an id never announced", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(want(999_999));
    });
    expectProtocolError(r, /never announced/, fake.describe());
  });

  test("a WANT for a directory's id", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "dir") f.send(want(m.id));
    });
    expectProtocolError(r, /not a file|answered/, fake.describe());
  });

  test("a WANT twice for the same file", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(want(m.id), want(m.id));
    });
    expectProtocolError(r, /answered twice/, fake.describe());
  });

  test("a SKIP, then a WANT, for the same file", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(skip(m.id), want(m.id));
    });
    expectProtocolError(r, /answered twice/, fake.describe());
  });

  test("a SKIP for an id never announced", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(skip(m.id + 1000));
    });
    expectProtocolError(r, /never announced/, fake.describe());
  });

  test("DELETED without --delete", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(skip(m.id));
      if (m.type === "list-end") f.send(encodeMessage({ type: "deleted", path: "x" }), report(2));
    });
    expectProtocolError(r, /DELETED/, fake.describe());
  });

  test("DELETED paths with terminal escapes are counted and shown escaped (--dry-run --delete)", async () => {
    const evil = ["evil\x1b[31mred", "line\nfake: second line", "bidi\u202Etxt.exe"];
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(want(m.id));
      if (m.type === "list-end") {
        f.send(...evil.map((path) => encodeMessage({ type: "deleted", path })), report(0));
        f.end();
      }
    }, ["--dry-run", "--delete"]);
    if (r.code !== 0) throw new Error(`the sender should finish (exit 0), got ${r.code}\n${r.stderr}\n${fake.describe()}`);
    expect(fake.peerFlags & 0x30).toBe(0x30);
    expect(fake.messages.some((m) => m.type === "data")).toBe(false);
    const lines = r.stdout.trim().split("\n").sort();
    expect(lines).toEqual(["delete bidi\\u{202e}txt.exe", "delete evil\\x1b[31mred", "delete line\\x0afake: second line", "send a.txt", "send sub/b.txt"]);
    expect(r.stdout).not.toContain("\x1b");
    expect(r.stderr).toMatch(/would delete 3/);
  });

  test("DELETED with --delete --json: counted, listed nowhere unescaped", async () => {
    const { r, fake } = await against((m, f) => {
      if (m.type === "entry" && m.kind === "file") f.send(skip(m.id));
      if (m.type === "list-end") {
        f.send(encodeMessage({ type: "deleted", path: "gone\x07bell" }), report(2));
        f.end();
      }
    }, ["--delete", "--json"]);
    if (r.code !== 0) throw new Error(`the sender should finish (exit 0), got ${r.code}\n${r.stderr}\n${fake.describe()}`);
    const j = parseJson(r);
    expect(j.filesDeleted).toBe(1);
    expect(j.filesUnchanged).toBe(2);
    expect(j.bytesSent).toBe(0);
    expect(r.stdout).not.toContain("\x07");
  });

  test("a receiver that authenticates and then never answers the listing: idle timeout, exit 4", async () => {
    const { r, fake } = await against(() => {}, [], { URING_SYNC_IDLE_TIMEOUT_MS: "300" });
    expectProtocolError(r, /idle timeout/, fake.describe());
    // The files were announced, so the sender was waiting for answers, not for its own work.
    expect(fake.messages.some((m) => m.type === "entry" && m.kind === "file")).toBe(true);
  });
});
