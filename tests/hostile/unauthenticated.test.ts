// tests/hostile/unauthenticated.test.ts — peers that never authenticate, against a real
// `uring-sync recv` in its default one-shot mode: garbage (HTTP, a TLS ClientHello, random
// bytes, an oversized handshake header), silence, half-finished handshakes, a wrong secret
// (also with frames pushed right behind the CONFIRM, before the receiver could verify it,
// against a --plaintext receiver), other protocol versions, a peer claiming to be a
// receiver too, an invalid CPace share, and a crowd of silent connections. After each, the
// receiver must still be running, have written nothing, and serve a good sender (then exit
// 0, proving the bad connection did not count as its one session). Garbage is dropped at
// once; silence at the handshake timeout (URING_SYNC_HANDSHAKE_TIMEOUT_MS, else the
// documented 10 s).

import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatResult } from "../helpers/cli.ts";
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_ENV,
  TEST_SECRET,
  expectBothExit,
  expectNoCrash,
  killAllReceivers,
  receiverEnds,
  runSender,
  startReceiver,
  type Receiver,
} from "../helpers/net.ts";
import { KIND, Peer, dataFrame, fileEndFrame, helloMessage, listEndFrame, rawEntry } from "../helpers/net-peer.ts";

/** The receiver's handshake timeout in these tests. */
const HS_MS = 3_000;
/** A silent peer must be dropped by then (the knob, or the documented default if it is not honoured). */
const DROP_BY_MS = Math.max(HS_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS) + 3_000;
/** Garbage must be refused at once: well before the handshake timeout. */
const PROMPT_MS = 2_000;

const roots: string[] = [];
afterEach(killAllReceivers);
afterAll(async () => {
  await killAllReceivers();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const GOOD = { "hello.txt": "good sender\n", "d/e.txt": "after the bad one\n" };
let goodSrc: string | undefined;
function goodTree(): string {
  if (goodSrc === undefined) {
    goodSrc = mkdtempSync("/tmp/uring-sync-unauth-src-");
    roots.push(goodSrc);
    for (const [rel, text] of Object.entries(GOOD)) {
      mkdirSync(join(goodSrc, rel, ".."), { recursive: true });
      writeFileSync(join(goodSrc, rel), text);
    }
  }
  return goodSrc;
}

async function freshReceiver(extraArgs: string[] = []): Promise<{ rcv: Receiver; dst: string }> {
  const base = mkdtempSync("/tmp/uring-sync-unauth-");
  roots.push(base);
  const dst = join(base, "dst");
  const rcv = await startReceiver({ dst, args: extraArgs, env: { [HANDSHAKE_TIMEOUT_ENV]: String(HS_MS) } });
  return { rcv, dst };
}

function expectNothingWritten(dst: string, rcv: Receiver): void {
  const left = existsSync(dst) ? readdirSync(dst) : [];
  if (left.length > 0) throw new Error(`an unauthenticated peer got something written into DST: ${JSON.stringify(left)}\n${rcv.describe()}`);
}

/** The receiver is still up, wrote nothing, then serves a good sender and exits 0. */
async function survivesAndServes(rcv: Receiver, dst: string, what: string, args: string[] = []): Promise<void> {
  await Bun.sleep(100);
  if (!rcv.alive()) throw new Error(`${what}: the receiver must not end because of it\n${rcv.describe()}`);
  expectNothingWritten(dst, rcv);
  const s = await runSender(goodTree(), rcv.address, { args });
  const r = await receiverEnds(rcv, 15_000, s);
  expectBothExit({ send: s, recv: r }, 0, 0);
  for (const [rel, text] of Object.entries(GOOD)) expect(readFileSync(join(dst, rel), "utf8"), `${what}: then ${rel}`).toBe(text);
  expectNoCrash(r.stderr, "receiver", formatResult(r));
}

/** Connect, write `bytes`, and require the receiver to close within `ms`. */
async function garbage(rcv: Receiver, bytes: Uint8Array, ms = PROMPT_MS): Promise<Peer> {
  const p = await Peer.connect(rcv.host, rcv.port);
  await p.writeRaw(bytes);
  const closed = await p.waitClosed(ms);
  if (!closed) throw new Error(`the receiver kept a garbage connection open for ${ms} ms (it must refuse it at once)\n${p.describe()}\n${rcv.describe()}`);
  p.destroy();
  return p;
}

const NOT_USYNC = /protocol|not .*uring-sync|uring-sync peer|handshake|HELLO|magic|garbage|unexpected|frame/i;

describe("garbage is refused at once, and the receiver stays up", () => {
  test("an HTTP request", async () => {
    const { rcv, dst } = await freshReceiver();
    await garbage(rcv, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example\r\n\r\n"));
    await rcv.waitStderr(NOT_USYNC, 3_000, "an error about a peer that does not speak uring-sync");
    await survivesAndServes(rcv, dst, "HTTP garbage");
  }, 60_000);

  test("a TLS ClientHello", async () => {
    const { rcv, dst } = await freshReceiver();
    const hello = Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, ...crypto.getRandomValues(new Uint8Array(160))]);
    await garbage(rcv, hello);
    await rcv.waitStderr(NOT_USYNC, 3_000, "an error about a peer that does not speak uring-sync");
    await survivesAndServes(rcv, dst, "a TLS ClientHello");
  }, 60_000);

  test("64 KiB of random bytes", async () => {
    const { rcv, dst } = await freshReceiver();
    const junk = crypto.getRandomValues(new Uint8Array(65536));
    junk[0] = 0x99;
    await garbage(rcv, junk);
    await survivesAndServes(rcv, dst, "random bytes");
  }, 60_000);

  test("a handshake header announcing 65535 bytes (over the 512-byte limit)", async () => {
    const { rcv, dst } = await freshReceiver();
    await garbage(rcv, Uint8Array.of(0x01, 0xff, 0xff, 0x55, 0x53, 0x59));
    await survivesAndServes(rcv, dst, "an oversized handshake header");
  }, 60_000);

  test("a HELLO of protocol version 2: a clear version error", async () => {
    const { rcv, dst } = await freshReceiver();
    await garbage(rcv, helloMessage({ version: 2 }));
    await rcv.waitStderr(/version/i, 3_000, "a protocol-version error");
    await survivesAndServes(rcv, dst, "a version-2 HELLO");
  }, 60_000);

  test("a peer that says it is a receiver too", async () => {
    const { rcv, dst } = await freshReceiver();
    await garbage(rcv, helloMessage({ role: 2 }));
    await rcv.waitStderr(/both|role|receiver|server|sender/i, 3_000, "an option (role) error");
    await survivesAndServes(rcv, dst, "a second receiver");
  }, 60_000);

  test("an invalid CPace share (the identity element)", async () => {
    const { rcv, dst } = await freshReceiver();
    const share = new Uint8Array(35);
    share.set([0x02, 0x00, 0x20]);
    await garbage(rcv, new Uint8Array([...helloMessage(), ...share]));
    await rcv.waitStderr(/share|auth|invalid|identity/i, 3_000, "an error about the invalid share");
    await survivesAndServes(rcv, dst, "an identity share");
  }, 60_000);
});

describe("silence and half-finished handshakes are dropped at the handshake timeout", () => {
  test("a silent connection", async () => {
    const { rcv, dst } = await freshReceiver();
    const p = await Peer.connect(rcv.host, rcv.port);
    const closed = await p.waitClosed(DROP_BY_MS);
    process.stderr.write(`[unauthenticated] silent connection dropped after ${p.closedAfterMs} ms (${HANDSHAKE_TIMEOUT_ENV}=${HS_MS})\n`);
    p.destroy();
    if (!closed) throw new Error(`a silent connection was still open after ${DROP_BY_MS} ms\n${rcv.describe()}`);
    expect(p.closedAfterMs, "not before the handshake timeout the receiver was given").toBeGreaterThanOrEqual(HS_MS - 500);
    await survivesAndServes(rcv, dst, "silence");
  }, 60_000);

  test("HELLO only, then silence", async () => {
    const { rcv, dst } = await freshReceiver();
    const p = await Peer.connect(rcv.host, rcv.port);
    await p.handshake({ secret: TEST_SECRET, stopAfter: "hello" });
    const closed = await p.waitClosed(DROP_BY_MS);
    p.destroy();
    if (!closed) throw new Error(`a half-finished handshake was still open after ${DROP_BY_MS} ms\n${p.describe()}\n${rcv.describe()}`);
    await survivesAndServes(rcv, dst, "HELLO then silence");
  }, 60_000);

  test("HELLO and SHARE, then the connection closes", async () => {
    const { rcv, dst } = await freshReceiver();
    const p = await Peer.connect(rcv.host, rcv.port);
    await p.handshake({ secret: TEST_SECRET, stopAfter: "share" });
    await Bun.sleep(200);
    p.end();
    const closed = await p.waitClosed(PROMPT_MS);
    p.destroy();
    if (!closed) throw new Error(`the receiver did not close after the peer's FIN mid-handshake\n${p.describe()}\n${rcv.describe()}`);
    await survivesAndServes(rcv, dst, "HELLO and SHARE, then FIN");
  }, 60_000);

  test("ten silent connections at once do not keep a good sender out", async () => {
    const { rcv, dst } = await freshReceiver();
    const parked = await Promise.all(Array.from({ length: 10 }, () => Peer.connect(rcv.host, rcv.port)));
    const t0 = performance.now();
    const s = await runSender(goodTree(), rcv.address);
    const took = performance.now() - t0;
    const r = await receiverEnds(rcv, 15_000, s);
    for (const p of parked) p.destroy();
    expectBothExit({ send: s, recv: r }, 0, 0);
    for (const [rel, text] of Object.entries(GOOD)) expect(readFileSync(join(dst, rel), "utf8")).toBe(text);
    process.stderr.write(`[unauthenticated] good sender beside 10 silent connections took ${Math.round(took)} ms\n`);
    expect(took, "a good sender must not wait for every parked connection's timeout in turn").toBeLessThan(HS_MS + 9_000);
  }, 60_000);
});

describe("a wrong secret", () => {
  test("a peer with the wrong secret fails authentication; the receiver says so and stays up", async () => {
    const { rcv, dst } = await freshReceiver();
    const p = await Peer.connect(rcv.host, rcv.port);
    const hs = await p.handshake({ secret: "a wrong guess" });
    expect(hs.ok, p.describe()).toBe(false);
    expect(hs.errorKind, `the peer sees the receiver's CONFIRM fail to verify\n${p.describe()}`).toBe("auth");
    expect(await p.waitClosed(PROMPT_MS), `the receiver closes after a failed authentication\n${p.describe()}`).toBe(true);
    p.destroy();
    await rcv.waitStderr(/authentication failed/i, 3_000, "'authentication failed'");
    await survivesAndServes(rcv, dst, "a wrong secret");
  }, 60_000);

  test("--plaintext receiver: frames pushed right behind a wrong CONFIRM are never acted on", async () => {
    const { rcv, dst } = await freshReceiver(["--plaintext"]);
    const p = await Peer.connect(rcv.host, rcv.port);
    const data = new TextEncoder().encode("written without authentication\n");
    const hs = await p.handshake({
      secret: "a wrong guess",
      plaintext: true,
      eagerFrames: [
        rawEntry({ id: 1, kind: KIND.dir, mode: 0o755, path: "pwned-dir" }),
        rawEntry({ id: 2, kind: KIND.file, size: BigInt(data.length), path: "pwned.txt" }),
        dataFrame(2, 0n, data),
        fileEndFrame(2),
        listEndFrame(),
      ],
    });
    expect(hs.ok).toBe(false);
    await p.waitClosed(PROMPT_MS);
    p.destroy();
    await rcv.waitStderr(/authentication failed/i, 3_000, "'authentication failed'");
    await survivesAndServes(rcv, dst, "unauthenticated plaintext frames", ["--plaintext"]);
    expect(existsSync(join(dst, "pwned.txt")), "pwned.txt").toBe(false);
    expect(existsSync(join(dst, "pwned-dir")), "pwned-dir").toBe(false);
  }, 60_000);
});
