/**
 * The uring-sync handshake as a pure state machine over bytes.
 *
 * Owns: the plaintext handshake messages (HELLO, SHARE, CONFIRM), option checks, the
 * CPace run (pake.ts), the transcript, explicit key confirmation in both directions and
 * the key schedule that yields per-direction record keys and IVs.
 *
 * Must never: send the secret or anything computed from it other than the CPace share and
 * the confirmation MAC, report success before the peer's confirmation MAC has verified,
 * read more bytes than the handshake needs when the caller asks (kTLS: bytes read into
 * user space are never decrypted by the kernel), allocate by a peer-supplied length, or
 * throw anything but ProtocolError on peer input. It never touches sockets or timers: the
 * transport moves the bytes and enforces the 10 s handshake timeout.
 *
 * Driving it (both sides alike):
 *   const hs = new Handshake({ role, secret, cipher, plaintext });
 *   loop: send every hs.nextOutgoing() until null;
 *         if hs.done: break;
 *         read exactly hs.bytesNeeded() bytes (kTLS) or any amount, then hs.receive(bytes)
 *         (which returns how many it consumed; the rest belongs to the record layer).
 *   const keys = hs.result();
 *   on a ProtocolError from receive(): still send what nextOutgoing() returns, then close.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes } from "@noble/hashes/utils.js";
import { timingSafeEqual } from "node:crypto";
import { ProtocolError, UsageError } from "../errors.ts";
import { CPACE_SHARE_LENGTH, cpaceStart, transcriptIr, type CpaceSession } from "./pake.ts";
import { CIPHER_KEY_LENGTH, CIPHERS, IV_LENGTH, type CipherName } from "./record.ts";

export type HandshakeRole = "client" | "server";

/** Protocol version spoken here; HELLO carries it right after the magic. */
export const PROTOCOL_VERSION = 1;
/** Handshake message header: type u8 | body length u16 BE. */
export const HS_HEADER_LENGTH = 3;
/** Hard cap on any handshake body, checked on the header before reading the body. */
export const HS_MAX_BODY = 512;
export const HS_TYPE_HELLO = 1;
export const HS_TYPE_SHARE = 2;
export const HS_TYPE_CONFIRM = 3;

const MAGIC = new TextEncoder().encode("USYNC");
/** magic(5) version(2) role(1) nonce(32) cipher(1) plaintext(1) flags(4) */
export const HELLO_BODY_LENGTH = 46;
const NONCE_LENGTH = 32;
const CONFIRM_LENGTH = 32;
/** HELLO role byte: the client is the sender of files, the server the receiver. */
const ROLE_ID: Readonly<Record<HandshakeRole, number>> = { client: 1, server: 2 };
/** Wire ids of the ciphers, in CIPHERS order starting at 1. */
export const CIPHER_ID: Readonly<Record<CipherName, number>> = {
  "aes-128-gcm": 1,
  "aes-256-gcm": 2,
  "chacha20-poly1305": 3,
};
/** CPace channel identifier: protocol name and version. */
export const CPACE_CI = new TextEncoder().encode(`uring-sync/${PROTOCOL_VERSION}`);

export const AUTH_FAILED_MESSAGE = "authentication failed: wrong secret (or a peer that is not uring-sync)";

export interface HandshakeConfig {
  role: HandshakeRole;
  /** The shared secret (CPace PRS); see secretFromString. Never sent. */
  secret: Uint8Array;
  /** Record cipher; both ends must be configured alike. Default aes-128-gcm. */
  cipher?: CipherName;
  /** Authenticate but do not encrypt the data stream; both ends must agree. Default false. */
  plaintext?: boolean;
  /** Our option bits (u32), sent in HELLO and bound into the keys. Default 0. */
  flags?: number;
  /** Option bits we understand from the peer; any other bit set by the peer fails the handshake. Default 0. */
  acceptPeerFlags?: number;
  /**
   * Deterministic randomness for test vectors only: supplies the 32-byte nonce and then
   * the 32 bytes of the CPace scalar. Never set it in production; the default is
   * crypto.getRandomValues for the nonce and pake.ts's own sampling for the scalar.
   */
  randomBytes?: (n: number) => Uint8Array;
}

export interface TrafficKeys {
  /** 16 bytes (aes-128-gcm) or 32 bytes (aes-256-gcm, chacha20-poly1305). */
  key: Uint8Array;
  /** 12 bytes; kTLS GCM takes salt = iv[0..4], iv = iv[4..12]; ChaCha takes all 12. */
  iv: Uint8Array;
}

export interface HandshakeResult {
  cipher: CipherName;
  /** Keys for the records this side sends. */
  tx: TrafficKeys;
  /** Keys for the records this side receives. */
  rx: TrafficKeys;
  /** Both ends asked for an unencrypted (but authenticated-at-start) data stream. */
  plaintext: boolean;
  flags: number;
  peerFlags: number;
  /** SHA-256 of the whole handshake transcript: public, unique per session, fit for logs. */
  sessionId: Uint8Array;
}

/** The secret as CPace input: Unicode NFC, then UTF-8, so "é" typed either way matches. */
export function secretFromString(secret: string): Uint8Array {
  if (secret.length === 0) throw new UsageError("the shared secret must not be empty");
  return new TextEncoder().encode(secret.normalize("NFC"));
}

type State = "hello" | "share" | "confirm" | "done" | "failed";

const EXPECTED: Readonly<Record<"hello" | "share" | "confirm", { type: number; name: string }>> = {
  hello: { type: HS_TYPE_HELLO, name: "HELLO" },
  share: { type: HS_TYPE_SHARE, name: "SHARE" },
  confirm: { type: HS_TYPE_CONFIRM, name: "CONFIRM" },
};

interface ParsedHello {
  role: number;
  nonce: Uint8Array;
  cipher: CipherName;
  plaintext: boolean;
  flags: number;
}

/** One side of one handshake. Not reusable: a new session needs a new object. */
export class Handshake {
  private readonly role: HandshakeRole;
  private secret: Uint8Array;
  private readonly cipher: CipherName;
  private readonly plaintext: boolean;
  private readonly flags: number;
  private readonly acceptPeerFlags: number;
  private readonly nonce: Uint8Array;
  private readonly testRandom: ((n: number) => Uint8Array) | undefined;
  private readonly outgoing: Uint8Array[] = [];

  private state: State = "hello";
  private failure: ProtocolError | undefined;
  /** Fixed buffer for one incoming message: never sized by the peer. */
  private readonly inbuf = new Uint8Array(HS_HEADER_LENGTH + HS_MAX_BODY);
  private inFill = 0;
  private inBody = -1;

  // Transcript pieces, each a whole framed message exactly as sent or received.
  private myHello: Uint8Array;
  private peerHello: Uint8Array | undefined;
  private myShare: Uint8Array | undefined;
  private peerFlags = 0;
  private cpace: CpaceSession | undefined;
  private transcriptHash: Uint8Array | undefined;
  private peerConfirmKey: Uint8Array | undefined;
  private keys: { tx: TrafficKeys; rx: TrafficKeys } | undefined;

  constructor(config: HandshakeConfig) {
    if (config.role !== "client" && config.role !== "server") throw new UsageError(`bad handshake role ${String(config.role)}`);
    if (config.secret.length === 0) throw new UsageError("the shared secret must not be empty");
    const cipher = config.cipher ?? "aes-128-gcm";
    if (!CIPHERS.includes(cipher)) throw new UsageError(`unknown cipher ${String(cipher)}`);
    const flags = config.flags ?? 0;
    const accept = config.acceptPeerFlags ?? 0;
    for (const [name, v] of [["flags", flags], ["acceptPeerFlags", accept]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new UsageError(`handshake ${name} must be a u32`);
    }
    this.role = config.role;
    this.secret = config.secret.slice();
    this.cipher = cipher;
    this.plaintext = config.plaintext ?? false;
    this.flags = flags;
    this.acceptPeerFlags = accept;
    this.testRandom = config.randomBytes;
    this.nonce = (this.testRandom ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n))))(NONCE_LENGTH);
    if (this.nonce.length !== NONCE_LENGTH) throw new RangeError("randomBytes returned the wrong length");
    // Both ends send HELLO at once, before hearing from the peer, so an option mismatch
    // is detected by both, each with its own clear message, and never hangs.
    this.myHello = frame(HS_TYPE_HELLO, this.encodeHello());
    this.outgoing.push(this.myHello);
  }

  /** True once the peer's confirmation verified; result() is then available. */
  get done(): boolean {
    return this.state === "done";
  }

  /**
   * Next framed message to send, or null when nothing is pending. Keep sending these even
   * after receive() has thrown: a message queued before the failure (typically our
   * CONFIRM, queued while the same chunk carried the peer's bad CONFIRM) lets the peer
   * reach the same precise error instead of a timeout. Then close.
   */
  nextOutgoing(): Uint8Array | null {
    return this.outgoing.shift() ?? null;
  }

  /**
   * Exactly how many more bytes complete the next header or body; 0 when done or failed.
   * A kTLS transport reads exactly this much so it never swallows record bytes.
   */
  bytesNeeded(): number {
    if (this.state === "done" || this.state === "failed") return 0;
    if (this.inBody < 0) return HS_HEADER_LENGTH - this.inFill;
    return HS_HEADER_LENGTH + this.inBody - this.inFill;
  }

  /**
   * Feeds received bytes; returns how many were consumed. It stops consuming when the
   * handshake completes: the remaining bytes are the peer's first records. Throws
   * ProtocolError on anything wrong; after that every call rethrows the same error.
   */
  receive(bytes: Uint8Array): number {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.consume(bytes);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.failure = e;
        this.state = "failed";
        this.secret.fill(0);
        this.cpace = undefined;
      }
      throw e;
    }
  }

  /** Negotiated keys; throws unless done. */
  result(): HandshakeResult {
    if (this.state !== "done" || this.keys === undefined || this.transcriptHash === undefined) {
      throw new ProtocolError("state", "handshake is not complete");
    }
    return {
      cipher: this.cipher,
      tx: this.keys.tx,
      rx: this.keys.rx,
      plaintext: this.plaintext,
      flags: this.flags,
      peerFlags: this.peerFlags,
      sessionId: this.transcriptHash.slice(),
    };
  }

  // ---------------------------------------------------------------------------------

  private consume(bytes: Uint8Array): number {
    let used = 0;
    while (used < bytes.length && this.state !== "done") {
      if (this.inBody < 0) {
        const take = Math.min(HS_HEADER_LENGTH - this.inFill, bytes.length - used);
        this.inbuf.set(bytes.subarray(used, used + take), this.inFill);
        this.inFill += take;
        used += take;
        if (this.inFill < HS_HEADER_LENGTH) break;
        this.inBody = this.checkHeader(this.inbuf[0], (this.inbuf[1] << 8) | this.inbuf[2]);
      }
      const want = HS_HEADER_LENGTH + this.inBody;
      const take = Math.min(want - this.inFill, bytes.length - used);
      this.inbuf.set(bytes.subarray(used, used + take), this.inFill);
      this.inFill += take;
      used += take;
      if (this.inFill < want) break;
      const message = this.inbuf.slice(0, want);
      this.inFill = 0;
      this.inBody = -1;
      this.process(message);
    }
    return used;
  }

  /** Validates type and length for the current state; returns the body length. */
  private checkHeader(type: number, length: number): number {
    const state = this.state as "hello" | "share" | "confirm";
    const expected = EXPECTED[state];
    if (type !== expected.type) {
      if (state === "hello") {
        throw new ProtocolError(
          "frame",
          `peer does not speak the uring-sync protocol (first bytes ${hex(this.inbuf.subarray(0, HS_HEADER_LENGTH))})`,
        );
      }
      throw new ProtocolError("frame", `unexpected handshake message type ${type} while waiting for ${expected.name}`);
    }
    if (length > HS_MAX_BODY) throw new ProtocolError("frame", `handshake message of ${length} bytes exceeds ${HS_MAX_BODY}`);
    // HELLO may be longer in a later version: read it whole so the version check can run.
    const ok = state === "hello" ? length >= MAGIC.length + 2 : length === (state === "share" ? CPACE_SHARE_LENGTH : CONFIRM_LENGTH);
    if (!ok) throw new ProtocolError("frame", `handshake ${expected.name} has bad length ${length}`);
    return length;
  }

  private process(message: Uint8Array): void {
    const body = message.subarray(HS_HEADER_LENGTH);
    switch (this.state) {
      case "hello":
        return this.onHello(message, body);
      case "share":
        return this.onShare(message, body);
      case "confirm":
        return this.onConfirm(body);
      default:
        throw new ProtocolError("state", `handshake message in state ${this.state}`);
    }
  }

  private encodeHello(): Uint8Array {
    const b = new Uint8Array(HELLO_BODY_LENGTH);
    const v = new DataView(b.buffer);
    b.set(MAGIC, 0);
    v.setUint16(5, PROTOCOL_VERSION);
    b[7] = ROLE_ID[this.role];
    b.set(this.nonce, 8);
    b[40] = CIPHER_ID[this.cipher];
    b[41] = this.plaintext ? 1 : 0;
    v.setUint32(42, this.flags);
    return b;
  }

  private parseHello(body: Uint8Array): ParsedHello {
    for (let i = 0; i < MAGIC.length; i++) {
      if (body[i] !== MAGIC[i]) throw new ProtocolError("frame", "peer does not speak the uring-sync protocol (bad HELLO magic)");
    }
    const v = new DataView(body.buffer, body.byteOffset, body.length);
    const version = v.getUint16(5);
    if (version !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        "version",
        `peer speaks uring-sync protocol version ${version}, this side speaks version ${PROTOCOL_VERSION}: use the same uring-sync version on both ends`,
      );
    }
    if (body.length !== HELLO_BODY_LENGTH) throw new ProtocolError("frame", `HELLO has bad length ${body.length}`);
    const role = body[7];
    if (role !== ROLE_ID.client && role !== ROLE_ID.server) throw new ProtocolError("frame", `HELLO has unknown role ${role}`);
    const cipherId = body[40];
    const cipher = CIPHERS[cipherId - 1];
    if (cipher === undefined) throw new ProtocolError("options", `peer asked for cipher id ${cipherId}, unknown to this version`);
    const plaintextByte = body[41];
    if (plaintextByte > 1) throw new ProtocolError("frame", `HELLO has bad plaintext flag ${plaintextByte}`);
    return { role, nonce: body.slice(8, 40), cipher, plaintext: plaintextByte === 1, flags: v.getUint32(42) };
  }

  private onHello(message: Uint8Array, body: Uint8Array): void {
    const peer = this.parseHello(body);
    // Each side checks the peer's options against its own, so both report the mismatch.
    if (peer.role === ROLE_ID[this.role]) {
      const what = this.role === "client" ? "senders (clients)" : "receivers (servers)";
      throw new ProtocolError("options", `option mismatch: both ends are ${what}`);
    }
    if (peer.plaintext !== this.plaintext) {
      const mine = this.plaintext ? "plaintext" : "encryption";
      const theirs = peer.plaintext ? "plaintext" : "encryption";
      throw new ProtocolError("options", `option mismatch: this side uses ${mine}, the peer uses ${theirs} (use --plaintext on both ends or on neither)`);
    }
    if (peer.cipher !== this.cipher) {
      throw new ProtocolError("options", `option mismatch: this side uses cipher ${this.cipher}, the peer uses ${peer.cipher} (use the same cipher on both ends)`);
    }
    const unknown = (peer.flags & ~this.acceptPeerFlags) >>> 0;
    if (unknown !== 0) {
      throw new ProtocolError("options", `peer requested options this side does not support (flag bits 0x${unknown.toString(16)})`);
    }
    this.peerFlags = peer.flags;
    this.peerHello = message;
    const sid = this.role === "client" ? concatBytes(this.nonce, peer.nonce) : concatBytes(peer.nonce, this.nonce);
    let testScalar: Uint8Array | undefined;
    if (this.testRandom !== undefined) {
      testScalar = this.testRandom(32).slice();
      testScalar[31] &= 0x0f; // same shape as pake.ts's sampling: below 2^252
    }
    this.cpace = cpaceStart(this.secret, sid, CPACE_CI, testScalar);
    // The generator is all the secret was needed for; do not keep it around.
    this.secret.fill(0);
    this.secret = new Uint8Array(0);
    this.myShare = frame(HS_TYPE_SHARE, this.cpace.share);
    this.outgoing.push(this.myShare);
    this.state = "share";
  }

  private onShare(message: Uint8Array, body: Uint8Array): void {
    const { cpace, myShare, peerHello } = this;
    if (cpace === undefined || myShare === undefined || peerHello === undefined) throw new ProtocolError("state", "SHARE before HELLO");
    const client = this.role === "client";
    const [helloC, helloS] = client ? [this.myHello, peerHello] : [peerHello, this.myHello];
    const [shareC, shareS] = client ? [myShare, message] : [message, myShare];
    const myY = myShare.subarray(HS_HEADER_LENGTH);
    const [yc, ys] = client ? [myY, body] : [body, myY];
    // CPace initiator-responder transcript: the client is A, each HELLO is that side's AD.
    const isk = cpace.finish(body, transcriptIr(yc, helloC, ys, helloS));
    this.cpace = undefined;
    // Everything sent so far, in a fixed order; each piece is self-delimiting (framed).
    const th = sha256(concatBytes(helloC, helloS, shareC, shareS));
    const prk = extract(sha256, isk, th);
    const keyLength = CIPHER_KEY_LENGTH[this.cipher];
    const okm = (label: string, length: number): Uint8Array => expand(sha256, prk, new TextEncoder().encode(label), length);
    const c2s: TrafficKeys = { key: okm("usync c2s key", keyLength), iv: okm("usync c2s iv", IV_LENGTH) };
    const s2c: TrafficKeys = { key: okm("usync s2c key", keyLength), iv: okm("usync s2c iv", IV_LENGTH) };
    const c2sConfirm = okm("usync c2s confirm", CONFIRM_LENGTH);
    const s2cConfirm = okm("usync s2c confirm", CONFIRM_LENGTH);
    isk.fill(0);
    prk.fill(0);
    this.transcriptHash = th;
    this.keys = client ? { tx: c2s, rx: s2c } : { tx: s2c, rx: c2s };
    // Different keys per direction: a reflected CONFIRM never verifies.
    const myConfirmKey = client ? c2sConfirm : s2cConfirm;
    this.peerConfirmKey = client ? s2cConfirm : c2sConfirm;
    this.outgoing.push(frame(HS_TYPE_CONFIRM, hmac(sha256, myConfirmKey, th)));
    myConfirmKey.fill(0);
    this.state = "confirm";
  }

  private onConfirm(body: Uint8Array): void {
    const { peerConfirmKey, transcriptHash } = this;
    if (peerConfirmKey === undefined || transcriptHash === undefined) throw new ProtocolError("state", "CONFIRM before SHARE");
    const expected = hmac(sha256, peerConfirmKey, transcriptHash);
    peerConfirmKey.fill(0);
    this.peerConfirmKey = undefined;
    if (!timingSafeEqual(expected, body)) {
      this.keys = undefined;
      throw new ProtocolError("auth", AUTH_FAILED_MESSAGE);
    }
    this.state = "done";
  }
}

function frame(type: number, body: Uint8Array): Uint8Array {
  const m = new Uint8Array(HS_HEADER_LENGTH + body.length);
  m[0] = type;
  m[1] = body.length >>> 8;
  m[2] = body.length & 0xff;
  m.set(body, HS_HEADER_LENGTH);
  return m;
}


function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}
