// The TLS 1.3 record layer, checked byte for byte against an independent implementation
// (python `cryptography`) using the key/IV/sequence of the ktls-vm README's kTLS tests.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { pattern } from "../helpers/fuzz.ts";
import { catchErr } from "../helpers/throws.ts";
import {
  CIPHERS,
  CIPHER_KEY_LENGTH,
  KeyUsageLimitError,
  MAX_RECORD_CIPHERTEXT,
  RecordOpener,
  RecordSealer,
  RECORD_OVERHEAD,
  ktlsIvParts,
  nativeChaChaAvailable,
  opensslAvailable,
  sealedSize,
  type AeadBackend,
  type CipherName,
  type OpenedRecord,
} from "../../src/net/record.ts";

const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const fromHex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));

/** Reference sealer: builds TLS 1.3 records from an explicit list, padding allowed. */
const PYTHON_SEALER = String.raw`
import json, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
req = json.load(sys.stdin)
key, iv, seq = bytes.fromhex(req["key"]), bytes.fromhex(req["iv"]), int(req["seq"])
aead = ChaCha20Poly1305(key) if req["cipher"] == "chacha20-poly1305" else AESGCM(key)
wire = bytearray()
for r in req["records"]:
    inner = bytes.fromhex(r["data"]) + bytes([r["type"]]) + b"\0" * r.get("pad", 0)
    if r.get("raw_inner") is not None:
        inner = bytes.fromhex(r["raw_inner"])
    hdr = struct.pack(">BHH", 23, 0x0303, len(inner) + 16)
    nonce = bytes(a ^ b for a, b in zip(iv, b"\0\0\0\0" + struct.pack(">Q", seq)))
    wire += hdr + aead.encrypt(nonce, inner, hdr)
    seq = (seq + 1) % (1 << 64)
print(wire.hex())
`;

interface PyRecord {
  type: number;
  data: Uint8Array;
  pad?: number;
  /** Replace the whole inner plaintext (for malformed-content tests). */
  rawInner?: Uint8Array;
}

function pythonSeal(cipher: CipherName, key: Uint8Array, iv: Uint8Array, seq: bigint, records: PyRecord[]): Uint8Array {
  const req = JSON.stringify({
    cipher,
    key: toHex(key),
    iv: toHex(iv),
    seq: seq.toString(),
    records: records.map((r) => ({ type: r.type, data: toHex(r.data), pad: r.pad ?? 0, raw_inner: r.rawInner ? toHex(r.rawInner) : null })),
  });
  const p = Bun.spawnSync({ cmd: ["python3", "-c", PYTHON_SEALER], stdin: Buffer.from(req), stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) {
    throw new Error(`python3 reference sealer failed (needs python3 + cryptography): ${p.stderr.toString()}`);
  }
  return fromHex(p.stdout.toString().trim());
}

// ktls-vm README / ktls_test.c: key 00 01 02 ..., iv a0 a1 ..., salt 51 52 53 54, rec_seq ...fe.
function vectors(cipher: CipherName): { key: Uint8Array; iv: Uint8Array } {
  const key = Uint8Array.from({ length: CIPHER_KEY_LENGTH[cipher] }, (_, i) => i);
  const iv =
    cipher === "chacha20-poly1305"
      ? Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i)
      : Uint8Array.from([0x51, 0x52, 0x53, 0x54, ...Array.from({ length: 8 }, (_, i) => 0xa0 + i)]);
  return { key, iv };
}

/** ktls_test's send script: 100, 20000, 1 byte, one 2-byte alert, 70000. */
const SENDS: [number, Uint8Array][] = [
  [23, pattern(100, 1)],
  [23, pattern(20000, 2)],
  [23, pattern(1, 3)],
  [21, Uint8Array.of(1, 0)],
  [23, pattern(70000, 4)],
];

function splitLikeKernel(sends: [number, Uint8Array][]): PyRecord[] {
  const out: PyRecord[] = [];
  for (const [type, data] of sends) {
    for (let p = 0; p < data.length; p += 16384) out.push({ type, data: data.subarray(p, Math.min(data.length, p + 16384)) });
  }
  return out;
}

/**
 * Every back end that exists here, for every cipher it serves: libcrypto (the default where
 * it loads), node:crypto (the fallback; ChaCha only where Bun has it) and the portable ChaCha.
 */
const VARIANTS: [CipherName, AeadBackend][] = [
  ...(opensslAvailable() ? CIPHERS.map((c): [CipherName, AeadBackend] => [c, "openssl"]) : []),
  ...CIPHERS.filter((c) => c !== "chacha20-poly1305" || nativeChaChaAvailable()).map((c): [CipherName, AeadBackend] => [c, "node"]),
  ["chacha20-poly1305", "portable"],
];

/** The back ends AES-GCM can run on here. */
const GCM_BACKENDS: AeadBackend[] = [...(opensslAvailable() ? ["openssl" as const] : []), "node"];

function label(cipher: CipherName, backend: AeadBackend): string {
  return `${cipher} (${backend})`;
}

test("libcrypto is there on this machine (so the openssl back end is really tested)", () => {
  // The CI machines have OpenSSL 3; without it every openssl variant above silently vanishes.
  expect(opensslAvailable()).toBe(true);
});

describe("byte-identical to an independent TLS 1.3 implementation", () => {
  for (const [cipher, portable] of VARIANTS) {
    test(`${label(cipher, portable)}: the requested back end is the one used`, () => {
      const { key, iv } = vectors(cipher);
      expect(new RecordSealer(cipher, key, iv, {}, portable).backend).toBe(portable as "openssl" | "node" | "portable");
      expect(new RecordOpener(cipher, key, iv, {}, portable).opensInPlace).toBe(portable === "openssl");
    });

    test(`${label(cipher, portable)}: ktls_test send script from seq 0xfe`, () => {
      const { key, iv } = vectors(cipher);
      const sealer = new RecordSealer(cipher, key, iv, { seq: 0xfen }, portable);
      const ours = Buffer.concat(SENDS.map(([type, data]) => sealer.sealAll(data, type)));
      const records = splitLikeKernel(SENDS);
      expect(records.map((r) => r.data.length)).toEqual([100, 16384, 3616, 1, 2, 16384, 16384, 16384, 16384, 4464]);
      const ref = pythonSeal(cipher, key, iv, 0xfen, records);
      expect(ours.length).toBe(ref.length);
      expect(toHex(ours)).toBe(toHex(ref));
      expect(sealer.seq).toBe(0xfen + 10n); // carried from ...00fe to ...0108
    });

    test(`${label(cipher, portable)}: several records from seq 0, and from near 2^32`, () => {
      const { key, iv } = vectors(cipher);
      for (const seq of [0n, 0xfffffffen]) {
        const sealer = new RecordSealer(cipher, key, iv, { seq }, portable);
        const recs: PyRecord[] = [0, 5, 16, 17, 4096, 16384].map((n, i) => ({ type: 23, data: pattern(n, 10 + i) }));
        const ours = Buffer.concat(recs.map((r) => sealer.seal(r.data, r.type)));
        expect(toHex(ours)).toBe(toHex(pythonSeal(cipher, key, iv, seq, recs)));
      }
    });

    test(`${label(cipher, portable)}: opens reference records, padding included, from a split stream`, () => {
      const { key, iv } = vectors(cipher);
      // ktls-vm's RX script: padded records (40 and 3 zero bytes) and an alert.
      const recs: PyRecord[] = [
        { type: 23, data: pattern(100, 20) },
        { type: 23, data: pattern(16384, 21) },
        { type: 23, data: pattern(7, 22) },
        { type: 21, data: Uint8Array.of(1, 0) },
        { type: 23, data: pattern(1000, 23), pad: 40 },
        { type: 23, data: pattern(16384, 24) },
        { type: 23, data: pattern(1, 25), pad: 3 },
        { type: 23, data: pattern(0, 26), pad: 200 },
      ];
      const wire = pythonSeal(cipher, key, iv, 0xfen, recs);
      const check = (got: OpenedRecord[]): void => {
        expect(got.map((r) => r.type)).toEqual(recs.map((r) => r.type));
        for (let i = 0; i < recs.length; i++) expect(toHex(got[i].data)).toBe(toHex(recs[i].data));
      };
      // all at once
      check(new RecordOpener(cipher, key, iv, { seq: 0xfen }, portable).push(wire));
      check(new RecordOpener(cipher, key, iv, { seq: 0xfen }, portable).pushInPlace(wire.slice()));
      // awkward splits: 1 byte, across headers, several records per chunk
      for (const sizes of [[1], [3, 7], [5], [16389], [4096, 1, 20000], [16500, 16500]]) {
        for (const inPlace of [false, true]) {
          const o = new RecordOpener(cipher, key, iv, { seq: 0xfen }, portable);
          const got: OpenedRecord[] = [];
          let p = 0;
          for (let i = 0; p < wire.length; i++) {
            const n = sizes[i % sizes.length];
            if (inPlace) {
              // Views are valid until the next push: copy them out before it, and reuse
              // one receive buffer the way the channel does.
              const rbuf = new Uint8Array(n);
              const piece = wire.subarray(p, p + n);
              rbuf.set(piece);
              for (const r of o.pushInPlace(rbuf.subarray(0, piece.length))) got.push({ type: r.type, data: r.data.slice() });
            } else {
              got.push(...o.push(wire.subarray(p, p + n)));
            }
            p += n;
          }
          check(got);
          expect(o.bufferedBytes).toBe(0);
        }
      }
    });
  }

  test("known answer without python: aes-128-gcm and chacha20-poly1305, seq 0xfe", () => {
    const text = new TextEncoder().encode("uring-sync");
    const gcm = vectors("aes-128-gcm");
    expect(toHex(new RecordSealer("aes-128-gcm", gcm.key, gcm.iv, { seq: 0xfen }).seal(text))).toBe(
      "170303001ba08247f04a534a93b73baa76fa08481383f3db3c58d918910c37df",
    );
    const cc = vectors("chacha20-poly1305");
    expect(toHex(new RecordSealer("chacha20-poly1305", cc.key, cc.iv, { seq: 0xfen }).seal(text))).toBe(
      "170303001b068f1f041da94e60d15051fa4babfd5a7e1fdeb3bdfe52a1f311af",
    );
  });
});

describe("pushInPlace", () => {
  test("a record completed from the carry stays intact while the same chunk leaves a new partial record", () => {
    const cipher: CipherName = "aes-128-gcm";
    const { key, iv } = vectors(cipher);
    const s = new RecordSealer(cipher, key, iv);
    const a = pattern(3000, 1);
    const b = pattern(3000, 2);
    const c = pattern(3000, 3);
    const wire = Buffer.concat([s.seal(a), s.seal(b), s.seal(c)]);
    const o = new RecordOpener(cipher, key, iv);
    // chunk 1: most of record a; chunk 2: rest of a, all of b, the start of c.
    expect(o.pushInPlace(wire.slice(0, 2000))).toEqual([]);
    const got = o.pushInPlace(wire.slice(2000, 3022 + 3022 + 100));
    expect(got.map((r) => toHex(r.data))).toEqual([toHex(a), toHex(b)]);
    const last = o.pushInPlace(wire.slice(3022 + 3022 + 100));
    expect(last.map((r) => toHex(r.data))).toEqual([toHex(c)]);
  });

  test("decrypts inside the chunk (openssl) and refuses a tampered record", () => {
    const cipher: CipherName = "aes-128-gcm";
    const { key, iv } = vectors(cipher);
    const data = pattern(500, 4);
    const rec = new RecordSealer(cipher, key, iv).seal(data);
    const chunk = rec.slice();
    const [r] = new RecordOpener(cipher, key, iv, {}, "openssl").pushInPlace(chunk);
    expect(r.data.buffer).toBe(chunk.buffer);
    expect(r.data.byteOffset).toBe(5);
    expect(toHex(chunk.subarray(5, 505))).toBe(toHex(data));
    const bad = rec.slice();
    bad[100] ^= 4;
    expect(() => new RecordOpener(cipher, key, iv, {}, "openssl").pushInPlace(bad)).toThrow(/authentication/);
  });
});

for (const backend of GCM_BACKENDS) describe(`record layer behaviour (${backend})`, () => {
  const cipher: CipherName = "aes-128-gcm";
  const { key, iv } = vectors(cipher);

  test("round trip of every cipher, zero-length and maximum records, alerts", () => {
    for (const c of CIPHERS) {
      const v = vectors(c);
      const s = new RecordSealer(c, v.key, v.iv, {}, backend);
      const o = new RecordOpener(c, v.key, v.iv, {}, backend);
      for (const [type, data] of [
        [23, new Uint8Array(0)],
        [23, pattern(16384, 7)],
        [21, Uint8Array.of(2, 40)],
      ] as const) {
        const rec = s.seal(data, type);
        expect(rec.length).toBe(data.length + RECORD_OVERHEAD);
        expect(Array.from(rec.subarray(0, 3))).toEqual([0x17, 0x03, 0x03]); // outer type always 23
        const got = o.open(rec);
        expect(got.type).toBe(type);
        expect(toHex(got.data)).toBe(toHex(data));
      }
    }
  });

  test("sealInto writes the same bytes at an offset and reports the length", () => {
    const data = pattern(300, 9);
    const a = new RecordSealer(cipher, key, iv, {}, backend).seal(data);
    const out = new Uint8Array(1000).fill(0xee);
    expect(new RecordSealer(cipher, key, iv, {}, backend).sealInto(out, 123, data)).toBe(322);
    expect(toHex(out.subarray(123, 445))).toBe(toHex(a));
    expect(out[122]).toBe(0xee);
    expect(out[445]).toBe(0xee);
    expect(() => new RecordSealer(cipher, key, iv, {}, backend).sealInto(out, 700, data)).toThrow(RangeError);
  });

  test("in-place sealing (plaintext already at offset + 5) gives the same record, for every cipher", () => {
    for (const c of CIPHERS) {
      const v = vectors(c);
      const data = pattern(5000, 11);
      const expected = new RecordSealer(c, v.key, v.iv, {}, backend).seal(data);
      const buf = new Uint8Array(100 + data.length + RECORD_OVERHEAD);
      buf.set(data, 100 + 5);
      new RecordSealer(c, v.key, v.iv, {}, backend).sealInto(buf, 100, buf.subarray(105, 105 + data.length));
      expect(toHex(buf.subarray(100))).toBe(toHex(expected));
      // overlapping the header would corrupt the plaintext: refused
      expect(() => new RecordSealer(c, v.key, v.iv, {}, backend).sealInto(buf, 100, buf.subarray(102, 110))).toThrow(RangeError);
    }
  });

  test("sealAll splits at 16384 like kTLS send() and sealedSize predicts the size", () => {
    const s = new RecordSealer(cipher, key, iv, {}, backend);
    expect(s.sealAll(new Uint8Array(0)).length).toBe(0);
    const wire = s.sealAll(pattern(40000, 3));
    expect(wire.length).toBe(sealedSize(40000));
    expect(sealedSize(40000)).toBe(40000 + 3 * 22);
    expect(new RecordOpener(cipher, key, iv, {}, backend).push(wire).map((r) => r.data.length)).toEqual([16384, 16384, 7232]);
  });

  test("a tampered byte anywhere makes open fail with a record error", () => {
    const rec = new RecordSealer(cipher, key, iv, {}, backend).seal(pattern(100, 5));
    for (const at of [0, 1, 2, 3, 4, 5, 50, rec.length - 17, rec.length - 1]) {
      const bad = rec.slice();
      bad[at] ^= 0x01;
      for (const e of [
        catchErr(() => new RecordOpener(cipher, key, iv, {}, backend).open(bad)),
        // As a stream (a changed length byte would just wait for more bytes: the stream cases).
        catchErr(() => new RecordOpener(cipher, key, iv, {}, backend).pushInPlace(Buffer.concat([bad, new Uint8Array(1000)]))),
      ]) {
        expect(e).toBeInstanceOf(ProtocolError);
        expect((e as ProtocolError).kind).toBe("record");
      }
    }
  });

  test("wrong key or wrong sequence number fails authentication", () => {
    const rec = new RecordSealer(cipher, key, iv, {}, backend).seal(pattern(10, 5));
    const otherKey = key.slice();
    otherKey[0] ^= 1;
    expect(() => new RecordOpener(cipher, otherKey, iv, {}, backend).open(rec)).toThrow(/authentication/);
    expect(() => new RecordOpener(cipher, key, iv, { seq: 1n }, backend).open(rec)).toThrow(/authentication/);
  });

  test("replayed or reordered records fail (sequence numbers are implicit)", () => {
    const s = new RecordSealer(cipher, key, iv, {}, backend);
    const r0 = s.seal(pattern(10, 1));
    const r1 = s.seal(pattern(10, 2));
    const o = new RecordOpener(cipher, key, iv, {}, backend);
    o.open(r0);
    expect(() => o.open(r0)).toThrow(ProtocolError);
    const o2 = new RecordOpener(cipher, key, iv, {}, backend);
    expect(() => o2.open(r1)).toThrow(ProtocolError);
  });

  test("header checks: wrong type/version, too long, too short; oversized rejected from the header alone", () => {
    const o = () => new RecordOpener(cipher, key, iv, {}, backend);
    expect(() => o().push(Uint8Array.of(0x16, 3, 3, 0, 20))).toThrow(/header/);
    expect(() => o().push(Uint8Array.of(0x17, 3, 1, 0, 20))).toThrow(/header/);
    const len = MAX_RECORD_CIPHERTEXT + 1;
    const opener = o();
    expect(() => opener.push(Uint8Array.of(0x17, 3, 3, len >> 8, len & 0xff))).toThrow(/length/);
    expect(opener.bufferedBytes).toBe(0);
    expect(() => o().push(Uint8Array.of(0x17, 3, 3, 0, 16))).toThrow(/length/);
    // the largest legal length is accepted as a header and waits for its body
    const ok = o();
    expect(ok.push(Uint8Array.of(0x17, 3, 3, MAX_RECORD_CIPHERTEXT >> 8, MAX_RECORD_CIPHERTEXT & 0xff))).toEqual([]);
    expect(ok.bufferedBytes).toBe(5);
  });

  test("malformed inner plaintext: all padding, unknown content type, too much plaintext", () => {
    const cases: [PyRecord, RegExp][] = [
      [{ type: 23, data: new Uint8Array(0), rawInner: new Uint8Array(5) }, /no content type/],
      [{ type: 99, data: Uint8Array.of(1, 2) }, /content type 99/],
      [{ type: 23, data: pattern(16385, 1) }, /exceeds 16384/],
    ];
    for (const [rec, re] of cases) {
      const wire = pythonSeal(cipher, key, iv, 0n, [rec]);
      expect(() => new RecordOpener(cipher, key, iv, {}, backend).push(wire)).toThrow(re);
    }
    // padding that pushes the ciphertext past 2^14 + 256 is refused on the header
    const wire = pythonSeal(cipher, key, iv, 0n, [{ type: 23, data: pattern(16384, 1), pad: 240 }]);
    expect(() => new RecordOpener(cipher, key, iv, {}, backend).push(wire)).toThrow(/length/);
  });

  test("an opener that failed stays failed", () => {
    const o = new RecordOpener(cipher, key, iv, {}, backend);
    const e = catchErr(() => o.push(Uint8Array.of(1, 2, 3, 4, 5)));
    expect(catchErr(() => o.push(new RecordSealer(cipher, key, iv, {}, backend).seal(Uint8Array.of(1))))).toBe(e);
  });

  test("key-use limit: the sealer refuses record number maxRecords", () => {
    const s = new RecordSealer(cipher, key, iv, { maxRecords: 3 }, backend);
    s.seal(Uint8Array.of(1));
    s.seal(Uint8Array.of(2));
    expect(s.remaining).toBe(1);
    s.seal(Uint8Array.of(3));
    expect(s.remaining).toBe(0);
    const e = catchErr(() => s.seal(Uint8Array.of(4)));
    expect(e).toBeInstanceOf(KeyUsageLimitError);
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).kind).toBe("limit");
    expect(s.seq).toBe(3n); // nothing was sealed
  });

  test("key-use limit: sealAll refuses a batch that would cross it, emitting nothing", () => {
    const s = new RecordSealer(cipher, key, iv, { maxRecords: 2 }, backend);
    expect(() => s.sealAll(new Uint8Array(16385 * 2))).toThrow(KeyUsageLimitError);
    expect(s.records).toBe(0);
    expect(s.sealAll(new Uint8Array(16385)).length).toBe(sealedSize(16385));
  });

  test("key-use limit: the opener refuses a peer that does not re-key", () => {
    const s = new RecordSealer(cipher, key, iv, {}, backend);
    const o = new RecordOpener(cipher, key, iv, { maxRecords: 2 }, backend);
    o.open(s.seal(Uint8Array.of(1)));
    o.open(s.seal(Uint8Array.of(2)));
    expect(() => o.open(s.seal(Uint8Array.of(3)))).toThrow(KeyUsageLimitError);
  });

  test("default limit is 2^24 records", () => {
    expect(new RecordSealer(cipher, key, iv, {}, backend).remaining).toBe(2 ** 24);
  });

  test("sequence number exhaustion at 2^64 stops the key", () => {
    const s = new RecordSealer(cipher, key, iv, { seq: (1n << 64n) - 1n }, backend);
    s.seal(Uint8Array.of(1));
    expect(() => s.seal(Uint8Array.of(2))).toThrow(KeyUsageLimitError);
  });

  test("caller bugs are RangeErrors", () => {
    expect(() => new RecordSealer(cipher, new Uint8Array(15), iv)).toThrow(RangeError);
    expect(() => new RecordSealer("aes-256-gcm", new Uint8Array(16), iv)).toThrow(RangeError);
    expect(() => new RecordSealer(cipher, key, new Uint8Array(8))).toThrow(RangeError);
    expect(() => new RecordSealer(cipher, key, iv, {}, backend).seal(new Uint8Array(16385))).toThrow(RangeError);
    expect(() => new RecordSealer(cipher, key, iv, {}, backend).seal(Uint8Array.of(1), 20)).toThrow(RangeError);
    expect(() => new RecordSealer(cipher, key, iv, { maxRecords: 0 }, backend)).toThrow(RangeError);
  });

  test("ktlsIvParts: GCM salt|iv split, ChaCha whole", () => {
    const gcm = ktlsIvParts("aes-256-gcm", vectors("aes-256-gcm").iv);
    expect(toHex(gcm.salt)).toBe("51525354");
    expect(toHex(gcm.iv)).toBe("a0a1a2a3a4a5a6a7");
    const cc = ktlsIvParts("chacha20-poly1305", vectors("chacha20-poly1305").iv);
    expect(cc.salt.length).toBe(0);
    expect(toHex(cc.iv)).toBe("a0a1a2a3a4a5a6a7a8a9aaab");
  });
});
