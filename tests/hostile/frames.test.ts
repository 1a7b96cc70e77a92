// tests/hostile/frames.test.ts — an authenticated sender that breaks the stream itself in
// front of a real `uring-sync recv`: frames longer than the maximum (refused on the header,
// before any payload arrives), a stream cut in the middle of a frame or a record, random
// bytes beside the record layer, sealed random bytes, tampered and replayed records, a
// fatal alert, frames only the receiver may send, and random bytes straight into the frame
// parser of a --plaintext session. Shared checks in tests/helpers/net-hostile.ts.

import { afterAll, describe, test } from "bun:test";
import { Fuzz } from "../helpers/fuzz.ts";
import { killAllReceivers } from "../helpers/net.ts";
import { OK_ALLOWED, okFirst, runHostileCase, type HostileCase } from "../helpers/net-hostile.ts";
import { dataFrame, FLAG_PUSH, KIND, mustAnnounce, rawEntry, rawFrame } from "../helpers/net-peer.ts";
import { MAX_FRAME_PAYLOAD, MSG_DATA, MSG_ENTRY, MSG_REPORT, MSG_WANT } from "../../src/net/wire.ts";

afterAll(killAllReceivers);


/** Deterministic pseudo-random bytes. */
function noise(n: number, seed: number): Uint8Array {
  return new Fuzz(seed).bytes(n);
}

const OVERSIZE = /limit|exceed|too (large|big|long)|frame|length|maximum|payload/i;
const CUT = /closed|EOF|end of|truncat|incomplete|connection|reset|unexpected|premature|short/i;
const RECORD = /record|authenticat|decrypt|tamper|header|out of sync|integrity|MAC|bad/i;
const FRAME = /frame|message|type|unknown|limit|length|ENTRY|DATA|payload|protocol|invalid|malformed/i;

/** Every case runs in both conversation modes (docs/PROTOCOL.md 8.7): want (WANT/SKIP per file) and push (the reference sender's). */
const MODES = [["want mode", 0], ["push mode", FLAG_PUSH]] as const;

function cases(): HostileCase[] {
  return [
    {
      name: "a DATA frame header claiming MAX_FRAME_PAYLOAD + 1 bytes (refused on the header)",
      async run(peer) {
        await okFirst(peer);
        // Only the header and a few bytes: a receiver that waits for the payload hangs here.
        await peer.send(rawFrame(MSG_DATA, new Uint8Array(12), MAX_FRAME_PAYLOAD + 1));
      },
      error: OVERSIZE,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "a frame header claiming 4 GiB - 1 bytes",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawFrame(MSG_DATA, new Uint8Array(0), 0xffffffff));
      },
      error: OVERSIZE,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "an ENTRY frame longer than any ENTRY can be (9000 bytes)",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawFrame(MSG_ENTRY, new Uint8Array(0), 9000));
      },
      error: OVERSIZE,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "a stream cut in the middle of a DATA frame (FIN)",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "cut.bin", 100_000);
        const full = dataFrame(2, 0n, noise(100_000, 7));
        await peer.send(full.subarray(0, 5_000)); // header says 100,012 payload bytes
        await Bun.sleep(200);
        peer.end();
      },
      error: CUT,
      allowed: () => OK_ALLOWED,
      forbidden: ["cut.bin"],
    },
    {
      name: "a stream cut in the middle of a TLS record (RST)",
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "cut.bin", 50_000);
        const sealed = peer.protect(dataFrame(2, 0n, noise(50_000, 3)));
        await peer.writeRaw(sealed.subarray(0, 20_000)); // one whole record and a piece of the next
        await Bun.sleep(200);
        peer.destroy();
      },
      error: CUT,
      allowed: () => OK_ALLOWED,
      forbidden: ["cut.bin"],
    },
    {
      name: "random bytes after the handshake, beside the record layer",
      async run(peer) {
        await okFirst(peer);
        await peer.writeRaw(noise(4096, 11));
      },
      error: RECORD,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "random bytes after the handshake, sealed in valid records (garbage frames)",
      async run(peer) {
        await okFirst(peer);
        const junk = noise(20_000, 12);
        junk[0] = 0x55; // an unknown frame type, whatever the rest says
        await peer.send(junk);
      },
      error: FRAME,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "a tampered record (one ciphertext bit flipped)",
      async run(peer) {
        await okFirst(peer);
        const rec = peer.protect(rawEntry({ id: 2, kind: KIND.file, size: 3n, path: "tampered.txt" }));
        rec[10] ^= 0x01;
        await peer.writeRaw(rec);
      },
      error: RECORD,
      allowed: () => OK_ALLOWED,
      forbidden: ["tampered.txt"],
    },
    {
      name: "a replayed record",
      async run(peer) {
        await okFirst(peer);
        const rec = peer.protect(rawEntry({ id: 2, kind: KIND.dir, mode: 0o755, path: "replayed" }));
        await peer.writeRaw(rec);
        await peer.writeRaw(rec);
      },
      error: RECORD,
      allowed: () => ({ ...OK_ALLOWED, replayed: { type: "dir" } }),
    },
    {
      name: "a fatal alert (handshake_failure) mid-session",
      async run(peer) {
        await okFirst(peer);
        await peer.sendAlert(2, 40);
      },
      error: /alert|peer|aborted|closed|failure/i,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "frames only a receiver may send (WANT, REPORT)",
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawFrame(MSG_WANT, new Uint8Array(13)), rawFrame(MSG_REPORT, new Uint8Array(22)));
      },
      error: /direction|not valid|unexpected|WANT|REPORT|receiver|frame|type/i,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "plaintext session: random bytes straight into the frame parser",
      plaintext: true,
      async run(peer) {
        await okFirst(peer);
        const junk = noise(8192, 13);
        junk[0] = 0x42;
        await peer.send(junk);
      },
      error: FRAME,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "plaintext session: an oversized frame header",
      plaintext: true,
      async run(peer) {
        await okFirst(peer);
        await peer.send(rawFrame(MSG_DATA, new Uint8Array(12), MAX_FRAME_PAYLOAD + 1));
      },
      error: OVERSIZE,
      allowed: () => OK_ALLOWED,
    },
    {
      name: "plaintext session: a stream cut in the middle of a frame",
      plaintext: true,
      async run(peer) {
        await okFirst(peer);
        await mustAnnounce(peer, 2, "cut.bin", 10_000);
        await peer.send(dataFrame(2, 0n, noise(10_000, 5)).subarray(0, 3_000));
        await Bun.sleep(200);
        peer.end();
      },
      error: CUT,
      allowed: () => OK_ALLOWED,
      forbidden: ["cut.bin"],
    },
  ];
}

for (const [mode, flag] of MODES) {
  describe(`hostile sender: broken streams and frames (${mode})`, () => {
    for (const hc of cases()) {
      test(hc.name, async () => {
        await runHostileCase({ ...hc, flags: (hc.flags ?? 0) | flag });
      }, 60_000);
    }
  });
}
