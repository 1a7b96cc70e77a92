// tests/hostile/data.test.ts — an authenticated sender that lies about its files to a real
// `uring-sync recv`: a size of 2^63, fewer or more bytes than announced, DATA for the wrong
// file or at the wrong offset, setuid/setgid/sticky modes (must land without them), mode
// values that are not permission bits, entry kinds the protocol does not have (a FIFO or a
// device would need one), hard links to ids never announced, NUL in a symlink target.
// Shared checks in tests/helpers/net-hostile.ts: a clear error (or, for modes, a clean
// success), nothing outside DST, and no partial file under its final name.

import { afterAll, describe, test } from "bun:test";
import { killAllReceivers } from "../helpers/net.ts";
import { OK_ALLOWED, okFirst, runHostileCase, type HostileCase } from "../helpers/net-hostile.ts";
import { dataFrame, endList, fileEndFrame, FLAG_PUSH, KIND, listEndFrame, mustAnnounce, rawEntry, sendDir, sendFile } from "../helpers/net-peer.ts";

afterAll(killAllReceivers);

const enc = new TextEncoder();
const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

const SIZE = /size|limit|2\^6[23]|too (large|big)|exceed|range|huge/i;
// The reason, not just the path echoed back (the paths below avoid these words).
const SHORT = /fewer|short|truncat|incomplete|announced|missing|premature/i;
const LONG = /more bytes|more than|extra|past|beyond|exceed|announced|overflow/i;
const KIND_ERR = /kind|type|unknown|unsupported|fifo|device|special/i;
const LINK_ERR = /link|unknown|\bid\b|not (announced|found|sent|a file)|earlier|itself/i;

/** Every case runs in both conversation modes (docs/PROTOCOL.md 8.7): want (WANT/SKIP per file) and push (the reference sender's). */
const MODES = [["want mode", 0], ["push mode", FLAG_PUSH]] as const;

function cases(): HostileCase[] {
  return [
    {
      name: "a size of 2^63",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.file, size: 1n << 63n, path: "huge.bin" }), dataFrame(2, 0n, bytes(100)));
        await endList(peer, 3_000);
      },
      error: SIZE,
      allowed: () => OK_ALLOWED,
      forbidden: ["huge.bin"],
    },
    {
      name: "a size of 2^64 - 1",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.file, size: (1n << 64n) - 1n, path: "huge.bin" }));
        await endList(peer, 3_000);
      },
      error: SIZE,
      allowed: () => OK_ALLOWED,
      forbidden: ["huge.bin"],
    },
    {
      name: "fewer bytes than announced, then FILE_END and LIST_END",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "short.bin", 1000n);
        await peer.send(dataFrame(2, 0n, bytes(500)), fileEndFrame(2), listEndFrame());
      },
      error: SHORT,
      allowed: () => OK_ALLOWED,
      forbidden: ["short.bin"],
    },
    {
      name: "fewer bytes than announced, then the connection ends (FIN)",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "short.bin", 100_000n);
        await peer.send(dataFrame(2, 0n, bytes(5000)));
        await Bun.sleep(200);
        peer.end();
      },
      error: /closed|EOF|end|truncat|incomplete|connection|reset|short|fewer|premature/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["short.bin"],
    },
    {
      name: "a gap: DATA starting past offset 0, then FILE_END",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "gap.bin", 100n);
        await peer.send(dataFrame(2, 50n, bytes(50)), fileEndFrame(2), listEndFrame());
      },
      error: /offset|order|gap|expected|fewer|missing|out of|sequence/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["gap.bin"],
    },
    {
      name: "more bytes than announced in one DATA",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "long.bin", 100n);
        await peer.send(dataFrame(2, 0n, bytes(200)), fileEndFrame(2), listEndFrame());
      },
      error: LONG,
      allowed: () => OK_ALLOWED,
      forbidden: ["long.bin"],
    },
    {
      name: "more bytes than announced across two DATA frames",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "long.bin", 100n);
        await peer.send(dataFrame(2, 0n, bytes(100)), dataFrame(2, 100n, bytes(50, 9)), fileEndFrame(2), listEndFrame());
      },
      error: LONG,
      allowed: () => OK_ALLOWED,
      forbidden: ["long.bin"],
    },
    {
      name: "DATA for an id never announced",
      async run(peer) {
        await okFirst(peer);
        await peer.send(dataFrame(77, 0n, bytes(100)), fileEndFrame(77), listEndFrame());
      },
      error: /unknown|\bid\b|not (announced|wanted|expected|open)|unexpected|DATA/i,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "setuid, setgid and sticky modes land without those bits",
      async run(peer) {
        await sendDir(peer, 1, "sgid-sticky-dir", 0o3775);
        await sendFile(peer, { id: 2, path: "sgid-sticky-dir/suid.bin", data: bytes(64), mode: 0o4755 });
        await sendFile(peer, { id: 3, path: "both.bin", data: bytes(32, 3), mode: 0o6711 });
        await sendFile(peer, { id: 4, path: "all.bin", data: bytes(16, 5), mode: 0o7777 });
        const report = await endList(peer, 5_000);
        if (report === undefined) throw new Error(`no REPORT after an honest end of list\n${peer.describe()}`);
        await peer.close();
      },
      allowed: () => ({
        "sgid-sticky-dir": { type: "dir", mode: 0o775 },
        "sgid-sticky-dir/suid.bin": { type: "file", data: bytes(64), mode: 0o755 },
        "both.bin": { type: "file", data: bytes(32, 3), mode: 0o711 },
        "all.bin": { type: "file", data: bytes(16, 5), mode: 0o777 },
      }),
      required: ["sgid-sticky-dir", "sgid-sticky-dir/suid.bin", "both.bin", "all.bin"],
    },
    {
      name: "a mode that is not permission bits (S_IFCHR | 0644)",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.file, mode: 0o20644, size: 4n, path: "dev-mode" }), dataFrame(2, 0n, bytes(4)), fileEndFrame(2));
        await endList(peer, 3_000);
      },
      error: /mode|permission|bits/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["dev-mode"],
    },
    {
      name: "an unknown entry kind 5 (what a FIFO would need)",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: 5, mode: 0o644, path: "fifo" }));
        await endList(peer, 3_000);
      },
      error: KIND_ERR,
      allowed: () => OK_ALLOWED,
      forbidden: ["fifo"],
    },
    {
      name: "an unknown entry kind 0 and 255 (devices, anything else)",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: 0, mode: 0o644, path: "dev0" }), rawEntry({ id: 3, kind: 255, mode: 0o644, path: "dev255" }));
        await endList(peer, 3_000);
      },
      error: KIND_ERR,
      allowed: () => OK_ALLOWED,
      forbidden: ["dev0", "dev255"],
    },
    {
      name: "a hard link to an id that was never announced",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.hardlink, mode: 0o644, path: "hl", linkId: 999 }));
        await endList(peer, 3_000);
      },
      error: LINK_ERR,
      allowed: () => OK_ALLOWED,
      forbidden: ["hl"],
    },
    {
      name: "a hard link to a directory's id",
      async run(peer) {
        await okFirst(peer);
        await sendDir(peer, 2, "d");
        await peer.send(rawEntry({ id: 3, kind: KIND.hardlink, mode: 0o644, path: "hl", linkId: 2 }));
        await endList(peer, 3_000);
      },
      error: LINK_ERR,
      allowed: () => ({ ...OK_ALLOWED, d: { type: "dir" } }),
      forbidden: ["hl"],
    },
    {
      name: "a hard link to itself",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.hardlink, mode: 0o644, path: "hl", linkId: 2 }));
        await endList(peer, 3_000);
      },
      error: LINK_ERR,
      allowed: () => OK_ALLOWED,
      forbidden: ["hl"],
    },
    {
      name: "a NUL byte in a symlink target",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o777, path: "nul-link", target: enc.encode("/tmp\0/etc/passwd") }));
        await endList(peer, 3_000);
      },
      error: /\bNUL\b|\bnull (byte|character)|zero byte/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["nul-link"],
    },
    {
      name: "a non-zero size on a directory entry",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.dir, mode: 0o755, size: 4096n, path: "sized-dir" }));
        await endList(peer, 3_000);
      },
      error: /size|directory|ENTRY|frame|kind/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["sized-dir"],
    },
  ];
}

for (const [mode, flag] of MODES) {
  describe(`hostile sender: sizes, byte counts, modes, kinds and links (${mode})`, () => {
    for (const hc of cases()) {
      test(hc.name, async () => {
        await runHostileCase({ ...hc, flags: (hc.flags ?? 0) | flag });
      }, 60_000);
    }
  });
}
