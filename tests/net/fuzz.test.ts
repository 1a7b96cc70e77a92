// Seeded fuzzing of every parser that reads peer bytes. The only acceptable failure is a
// ProtocolError, and buffered memory must stay within the documented bounds.
// Reproduce a failure with FUZZ_SEED=<seed printed in the failure> bun test tests/net/fuzz.test.ts
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { Fuzz } from "../helpers/fuzz.ts";
import { Handshake, HS_HEADER_LENGTH, HS_MAX_BODY } from "../../src/net/handshake.ts";
import { MAX_RECORD_CIPHERTEXT, RECORD_HEADER_LENGTH, RecordOpener, RecordSealer } from "../../src/net/record.ts";
import {
  FRAME_HEADER_LENGTH,
  FrameReader,
  MAX_FRAME_PAYLOAD,
  checkRelativePath,
  checkRelativePathBytes,
  decodeMessage,
  encodeMessage,
  type WireMessage,
} from "../../src/net/wire.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 0x75796e63) >>> 0;
/** Per section; the whole file stays within a few seconds. */
const BUDGET_MS = 700;

class FrameFuzz extends Fuzz {
  /** Flip, overwrite, insert, delete or truncate a few bytes of a valid input. */
  mutate(src: Uint8Array): Uint8Array {
    let b = Array.from(src);
    const edits = 1 + this.int(4);
    for (let e = 0; e < edits; e++) {
      const at = this.int(b.length + 1);
      switch (this.int(6)) {
        case 0:
          if (at < b.length) b[at] ^= 1 << this.int(8);
          break;
        case 1:
          if (at < b.length) b[at] = this.pick([0, 1, 0x7f, 0x80, 0xff, this.int(256)]);
          break;
        case 2:
          b.splice(at, 0, ...this.bytes(1 + this.int(8)));
          break;
        case 3:
          b.splice(at, 1 + this.int(8));
          break;
        case 4:
          b = b.slice(0, at);
          break;
        default:
          // big-endian length fields are the interesting ones: make one huge
          if (at + 1 < b.length) {
            b[at] = 0xff;
            b[at + 1] = 0xff;
          }
      }
    }
    return Uint8Array.from(b);
  }
  /** Splits a stream into random-sized chunks, from single bytes to everything. */
  chunks(stream: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let p = 0; p < stream.length; ) {
      const n = this.pick([1, 2, 3, 5, 7, 64, 1000, 20000, stream.length]);
      out.push(stream.subarray(p, p + n));
      p += n;
    }
    return out;
  }
}

/** Runs `body` until the time budget or `max` iterations; returns iterations done. */
function forBudget(max: number, body: (f: FrameFuzz, i: number) => void): number {
  const start = performance.now();
  let i = 0;
  for (; i < max && performance.now() - start < BUDGET_MS; i++) {
    const seed = (SEED + i * 0x9e3779b9) >>> 0;
    try {
      body(new FrameFuzz(seed), i);
    } catch (e) {
      if (e instanceof ProtocolError) continue;
      throw new Error(`fuzz iteration ${i} (FUZZ_SEED=${SEED}, case seed ${seed}) threw a non-ProtocolError: ${String(e)}`, { cause: e });
    }
  }
  if (process.env.FUZZ_DEBUG) console.log(`fuzz: ${i} iterations`);
  return i;
}

function sampleMessages(f: FrameFuzz): WireMessage[] {
  const path = f.pick(["a", "dir/sub/file.txt", "ü/日本", "a..b/..c", "x".repeat(200)]);
  return [
    { type: "entry", kind: "file", id: f.int(1000), mode: 0o644, mtimeNs: BigInt(f.int(1e9)), size: BigInt(f.int(1e6)), path },
    { type: "entry", kind: "dir", id: f.int(1000), mode: 0o755, mtimeNs: 0n, size: 0n, path },
    { type: "entry", kind: "symlink", id: 5, mode: 0o777, mtimeNs: 1n, size: 0n, path, linkTarget: f.bytes(1 + f.int(40)).map((b) => b || 1) },
    { type: "entry", kind: "hardlink", id: 6, mode: 0o600, mtimeNs: 1n, size: 0n, path, linkId: 5 },
    { type: "data", id: f.int(100), offset: BigInt(f.int(1e9)), bytes: f.bytes(f.int(300)) },
    { type: "file-end", id: f.int(100) },
    { type: "list-end" },
    { type: "want", id: 3, offset: 10n, prefixHash: f.bytes(32) },
    { type: "want", id: 3, offset: 0n },
    { type: "skip", id: 9 },
    { type: "report", files: 3, bytes: 99n, failures: [{ path, code: "EIO", message: "boom" }], omittedFailures: 2 },
    { type: "error", message: "bad thing" },
  ];
}

describe(`fuzz (FUZZ_SEED=${SEED})`, () => {
  test("FrameReader + decodeMessage: random and mutated streams", () => {
    const bound = FRAME_HEADER_LENGTH + MAX_FRAME_PAYLOAD;
    let frames = 0;
    const n = forBudget(20000, (f) => {
      const msgs = sampleMessages(f);
      let stream: Uint8Array;
      const mode = f.int(3);
      if (mode === 0) stream = f.bytes(f.int(200));
      else {
        const parts = Array.from({ length: 1 + f.int(5) }, () => encodeMessage(f.pick(msgs)));
        stream = Buffer.concat(parts);
        if (mode === 2) stream = f.mutate(stream);
      }
      const reader = new FrameReader({ direction: f.pick(["any", "to-receiver", "to-sender"] as const) });
      for (const chunk of f.chunks(stream)) {
        let got;
        try {
          got = reader.push(chunk);
        } finally {
          expect(reader.bufferedBytes).toBeLessThanOrEqual(bound);
        }
        for (const fr of got) {
          frames++;
          expect(fr.payload.length).toBeLessThanOrEqual(MAX_FRAME_PAYLOAD);
          decodeMessage(fr);
        }
      }
    });
    expect(n).toBeGreaterThan(1000);
    expect(frames).toBeGreaterThan(100);
  });

  test("decodeMessage: random payloads for every message type", () => {
    const types = [0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x7f, 0x00, 0x05, 0xff];
    let decoded = 0;
    const n = forBudget(50000, (f) => {
      const type = f.pick(types);
      const payload = f.int(4) === 0 ? f.bytes(f.int(64)) : f.mutate(encodeMessage(f.pick(sampleMessages(f))).subarray(FRAME_HEADER_LENGTH));
      const msg = decodeMessage({ type, payload });
      decoded++;
      // Whatever decodes must re-encode (the encoder is at least as strict).
      encodeMessage(msg);
    });
    expect(n).toBeGreaterThan(1000);
    expect(decoded).toBeGreaterThan(10);
  });

  test("checkRelativePathBytes: whatever passes really is a safe relative path", () => {
    const alphabet = [0x2f, 0x2f, 0x2e, 0x2e, 0x2e, 0x61, 0x62, 0x00, 0xff, 0xc3, 0xa9, 0xe2, 0x98, 0x83, 0x0a, 0x20];
    let accepted = 0;
    const n = forBudget(50000, (f) => {
      const b = Uint8Array.from({ length: f.int(12) }, () => f.pick(alphabet));
      const p = checkRelativePathBytes(b);
      accepted++;
      expect(p.length).toBeGreaterThan(0);
      expect(p.startsWith("/")).toBe(false);
      expect(p.includes("\0")).toBe(false);
      for (const c of p.split("/")) {
        expect(c === "" || c === "." || c === "..").toBe(false);
      }
      expect(Buffer.from(new TextEncoder().encode(p)).equals(Buffer.from(b))).toBe(true);
    });
    expect(n).toBeGreaterThan(1000);
    expect(accepted).toBeGreaterThan(10);
  });

  test("checkRelativePathBytes accepts exactly what the string rules (checkRelativePath) accept", () => {
    // The byte checker is the fast one-pass version of the string rules: both must agree on
    // every input, including long components, BOMs, overlong and truncated UTF-8.
    const alphabet = [0x2f, 0x2e, 0x2e, 0x61, 0x00, 0xff, 0xc0, 0xaf, 0xef, 0xbb, 0xbf, 0xed, 0xa0, 0x80, 0xc3, 0xa9];
    const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    let agreedAccept = 0;
    const n = forBudget(50000, (f) => {
      const long = f.int(20) === 0;
      const b = long
        ? Uint8Array.from({ length: 250 + f.int(12) }, (_, i) => (i === 0 || f.int(40) !== 0 ? 0x61 : f.pick(alphabet)))
        : Uint8Array.from({ length: f.int(10) }, () => f.pick(alphabet));
      let viaBytes: string | Error;
      try {
        viaBytes = checkRelativePathBytes(b);
      } catch (e) {
        viaBytes = e as Error;
      }
      let viaString: string | Error;
      try {
        viaString = checkRelativePath(strict.decode(b));
      } catch (e) {
        viaString = e as Error;
      }
      expect(typeof viaBytes).toBe(typeof viaString);
      if (typeof viaBytes === "string") {
        expect(viaBytes).toBe(viaString as string);
        agreedAccept++;
      } else {
        expect(viaBytes).toBeInstanceOf(ProtocolError);
        expect((viaBytes as ProtocolError).kind).toBe("path");
      }
    });
    expect(n).toBeGreaterThan(1000);
    expect(agreedAccept).toBeGreaterThan(10);
  });

  test("RecordOpener: random and mutated record streams", () => {
    const key = new Uint8Array(16).fill(3);
    const iv = new Uint8Array(12).fill(4);
    const bound = RECORD_HEADER_LENGTH + MAX_RECORD_CIPHERTEXT;
    let opened = 0;
    const n = forBudget(20000, (f) => {
      let stream: Uint8Array;
      if (f.int(3) === 0) stream = f.bytes(f.int(100));
      else {
        const s = new RecordSealer("aes-128-gcm", key, iv);
        stream = Buffer.concat(Array.from({ length: 1 + f.int(3) }, () => s.seal(f.bytes(f.int(200)), f.pick([21, 23]))));
        if (f.int(4) !== 0) stream = f.mutate(stream);
      }
      const o = new RecordOpener("aes-128-gcm", key, iv);
      for (const chunk of f.chunks(stream)) {
        try {
          opened += o.push(chunk).length;
        } finally {
          expect(o.bufferedBytes).toBeLessThanOrEqual(bound);
        }
      }
    });
    expect(n).toBeGreaterThan(1000);
    expect(opened).toBeGreaterThan(100);
  });

  test("Handshake: random bytes and mutated real messages", () => {
    const secret = new TextEncoder().encode("fuzz");
    // One real exchange to mutate.
    const c0 = new Handshake({ role: "client", secret });
    const s0 = new Handshake({ role: "server", secret });
    const toServer: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      let m: Uint8Array | null;
      while ((m = c0.nextOutgoing()) !== null) {
        toServer.push(m);
        s0.receive(m);
      }
      while ((m = s0.nextOutgoing()) !== null) c0.receive(m);
    }
    expect(s0.done).toBe(true);
    const real = Buffer.concat(toServer);
    let failures = 0;
    const n = forBudget(5000, (f) => {
      const h = new Handshake({ role: f.int(2) === 0 ? "server" : "client", secret });
      const mode = f.int(3);
      const stream = mode === 0 ? f.bytes(f.int(600)) : mode === 1 ? f.mutate(real) : f.mutate(real.subarray(0, HS_HEADER_LENGTH + 46));
      try {
        for (const chunk of f.chunks(stream)) {
          const used = h.receive(chunk);
          expect(used).toBeLessThanOrEqual(chunk.length);
          expect(h.bytesNeeded()).toBeLessThanOrEqual(HS_HEADER_LENGTH + HS_MAX_BODY);
        }
      } catch (e) {
        failures++;
        throw e;
      }
      // A handshake that saw garbage must never report success with a stranger.
      expect(h.done).toBe(false);
    });
    expect(n).toBeGreaterThan(200);
    expect(failures).toBeGreaterThan(100);
  });
});
