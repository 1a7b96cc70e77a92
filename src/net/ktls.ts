/**
 * Kernel TLS (kTLS) set-up on an established TCP socket, and the msghdr/cmsg buffers
 * for records of a non-data type.
 *
 * Owns: turning "TLS version + cipher + key + iv + record sequence" into the kernel's
 * `tls12_crypto_info_*` structs (layouts in ffi/structs.ts), the TCP_ULP / SOL_TLS
 * setsockopt calls, and building/parsing the msghdr + `TLS_SET_RECORD_TYPE` /
 * `TLS_GET_RECORD_TYPE` control messages. The msghdr helpers are pure (they only fill
 * and read caller-owned memory) so the network engine can hand the same buffers to
 * io_uring SENDMSG/RECVMSG.
 *
 * Must never: keep key material around (the struct is zeroed right after setsockopt),
 * print, retry, or decide policy (whether to fall back to userspace crypto is the
 * caller's call). Errors: UnsupportedError when the kernel has no TLS ULP at all,
 * SysError (errno name in `.code`) for every other refusal, RangeError for caller bugs
 * (wrong key or iv length, sequence number out of range, misaligned buffers).
 */
import { addressOf, cstr, errno, libc } from "../../ffi/libc.ts";
import { CMSGHDR, IOVEC, MSG, MSGHDR, SOL, TCP, TLS, TLS_CRYPTO_INFO } from "../../ffi/structs.ts";
import { SysError, UnsupportedError } from "../errors.ts";

export type KtlsVersion = "1.2" | "1.3";
export type KtlsCipher = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305" | "aes-128-ccm";
export type KtlsDirection = "tx" | "rx";

/** Every TLS version and cipher the kernel interface knows and this module can configure. */
export const KTLS_VERSIONS: readonly KtlsVersion[] = ["1.2", "1.3"];
export const KTLS_CIPHERS: readonly KtlsCipher[] = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305", "aes-128-ccm"];

export interface KtlsCryptoParams {
  version: KtlsVersion;
  cipher: KtlsCipher;
  /** 16 bytes for AES-128, 32 for AES-256 and ChaCha20. */
  key: Uint8Array;
  /** 12 bytes: salt(4) | iv(8) for GCM/CCM (split as the kernel wants it), all 12 for ChaCha20. */
  iv: Uint8Array;
  /** Sequence number of the next record (TLS 1.3 starts at 0 after a key change). */
  recSeq: bigint;
}

/** TLS record content types (RFC 8446 5.1). */
export const RECORD_TYPE = { CHANGE_CIPHER_SPEC: 20, ALERT: 21, HANDSHAKE: 22, APPLICATION_DATA: 23 } as const;

/** The message UnsupportedError carries when the kernel has no TLS ULP. */
export const KTLS_UNAVAILABLE_MESSAGE = "kernel TLS is not available: the tls module is not loaded or not built (CONFIG_TLS)";

const ENOENT = 2;
const ULP_NAME = cstr("tls");
const IV_BYTES = 12;

interface CipherLayout {
  id: number;
  size: number;
  iv: number;
  ivLen: number;
  key: number;
  keyLen: number;
  salt: number;
  saltLen: number;
  recSeq: number;
}

const LAYOUT: Readonly<Record<KtlsCipher, CipherLayout>> = {
  "aes-128-gcm": { id: TLS.CIPHER_AES_GCM_128, ...TLS_CRYPTO_INFO.aesGcm128 },
  "aes-256-gcm": { id: TLS.CIPHER_AES_GCM_256, ...TLS_CRYPTO_INFO.aesGcm256 },
  "chacha20-poly1305": { id: TLS.CIPHER_CHACHA20_POLY1305, ...TLS_CRYPTO_INFO.chacha20Poly1305 },
  "aes-128-ccm": { id: TLS.CIPHER_AES_CCM_128, ...TLS_CRYPTO_INFO.aesCcm128 },
};

const VERSION_ID: Readonly<Record<KtlsVersion, number>> = { "1.2": TLS.VERSION_1_2, "1.3": TLS.VERSION_1_3 };

/** Key length in bytes for a cipher. */
export function ktlsKeyLength(cipher: KtlsCipher): number {
  return LAYOUT[cipher].keyLen;
}

/**
 * setsockopt(fd, SOL_TCP, TCP_ULP, "tls"). Returns 0, or the errno (ENOENT: no TLS ULP in
 * this kernel; ENOTCONN: the socket is not ESTABLISHED; EEXIST: a ULP is already set).
 * For probes that want the errno rather than an exception.
 */
export function trySetTlsUlp(fd: number): number {
  return libc.setsockopt(fd, SOL.TCP, TCP.ULP, ULP_NAME, ULP_NAME.length) === 0 ? 0 : errno();
}

/**
 * Attach the "tls" upper-layer protocol to an ESTABLISHED TCP socket (step 1 of kTLS).
 * Throws UnsupportedError when the kernel has no kTLS, SysError otherwise.
 */
export function enableTlsUlp(fd: number): void {
  const e = trySetTlsUlp(fd);
  if (e === 0) return;
  if (e === ENOENT) throw new UnsupportedError(KTLS_UNAVAILABLE_MESSAGE);
  throw new SysError("setsockopt(TCP_ULP tls)", e);
}

/**
 * The bytes of `struct tls12_crypto_info_<cipher>` for these parameters: the
 * tls_crypto_info header (version, cipher type; little-endian u16s), then iv, key, salt
 * and rec_seq (big-endian, as it appears on the wire). Pure; the caller should zero
 * the result once it has been handed to the kernel.
 */
export function buildCryptoInfo(params: KtlsCryptoParams): Uint8Array {
  const layout = LAYOUT[params.cipher];
  const version = VERSION_ID[params.version];
  if (layout === undefined) throw new RangeError(`unknown kTLS cipher '${String(params.cipher)}'`);
  if (version === undefined) throw new RangeError(`unknown TLS version '${String(params.version)}'`);
  if (params.key.length !== layout.keyLen) {
    throw new RangeError(`${params.cipher} needs a ${layout.keyLen}-byte key (got ${params.key.length})`);
  }
  if (params.iv.length !== IV_BYTES) throw new RangeError(`the iv must be ${IV_BYTES} bytes (got ${params.iv.length})`);
  if (typeof params.recSeq !== "bigint" || params.recSeq < 0n || params.recSeq > 0xffffffffffffffffn) {
    throw new RangeError("recSeq must be a bigint from 0 to 2^64-1");
  }
  const out = new Uint8Array(layout.size);
  const dv = new DataView(out.buffer);
  dv.setUint16(TLS_CRYPTO_INFO.version, version, true);
  dv.setUint16(TLS_CRYPTO_INFO.cipherType, layout.id, true);
  // GCM/CCM: the first 4 bytes of the 12-byte IV are the implicit salt; ChaCha has none.
  out.set(params.iv.subarray(0, layout.saltLen), layout.salt);
  out.set(params.iv.subarray(layout.saltLen), layout.iv);
  out.set(params.key, layout.key);
  dv.setBigUint64(layout.recSeq, params.recSeq, false);
  return out;
}

/**
 * Install the keys for one direction (TLS_TX or TLS_RX) on a socket that has the tls
 * ULP. Each direction can be set once per socket (EBUSY after that).
 */
export function setCryptoInfo(fd: number, direction: KtlsDirection, params: KtlsCryptoParams): void {
  const info = buildCryptoInfo(params);
  const opt = direction === "tx" ? TLS.TX : TLS.RX;
  const r = libc.setsockopt(fd, SOL.TLS, opt, info, info.length);
  const e = r === 0 ? 0 : errno();
  info.fill(0);
  if (e !== 0) throw new SysError(`setsockopt(TLS_${direction.toUpperCase()} ${params.cipher} TLS ${params.version})`, e);
}

/**
 * TLS_RX_EXPECT_NO_PAD (Linux 6.0+, TLS 1.3 RX only): let the kernel decrypt straight
 * into the caller's buffer on the assumption that the peer does not pad records. Only
 * worth it once the peer is authenticated: a padding peer makes each record cost a
 * second decryption (the kernel retries), it does not break anything.
 */
export function setRxExpectNoPad(fd: number, enable = true): void {
  const val = new Uint32Array([enable ? 1 : 0]);
  if (libc.setsockopt(fd, SOL.TLS, TLS.RX_EXPECT_NO_PAD, val, 4) !== 0) {
    throw new SysError("setsockopt(TLS_RX_EXPECT_NO_PAD)", errno());
  }
}

// ---- msghdr buffers for non-data records ------------------------------------------

const align8 = (n: number): number => (n + 7) & ~7;
/** CMSG_SPACE(n): a control message with n data bytes, padded for the next one. */
export const cmsgSpace = (n: number): number => CMSGHDR.size + align8(n);
/** CMSG_LEN(n): the cmsg_len field for n data bytes. */
export const cmsgLen = (n: number): number => CMSGHDR.size + n;

const IOV_AT = MSGHDR.size;
const CTRL_AT = IOV_AT + IOVEC.size;
const CTRL_BYTES = cmsgSpace(1);

/**
 * Size of a record message buffer: msghdr(56) | iovec(16) | one cmsg with a 1-byte
 * record type (24). One buffer per in-flight SENDMSG/RECVMSG; it must stay referenced
 * (and not be reused) until the operation completes.
 */
export const RECORD_MSG_BYTES = CTRL_AT + CTRL_BYTES;

/**
 * The address of a typed array's bytes that stays valid while the array is referenced.
 * Why not plain addressOf: JSC keeps a small typed array's bytes inside its GC cell and
 * moves them to a separate allocation the first time `.buffer` is read, so an address
 * taken before that (by us or by the caller) would dangle. Reading `.buffer` first
 * makes the move happen now.
 */
export function stableAddressOf(view: ArrayBufferView, byteOffset = 0): number {
  void view.buffer;
  return addressOf(view, byteOffset);
}

function checkMsgBuffer(msg: Uint8Array): number {
  if (msg.byteLength < RECORD_MSG_BYTES) throw new RangeError(`record msg buffer needs ${RECORD_MSG_BYTES} bytes (got ${msg.byteLength})`);
  const base = stableAddressOf(msg);
  if (base % 8 !== 0) throw new RangeError("record msg buffer must be 8-byte aligned");
  return base;
}

function fillMsghdr(msg: Uint8Array, base: number, data: number, len: number): DataView {
  msg.fill(0, 0, RECORD_MSG_BYTES);
  const dv = new DataView(msg.buffer, msg.byteOffset, RECORD_MSG_BYTES);
  dv.setBigUint64(IOV_AT + IOVEC.base, BigInt(data), true);
  dv.setBigUint64(IOV_AT + IOVEC.len, BigInt(len), true);
  dv.setBigUint64(MSGHDR.iov, BigInt(base + IOV_AT), true);
  dv.setBigUint64(MSGHDR.iovlen, 1n, true);
  dv.setBigUint64(MSGHDR.control, BigInt(base + CTRL_AT), true);
  dv.setBigUint64(MSGHDR.controllen, BigInt(CTRL_BYTES), true);
  return dv;
}

/**
 * Fill `msg` (RECORD_MSG_BYTES, 8-aligned) as a msghdr that sends `len` bytes at address
 * `data` as one record of content type `recordType` (e.g. RECORD_TYPE.ALERT) through a
 * kTLS TX socket. Returns the msghdr's address, for sendmsg(2) or io_uring SENDMSG.
 * The record ends with this message: do not pass MSG_MORE with a non-data type.
 */
export function buildSendRecordMsg(msg: Uint8Array, recordType: number, data: number, len: number): number {
  if (!Number.isInteger(recordType) || recordType < 0 || recordType > 255) throw new RangeError(`record type must be a byte (got ${recordType})`);
  const base = checkMsgBuffer(msg);
  const dv = fillMsghdr(msg, base, data, len);
  dv.setBigUint64(CTRL_AT + CMSGHDR.len, BigInt(cmsgLen(1)), true);
  dv.setInt32(CTRL_AT + CMSGHDR.level, SOL.TLS, true);
  dv.setInt32(CTRL_AT + CMSGHDR.type, TLS.SET_RECORD_TYPE, true);
  msg[CTRL_AT + CMSGHDR.data] = recordType;
  return base;
}

/**
 * Fill `msg` as a msghdr that receives up to `len` bytes at address `data` from a kTLS
 * RX socket, with room for the TLS_GET_RECORD_TYPE control message. Call again before
 * each receive: the kernel rewrites msg_controllen and msg_flags. Returns its address.
 */
export function buildRecvRecordMsg(msg: Uint8Array, data: number, len: number): number {
  const base = checkMsgBuffer(msg);
  fillMsghdr(msg, base, data, len);
  return base;
}

export interface ReceivedRecordInfo {
  /** Content type of the bytes received, or null when the kernel sent no record-type cmsg (not a kTLS socket). */
  recordType: number | null;
  /** msg_flags as the kernel left them: kTLS sets MSG_EOR after a non-data record; MSG_CTRUNC. */
  flags: number;
  /** The control buffer was too small for what the kernel wanted to say. */
  truncated: boolean;
}

/**
 * Read what the kernel reported after recvmsg(2) / io_uring RECVMSG completed on a
 * buffer from buildRecvRecordMsg: the record type from the TLS_GET_RECORD_TYPE cmsg
 * and msg_flags. Pure: reads only `msg`.
 */
export function parseRecvRecordMsg(msg: Uint8Array): ReceivedRecordInfo {
  checkMsgBuffer(msg);
  const dv = new DataView(msg.buffer, msg.byteOffset, RECORD_MSG_BYTES);
  const flags = dv.getInt32(MSGHDR.flags, true);
  const controllen = Math.min(Number(dv.getBigUint64(MSGHDR.controllen, true)), CTRL_BYTES);
  let recordType: number | null = null;
  for (let at = 0; at + CMSGHDR.size <= controllen;) {
    const len = Number(dv.getBigUint64(CTRL_AT + at + CMSGHDR.len, true));
    if (len < CMSGHDR.size || at + len > controllen) break;
    const level = dv.getInt32(CTRL_AT + at + CMSGHDR.level, true);
    const type = dv.getInt32(CTRL_AT + at + CMSGHDR.type, true);
    if (level === SOL.TLS && type === TLS.GET_RECORD_TYPE && len >= cmsgLen(1)) recordType = msg[CTRL_AT + at + CMSGHDR.data];
    at += align8(len);
  }
  return { recordType, flags, truncated: (flags & MSG.CTRUNC) !== 0 };
}
