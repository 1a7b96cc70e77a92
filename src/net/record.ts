/**
 * User-space TLS 1.3 record layer, byte-identical to Linux kernel TLS.
 *
 * Owns: sealing and opening TLS 1.3 records (RFC 8446 section 5.2) exactly as the
 * kernel's TLS_TX writes them and TLS_RX accepts them (TLS_1_3_VERSION): header
 * `17 03 03 len16`, body = AEAD(plaintext || inner type [|| zero padding]) || tag16,
 * nonce = iv12 XOR (0^4 || seq64 BE), AAD = the 5-byte header. It also owns the
 * sequence numbers, the per-key record limit and incremental parsing of a byte stream.
 *
 * Must never: touch sockets or files, print, reuse a nonce (a live sealer's seq only
 * goes up; there is no way to set it back), hand out plaintext whose tag has not been
 * verified, or keep more than one partial record of peer bytes in memory.
 *
 * Errors: ProtocolError("record") for anything a peer can cause, ProtocolError("limit")
 * (KeyUsageLimitError) when a key has done its share of records, RangeError for caller
 * bugs (wrong key length, oversized plaintext, bad offsets).
 */
import { createCipheriv, createDecipheriv, getCiphers, timingSafeEqual } from "node:crypto";
import { ProtocolError } from "../errors.ts";

export type CipherName = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";

/** Every cipher the protocol can negotiate, in wire-id order (see docs/PROTOCOL.md). */
export const CIPHERS: readonly CipherName[] = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"];

export const CIPHER_KEY_LENGTH: Readonly<Record<CipherName, number>> = {
  "aes-128-gcm": 16,
  "aes-256-gcm": 32,
  "chacha20-poly1305": 32,
};

/** Per-direction IV: for GCM kTLS wants it split as salt(4) | iv(8); ChaCha uses all 12. */
export const IV_LENGTH = 12;

export const CONTENT_TYPE_ALERT = 21;
export const CONTENT_TYPE_HANDSHAKE = 22;
export const CONTENT_TYPE_APPLICATION_DATA = 23;

export const RECORD_HEADER_LENGTH = 5;
export const RECORD_TAG_LENGTH = 16;
/** Header + inner content type + tag: what one unpadded record adds to its plaintext. */
export const RECORD_OVERHEAD = RECORD_HEADER_LENGTH + 1 + RECORD_TAG_LENGTH;
/** RFC 8446 5.1: at most 2^14 plaintext bytes per record. */
export const MAX_RECORD_PLAINTEXT = 16384;
/** RFC 8446 5.2: TLSCiphertext.length must not exceed 2^14 + 256. */
export const MAX_RECORD_CIPHERTEXT = 16384 + 256;
/** Smallest legal body: one inner content-type byte plus the tag. */
const MIN_RECORD_CIPHERTEXT = 1 + RECORD_TAG_LENGTH;
/**
 * RFC 8446 5.5: AES-GCM may protect about 2^24.5 full-size records per key. We stop at
 * 2^24 for every cipher so there is one rule to remember; the transport then starts a
 * new session (new handshake, new keys) on a new connection.
 */
export const DEFAULT_MAX_RECORDS_PER_KEY = 2 ** 24;

/** Thrown instead of sealing (or opening) a record that would exceed the per-key limit. */
export class KeyUsageLimitError extends ProtocolError {
  /** Records already processed with this key. */
  readonly records: number;
  constructor(direction: "seal" | "open", records: number) {
    super(
      "limit",
      direction === "seal"
        ? `key usage limit reached after ${records} records: a new session (fresh keys) is required`
        : `peer exceeded the key usage limit of ${records} records without re-keying`,
    );
    this.name = "KeyUsageLimitError";
    this.records = records;
  }
}

export interface RecordKeyOptions {
  /** First sequence number (kTLS `rec_seq`); 0 for a fresh session. */
  seq?: bigint;
  /** Records this key may process; defaults to DEFAULT_MAX_RECORDS_PER_KEY. Tests use small values. */
  maxRecords?: number;
}

export interface OpenedRecord {
  /** Inner content type: 23 application data, 21 alert, 22 handshake. */
  type: number;
  /** Plaintext with the content type and padding removed. */
  data: Uint8Array;
}

/** Wire bytes `sealAll` produces for `n` plaintext bytes (one record per 16384, none for 0). */
export function sealedSize(n: number): number {
  const records = Math.ceil(n / MAX_RECORD_PLAINTEXT);
  return n + records * RECORD_OVERHEAD;
}

/**
 * How our 12-byte IV maps onto kTLS's crypto_info: GCM takes salt = iv[0..4] and
 * iv = iv[4..12]; ChaCha20-Poly1305 has no salt and takes all 12 bytes. Either way the
 * kernel's nonce is the same (salt | iv) XOR (0^4 | seq) that this module computes.
 */
export function ktlsIvParts(cipher: CipherName, iv: Uint8Array): { salt: Uint8Array; iv: Uint8Array } {
  checkIv(iv);
  if (cipher === "chacha20-poly1305") return { salt: new Uint8Array(0), iv: iv.slice() };
  return { salt: iv.slice(0, 4), iv: iv.slice(4, 12) };
}

// ---------------------------------------------------------------------------------------
// AEAD back ends. One small interface so the record logic is written once.

interface RecordAead {
  /** Writes AEAD(pt || type) || tag into out[at ..]; `aad` is the record header. */
  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void;
  /** Verifies and decrypts body (ciphertext || tag); null when the tag does not verify. */
  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null;
}

// node:crypto cannot write into a caller's buffer, so each update() returns a fresh
// buffer; that one allocation + copy is the floor. Reusing one byte array per content
// type saves an allocation on the type byte.
const TYPE_BYTE: Readonly<Record<number, Uint8Array>> = {
  [CONTENT_TYPE_ALERT]: Uint8Array.of(CONTENT_TYPE_ALERT),
  [CONTENT_TYPE_HANDSHAKE]: Uint8Array.of(CONTENT_TYPE_HANDSHAKE),
  [CONTENT_TYPE_APPLICATION_DATA]: Uint8Array.of(CONTENT_TYPE_APPLICATION_DATA),
};

class GcmAead implements RecordAead {
  private readonly alg: "aes-128-gcm" | "aes-256-gcm";
  private readonly key: Uint8Array;
  constructor(alg: "aes-128-gcm" | "aes-256-gcm", key: Uint8Array) {
    this.alg = alg;
    this.key = key.slice();
  }
  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void {
    // A cipher object cannot be reused after final(): one per record (~0.6 us).
    const c = createCipheriv(this.alg, this.key, nonce, { authTagLength: RECORD_TAG_LENGTH });
    c.setAAD(aad);
    const body = c.update(pt);
    const last = c.update(TYPE_BYTE[type]);
    c.final();
    out.set(body, at);
    out[at + pt.length] = last[0];
    out.set(c.getAuthTag(), at + pt.length + 1);
  }
  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null {
    const n = body.length - RECORD_TAG_LENGTH;
    const d = createDecipheriv(this.alg, this.key, nonce, { authTagLength: RECORD_TAG_LENGTH });
    d.setAAD(aad);
    d.setAuthTag(body.subarray(n));
    const pt = d.update(body.subarray(0, n));
    try {
      d.final();
    } catch {
      return null;
    }
    return pt;
  }
}

class NodeChaChaAead implements RecordAead {
  private readonly key: Uint8Array;
  constructor(key: Uint8Array) {
    this.key = key.slice();
  }
  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void {
    const c = createCipheriv("chacha20-poly1305", this.key, nonce, { authTagLength: RECORD_TAG_LENGTH });
    c.setAAD(aad, { plaintextLength: pt.length + 1 });
    const body = c.update(pt);
    const last = c.update(TYPE_BYTE[type]);
    c.final();
    out.set(body, at);
    out[at + pt.length] = last[0];
    out.set(c.getAuthTag(), at + pt.length + 1);
  }
  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null {
    const n = body.length - RECORD_TAG_LENGTH;
    const d = createDecipheriv("chacha20-poly1305", this.key, nonce, { authTagLength: RECORD_TAG_LENGTH });
    d.setAAD(aad, { plaintextLength: n });
    d.setAuthTag(body.subarray(n));
    const pt = d.update(body.subarray(0, n));
    try {
      d.final();
    } catch {
      return null;
    }
    return pt;
  }
}

// --- Portable ChaCha20-Poly1305 (RFC 8439) ---------------------------------------------
// Bun's node:crypto (BoringSSL) has no "chacha20-poly1305" cipher (createCipheriv throws
// "Unknown cipher"; crypto.subtle has none either), yet kTLS peers may negotiate it. This
// fallback keeps the user-space path working; it is used only when node:crypto lacks the
// cipher, and is checked against python `cryptography` in tests/net/record.test.ts. It is
// much slower than AES-GCM (see bench/record-seal.ts): prefer AES-GCM or kTLS for bulk.

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/** Keystream block `counter` for (key, nonce) into `out` (16 LE words). */
function chachaBlock(key: Uint32Array, nonce: Uint32Array, counter: number, out: Uint32Array): void {
  const j0 = 0x61707865, j1 = 0x3320646e, j2 = 0x79622d32, j3 = 0x6b206574;
  const j4 = key[0], j5 = key[1], j6 = key[2], j7 = key[3];
  const j8 = key[4], j9 = key[5], j10 = key[6], j11 = key[7];
  const j12 = counter | 0, j13 = nonce[0], j14 = nonce[1], j15 = nonce[2];
  let x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7;
  let x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14, x15 = j15;
  for (let i = 0; i < 10; i++) {
    // column round
    x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 16); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 12);
    x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 8); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 7);
    x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 16); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 12);
    x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 8); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 7);
    x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 16); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 12);
    x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 8); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 7);
    x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 16); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 12);
    x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 8); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 7);
    // diagonal round
    x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 16); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 12);
    x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 8); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 7);
    x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 16); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 12);
    x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 8); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 7);
    x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 16); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 12);
    x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 8); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 7);
    x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 16); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 12);
    x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 8); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 7);
  }
  out[0] = x0 + j0; out[1] = x1 + j1; out[2] = x2 + j2; out[3] = x3 + j3;
  out[4] = x4 + j4; out[5] = x5 + j5; out[6] = x6 + j6; out[7] = x7 + j7;
  out[8] = x8 + j8; out[9] = x9 + j9; out[10] = x10 + j10; out[11] = x11 + j11;
  out[12] = x12 + j12; out[13] = x13 + j13; out[14] = x14 + j14; out[15] = x15 + j15;
}

function leWords(bytes: Uint8Array): Uint32Array {
  const words = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < words.length; i++) {
    words[i] = (bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) | (bytes[4 * i + 3] << 24)) >>> 0;
  }
  return words;
}

/**
 * Poly1305 with ten 13-bit limbs (the poly1305-donna-16 layout): limb products stay far
 * below 2^53, so plain JS numbers compute them exactly, in constant time, without BigInt.
 * Only whole 16-byte blocks are fed: the AEAD pads everything to 16 bytes.
 */
class Poly1305 {
  private readonly r = new Float64Array(10);
  private readonly h = new Float64Array(10);
  private readonly s: Uint8Array;
  private readonly tail = new Uint8Array(16);

  constructor(oneTimeKey: Uint8Array) {
    const r = oneTimeKey.slice(0, 16);
    // RFC 8439 2.5: clamp r.
    r[3] &= 15; r[7] &= 15; r[11] &= 15; r[15] &= 15;
    r[4] &= 252; r[8] &= 252; r[12] &= 252;
    Poly1305.load(r, 0, this.r, 0);
    this.s = oneTimeKey.slice(16, 32);
  }

  /** Splits 16 LE bytes into 13-bit limbs; `hibit` (2^128) lands at bit 11 of limb 9. */
  private static load(m: Uint8Array, p: number, into: Float64Array, hibit: number): void {
    const t0 = m[p] | (m[p + 1] << 8), t1 = m[p + 2] | (m[p + 3] << 8);
    const t2 = m[p + 4] | (m[p + 5] << 8), t3 = m[p + 6] | (m[p + 7] << 8);
    const t4 = m[p + 8] | (m[p + 9] << 8), t5 = m[p + 10] | (m[p + 11] << 8);
    const t6 = m[p + 12] | (m[p + 13] << 8), t7 = m[p + 14] | (m[p + 15] << 8);
    into[0] = t0 & 0x1fff;
    into[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
    into[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
    into[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
    into[4] = ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
    into[5] = (t4 >>> 1) & 0x1fff;
    into[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
    into[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
    into[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
    into[9] = (t7 >>> 5) | hibit;
  }

  /** h = (h + m) * r mod 2^130 - 5 for every 16-byte block of data[start, end). */
  private blocks(data: Uint8Array, start: number, end: number): void {
    // Unrolled on locals: with arrays and loops this ran at ~80 MB/s.
    const r = this.r, h = this.h;
    const r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3], r4 = r[4], r5 = r[5], r6 = r[6], r7 = r[7], r8 = r[8], r9 = r[9];
    // Products with i + j >= 10 wrap past 2^130, which is 5 mod p: premultiply those r limbs.
    const s1 = 5 * r1, s2 = 5 * r2, s3 = 5 * r3, s4 = 5 * r4, s5 = 5 * r5, s6 = 5 * r6, s7 = 5 * r7, s8 = 5 * r8, s9 = 5 * r9;
    let h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3], h4 = h[4], h5 = h[5], h6 = h[6], h7 = h[7], h8 = h[8], h9 = h[9];
    const m = data;
    for (let p = start; p + 16 <= end; p += 16) {
      const t0 = m[p] | (m[p + 1] << 8), t1 = m[p + 2] | (m[p + 3] << 8);
      const t2 = m[p + 4] | (m[p + 5] << 8), t3 = m[p + 6] | (m[p + 7] << 8);
      const t4 = m[p + 8] | (m[p + 9] << 8), t5 = m[p + 10] | (m[p + 11] << 8);
      const t6 = m[p + 12] | (m[p + 13] << 8), t7 = m[p + 14] | (m[p + 15] << 8);
      h0 += t0 & 0x1fff;
      h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
      h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
      h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
      h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
      h5 += (t4 >>> 1) & 0x1fff;
      h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
      h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
      h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
      h9 += (t7 >>> 5) | (1 << 11); // the 2^128 bit every full block carries
      // Limbs are < 2^14 and 5r < 2^16, so each sum of ten products is < 2^34: exact in a
      // double. Carries: d / 8192 < 2^32, so `>>> 0` floors it; `& 0x1fff` keeps the low
      // 13 bits because ToInt32 works modulo 2^32, a multiple of 2^13.
      const d0 = h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6 + h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1;
      let d1 = h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7 + h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2;
      let d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8 + h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3;
      let d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9 + h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4;
      let d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0 + h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5;
      let d5 = h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1 + h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6;
      let d6 = h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2 + h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7;
      let d7 = h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3 + h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8;
      let d8 = h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4 + h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9;
      let d9 = h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5 + h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
      let c = (d0 / 8192) >>> 0; h0 = d0 & 0x1fff;
      d1 += c; c = (d1 / 8192) >>> 0; h1 = d1 & 0x1fff;
      d2 += c; c = (d2 / 8192) >>> 0; h2 = d2 & 0x1fff;
      d3 += c; c = (d3 / 8192) >>> 0; h3 = d3 & 0x1fff;
      d4 += c; c = (d4 / 8192) >>> 0; h4 = d4 & 0x1fff;
      d5 += c; c = (d5 / 8192) >>> 0; h5 = d5 & 0x1fff;
      d6 += c; c = (d6 / 8192) >>> 0; h6 = d6 & 0x1fff;
      d7 += c; c = (d7 / 8192) >>> 0; h7 = d7 & 0x1fff;
      d8 += c; c = (d8 / 8192) >>> 0; h8 = d8 & 0x1fff;
      d9 += c; c = (d9 / 8192) >>> 0; h9 = d9 & 0x1fff;
      h0 += c * 5;
      c = h0 >>> 13;
      h0 &= 0x1fff;
      h1 += c;
    }
    h[0] = h0; h[1] = h1; h[2] = h2; h[3] = h3; h[4] = h4; h[5] = h5; h[6] = h6; h[7] = h7; h[8] = h8; h[9] = h9;
  }

  /** Feeds data followed by zero padding to a multiple of 16 (RFC 8439 2.8 pad16). */
  updatePadded(data: Uint8Array): void {
    const whole = data.length & ~15;
    this.blocks(data, 0, whole);
    if (whole < data.length) {
      this.tail.fill(0);
      this.tail.set(data.subarray(whole));
      this.blocks(this.tail, 0, 16);
    }
  }

  /** Feeds le64(aadLen) || le64(ctLen) and returns the tag. */
  finish(aadLength: number, ctLength: number): Uint8Array {
    const lens = new Uint8Array(16);
    const v = new DataView(lens.buffer);
    v.setUint32(0, aadLength >>> 0, true);
    v.setUint32(4, Math.floor(aadLength / 2 ** 32), true);
    v.setUint32(8, ctLength >>> 0, true);
    v.setUint32(12, Math.floor(ctLength / 2 ** 32), true);
    this.blocks(lens, 0, 16);
    // Once per record, so BigInt is fine here and keeps the final reduction obviously right.
    let acc = 0n;
    for (let i = 9; i >= 0; i--) acc = (acc << 13n) + BigInt(this.h[i]);
    acc %= (1n << 130n) - 5n;
    let s = 0n;
    for (let i = 15; i >= 0; i--) s = (s << 8n) + BigInt(this.s[i]);
    acc = (acc + s) & ((1n << 128n) - 1n);
    const tag = new Uint8Array(16);
    for (let i = 0; i < 16; i++) {
      tag[i] = Number(acc & 0xffn);
      acc >>= 8n;
    }
    return tag;
  }
}

class PortableChaChaAead implements RecordAead {
  private readonly key: Uint32Array;
  private readonly block = new Uint32Array(16);
  private readonly blockBytes = new Uint8Array(this.block.buffer);

  constructor(key: Uint8Array) {
    if (!LITTLE_ENDIAN) throw new RangeError("the portable ChaCha20 fallback assumes a little-endian CPU");
    this.key = leWords(key);
  }

  /** XORs the keystream (block counter from 1) over data in place. */
  private xor(nonce: Uint32Array, data: Uint8Array): void {
    const ks = this.blockBytes;
    for (let p = 0, counter = 1; p < data.length; p += 64, counter++) {
      chachaBlock(this.key, nonce, counter, this.block);
      const n = Math.min(64, data.length - p);
      for (let i = 0; i < n; i++) data[p + i] ^= ks[i];
    }
  }

  private mac(nonce: Uint32Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
    chachaBlock(this.key, nonce, 0, this.block);
    const poly = new Poly1305(this.blockBytes.subarray(0, 32));
    poly.updatePadded(aad);
    poly.updatePadded(ct);
    return poly.finish(aad.length, ct.length);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void {
    const n = leWords(nonce);
    // Encrypt in place in the caller's buffer: no allocation beyond the tag.
    const body = out.subarray(at, at + pt.length + 1);
    body.set(pt);
    body[pt.length] = type;
    this.xor(n, body);
    out.set(this.mac(n, aad, body), at + pt.length + 1);
  }

  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null {
    const n = leWords(nonce);
    const ct = body.subarray(0, body.length - RECORD_TAG_LENGTH);
    const tag = this.mac(n, aad, ct);
    if (!timingSafeEqual(tag, body.subarray(ct.length))) return null;
    const pt = ct.slice();
    this.xor(n, pt);
    return pt;
  }
}

let nodeHasChaCha: boolean | undefined;

/** Whether ChaCha20-Poly1305 records run on node:crypto (false: portable, slow fallback). */
export function nativeChaChaAvailable(): boolean {
  nodeHasChaCha ??= getCiphers().includes("chacha20-poly1305");
  return nodeHasChaCha;
}

function makeAead(cipher: CipherName, key: Uint8Array, forcePortable: boolean): RecordAead {
  if (cipher === "chacha20-poly1305") {
    return !forcePortable && nativeChaChaAvailable() ? new NodeChaChaAead(key) : new PortableChaChaAead(key);
  }
  return new GcmAead(cipher, key);
}

// ---------------------------------------------------------------------------------------

function checkIv(iv: Uint8Array): void {
  if (iv.length !== IV_LENGTH) throw new RangeError(`record IV must be ${IV_LENGTH} bytes, got ${iv.length}`);
}

const TWO_64 = 1n << 64n;

/**
 * Shared state of both directions: key, IV and a 64-bit sequence number kept as two
 * u32 halves so the per-record nonce needs no BigInt arithmetic.
 */
class RecordKey {
  protected readonly aead: RecordAead;
  private readonly ivHi: number;
  private readonly ivLo: number;
  protected readonly nonce: Uint8Array;
  private readonly nonceView: DataView;
  private seqHi: number;
  private seqLo: number;
  /** Set once seq has passed 2^64 - 1: that key can never be used again. */
  private exhausted = false;
  protected count = 0;
  protected readonly maxRecords: number;

  constructor(cipher: CipherName, key: Uint8Array, iv: Uint8Array, options: RecordKeyOptions, forcePortable: boolean) {
    if (!CIPHERS.includes(cipher)) throw new RangeError(`unknown cipher ${String(cipher)}`);
    if (key.length !== CIPHER_KEY_LENGTH[cipher]) {
      throw new RangeError(`${cipher} needs a ${CIPHER_KEY_LENGTH[cipher]}-byte key, got ${key.length}`);
    }
    checkIv(iv);
    const seq = options.seq ?? 0n;
    if (seq < 0n || seq >= TWO_64) throw new RangeError("record sequence number must fit in 64 bits");
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS_PER_KEY;
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) throw new RangeError("maxRecords must be a positive integer");
    this.aead = makeAead(cipher, key, forcePortable);
    this.nonce = iv.slice();
    this.nonceView = new DataView(this.nonce.buffer);
    this.ivHi = this.nonceView.getUint32(4);
    this.ivLo = this.nonceView.getUint32(8);
    this.seqHi = Number(seq >> 32n);
    this.seqLo = Number(seq & 0xffffffffn);
    this.maxRecords = maxRecords;
  }

  /** Sequence number of the next record. */
  get seq(): bigint {
    return (BigInt(this.seqHi) << 32n) | BigInt(this.seqLo);
  }

  /** Records processed with this key so far. */
  get records(): number {
    return this.count;
  }

  /** Records this key may still process before a new session is needed. */
  get remaining(): number {
    return this.maxRecords - this.count;
  }

  protected limitReached(): boolean {
    return this.count >= this.maxRecords || this.exhausted;
  }

  /** Nonce for the current seq (RFC 8446 5.3), computed into a reused buffer. */
  protected currentNonce(): Uint8Array {
    this.nonceView.setUint32(4, this.ivHi ^ this.seqHi);
    this.nonceView.setUint32(8, this.ivLo ^ this.seqLo);
    return this.nonce;
  }

  protected advance(): void {
    this.count++;
    this.seqLo = (this.seqLo + 1) >>> 0;
    if (this.seqLo === 0) {
      this.seqHi = (this.seqHi + 1) >>> 0;
      if (this.seqHi === 0) this.exhausted = true;
    }
  }
}

function checkContentType(type: number): void {
  if (type !== CONTENT_TYPE_APPLICATION_DATA && type !== CONTENT_TYPE_ALERT && type !== CONTENT_TYPE_HANDSHAKE) {
    throw new RangeError(`unsupported TLS content type ${type}`);
  }
}

/** Seals outgoing records for one direction of one session. */
export class RecordSealer extends RecordKey {
  /** `forcePortable` is for tests and benchmarks: use the pure-TS ChaCha even if node:crypto has one. */
  constructor(cipher: CipherName, key: Uint8Array, iv: Uint8Array, options: RecordKeyOptions = {}, forcePortable = false) {
    super(cipher, key, iv, options, forcePortable);
  }

  /** Seals one record (≤ 16384 bytes) into a new buffer. */
  seal(plaintext: Uint8Array, contentType: number = CONTENT_TYPE_APPLICATION_DATA): Uint8Array {
    const out = new Uint8Array(plaintext.length + RECORD_OVERHEAD);
    this.sealInto(out, 0, plaintext, contentType);
    return out;
  }

  /**
   * Seals one record (≤ 16384 plaintext bytes) into out[offset ..] and returns the bytes
   * written (plaintext.length + 22). Lets the transport build a whole send batch in one
   * buffer. In-place sealing is allowed and saves a copy: `plaintext` may be the bytes
   * out[offset + 5, offset + 5 + n) themselves (read file data straight there); it must
   * not overlap the 5 header bytes.
   */
  sealInto(out: Uint8Array, offset: number, plaintext: Uint8Array, contentType: number = CONTENT_TYPE_APPLICATION_DATA): number {
    const n = plaintext.length;
    if (n > MAX_RECORD_PLAINTEXT) throw new RangeError(`record plaintext of ${n} bytes exceeds ${MAX_RECORD_PLAINTEXT}`);
    checkContentType(contentType);
    const total = n + RECORD_OVERHEAD;
    if (!Number.isInteger(offset) || offset < 0 || offset + total > out.length) {
      throw new RangeError(`no room for a ${total}-byte record at offset ${offset} of ${out.length}`);
    }
    if (plaintext.buffer === out.buffer) {
      const p = plaintext.byteOffset;
      const h = out.byteOffset + offset;
      if (p < h + RECORD_HEADER_LENGTH && p + n > h) throw new RangeError("plaintext overlaps the record header");
    }
    if (this.limitReached()) throw new KeyUsageLimitError("seal", this.count);
    const bodyLength = n + 1 + RECORD_TAG_LENGTH;
    out[offset] = CONTENT_TYPE_APPLICATION_DATA; // TLS 1.3: the outer type is always 23
    out[offset + 1] = 0x03;
    out[offset + 2] = 0x03;
    out[offset + 3] = bodyLength >>> 8;
    out[offset + 4] = bodyLength & 0xff;
    const aad = out.subarray(offset, offset + RECORD_HEADER_LENGTH);
    this.aead.seal(this.currentNonce(), aad, plaintext, contentType, out, offset + RECORD_HEADER_LENGTH);
    this.advance();
    return total;
  }

  /**
   * Seals any amount of data the way one kTLS send() does: consecutive records of at most
   * 16384 plaintext bytes, concatenated. Empty input gives no records.
   */
  sealAll(data: Uint8Array, contentType: number = CONTENT_TYPE_APPLICATION_DATA): Uint8Array {
    const records = Math.ceil(data.length / MAX_RECORD_PLAINTEXT);
    // Check the limit for the whole batch first so we never emit half of it.
    if (this.count + records > this.maxRecords) throw new KeyUsageLimitError("seal", this.count);
    const out = new Uint8Array(sealedSize(data.length));
    let at = 0;
    for (let p = 0; p < data.length; p += MAX_RECORD_PLAINTEXT) {
      at += this.sealInto(out, at, data.subarray(p, Math.min(data.length, p + MAX_RECORD_PLAINTEXT)), contentType);
    }
    return out;
  }
}

/**
 * Opens incoming records for one direction of one session. Either hand it whole records
 * (`open`) or arbitrary slices of the byte stream (`push`), not both on one object.
 */
export class RecordOpener extends RecordKey {
  /** Holds at most one partial record; peer bytes beyond that are never buffered. */
  private readonly carry = new Uint8Array(RECORD_HEADER_LENGTH + MAX_RECORD_CIPHERTEXT);
  private carryLength = 0;
  /** Full length (header included) of the record in `carry`, 0 until its header is complete. */
  private carryExpect = 0;
  /** First error seen; the stream is dead after it and every later call rethrows it. */
  private failure: ProtocolError | undefined;

  constructor(cipher: CipherName, key: Uint8Array, iv: Uint8Array, options: RecordKeyOptions = {}, forcePortable = false) {
    super(cipher, key, iv, options, forcePortable);
  }

  /** Bytes of an incomplete record held between push() calls (never more than 16645). */
  get bufferedBytes(): number {
    return this.carryLength;
  }

  /** Validates a 5-byte header and returns the record's total length. */
  private headerLength(buf: Uint8Array, p: number): number {
    if (buf[p] !== CONTENT_TYPE_APPLICATION_DATA || buf[p + 1] !== 0x03 || buf[p + 2] !== 0x03) {
      throw new ProtocolError(
        "record",
        `bad TLS record header ${hex(buf.subarray(p, p + 3))} (expected 17 03 03): not a uring-sync peer, or the stream is out of sync`,
      );
    }
    const len = (buf[p + 3] << 8) | buf[p + 4];
    if (len < MIN_RECORD_CIPHERTEXT || len > MAX_RECORD_CIPHERTEXT) {
      throw new ProtocolError("record", `TLS record length ${len} outside ${MIN_RECORD_CIPHERTEXT}..${MAX_RECORD_CIPHERTEXT}`);
    }
    return RECORD_HEADER_LENGTH + len;
  }

  /** Opens exactly one complete record (header included). */
  open(record: Uint8Array): OpenedRecord {
    return this.guard(() => this.openWhole(record));
  }

  /**
   * Feeds the next bytes of the stream; returns every record completed by them, in order.
   * Complete records are decrypted straight from `chunk`; only a trailing partial record
   * is copied, so the caller may reuse `chunk` as soon as this returns.
   */
  push(chunk: Uint8Array): OpenedRecord[] {
    return this.guard(() => this.pushStream(chunk));
  }

  private guard<T>(f: () => T): T {
    if (this.failure !== undefined) throw this.failure;
    try {
      return f();
    } catch (e) {
      if (e instanceof ProtocolError) this.failure = e;
      throw e;
    }
  }

  private openWhole(record: Uint8Array): OpenedRecord {
    if (record.length < RECORD_HEADER_LENGTH) throw new ProtocolError("record", "truncated TLS record header");
    const total = this.headerLength(record, 0);
    if (record.length !== total) {
      throw new ProtocolError("record", `TLS record length mismatch: header says ${total} bytes, got ${record.length}`);
    }
    return this.openChecked(record);
  }

  private openChecked(record: Uint8Array): OpenedRecord {
    if (this.limitReached()) throw new KeyUsageLimitError("open", this.count);
    const aad = record.subarray(0, RECORD_HEADER_LENGTH);
    const inner = this.aead.open(this.currentNonce(), aad, record.subarray(RECORD_HEADER_LENGTH));
    if (inner === null) {
      throw new ProtocolError("record", `TLS record ${this.seq} failed authentication (tampered, or keys do not match)`);
    }
    this.advance();
    // RFC 8446 5.4: the content type is the last non-zero byte; zeros after it are padding.
    let i = inner.length - 1;
    while (i >= 0 && inner[i] === 0) i--;
    if (i < 0) throw new ProtocolError("record", "TLS record has no content type (all padding)");
    const type = inner[i];
    if (type !== CONTENT_TYPE_APPLICATION_DATA && type !== CONTENT_TYPE_ALERT && type !== CONTENT_TYPE_HANDSHAKE) {
      throw new ProtocolError("record", `TLS record with unexpected content type ${type}`);
    }
    if (i > MAX_RECORD_PLAINTEXT) throw new ProtocolError("record", `TLS record plaintext of ${i} bytes exceeds ${MAX_RECORD_PLAINTEXT}`);
    return { type, data: inner.subarray(0, i) };
  }

  private pushStream(chunk: Uint8Array): OpenedRecord[] {
    const out: OpenedRecord[] = [];
    let p = 0;
    const end = chunk.length;
    while (p < end) {
      if (this.carryLength > 0) {
        if (this.carryExpect === 0) {
          const take = Math.min(RECORD_HEADER_LENGTH - this.carryLength, end - p);
          this.carry.set(chunk.subarray(p, p + take), this.carryLength);
          this.carryLength += take;
          p += take;
          if (this.carryLength < RECORD_HEADER_LENGTH) break;
          this.carryExpect = this.headerLength(this.carry, 0);
        }
        const take = Math.min(this.carryExpect - this.carryLength, end - p);
        this.carry.set(chunk.subarray(p, p + take), this.carryLength);
        this.carryLength += take;
        p += take;
        if (this.carryLength < this.carryExpect) break;
        const record = this.carry.subarray(0, this.carryExpect);
        this.carryLength = 0;
        this.carryExpect = 0;
        out.push(this.openChecked(record));
        continue;
      }
      const avail = end - p;
      if (avail < RECORD_HEADER_LENGTH) {
        this.carry.set(chunk.subarray(p, end), 0);
        this.carryLength = avail;
        break;
      }
      const total = this.headerLength(chunk, p);
      if (avail < total) {
        this.carry.set(chunk.subarray(p, end), 0);
        this.carryLength = avail;
        this.carryExpect = total;
        break;
      }
      out.push(this.openChecked(chunk.subarray(p, p + total)));
      p += total;
    }
    return out;
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}
