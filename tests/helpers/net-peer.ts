/**
 * A test peer that speaks uring-sync from inside the test process, built on the project's
 * pure protocol modules (handshake.ts, record.ts, wire.ts) and a plain node:net socket. It
 * can complete the handshake honestly (or stop half-way, or lie in it) and then send
 * anything at all: well-formed frames, frames the encoder would refuse (rawEntry, rawFrame),
 * sealed garbage, or raw bytes beside the record layer. It decodes what the receiver sends
 * back (WANT, SKIP, REPORT, ERROR, alerts) so tests can see how the receiver reacted.
 *
 * Owns: bytes on one connection. Never decides what a reaction means.
 */
import { createHmac } from "node:crypto";
import { connect, type Socket } from "node:net";
import { ProtocolError } from "../../src/errors.ts";
import { Handshake, HS_TYPE_HELLO, PROTOCOL_VERSION, secretFromString, type HandshakeResult } from "../../src/net/handshake.ts";
import { CONTENT_TYPE_ALERT, CONTENT_TYPE_APPLICATION_DATA, RecordOpener, RecordSealer, type CipherName } from "../../src/net/record.ts";
import {
  FrameReader,
  MSG_DATA,
  MSG_ENTRY,
  MSG_FILE_END,
  MSG_LIST_END,
  decodeReceiverMessage,
  type ReceiverMessage,
  type ReportMessage,
} from "../../src/net/wire.ts";

const utf8 = new TextEncoder();
const asBytes = (x: string | Uint8Array): Uint8Array => (typeof x === "string" ? utf8.encode(x) : x);

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Frames without the encoder's safety checks (docs/PROTOCOL.md section 8).

/** type | u32 length | payload; `declaredLength` may lie about the payload. */
export function rawFrame(type: number, payload: Uint8Array, declaredLength = payload.length): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, type);
  v.setUint32(1, declaredLength >>> 0);
  out.set(payload, 5);
  return out;
}

export const KIND = { file: 1, dir: 2, symlink: 3, hardlink: 4 } as const;

export interface RawEntry {
  id: number;
  /** 1 file, 2 dir, 3 symlink, 4 hardlink, anything else to lie. */
  kind: number;
  mode?: number;
  mtimeNs?: bigint;
  size?: bigint;
  path: string | Uint8Array;
  /** kind 3 */
  target?: string | Uint8Array;
  /** kind 4 */
  linkId?: number;
  /** Override the u16 path length field. */
  pathLength?: number;
}

/** An ENTRY frame exactly as given, with none of encodeMessage's checks. */
export function rawEntry(e: RawEntry): Uint8Array {
  const path = asBytes(e.path);
  let tail = new Uint8Array(0);
  if (e.kind === KIND.symlink) {
    const t = asBytes(e.target ?? "x");
    tail = new Uint8Array(2 + t.length);
    new DataView(tail.buffer).setUint16(0, t.length);
    tail.set(t, 2);
  } else if (e.kind === KIND.hardlink) {
    tail = new Uint8Array(4);
    new DataView(tail.buffer).setUint32(0, (e.linkId ?? 0) >>> 0);
  }
  const p = new Uint8Array(27 + path.length + tail.length);
  const v = new DataView(p.buffer);
  v.setUint32(0, e.id >>> 0);
  v.setUint8(4, e.kind & 0xff);
  v.setUint32(5, (e.mode ?? 0o644) >>> 0);
  v.setBigInt64(9, e.mtimeNs ?? 1_600_000_000_123_456_789n);
  v.setBigUint64(17, e.size ?? 0n);
  v.setUint16(25, e.pathLength ?? path.length);
  p.set(path, 27);
  p.set(tail, 27 + path.length);
  return rawFrame(MSG_ENTRY, p);
}

/** DATA: id | offset | bytes, unchecked. */
export function dataFrame(id: number, offset: bigint, bytes: Uint8Array): Uint8Array {
  const p = new Uint8Array(12 + bytes.length);
  const v = new DataView(p.buffer);
  v.setUint32(0, id >>> 0);
  v.setBigUint64(4, offset);
  p.set(bytes, 12);
  return rawFrame(MSG_DATA, p);
}

export function fileEndFrame(id: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, id >>> 0);
  return rawFrame(MSG_FILE_END, p);
}

export function listEndFrame(): Uint8Array {
  return rawFrame(MSG_LIST_END, new Uint8Array(0));
}

export const MSG_HOLE = 0x05;
export const MSG_FILE_ABORT = 0x06;
export const MSG_REKEY = 0x07;
export const MSG_CONTINUE = 0x08;
export const MSG_ROOT = 0x09;
export const FLAG_CONTINUATION = 0x1;
export const FLAG_PUSH = 0x2;

/** HOLE: id | offset | length (zeros, nothing sent), unchecked. */
export function holeFrame(id: number, offset: bigint, length: bigint): Uint8Array {
  const p = new Uint8Array(20);
  const v = new DataView(p.buffer);
  v.setUint32(0, id >>> 0);
  v.setBigUint64(4, offset);
  v.setBigUint64(12, length);
  return rawFrame(MSG_HOLE, p);
}

export function fileAbortFrame(id: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, id >>> 0);
  return rawFrame(MSG_FILE_ABORT, p);
}

/** ROOT: mode | mtime (the destination directory's own attributes). */
export function rootFrame(mode: number, mtimeNs: bigint): Uint8Array {
  const p = new Uint8Array(12);
  const v = new DataView(p.buffer);
  v.setUint32(0, mode >>> 0);
  v.setBigInt64(4, mtimeNs);
  return rawFrame(MSG_ROOT, p);
}

export function rekeyFrame(): Uint8Array {
  return rawFrame(MSG_REKEY, new Uint8Array(0));
}

export function continueFrame(token: Uint8Array): Uint8Array {
  return rawFrame(MSG_CONTINUE, token);
}

/**
 * The CONTINUE token of a finished connection (docs/PROTOCOL.md 8.3c):
 * HMAC-SHA256(c2s key of that connection, "usync continue" || its TH).
 */
export function continuationTokenOf(hs: HandshakeResult): Uint8Array {
  return new Uint8Array(createHmac("sha256", hs.tx.key).update("usync continue").update(hs.sessionId).digest());
}

export const MSG_JOIN = 0x0c;
export const FLAG_STREAMS = 0x40;
export const FLAG_JOIN = 0x80;

export function joinFrame(token: Uint8Array): Uint8Array {
  return rawFrame(MSG_JOIN, token);
}

/**
 * The JOIN token of a session (docs/PROTOCOL.md 8.8), from its connection 0:
 * HMAC-SHA256(c2s key of connection 0, "usync join" || its TH).
 */
export function joinTokenOf(hs: HandshakeResult): Uint8Array {
  return new Uint8Array(createHmac("sha256", hs.tx.key).update("usync join").update(hs.sessionId).digest());
}

/** A HELLO message (framed) with any field changed, for handshake lies. */
export function helloMessage(f: { version?: number; role?: number; cipher?: number; plaintext?: number; flags?: number; magic?: string; nonce?: Uint8Array } = {}): Uint8Array {
  const body = new Uint8Array(46);
  const v = new DataView(body.buffer);
  body.set(utf8.encode(f.magic ?? "USYNC").subarray(0, 5), 0);
  v.setUint16(5, f.version ?? PROTOCOL_VERSION);
  body[7] = f.role ?? 1;
  body.set(f.nonce ?? crypto.getRandomValues(new Uint8Array(32)), 8);
  body[40] = f.cipher ?? 1;
  body[41] = f.plaintext ?? 0;
  v.setUint32(42, f.flags ?? 0);
  const m = new Uint8Array(3 + body.length);
  m[0] = HS_TYPE_HELLO;
  m[1] = 0;
  m[2] = body.length;
  m.set(body, 3);
  return m;
}

// ---------------------------------------------------------------------------------------

export interface HandshakeOptions {
  secret: string;
  cipher?: CipherName;
  plaintext?: boolean;
  /** HELLO flag bits (docs/PROTOCOL.md 3.2): 0x1 CONTINUATION, 0x2 PUSH. Default 0 (want mode). */
  flags?: number;
  /** Send only our HELLO ("hello") or HELLO + SHARE ("share"), then return at once. */
  stopAfter?: "hello" | "share";
  /**
   * Send these frames right behind our CONFIRM, without waiting for the receiver's
   * CONFIRM (as plaintext bytes if plaintext, else sealed with our keys).
   */
  eagerFrames?: Uint8Array[];
  timeoutMs?: number;
}

export interface HandshakeOutcome {
  ok: boolean;
  /** The handshake error this peer saw (ProtocolError message), if any. */
  error?: string;
  errorKind?: string;
  /** The connection was closed by the receiver before the handshake finished. */
  closedByPeer: boolean;
  result?: HandshakeResult;
}

/** One TCP connection to a receiver, driven by a test. */
export class Peer {
  readonly sock: Socket;
  /** Every byte received (before and after the handshake), for raw inspection. */
  readonly rawIn: Uint8Array[] = [];
  /** Decoded receiver messages, in order. */
  readonly messages: ReceiverMessage[] = [];
  /** Alert records received: [level, description]. */
  readonly alerts: [number, number][] = [];
  /** First error decoding the receiver's stream (should stay undefined for a sane receiver). */
  streamError: string | undefined;
  socketError: string | undefined;
  /** True once the receiver's FIN arrived (or the socket closed). */
  ended = false;
  closed = false;
  readonly closedAt: Promise<void>;
  private hs: Handshake | undefined;
  private hsSendLimit = Infinity;
  private hsFlags: number | undefined;
  private hsSent = 0;
  private hsError: ProtocolError | undefined;
  private keys: HandshakeResult | undefined;
  private sealer: RecordSealer | undefined;
  private opener: RecordOpener | undefined;
  private frames: FrameReader | undefined;
  private pending: Uint8Array[] = [];
  private readonly connectedAt = performance.now();
  /** Milliseconds from connect to the first sign of the receiver closing (FIN or close); -1 before. */
  closedAfterMs = -1;

  private constructor(sock: Socket) {
    this.sock = sock;
    this.closedAt = new Promise<void>((resolve) => {
      sock.on("close", () => {
        this.closed = true;
        this.ended = true;
        if (this.closedAfterMs < 0) this.closedAfterMs = Math.round(performance.now() - this.connectedAt);
        resolve();
      });
    });
    sock.on("end", () => {
      this.ended = true;
      if (this.closedAfterMs < 0) this.closedAfterMs = Math.round(performance.now() - this.connectedAt);
    });
    sock.on("error", (e) => {
      this.socketError = e.message;
    });
    sock.on("data", (chunk: Buffer) => this.onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
  }

  /** Connect (TCP only, nothing sent). */
  static async connect(host: string, port: number, timeoutMs = 5_000): Promise<Peer> {
    return await new Promise<Peer>((resolve, reject) => {
      const sock = connect({ host, port, allowHalfOpen: true });
      sock.setNoDelay(true);
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`test peer: could not connect to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(t);
        resolve(new Peer(sock));
      });
      sock.once("error", (e) => {
        clearTimeout(t);
        reject(new Error(`test peer: connect to ${host}:${port}: ${e.message}`));
      });
    });
  }

  /** Handshake messages this peer has written (HELLO = 1, SHARE = 2, CONFIRM = 3). */
  get handshakeMessagesSent(): number {
    return this.hsSent;
  }

  /** PUSH mode (HELLO flag 0x2): the receiver sends no WANT/SKIP; data follows each ENTRY at once. */
  get push(): boolean {
    return ((this.hsFlags ?? 0) & FLAG_PUSH) !== 0;
  }

  get handshakeDone(): boolean {
    return this.keys !== undefined;
  }

  get handshakeResult(): HandshakeResult | undefined {
    return this.keys;
  }

  /** Write raw bytes on the TCP connection (no record layer); resolves when flushed or failed. */
  async writeRaw(bytes: Uint8Array): Promise<boolean> {
    if (this.sock.destroyed || this.sock.writableEnded) return false;
    return await new Promise<boolean>((resolve) => {
      try {
        this.sock.write(bytes, (err) => resolve(err == null));
      } catch {
        resolve(false);
      }
    });
  }

  /** The bytes of frames as this session carries them: sealed records, or as-is in plaintext mode. */
  protect(frames: Uint8Array, contentType = CONTENT_TYPE_APPLICATION_DATA): Uint8Array {
    if (this.keys === undefined) throw new Error("test peer: handshake not done");
    if (this.keys.plaintext) return frames;
    return this.sealer!.sealAll(frames, contentType);
  }

  /** Send frames inside the session (sealed unless plaintext). */
  async send(...frames: Uint8Array[]): Promise<boolean> {
    return await this.writeRaw(this.protect(concatBytes(frames)));
  }

  /** An alert record (encrypted sessions); close_notify by default. */
  async sendAlert(level = 1, description = 0): Promise<boolean> {
    if (this.keys === undefined || this.keys.plaintext) return false;
    return await this.writeRaw(this.sealer!.sealAll(Uint8Array.of(level, description), CONTENT_TYPE_ALERT));
  }

  /** Half-close: FIN, keep reading. */
  end(): void {
    if (!this.sock.destroyed && !this.sock.writableEnded) this.sock.end();
  }

  /** Close now (RST if data is pending). */
  destroy(): void {
    this.sock.destroy();
  }

  /** close_notify (if encrypted), FIN, then wait up to `ms` for the receiver to close too, then destroy. */
  async close(ms = 3_000): Promise<void> {
    await this.sendAlert().catch(() => false);
    this.end();
    await this.waitClosed(ms);
    this.destroy();
  }

  /** True if the connection closed (by either side) within `ms`. */
  async waitClosed(ms: number): Promise<boolean> {
    if (this.closed || this.ended) return true;
    let t: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((r) => {
      t = setTimeout(() => r(false), ms);
    });
    try {
      return await Promise.race([this.closedAt.then(() => true), this.waitUntil(() => this.ended, ms), timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  /** Poll until `cond()` or `ms` elapsed; returns cond(). */
  async waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
    const end = performance.now() + ms;
    while (!cond()) {
      if (performance.now() > end) return false;
      await Bun.sleep(5);
    }
    return true;
  }

  /** First message matching `pred` (already received or arriving within `ms`), or undefined. */
  async waitMessage<T extends ReceiverMessage>(pred: (m: ReceiverMessage) => m is T, ms: number): Promise<T | undefined>;
  async waitMessage(pred: (m: ReceiverMessage) => boolean, ms: number): Promise<ReceiverMessage | undefined>;
  async waitMessage(pred: (m: ReceiverMessage) => boolean, ms: number): Promise<ReceiverMessage | undefined> {
    let found: ReceiverMessage | undefined;
    await this.waitUntil(() => {
      found = this.messages.find(pred);
      return found !== undefined || this.ended || this.streamError !== undefined;
    }, ms);
    return found ?? this.messages.find(pred);
  }

  /** The ERROR message text the receiver sent, if any. */
  get errorMessage(): string | undefined {
    const m = this.messages.find((x) => x.type === "error");
    return m?.type === "error" ? m.message : undefined;
  }

  get report(): ReportMessage | undefined {
    const m = this.messages.find((x) => x.type === "report");
    return m?.type === "report" ? m : undefined;
  }

  /**
   * Run the handshake as a client (sender of files). With stopAfter it sends only part of
   * it and returns at once; otherwise it waits for the receiver's CONFIRM, an error, or
   * the connection closing.
   */
  async handshake(o: HandshakeOptions): Promise<HandshakeOutcome> {
    this.hs = new Handshake({ role: "client", secret: secretFromString(o.secret), cipher: o.cipher, plaintext: o.plaintext, flags: o.flags });
    this.hsFlags = o.flags;
    this.hsSendLimit = o.stopAfter === "hello" ? 1 : o.stopAfter === "share" ? 2 : Infinity;
    const eager = o.eagerFrames ?? [];
    await this.flushHandshake();
    const before = this.pending;
    this.pending = [];
    for (const b of before) this.onData(b);
    if (o.stopAfter !== undefined) {
      // Wait just long enough for our allowed messages to go out.
      await this.waitUntil(() => this.hsSent >= this.hsSendLimit || this.hsError !== undefined || this.closed, o.timeoutMs ?? 3_000);
      return { ok: false, closedByPeer: this.closed, error: this.hsError?.message, errorKind: this.hsError?.kind };
    }
    if (eager.length > 0) {
      // Our CONFIRM goes out as soon as the receiver's SHARE is in; then the frames, at once.
      await this.waitUntil(() => this.hsSent >= 3 || this.hsError !== undefined || this.closed, o.timeoutMs ?? 10_000);
      if (this.hsSent >= 3) await this.writeRaw(this.eagerBytes(concatBytes(eager), o));
    }
    await this.waitUntil(() => this.keys !== undefined || this.hsError !== undefined || this.closed, o.timeoutMs ?? 10_000);
    return {
      ok: this.keys !== undefined,
      error: this.hsError?.message,
      errorKind: this.hsError?.kind,
      closedByPeer: this.closed && this.keys === undefined,
      result: this.keys,
    };
  }

  private eagerBytes(frames: Uint8Array, o: HandshakeOptions): Uint8Array {
    // Plaintext: the frames themselves, the real attack on a receiver that acts before
    // CONFIRM verified. Encrypted: Handshake hands out keys only once the receiver's CONFIRM
    // verified, so these are records under a throwaway key, which is all a peer without the
    // secret could produce anyway.
    if (o.plaintext) return frames;
    const cipher = o.cipher ?? "aes-128-gcm";
    const key = crypto.getRandomValues(new Uint8Array(cipher === "aes-128-gcm" ? 16 : 32));
    return new RecordSealer(cipher, key, crypto.getRandomValues(new Uint8Array(12))).sealAll(frames);
  }

  private async flushHandshake(): Promise<void> {
    const hs = this.hs;
    if (hs === undefined) return;
    for (;;) {
      if (this.hsSent >= this.hsSendLimit) return;
      const m = hs.nextOutgoing();
      if (m === null) return;
      this.hsSent++;
      await this.writeRaw(m);
    }
  }

  private onData(chunk: Uint8Array): void {
    this.rawIn.push(chunk.slice());
    if (this.hs === undefined) {
      this.pending.push(chunk.slice());
      return;
    }
    let rest = chunk;
    if (this.keys === undefined) {
      if (this.hsError !== undefined) return;
      try {
        const used = this.hs.receive(chunk);
        rest = chunk.subarray(used);
      } catch (e) {
        if (e instanceof ProtocolError) this.hsError = e;
        else this.hsError = new ProtocolError("internal", String(e));
        void this.flushHandshake();
        return;
      }
      void this.flushHandshake();
      if (!this.hs.done) return;
      this.keys = this.hs.result();
      if (!this.keys.plaintext) {
        this.sealer = new RecordSealer(this.keys.cipher, this.keys.tx.key, this.keys.tx.iv);
        this.opener = new RecordOpener(this.keys.cipher, this.keys.rx.key, this.keys.rx.iv);
      }
      this.frames = new FrameReader({ direction: "to-sender", copyPayloads: true });
    }
    if (rest.length > 0) this.onSessionBytes(rest);
  }

  private onSessionBytes(bytes: Uint8Array): void {
    if (this.streamError !== undefined || this.frames === undefined) return;
    try {
      if (this.opener === undefined) {
        for (const f of this.frames.push(bytes)) this.messages.push(decodeReceiverMessage(f));
        return;
      }
      for (const rec of this.opener.push(bytes)) {
        if (rec.type === CONTENT_TYPE_ALERT) {
          this.alerts.push([rec.data[0] ?? -1, rec.data[1] ?? -1]);
        } else if (rec.type === CONTENT_TYPE_APPLICATION_DATA) {
          for (const f of this.frames.push(rec.data)) this.messages.push(decodeReceiverMessage(f));
        }
      }
    } catch (e) {
      this.streamError = e instanceof Error ? e.message : String(e);
    }
  }

  /** What the peer saw, for failure messages. */
  describe(): string {
    const msgs = this.messages.map((m) => {
      switch (m.type) {
        case "want":
          return `WANT id=${m.id} offset=${m.offset}`;
        case "skip":
          return `SKIP id=${m.id}`;
        case "report":
          return `REPORT files=${m.files} bytes=${m.bytes} failures=${JSON.stringify(m.failures)} omitted=${m.omittedFailures}`;
        case "error":
          return `ERROR ${JSON.stringify(m.message)}`;
      }
    });
    return [
      `peer: handshake ${this.keys ? "done" : `not done${this.hsError ? ` (${this.hsError.kind}: ${this.hsError.message})` : ""}`}`,
      `peer: received ${this.rawIn.reduce((s, b) => s + b.length, 0)} bytes; messages: ${msgs.length ? msgs.join(" | ") : "(none)"}`,
      `peer: alerts ${JSON.stringify(this.alerts)}; stream error: ${this.streamError ?? "none"}; socket error: ${this.socketError ?? "none"}; closed: ${this.closed}${this.closed ? ` after ${this.closedAfterMs} ms` : ""}`,
    ].join("\n");
  }
}

// ---------------------------------------------------------------------------------------
// Honest building blocks for a session (docs/PROTOCOL.md section 8.7).

export interface PeerFile {
  id: number;
  path: string;
  data: Uint8Array;
  mode?: number;
  mtimeNs?: bigint;
}

/**
 * ENTRY for a file of `size` bytes. Want mode: waits for the receiver's answer and returns
 * true for WANT (false for SKIP or no answer within `ms`). Push mode: returns true at once
 * (the data follows without an answer).
 */
export async function announceFile(peer: Peer, id: number, path: string, size: number | bigint, mode = 0o644, ms = 3_000): Promise<boolean> {
  await peer.send(rawEntry({ id, kind: KIND.file, mode, size: BigInt(size), path }));
  if (peer.push) return true;
  const m = await peer.waitMessage((x) => (x.type === "want" || x.type === "skip") && x.id === id, ms);
  return m?.type === "want";
}

/** announceFile, and throw unless the receiver accepted the file (so what follows tests what it means to). */
export async function mustAnnounce(peer: Peer, id: number, path: string, size: number | bigint, mode = 0o644): Promise<void> {
  if (!(await announceFile(peer, id, path, size, mode))) {
    throw new Error(`the receiver did not WANT ${path}: the test peer and the engine disagree about the protocol\n${peer.describe()}`);
  }
}

/**
 * A whole file: ENTRY, then (want mode) wait for WANT/SKIP, DATA in 1 MiB chunks, FILE_END.
 * Returns what the receiver answered ("want" in push mode; "none" if it answered nothing
 * within `ms`, in which case no data is sent).
 */
export async function sendFile(peer: Peer, f: PeerFile, ms = 5_000): Promise<"want" | "skip" | "none"> {
  const entry = rawEntry({ id: f.id, kind: KIND.file, mode: f.mode ?? 0o644, mtimeNs: f.mtimeNs, size: BigInt(f.data.length), path: f.path });
  let from = 0;
  if (peer.push) {
    await peer.send(entry);
  } else {
    await peer.send(entry);
    const answer = await peer.waitMessage((m) => (m.type === "want" || m.type === "skip") && m.id === f.id, ms);
    if (answer === undefined) return "none";
    if (answer.type === "skip") return "skip";
    from = answer.type === "want" ? Number(answer.offset) : 0;
  }
  const frames: Uint8Array[] = [];
  for (let off = from; off < f.data.length; off += 1024 * 1024) {
    frames.push(dataFrame(f.id, BigInt(off), f.data.subarray(off, Math.min(f.data.length, off + 1024 * 1024))));
  }
  frames.push(fileEndFrame(f.id));
  await peer.send(...frames);
  return "want";
}

/** ENTRY for a directory. */
export async function sendDir(peer: Peer, id: number, path: string, mode = 0o755): Promise<void> {
  await peer.send(rawEntry({ id, kind: KIND.dir, mode, path }));
}

/** LIST_END, then wait for REPORT (or ERROR, or the close); returns the REPORT if any. */
export async function endList(peer: Peer, ms = 8_000): Promise<ReportMessage | undefined> {
  await peer.send(listEndFrame());
  await peer.waitMessage((m) => m.type === "report" || m.type === "error", ms);
  return peer.report;
}

/** A whole honest session's tail: LIST_END, REPORT, close_notify, FIN, wait for the close. */
export async function finishSession(peer: Peer, ms = 8_000): Promise<ReportMessage | undefined> {
  const report = await endList(peer, ms);
  await peer.close(3_000);
  return report;
}
