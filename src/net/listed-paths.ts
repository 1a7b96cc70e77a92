/**
 * The set of paths the sender listed, for the receiver's --delete pass (docs/PROTOCOL.md
 * 8.7, DELETE), in memory that stays small at millions of entries.
 *
 * Owns: a 64-bit hash of each listed relative path's UTF-8 bytes (two 32-bit lanes, seeded
 * at random per set; a path can be looked up as a string or as bytes), kept in an open-addressing table of Uint32 pairs with linear probing: 8 bytes per
 * slot, at most 0.7 full, so 11-23 bytes per listed path instead of the ~150 a Set of
 * strings costs (issue 5: a million files under 300 MB). The strings themselves are not
 * kept.
 *
 * Why a hash is safe here: `has` can only be wrong one way. Two different paths with the
 * same 64 bits make `has` answer true for a path that was never listed, so the delete
 * pass KEEPS an entry it should have removed; it can never answer false for a listed
 * path, so nothing listed is ever deleted. With random 64-bit hashes the chance that any
 * of n unlisted DST entries collides with one of m listed paths is about n*m / 2^64
 * (5e-8 for a million each). A sender choosing colliding names could only make the
 * receiver keep files, which listing them would do anyway; the random seeds keep it from
 * steering many paths into one probe chain.
 *
 * Must never: answer false for a path that was added.
 */

const MIN_SLOTS = 1024;
/** Grow when more than 7/10 of the slots are used. */
const LOAD_NUM = 7;
const LOAD_DEN = 10;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** The final avalanche of MurmurHash3 (every input bit affects every output bit). */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function randomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

export class ListedPaths {
  /** Slot i is keys[2i] (lane a, also the probe start), keys[2i+1] (lane b); 0,0 = empty. */
  private keys: Uint32Array;
  private mask: number;
  private count = 0;
  private readonly seedA = randomU32();
  private readonly seedB = randomU32();
  /** The hash of the last path given to hash(), as two lanes. */
  private a = 0;
  private b = 0;

  constructor(slots = MIN_SLOTS) {
    let n = MIN_SLOTS;
    while (n < slots) n *= 2;
    this.keys = new Uint32Array(2 * n);
    this.mask = n - 1;
  }

  /** Distinct paths added (a colliding pair counts once). */
  get size(): number {
    return this.count;
  }

  /** Bytes the table holds (for tests and measurements). */
  get bytes(): number {
    return this.keys.byteLength;
  }

  add(rel: string): void {
    this.hashString(rel);
    if (this.find() >= 0) return;
    if ((this.count + 1) * LOAD_DEN > (this.mask + 1) * LOAD_NUM) this.grow();
    this.insert(this.a, this.b);
    this.count++;
  }

  /** True if `rel` was added; rarely (a 64-bit collision) also for one that was not. */
  has(rel: string): boolean {
    this.hashString(rel);
    return this.find() >= 0;
  }

  /**
   * As has(), for a path given as its bytes `buf[0, len)` (the delete pass builds DST
   * paths from raw names without making strings). A path added as a string matches its
   * UTF-8 encoding; bytes that are not valid UTF-8 match no added path.
   */
  hasBytes(buf: Uint8Array, len: number): boolean {
    this.begin();
    for (let i = 0; i < len; i++) this.step(buf[i]);
    this.end(len);
    return this.find() >= 0;
  }

  /** Forgets everything and gives the memory back. */
  clear(): void {
    this.keys = new Uint32Array(2 * MIN_SLOTS);
    this.mask = MIN_SLOTS - 1;
    this.count = 0;
  }

  /*
   * The hash: two MurmurHash3-style lanes over the path's UTF-8 bytes, with different
   * seeds and constants, then the length, then the final mix. Never 0,0 (the empty slot).
   */

  private begin(): void {
    this.a = this.seedA;
    this.b = this.seedB;
  }

  private step(byte: number): void {
    this.a ^= Math.imul(rotl(Math.imul(byte, 0xcc9e2d51), 15), 0x1b873593);
    this.a = (Math.imul(rotl(this.a, 13), 5) + 0xe6546b64) | 0;
    this.b ^= Math.imul(rotl(Math.imul(byte, 0x239b961b), 17), 0xab0e9789);
    this.b = (Math.imul(rotl(this.b, 15), 3) + 0x38b34ae5) | 0;
  }

  private end(len: number): void {
    const a = fmix(this.a ^ len);
    const b = fmix(this.b ^ Math.imul(len, 0x9e3779b1));
    this.a = a;
    this.b = a === 0 && b === 0 ? 1 : b;
  }

  /** The hash of the UTF-8 encoding of `s` (as TextEncoder: a lone surrogate is U+FFFD), without encoding it. */
  private hashString(s: string): void {
    this.begin();
    let len = 0;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        this.step(c);
        len += 1;
        continue;
      }
      if (c < 0x800) {
        this.step(0xc0 | (c >> 6));
        this.step(0x80 | (c & 0x3f));
        len += 2;
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          this.step(0xf0 | (cp >> 18));
          this.step(0x80 | ((cp >> 12) & 0x3f));
          this.step(0x80 | ((cp >> 6) & 0x3f));
          this.step(0x80 | (cp & 0x3f));
          len += 4;
          i++;
          continue;
        }
        c = 0xfffd;
      }
      this.step(0xe0 | (c >> 12));
      this.step(0x80 | ((c >> 6) & 0x3f));
      this.step(0x80 | (c & 0x3f));
      len += 3;
    }
    this.end(len);
  }

  /** The slot holding the last hash, or -1. */
  private find(): number {
    const k = this.keys;
    for (let i = this.a & this.mask; ; i = (i + 1) & this.mask) {
      const ka = k[2 * i];
      const kb = k[2 * i + 1];
      if (ka === 0 && kb === 0) return -1;
      if (ka === this.a && kb === this.b) return i;
    }
  }

  private insert(a: number, b: number): void {
    const k = this.keys;
    let i = a & this.mask;
    while (k[2 * i] !== 0 || k[2 * i + 1] !== 0) i = (i + 1) & this.mask;
    k[2 * i] = a;
    k[2 * i + 1] = b;
  }

  private grow(): void {
    const old = this.keys;
    this.keys = new Uint32Array(2 * old.length);
    this.mask = old.length - 1;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.insert(old[i], old[i + 1]);
    }
  }
}
