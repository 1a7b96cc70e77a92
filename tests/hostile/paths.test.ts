// tests/hostile/paths.test.ts — an authenticated sender that tries to make a real
// `uring-sync recv` write outside DST: ".." traversal, absolute paths, NUL and other
// malformed names, symlinks it creates and then walks through, symlinks planted in DST
// before the transfer, and writes aimed at a symlink's target. Every case checks (see
// tests/helpers/net-hostile.ts): a clear error from the receiver (exit non-zero, or it
// stays up and serves a good sender next), nothing outside DST changed or created, and
// DST holding only complete, byte-correct files.

import { afterAll, describe, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { killAllReceivers } from "../helpers/net.ts";
import { OK_ALLOWED, okFirst, runHostileCase, type Allowed, type HostileCase } from "../helpers/net-hostile.ts";
import { endList, FLAG_PUSH, KIND, rawEntry, sendDir, sendFile, type Peer } from "../helpers/net-peer.ts";

afterAll(killAllReceivers);

const enc = new TextEncoder();
const PAYLOAD = enc.encode("pwned by a hostile sender\n");

/** ENTRY for a file at `path` (raw: no encoder checks), then its bytes if the receiver wants them, then LIST_END. */
async function hostileFile(peer: Peer, id: number, path: string | Uint8Array, data = PAYLOAD): Promise<void> {
  if (typeof path === "string") {
    const answer = await sendFile(peer, { id, path, data }, 2_000).catch(() => "none" as const);
    if (answer !== "none") await endList(peer, 3_000);
    return;
  }
  await peer.send(rawEntry({ id, kind: KIND.file, size: BigInt(data.length), path }));
}

// The reason, not just the path echoed back: the paths below avoid these words.
const TRAVERSAL = /\.\.["']? component|component[^\n]*\.\.|not allowed|travers|outside|beneath|refus|reject/i;
const ABSOLUTE = /absolute|not relative|must be relative|not allowed/i;
const THROUGH_LINK = /symlink|symbolic|ELOOP|ENOTDIR|not a directory|too many levels|follow/i;
const BAD_NAME = /path|name|component|empty|UTF-?8|invalid|NUL|too long|ENTRY|frame/i;

function cases(): HostileCase[] {
  return [
    {
      name: "a ../ path",
      async run(peer, c) {
        await okFirst(peer);
        await hostileFile(peer, 2, `../escape-${c.tag}.txt`);
      },
      error: TRAVERSAL,
      allowed: () => OK_ALLOWED,
      mustNotExist: (c) => [join(c.base, `escape-${c.tag}.txt`)],
    },
    {
      name: "a/../../b after a real directory a",
      async run(peer, c) {
        await okFirst(peer);
        await sendDir(peer, 2, "a");
        await hostileFile(peer, 3, `a/../../b-${c.tag}.txt`);
      },
      error: TRAVERSAL,
      allowed: () => ({ ...OK_ALLOWED, a: { type: "dir" } }),
      mustNotExist: (c) => [join(c.base, `b-${c.tag}.txt`)],
    },
    {
      name: "a deep ../../../ path towards /tmp",
      async run(peer, c) {
        await okFirst(peer);
        const ups = "../".repeat(c.dst.split("/").length + 2);
        await hostileFile(peer, 2, `${ups}${c.tmpCanary.slice(1)}/deep-pwned.txt`);
      },
      error: TRAVERSAL,
      allowed: () => OK_ALLOWED,
      mustNotExist: (c) => [join(c.tmpCanary, "deep-pwned.txt")],
    },
    {
      name: "an absolute path into a /tmp canary directory",
      async run(peer, c) {
        await okFirst(peer);
        await hostileFile(peer, 2, `${c.tmpCanary}/abs-pwned.txt`);
      },
      error: ABSOLUTE,
      allowed: () => OK_ALLOWED,
      mustNotExist: (c) => [join(c.tmpCanary, "abs-pwned.txt")],
    },
    {
      name: "an absolute directory entry",
      async run(peer, c) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.dir, mode: 0o755, path: `${c.tmpCanary}/abs-dir` }));
        await endList(peer, 3_000);
      },
      error: ABSOLUTE,
      allowed: () => OK_ALLOWED,
      mustNotExist: (c) => [join(c.tmpCanary, "abs-dir")],
    },
    {
      name: "a NUL byte in a path",
      async run(peer, c) {
        await okFirst(peer);
        await hostileFile(peer, 2, enc.encode(`zzz\0../../escape-${c.tag}`));
      },
      error: /\bNUL\b|\bnull (byte|character)|zero byte/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["zzz"],
      mustNotExist: (c) => [join(c.base, `escape-${c.tag}`)],
    },
    {
      name: "symlink evil -> outside dir, then a file evil/pwned",
      async run(peer, c) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o777, path: "evil", target: c.outside }));
        await hostileFile(peer, 3, "evil/pwned");
      },
      error: THROUGH_LINK,
      allowed: (c) => ({ ...OK_ALLOWED, evil: { type: "symlink", target: c.outside } }),
      mustNotExist: (c) => [join(c.outside, "pwned")],
    },
    {
      name: "symlink evil -> outside dir, then a directory evil/sub",
      async run(peer, c) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o777, path: "evil", target: c.outside }));
        await peer.send(rawEntry({ id: 3, kind: KIND.dir, mode: 0o755, path: "evil/sub" }));
        await endList(peer, 3_000);
      },
      error: THROUGH_LINK,
      allowed: (c) => ({ ...OK_ALLOWED, evil: { type: "symlink", target: c.outside } }),
      mustNotExist: (c) => [join(c.outside, "sub")],
    },
    {
      name: "symlink rel -> ../outside (relative), then a file rel/pwned",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o777, path: "rel", target: "../outside" }));
        await hostileFile(peer, 3, "rel/pwned");
      },
      error: THROUGH_LINK,
      allowed: () => ({ ...OK_ALLOWED, rel: { type: "symlink", target: "../outside" } }),
      mustNotExist: (c) => [join(c.outside, "pwned")],
    },
    {
      name: "a symlink PLANTED in DST (pd -> outside), then a file pd/x",
      plant: (c) => symlinkSync(c.outside, join(c.dst, "pd")),
      async run(peer) {
        await okFirst(peer);
        await hostileFile(peer, 2, "pd/x");
      },
      error: THROUGH_LINK,
      allowed: (c) => ({ ...OK_ALLOWED, pd: { type: "symlink", target: c.outside } }),
      mustNotExist: (c) => [join(c.outside, "x")],
    },
    {
      name: "a planted symlink, then a directory pd/newdir",
      plant: (c) => symlinkSync(c.outside, join(c.dst, "pd")),
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.dir, mode: 0o755, path: "pd/newdir" }));
        await endList(peer, 3_000);
      },
      error: THROUGH_LINK,
      allowed: (c) => ({ ...OK_ALLOWED, pd: { type: "symlink", target: c.outside } }),
      mustNotExist: (c) => [join(c.outside, "newdir")],
    },
    {
      name: "a planted symlink, then a symlink entry pd/s",
      plant: (c) => symlinkSync(c.outside, join(c.dst, "pd")),
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o777, path: "pd/s", target: "whatever" }));
        await endList(peer, 3_000);
      },
      error: THROUGH_LINK,
      allowed: (c) => ({ ...OK_ALLOWED, pd: { type: "symlink", target: c.outside } }),
      mustNotExist: (c) => [join(c.outside, "s")],
    },
    {
      name: "a planted symlink, then a hard link pd/hl to a file of the session",
      plant: (c) => symlinkSync(c.outside, join(c.dst, "pd")),
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.hardlink, mode: 0o644, path: "pd/hl", linkId: 1 }));
        await endList(peer, 3_000);
      },
      error: THROUGH_LINK,
      allowed: (c) => ({ ...OK_ALLOWED, pd: { type: "symlink", target: c.outside } }),
      mustNotExist: (c) => [join(c.outside, "hl")],
    },
    {
      name: "a planted symlink to a directory, then a directory entry with its name and a file inside",
      plant: (c) => symlinkSync(c.outside, join(c.dst, "linkdir")),
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.dir, mode: 0o755, path: "linkdir" }));
        await hostileFile(peer, 3, "linkdir/x");
      },
      // Replacing the planted link by a real directory is fine; following it is not.
      error: THROUGH_LINK,
      outcome: "either",
      allowed: (c): Record<string, Allowed | Allowed[]> => ({
        ...OK_ALLOWED,
        linkdir: [{ type: "symlink", target: c.outside }, { type: "dir" }],
        "linkdir/x": { type: "file", data: PAYLOAD },
      }),
      mustNotExist: (c) => [join(c.outside, "x")],
    },
    {
      name: "a planted symlink to a file outside, then a file with the link's name (no write through it)",
      plant: (c) => symlinkSync(join(c.outside, "canary.txt"), join(c.dst, "planted")),
      async run(peer) {
        await okFirst(peer);
        await hostileFile(peer, 2, "planted");
      },
      error: THROUGH_LINK,
      outcome: "either",
      allowed: (c): Record<string, Allowed | Allowed[]> => ({
        ...OK_ALLOWED,
        planted: [{ type: "symlink", target: join(c.outside, "canary.txt") }, { type: "file", data: PAYLOAD }],
      }),
    },
    {
      name: "the session's own symlink to a file outside, then a file with the same name",
      async run(peer, c) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o777, path: "sl", target: join(c.outside, "canary.txt") }));
        await hostileFile(peer, 3, "sl");
      },
      error: /symlink|duplicate|already|exists|twice|ELOOP|follow/i,
      outcome: "either",
      allowed: (c): Record<string, Allowed | Allowed[]> => ({
        ...OK_ALLOWED,
        sl: [{ type: "symlink", target: join(c.outside, "canary.txt") }, { type: "file", data: PAYLOAD }],
      }),
    },
    {
      name: "a symlink to a file outside with an mtime and mode: link stored, target untouched (no utimensat/chmod through it)",
      async run(peer, c) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o4777, mtimeNs: 123_456_789n, path: "tlink", target: join(c.outside, "canary.txt") }));
        await peer.send(rawEntry({ id: 3, kind: KIND.symlink, mode: 0o777, mtimeNs: 987_654_321n, path: "tdir", target: c.outside }));
        const report = await endList(peer, 5_000);
        if (report === undefined) throw new Error(`no REPORT after an honest end of list\n${peer.describe()}`);
        await peer.close();
      },
      allowed: (c) => ({ ...OK_ALLOWED, tlink: { type: "symlink", target: join(c.outside, "canary.txt") }, tdir: { type: "symlink", target: c.outside } }),
      required: ["ok-first.txt", "tlink", "tdir"],
    },
  ];
}

/** Malformed names the path gate must refuse (docs/PROTOCOL.md section 8.1). */
const BAD_PATHS: [string, Uint8Array][] = [
  ["an empty path", new Uint8Array(0)],
  ["a '.' component", enc.encode("a/./b")],
  ["a lone '.'", enc.encode(".")],
  ["an empty component (a//b)", enc.encode("a//b")],
  ["a trailing slash", enc.encode("dir/")],
  ["invalid UTF-8", Uint8Array.of(0x66, 0xff, 0xfe, 0x67)],
  ["an overlong UTF-8 '..' (c0 ae c0 ae)", Uint8Array.of(0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x78)],
  ["a component of 256 bytes", enc.encode("x".repeat(256))],
  ["a path of 4097 bytes", enc.encode(`${"d/".repeat(2048)}x`)],
];

/** Every case runs in both conversation modes (docs/PROTOCOL.md 8.7): want (WANT/SKIP per file) and push (the reference sender's). */
const MODES = [["want mode", 0], ["push mode", FLAG_PUSH]] as const;

for (const [mode, flag] of MODES) {
  describe(`hostile sender: paths that try to leave DST (${mode})`, () => {
    for (const hc of cases()) {
      test(hc.name, async () => {
        await runHostileCase({ ...hc, flags: (hc.flags ?? 0) | flag });
      }, 60_000);
    }
  });
}

describe("hostile sender: malformed names (push mode)", () => {
  for (const [what, bytes] of BAD_PATHS) {
    test(what, async () => {
      await runHostileCase({
        name: what,
        flags: FLAG_PUSH,
        async run(peer: Peer) {
          await okFirst(peer);
          await hostileFile(peer, 2, bytes);
        },
        error: BAD_NAME,
        allowed: () => OK_ALLOWED,
      } satisfies HostileCase);
    }, 60_000);
  }
});
