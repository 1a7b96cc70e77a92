/**
 * Whole transfers: `runSend` (connect, handshake, stream, re-key when a key is nearly
 * used up, read the REPORT) and `runRecv` (listen, serve connections one session at a
 * time, survive every failed or unauthenticated connection).
 *
 * Owns: the ring and loop for the command, connections and their timeouts (handshake
 * 10 s, idle 60 s; URING_SYNC_HANDSHAKE_TIMEOUT_MS / URING_SYNC_IDLE_TIMEOUT_MS override
 * them for tests), choosing the record layer per direction after the handshake (kernel
 * TLS when asked or when `auto` finds it; user-space TLS otherwise; none with
 * --plaintext), the continuation token that ties a re-keyed connection to its session,
 * and tearing everything down in order (operations drained before fds close). Engines
 * (sender.ts, receiver.ts) own the frames; this module never prints: it reports events
 * and returns results or throws typed errors.
 */
import { createHmac } from "node:crypto";
import { InterruptedError, ProtocolError, SysError, UnsupportedError, UsageError } from "../errors.ts";
import { openRing, type RingOptions } from "../uring/backend.ts";
import type { BackendKind } from "../uring/types.ts";
import { formatAddress, resolveAddresses, type HostPort, type Lookup, type SockAddr } from "./address.ts";
import { Channel, type LayerMode } from "./channel.ts";
import { Destination } from "./dest.ts";
import { Handshake, type HandshakeResult } from "./handshake.ts";
import { closeHashPoolOf } from "./hash-pool.ts";
import { warmUpPake } from "./pake.ts";
import { HandshakeIO, formatMs } from "./hsio.ts";
import { enableTlsUlp, setCryptoInfo, setRxExpectNoPad, KTLS_UNAVAILABLE_MESSAGE } from "./ktls.ts";
import { Loop } from "./loop.ts";
import { DEFAULT_MAX_RECORDS_PER_KEY, RecordOpener, RecordSealer, type CipherName } from "./record.ts";
import { RecvEngine, type DataStream, type ReceiverLimits, type RecvStats } from "./receiver.ts";
import { Scanner } from "./scan.ts";
import { SendEngine, type SendFailure, type SendStats, type SenderOptions } from "./sender.ts";
import { trace } from "./trace.ts";
import { Acceptor, closeFd, Connector, listenOn, shutdownFd, type Listener } from "./socket.ts";
import { FLAG_CONTINUATION, FLAG_JOIN, FLAG_STREAMS, SENDER_FLAGS, syncFlagBits, type ReportFailure, type ReportMessage, type SyncOptions } from "./wire.ts";

export type CryptoChoice = "auto" | "kernel" | "user";
/** What the summary reports: where the records were made. */
export type CryptoPath = "kernel" | "user" | "plaintext";

/** HELLO flags (docs/PROTOCOL.md 3.2): defined with the frames, re-exported for callers. */
export { FLAG_CONTINUATION, FLAG_PUSH } from "./wire.ts";

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

export interface TransportOptions {
  secret: Uint8Array;
  crypto: CryptoChoice;
  plaintext: boolean;
  cipher: CipherName;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Records per key per direction before re-keying (tests lower it). */
  maxRecords?: number;
  ring?: RingOptions;
  /** Polled on every wake-up: true aborts (SIGINT). */
  interrupted?: () => boolean;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer (got '${v}')`);
  return n;
}

/** Timeouts and the record limit, from options, else the hidden env vars, else the protocol's defaults. */
/**
 * How often an end that is busy hashing (and sends nothing else) sends KEEPALIVE: well
 * within the peer's idle timeout, whose value this end can only guess from its own.
 */
export function keepaliveMs(idleMs: number): number {
  return Math.max(50, Math.min(5000, Math.floor(idleMs / 4)));
}

export function transportLimits(o: TransportOptions): { handshakeMs: number; idleMs: number; maxRecords: number } {
  return {
    handshakeMs: o.handshakeTimeoutMs ?? envInt("URING_SYNC_HANDSHAKE_TIMEOUT_MS") ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    idleMs: o.idleTimeoutMs ?? envInt("URING_SYNC_IDLE_TIMEOUT_MS") ?? DEFAULT_IDLE_TIMEOUT_MS,
    maxRecords: Math.min(o.maxRecords ?? envInt("URING_SYNC_MAX_RECORDS") ?? DEFAULT_MAX_RECORDS_PER_KEY, DEFAULT_MAX_RECORDS_PER_KEY),
  };
}

export { InterruptedError };

/** The continuation token of a connection: only the two ends of it can compute it. */
export function continuationToken(hs: HandshakeResult, role: "client" | "server"): Uint8Array {
  const c2sKey = role === "client" ? hs.tx.key : hs.rx.key;
  return new Uint8Array(createHmac("sha256", c2sKey).update("usync continue").update(hs.sessionId).digest());
}

/**
 * The JOIN token of a session (docs/PROTOCOL.md 8.8): from its connection 0, so only the
 * two ends of that connection can open data streams for it.
 */
export function joinToken(hs: HandshakeResult, role: "client" | "server"): Uint8Array {
  const c2sKey = role === "client" ? hs.tx.key : hs.rx.key;
  return new Uint8Array(createHmac("sha256", c2sKey).update("usync join").update(hs.sessionId).digest());
}

/**
 * Data streams a receiver takes per session at once (connection 0 not counted): the 15 of
 * `-j 16`, plus one, because a data stream replaced for fresh keys is a new connection whose
 * JOIN can be read before the end of the one it replaces (the receiver may have stopped
 * reading data streams while its writes catch up); refusing it would fail the session.
 */
export const MAX_JOINS = 16;

/** The message for `--crypto kernel` where kTLS is missing (exit 3). */
export function kernelUnavailable(reason: string): UnsupportedError {
  return new UnsupportedError(`kernel TLS is not available here (${reason}); use --crypto user or auto`);
}

/**
 * Puts the record layer on a freshly authenticated socket. Kernel TLS per direction when
 * the choice allows and the kernel takes the keys; otherwise user space. With `kernel`,
 * any refusal is an UnsupportedError (exit 3).
 */
export function makeChannel(loop: Loop, fd: number, hs: HandshakeResult, choice: CryptoChoice, maxRecords: number, maxSend: number): Channel {
  if (hs.plaintext) return new Channel(loop, fd, { tx: "plain", rx: "plain", cipher: hs.cipher, maxSend, maxRecords });
  let tx: LayerMode = "user";
  let rx: LayerMode = "user";
  if (choice !== "user") {
    let ulp = true;
    try {
      enableTlsUlp(fd);
    } catch (e) {
      if (choice === "kernel") throw kernelUnavailable(e instanceof UnsupportedError ? "the tls module is not loaded or not built" : (e as Error).message);
      ulp = false;
    }
    if (ulp) {
      for (const dir of ["tx", "rx"] as const) {
        const keys = dir === "tx" ? hs.tx : hs.rx;
        try {
          setCryptoInfo(fd, dir, { version: "1.3", cipher: hs.cipher, key: keys.key, iv: keys.iv, recSeq: 0n });
          if (dir === "tx") tx = "kernel";
          else rx = "kernel";
        } catch (e) {
          if (choice === "kernel") throw kernelUnavailable(`TLS_${dir.toUpperCase()} with ${hs.cipher}: ${(e as Error).message}`);
        }
      }
      if (rx === "kernel") {
        try {
          // The peer is authenticated and adds no padding: let the kernel decrypt in place.
          setRxExpectNoPad(fd);
        } catch {
          // Older kernels: fine without.
        }
      }
    }
  }
  return new Channel(loop, fd, {
    tx, rx, cipher: hs.cipher, maxSend, maxRecords,
    sealer: tx === "user" ? new RecordSealer(hs.cipher, hs.tx.key, hs.tx.iv, { maxRecords }) : undefined,
    opener: rx === "user" ? new RecordOpener(hs.cipher, hs.rx.key, hs.rx.iv, { maxRecords }) : undefined,
  });
}

export function cryptoPathOf(ch: Channel): CryptoPath {
  if (ch.tx === "plain") return "plaintext";
  return ch.tx === "kernel" || ch.rx === "kernel" ? "kernel" : "user";
}

/**
 * `--crypto kernel` fails before any network traffic where the kernel has no TLS ULP:
 * one loopback connection is enough to tell.
 */
export async function checkKernelTls(): Promise<void> {
  const { LoopbackListener } = await import("../system/loopback.ts");
  const { probeTlsUlp } = await import("../system/ktls-probe.ts");
  const l = new LoopbackListener();
  try {
    const r = probeTlsUlp(l);
    if (!r.ok) throw kernelUnavailable(r.error === "ENOENT" ? KTLS_UNAVAILABLE_MESSAGE.replace(/^kernel TLS is not available: /, "") : r.reason);
  } finally {
    l.close();
  }
}

/** Runs the loop until `channel` has nothing in flight, then closes it (bounded wait). */
async function retire(loop: Loop, ch: Channel, graceMs: number): Promise<void> {
  const until = loop.now() + graceMs;
  await loop.run(() => ch.sendIdle || loop.now() > until || ch.sendFailure !== undefined);
  ch.abort();
  await loop.run(() => !ch.busy);
  ch.close();
}

// =======================================================================================
// send

export interface SendSessionOptions extends TransportOptions {
  src: string;
  target: HostPort;
  /** --checksum, --ignore-times, --delete, --dry-run: carried to the receiver in the HELLO flags. */
  sync?: SyncOptions;
  sender?: SenderOptions;
  lookup?: Lookup;
  /** Called about 10 times a second while the transfer runs. */
  onProgress?: (p: SendProgress) => void;
}

export interface SendProgress {
  stats: SendStats;
  /** Plaintext bytes handed to the connection(s) so far. */
  sentBytes: number;
  scanning: boolean;
}

export interface SendResult {
  stats: SendStats;
  /** Failures on this side and those the receiver reported. */
  failures: SendFailure[];
  /** Failures the receiver reported but did not list (REPORT's cap). */
  omittedFailures: number;
  report: ReportMessage;
  crypto: CryptoPath;
  layer: string;
  cipher: CipherName | null;
  peer: string;
  rekeys: number;
  /** Connections used at once (send -j). */
  streams: number;
  seconds: number;
  backend: BackendKind;
  skipped: string[];
  /** --delete was asked for, but the listing was incomplete (read errors): the receiver deleted nothing. */
  deleteSkipped: boolean;
}

interface Connected {
  fd: number;
  hs: HandshakeResult;
  peer: SockAddr;
}

async function connectAndHandshake(loop: Loop, addrs: SockAddr[], o: TransportOptions, handshakeMs: number, flags: number): Promise<Connected> {
  let last: Error | undefined;
  for (const a of addrs) {
    let fd: number;
    try {
      fd = await Connector.connect(loop, a, handshakeMs);
    } catch (e) {
      last = e as Error;
      continue;
    }
    const hs = new Handshake({ role: "client", secret: o.secret, cipher: o.cipher, plaintext: o.plaintext, flags });
    let result: HandshakeResult | undefined;
    let error: Error | undefined;
    let finished = false;
    const io = new HandshakeIO(loop, fd, hs, handshakeMs, (_io, r, err) => {
      result = r;
      error = err;
      finished = true;
    });
    io.start();
    await loop.run(() => finished);
    if (error !== undefined || result === undefined) {
      closeFd(fd);
      if (error instanceof ProtocolError && error.kind === "timeout") {
        throw new ProtocolError("timeout", `${error.message} from ${formatAddress(a)} (is a uring-sync receiver listening there, and not busy with another transfer?)`);
      }
      throw error ?? new ProtocolError("state", "handshake ended without a result");
    }
    return { fd, hs: result, peer: a };
  }
  if (last instanceof SysError) throw new SysError("connect", last.errno, last.path);
  throw last ?? new UsageError("no address to connect to");
}

export async function runSend(o: SendSessionOptions): Promise<SendResult> {
  const t0 = performance.now();
  const limits = transportLimits(o);
  if (o.crypto === "kernel" && !o.plaintext) await checkKernelTls();
  const sync: SyncOptions = o.sync ?? { checksum: false, ignoreTimes: false, delete: false, dryRun: false };
  // Files are opened on their WANT (a re-run opens none), except with --checksum: hashed while listing.
  const scanner = new Scanner(o.src, o.sender?.filter, !sync.checksum);
  const ring = openRing(o.ring);
  const loop = new Loop(ring);
  // Data streams only carry file data: a dry run has none.
  const streams = sync.dryRun ? 1 : Math.max(1, Math.min(16, o.sender?.streams ?? 1));
  const flags = syncFlagBits(sync) | (streams > 1 ? FLAG_STREAMS : 0);
  const engine = new SendEngine(loop, scanner, { ...o.sender, sync, streams });
  let channel: Channel | undefined;
  let rekeys = 0;
  try {
    const addrs = await resolveAddresses(o.target, false, o.lookup);
    trace("send: start");
    let conn = await connectAndHandshake(loop, addrs, o, limits.handshakeMs, flags);
    trace("send: handshake done");
    channel = makeChannel(loop, conn.fd, conn.hs, o.crypto, limits.maxRecords, engine.maxSend);
    const first = channel;
    const hs0 = conn.hs;
    engine.attach(channel);
    let lastProgress = 0;
    // Bytes sent on connections already closed (re-keyed data streams), for progress.
    let retiredBytes = 0;
    loop.onWake = () => {
      const now = loop.now();
      if (o.interrupted?.() === true) engine.fail(new InterruptedError());
      // Idle: waiting on the network (sends pending, answers to come, or the REPORT) with no
      // progress at all. A receiver that works on an answer for long says KEEPALIVE.
      const chs = engine.channels;
      let waiting = engine.listEndSent || engine.rekeying || engine.awaitingAnswers;
      let last = 0;
      let sent = retiredBytes;
      for (const c of chs) {
        if (!c.sendIdle) waiting = true;
        last = Math.max(last, c.lastSendProgress, c.lastReceive);
        sent += c.sentBytes;
      }
      if (waiting && now - last > limits.idleMs && !engine.hashing) {
        engine.fail(new ProtocolError("timeout", `idle timeout: no progress on the connection for ${formatMs(limits.idleMs)}`));
      }
      engine.keepalive(now, keepaliveMs(limits.idleMs));
      engine.maybeRekeyReady();
      if (o.onProgress !== undefined && now - lastProgress >= 100) {
        lastProgress = now;
        o.onProgress({ stats: engine.stats, sentBytes: sent, scanning: !engine.listingDone });
      }
    };
    // Data streams opened so far (they open while pieces of split files wait for one).
    let joined = 0;
    let streamsFailed = false;
    const moreStreams = (): boolean => !streamsFailed && joined < streams - 1 && engine.piecesQueued;
    for (;;) {
      await loop.run(() => engine.finished || engine.rekeyWanted || engine.laneToReplace >= 0 || moreStreams());
      if (engine.finished) break;
      if (moreStreams() && !engine.rekeyWanted) {
        // A data stream: its own connection and handshake (fresh keys), joined to this
        // session. The other connections keep sending meanwhile.
        // A data stream that cannot be opened (the receiver finished meanwhile and closed
        // it, or refused it) is not an error: the session goes on with the connections it has.
        let c: Connected | undefined;
        try {
          c = await connectAndHandshake(loop, [conn.peer], o, limits.handshakeMs, flags | FLAG_JOIN);
          const ch = makeChannel(loop, c.fd, c.hs, o.crypto, limits.maxRecords, engine.maxSend);
          joined++;
          engine.attachLane(joined, ch, joinToken(hs0, "client"));
        } catch (e) {
          if (c !== undefined) closeFd(c.fd);
          trace(`send: no more data streams: ${(e as Error).message}`);
          streamsFailed = true;
        }
        continue;
      }
      const lane = engine.laneToReplace;
      if (lane >= 0 && !engine.rekeyWanted) {
        // A data stream's key is nearly used up: a new connection (fresh keys) takes its place.
        const old = engine.lanes[lane].channel as Channel;
        retiredBytes += old.sentBytes;
        await retire(loop, old, 1000);
        const c = await connectAndHandshake(loop, [conn.peer], o, limits.handshakeMs, flags | FLAG_JOIN);
        rekeys++;
        engine.attachLane(lane, makeChannel(loop, c.fd, c.hs, o.crypto, limits.maxRecords, engine.maxSend), joinToken(hs0, "client"));
        continue;
      }
      // Re-key: this key is nearly used up. Close this connection and continue the same
      // session on a new one with a fresh handshake (docs/PROTOCOL.md section 12).
      const token = continuationToken(conn.hs, "client");
      await retire(loop, channel, 1000);
      conn = await connectAndHandshake(loop, [conn.peer], o, limits.handshakeMs, flags | FLAG_CONTINUATION);
      channel = makeChannel(loop, conn.fd, conn.hs, o.crypto, limits.maxRecords, engine.maxSend);
      rekeys++;
      engine.attach(channel, token);
    }
    if (engine.error !== undefined) throw engine.error;
    trace("send: REPORT received");
    const report = engine.report as ReportMessage;
    channel.sendCloseNotify();
    for (const c of engine.channels) await retire(loop, c, 2000);
    const failures = [...engine.failures, ...report.failures.map((f: ReportFailure) => ({ ...f }))];
    return {
      stats: engine.stats,
      failures,
      omittedFailures: report.omittedFailures,
      report,
      crypto: cryptoPathOf(first),
      layer: first.describe(),
      cipher: first.tx === "plain" ? null : first.cipher,
      peer: formatAddress(conn.peer),
      rekeys,
      streams: 1 + joined,
      seconds: (performance.now() - t0) / 1000,
      backend: ring.kind,
      skipped: engine.skippedPaths,
      deleteSkipped: engine.listingIncomplete,
    };
  } catch (e) {
    // Drain our reads before the buffers and fds go; then close the connection.
    try {
      if (channel !== undefined && e instanceof InterruptedError && channel.sendFailure === undefined) {
        // Tell the receiver why the stream stops (after what is already queued; briefly).
        engine.sendError("the sender was interrupted");
        const flushUntil = loop.now() + 500;
        const ch = channel;
        await loop.run(() => ch.sendIdle || ch.sendFailure !== undefined || loop.now() > flushUntil);
      }
      const chs = engine.channels;
      if (channel !== undefined && !chs.includes(channel)) chs.push(channel);
      for (const c of chs) c.abort();
      const until = loop.now() + 5000;
      await loop.run(() => (engine.readsInFlight === 0 && chs.every((c) => !c.busy)) || loop.now() > until);
      for (const c of chs) c.close();
    } catch {
      // Best effort.
    }
    engine.abortFiles();
    throw e;
  } finally {
    closeHashPoolOf(ring);
    ring.close();
  }
}

// =======================================================================================
// recv

export interface RecvSessionOptions extends TransportOptions {
  dst: string;
  listen: HostPort;
  keepListening: boolean;
  limits?: Partial<ReceiverLimits>;
  lookup?: Lookup;
  /** Concurrent connections still in their handshake (the oldest is dropped beyond it). */
  maxPendingHandshakes?: number;
  onEvent?: (e: RecvEvent) => void;
  onProgress?: (p: RecvProgress) => void;
}

export type RecvEvent =
  | { type: "listening"; address: string }
  | { type: "connection-failed"; peer: string; error: Error }
  | { type: "session-start"; peer: string; crypto: CryptoPath; layer: string; cipher: CipherName | null }
  | { type: "session-failed"; peer: string; error: Error; stats: RecvStats }
  | { type: "session-done"; result: RecvResult }
  | { type: "rekey"; peer: string };

export interface RecvProgress {
  stats: RecvStats;
  receivedBytes: number;
}

export interface RecvResult {
  stats: RecvStats;
  failures: ReportFailure[];
  crypto: CryptoPath;
  layer: string;
  cipher: CipherName | null;
  peer: string;
  rekeys: number;
  /** Connections of the session open at once at most (send -j N: up to N). */
  streams: number;
  /** The sender asked for a dry run: nothing in DST changed; counts say what would have. */
  dryRun: boolean;
  seconds: number;
  backend: BackendKind;
}

interface ActiveSession {
  engine: RecvEngine;
  channel: Channel;
  first: Channel;
  hs: HandshakeResult;
  peer: string;
  started: number;
  rekeys: number;
  /** live: a connection is attached; waiting: re-keying, the old connection is closed. */
  phase: "live" | "waiting";
  waitUntil: number;
  /** The session's connection 0 (its keys make the JOIN token) and its flags. */
  hs0: HandshakeResult;
  /** Data streams (HELLO flag STREAMS on connection 0): their connections, closed as they end. */
  streams: DataStream[];
  /** Connections open at once at most (connection 0 included; a data stream replaced after re-keying is not counted twice). */
  maxStreams: number;
}

/** The receiver's own sends are small (REPORT, ERROR): this bounds its sealing buffers. */
const RECEIVER_MAX_SEND = 1024 * 1024;

/**
 * Listens and receives. Returns after the first completed session (or never, with
 * keepListening, until interrupted). Failed and unauthenticated connections are
 * reported through onEvent and never end it.
 */
export async function runRecv(o: RecvSessionOptions): Promise<RecvResult[]> {
  const limits = transportLimits(o);
  if (o.crypto === "kernel" && !o.plaintext) await checkKernelTls();
  const dest = new Destination(o.dst);
  let listening = false;
  const ring = openRing(o.ring);
  // One io-wq worker for the receiver's file work (creating files, buffered writes): it
  // runs beside the event loop on the other core, and a second one would only wait for the
  // same directory's lock (files arrive directory by directory). Measured: 100,000 small
  // files 3.03-3.10 s with the default workers, 2.69-2.75 s with one (docs/DESIGN.md).
  ring.backend.setIowqMaxWorkers(1, 0);
  const loop = new Loop(ring);
  const results: RecvResult[] = [];
  const maxPending = o.maxPendingHandshakes ?? 16;
  let listener: Listener | undefined;
  const pending = new Map<HandshakeIO, string>();
  let active: ActiveSession | undefined;
  let acceptor: Acceptor | undefined;
  let fatal: Error | undefined;
  let stop = false;
  // Modes come from the wire exactly (already stripped of setuid/setgid/sticky): no umask.
  const oldUmask = process.umask(0);
  const event = (e: RecvEvent): void => o.onEvent?.(e);

  // Online guessing: each connection is one guess at the secret. After a few failed
  // authentications in a row, handshakes are let through one at a time, at growing
  // intervals (up to 5 s), so guesses cannot be made faster by opening many connections.
  let authFailures = 0;
  let gateOpensAt = 0;
  const deferred: { fd: number; peer: SockAddr | null }[] = [];
  const gateDelay = (): number => (authFailures < 3 ? 0 : Math.min(5000, 250 * 2 ** (authFailures - 3)));

  const startHandshake = (fd: number, peerAddr: SockAddr | null, gated = false): void => {
    if (authFailures >= 3 && !gated) {
      const now = loop.now();
      if (now < gateOpensAt || deferred.length > 0) {
        if (deferred.length >= maxPending) closeFd((deferred.shift() as { fd: number }).fd);
        deferred.push({ fd, peer: peerAddr });
        if (deferred.length === 1) loop.after(Math.max(0, gateOpensAt - now), releaseDeferred);
        return;
      }
      gateOpensAt = now + gateDelay();
    }
    const peer = peerAddr === null ? "unknown peer" : formatAddress(peerAddr);
    if (pending.size >= maxPending) {
      // Too many half-open handshakes: drop the oldest (none can hold a slot for long).
      const oldest = pending.keys().next().value as HandshakeIO;
      shutdownFd(oldest.fd);
    }
    const hs = new Handshake({
      role: "server", secret: o.secret, cipher: o.cipher, plaintext: o.plaintext, acceptPeerFlags: SENDER_FLAGS,
    });
    trace("recv: connection accepted");
    const io = new HandshakeIO(loop, fd, hs, limits.handshakeMs, (done, result, error) => {
      pending.delete(done);
      trace("recv: handshake finished");
      onHandshake(done.fd, peer, result, error);
      // A session waiting to know whether more data streams come.
      active?.engine.checkStreamsEnded();
    });
    pending.set(io, peer);
    io.start();
  };

  const releaseDeferred = (): void => {
    const next = deferred.shift();
    if (next === undefined) return;
    gateOpensAt = loop.now() + gateDelay();
    startHandshake(next.fd, next.peer, true);
    if (deferred.length > 0) loop.after(gateDelay(), releaseDeferred);
  };

  const onHandshake = (fd: number, peer: string, hs: HandshakeResult | undefined, error: Error | undefined): void => {
    if (error instanceof ProtocolError && error.kind === "auth") authFailures++;
    else if (hs !== undefined) authFailures = 0;
    if (error !== undefined || hs === undefined) {
      event({ type: "connection-failed", peer, error: error ?? new ProtocolError("state", "no handshake result") });
      closeFd(fd);
      return;
    }
    const continuation = (hs.peerFlags & FLAG_CONTINUATION) !== 0;
    const s = active;
    if ((hs.peerFlags & FLAG_JOIN) !== 0) {
      // A data stream of a live session (docs/PROTOCOL.md 8.8); its JOIN token is checked on its first frame.
      let refusal: ProtocolError | undefined;
      if (s !== undefined && s.engine.split && (s.engine.state === "reported" || s.engine.state === "done")) {
        // A last data stream of this session, connected after everything arrived: nothing to say.
        closeFd(fd);
        return;
      }
      if (s === undefined || !s.engine.split || (s.engine.state !== "running" && s.engine.state !== "suspended")) {
        refusal = new ProtocolError("options", "a data stream tried to join a session that is not running with data streams");
      } else if ((hs.peerFlags & ~FLAG_JOIN) !== (s.hs0.peerFlags & ~FLAG_CONTINUATION)) {
        refusal = new ProtocolError("options", "a data stream asked for other options than its session");
      } else if (s.streams.filter((d) => !d.closed).length >= MAX_JOINS) {
        refusal = new ProtocolError("limit", `more than ${MAX_JOINS} data streams in one session`);
      }
      let channel: Channel | undefined;
      if (refusal === undefined && s !== undefined) {
        try {
          channel = makeChannel(loop, fd, hs, o.crypto, limits.maxRecords, RECEIVER_MAX_SEND);
        } catch (e) {
          refusal = e as ProtocolError;
        }
      }
      if (refusal !== undefined || channel === undefined || s === undefined) {
        event({ type: "connection-failed", peer, error: refusal ?? new ProtocolError("state", "no channel") });
        closeFd(fd);
        return;
      }
      s.streams.push(s.engine.addStream(channel, joinToken(s.hs0, "server")));
      s.maxStreams = Math.max(s.maxStreams, 1 + s.streams.filter((d) => !d.closed).length);
      return;
    }
    if (continuation ? s === undefined || s.phase !== "waiting" : s !== undefined) {
      event({
        type: "connection-failed", peer,
        error: new ProtocolError("options", continuation
          ? "a connection tried to continue a session that is not waiting to be continued"
          : "refused: the receiver is busy with another transfer"),
      });
      closeFd(fd);
      return;
    }
    let channel: Channel;
    try {
      channel = makeChannel(loop, fd, hs, o.crypto, limits.maxRecords, RECEIVER_MAX_SEND);
    } catch (e) {
      if (e instanceof UnsupportedError) fatal = e;
      event({ type: "connection-failed", peer, error: e as Error });
      closeFd(fd);
      return;
    }
    // One session at a time: take no new connections meanwhile; drop the half-open ones.
    // (A session with data streams keeps accepting: its streams connect now.)
    if ((hs.peerFlags & FLAG_STREAMS) === 0) {
      acceptor?.stop();
      for (const io of pending.keys()) shutdownFd(io.fd);
    }
    if (s !== undefined) {
      // The continuation of a re-keyed session: its first frame must carry the token.
      const token = continuationToken(s.hs, "server");
      s.channel = channel;
      s.hs = hs;
      s.rekeys++;
      s.phase = "live";
      event({ type: "rekey", peer });
      s.engine.attach(channel, token, hs.peerFlags);
      return;
    }
    const engine = new RecvEngine(loop, dest, o.limits);
    engine.handshaking = () => pending.size > 0;
    active = { engine, channel, first: channel, hs, peer, started: performance.now(), rekeys: 0, phase: "live", waitUntil: 0, hs0: hs, streams: [], maxStreams: 1 };
    event({ type: "session-start", peer, crypto: cryptoPathOf(channel), layer: channel.describe(), cipher: channel.tx === "plain" ? null : channel.cipher });
    engine.attach(channel, undefined, hs.peerFlags);
  };

  /** Ends every data stream connection of a session (they carry nothing back). */
  const closeStreams = async (s: ActiveSession): Promise<void> => {
    for (const d of s.streams) d.channel.abort();
    const until = loop.now() + 5000;
    await loop.run(() => s.streams.every((d) => !d.channel.busy) || loop.now() > until);
    for (const d of s.streams) d.channel.close();
    s.streams.length = 0;
  };

  /** A live session's engine left "running": suspend for a re-key, or finish. */
  const settle = async (s: ActiveSession): Promise<void> => {
    const e = s.engine;
    if (e.state === "suspended") {
      // The sender re-keys: answer its close_notify, close, wait for the continuation.
      s.phase = "waiting";
      s.channel.sendCloseNotify();
      await retire(loop, s.channel, 1000);
      s.waitUntil = loop.now() + limits.handshakeMs + 5000;
      if (e.state === "suspended") acceptor?.start();
      return;
    }
    if (e.state === "reported") {
      // Wait (briefly) for the sender's close_notify so our REPORT is not cut by a reset.
      const until = loop.now() + 5000;
      await loop.run(() => e.state !== "reported" || loop.now() > until);
    }
    if (s.phase === "live") {
      if (e.state === "failed") s.channel.abort();
      await retire(loop, s.channel, 2000);
    }
    await closeStreams(s);
    const drainUntil = loop.now() + 30_000;
    await loop.run(() => e.quiescent || loop.now() > drainUntil);
    if (e.state === "failed") {
      e.cleanup();
      event({ type: "session-failed", peer: s.peer, error: e.error ?? new Error("failed"), stats: e.stats });
    } else {
      const r: RecvResult = {
        stats: e.stats,
        failures: e.failures,
        crypto: cryptoPathOf(s.first),
        layer: s.first.describe(),
        cipher: s.first.tx === "plain" ? null : s.first.cipher,
        peer: s.peer,
        rekeys: s.rekeys,
        streams: s.maxStreams,
        dryRun: e.dryRun,
        seconds: (performance.now() - s.started) / 1000,
        backend: ring.kind,
      };
      results.push(r);
      event({ type: "session-done", result: r });
      if (!o.keepListening) stop = true;
    }
    active = undefined;
    if (!stop && fatal === undefined) acceptor?.start();
  };

  try {
    const addrs = await resolveAddresses(o.listen, true, o.lookup);
    listener = listenOn(addrs, o.listen.host === "");
    listening = true;
    event({ type: "listening", address: formatAddress(listener.local) });
    // While no sender is here yet: one throwaway CPace run, so the first real handshake
    // does not wait for the curve code to warm up (~25 ms on this machine's first run).
    warmUpPake();
    acceptor = new Acceptor(loop, listener.fd, (fd, peer) => startHandshake(fd, peer), (e) => event({ type: "connection-failed", peer: "(accept)", error: e }));
    acceptor.start();
    let lastProgress = 0;
    loop.onWake = () => {
      const now = loop.now();
      if (o.interrupted?.() === true && fatal === undefined) {
        fatal = new InterruptedError();
        if (active !== undefined) active.engine.fail(fatal);
        return;
      }
      const s = active;
      if (s === undefined) return;
      if (s.phase === "waiting") {
        if (s.waitUntil > 0 && now > s.waitUntil) {
          s.engine.fail(new ProtocolError("timeout", "the sender did not continue its session after re-keying"));
        }
        return;
      }
      // Idle: nothing from the sender and no local progress either (a receiver paused
      // while its disk catches up is not idle; one stuck on a peer's promise is).
      let lastReceive = s.channel.lastReceive;
      let received = s.channel.receivedBytes;
      for (const d of s.streams) {
        lastReceive = Math.max(lastReceive, d.channel.lastReceive);
        received += d.channel.receivedBytes;
        // A stream that ended cleanly: its connection goes now.
        if (d.closed && !d.channel.busy) d.channel.close();
        else if (d.closed) d.channel.abort();
      }
      // Hashing our own copies (--checksum, resume) and the --delete pass are progress; the
      // sender hears KEEPALIVEs (or DELETED frames).
      if (s.engine.busyLocally) s.engine.lastProgress = now;
      s.engine.keepalive(now, keepaliveMs(limits.idleMs));
      if (s.engine.state === "running" && now - Math.max(lastReceive, s.engine.lastProgress) > limits.idleMs) {
        s.engine.fail(new ProtocolError("timeout", `idle timeout: nothing received for ${formatMs(limits.idleMs)}`));
      }
      if (o.onProgress !== undefined && now - lastProgress >= 100) {
        lastProgress = now;
        o.onProgress({ stats: s.engine.stats, receivedBytes: received });
      }
    };
    const needsAttention = (): boolean => {
      if (stop || fatal !== undefined) return true;
      const s = active;
      if (s === undefined) return false;
      if (s.phase === "waiting") return s.engine.state === "failed";
      return s.engine.state !== "running";
    };
    while (!stop && fatal === undefined) {
      await loop.run(needsAttention);
      if (fatal !== undefined || stop) break;
      if (active !== undefined) await settle(active);
    }
    if (fatal !== undefined) throw fatal;
    return results;
  } finally {
    acceptor?.stop();
    for (const io of pending.keys()) shutdownFd(io.fd);
    for (const d of deferred) closeFd(d.fd);
    deferred.length = 0;
    const s = active;
    if (s !== undefined) {
      if (s.engine.state !== "done" && s.engine.state !== "failed") s.engine.fail(fatal ?? new InterruptedError());
      try {
        if (s.phase === "live") {
          // Let an ERROR for the sender go out first (briefly).
          const flushUntil = loop.now() + 500;
          await loop.run(() => s.channel.sendIdle || s.channel.sendFailure !== undefined || loop.now() > flushUntil);
          s.channel.abort();
        }
        for (const d of s.streams) d.channel.abort();
        const until = loop.now() + 5000;
        await loop.run(() => (s.engine.quiescent && !s.channel.busy && s.streams.every((d) => !d.channel.busy) && pending.size === 0) || loop.now() > until);
        s.channel.close();
        for (const d of s.streams) d.channel.close();
      } catch {
        // Best effort.
      }
      s.engine.cleanup();
    }
    if (acceptor !== undefined) {
      // A session with data streams kept accepting: let the cancelled ACCEPT complete, so
      // the port is released when this returns (not when the ring is torn down later).
      const a = acceptor;
      const until = loop.now() + 1000;
      await loop.run(() => a.idle || loop.now() > until);
    }
    if (listener !== undefined) closeFd(listener.fd);
    // Could not listen (address in use, not local...): a DST made for this run goes again.
    if (listening) dest.close();
    else dest.closeAndUnmake();
    closeHashPoolOf(ring);
    ring.close();
    process.umask(oldUmask);
  }
}
