/**
 * The channel's user-space record path end to end on a real loopback TCP pair and a real
 * ring: one Channel seals (TX "user"), the other opens (RX "user"). The opener decrypts in
 * place inside the receive buffer (libcrypto) or into fresh buffers (node:crypto); either
 * way the pieces handed to the sink must stay intact while the sink applies backpressure,
 * across records split between receives (a small receive buffer forces that), until the
 * close_notify.
 */
import { describe, expect, test } from "bun:test";
import { libc } from "../../ffi/libc.ts";
import { Channel, type ChannelSink } from "../../src/net/channel.ts";
import { Loop } from "../../src/net/loop.ts";
import { pinned } from "../../src/net/mem.ts";
import { opensslAvailable, RecordOpener, RecordSealer, type AeadBackend } from "../../src/net/record.ts";
import { LoopbackListener, type LoopbackPair } from "../../src/system/loopback.ts";
import { openRing } from "../../src/uring/backend.ts";
import { pattern } from "../helpers/fuzz.ts";

/** Takes at most `bite` bytes per call and pauses every other call; resumes on the next tick. */
class SlowSink implements ChannelSink {
  readonly got: Uint8Array;
  fill = 0;
  closed: boolean | undefined;
  error: Error | undefined;
  private calls = 0;
  /** Without `pause`, takes everything at once. */
  constructor(size: number, private readonly bite: number, private readonly pause?: () => void) {
    this.got = new Uint8Array(size);
  }
  onData(chunk: Uint8Array): number {
    if (this.pause === undefined) {
      this.got.set(chunk, this.fill);
      this.fill += chunk.length;
      return chunk.length;
    }
    this.calls++;
    if (this.calls % 2 === 0) {
      this.pause();
      return 0;
    }
    const n = Math.min(chunk.length, this.bite, this.got.length - this.fill);
    this.got.set(chunk.subarray(0, n), this.fill);
    this.fill += n;
    if (n < chunk.length) this.pause();
    return n;
  }
  onClose(clean: boolean): void {
    this.closed = clean;
  }
  onError(e: Error): void {
    this.error = e;
  }
}

/**
 * A ring with its loop and a connected loopback socket pair. `end` aborts the channels,
 * runs the loop until nothing of theirs is in flight (or `until`), then closes them, the
 * sockets and the ring.
 */
function connectedPair(): { loop: Loop; pair: LoopbackPair; end: (channels: Channel[], until: number) => Promise<void> } {
  const ring = openRing({ entries: 64 });
  const loop = new Loop(ring, 1);
  const listener = new LoopbackListener(3000);
  const pair = listener.connect();
  listener.close();
  const end = async (channels: Channel[], until: number): Promise<void> => {
    for (const c of channels) c.abort();
    await loop.run(() => channels.every((c) => !c.busy) || loop.now() > until);
    for (const c of channels) c.close();
    pair.close();
    ring.close();
  };
  return { loop, pair, end };
}

const backends: AeadBackend[] = [...(opensslAvailable() ? ["openssl" as const] : []), "node"];

describe("user-space records through two channels", () => {
  for (const backend of backends) {
    test(`${backend}: 3 MiB in odd-sized sends arrive intact under backpressure, then close_notify`, async () => {
      const { loop, pair, end } = connectedPair();
      const key = pattern(16, 1);
      const iv = pattern(12, 2);
      const tx = new Channel(loop, pair.client, {
        tx: "user", rx: "user", cipher: "aes-128-gcm", maxSend: 1 << 20,
        sealer: new RecordSealer("aes-128-gcm", key, iv, {}, backend),
        opener: new RecordOpener("aes-128-gcm", pattern(16, 3), iv, {}, backend),
      });
      // A receive buffer smaller than two records: most records straddle two receives.
      const rx = new Channel(loop, pair.server, {
        tx: "user", rx: "user", cipher: "aes-128-gcm", maxSend: 1 << 16, recvBytes: 20_000,
        sealer: new RecordSealer("aes-128-gcm", pattern(16, 3), iv, {}, backend),
        opener: new RecordOpener("aes-128-gcm", key, iv, {}, backend),
      });
      const total = 3 * 1024 * 1024 + 12345;
      const data = pattern(total, 7);
      let resumeQueued = false;
      const sink = new SlowSink(total, 7000, () => {
        if (resumeQueued) return;
        resumeQueued = true;
        loop.after(0, () => {
          resumeQueued = false;
          rx.resumeReceive();
        });
      });
      rx.startReceive(sink);
      // The sender's side: sends of several sizes from one pinned buffer, in order.
      const src = pinned(total);
      src.u8.set(data);
      const sizes = [1, 100, 16384, 16385, 40000, 1 << 20];
      let at = 0;
      for (let i = 0; at < total; i++) {
        const n = Math.min(sizes[i % sizes.length], total - at);
        tx.send(src.u8.subarray(at), src.addr + at, n, at + n < total);
        at += n;
      }
      tx.sendCloseNotify();
      const until = loop.now() + 30_000;
      await loop.run(() => sink.closed !== undefined || sink.error !== undefined || loop.now() > until);
      expect(sink.error).toBeUndefined();
      expect(sink.closed).toBe(true);
      expect(sink.fill).toBe(total);
      expect(Buffer.compare(sink.got, data)).toBe(0);
      expect(rx.receivedBytes).toBe(total);
      expect(tx.sentBytes).toBe(total);
      await end([tx, rx], until);
    }, 60_000);
  }

  for (const mode of ["user", "plain"] as const) {
    test(`${mode}: done runs from the SEND completion, never inside send(), and the last one sees the channel idle`, async () => {
      // Engines pump from `done` and use the last completion to learn the connection is idle
      // (the sender then flushes its half-full buffer); a `done` run inside send() was lost
      // to the sender's re-entrancy guard and stalled want-mode transfers for good.
      const { loop, pair, end } = connectedPair();
      const key = pattern(16, 1);
      const iv = pattern(12, 2);
      const tx = new Channel(loop, pair.client, {
        tx: mode, rx: mode, cipher: "aes-128-gcm", maxSend: 1 << 16,
        sealer: mode === "user" ? new RecordSealer("aes-128-gcm", key, iv) : undefined,
        opener: mode === "user" ? new RecordOpener("aes-128-gcm", key, iv) : undefined,
      });
      const src = pinned(3 << 16);
      let inSend = false;
      const calls: { item: number; inSend: boolean; idle: boolean }[] = [];
      for (let i = 0; i < 3; i++) {
        inSend = true;
        tx.send(src.u8.subarray(i << 16), src.addr + (i << 16), 1 << 16, i < 2, () => calls.push({ item: i, inSend, idle: tx.sendIdle }));
        inSend = false;
      }
      const until = loop.now() + 10_000;
      await loop.run(() => calls.length === 3 || loop.now() > until);
      expect(calls.map((c) => c.item)).toEqual([0, 1, 2]);
      expect(calls.some((c) => c.inSend)).toBe(false);
      expect(calls[2].idle).toBe(true);
      expect(tx.sentBytes).toBe(3 << 16);
      await end([tx], until);
    });
  }

  test("a flipped bit on the wire is a record error for the receiving channel, and nothing after it is delivered", async () => {
    const { loop, pair, end } = connectedPair();
    const key = pattern(16, 1);
    const iv = pattern(12, 2);
    const rx = new Channel(loop, pair.server, {
      tx: "plain", rx: "user", cipher: "aes-128-gcm", maxSend: 1 << 16,
      opener: new RecordOpener("aes-128-gcm", key, iv),
    });
    const sealer = new RecordSealer("aes-128-gcm", key, iv);
    const good = sealer.seal(pattern(1000, 4));
    const bad = sealer.seal(pattern(1000, 5));
    bad[500] ^= 0x40;
    const after = sealer.seal(pattern(1000, 6));
    const sink = new SlowSink(3000, 1 << 20);
    rx.startReceive(sink);
    const until = loop.now() + 10_000;
    expect(libc.send(pair.client, good, good.length, 0)).toBe(good.length);
    await loop.run(() => sink.fill === 1000 || loop.now() > until);
    const rest = Buffer.concat([bad, after]);
    expect(libc.send(pair.client, rest, rest.length, 0)).toBe(rest.length);
    await loop.run(() => sink.error !== undefined || loop.now() > until);
    expect(sink.error?.message).toMatch(/failed authentication/);
    expect(sink.fill).toBe(1000);
    expect(Buffer.compare(sink.got.subarray(0, 1000), pattern(1000, 4))).toBe(0);
    await end([rx], until);
  });
});
