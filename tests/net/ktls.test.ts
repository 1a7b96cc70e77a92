/**
 * src/net/ktls.ts: the crypto_info bytes the kernel gets, the msghdr/cmsg buffers for
 * record types, and what the kernel says about kTLS on this machine. Runs here (no
 * kTLS: UnsupportedError) and, through tests/vm/vm.test.ts, in the ktls-vm guest (kTLS:
 * the ULP attaches and each direction is keyed once).
 */
import { describe, expect, test } from "bun:test";
import { addressOf, libc } from "../../ffi/libc.ts";
import { AF, MSG, SOCK } from "../../ffi/structs.ts";
import { SysError, UnsupportedError } from "../../src/errors.ts";
import {
  buildCryptoInfo, buildRecvRecordMsg, buildSendRecordMsg, cmsgLen, cmsgSpace, enableTlsUlp, KTLS_CIPHERS,
  KTLS_UNAVAILABLE_MESSAGE, ktlsKeyLength, parseRecvRecordMsg, RECORD_MSG_BYTES, RECORD_TYPE, setCryptoInfo,
  setRxExpectNoPad, stableAddressOf, trySetTlsUlp, type KtlsCryptoParams,
} from "../../src/net/ktls.ts";
import { LoopbackListener, withLoopbackPair } from "../../src/system/loopback.ts";
import { openRing } from "../../src/uring/backend.ts";
import { runOne } from "../../src/uring/ops.ts";
import { prepRecvmsg, prepSendmsg } from "../../src/uring/prep.ts";
import { kernelHasTls } from "../system/machine.ts";

const seq = (from: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const KEY16 = seq(0x00, 16);
const KEY32 = seq(0x00, 32);
const IV = seq(0xa0, 12); // a0 a1 a2 a3 | a4 .. ab
const REC_SEQ = 0x0102030405060708n;

describe("buildCryptoInfo: the exact bytes of struct tls12_crypto_info_*", () => {
  // Expected layouts written out by hand from <linux/tls.h>, not from ffi/structs.ts.
  test("AES-128-GCM, TLS 1.3: 40 bytes = version, cipher 51, iv[8], key[16], salt[4], rec_seq[8] (big-endian)", () => {
    const b = buildCryptoInfo({ version: "1.3", cipher: "aes-128-gcm", key: KEY16, iv: IV, recSeq: REC_SEQ });
    expect(hex(b)).toBe(
      "0403" + "3300" + "a4a5a6a7a8a9aaab" + "000102030405060708090a0b0c0d0e0f" + "a0a1a2a3" + "0102030405060708",
    );
  });

  test("AES-256-GCM, TLS 1.2: 56 bytes, cipher 52", () => {
    const b = buildCryptoInfo({ version: "1.2", cipher: "aes-256-gcm", key: KEY32, iv: IV, recSeq: REC_SEQ });
    expect(hex(b)).toBe("0303" + "3400" + "a4a5a6a7a8a9aaab" + hex(KEY32) + "a0a1a2a3" + "0102030405060708");
    expect(b.length).toBe(56);
  });

  test("ChaCha20-Poly1305, TLS 1.3: 56 bytes, cipher 54, all 12 iv bytes, no salt", () => {
    const b = buildCryptoInfo({ version: "1.3", cipher: "chacha20-poly1305", key: KEY32, iv: IV, recSeq: REC_SEQ });
    expect(hex(b)).toBe("0403" + "3600" + "a0a1a2a3a4a5a6a7a8a9aaab" + hex(KEY32) + "0102030405060708");
  });

  test("AES-128-CCM, TLS 1.2: 40 bytes, cipher 53, same shape as AES-128-GCM", () => {
    const b = buildCryptoInfo({ version: "1.2", cipher: "aes-128-ccm", key: KEY16, iv: IV, recSeq: 0xfen });
    expect(hex(b)).toBe("0303" + "3500" + "a4a5a6a7a8a9aaab" + hex(KEY16) + "a0a1a2a3" + "00000000000000fe");
  });

  test("rec_seq covers the full 64-bit range", () => {
    const b = buildCryptoInfo({ version: "1.3", cipher: "aes-128-gcm", key: KEY16, iv: IV, recSeq: 0xffffffffffffffffn });
    expect(hex(b.subarray(32))).toBe("ffffffffffffffff");
  });

  test("wrong key length, iv length or sequence number is a RangeError", () => {
    const ok: KtlsCryptoParams = { version: "1.3", cipher: "aes-256-gcm", key: KEY32, iv: IV, recSeq: 0n };
    expect(() => buildCryptoInfo({ ...ok, key: KEY16 })).toThrow(/32-byte key \(got 16\)/);
    expect(() => buildCryptoInfo({ ...ok, iv: seq(0, 8) })).toThrow(/12 bytes \(got 8\)/);
    expect(() => buildCryptoInfo({ ...ok, recSeq: -1n })).toThrow(RangeError);
    expect(() => buildCryptoInfo({ ...ok, recSeq: 1n << 64n })).toThrow(RangeError);
    expect(() => buildCryptoInfo({ ...ok, cipher: "sm4-gcm" as never })).toThrow(/unknown kTLS cipher/);
    expect(ktlsKeyLength("aes-128-gcm")).toBe(16);
    expect(ktlsKeyLength("chacha20-poly1305")).toBe(32);
  });
});

describe("record-type msghdr buffers", () => {
  const dv = (m: Uint8Array): DataView => new DataView(m.buffer, m.byteOffset, m.byteLength);

  test("buildSendRecordMsg: one iovec and one TLS_SET_RECORD_TYPE cmsg, all inside the buffer", () => {
    const msg = new Uint8Array(RECORD_MSG_BYTES);
    const data = new Uint8Array([1, 0]);
    const dataAt = stableAddressOf(data);
    const at = buildSendRecordMsg(msg, RECORD_TYPE.ALERT, dataAt, 2);
    expect(at).toBe(addressOf(msg));
    const v = dv(msg);
    expect(RECORD_MSG_BYTES).toBe(56 + 16 + 24);
    expect(v.getBigUint64(0, true)).toBe(0n); // msg_name
    expect(Number(v.getBigUint64(16, true))).toBe(at + 56); // msg_iov
    expect(v.getBigUint64(24, true)).toBe(1n); // msg_iovlen
    expect(Number(v.getBigUint64(32, true))).toBe(at + 72); // msg_control
    expect(v.getBigUint64(40, true)).toBe(24n); // msg_controllen = CMSG_SPACE(1)
    expect(Number(v.getBigUint64(56, true))).toBe(dataAt); // iov_base
    expect(v.getBigUint64(64, true)).toBe(2n); // iov_len
    expect(v.getBigUint64(72, true)).toBe(17n); // cmsg_len = CMSG_LEN(1)
    expect(v.getInt32(80, true)).toBe(282); // SOL_TLS
    expect(v.getInt32(84, true)).toBe(1); // TLS_SET_RECORD_TYPE
    expect(msg[88]).toBe(21);
    expect(cmsgLen(1)).toBe(17);
    expect(cmsgSpace(1)).toBe(24);
  });

  test("the addresses stay valid: the buffer's bytes do not move after it is built", () => {
    const msg = new Uint8Array(RECORD_MSG_BYTES);
    const at = buildSendRecordMsg(msg, 21, 0, 0);
    void msg.buffer;
    expect(addressOf(msg)).toBe(at);
  });

  test("parseRecvRecordMsg reads the TLS_GET_RECORD_TYPE cmsg and msg_flags the kernel wrote", () => {
    const msg = new Uint8Array(RECORD_MSG_BYTES);
    buildRecvRecordMsg(msg, 0x1000, 100);
    const v = dv(msg);
    expect(v.getBigUint64(40, true)).toBe(24n);
    expect(msg.subarray(72, 96).every((x) => x === 0)).toBe(true);
    // What recvmsg on a kTLS socket leaves: one cmsg (SOL_TLS, TLS_GET_RECORD_TYPE, 1 byte).
    v.setBigUint64(72, 17n, true);
    v.setInt32(80, 282, true);
    v.setInt32(84, 2, true);
    msg[88] = 22;
    expect(parseRecvRecordMsg(msg)).toEqual({ recordType: 22, flags: 0, truncated: false });
    v.setInt32(48, 0x8, true); // MSG_CTRUNC
    expect(parseRecvRecordMsg(msg).truncated).toBe(true);
    v.setBigUint64(40, 0n, true); // no control data came back
    expect(parseRecvRecordMsg(msg).recordType).toBeNull();
    v.setBigUint64(40, 24n, true);
    v.setInt32(80, 1, true); // some other level: not ours
    expect(parseRecvRecordMsg(msg).recordType).toBeNull();
  });

  test("too small or misaligned buffers are refused", () => {
    expect(() => buildRecvRecordMsg(new Uint8Array(RECORD_MSG_BYTES - 1), 0, 0)).toThrow(RangeError);
    const big = new Uint8Array(RECORD_MSG_BYTES + 8);
    void big.buffer;
    expect(() => buildRecvRecordMsg(big.subarray(3), 0, 0)).toThrow(/aligned/);
    expect(() => buildSendRecordMsg(new Uint8Array(RECORD_MSG_BYTES), 256, 0, 0)).toThrow(/byte/);
  });

  test("sendmsg/recvmsg with these buffers move real bytes over TCP (no kTLS: no record-type cmsg back)", () => {
    withLoopbackPair((p) => {
      const out = new TextEncoder().encode("hello, records");
      const smsg = new Uint8Array(RECORD_MSG_BYTES);
      buildSendRecordMsg(smsg, RECORD_TYPE.APPLICATION_DATA, stableAddressOf(out), out.length);
      // Plain TCP ignores SOL_TLS control messages, so this checks the msghdr and iovec.
      const sent = libc.sendmsg(p.client, smsg, 0);
      expect(sent).toBe(out.length);
      const into = new Uint8Array(64);
      const rmsg = new Uint8Array(RECORD_MSG_BYTES);
      buildRecvRecordMsg(rmsg, stableAddressOf(into), into.length);
      const n = libc.recvmsg(p.server, rmsg, 0);
      expect(n).toBe(out.length);
      expect(new TextDecoder().decode(into.subarray(0, n))).toBe("hello, records");
      const info = parseRecvRecordMsg(rmsg);
      expect(info.recordType).toBeNull();
      expect(new DataView(rmsg.buffer, rmsg.byteOffset).getBigUint64(40, true)).toBe(0n); // kernel wrote back controllen 0
    });
  });
});

describe("the same buffers through io_uring SENDMSG / RECVMSG", () => {
  const hasTls = kernelHasTls();
  test(`an alert record travels ${hasTls ? "through kTLS TX -> RX" : "over plain TCP (no kTLS here)"} and the record type is reported`, () => {
    const ring = openRing({ entries: 8 });
    try {
      withLoopbackPair((p) => {
        if (hasTls) {
          const params: KtlsCryptoParams = { version: "1.3", cipher: "aes-128-gcm", key: KEY16, iv: IV, recSeq: 0n };
          enableTlsUlp(p.client);
          enableTlsUlp(p.server);
          setCryptoInfo(p.client, "tx", params);
          setCryptoInfo(p.server, "rx", params);
        }
        const alert = new Uint8Array([2, 40]); // fatal, handshake_failure
        const smsg = new Uint8Array(RECORD_MSG_BYTES);
        const sAt = buildSendRecordMsg(smsg, RECORD_TYPE.ALERT, stableAddressOf(alert), alert.length);
        expect(runOne(ring, (sqe) => prepSendmsg(ring, sqe, p.client, sAt, 0))).toBe(2);
        const into = new Uint8Array(32);
        const rmsg = new Uint8Array(RECORD_MSG_BYTES);
        const rAt = buildRecvRecordMsg(rmsg, stableAddressOf(into), into.length);
        expect(runOne(ring, (sqe) => prepRecvmsg(ring, sqe, p.server, rAt, 0))).toBe(2);
        expect([...into.subarray(0, 2)]).toEqual([2, 40]);
        // io_uring writes msg_controllen and msg_flags back like recvmsg(2) does; kTLS
        // ends a non-data record with MSG_EOR.
        expect(parseRecvRecordMsg(rmsg)).toEqual({ recordType: hasTls ? RECORD_TYPE.ALERT : null, flags: hasTls ? MSG.EOR : 0, truncated: false });
      });
    } finally {
      ring.close();
    }
  });
});

describe("setsockopt on this machine", () => {
  const hasTls = kernelHasTls();

  test("TLS_TX on a socket without the tls ULP: SysError ENOPROTOOPT naming the option", () => {
    withLoopbackPair((p) => {
      let err: unknown;
      try {
        setCryptoInfo(p.client, "tx", { version: "1.3", cipher: "aes-128-gcm", key: KEY16, iv: IV, recSeq: 0n });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SysError);
      expect((err as SysError).code).toBe("ENOPROTOOPT");
      expect((err as SysError).message).toContain("TLS_TX");
    });
  });

  if (!hasTls) {
    test("no kTLS here: enableTlsUlp on an ESTABLISHED socket throws UnsupportedError (ENOENT)", () => {
      withLoopbackPair((p) => {
        expect(() => enableTlsUlp(p.client)).toThrow(UnsupportedError);
        expect(() => enableTlsUlp(p.server)).toThrow(KTLS_UNAVAILABLE_MESSAGE);
        expect(trySetTlsUlp(p.client)).toBe(2);
      });
    });
  } else {
    test("kTLS here: the ULP attaches once, only to an ESTABLISHED socket", () => {
      const fd = libc.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
      expect(fd).toBeGreaterThanOrEqual(0);
      try {
        expect(() => enableTlsUlp(fd)).toThrow(SysError);
        expect(trySetTlsUlp(fd)).toBe(107); // ENOTCONN
      } finally {
        libc.close(fd);
      }
      withLoopbackPair((p) => {
        enableTlsUlp(p.client);
        expect(trySetTlsUlp(p.client)).toBe(17); // EEXIST
      });
    });

    test("kTLS here: each direction is keyed once (EBUSY), every version x cipher is accepted", () => {
      const listener = new LoopbackListener();
      try {
        for (const version of ["1.2", "1.3"] as const) {
          for (const cipher of KTLS_CIPHERS) {
            const p = listener.connect();
            try {
              enableTlsUlp(p.client);
              const params: KtlsCryptoParams = { version, cipher, key: seq(7, ktlsKeyLength(cipher)), iv: IV, recSeq: 5n };
              setCryptoInfo(p.client, "tx", params);
              setCryptoInfo(p.client, "rx", params);
              let err: unknown;
              try {
                setCryptoInfo(p.client, "tx", params);
              } catch (e) {
                err = e;
              }
              expect((err as SysError).code).toBe("EBUSY");
              if (version === "1.3") setRxExpectNoPad(p.client);
              else expect(() => setRxExpectNoPad(p.client)).toThrow(SysError);
            } finally {
              p.close();
            }
          }
        }
      } finally {
        listener.close();
      }
    });
  }
});
