/**
 * A scripted receiver for hostile-receiver tests of `uring-sync send`: it listens on a
 * loopback port, completes the server side of the handshake honestly (plaintext data
 * stream: both ends run with --plaintext, so frames travel as they are), then decodes
 * what the sender sends and answers whatever the test script says, lies included.
 *
 * Owns: the socket, the handshake, the frame parsing. Never judges anything.
 */
import { createServer, type Server, type Socket } from "node:net";
import { Handshake, secretFromString } from "../../src/net/handshake.ts";
import { decodeSenderMessage, FrameReader, SENDER_FLAGS, type SenderMessage } from "../../src/net/wire.ts";
import { TEST_SECRET } from "./net.ts";

export class FakeReceiver {
  /** Every frame the sender sent after the handshake, decoded. */
  readonly messages: SenderMessage[] = [];
  /** The sender's HELLO flags. */
  peerFlags = -1;
  streamError: string | undefined;
  closed = false;
  private sock: Socket | undefined;
  /** Called for every message, to answer at once (the sender waits for answers). */
  onMessage: ((m: SenderMessage, r: FakeReceiver) => void) | undefined;

  private constructor(private readonly server: Server, readonly port: number) {}

  static async listen(): Promise<FakeReceiver> {
    const server = createServer({ allowHalfOpen: true });
    const port = await new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: 0 }, () => {
        const a = server.address();
        resolve(typeof a === "object" && a !== null ? a.port : 0);
      });
    });
    const r = new FakeReceiver(server, port);
    server.on("connection", (s) => r.serve(s));
    return r;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private serve(sock: Socket): void {
    if (this.sock !== undefined) {
      sock.destroy();
      return;
    }
    this.sock = sock;
    const hs = new Handshake({ role: "server", secret: secretFromString(TEST_SECRET), plaintext: true, acceptPeerFlags: SENDER_FLAGS });
    const frames = new FrameReader({ direction: "to-receiver", copyPayloads: true });
    const flush = (): void => {
      for (let m = hs.nextOutgoing(); m !== null; m = hs.nextOutgoing()) sock.write(m);
    };
    flush();
    sock.on("close", () => {
      this.closed = true;
    });
    sock.on("error", () => undefined);
    sock.on("data", (chunk: Buffer) => {
      let rest = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
      try {
        if (!hs.done) {
          const used = hs.receive(rest);
          flush();
          rest = rest.subarray(used);
          if (!hs.done) return;
          this.peerFlags = hs.result().peerFlags;
        }
        for (const f of frames.push(rest)) {
          const m = decodeSenderMessage(f);
          this.messages.push(m);
          this.onMessage?.(m, this);
        }
      } catch (e) {
        this.streamError = (e as Error).message;
        sock.destroy();
      }
    });
  }

  /** Frames to the sender (plaintext stream). */
  send(...frames: Uint8Array[]): void {
    for (const f of frames) this.sock?.write(f);
  }

  /** FIN after what was written. */
  end(): void {
    this.sock?.end();
  }

  close(): void {
    this.sock?.destroy();
    this.server.close();
  }

  describe(): string {
    const shown = this.messages.map((m) => (m.type === "entry" ? `ENTRY ${m.id} ${m.kind} ${m.path}` : m.type.toUpperCase()));
    return `fake receiver: flags ${this.peerFlags}; got ${shown.join(" | ") || "(nothing)"}; stream error: ${this.streamError ?? "none"}`;
  }
}
