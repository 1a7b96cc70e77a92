// tests/hostile/peer.test.ts — checks the hostile tests' own test peer
// (tests/helpers/net-peer.ts) against a minimal in-process receiver built from the
// project's pure protocol modules, so a hostile test that fails is known to fail because of
// the real receiver, not because the peer cannot speak the protocol. No CLI involved: this
// file passes without the network engine.

import { afterAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { Handshake, secretFromString } from "../../src/net/handshake.ts";
import { CONTENT_TYPE_APPLICATION_DATA, RecordOpener, RecordSealer } from "../../src/net/record.ts";
import { FrameReader, decodeSenderMessage, encodeMessage, type SenderMessage } from "../../src/net/wire.ts";
import { KIND, Peer, dataFrame, fileEndFrame, finishSession, helloMessage, listEndFrame, rawEntry, sendFile } from "../helpers/net-peer.ts";

const SECRET = "peer self-test secret";

interface Seen {
  messages: SenderMessage[];
  errors: string[];
}

/** A tiny receiver: handshake, then WANT for every file, REPORT after LIST_END. */
function referenceReceiver(plaintext = false): Promise<{ server: Server; port: number; seen: Seen }> {
  const seen: Seen = { messages: [], errors: [] };
  const server = createServer({ allowHalfOpen: true }, (sock: Socket) => {
    const hs = new Handshake({ role: "server", secret: secretFromString(SECRET), plaintext });
    const flush = (): void => {
      for (let m = hs.nextOutgoing(); m !== null; m = hs.nextOutgoing()) sock.write(m);
    };
    flush();
    let opener: RecordOpener | undefined;
    let sealer: RecordSealer | undefined;
    let done = false;
    const frames = new FrameReader({ direction: "to-receiver", copyPayloads: true });
    let files = 0;
    const reply = (bytes: Uint8Array): void => {
      sock.write(sealer ? sealer.sealAll(bytes) : bytes);
    };
    const onFrames = (bytes: Uint8Array): void => {
      for (const f of frames.push(bytes)) {
        const m = decodeSenderMessage(f);
        seen.messages.push(m);
        if (m.type === "entry" && m.kind === "file") reply(encodeMessage({ type: "want", id: m.id, offset: 0n }));
        if (m.type === "file-end") files++;
        if (m.type === "list-end") reply(encodeMessage({ type: "report", files, bytes: 0n, failures: [], omittedFailures: 0 }));
      }
    };
    sock.on("data", (chunk: Buffer) => {
      try {
        let rest = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
        if (!done) {
          const used = hs.receive(rest);
          flush();
          rest = rest.subarray(used);
          if (!hs.done) return;
          done = true;
          const keys = hs.result();
          if (!keys.plaintext) {
            opener = new RecordOpener(keys.cipher, keys.rx.key, keys.rx.iv);
            sealer = new RecordSealer(keys.cipher, keys.tx.key, keys.tx.iv);
          }
        }
        if (rest.length === 0) return;
        if (opener === undefined) onFrames(rest);
        else for (const r of opener.push(rest)) if (r.type === CONTENT_TYPE_APPLICATION_DATA) onFrames(r.data);
      } catch (e) {
        flush();
        seen.errors.push((e as Error).message);
        sock.end();
      }
    });
    sock.on("end", () => sock.end());
    sock.on("error", () => undefined);
  });
  return new Promise((resolve) => {
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const a = server.address();
      resolve({ server, port: typeof a === "object" && a !== null ? a.port : 0, seen });
    });
  });
}

const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

describe("the test peer speaks the protocol", () => {
  for (const plaintext of [false, true]) {
    test(`an honest session (${plaintext ? "plaintext" : "userspace TLS records"}): handshake, a file, WANT, REPORT`, async () => {
      const { server, port, seen } = await referenceReceiver(plaintext);
      servers.push(server);
      const peer = await Peer.connect("127.0.0.1", port);
      const hs = await peer.handshake({ secret: SECRET, plaintext });
      expect(hs.ok, peer.describe()).toBe(true);
      const data = new Uint8Array(70_000).map((_, i) => i & 0xff);
      expect(await sendFile(peer, { id: 7, path: "dir/file.bin", data, mode: 0o640 })).toBe("want");
      const report = await finishSession(peer, 5_000);
      expect(report?.files, peer.describe()).toBe(1);
      expect(seen.errors).toEqual([]);
      const entry = seen.messages.find((m) => m.type === "entry");
      expect(entry).toMatchObject({ type: "entry", kind: "file", id: 7, path: "dir/file.bin", mode: 0o640, size: 70_000n });
      const got = seen.messages.filter((m) => m.type === "data").map((m) => (m.type === "data" ? m.bytes : new Uint8Array(0)));
      expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
      expect(seen.messages.at(-1)?.type).toBe("list-end");
    });
  }

  test("a wrong secret: the peer sees 'auth' and the receiver fails too", async () => {
    const { server, port, seen } = await referenceReceiver();
    servers.push(server);
    const peer = await Peer.connect("127.0.0.1", port);
    const hs = await peer.handshake({ secret: "wrong" });
    expect(hs.ok).toBe(false);
    expect(hs.errorKind).toBe("auth");
    await peer.waitUntil(() => seen.errors.length > 0, 2_000);
    expect(seen.errors.join("\n")).toMatch(/authentication failed/);
    peer.destroy();
  });

  test("stopAfter sends only HELLO (and SHARE), then nothing", async () => {
    const { server, port } = await referenceReceiver();
    servers.push(server);
    const peer = await Peer.connect("127.0.0.1", port);
    await peer.handshake({ secret: SECRET, stopAfter: "share" });
    await Bun.sleep(200);
    expect(peer.handshakeMessagesSent).toBe(2);
    const h = await Peer.connect("127.0.0.1", port);
    await h.handshake({ secret: SECRET, stopAfter: "hello" });
    await Bun.sleep(200);
    expect(h.handshakeMessagesSent).toBe(1);
    expect(h.handshakeDone).toBe(false);
    peer.destroy();
    h.destroy();
  });

  test("the raw encoders match the project's encoder for valid messages", () => {
    const e = { type: "entry", id: 9, kind: "file", mode: 0o600, mtimeNs: -5n, size: 12n, path: "a/b" } as const;
    expect(Buffer.from(rawEntry({ id: 9, kind: KIND.file, mode: 0o600, mtimeNs: -5n, size: 12n, path: "a/b" })).equals(Buffer.from(encodeMessage(e)))).toBe(true);
    const s = { type: "entry", id: 3, kind: "symlink", mode: 0o777, mtimeNs: 1n, size: 0n, path: "l", linkTarget: new TextEncoder().encode("../t") } as const;
    expect(Buffer.from(rawEntry({ id: 3, kind: KIND.symlink, mode: 0o777, mtimeNs: 1n, path: "l", target: "../t" })).equals(Buffer.from(encodeMessage(s)))).toBe(true);
    const h = { type: "entry", id: 4, kind: "hardlink", mode: 0o644, mtimeNs: 2n, size: 0n, path: "h", linkId: 3 } as const;
    expect(Buffer.from(rawEntry({ id: 4, kind: KIND.hardlink, mode: 0o644, mtimeNs: 2n, path: "h", linkId: 3 })).equals(Buffer.from(encodeMessage(h)))).toBe(true);
    const d = new Uint8Array([1, 2, 3]);
    expect(Buffer.from(dataFrame(4, 10n, d)).equals(Buffer.from(encodeMessage({ type: "data", id: 4, offset: 10n, bytes: d })))).toBe(true);
    expect(Buffer.from(fileEndFrame(4)).equals(Buffer.from(encodeMessage({ type: "file-end", id: 4 })))).toBe(true);
    expect(Buffer.from(listEndFrame()).equals(Buffer.from(encodeMessage({ type: "list-end" })))).toBe(true);
    // helloMessage has the layout of the Handshake's own HELLO (apart from the nonce).
    const real = new Handshake({ role: "client", secret: secretFromString("x") }).nextOutgoing()!;
    const mine = helloMessage({ nonce: real.subarray(11, 43) });
    expect(Buffer.from(mine).equals(Buffer.from(real))).toBe(true);
  });
});
