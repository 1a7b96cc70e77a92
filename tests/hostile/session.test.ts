// tests/hostile/session.test.ts — an authenticated sender that abuses the session rules of
// docs/PROTOCOL.md section 8 and 12 against a real `uring-sync recv`: ids used twice, data
// after a file ended, LIST_END with a file still open, a hard link to a file that never
// completes, a file in a directory never announced, more files open at once than the limit,
// an idle connection, HOLE frames past the size (and an honest sparse file), FILE_ABORT,
// ROOT with special bits or out of place, and re-keying abuse (REKEY and no continuation, a
// CONTINUATION connection with nothing to continue, a continuation with a forged token).
// Shared checks in tests/helpers/net-hostile.ts.

import { afterAll, describe, test } from "bun:test";
import { lstatSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { killAllReceivers, TEST_SECRET } from "../helpers/net.ts";
import { OK_ALLOWED, okFirst, runHostileCase, type Allowed, type HostileCase } from "../helpers/net-hostile.ts";
import {
  continuationTokenOf,
  continueFrame,
  dataFrame,
  endList,
  fileAbortFrame,
  fileEndFrame,
  FLAG_CONTINUATION,
  FLAG_PUSH,
  holeFrame,
  KIND,
  listEndFrame,
  mustAnnounce,
  Peer,
  rawEntry,
  rekeyFrame,
  rootFrame,
  sendDir,
  sendFile,
  type HandshakeOutcome,
} from "../helpers/net-peer.ts";

afterAll(killAllReceivers);

const enc = new TextEncoder();
const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed) & 0xff);

/** Start a file, send half of it, REKEY, close_notify, FIN: the receiver waits for a continuation. */
async function rekeyMidFile(peer: Peer): Promise<void> {
  await okFirst(peer);
  await mustAnnounce(peer, 2, "big.bin", 100_000);
  await peer.send(dataFrame(2, 0n, bytes(50_000)));
  await peer.send(rekeyFrame());
  await peer.sendAlert();
  peer.end();
  await peer.waitClosed(3_000);
}

/** A second connection that asks to continue `peer`'s session (same conversation mode). */
async function continuation(peer: Peer, rcv: { host: string; port: number }): Promise<{ p2: Peer; hs: HandshakeOutcome }> {
  const p2 = await Peer.connect(rcv.host, rcv.port);
  const hs = await p2.handshake({ secret: TEST_SECRET, flags: FLAG_CONTINUATION | (peer.push ? FLAG_PUSH : 0) });
  return { p2, hs };
}

/** After rekeyMidFile: a continuation presenting `token` with the rest of big.bin, which the receiver must refuse. */
async function continueWithToken(peer: Peer, rcv: { host: string; port: number }, token: () => Uint8Array): Promise<void> {
  const { p2, hs } = await continuation(peer, rcv);
  if (hs.ok) {
    await p2.send(continueFrame(token()), dataFrame(2, 50_000n, bytes(50_000, 9)), fileEndFrame(2), listEndFrame());
    await p2.waitClosed(5_000);
  }
  p2.destroy();
}

const SPARSE_SIZE = 3 * 1024 * 1024;
const sparseContent = (): Uint8Array => {
  const b = new Uint8Array(SPARSE_SIZE);
  b.set(bytes(4096, 3), 0);
  b.set(bytes(4096, 5), SPARSE_SIZE - 4096);
  return b;
};

/** Every case runs in both conversation modes (docs/PROTOCOL.md 8.7): want (WANT/SKIP per file) and push (the reference sender's). */
const MODES = [["want mode", 0], ["push mode", FLAG_PUSH]] as const;

function cases(): HostileCase[] {
  return [
    {
      name: "an id used for two files at once",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "first.bin", 10);
        await peer.send(rawEntry({ id: 2, kind: KIND.file, size: 10n, path: "second.bin" }), dataFrame(2, 0n, bytes(10)), fileEndFrame(2), listEndFrame());
      },
      error: /\bid\b|twice|duplicate|already|in use|unique|reused/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["first.bin", "second.bin"],
    },
    {
      name: "DATA after the file's FILE_END",
      async run(peer) {
        await okFirst(peer);
        await peer.send(dataFrame(1, 0n, bytes(5)), listEndFrame());
      },
      error: /ended|unknown|\bid\b|after|closed|not open|DATA/i,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "LIST_END while a file is still open",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "open.bin", 100);
        await peer.send(dataFrame(2, 0n, bytes(40)), listEndFrame());
      },
      error: /LIST_END|not ended|still open|open|unfinished|incomplete|before/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["open.bin"],
    },
    {
      name: "a hard link to a file that never completes",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "partial.bin", 100);
        await peer.send(rawEntry({ id: 3, kind: KIND.hardlink, mode: 0o644, path: "hl-to-partial", linkId: 2 }));
          await peer.send(dataFrame(2, 0n, bytes(50)), fileEndFrame(2), listEndFrame());
      },
      error: /fewer|short|announced|bytes|incomplete/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["partial.bin", "hl-to-partial"],
    },
    {
      name: "a file in a directory that was never announced",
      async run(peer) {
        await okFirst(peer);
        await sendFile(peer, { id: 2, path: "nodir/x.txt", data: bytes(10) }, 2_000);
        await endList(peer, 3_000);
      },
      error: /ENOENT|no such|director|parent|not found|missing/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["nodir"],
    },
    {
      name: "more files open at once than the receiver allows (1100 ENTRYs, no FILE_END)",
      async run(peer) {
        await okFirst(peer);
        const frames: Uint8Array[] = [];
        for (let i = 0; i < 1100; i++) frames.push(rawEntry({ id: 100 + i, kind: KIND.file, size: 1n, path: `many-${i}` }));
        await peer.send(...frames);
      },
      error: /limit|too many|open files|at once|exceed/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["many-0", "many-1099"],
      settleMs: 10_000,
    },
    {
      name: "an authenticated connection that goes idle mid-file is dropped at the idle timeout",
      recvEnv: { URING_SYNC_IDLE_TIMEOUT_MS: "1500" },
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "slow.bin", 1000);
        await peer.send(dataFrame(2, 0n, bytes(100)));
        // Now silence, connection open: the receiver must give up on its own.
        await peer.waitClosed(8_000);
      },
      error: /idle|timeout|nothing received/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["slow.bin"],
      settleMs: 8_000,
    },
    {
      name: "a HOLE past the announced size",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "hole.bin", 100);
        await peer.send(holeFrame(2, 0n, 200n), fileEndFrame(2), listEndFrame());
      },
      error: /more|past|beyond|exceed|announced|size/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["hole.bin"],
    },
    {
      name: "a HOLE of 2^62 on a small file",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "hole.bin", 100);
        await peer.send(holeFrame(2, 0n, 1n << 62n), fileEndFrame(2), listEndFrame());
      },
      error: /more|past|beyond|exceed|announced|size|limit|2\^62/i,
      allowed: () => OK_ALLOWED,
      forbidden: ["hole.bin"],
    },
    {
      name: "an honest sparse file: DATA, HOLE, DATA lands with zeros in the hole",
      async run(peer) {
        await okFirst(peer);
        const content = sparseContent();
        await mustAnnounce(peer, 2, "sparse.bin", SPARSE_SIZE);
        await peer.send(
          dataFrame(2, 0n, content.subarray(0, 4096)),
          holeFrame(2, 4096n, BigInt(SPARSE_SIZE - 8192)),
          dataFrame(2, BigInt(SPARSE_SIZE - 4096), content.subarray(SPARSE_SIZE - 4096)),
          fileEndFrame(2),
        );
        if ((await endList(peer, 5_000)) === undefined) throw new Error(`no REPORT\n${peer.describe()}`);
        await peer.close();
      },
      allowed: () => ({ ...OK_ALLOWED, "sparse.bin": { type: "file", data: sparseContent() } }),
      required: ["ok-first.txt", "sparse.bin"],
      // PROTOCOL.md 8.3a: the receiver does not write holes, so the file stays sparse.
      check: (c) => {
        const st = lstatSync(`${c.dst}/sparse.bin`);
        return st.blocks * 512 > 1024 * 1024 ? [`sparse.bin allocates ${st.blocks * 512} bytes of ${SPARSE_SIZE}: the hole was written`] : [];
      },
    },
    {
      name: "FILE_ABORT: the aborted file never appears; the rest of the session completes",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "aborted.bin", 100);
        await peer.send(dataFrame(2, 0n, new Uint8Array(100)), fileAbortFrame(2));
        await sendFile(peer, { id: 3, path: "after.txt", data: bytes(33) });
        if ((await endList(peer, 5_000)) === undefined) throw new Error(`no REPORT\n${peer.describe()}`);
        await peer.close();
      },
      allowed: () => ({ ...OK_ALLOWED, "after.txt": { type: "file", data: bytes(33) } }),
      required: ["ok-first.txt", "after.txt"],
      forbidden: ["aborted.bin"],
    },
    {
      name: "a hard link to a symlink's id",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawEntry({ id: 2, kind: KIND.symlink, mode: 0o777, path: "sl", target: "ok-first.txt" }));
        await peer.send(rawEntry({ id: 3, kind: KIND.hardlink, mode: 0o644, path: "hl", linkId: 2 }));
        await endList(peer, 3_000);
      },
      error: /link|not a (regular )?file|symlink|\bid\b/i,
      outcome: "either",
      allowed: () => ({ ...OK_ALLOWED, sl: { type: "symlink", target: "ok-first.txt" }, hl: { type: "symlink", target: "ok-first.txt" } }),
    },
    {
      name: "a file whose name is an existing directory with the receiver's own files in it",
      plant: (c) => {
        mkdirSync(join(c.dst, "important"));
        writeFileSync(join(c.dst, "important", "keep.txt"), "the receiver's own data\n");
      },
      async run(peer) {
        await okFirst(peer);
        await sendFile(peer, { id: 2, path: "important", data: bytes(10) }, 2_000);
        await endList(peer, 3_000);
      },
      error: /EISDIR|is a directory|directory|ENOTEMPTY|not empty|exists/i,
      allowed: () => ({ ...OK_ALLOWED, "important/keep.txt": { type: "file", data: enc.encode("the receiver's own data\n") } }),
      required: ["important/keep.txt"],
    },
    {
      name: "2000 nested directories (a 4000-byte path) and a file at the bottom",
      async run(peer) {
        await okFirst(peer);
        const frames: Uint8Array[] = [];
        let p = "";
        for (let i = 0; i < 2000; i++) {
          p = p === "" ? "a" : `${p}/a`;
          frames.push(rawEntry({ id: 10 + i, kind: KIND.dir, mode: 0o755, path: p }));
        }
        await peer.send(...frames);
        await sendFile(peer, { id: 5000, path: `${p}/z`, data: bytes(7) }, 10_000);
        if ((await endList(peer, 30_000)) === undefined) throw new Error(`no REPORT\n${peer.describe()}`);
        await peer.close();
      },
      allowed: () => {
        const out: Record<string, Allowed> = { ...OK_ALLOWED };
        let p = "";
        for (let i = 0; i < 2000; i++) {
          p = p === "" ? "a" : `${p}/a`;
          out[p] = { type: "dir" };
        }
        out[`${p}/z`] = { type: "file", data: bytes(7) };
        return out;
      },
      required: ["ok-first.txt"],
      settleMs: 30_000,
    },
    {
      name: "ROOT with setuid/setgid/sticky: DST gets the permission bits only",
      async run(peer) {
        await peer.send(rootFrame(0o7755, 1_234_567_890_123_456_789n));
        await okFirst(peer);
        if ((await endList(peer, 5_000)) === undefined) throw new Error(`no REPORT\n${peer.describe()}`);
        await peer.close();
      },
      allowed: () => OK_ALLOWED,
      required: ["ok-first.txt"],
      check: (c) => {
        const st = lstatSync(c.dst, { bigint: true });
        const mode = Number(st.mode) & 0o7777;
        const out: string[] = [];
        if (mode !== 0o755) out.push(`DST mode 0${mode.toString(8)} after ROOT 07755: want 0755 (special bits dropped)`);
        if (st.mtimeNs !== 1_234_567_890_123_456_789n) out.push(`DST mtime ${st.mtimeNs} after ROOT: want 1234567890123456789`);
        return out;
      },
    },
    {
      name: "ROOT after an ENTRY",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rootFrame(0o700, 0n));
        await endList(peer, 3_000);
      },
      error: /ROOT|first/i,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "a CONTINUATION connection when no session waits to be continued",
      flags: FLAG_CONTINUATION,
      async run(peer) {
        await peer.send(continueFrame(crypto.getRandomValues(new Uint8Array(32))), rawEntry({ id: 1, kind: KIND.dir, mode: 0o755, path: "should-not-exist" }));
      },
      error: /continu/i,
      forbidden: ["should-not-exist"],
    },
    {
      name: "REKEY mid-file, then no continuation: the session fails at the timeout, no partial file",
      async run(peer) {
        await rekeyMidFile(peer);
      },
      error: /continu|re-?key/i,
      errorWaitMs: 15_000,
      allowed: () => OK_ALLOWED,
      forbidden: ["big.bin"],
    },
    {
      name: "REKEY mid-file, then a continuation with a forged token",
      async run(peer, _c, rcv) {
        await rekeyMidFile(peer);
        await continueWithToken(peer, rcv, () => crypto.getRandomValues(new Uint8Array(32)));
      },
      error: /auth|token|continu/i,
      errorWaitMs: 15_000,
      allowed: () => OK_ALLOWED,
      forbidden: ["big.bin"],
    },
    {
      name: "REKEY mid-file, then a continuation carrying another connection's token",
      async run(peer, _c, rcv) {
        // A token that is valid for some connection, just not the one being continued.
        const { p2: other, hs: ohs } = await continuation(peer, rcv);
        other.destroy();
        await rekeyMidFile(peer);
        await continueWithToken(peer, rcv, () => (ohs.result ? continuationTokenOf(ohs.result) : new Uint8Array(32)));
      },
      error: /auth|token|continu/i,
      errorWaitMs: 15_000,
      allowed: () => OK_ALLOWED,
      forbidden: ["big.bin"],
    },
    {
      name: "REKEY mid-file, then an honest continuation completes the file",
      async run(peer, _c, rcv) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "big.bin", 100_000);
        await peer.send(dataFrame(2, 0n, bytes(100_000).subarray(0, 50_000)), rekeyFrame());
        await peer.sendAlert();
        peer.end();
        await peer.waitClosed(3_000);
        const first = peer.handshakeResult!;
        const { p2, hs } = await continuation(peer, rcv);
        if (!hs.ok) throw new Error(`continuation handshake failed: ${hs.error}\n${p2.describe()}`);
        await p2.send(continueFrame(continuationTokenOf(first)), dataFrame(2, 50_000n, bytes(100_000).subarray(50_000)), fileEndFrame(2));
        await sendDir(p2, 3, "after-rekey");
        if ((await endList(p2, 5_000)) === undefined) throw new Error(`no REPORT on the continued session\n${p2.describe()}`);
        await p2.close();
      },
      allowed: () => ({ ...OK_ALLOWED, "big.bin": { type: "file", data: bytes(100_000) }, "after-rekey": { type: "dir" } }),
      required: ["ok-first.txt", "big.bin", "after-rekey"],
    },
  ];
}

for (const [mode, flag] of MODES) {
  describe(`hostile sender: session rules, limits, timeouts, holes, aborts, ROOT and re-keying (${mode})`, () => {
    for (const hc of cases()) {
      test(hc.name, async () => {
        await runHostileCase({ ...hc, flags: (hc.flags ?? 0) | flag });
      }, 60_000);
    }
  });
}
