// The handshake state machine, driven in memory: success, failures, framing, binding.
import { describe, expect, test } from "bun:test";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ProtocolError } from "../../src/errors.ts";
import { catchErr } from "../helpers/throws.ts";
import { cpaceStart, transcriptIr as transcriptIrOf } from "../../src/net/pake.ts";
import {
  AUTH_FAILED_MESSAGE,
  CPACE_CI,
  Handshake,
  HELLO_BODY_LENGTH,
  HS_HEADER_LENGTH,
  HS_MAX_BODY,
  secretFromString,
  type HandshakeConfig,
  type HandshakeResult,
} from "../../src/net/handshake.ts";
import { CIPHERS, CIPHER_KEY_LENGTH, RecordOpener, RecordSealer } from "../../src/net/record.ts";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

type Tamper = (from: "client" | "server", msg: Uint8Array, index: number) => Uint8Array;

interface Outcome {
  client: HandshakeResult | ProtocolError | Error;
  server: HandshakeResult | ProtocolError | Error;
  wire: Uint8Array[];
}

/**
 * Shuttles messages between two handshakes until both finish or fail, like two
 * transports would: a side that failed still flushes what it had queued, as the
 * handshake contract asks, and ignores what arrives afterwards.
 */
function pump(client: Handshake, server: Handshake, tamper?: Tamper): Outcome {
  const wire: Uint8Array[] = [];
  const err: { client?: Error; server?: Error } = {};
  const counts = { client: 0, server: 0 };
  const sides = [
    ["client", client, server, "server"],
    ["server", server, client, "client"],
  ] as const;
  for (let round = 0; round < 10; round++) {
    let moved = false;
    for (const [name, from, to, toName] of sides) {
      let m: Uint8Array | null;
      while ((m = from.nextOutgoing()) !== null) {
        moved = true;
        const sent = tamper ? tamper(name, m, counts[name]++) : m;
        wire.push(sent);
        if (err[toName]) continue;
        try {
          to.receive(sent);
        } catch (e) {
          err[toName] = e as Error;
        }
      }
    }
    if (!moved) break;
  }
  const fin = (h: Handshake, e: Error | undefined): HandshakeResult | Error => e ?? (h.done ? h.result() : new Error("stalled"));
  return { client: fin(client, err.client), server: fin(server, err.server), wire };
}

function pair(c: Partial<HandshakeConfig> = {}, s: Partial<HandshakeConfig> = {}): [Handshake, Handshake] {
  const secret = ascii("open sesame");
  return [new Handshake({ role: "client", secret, ...c }), new Handshake({ role: "server", secret, ...s })];
}

function expectKind(x: unknown, kind: string): ProtocolError {
  expect(x).toBeInstanceOf(ProtocolError);
  expect((x as ProtocolError).kind).toBe(kind);
  return x as ProtocolError;
}

function ok(x: HandshakeResult | Error): HandshakeResult {
  if (x instanceof Error) throw x;
  return x;
}

describe("successful handshake", () => {
  for (const cipher of CIPHERS) {
    test(`${cipher}: both sides agree on crossed keys`, () => {
      const [c, s] = pair({ cipher }, { cipher });
      const out = pump(c, s);
      const rc = ok(out.client);
      const rs = ok(out.server);
      expect(rc.cipher).toBe(cipher);
      expect(rc.tx.key.length).toBe(CIPHER_KEY_LENGTH[cipher]);
      expect(rc.tx.iv.length).toBe(12);
      expect(toHex(rc.tx.key)).toBe(toHex(rs.rx.key));
      expect(toHex(rc.tx.iv)).toBe(toHex(rs.rx.iv));
      expect(toHex(rc.rx.key)).toBe(toHex(rs.tx.key));
      expect(toHex(rc.rx.iv)).toBe(toHex(rs.tx.iv));
      expect(toHex(rc.tx.key)).not.toBe(toHex(rc.rx.key));
      expect(toHex(rc.sessionId)).toBe(toHex(rs.sessionId));
      expect(rc.plaintext).toBe(false);
      // The keys actually work with the record layer in both directions.
      const rec = new RecordSealer(cipher, rc.tx.key, rc.tx.iv).seal(ascii("ping"));
      expect(new TextDecoder().decode(new RecordOpener(cipher, rs.rx.key, rs.rx.iv).open(rec).data)).toBe("ping");
    });
  }

  test("six messages cross the wire: HELLO, SHARE, CONFIRM each way", () => {
    const [c, s] = pair();
    const out = pump(c, s);
    ok(out.client);
    expect(out.wire.map((m) => m[0]).sort()).toEqual([1, 1, 2, 2, 3, 3]);
    expect(out.wire.find((m) => m[0] === 1)!.length).toBe(HS_HEADER_LENGTH + HELLO_BODY_LENGTH);
  });

  test("plaintext on both ends is allowed and reported", () => {
    const [c, s] = pair({ plaintext: true }, { plaintext: true });
    const out = pump(c, s);
    expect(ok(out.client).plaintext).toBe(true);
    expect(ok(out.server).plaintext).toBe(true);
  });

  test("flags travel and are bound; accepted bits pass", () => {
    const [c, s] = pair({ flags: 0b101 }, { acceptPeerFlags: 0b111, flags: 0 });
    const out = pump(c, s);
    expect(ok(out.server).peerFlags).toBe(0b101);
    expect(ok(out.client).flags).toBe(0b101);
  });

  test("fresh keys every session with the same secret", () => {
    const a = pump(...pair());
    const b = pump(...pair());
    expect(toHex(ok(a.client).tx.key)).not.toBe(toHex(ok(b.client).tx.key));
    expect(toHex(ok(a.client).sessionId)).not.toBe(toHex(ok(b.client).sessionId));
  });

  test("no message contains the secret", () => {
    const secret = ascii("Tr0ub4dor&3-correct-horse-battery-staple");
    const c = new Handshake({ role: "client", secret });
    const s = new Handshake({ role: "server", secret });
    const out = pump(c, s);
    ok(out.client);
    const all = Buffer.concat(out.wire);
    for (let i = 0; i + 6 <= secret.length; i++) {
      expect(all.includes(Buffer.from(secret.subarray(i, i + 6)))).toBe(false);
    }
  });

  test("byte-exact reading: bytesNeeded never asks for more than the handshake", () => {
    const [c, s] = pair();
    const toServer: number[] = [];
    const toClient: number[] = [];
    const flush = (from: Handshake, q: number[]): void => {
      let m: Uint8Array | null;
      while ((m = from.nextOutgoing()) !== null) q.push(...m);
    };
    for (let i = 0; i < 20 && !(c.done && s.done); i++) {
      flush(c, toServer);
      flush(s, toClient);
      for (const [h, q] of [[s, toServer], [c, toClient]] as const) {
        let n: number;
        while ((n = h.bytesNeeded()) > 0 && q.length >= n) {
          expect(h.receive(Uint8Array.from(q.splice(0, n)))).toBe(n);
        }
      }
    }
    expect(c.done && s.done).toBe(true);
    expect(c.bytesNeeded()).toBe(0);
    expect(toServer.length + toClient.length).toBe(0);
  });

  test("receive stops at the end of the handshake and leaves record bytes alone", () => {
    const [c, s] = pair();
    let m: Uint8Array | null;
    // Run until the client has queued its CONFIRM but the server has not seen it.
    while ((m = c.nextOutgoing()) !== null) s.receive(m);
    while ((m = s.nextOutgoing()) !== null) c.receive(m);
    const rest: number[] = [];
    while ((m = c.nextOutgoing()) !== null) rest.push(...m);
    const trailing = [0x17, 0x03, 0x03, 0x00, 0x20];
    // rest = the client's SHARE and CONFIRM; the trailing bytes are its first record.
    const consumed = s.receive(Uint8Array.from([...rest, ...trailing]));
    expect(rest.length).toBe(70);
    expect(consumed).toBe(70);
    expect(s.done).toBe(true);
    expect(s.receive(Uint8Array.from(trailing))).toBe(0);
  });
});

describe("failures are ProtocolErrors on both sides", () => {
  test("wrong secret: auth error with the documented message, both sides", () => {
    const c = new Handshake({ role: "client", secret: ascii("alpha") });
    const s = new Handshake({ role: "server", secret: ascii("alpha!") });
    const out = pump(c, s);
    expect(expectKind(out.client, "auth").message).toBe(AUTH_FAILED_MESSAGE);
    expect(expectKind(out.server, "auth").message).toBe(AUTH_FAILED_MESSAGE);
    expect(AUTH_FAILED_MESSAGE).toBe("authentication failed: wrong secret (or a peer that is not uring-sync)");
  });

  test("wrong secret with SHARE+CONFIRM in one read: the failing side can still flush its CONFIRM", () => {
    const c = new Handshake({ role: "client", secret: ascii("alpha") });
    const s = new Handshake({ role: "server", secret: ascii("beta") });
    let m: Uint8Array | null;
    while ((m = c.nextOutgoing()) !== null) s.receive(m);
    while ((m = s.nextOutgoing()) !== null) c.receive(m);
    const chunk: number[] = [];
    while ((m = c.nextOutgoing()) !== null) chunk.push(...m);
    expectKind(catchErr(() => s.receive(Uint8Array.from(chunk))), "auth");
    const confirm = s.nextOutgoing();
    expect(confirm?.[0]).toBe(3);
    expectKind(catchErr(() => c.receive(confirm!)), "auth");
  });

  test("cipher mismatch", () => {
    const out = pump(...pair({ cipher: "aes-128-gcm" }, { cipher: "chacha20-poly1305" }));
    expect(expectKind(out.client, "options").message).toContain("cipher");
    expect(expectKind(out.server, "options").message).toContain("cipher");
  });

  test("plaintext on one side only", () => {
    const out = pump(...pair({ plaintext: true }, {}));
    expect(expectKind(out.client, "options").message).toContain("plaintext");
    expect(expectKind(out.server, "options").message).toContain("plaintext");
  });

  test("two clients", () => {
    const secret = ascii("x");
    const out = pump(new Handshake({ role: "client", secret }), new Handshake({ role: "client", secret }));
    expectKind(out.client, "options");
    expectKind(out.server, "options");
  });

  test("flags the peer does not accept", () => {
    const out = pump(...pair({ flags: 0x10 }, { acceptPeerFlags: 0x01 }));
    expect(expectKind(out.server, "options").message).toContain("0x10");
  });

  test("protocol version mismatch", () => {
    const [c, s] = pair();
    const hello = c.nextOutgoing()!;
    hello[HS_HEADER_LENGTH + 6] = 2; // version u16 at body offset 5
    expect(expectKind(catchErr(() => s.receive(hello)), "version").message).toContain("version 2");
  });

  test("tampered HELLO in flight fails confirmation (transcript binding)", () => {
    // Flip a nonce byte of the client's HELLO: options still match, keys must not.
    const out = pump(...pair(), (from, m, i) => {
      if (from === "client" && i === 0) {
        const t = m.slice();
        t[HS_HEADER_LENGTH + 20] ^= 1;
        return t;
      }
      return m;
    });
    expectKind(out.client, "auth");
    expectKind(out.server, "auth");
  });

  test("tampered flags (accepted by both) fail confirmation", () => {
    const out = pump(...pair({ acceptPeerFlags: 0xffffffff }, { acceptPeerFlags: 0xffffffff }), (from, m, i) => {
      if (from === "server" && i === 0) {
        const t = m.slice();
        t[HS_HEADER_LENGTH + 45] ^= 0x40;
        return t;
      }
      return m;
    });
    expectKind(out.client, "auth");
    expectKind(out.server, "auth");
  });

  test("a SHARE replaced in flight fails confirmation on both sides", () => {
    // A man in the middle swaps in a valid share made with a guessed secret.
    const guessed = cpaceStart(ascii("guess"), crypto.getRandomValues(new Uint8Array(64)), CPACE_CI).share;
    const out = pump(...pair(), (from, m) => {
      if (from === "server" && m[0] === 2) {
        const t = m.slice();
        t.set(guessed, HS_HEADER_LENGTH);
        return t;
      }
      return m;
    });
    expectKind(out.client, "auth");
    expectKind(out.server, "auth");
  });

  test("a reflected CONFIRM does not verify", () => {
    const [c, s] = pair();
    let m: Uint8Array | null;
    while ((m = c.nextOutgoing()) !== null) s.receive(m);
    while ((m = s.nextOutgoing()) !== null) if (m[0] !== 3) c.receive(m);
    let myConfirm: Uint8Array | undefined;
    while ((m = c.nextOutgoing()) !== null) if (m[0] === 3) myConfirm = m;
    expectKind(catchErr(() => c.receive(myConfirm!)), "auth");
  });

  test("after a failure every call rethrows the same error and nothing new is queued", () => {
    const [c] = pair();
    const garbage = ascii("GET / HTTP/1.1\r\n");
    const e1 = catchErr(() => c.receive(garbage));
    expectKind(e1, "frame");
    expect((e1 as Error).message).toContain("does not speak the uring-sync protocol");
    expect(catchErr(() => c.receive(new Uint8Array(1)))).toBe(e1);
    expect(c.bytesNeeded()).toBe(0);
    // Only the HELLO queued at construction is left to flush; nothing new appears.
    expect(c.nextOutgoing()![0]).toBe(1);
    expect(c.nextOutgoing()).toBeNull();
  });

  test("result() before completion is an error", () => {
    const [c] = pair();
    expectKind(catchErr(() => c.result()), "state");
  });
});

describe("framing limits", () => {
  const header = (type: number, len: number): Uint8Array => Uint8Array.of(type, len >>> 8, len & 0xff);

  test("oversized length is rejected from the header alone, before any body byte", () => {
    const [, s] = pair();
    const e = catchErr(() => s.receive(header(1, HS_MAX_BODY + 1)));
    expect(expectKind(e, "frame").message).toContain("exceeds");
  });

  test("largest length is accepted as a header, and bytesNeeded reflects it", () => {
    const [, s] = pair();
    expect(s.receive(header(1, HS_MAX_BODY))).toBe(3);
    expect(s.bytesNeeded()).toBe(HS_MAX_BODY);
  });

  test("HELLO too short to hold magic and version", () => {
    const [, s] = pair();
    expectKind(catchErr(() => s.receive(header(1, 6))), "frame");
  });

  test("truncated HELLO body (valid magic and version, wrong length)", () => {
    const [c, s] = pair();
    const hello = c.nextOutgoing()!;
    const short = new Uint8Array(3 + 20);
    short.set(hello.subarray(0, 23));
    short[2] = 20;
    expect(expectKind(catchErr(() => s.receive(short)), "frame").message).toContain("length");
  });

  test("bad magic", () => {
    const [c, s] = pair();
    const hello = c.nextOutgoing()!.slice();
    hello[3] = 0x58;
    expectKind(catchErr(() => s.receive(hello)), "frame");
  });

  test("unknown cipher id and bad plaintext byte", () => {
    for (const [at, v, kind] of [
      [40, 9, "options"],
      [41, 2, "frame"],
      [7, 7, "frame"],
    ] as const) {
      const [c, s] = pair();
      const hello = c.nextOutgoing()!.slice();
      hello[HS_HEADER_LENGTH + at] = v;
      expectKind(catchErr(() => s.receive(hello)), kind);
    }
  });

  test("SHARE of the wrong length and out-of-order messages", () => {
    const [c, s] = pair();
    s.receive(c.nextOutgoing()!);
    expectKind(catchErr(() => s.receive(header(2, 31))), "frame");
    const [c2, s2] = pair();
    s2.receive(c2.nextOutgoing()!);
    expect(expectKind(catchErr(() => s2.receive(header(3, 32))), "frame").message).toContain("waiting for SHARE");
  });

  test("identity SHARE is an auth error", () => {
    const [c, s] = pair();
    s.receive(c.nextOutgoing()!);
    const share = new Uint8Array(35);
    share[0] = 2;
    share[2] = 32;
    expectKind(catchErr(() => s.receive(share)), "auth");
  });

  test("byte-at-a-time delivery works", () => {
    const [c, s] = pair();
    const feed = (h: Handshake, m: Uint8Array): void => {
      for (const b of m) h.receive(Uint8Array.of(b));
    };
    for (let i = 0; i < 5; i++) {
      let m: Uint8Array | null;
      while ((m = c.nextOutgoing()) !== null) feed(s, m);
      while ((m = s.nextOutgoing()) !== null) feed(c, m);
    }
    expect(c.done && s.done).toBe(true);
  });
});

describe("secretFromString", () => {
  test("NFC normalisation makes composed and decomposed input equal", () => {
    expect(toHex(secretFromString("caf\u00e9"))).toBe(toHex(secretFromString("cafe\u0301")));
  });
  test("empty secret refused", () => {
    expect(() => secretFromString("")).toThrow();
    expect(() => new Handshake({ role: "client", secret: new Uint8Array(0) })).toThrow();
  });
});

describe("worked example of docs/PROTOCOL.md (deterministic randomness)", () => {
  // Fixed "random" bytes: client nonce 00..1f, client scalar bytes 20..3f; server 40..5f, 60..7f.
  const rngOf = (starts: number[]): ((n: number) => Uint8Array) => {
    let k = 0;
    return (n) => {
      const s = starts[k++];
      return Uint8Array.from({ length: n }, (_, i) => s + i);
    };
  };
  const V = {
    helloC: "01002e5553594e43000101000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f010000000000",
    helloS: "01002e5553594e43000102404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f010000000000",
    shareC: "0200209ae97526e5908fc1a52c29af7d5d9e2cd095e65f307d0cde22b1e3a69a8a4779",
    shareS: "0200207654c2c9a82836894f6ccc9664dfea8200eab25705dbf5ecded7a47974617356",
    confirmC: "030020b98023314e4db5d47f93aa8b98dca0200d83011e69f546512b1e3b633885845a",
    confirmS: "030020d98b3c1fcc3e48cf9bf459215e0f1ffe625fe52a41f66c327af25d90228d5683",
    th: "7711c2dbf5285e8f9d718d01d83a473b284f4cb2326d19077a6b9a0c63ef522d",
    c2sKey: "e958f973e66dae627db7bbed3643742b",
    c2sIv: "3429fc0a7e35857900413f2e",
    s2cKey: "534588a92e89e775f9d7655927dd55a5",
    s2cIv: "1e9a1ddc0231427100a73c8f",
  };

  test("the handshake reproduces every byte of the example", () => {
    const secret = ascii("correct horse battery staple");
    const c = new Handshake({ role: "client", secret, randomBytes: rngOf([0x00, 0x20]) });
    const s = new Handshake({ role: "server", secret, randomBytes: rngOf([0x40, 0x60]) });
    const out = pump(c, s);
    const hexes = out.wire.map(toHex);
    for (const m of [V.helloC, V.helloS, V.shareC, V.shareS, V.confirmC, V.confirmS]) expect(hexes).toContain(m);
    const r = ok(out.client);
    expect(toHex(r.sessionId)).toBe(V.th);
    expect(toHex(r.tx.key)).toBe(V.c2sKey);
    expect(toHex(r.tx.iv)).toBe(V.c2sIv);
    expect(toHex(r.rx.key)).toBe(V.s2cKey);
    expect(toHex(r.rx.iv)).toBe(V.s2cIv);
  });

  test("the key schedule re-derived from the spec text matches", () => {
    const b = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, "hex"));
    const secret = ascii("correct horse battery staple");
    const sid = new Uint8Array([...Array.from({ length: 32 }, (_, i) => i), ...Array.from({ length: 32 }, (_, i) => 0x40 + i)]);
    const scalar = (start: number): Uint8Array => {
      const y = Uint8Array.from({ length: 32 }, (_, i) => start + i);
      y[31] &= 0x0f;
      return y;
    };
    const a = cpaceStart(secret, sid, ascii("uring-sync/1"), scalar(0x20));
    const bb = cpaceStart(secret, sid, ascii("uring-sync/1"), scalar(0x60));
    expect(toHex(a.share)).toBe(V.shareC.slice(6));
    expect(toHex(bb.share)).toBe(V.shareS.slice(6));
    const isk = a.finish(bb.share, transcriptIrOf(a.share, b(V.helloC), bb.share, b(V.helloS)));
    const th = sha256(new Uint8Array([...b(V.helloC), ...b(V.helloS), ...b(V.shareC), ...b(V.shareS)]));
    expect(toHex(th)).toBe(V.th);
    const prk = extract(sha256, isk, th);
    const okm = (label: string, n: number): string => toHex(expand(sha256, prk, ascii(label), n));
    expect(okm("usync c2s key", 16)).toBe(V.c2sKey);
    expect(okm("usync c2s iv", 12)).toBe(V.c2sIv);
    expect(okm("usync s2c key", 16)).toBe(V.s2cKey);
    expect(okm("usync s2c iv", 12)).toBe(V.s2cIv);
    expect("030020" + toHex(hmac(sha256, b(okm("usync c2s confirm", 32)), th))).toBe(V.confirmC);
    expect("030020" + toHex(hmac(sha256, b(okm("usync s2c confirm", 32)), th))).toBe(V.confirmS);
  });
});
