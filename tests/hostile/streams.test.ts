// tests/hostile/streams.test.ts — an authenticated sender that abuses data streams
// (send -j N, docs/PROTOCOL.md 8.8) against a real `uring-sync recv`: a JOIN with a wrong
// token, a data stream that sends ENTRY, DATA for an id never WANTed, the same bytes on two
// streams, more data streams than a session takes, a file whose FILE_END comes but whose
// bytes never do; and an honest split file (pieces on the control connection and on a
// data stream, the FILE_END overtaking the last piece). Shared checks in
// tests/helpers/net-hostile.ts.

import { afterAll, describe, test } from "bun:test";
import { killAllReceivers, TEST_SECRET, type Receiver } from "../helpers/net.ts";
import { runHostileCase, type Allowed, type HostileCase } from "../helpers/net-hostile.ts";
import { MAX_JOINS } from "../../src/net/session.ts";
import {
  dataFrame, endList, fileEndFrame, FLAG_JOIN, FLAG_STREAMS, joinFrame, joinTokenOf, KIND, listEndFrame, mustAnnounce, Peer, rawEntry,
} from "../helpers/net-peer.ts";

afterAll(killAllReceivers);

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed) & 0xff);
const SIZE = 3 * 1024 * 1024;
const BIG = bytes(SIZE, 7);
const HALF = SIZE / 2;

/** DATA frames for BIG[from, to) in chunks of at most 1 MiB. */
function piece(from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = from; at < to; at += 1024 * 1024) out.push(dataFrame(1, BigInt(at), BIG.subarray(at, Math.min(to, at + 1024 * 1024))));
  return out;
}

/** A data stream of `peer`'s session: connected, handshaken with JOIN, JOIN frame sent (with `token`, default the right one). */
async function joinStream(peer: Peer, rcv: Receiver, token?: Uint8Array): Promise<Peer> {
  const p = await Peer.connect(rcv.host, rcv.port);
  const hs = await p.handshake({ secret: TEST_SECRET, flags: FLAG_STREAMS | FLAG_JOIN });
  if (!hs.ok) throw new Error(`data stream handshake failed: ${hs.error}\n${p.describe()}`);
  await p.send(joinFrame(token ?? joinTokenOf(peer.handshakeResult!)));
  return p;
}

/** A data stream ends: close_notify, FIN. */
async function endStream(p: Peer): Promise<void> {
  await p.sendAlert();
  p.end();
  await p.waitClosed(3_000);
}

function cases(): HostileCase[] {
  return [
    {
      name: "honest: a split file, first half on a data stream, second on the control connection, FILE_END before the data stream's bytes",
      async run(peer, _c, rcv) {
        await mustAnnounce(peer, 1, "big.bin", SIZE);
        const d = await joinStream(peer, rcv);
        await peer.send(...piece(HALF, SIZE), fileEndFrame(1));
        await d.send(...piece(0, HALF));
        await endStream(d);
        if ((await endList(peer, 8_000)) === undefined) throw new Error(`no REPORT\n${peer.describe()}`);
        await peer.close();
      },
      allowed: () => ({ "big.bin": { type: "file", data: BIG } }),
      required: ["big.bin"],
    },
    {
      name: "a JOIN with a wrong token",
      async run(peer, _c, rcv) {
        await mustAnnounce(peer, 1, "big.bin", SIZE);
        const d = await joinStream(peer, rcv, crypto.getRandomValues(new Uint8Array(32)));
        await d.send(...piece(0, HALF));
        await peer.send(...piece(HALF, SIZE), fileEndFrame(1), listEndFrame());
        await d.waitClosed(5_000);
        d.destroy();
      },
      error: /JOIN token/i,
      forbidden: ["big.bin"],
    },
    {
      name: "a data stream that sends an ENTRY",
      async run(peer, _c, rcv) {
        await mustAnnounce(peer, 1, "big.bin", SIZE);
        const d = await joinStream(peer, rcv);
        await d.send(rawEntry({ id: 2, kind: KIND.dir, mode: 0o755, path: "via-data-stream" }));
        await d.waitClosed(5_000);
        d.destroy();
      },
      error: /only DATA and HOLE/i,
      forbidden: ["big.bin", "via-data-stream"],
    },
    {
      name: "DATA on a data stream for an id never announced (never WANTed)",
      async run(peer, _c, rcv) {
        await mustAnnounce(peer, 1, "big.bin", SIZE);
        const d = await joinStream(peer, rcv);
        await d.send(dataFrame(99, 0n, bytes(1000)));
        await d.waitClosed(5_000);
        d.destroy();
      },
      error: /unknown id 99/i,
      forbidden: ["big.bin"],
    },
    {
      name: "the same bytes of a file on two streams (overlapping pieces)",
      async run(peer, _c, rcv) {
        await mustAnnounce(peer, 1, "big.bin", SIZE);
        const d = await joinStream(peer, rcv);
        await peer.send(dataFrame(1, 0n, BIG.subarray(0, 1024 * 1024)));
        await d.send(dataFrame(1, BigInt(512 * 1024), BIG.subarray(512 * 1024, 1536 * 1024)));
        await d.waitClosed(5_000);
        d.destroy();
      },
      error: /twice|overlap/i,
      forbidden: ["big.bin"],
    },
    {
      name: "FILE_END and LIST_END, and the data streams end with bytes missing",
      async run(peer, _c, rcv) {
        await mustAnnounce(peer, 1, "big.bin", SIZE);
        const d = await joinStream(peer, rcv);
        await d.send(...piece(0, HALF));
        await peer.send(fileEndFrame(1), listEndFrame());
        await endStream(d);
      },
      error: /fewer than the/i,
      forbidden: ["big.bin"],
    },
    {
      name: "more data streams than a session takes: the 17th is refused, the session goes on",
      async run(peer, _c, rcv) {
        await mustAnnounce(peer, 1, "big.bin", SIZE);
        const streams: Peer[] = [];
        // MAX_JOINS: 15 for -j 16, plus one for a replacement overlapping the stream it replaces.
        for (let i = 0; i < MAX_JOINS; i++) streams.push(await joinStream(peer, rcv));
        const extra = await Peer.connect(rcv.host, rcv.port);
        const hs = await extra.handshake({ secret: TEST_SECRET, flags: FLAG_STREAMS | FLAG_JOIN });
        if (hs.ok) {
          await extra.send(joinFrame(joinTokenOf(peer.handshakeResult!)), dataFrame(1, 0n, BIG.subarray(0, 1000)));
          if (!(await extra.waitClosed(5_000))) throw new Error(`the receiver kept data stream ${MAX_JOINS + 1} open`);
        }
        extra.destroy();
        await streams[3].send(...piece(0, HALF));
        await streams[9].send(...piece(HALF, SIZE));
        for (const s of streams) await endStream(s);
        await peer.send(fileEndFrame(1));
        if ((await endList(peer, 8_000)) === undefined) throw new Error(`no REPORT\n${peer.describe()}`);
        await peer.close();
      },
      allowed: (): Record<string, Allowed> => ({ "big.bin": { type: "file", data: BIG } }),
      required: ["big.bin"],
    },
  ];
}

describe("hostile sender: data streams (send -j)", () => {
  for (const hc of cases()) {
    test(hc.name, async () => {
      await runHostileCase({ ...hc, flags: FLAG_STREAMS });
    }, 60_000);
  }
});
