/**
 * CPace over ristretto255 with SHA-512 (draft-irtf-cfrg-cpace, cipher suite
 * CPACE-RISTR255-SHA512), the balanced PAKE behind uring-sync's handshake.
 *
 * Owns: the generator derived from the shared secret, the ephemeral scalar, the public
 * share, and the intermediate session key (ISK) computed from the peer's share.
 * Must never: put the secret (PRS) or the scalar in anything it returns other than
 * through the generator and ISK, expose the Diffie-Hellman point K (it would allow an
 * offline dictionary attack), accept the identity or an invalid encoding as a peer share,
 * or compute an ISK twice from one scalar.
 *
 * Encoding follows the draft exactly (LEB128 length prefixes, generator_string with zero
 * padding to the SHA-512 block, transcript_ir for the initiator-responder setting) and is
 * checked against the draft's ristretto255 test vectors in tests/net/pake.test.ts.
 * Key confirmation and key derivation are the caller's business (see handshake.ts).
 */
import { ristretto255, ristretto255_hasher } from "@noble/curves/ed25519.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { concatBytes } from "@noble/hashes/utils.js";
import { ProtocolError } from "../errors.ts";

type Point = InstanceType<typeof ristretto255.Point>;

/** G_Ristretto255.DSI */
export const CPACE_DSI = new TextEncoder().encode("CPaceRistretto255");
/** G.DSI || "_ISK" */
const CPACE_DSI_ISK = new TextEncoder().encode("CPaceRistretto255_ISK");
/** SHA-512 input block size (H.s_in_bytes): the padding keeps PRS alone in the first block. */
const SHA512_BLOCK = 128;
/** Encoded group elements (shares) are 32 bytes. */
export const CPACE_SHARE_LENGTH = 32;

const ORDER = ristretto255.Point.Fn.ORDER;

/** prepend_len: LEB128 length, then the bytes. */
export function prependLen(data: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = data.length;
  do {
    const low = n & 0x7f;
    n = Math.floor(n / 128);
    len.push(n > 0 ? low | 0x80 : low);
  } while (n > 0);
  const out = new Uint8Array(len.length + data.length);
  out.set(len, 0);
  out.set(data, len.length);
  return out;
}

/** lv_cat: concatenation of prepend_len of every argument. */
export function lvCat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(...parts.map(prependLen));
}

/** generator_string(DSI, PRS, CI, sid, s_in_bytes) from the draft. */
export function generatorString(dsi: Uint8Array, prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  const zpad = Math.max(0, SHA512_BLOCK - 1 - prependLen(prs).length - prependLen(dsi).length);
  return lvCat(dsi, prs, new Uint8Array(zpad), ci, sid);
}

/** transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) || lv_cat(Yb, ADb); A is the initiator. */
export function transcriptIr(ya: Uint8Array, ada: Uint8Array, yb: Uint8Array, adb: Uint8Array): Uint8Array {
  return concatBytes(lvCat(ya, ada), lvCat(yb, adb));
}

function calculateGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Point {
  // RFC 9496 element derivation from 64 uniform bytes (noble calls it deriveToCurve).
  return ristretto255_hasher.deriveToCurve!(sha512(generatorString(CPACE_DSI, prs, ci, sid)));
}

/** Encoded generator for (PRS, CI, sid); exposed only so tests can check the draft's vectors. */
export function cpaceGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  return calculateGenerator(prs, ci, sid).toBytes();
}

/**
 * G.sample_scalar as the draft recommends for ristretto255: 32 random bytes with the bits
 * above 2^252 cleared, read little-endian. Zero is re-drawn (it would make the share the
 * identity, which the peer rejects).
 */
function sampleScalar(): bigint {
  for (;;) {
    const b = crypto.getRandomValues(new Uint8Array(32));
    b[31] &= 0x0f;
    const y = leToBigint(b);
    if (y !== 0n) return y;
  }
}

function leToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

/** Decodes a peer share, rejecting bad encodings and the identity (scalar_mult_vfy). */
function decodeShare(share: Uint8Array): Point {
  if (share.length !== CPACE_SHARE_LENGTH) {
    throw new ProtocolError("auth", `invalid CPace share: ${share.length} bytes, expected ${CPACE_SHARE_LENGTH}`);
  }
  let p: Point;
  try {
    p = ristretto255.Point.fromBytes(share);
  } catch {
    throw new ProtocolError("auth", "invalid CPace share: not a canonical ristretto255 encoding");
  }
  if (p.is0()) throw new ProtocolError("auth", "invalid CPace share: identity element");
  return p;
}

export interface CpaceSession {
  /** Our public share Y = y·g, 32 bytes, to send to the peer. */
  readonly share: Uint8Array;
  /**
   * K = y·Y_peer, then ISK = SHA-512(lv_cat(DSI_ISK, sid, K) || transcript).
   * `transcript` must be the same bytes on both sides: use transcriptIr(Ya, ADa, Yb, ADb)
   * with the initiator's share and data first. Callable once.
   */
  finish(peerShare: Uint8Array, transcript: Uint8Array): Uint8Array;
}

/**
 * Starts one CPace run. `secret` is the PRS, `sid` must be unique per session (both
 * nonces), `ci` names the channel/protocol. `testScalar` (little-endian) exists only for
 * the draft's test vectors: never pass it in production.
 */
export function cpaceStart(secret: Uint8Array, sid: Uint8Array, ci: Uint8Array, testScalar?: Uint8Array): CpaceSession {
  const g = calculateGenerator(secret, ci, sid);
  let y: bigint | undefined = testScalar === undefined ? sampleScalar() : leToBigint(testScalar) % ORDER;
  if (y === 0n) throw new RangeError("CPace scalar must not be zero");
  const share = g.multiply(y).toBytes();
  return {
    share,
    finish(peerShare: Uint8Array, transcript: Uint8Array): Uint8Array {
      if (y === undefined) throw new RangeError("CPace session already finished");
      const scalar = y;
      // Forget the scalar before anything can throw: one scalar, one attempt.
      y = undefined;
      const k = decodeShare(peerShare).multiply(scalar);
      // Cannot happen in a prime-order group with y != 0 and Y != I, but the draft says abort.
      if (k.is0()) throw new ProtocolError("auth", "CPace produced the identity element");
      return sha512(concatBytes(lvCat(CPACE_DSI_ISK, sid, k.toBytes()), transcript));
    },
  };
}


/**
 * One CPace run between two throwaway sessions with a random secret: JIT-compiles the curve
 * arithmetic ahead of a real handshake (a receiver does this while it waits). Derives nothing
 * that is kept; both scalars are discarded.
 */
export function warmUpPake(): void {
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const sid = crypto.getRandomValues(new Uint8Array(16));
  const ci = new TextEncoder().encode("uring-sync warm-up");
  const a = cpaceStart(secret, sid, ci);
  const b = cpaceStart(secret, sid, ci);
  a.finish(b.share, new Uint8Array(0));
}
