/**
 * User-space TLS 1.3 record layer, byte-identical to Linux kernel TLS.
 *
 * Owns: sealing and opening TLS 1.3 records (RFC 8446 section 5.2) exactly as the
 * kernel's TLS_TX writes them and TLS_RX accepts them (TLS_1_3_VERSION): header
 * `17 03 03 len16`, body = AEAD(plaintext || inner type [|| zero padding]) || tag16,
 * nonce = iv12 XOR (0^4 || seq64 BE), AAD = the 5-byte header. It also owns the
 * sequence numbers, the per-key record limit and incremental parsing of a byte stream.
 *
 * The AEAD runs on OpenSSL's libcrypto through bun:ffi where it loads (ffi/libcrypto.ts):
 * sealing encrypts from the caller's plaintext straight into the record, opening decrypts
 * in place (pushInPlace), and a context per direction keeps its key schedule, so a record
 * costs one pass over its bytes and no allocation. node:crypto is the fallback: per byte
 * Bun's BoringSSL beats OpenSSL 3.0 in a hot loop (bench/record-seal.ts), but its fresh
 * buffer and copy per record (and the page faults they bring) cost more than that in a
 * transfer: 1.1-1.5x the CPU per end on 2 GiB over loopback here. @noble/ciphers covers
 * ChaCha20-Poly1305 where neither has it. Every back end makes the same bytes
 * (tests/net/record.test.ts checks each against python's cryptography).
 *
 * Must never: touch sockets or files, print, reuse a nonce (a live sealer's seq only
 * goes up; there is no way to set it back), hand out plaintext whose tag has not been
 * verified, or keep more than one partial record of peer bytes in memory.
 *
 * Errors: ProtocolError("record") for anything a peer can cause, ProtocolError("limit")
 * (KeyUsageLimitError) when a key has done its share of records, RangeError for caller
 * bugs (wrong key length, oversized plaintext, bad offsets).
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ptr } from "bun:ffi";
import {
  createCipheriv, createDecipheriv, getCiphers, type CipherChaCha20Poly1305, type CipherGCM, type DecipherChaCha20Poly1305, type DecipherGCM,
} from "node:crypto";
import { EVP_CTRL, libcrypto } from "../../ffi/libcrypto.ts";
import { ProtocolError } from "../errors.ts";

export type CipherName = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";

/**
 * Where the AEAD runs. "openssl": libcrypto through bun:ffi, encrypting straight into the
 * caller's buffer and decrypting in place (no allocation per record); "node": node:crypto
 * (a fresh buffer per update(), and a copy); "portable": @noble/ciphers (ChaCha only,
 * slow). "auto" picks openssl when libcrypto loads, else node (portable for ChaCha when
 * node:crypto lacks it). URING_SYNC_RECORD_AEAD=openssl|node|portable overrides "auto"
 * (benchmarks compare back ends with one binary). Every back end makes the same bytes.
 */
export type AeadBackend = "auto" | "openssl" | "node" | "portable";
export type ResolvedAeadBackend = Exclude<AeadBackend, "auto">;

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
  readonly backend: ResolvedAeadBackend;
  /** Writes AEAD(pt || type) || tag into out[at ..]; `aad` is the record header. */
  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void;
  /** Verifies and decrypts body (ciphertext || tag); null when the tag does not verify. */
  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null;
  /**
   * Verifies and decrypts record (header || ciphertext || tag) in place: on success the
   * plaintext is record[5, length - 16) and true is returned. Only back ends that can
   * write into a caller's buffer have it.
   */
  openInPlace?(nonce: Uint8Array, record: Uint8Array): boolean;
}

// node:crypto cannot write into a caller's buffer, so each update() returns a fresh
// buffer; that one allocation + copy is the floor. Reusing one byte array per content
// type saves an allocation on the type byte.
const TYPE_BYTE: Readonly<Record<number, Uint8Array>> = {
  [CONTENT_TYPE_ALERT]: Uint8Array.of(CONTENT_TYPE_ALERT),
  [CONTENT_TYPE_HANDSHAKE]: Uint8Array.of(CONTENT_TYPE_HANDSHAKE),
  [CONTENT_TYPE_APPLICATION_DATA]: Uint8Array.of(CONTENT_TYPE_APPLICATION_DATA),
};

/**
 * The node:crypto back end. A cipher object cannot be reused after final(), so each record
 * makes one (~0.6 us); the subclasses differ only in how they make it.
 */
abstract class NodeAead implements RecordAead {
  readonly backend = "node";
  protected readonly key: Uint8Array;
  constructor(key: Uint8Array) {
    this.key = key.slice();
  }
  /** A cipher for one record with `aad` set; `ptLength` counts the inner type byte. */
  protected abstract cipher(nonce: Uint8Array, aad: Uint8Array, ptLength: number): CipherGCM | CipherChaCha20Poly1305;
  /** A decipher for one record with `aad` set (the auth tag is not set yet). */
  protected abstract decipher(nonce: Uint8Array, aad: Uint8Array, ctLength: number): DecipherGCM | DecipherChaCha20Poly1305;

  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void {
    const c = this.cipher(nonce, aad, pt.length + 1);
    const body = c.update(pt);
    const last = c.update(TYPE_BYTE[type]);
    c.final();
    out.set(body, at);
    out[at + pt.length] = last[0];
    out.set(c.getAuthTag(), at + pt.length + 1);
  }
  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null {
    const n = body.length - RECORD_TAG_LENGTH;
    const d = this.decipher(nonce, aad, n);
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

class GcmAead extends NodeAead {
  private readonly alg: "aes-128-gcm" | "aes-256-gcm";
  constructor(alg: "aes-128-gcm" | "aes-256-gcm", key: Uint8Array) {
    super(key);
    this.alg = alg;
  }
  protected cipher(nonce: Uint8Array, aad: Uint8Array): CipherGCM {
    return createCipheriv(this.alg, this.key, nonce, { authTagLength: RECORD_TAG_LENGTH }).setAAD(aad);
  }
  protected decipher(nonce: Uint8Array, aad: Uint8Array): DecipherGCM {
    return createDecipheriv(this.alg, this.key, nonce, { authTagLength: RECORD_TAG_LENGTH }).setAAD(aad);
  }
}

class NodeChaChaAead extends NodeAead {
  protected cipher(nonce: Uint8Array, aad: Uint8Array, ptLength: number): CipherChaCha20Poly1305 {
    return createCipheriv("chacha20-poly1305", this.key, nonce, { authTagLength: RECORD_TAG_LENGTH }).setAAD(aad, { plaintextLength: ptLength });
  }
  protected decipher(nonce: Uint8Array, aad: Uint8Array, ctLength: number): DecipherChaCha20Poly1305 {
    return createDecipheriv("chacha20-poly1305", this.key, nonce, { authTagLength: RECORD_TAG_LENGTH }).setAAD(aad, { plaintextLength: ctLength });
  }
}

// --- Portable ChaCha20-Poly1305 ----------------------------------------------------------
// Bun's node:crypto (BoringSSL) has no "chacha20-poly1305" cipher (createCipheriv throws
// "Unknown cipher"; crypto.subtle has none either), yet kTLS peers may negotiate it. The
// fallback is @noble/ciphers (audited, constant-time, same family as our PAKE code) rather
// than crypto of our own; it is much slower than AES-GCM (~0.1 GB/s, bench/record-seal.ts):
// prefer AES-GCM or kTLS for bulk. Used only when node:crypto lacks the cipher.

class PortableChaChaAead implements RecordAead {
  readonly backend = "portable";
  private readonly key: Uint8Array;

  constructor(key: Uint8Array) {
    this.key = key.slice();
  }

  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void {
    const inner = new Uint8Array(pt.length + 1);
    inner.set(pt);
    inner[pt.length] = type;
    out.set(chacha20poly1305(this.key, nonce, aad).encrypt(inner), at);
  }

  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null {
    try {
      return chacha20poly1305(this.key, nonce, aad).decrypt(body);
    } catch {
      return null;
    }
  }
}

let nodeHasChaCha: boolean | undefined;

/** Whether ChaCha20-Poly1305 records run on node:crypto (false: portable, slow fallback). */
export function nativeChaChaAvailable(): boolean {
  nodeHasChaCha ??= getCiphers().includes("chacha20-poly1305");
  return nodeHasChaCha;
}

/** Whether the libcrypto back end can be used here. */
export function opensslAvailable(): boolean {
  return libcrypto() !== null;
}

/** The back end "auto" (or URING_SYNC_RECORD_AEAD) picks for `cipher`. */
export function defaultAeadBackend(cipher: CipherName): ResolvedAeadBackend {
  const env = process.env.URING_SYNC_RECORD_AEAD;
  if (env === "openssl" || env === "node" || env === "portable") return resolveBackend(cipher, env);
  if (opensslAvailable()) return "openssl";
  return resolveBackend(cipher, "node");
}

function resolveBackend(cipher: CipherName, want: AeadBackend | boolean): ResolvedAeadBackend {
  if (want === true) want = "portable";
  if (want === false || want === "auto") return defaultAeadBackend(cipher);
  if (want === "openssl") {
    if (!opensslAvailable()) throw new RangeError("the openssl record back end needs libcrypto, which could not be loaded");
    return "openssl";
  }
  if (want === "portable") {
    // Only ChaCha has a portable implementation; AES-GCM stays on node:crypto.
    return cipher === "chacha20-poly1305" ? "portable" : "node";
  }
  return cipher === "chacha20-poly1305" && !nativeChaChaAvailable() ? "portable" : "node";
}

function makeAead(cipher: CipherName, key: Uint8Array, backend: ResolvedAeadBackend, encrypt: boolean): RecordAead {
  if (backend === "openssl") return new OpensslAead(cipher, key, encrypt);
  if (cipher === "chacha20-poly1305") return backend === "portable" ? new PortableChaChaAead(key) : new NodeChaChaAead(key);
  return new GcmAead(cipher, key);
}

// --- libcrypto (OpenSSL EVP) through bun:ffi ------------------------------------------------
// One EVP_CIPHER_CTX per direction holds the key schedule; each record only resets the
// nonce (EVP_CipherInit_ex with NULL cipher and key). Sealing encrypts straight from the
// caller's plaintext into the record (one pass, no intermediate buffer); opening decrypts
// in place. About six FFI calls per record (~0.2 us) instead of a cipher object, three
// buffers and a copy. Addresses of caller arrays are taken with ptr() right before the
// calls: nothing in between may materialise a small typed array's buffer (which moves it).

const freeCtx = new FinalizationRegistry<number>((ctx) => libcrypto()?.symbols.EVP_CIPHER_CTX_free(ctx));

class OpensslAead implements RecordAead {
  readonly backend = "openssl";
  private readonly ctx: number;
  private readonly enc: number;
  /** nonce(12) | pad(4) | outl(4) | pad | scratch(32): an ArrayBuffer-backed array never moves. */
  private readonly scratch = new Uint8Array(new ArrayBuffer(64));
  private readonly scratchAddr: number;
  private readonly outlAddr: number;
  private readonly finalAddr: number;

  constructor(cipher: CipherName, key: Uint8Array, encrypt: boolean) {
    const lib = libcrypto();
    if (lib === null) throw new RangeError("libcrypto is not available");
    const f = lib.symbols;
    // u64_fast returns a number for any address below 2^53, which user-space addresses are.
    const evp = Number(cipher === "aes-128-gcm" ? f.EVP_aes_128_gcm() : cipher === "aes-256-gcm" ? f.EVP_aes_256_gcm() : f.EVP_chacha20_poly1305());
    const ctx = Number(f.EVP_CIPHER_CTX_new());
    if (evp === 0 || ctx === 0) throw new RangeError(`libcrypto has no ${cipher}`);
    this.ctx = ctx;
    freeCtx.register(this, ctx);
    this.enc = encrypt ? 1 : 0;
    this.scratchAddr = ptr(this.scratch);
    this.outlAddr = this.scratchAddr + 16;
    this.finalAddr = this.scratchAddr + 32;
    const k = new Uint8Array(new ArrayBuffer(key.length));
    k.set(key);
    const ok = f.EVP_CipherInit_ex(ctx, evp, 0, 0, 0, this.enc) === 1
      && f.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL.AEAD_SET_IVLEN, IV_LENGTH, 0) === 1
      && f.EVP_CipherInit_ex(ctx, 0, 0, ptr(k), 0, this.enc) === 1;
    k.fill(0);
    if (!ok) throw new RangeError(`libcrypto refused the ${cipher} key`);
  }

  private start(nonce: Uint8Array, aadAddr: number): void {
    const f = (libcrypto() as NonNullable<ReturnType<typeof libcrypto>>).symbols;
    this.scratch.set(nonce);
    if (f.EVP_CipherInit_ex(this.ctx, 0, 0, 0, this.scratchAddr, this.enc) !== 1
      || f.EVP_CipherUpdate(this.ctx, 0, this.outlAddr, aadAddr, RECORD_HEADER_LENGTH) !== 1) {
      throw new Error("libcrypto EVP_CipherInit_ex/AAD failed");
    }
  }

  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, type: number, out: Uint8Array, at: number): void {
    const f = (libcrypto() as NonNullable<ReturnType<typeof libcrypto>>).symbols;
    const n = pt.length;
    // Addresses right before the calls: see the note above.
    const bodyAddr = ptr(out) + at;
    let ptAddr = n > 0 ? ptr(pt) : bodyAddr;
    if (ptAddr !== bodyAddr && ptAddr < bodyAddr + n + 1 && ptAddr + n > bodyAddr) {
      // Overlapping but not in place (a caller's odd choice): move it into place first.
      out.set(pt, at);
      ptAddr = bodyAddr;
    }
    out[at + n] = type;
    this.start(nonce, ptr(aad));
    const ok = ptAddr === bodyAddr
      // In place: the plaintext is already where the body goes; one pass over pt || type.
      ? f.EVP_CipherUpdate(this.ctx, bodyAddr, this.outlAddr, bodyAddr, n + 1) === 1
      // Encrypt straight from the caller's plaintext into the record: the only pass over it.
      : f.EVP_CipherUpdate(this.ctx, bodyAddr, this.outlAddr, ptAddr, n) === 1
        && f.EVP_CipherUpdate(this.ctx, bodyAddr + n, this.outlAddr, bodyAddr + n, 1) === 1;
    if (!ok || f.EVP_CipherFinal_ex(this.ctx, this.finalAddr, this.outlAddr) !== 1
      || f.EVP_CIPHER_CTX_ctrl(this.ctx, EVP_CTRL.AEAD_GET_TAG, RECORD_TAG_LENGTH, bodyAddr + n + 1) !== 1) {
      throw new Error("libcrypto failed to seal a record");
    }
  }

  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): Uint8Array | null {
    // Whole-record API (tests, cold paths): copy, then decrypt the copy in place.
    const rec = new Uint8Array(new ArrayBuffer(RECORD_HEADER_LENGTH + body.length));
    rec.set(aad);
    rec.set(body, RECORD_HEADER_LENGTH);
    return this.openInPlace(nonce, rec) ? rec.subarray(RECORD_HEADER_LENGTH, rec.length - RECORD_TAG_LENGTH) : null;
  }

  openInPlace(nonce: Uint8Array, record: Uint8Array): boolean {
    const f = (libcrypto() as NonNullable<ReturnType<typeof libcrypto>>).symbols;
    const n = record.length - RECORD_HEADER_LENGTH - RECORD_TAG_LENGTH;
    const base = ptr(record);
    this.start(nonce, base);
    const body = base + RECORD_HEADER_LENGTH;
    if (f.EVP_CipherUpdate(this.ctx, body, this.outlAddr, body, n) !== 1
      || f.EVP_CIPHER_CTX_ctrl(this.ctx, EVP_CTRL.AEAD_SET_TAG, RECORD_TAG_LENGTH, body + n) !== 1) {
      throw new Error("libcrypto failed to open a record");
    }
    return f.EVP_CipherFinal_ex(this.ctx, this.finalAddr, this.outlAddr) === 1;
  }
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

  constructor(cipher: CipherName, key: Uint8Array, iv: Uint8Array, options: RecordKeyOptions, backend: AeadBackend | boolean, encrypt: boolean) {
    if (!CIPHERS.includes(cipher)) throw new RangeError(`unknown cipher ${String(cipher)}`);
    if (key.length !== CIPHER_KEY_LENGTH[cipher]) {
      throw new RangeError(`${cipher} needs a ${CIPHER_KEY_LENGTH[cipher]}-byte key, got ${key.length}`);
    }
    checkIv(iv);
    const seq = options.seq ?? 0n;
    if (seq < 0n || seq >= TWO_64) throw new RangeError("record sequence number must fit in 64 bits");
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS_PER_KEY;
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) throw new RangeError("maxRecords must be a positive integer");
    this.aead = makeAead(cipher, key, resolveBackend(cipher, backend), encrypt);
    this.nonce = iv.slice();
    this.nonceView = new DataView(this.nonce.buffer);
    this.ivHi = this.nonceView.getUint32(4);
    this.ivLo = this.nonceView.getUint32(8);
    this.seqHi = Number(seq >> 32n);
    this.seqLo = Number(seq & 0xffffffffn);
    this.maxRecords = maxRecords;
  }

  /** The AEAD back end this key runs on. */
  get backend(): ResolvedAeadBackend {
    return this.aead.backend;
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
  /**
   * `backend` is for tests and benchmarks ("auto" otherwise); `true` is the old spelling of
   * "portable" (the pure-TS ChaCha even where a native one exists).
   */
  constructor(cipher: CipherName, key: Uint8Array, iv: Uint8Array, options: RecordKeyOptions = {}, backend: AeadBackend | boolean = "auto") {
    super(cipher, key, iv, options, backend, true);
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
  private carry: Uint8Array = new Uint8Array(RECORD_HEADER_LENGTH + MAX_RECORD_CIPHERTEXT);
  /**
   * pushInPlace: the previous carry, still holding the plaintext of the record it last
   * completed (a view handed out), while `carry` takes the next partial record.
   */
  private carrySpare: Uint8Array | undefined;
  private carryLength = 0;
  /** Full length (header included) of the record in `carry`, 0 until its header is complete. */
  private carryExpect = 0;
  /** First error seen; the stream is dead after it and every later call rethrows it. */
  private failure: ProtocolError | undefined;

  constructor(cipher: CipherName, key: Uint8Array, iv: Uint8Array, options: RecordKeyOptions = {}, backend: AeadBackend | boolean = "auto") {
    super(cipher, key, iv, options, backend, false);
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
    return this.guard(() => this.pushStream(chunk, false));
  }

  /**
   * Like push(), without a copy where the back end allows it (openssl): complete records
   * are decrypted inside `chunk` itself, which this overwrites, and each returned `data`
   * is a view of `chunk` or of this opener's carry buffer. Those views stay valid until
   * the next push or pushInPlace and for as long as the caller leaves `chunk` alone. Other
   * back ends return fresh buffers, which satisfies the same contract.
   */
  pushInPlace(chunk: Uint8Array): OpenedRecord[] {
    return this.guard(() => this.pushStream(chunk, true));
  }

  /** Whether pushInPlace really decrypts in place (no buffer allocated per record). */
  get opensInPlace(): boolean {
    return this.aead.openInPlace !== undefined;
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
    return this.openChecked(record, false);
  }

  private openChecked(record: Uint8Array, inPlace: boolean): OpenedRecord {
    if (this.limitReached()) throw new KeyUsageLimitError("open", this.count);
    let inner: Uint8Array | null;
    if (inPlace && this.aead.openInPlace !== undefined) {
      inner = this.aead.openInPlace(this.currentNonce(), record)
        ? record.subarray(RECORD_HEADER_LENGTH, record.length - RECORD_TAG_LENGTH)
        : null;
    } else {
      inner = this.aead.open(this.currentNonce(), record.subarray(0, RECORD_HEADER_LENGTH), record.subarray(RECORD_HEADER_LENGTH));
    }
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

  private pushStream(chunk: Uint8Array, inPlace: boolean): OpenedRecord[] {
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
        out.push(this.openChecked(record, inPlace));
        if (inPlace && this.aead.openInPlace !== undefined) {
          // The record's plaintext is a view of `carry`: a later partial record in this
          // chunk must not overwrite it, so it goes to the other buffer.
          const used = this.carry;
          this.carry = this.carrySpare ?? new Uint8Array(used.length);
          this.carrySpare = used;
        }
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
      out.push(this.openChecked(chunk.subarray(p, p + total), inPlace));
      p += total;
    }
    return out;
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}
