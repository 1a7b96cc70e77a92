// Data-stream frames: round trips, strict decoding, the path gate, framing limits.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { kindOf } from "../helpers/throws.ts";
import {
  FRAME_HEADER_LENGTH,
  FrameReader,
  MAX_DATA_CHUNK,
  MAX_FRAME_PAYLOAD,
  MAX_REPORT_FAILURES,
  MSG_DATA,
  MSG_ENTRY,
  MSG_WANT,
  MSG_CHECKSUM,
  MSG_FILTER,
  MSG_DELETED,
  MAX_PATTERN_BYTES,
  FLAG_CHECKSUM,
  FLAG_DELETE,
  FLAG_DRY_RUN,
  FLAG_IGNORE_TIMES,
  FLAG_PUSH,
  FLAG_STREAMS,
  FLAG_JOIN,
  MSG_JOIN,
  MSG_LISTED,
  checkFrameHeader,
  syncFlagBits,
  syncOptionsOf,
  capFailures,
  checkLinkTarget,
  checkRelativePath,
  checkRelativePathBytes,
  decodeMessage,
  decodeReceiverMessage,
  decodeSenderMessage,
  displaySafe,
  encodeDataHeader,
  encodeMessage,
  truncateUtf8,
  type RawFrame,
  type WireMessage,
} from "../../src/net/wire.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function roundTrip(msg: WireMessage): WireMessage {
  const frame = encodeMessage(msg);
  const frames = new FrameReader().push(frame);
  expect(frames.length).toBe(1);
  expect(frames[0].payload.length).toBe(frame.length - FRAME_HEADER_LENGTH);
  return decodeMessage(frames[0]);
}

/** A frame built by hand, for inputs the encoder refuses to produce. */
/** A 5-byte frame header: type, payload length. */
function frameHeader(type: number, len: number): Uint8Array {
  const h = new Uint8Array(5);
  h[0] = type;
  new DataView(h.buffer).setUint32(1, len);
  return h;
}

function rawFrame(type: number, payload: Uint8Array): RawFrame {
  return { type, payload };
}

function entryPayload(o: { id?: number; kind?: number; mode?: number; mtime?: bigint; size?: bigint; path?: Uint8Array; tail?: Uint8Array }): Uint8Array {
  const path = o.path ?? enc("f");
  const tail = o.tail ?? new Uint8Array(0);
  const b = new Uint8Array(27 + path.length + tail.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, o.id ?? 1);
  v.setUint8(4, o.kind ?? 1);
  v.setUint32(5, o.mode ?? 0o644);
  v.setBigInt64(9, o.mtime ?? 0n);
  v.setBigUint64(17, o.size ?? 0n);
  v.setUint16(25, path.length);
  b.set(path, 27);
  b.set(tail, 27 + path.length);
  return b;
}

describe("round trips", () => {
  const cases: WireMessage[] = [
    { type: "entry", kind: "file", id: 7, mode: 0o644, mtimeNs: 1_700_000_000_123_456_789n, size: 12345n, path: "dir/sub/f.txt" },
    { type: "entry", kind: "file", id: 0xffffffff, mode: 0, mtimeNs: -5n, size: 1n << 62n, path: "héllo wörld ☃/ü" },
    { type: "entry", kind: "dir", id: 1, mode: 0o755, mtimeNs: 0n, size: 0n, path: "a..b" },
    { type: "entry", kind: "symlink", id: 2, mode: 0o777, mtimeNs: 1n, size: 0n, path: "link", linkTarget: Uint8Array.of(0x2e, 0x2e, 0x2f, 0xff, 0xfe) },
    { type: "entry", kind: "hardlink", id: 3, mode: 0o600, mtimeNs: 1n, size: 0n, path: "hl", linkId: 7 },
    { type: "data", id: 7, offset: 4096n, bytes: Uint8Array.of(1, 2, 3) },
    { type: "data", id: 7, offset: 0n, bytes: new Uint8Array(0) },
    { type: "file-end", id: 7 },
    { type: "list-end" },
    { type: "want", id: 9, offset: 0n },
    { type: "want", id: 9, offset: 1234n, prefixHash: new Uint8Array(32).fill(0xab) },
    { type: "skip", id: 9 },
    { type: "checksum", id: 7, hash: new Uint8Array(32).fill(0x5a) },
    { type: "filter", rule: "exclude", pattern: "*.tmp" },
    { type: "filter", rule: "include", pattern: "keep/**/ü.tmp" },
    { type: "deleted", path: "old/dir" },
    { type: "deleted", path: "a\x1b[31m" },
    {
      type: "report",
      files: 1000,
      bytes: (1n << 40n) + 5n,
      failures: [
        { path: "x/y", code: "EACCES", message: "Permission denied" },
        { path: "", code: "checksum-mismatch", message: "" },
      ],
      omittedFailures: 17,
    },
    { type: "report", files: 0, bytes: 0n, failures: [], omittedFailures: 0 },
    { type: "keepalive" },
    { type: "error", message: "disk full on receiver ✗" },
    { type: "error", message: "" },
  ];
  for (const msg of cases) {
    test(`${msg.type}${"kind" in msg ? `/${msg.kind}` : ""}`, () => {
      expect(roundTrip(msg)).toEqual(msg);
    });
  }

  test("setuid/setgid/sticky are stripped on decode", () => {
    const got = roundTrip({ type: "entry", kind: "file", id: 1, mode: 0o7755, mtimeNs: 0n, size: 0n, path: "f" });
    expect(got.type === "entry" && got.mode).toBe(0o755);
  });

  test("encodeDataHeader + bytes equals encodeMessage(DATA)", () => {
    const bytes = Uint8Array.of(9, 8, 7, 6);
    const joined = new Uint8Array([...encodeDataHeader(5, 77n, 4), ...bytes]);
    expect(Buffer.from(joined).equals(Buffer.from(encodeMessage({ type: "data", id: 5, offset: 77n, bytes })))).toBe(true);
    expect(encodeDataHeader(5, 77n, 4).length).toBe(17);
  });

  test("direction-checked decoders", () => {
    const want = new FrameReader().push(encodeMessage({ type: "want", id: 1, offset: 0n }))[0];
    expect(decodeReceiverMessage(want).type).toBe("want");
    expect(kindOf(() => decodeSenderMessage(want))).toBe("frame");
    const err = new FrameReader().push(encodeMessage({ type: "error", message: "x" }))[0];
    expect(decodeSenderMessage(err).type).toBe("error");
    expect(decodeReceiverMessage(err).type).toBe("error");
    // KEEPALIVE: either direction, exactly the 5-byte header (type 0x7e, length 0).
    const ka = encodeMessage({ type: "keepalive" });
    expect([...ka]).toEqual([0x7e, 0, 0, 0, 0]);
    const kaFrame = new FrameReader().push(ka)[0];
    expect(decodeSenderMessage(kaFrame).type).toBe("keepalive");
    expect(decodeReceiverMessage(kaFrame).type).toBe("keepalive");
    expect(kindOf(() => decodeSenderMessage({ type: 0x7e, payload: Uint8Array.of(0) }))).toBe("frame");
  });
});

describe("checkRelativePath", () => {
  const good = [
    "a",
    "a..b",
    "..a",
    "a..",
    "...",
    ".hidden",
    "dir/sub/f",
    "with space/and\ttab",
    "new\nline",
    "back\\slash",
    "ünïcødé/日本語/😀",
    "\uFEFFbom-kept",
    "x".repeat(255),
    `${"d".repeat(255)}/`.repeat(15) + `${"y".repeat(254)}/z`,
  ];
  for (const p of good) {
    test(`accepts ${JSON.stringify(p.slice(0, 40))}`, () => {
      expect(checkRelativePath(p)).toBe(p);
      expect(checkRelativePathBytes(enc(p))).toBe(p);
    });
  }
  test("the 4096-byte case is exactly at the limit", () => {
    expect(enc(good[good.length - 1]).length).toBe(4096);
  });

  const bad: [string, string][] = [
    ["../x", "parent"],
    ["a/../b", "parent in the middle"],
    ["a/..", "trailing parent"],
    ["..", "bare parent"],
    ["/etc/passwd", "absolute"],
    ["", "empty"],
    ["a//b", "empty component"],
    ["a/", "trailing slash"],
    ["a/./b", "dot component"],
    [".", "bare dot"],
    ["./a", "leading dot"],
    ["a\0b", "NUL"],
    ["x".repeat(256), "component over 255 bytes"],
    ["é".repeat(128), "component over 255 bytes in UTF-8 (256 bytes)"],
    [`${"d".repeat(200)}/`.repeat(20) + "y".repeat(97), "over 4096 bytes"],
    ["lone\uD800surrogate", "not valid Unicode"],
  ];
  for (const [p, why] of bad) {
    test(`rejects ${why}`, () => {
      expect(kindOf(() => checkRelativePath(p))).toBe("path");
    });
  }
  test("rejects bytes that are not UTF-8, and overlong encodings", () => {
    expect(kindOf(() => checkRelativePathBytes(Uint8Array.of(0x61, 0xff, 0x62)))).toBe("path");
    expect(kindOf(() => checkRelativePathBytes(Uint8Array.of(0xc0, 0xaf)))).toBe("path"); // overlong "/"
    expect(kindOf(() => checkRelativePathBytes(Uint8Array.of(0xed, 0xa0, 0x80)))).toBe("path"); // encoded surrogate
  });
  test("a path longer than 4096 bytes is rejected before decoding", () => {
    expect(kindOf(() => checkRelativePathBytes(new Uint8Array(4097).fill(0x61)))).toBe("path");
  });
});

describe("strict decoding", () => {
  test("ENTRY paths go through the path gate on decode", () => {
    for (const p of ["../x", "/abs", "a//b", "a/./b"]) {
      expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ path: enc(p) }))))).toBe("path");
    }
    expect(kindOf(() => encodeMessage({ type: "entry", kind: "file", id: 1, mode: 0, mtimeNs: 0n, size: 0n, path: "../x" }))).toBe("path");
  });

  test("size 2^63 is rejected, 2^62 accepted", () => {
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ size: 1n << 63n }))))).toBe("limit");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ size: (1n << 62n) + 1n }))))).toBe("limit");
    expect(decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ size: 1n << 62n })))).toMatchObject({ size: 1n << 62n });
    expect(kindOf(() => encodeMessage({ type: "entry", kind: "file", id: 1, mode: 0, mtimeNs: 0n, size: 1n << 63n, path: "f" }))).toBe("limit");
  });

  test("DATA and WANT offsets past 2^62 are rejected", () => {
    const d = new Uint8Array(12);
    new DataView(d.buffer).setBigUint64(4, 1n << 63n);
    expect(kindOf(() => decodeMessage(rawFrame(MSG_DATA, d)))).toBe("limit");
    const w = new Uint8Array(13);
    new DataView(w.buffer).setBigUint64(4, (1n << 62n) + 1n);
    expect(kindOf(() => decodeMessage(rawFrame(MSG_WANT, w)))).toBe("limit");
    expect(kindOf(() => encodeDataHeader(1, 1n << 62n, 1))).toBe("limit");
  });

  test("mode outside permission bits, unknown kind, non-zero size for a directory", () => {
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ mode: 0o100644 }))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 5 }))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 2, size: 1n }))))).toBe("frame");
  });

  test("symlink targets: arbitrary bytes yes, NUL/empty/too long no", () => {
    const target = (t: Uint8Array): Uint8Array => {
      const b = new Uint8Array(2 + t.length);
      new DataView(b.buffer).setUint16(0, t.length);
      b.set(t, 2);
      return b;
    };
    const ok = decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 3, tail: target(Uint8Array.of(0x80, 0xff, 0x2f)) })));
    expect(ok.type === "entry" && ok.kind === "symlink" && Array.from(ok.linkTarget)).toEqual([0x80, 0xff, 0x2f]);
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 3, tail: target(Uint8Array.of(0x61, 0, 0x62)) }))))).toBe("path");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 3, tail: target(new Uint8Array(0)) }))))).toBe("path");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 3, tail: target(new Uint8Array(4096).fill(0x61)) }))))).toBe("path");
    expect(checkLinkTarget(new Uint8Array(4095).fill(0x61)).length).toBe(4095);
    expect(kindOf(() => checkLinkTarget(new Uint8Array(4096).fill(0x61)))).toBe("path");
  });

  test("hardlink to itself, trailing bytes, truncated fields", () => {
    const self = new Uint8Array(4);
    new DataView(self.buffer).setUint32(0, 1);
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ id: 1, kind: 4, tail: self }))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 1, tail: Uint8Array.of(0) }))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_ENTRY, entryPayload({ kind: 3 }))))).toBe("frame");
    const w = new Uint8Array(13);
    w[12] = 1; // says a hash follows, but none does
    expect(kindOf(() => decodeMessage(rawFrame(MSG_WANT, w)))).toBe("frame");
    w[12] = 2;
    expect(kindOf(() => decodeMessage(rawFrame(MSG_WANT, w)))).toBe("frame");
  });

  test("invalid UTF-8 in ERROR and REPORT is rejected", () => {
    expect(kindOf(() => decodeMessage(rawFrame(0x7f, Uint8Array.of(0xff))))).toBe("frame");
    const r = encodeMessage({ type: "report", files: 1, bytes: 1n, failures: [{ path: "ab", code: "E", message: "m" }], omittedFailures: 0 });
    const payload = r.slice(FRAME_HEADER_LENGTH);
    payload[22 + 2] = 0xff; // first byte of the failure path
    expect(kindOf(() => decodeMessage(rawFrame(0x13, payload)))).toBe("frame");
  });

  test("REPORT is capped: encode refuses more than the cap, capFailures splits", () => {
    const many = Array.from({ length: MAX_REPORT_FAILURES + 5 }, (_, i) => ({ path: `f${i}`, code: "EIO", message: "x" }));
    expect(kindOf(() => encodeMessage({ type: "report", files: 0, bytes: 0n, failures: many, omittedFailures: 0 }))).toBe("limit");
    const capped = capFailures(many);
    expect(capped.failures.length).toBe(MAX_REPORT_FAILURES);
    expect(capped.omittedFailures).toBe(5);
    expect(roundTrip({ type: "report", files: 0, bytes: 0n, ...capped })).toMatchObject({ omittedFailures: 5 });
    expect(kindOf(() => encodeMessage({ type: "report", files: 0, bytes: 0n, failures: [{ path: "", code: "bad code!", message: "" }], omittedFailures: 0 }))).toBe("frame");
  });

  test("oversized DATA chunk refused by the encoder", () => {
    expect(kindOf(() => encodeMessage({ type: "data", id: 1, offset: 0n, bytes: new Uint8Array(MAX_DATA_CHUNK + 1) }))).toBe("limit");
  });
});

describe("FrameReader", () => {
  const header = (type: number, len: number): Uint8Array => {
    const h = new Uint8Array(5);
    h[0] = type;
    new DataView(h.buffer).setUint32(1, len);
    return h;
  };

  test("a length over the maximum is rejected on the header, before buffering", () => {
    const r = new FrameReader();
    expect(kindOf(() => r.push(header(MSG_DATA, MAX_FRAME_PAYLOAD + 1)))).toBe("limit");
    expect(r.bufferedBytes).toBe(0);
    const r2 = new FrameReader();
    expect(kindOf(() => r2.push(header(MSG_DATA, 0xffffffff)))).toBe("limit");
    // the same header split over two pushes is caught as soon as it is complete
    const r3 = new FrameReader();
    r3.push(header(MSG_DATA, 0xffffffff).subarray(0, 2));
    expect(kindOf(() => r3.push(header(MSG_DATA, 0xffffffff).subarray(2)))).toBe("limit");
  });

  test("per-type lengths, unknown types and direction are checked on the header", () => {
    expect(kindOf(() => new FrameReader().push(header(0x03, 5)))).toBe("frame"); // FILE_END is 4 bytes
    expect(kindOf(() => new FrameReader().push(header(0x55, 1)))).toBe("frame");
    expect(kindOf(() => new FrameReader({ direction: "to-receiver" }).push(header(MSG_WANT, 13)))).toBe("frame");
    expect(kindOf(() => new FrameReader({ direction: "to-sender" }).push(header(MSG_ENTRY, 30)))).toBe("frame");
    expect(new FrameReader({ direction: "to-sender" }).push(header(MSG_WANT, 13)).length).toBe(0);
  });

  test("the maximum DATA frame passes, split in many pieces", () => {
    const bytes = new Uint8Array(MAX_DATA_CHUNK).fill(7);
    const frame = encodeMessage({ type: "data", id: 1, offset: 0n, bytes });
    const r = new FrameReader();
    const got: RawFrame[] = [];
    for (let p = 0; p < frame.length; p += 16384) got.push(...r.push(frame.subarray(p, p + 16384)));
    expect(got.length).toBe(1);
    expect(decodeMessage(got[0])).toMatchObject({ type: "data", id: 1 });
    expect(r.bufferedBytes).toBe(0);
  });

  test("byte-by-byte and many-per-chunk give the same messages", () => {
    const msgs: WireMessage[] = [
      { type: "entry", kind: "file", id: 1, mode: 0o644, mtimeNs: 5n, size: 3n, path: "a/b" },
      { type: "data", id: 1, offset: 0n, bytes: Uint8Array.of(1, 2, 3) },
      { type: "file-end", id: 1 },
      { type: "list-end" },
    ];
    const stream = Buffer.concat(msgs.map(encodeMessage));
    const r1 = new FrameReader({ direction: "to-receiver", copyPayloads: true });
    const one: WireMessage[] = [];
    for (const b of stream) one.push(...r1.pushMessages(Uint8Array.of(b)));
    expect(one).toEqual(msgs);
    expect(new FrameReader().pushMessages(stream)).toEqual(msgs);
  });

  test("payloads alias the chunk by default and are copies with copyPayloads", () => {
    const chunk = encodeMessage({ type: "data", id: 1, offset: 0n, bytes: Uint8Array.of(1, 2, 3) });
    const aliased = new FrameReader().push(chunk)[0];
    const copied = new FrameReader({ copyPayloads: true }).push(chunk)[0];
    chunk[chunk.length - 1] = 99;
    expect(aliased.payload[aliased.payload.length - 1]).toBe(99);
    expect(copied.payload[copied.payload.length - 1]).toBe(3);
  });

  test("a reader that failed stays failed", () => {
    const r = new FrameReader();
    const e = (() => {
      try {
        r.push(header(0x55, 0));
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(ProtocolError);
    expect(() => r.push(encodeMessage({ type: "list-end" }))).toThrow(e as Error);
  });
});

describe("display helpers", () => {
  test("displaySafe escapes control and bidi characters only", () => {
    expect(displaySafe("a\x1b[31mb\nc")).toBe("a\\x1b[31mb\\x0ac");
    expect(displaySafe("evil\u202Etxt.exe")).toBe("evil\\u{202e}txt.exe");
    expect(displaySafe("plain ünïcødé ☃")).toBe("plain ünïcødé ☃");
  });
  test("truncateUtf8 never splits a character", () => {
    expect(truncateUtf8("aé☃", 3)).toBe("aé");
    expect(truncateUtf8("aé☃", 6)).toBe("aé☃");
    expect(new TextEncoder().encode(truncateUtf8("☃".repeat(500), 1024)).length).toBe(1023);
  });
});

describe("incremental sync frames (docs/PROTOCOL.md 8.3e, 8.3f, 8.4, 8.5a)", () => {
  const u32 = (v: number): Uint8Array => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v);
    return b;
  };
  test("worked examples: exact bytes", () => {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
    expect(hex(encodeMessage({ type: "want", id: 5, offset: 0n }))).toBe("110000000d000000050000000000000000" + "00");
    expect(hex(encodeMessage({ type: "want", id: 5, offset: 1048576n, prefixHash: new Uint8Array(32).fill(0xab) }))).toBe(`110000002d000000050000000000100000` + "01" + "ab".repeat(32));
    expect(hex(encodeMessage({ type: "checksum", id: 5, hash: new Uint8Array(32).fill(0xcd) }))).toBe(`0a0000002400000005${"cd".repeat(32)}`);
    expect(hex(encodeMessage({ type: "filter", rule: "exclude", pattern: "*.tmp" }))).toBe("0b00000006012a2e746d70");
    expect(hex(encodeMessage({ type: "filter", rule: "include", pattern: "a" }))).toBe("0b000000020261");
    expect(hex(encodeMessage({ type: "deleted", path: "old/x" }))).toBe("1400000005" + "6f6c642f78");
    expect(hex(encodeMessage({ type: "list-end", incomplete: true }))).toBe("040000000101");
    expect(hex(encodeMessage({ type: "list-end" }))).toBe("0400000000");
  });

  test("LISTED (0x0d): files u64 | bytes u64, each at most 2^53 - 1, sender to receiver only (8.3g)", () => {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
    // The example of docs/PROTOCOL.md 8.3g: 23 files of 150 MiB.
    const frame = encodeMessage({ type: "listed", files: 23, bytes: 157_286_400 });
    expect(hex(frame)).toBe("0d00000010" + "0000000000000017" + "0000000009600000");
    expect(roundTrip({ type: "listed", files: 0, bytes: 0 })).toEqual({ type: "listed", files: 0, bytes: 0 });
    const max = Number.MAX_SAFE_INTEGER;
    expect(roundTrip({ type: "listed", files: max, bytes: max })).toEqual({ type: "listed", files: max, bytes: max });
    expect(decodeSenderMessage(rawFrame(MSG_LISTED, frame.subarray(FRAME_HEADER_LENGTH)))).toEqual({ type: "listed", files: 23, bytes: 157_286_400 });
    // Beyond what a receiver adds up exactly: refused both ways.
    for (const [files, bytes] of [[max + 1, 0], [0, max + 1], [-1, 0], [0, 1.5]]) {
      expect(kindOf(() => encodeMessage({ type: "listed", files, bytes }))).toBe("limit");
    }
    for (const at of [0, 8]) {
      const big = new Uint8Array(16);
      new DataView(big.buffer).setBigUint64(at, 1n << 53n);
      expect(kindOf(() => decodeMessage(rawFrame(MSG_LISTED, big)))).toBe("limit");
      new DataView(big.buffer).setBigUint64(at, 0xffff_ffff_ffff_ffffn);
      expect(kindOf(() => decodeMessage(rawFrame(MSG_LISTED, big)))).toBe("limit");
    }
    // Exactly 16 bytes, checked on the header; never from the receiver.
    expect(checkFrameHeader(MSG_LISTED, 16, "to-receiver")).toBe("LISTED");
    for (const len of [0, 8, 15, 17]) expect(kindOf(() => checkFrameHeader(MSG_LISTED, len, "to-receiver"))).toBe("frame");
    for (const len of [15, 17]) expect(kindOf(() => decodeMessage(rawFrame(MSG_LISTED, new Uint8Array(len))))).toBe("frame");
    expect(kindOf(() => checkFrameHeader(MSG_LISTED, 16, "to-sender"))).toBe("frame");
    expect(kindOf(() => decodeReceiverMessage(rawFrame(MSG_LISTED, new Uint8Array(16))))).toBe("frame");
  });

  test("LIST_END: empty, or the flags byte 0x01", () => {
    expect(decodeMessage(rawFrame(0x04, Uint8Array.of(1)))).toEqual({ type: "list-end", incomplete: true });
    expect(decodeMessage(rawFrame(0x04, new Uint8Array(0)))).toEqual({ type: "list-end" });
    for (const bad of [0, 2, 0x81]) expect(kindOf(() => decodeMessage(rawFrame(0x04, Uint8Array.of(bad))))).toBe("frame");
    expect(kindOf(() => new FrameReader().push(frameHeader(0x04, 2)))).toBe("frame");
  });

  test("WANT: a prefix hash exactly when the offset is above 0", () => {
    expect(kindOf(() => encodeMessage({ type: "want", id: 1, offset: 5n }))).toBe("frame");
    expect(kindOf(() => encodeMessage({ type: "want", id: 1, offset: 0n, prefixHash: new Uint8Array(32) }))).toBe("frame");
    expect(kindOf(() => encodeMessage({ type: "want", id: 1, offset: 5n, prefixHash: new Uint8Array(31) }))).toBe("frame");
    const noHash = new Uint8Array(13);
    new DataView(noHash.buffer).setBigUint64(4, 5n);
    expect(kindOf(() => decodeMessage(rawFrame(MSG_WANT, noHash)))).toBe("frame");
    const zeroWithHash = new Uint8Array(45);
    zeroWithHash[12] = 1;
    expect(kindOf(() => decodeMessage(rawFrame(MSG_WANT, zeroWithHash)))).toBe("frame");
    const atLimit = new Uint8Array(45);
    new DataView(atLimit.buffer).setBigUint64(4, 1n << 62n);
    atLimit[12] = 1;
    expect(decodeMessage(rawFrame(MSG_WANT, atLimit))).toMatchObject({ type: "want", offset: 1n << 62n });
  });

  test("CHECKSUM: exactly id + 32 bytes, sender to receiver only", () => {
    expect(kindOf(() => encodeMessage({ type: "checksum", id: 1, hash: new Uint8Array(31) }))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_CHECKSUM, new Uint8Array(35))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_CHECKSUM, new Uint8Array(37))))).toBe("frame");
    const ok = rawFrame(MSG_CHECKSUM, new Uint8Array([...u32(3), ...new Uint8Array(32).fill(1)]));
    expect(decodeSenderMessage(ok)).toMatchObject({ type: "checksum", id: 3 });
    expect(kindOf(() => decodeReceiverMessage(ok))).toBe("frame");
    expect(kindOf(() => new FrameReader({ direction: "to-sender" }).push(frameHeader(MSG_CHECKSUM, 36)))).toBe("frame");
  });

  test("FILTER: rule 1 or 2, a non-empty UTF-8 pattern of at most 4096 bytes, no NUL", () => {
    expect(decodeMessage(rawFrame(MSG_FILTER, Uint8Array.of(1, 0x61)))).toEqual({ type: "filter", rule: "exclude", pattern: "a" });
    expect(kindOf(() => decodeMessage(rawFrame(MSG_FILTER, Uint8Array.of(3, 0x61))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_FILTER, Uint8Array.of(1))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_FILTER, Uint8Array.of(1, 0xff))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_FILTER, Uint8Array.of(1, 0x61, 0, 0x62))))).toBe("frame");
    const max = new Uint8Array(1 + MAX_PATTERN_BYTES).fill(0x61);
    max[0] = 2;
    expect(decodeMessage(rawFrame(MSG_FILTER, max))).toMatchObject({ rule: "include" });
    expect(kindOf(() => new FrameReader().push(frameHeader(MSG_FILTER, 2 + MAX_PATTERN_BYTES)))).toBe("frame");
    expect(kindOf(() => encodeMessage({ type: "filter", rule: "exclude", pattern: "x".repeat(MAX_PATTERN_BYTES + 1) }))).toBe("limit");
    expect(kindOf(() => encodeMessage({ type: "filter", rule: "exclude", pattern: "" }))).toBe("frame");
    expect(kindOf(() => decodeReceiverMessage(rawFrame(MSG_FILTER, Uint8Array.of(1, 0x61))))).toBe("frame");
  });

  test("DELETED: 1..4096 bytes of UTF-8, receiver to sender only", () => {
    expect(decodeReceiverMessage(rawFrame(MSG_DELETED, enc("a/b")))).toEqual({ type: "deleted", path: "a/b" });
    expect(kindOf(() => decodeMessage(rawFrame(MSG_DELETED, new Uint8Array(0))))).toBe("frame");
    expect(kindOf(() => decodeMessage(rawFrame(MSG_DELETED, Uint8Array.of(0xc0, 0x80))))).toBe("frame");
    expect(kindOf(() => new FrameReader().push(frameHeader(MSG_DELETED, 4097)))).toBe("frame");
    expect(decodeMessage(rawFrame(MSG_DELETED, new Uint8Array(4096).fill(0x61)))).toMatchObject({ type: "deleted" });
    expect(kindOf(() => decodeSenderMessage(rawFrame(MSG_DELETED, enc("x"))))).toBe("frame");
    expect(kindOf(() => encodeMessage({ type: "deleted", path: "" }))).toBe("frame");
  });

  test("data streams: JOIN (0x0c) is 32 bytes, sender to receiver; STREAMS and JOIN flags", () => {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
    const token = Uint8Array.from({ length: 32 }, (_, i) => i);
    const frame = encodeMessage({ type: "join", token });
    expect(hex(frame)).toBe("0c00000020" + hex(token));
    const m = decodeSenderMessage({ type: MSG_JOIN, payload: frame.subarray(FRAME_HEADER_LENGTH) });
    expect(m).toEqual({ type: "join", token });
    expect(kindOf(() => encodeMessage({ type: "join", token: new Uint8Array(31) }))).toBe("frame");
    expect(checkFrameHeader(MSG_JOIN, 32, "to-receiver")).toBe("JOIN");
    for (const len of [0, 31, 33]) expect(kindOf(() => checkFrameHeader(MSG_JOIN, len, "to-receiver"))).toBe("frame");
    expect(kindOf(() => checkFrameHeader(MSG_JOIN, 32, "to-sender"))).toBe("frame");
    expect(FLAG_STREAMS).toBe(0x40);
    expect(FLAG_JOIN).toBe(0x80);
    expect(syncOptionsOf(FLAG_STREAMS | FLAG_DELETE).streams).toBe(true);
    expect(syncOptionsOf(FLAG_JOIN).streams).toBe(false);
    // Data streams carry file data of want mode: not with PUSH, not in a dry run.
    expect(kindOf(() => syncOptionsOf(FLAG_STREAMS | FLAG_PUSH))).toBe("options");
    expect(kindOf(() => syncOptionsOf(FLAG_STREAMS | FLAG_DRY_RUN))).toBe("options");
  });

  test("HELLO sync flags: combinations that mean nothing are option errors", () => {
    expect(syncOptionsOf(FLAG_CHECKSUM | FLAG_DELETE | FLAG_DRY_RUN)).toEqual({ push: false, checksum: true, ignoreTimes: false, delete: true, dryRun: true, streams: false });
    expect(syncOptionsOf(FLAG_PUSH).push).toBe(true);
    for (const bad of [FLAG_PUSH | FLAG_DELETE, FLAG_PUSH | FLAG_CHECKSUM, FLAG_PUSH | FLAG_DRY_RUN, FLAG_PUSH | FLAG_IGNORE_TIMES, FLAG_CHECKSUM | FLAG_IGNORE_TIMES, 0x100, 0x80000000]) {
      expect(kindOf(() => syncOptionsOf(bad))).toBe("options");
    }
    const all = { checksum: true, ignoreTimes: true, delete: true, dryRun: true };
    expect(syncFlagBits(all)).toBe(0x3c);
    expect(syncFlagBits({ checksum: false, ignoreTimes: false, delete: false, dryRun: false })).toBe(0);
  });
});
