// tests/hostile/sync.test.ts — an authenticated sender that lies in the messages of
// incremental sync (issue 5) to a real `uring-sync recv`: DATA that starts past the WANT
// offset (a prefix it never sent), a resumed file whose first DATA is neither at the WANT
// offset nor at 0, DATA for a file that was SKIPped, CHECKSUM frames out of place or for
// the wrong id, FILTER frames out of place, and HELLO flag combinations that mean nothing
// (PUSH with DELETE, CHECKSUM with IGNORE_TIMES, an unknown bit). And the honest paths
// the liars imitate: resuming from the WANT offset and restarting from 0 both land the
// right bytes. Shared checks in tests/helpers/net-hostile.ts.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { killAllReceivers } from "../helpers/net.ts";
import { OK_ALLOWED, OK_DATA, okFirst, runHostileCase, type HostileCase } from "../helpers/net-hostile.ts";
import { dataFrame, endList, fileEndFrame, finishSession, KIND, listEndFrame, mustAnnounce, rawEntry, rawFrame, rootFrame, type Peer } from "../helpers/net-peer.ts";

afterAll(killAllReceivers);

const enc = new TextEncoder();
const MiB = 1024 * 1024;
const FLAG_PUSH = 0x2;
const FLAG_CHECKSUM = 0x4;
const FLAG_IGNORE_TIMES = 0x8;
const FLAG_DELETE = 0x10;
const MSG_CHECKSUM = 0x0a;
const MSG_FILTER = 0x0b;
const MSG_LISTED = 0x0d;
/** Whole seconds, so utimes sets it exactly; a planted partial with this mtime is trusted whole. */
const MTIME_NS = 1_600_000_000_000_000_000n;
const MTIME_S = Number(MTIME_NS / 1_000_000_000n);

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => ((i >> 8) * 31 + i * 7 + seed) & 0xff);

function checksumFrame(id: number, hash = new Uint8Array(32)): Uint8Array {
  const p = new Uint8Array(36);
  new DataView(p.buffer).setUint32(0, id);
  p.set(hash, 4);
  return rawFrame(MSG_CHECKSUM, p);
}

function filterFrame(rule: number, pattern: string): Uint8Array {
  const b = enc.encode(pattern);
  const p = new Uint8Array(1 + b.length);
  p[0] = rule;
  p.set(b, 1);
  return rawFrame(MSG_FILTER, p);
}

/** LISTED (docs/PROTOCOL.md 8.3g): the sender's totals, files and bytes as u64. */
function listedFrame(files: bigint, bytes: bigint): Uint8Array {
  const p = new Uint8Array(16);
  new DataView(p.buffer).setBigUint64(0, files);
  new DataView(p.buffer).setBigUint64(8, bytes);
  return rawFrame(MSG_LISTED, p);
}

/** A 3 MiB file whose first 2 MiB sit in DST as a partial marked "exact" (mtime = the ENTRY's). */
const FULL = bytes(3 * MiB, 5);
function plantPartial(dst: string): void {
  const p = join(dst, ".big.bin.usync-partial");
  writeFileSync(p, FULL.subarray(0, 2 * MiB));
  utimesSync(p, MTIME_S, MTIME_S);
}
const partialMtime = (): bigint => MTIME_NS;

/** Announce big.bin and require the receiver to offer a resume from 2 MiB, with a hash. */
async function announceResumable(peer: Peer): Promise<void> {
  await peer.send(rawEntry({ id: 2, kind: KIND.file, size: BigInt(FULL.length), path: "big.bin", mtimeNs: partialMtime() }));
  const w = await peer.waitMessage((m) => (m.type === "want" || m.type === "skip") && m.id === 2, 5_000);
  if (w?.type !== "want" || w.offset !== BigInt(2 * MiB) || w.prefixHash === undefined) {
    throw new Error(`the receiver did not offer to resume big.bin from 2 MiB: ${JSON.stringify(w, (_k, v) => (typeof v === "bigint" ? String(v) : v))}\n${peer.describe()}`);
  }
}

async function sendRange(peer: Peer, id: number, data: Uint8Array, from: number): Promise<void> {
  const frames: Uint8Array[] = [];
  for (let off = from; off < data.length; off += MiB) frames.push(dataFrame(id, BigInt(off), data.subarray(off, Math.min(data.length, off + MiB))));
  frames.push(fileEndFrame(id));
  await peer.send(...frames);
}

const OFFSET_ERR = /offset|expected|WANT|order/i;

function cases(): HostileCase[] {
  return [
    {
      name: "DATA that starts past the WANT offset (claims a prefix it never sent)",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "gap.bin", 10_000n);
        await peer.send(dataFrame(2, 5000n, bytes(5000)), fileEndFrame(2), listEndFrame());
      },
      error: OFFSET_ERR,
      allowed: () => OK_ALLOWED,
      forbidden: ["gap.bin"],
    },
    {
      name: "a resumed file whose first DATA is neither at the WANT offset nor at 0",
      plant: (c) => plantPartial(c.dst),
      async run(peer) {
        await okFirst(peer);
        await announceResumable(peer);
        await sendRange(peer, 2, FULL, MiB);
        await endList(peer, 3_000);
      },
      error: OFFSET_ERR,
      allowed: () => OK_ALLOWED,
      forbidden: ["big.bin"],
    },
    {
      name: "an honest resume from the WANT offset lands the whole file",
      plant: (c) => plantPartial(c.dst),
      async run(peer) {
        await okFirst(peer);
        await announceResumable(peer);
        await sendRange(peer, 2, FULL, 2 * MiB);
        const report = await finishSession(peer);
        expect(report?.failures ?? ["no report"]).toEqual([]);
        expect(report?.bytes).toBe(BigInt(OK_DATA.length + MiB));
      },
      allowed: () => ({ ...OK_ALLOWED, "big.bin": { type: "file", data: FULL } }),
      required: ["big.bin"],
    },
    {
      name: "an honest restart from 0 after a WANT offset lands the whole file",
      plant: (c) => plantPartial(c.dst),
      async run(peer) {
        await okFirst(peer);
        await announceResumable(peer);
        await sendRange(peer, 2, FULL, 0);
        const report = await finishSession(peer);
        expect(report?.failures ?? ["no report"]).toEqual([]);
      },
      allowed: () => ({ ...OK_ALLOWED, "big.bin": { type: "file", data: FULL } }),
      required: ["big.bin"],
    },
    {
      name: "DATA for a file the receiver SKIPped",
      plant: (c) => {
        writeFileSync(join(c.dst, "same.txt"), "already here\n");
        utimesSync(join(c.dst, "same.txt"), MTIME_S, MTIME_S);
      },
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.file, size: 13n, path: "same.txt", mtimeNs: MTIME_NS }));
        const a = await peer.waitMessage((m) => (m.type === "want" || m.type === "skip") && m.id === 2, 5_000);
        if (a?.type !== "skip") throw new Error(`expected SKIP for an unchanged file, got ${a?.type}\n${peer.describe()}`);
        await peer.send(dataFrame(2, 0n, enc.encode("overwritten!\n")), fileEndFrame(2));
        await endList(peer, 3_000);
      },
      error: /already ended|unknown id|DATA for/i,
      allowed: () => ({ ...OK_ALLOWED, "same.txt": { type: "file", data: enc.encode("already here\n") } }),
    },
    {
      name: "CHECKSUM without the HELLO flag CHECKSUM",
      async run(peer) {
        await okFirst(peer);
        await peer.send(checksumFrame(1));
        await endList(peer, 3_000);
      },
      error: /CHECKSUM/,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "with CHECKSUM, a file ENTRY not followed by its CHECKSUM",
      flags: FLAG_CHECKSUM,
      async run(peer) {
        await peer.send(rawEntry({ id: 1, kind: KIND.file, size: 4n, path: "nock.txt" }), dataFrame(1, 0n, enc.encode("abcd")), fileEndFrame(1));
        await endList(peer, 3_000);
      },
      error: /CHECKSUM/,
      forbidden: ["nock.txt"],
    },
    {
      name: "with CHECKSUM, a CHECKSUM for another id",
      flags: FLAG_CHECKSUM,
      async run(peer) {
        await peer.send(rawEntry({ id: 1, kind: KIND.file, size: 4n, path: "other.txt" }), checksumFrame(7));
        await endList(peer, 3_000);
      },
      error: /CHECKSUM.*id|id.*CHECKSUM/i,
      forbidden: ["other.txt"],
    },
    {
      name: "LISTED with totals that are not what was announced (one file of OK_DATA's size)",
      async run(peer) {
        await okFirst(peer);
        await peer.send(listedFrame(1n, BigInt(OK_DATA.length + 1)));
        await endList(peer, 3_000);
      },
      error: /LISTED says 1 files/,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "LISTED with totals beyond 2^53 - 1",
      async run(peer) {
        await okFirst(peer);
        await peer.send(listedFrame(1n, 1n << 60n));
        await endList(peer, 3_000);
      },
      error: /LISTED totals/,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "LISTED twice",
      async run(peer) {
        await okFirst(peer);
        await peer.send(listedFrame(1n, BigInt(OK_DATA.length)), listedFrame(1n, BigInt(OK_DATA.length)));
        await endList(peer, 3_000);
      },
      error: /LISTED twice/,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "an ENTRY after LISTED said the listing was complete",
      async run(peer) {
        await okFirst(peer);
        await peer.send(listedFrame(1n, BigInt(OK_DATA.length)), rawEntry({ id: 2, kind: KIND.file, size: 1n, path: "late.txt" }));
        await endList(peer, 3_000);
      },
      error: /ENTRY after LISTED/,
      allowed: () => OK_ALLOWED,
      forbidden: ["late.txt"],
    },
    {
      name: "FILTER without the HELLO flag DELETE",
      async run(peer) {
        await peer.send(filterFrame(1, "*.keep"));
        await endList(peer, 3_000);
      },
      error: /FILTER/,
    },
    {
      name: "with DELETE, FILTER after the first ENTRY",
      flags: FLAG_DELETE,
      async run(peer) {
        await okFirst(peer);
        await peer.send(filterFrame(1, "*.keep"));
        await endList(peer, 3_000);
      },
      error: /FILTER/,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "with DELETE, a FILTER with an unknown rule",
      flags: FLAG_DELETE,
      async run(peer) {
        await peer.send(filterFrame(9, "*.keep"));
        await endList(peer, 3_000);
      },
      error: /FILTER/,
    },
    {
      name: "LIST_END with an undefined flags byte",
      flags: FLAG_DELETE,
      plant: (c) => writeFileSync(join(c.dst, "must-stay.txt"), "kept\n"),
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawFrame(0x04, Uint8Array.of(0x80)));
        await peer.waitMessage((m) => m.type === "error", 3_000);
      },
      error: /LIST_END/,
      allowed: () => ({ ...OK_ALLOWED, "must-stay.txt": { type: "file", data: enc.encode("kept\n") } }),
    },
    {
      name: "with DELETE, LIST_END marked incomplete: nothing is deleted",
      flags: FLAG_DELETE,
      plant: (c) => writeFileSync(join(c.dst, "must-stay.txt"), "kept\n"),
      async run(peer) {
        await peer.send(rootFrame(0o755, MTIME_NS));
        await okFirst(peer);
        await peer.send(rawFrame(0x04, Uint8Array.of(1)));
        await peer.waitMessage((m) => m.type === "report", 5_000);
        expect(peer.messages.some((m) => m.type === "deleted")).toBe(false);
        await peer.close();
      },
      allowed: () => ({ ...OK_ALLOWED, "must-stay.txt": { type: "file", data: enc.encode("kept\n") } }),
      required: ["must-stay.txt"],
    },
    {
      name: "with DELETE, a complete listing: DST keeps only what was listed",
      flags: FLAG_DELETE,
      plant: (c) => writeFileSync(join(c.dst, "goes.txt"), "extra\n"),
      async run(peer) {
        await peer.send(rootFrame(0o755, MTIME_NS));
        await okFirst(peer);
        await peer.send(listEndFrame());
        await peer.waitMessage((m) => m.type === "report", 5_000);
        expect(peer.messages.filter((m) => m.type === "deleted")).toEqual([{ type: "deleted", path: "goes.txt" }]);
        await peer.close();
      },
      allowed: () => OK_ALLOWED,
    },
    {
      name: "HELLO flags PUSH and DELETE together",
      flags: FLAG_PUSH | FLAG_DELETE,
      plant: (c) => mkdirSync(join(c.dst, "must-stay")),
      async run(peer) {
        await peer.send(listEndFrame());
      },
      error: /PUSH|want mode|options/i,
      allowed: () => ({ "must-stay": { type: "dir" } }),
    },
    {
      name: "HELLO flags CHECKSUM and IGNORE_TIMES together",
      flags: FLAG_CHECKSUM | FLAG_IGNORE_TIMES,
      async run(peer) {
        await peer.send(listEndFrame());
      },
      error: /CHECKSUM|IGNORE_TIMES|contradict|options/i,
    },
  ];
}

describe("hostile sender: incremental sync messages", () => {
  for (const hc of cases()) {
    test(hc.name, async () => {
      await runHostileCase(hc);
    }, 60_000);
  }
});
