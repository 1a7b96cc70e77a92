/**
 * What kernel TLS can do on this machine, found by trying it on loopback TCP
 * connections: can the "tls" ULP be attached, and for each TLS version × cipher, do
 * TLS_TX and TLS_RX accept keys, and does a record sent through TX come out of RX on
 * the peer byte for byte (plus an alert record through the record-type cmsgs).
 *
 * Owns: the probe connections (a fresh pair per version × cipher, because each
 * direction can be keyed only once per socket) and closing every fd it opened, on
 * every path. Never prints, never throws for a kernel refusal: refusals are results.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { errnoName } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { MSG } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import {
  buildRecvRecordMsg, buildSendRecordMsg, KTLS_CIPHERS, KTLS_UNAVAILABLE_MESSAGE, KTLS_VERSIONS, ktlsKeyLength,
  parseRecvRecordMsg, RECORD_MSG_BYTES, RECORD_TYPE, setCryptoInfo, setRxExpectNoPad, stableAddressOf, trySetTlsUlp,
  type KtlsCipher, type KtlsCryptoParams, type KtlsVersion,
} from "../net/ktls.ts";
import { LoopbackListener, type LoopbackPair } from "./loopback.ts";

/** One step of a probe: it worked, or why not ("ENOENT", "skipped: ...", "mismatch: ..."). */
export interface ProbeStep {
  ok: boolean;
  error?: string;
}

export interface KtlsCipherProbe {
  version: KtlsVersion;
  cipher: KtlsCipher;
  /** setsockopt(SOL_TLS, TLS_TX) on the sending end. */
  tx: ProbeStep;
  /** setsockopt(SOL_TLS, TLS_RX) on the receiving end. */
  rx: ProbeStep;
  /** TLS_RX_EXPECT_NO_PAD (TLS 1.3 only, Linux 6.0+); absent for TLS 1.2. */
  rxNoPad?: ProbeStep;
  /** ROUND_TRIP_BYTES of data and one alert record, sent through TX and read back through RX. */
  roundTrip: ProbeStep;
}

export interface TlsUlpFacts {
  /** setsockopt(TCP_ULP, "tls") worked on an established loopback connection. */
  ok: boolean;
  /** False when no loopback connection could be made, so the ULP was never tried. */
  tested: boolean;
  /** errno name when it did not ("ENOENT": no kTLS in this kernel). */
  error?: string;
  /** One sentence for people. */
  reason: string;
}

export interface KtlsFacts {
  /** The TLS ULP can be attached (kTLS exists in this kernel). */
  available: boolean;
  tlsUlp: TlsUlpFacts;
  /** One entry per TLS version × cipher; empty when the ULP is unavailable. */
  probes: KtlsCipherProbe[];
  /** TLS 1.3 ciphers that passed TX, RX and the round trip (what uring-sync can offload). */
  usableTls13: KtlsCipher[];
  /** /proc/net/tls_stat counters, or null when the file is absent (no tls module). */
  tlsStat: Record<string, number> | null;
}

/** Payload size of the round trip: under one record, so a single recvmsg returns it. */
export const ROUND_TRIP_BYTES = 1024;
/** A warning-level close_notify: two bytes of alert record. */
const ALERT = new Uint8Array([1, 0]);

function stepError(e: unknown): ProbeStep {
  if (e instanceof SysError) return { ok: false, error: e.code };
  return { ok: false, error: e instanceof Error ? e.message : String(e) };
}

/** Parse /proc/net/tls_stat ("TlsCurrTxSw   0" per line). */
export function parseTlsStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(\w+)\s+(\d+)\s*$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function readTlsStat(path = "/proc/net/tls_stat"): Record<string, number> | null {
  try {
    return parseTlsStat(readFileSync(path, "utf8"));
  } catch {
    return null;
  }
}

/** Try the TLS ULP on one established loopback connection. */
export function probeTlsUlp(listener: LoopbackListener): TlsUlpFacts {
  let pair: LoopbackPair;
  try {
    pair = listener.connect();
  } catch (e) {
    const s = stepError(e);
    return { ok: false, tested: false, error: s.error, reason: `could not make a loopback TCP connection to test kTLS (${s.error})` };
  }
  try {
    const e = trySetTlsUlp(pair.client);
    if (e === 0) return { ok: true, tested: true, reason: "the tls ULP attaches to established TCP sockets" };
    const name = errnoName(e);
    return { ok: false, tested: true, error: name, reason: e === 2 ? KTLS_UNAVAILABLE_MESSAGE : `setsockopt(TCP_ULP "tls") failed: ${name}` };
  } finally {
    pair.close();
  }
}

function makeParams(version: KtlsVersion, cipher: KtlsCipher): KtlsCryptoParams {
  // Throw-away keys: these connections carry only the probe's own bytes.
  return { version, cipher, key: randomBytes(ktlsKeyLength(cipher)), iv: randomBytes(12), recSeq: 0xfen };
}

/** recvmsg once; returns bytes received and the record type, or throws SysError. */
function recvRecord(fd: number, msg: Uint8Array, buf: Uint8Array, at: number): { n: number; type: number | null } {
  buildRecvRecordMsg(msg, stableAddressOf(buf, at), buf.length - at);
  const n = libc.recvmsg(fd, msg, 0);
  if (n < 0) throw new SysError("recvmsg", errno());
  return { n, type: parseRecvRecordMsg(msg).recordType };
}

/** Data then an alert, through TX on `pair.client`, read back through RX on `pair.server`. */
function roundTrip(pair: LoopbackPair): ProbeStep {
  const payload = randomBytes(ROUND_TRIP_BYTES);
  const sent = libc.send(pair.client, payload, payload.length, MSG.NOSIGNAL);
  if (sent < 0) return { ok: false, error: `send: ${errnoName(errno())}` };
  if (sent !== payload.length) return { ok: false, error: `send: short (${sent} of ${payload.length} bytes)` };
  const smsg = new Uint8Array(RECORD_MSG_BYTES);
  buildSendRecordMsg(smsg, RECORD_TYPE.ALERT, stableAddressOf(ALERT), ALERT.length);
  const sa = libc.sendmsg(pair.client, smsg, MSG.NOSIGNAL);
  if (sa !== ALERT.length) return { ok: false, error: `sendmsg(alert): ${sa < 0 ? errnoName(errno()) : `sent ${sa} bytes`}` };

  const rmsg = new Uint8Array(RECORD_MSG_BYTES);
  const got = new Uint8Array(ROUND_TRIP_BYTES * 2);
  let have = 0;
  try {
    while (have < ROUND_TRIP_BYTES) {
      const r = recvRecord(pair.server, rmsg, got, have);
      if (r.n === 0) return { ok: false, error: `connection closed after ${have} bytes` };
      if (r.type !== RECORD_TYPE.APPLICATION_DATA) return { ok: false, error: `data came back as record type ${r.type ?? "none"}` };
      have += r.n;
    }
    if (have !== ROUND_TRIP_BYTES) return { ok: false, error: `received ${have} bytes, sent ${ROUND_TRIP_BYTES}` };
    if (Buffer.compare(got.subarray(0, have), payload) !== 0) return { ok: false, error: "mismatch: data differs after TX -> RX" };
    const alert = new Uint8Array(16);
    const r = recvRecord(pair.server, rmsg, alert, 0);
    if (r.type !== RECORD_TYPE.ALERT) return { ok: false, error: `alert came back as record type ${r.type ?? "none"}` };
    if (r.n !== ALERT.length || alert[0] !== ALERT[0] || alert[1] !== ALERT[1]) return { ok: false, error: "mismatch: alert record differs" };
  } catch (e) {
    return stepError(e);
  }
  return { ok: true };
}

function skipped(why: string): ProbeStep {
  return { ok: false, error: `skipped: ${why}` };
}

/** One version × cipher on a fresh connection pair (closed before returning). */
export function probeCipher(listener: LoopbackListener, version: KtlsVersion, cipher: KtlsCipher): KtlsCipherProbe {
  const out: KtlsCipherProbe = { version, cipher, tx: skipped("no connection"), rx: skipped("no connection"), roundTrip: skipped("no connection") };
  let pair: LoopbackPair;
  try {
    pair = listener.connect();
  } catch (e) {
    const s = stepError(e);
    out.tx = out.rx = out.roundTrip = s;
    return out;
  }
  try {
    const params = makeParams(version, cipher);
    const ulpC = trySetTlsUlp(pair.client);
    const ulpS = trySetTlsUlp(pair.server);
    out.tx = ulpC !== 0 ? { ok: false, error: `TCP_ULP: ${errnoName(ulpC)}` } : attempt(() => setCryptoInfo(pair.client, "tx", params));
    out.rx = ulpS !== 0 ? { ok: false, error: `TCP_ULP: ${errnoName(ulpS)}` } : attempt(() => setCryptoInfo(pair.server, "rx", params));
    if (version === "1.3") out.rxNoPad = out.rx.ok ? attempt(() => setRxExpectNoPad(pair.server)) : skipped("TLS_RX failed");
    out.roundTrip = out.tx.ok && out.rx.ok ? roundTrip(pair) : skipped(out.tx.ok ? "TLS_RX failed" : "TLS_TX failed");
    params.key.fill(0);
  } finally {
    pair.close();
  }
  return out;
}

function attempt(fn: () => void): ProbeStep {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    return stepError(e);
  }
}

/** The whole kTLS picture: ULP, then every version × cipher when the ULP exists. */
export function probeKtls(opts: { versions?: readonly KtlsVersion[]; ciphers?: readonly KtlsCipher[] } = {}): KtlsFacts {
  let listener: LoopbackListener;
  try {
    listener = new LoopbackListener();
  } catch (e) {
    const s = stepError(e);
    return {
      available: false,
      tlsUlp: { ok: false, tested: false, error: s.error, reason: `could not listen on 127.0.0.1 to test kTLS (${s.error})` },
      probes: [],
      usableTls13: [],
      tlsStat: readTlsStat(),
    };
  }
  try {
    const tlsUlp = probeTlsUlp(listener);
    const probes: KtlsCipherProbe[] = [];
    if (tlsUlp.ok) {
      for (const v of opts.versions ?? KTLS_VERSIONS) for (const c of opts.ciphers ?? KTLS_CIPHERS) probes.push(probeCipher(listener, v, c));
    }
    const usableTls13 = probes.filter((p) => p.version === "1.3" && p.tx.ok && p.rx.ok && p.roundTrip.ok).map((p) => p.cipher);
    // Read the counters last, so they include the probes' own connections.
    return { available: tlsUlp.ok, tlsUlp, probes, usableTls13, tlsStat: readTlsStat() };
  } finally {
    listener.close();
  }
}
