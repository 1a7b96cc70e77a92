// tests/scripts/delay-proxy.test.ts — the delaying TCP proxy (scripts/delay-proxy.ts) that
// network tests and bench/net.ts put between the ends: bytes pass unchanged and in order
// (64 MiB of random data each way at once), a FIN is forwarded as a half-close while the
// other direction keeps flowing, the delay is really applied (a round trip takes at least
// 2 x delay: a correctness property of the proxy, not a performance figure), many
// connections at once, resets and refused upstreams tear both sides down, reading pauses
// while the other side does not read (bounded buffering), and the CLI.
// Real sockets on 127.0.0.1 only.

import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { DelayProxy } from "../../scripts/delay-proxy.ts";
import { waitFor } from "../helpers/cli.ts";

const SCRIPT = join(import.meta.dir, "..", "..", "scripts", "delay-proxy.ts");
const MiB = 2 ** 20;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server on 127.0.0.1:0 whose connections are handed to `onConn`; closed after the test. */
async function server(onConn: (s: Socket) => void): Promise<{ srv: Server; port: number }> {
  const srv = createServer({ allowHalfOpen: true }, onConn);
  await new Promise<void>((res) => srv.listen({ host: "127.0.0.1", port: 0 }, res));
  const a = srv.address();
  if (typeof a !== "object" || a === null) throw new Error("no address");
  const open = new Set<Socket>();
  srv.on("connection", (s: Socket) => {
    open.add(s);
    s.on("close", () => open.delete(s));
  });
  cleanups.push(
    () =>
      new Promise<void>((res) => {
        for (const s of open) s.destroy();
        srv.close(() => res());
      }),
  );
  return { srv, port: a.port };
}

async function proxyTo(port: number, delayMs: number, maxBufferBytes?: number): Promise<DelayProxy> {
  const p = new DelayProxy({ targetHost: "127.0.0.1", targetPort: port, delayMs, maxBufferBytes });
  await p.start();
  cleanups.push(() => p.stop());
  return p;
}

function dial(port: number): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => res(s));
    s.once("error", rej);
  });
}

/** Everything a socket receives until its peer's FIN (or close). */
function readAll(s: Socket): Promise<Buffer> {
  return new Promise((res, rej) => {
    const parts: Buffer[] = [];
    s.on("data", (b: Buffer) => parts.push(b));
    s.once("end", () => res(Buffer.concat(parts)));
    s.once("error", rej);
    s.once("close", () => res(Buffer.concat(parts)));
  });
}

/** Writes `buf` in pieces of varying size (so chunk boundaries are arbitrary), then FIN. */
async function writeAll(s: Socket, buf: Buffer): Promise<void> {
  let off = 0;
  let i = 0;
  while (off < buf.length) {
    const n = Math.min(buf.length - off, [1, 1000, 65536, 300_000, 7][i++ % 5]);
    if (!s.write(buf.subarray(off, off + n))) await new Promise((r) => s.once("drain", r));
    off += n;
  }
  await new Promise<void>((r) => s.end(r));
}

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

describe("bytes", () => {
  test("64 MiB of random data in each direction at once arrive unchanged and in order", async () => {
    const up = randomBytes(64 * MiB);
    const down = randomBytes(64 * MiB);
    let serverGot: Promise<Buffer> | undefined;
    const { port } = await server((s) => {
      serverGot = readAll(s);
      void writeAll(s, down);
    });
    const p = await proxyTo(port, 5);
    const c = await dial(p.port);
    const clientGot = readAll(c);
    await writeAll(c, up);
    const got = await clientGot;
    await waitFor(() => serverGot !== undefined, 5000, "the server's connection", 10);
    const atServer = await (serverGot as Promise<Buffer>);
    expect(atServer.length).toBe(up.length);
    expect(sha(atServer)).toBe(sha(up));
    expect(got.length).toBe(down.length);
    expect(sha(got)).toBe(sha(down));
    const st = p.stats();
    expect(st.bytesUp).toBe(up.length);
    expect(st.bytesDown).toBe(down.length);
    await waitFor(() => p.stats().active === 0, 5000, "the connection to be forgotten after both sides closed", 10);
  }, 120_000);

  test("a half-close is forwarded: the client's FIN reaches the server, whose reply still comes back", async () => {
    let serverSawEnd = false;
    const { port } = await server((s) => {
      const parts: Buffer[] = [];
      s.on("data", (b: Buffer) => parts.push(b));
      s.on("end", () => {
        serverSawEnd = true;
        // Only now, after the client's FIN, answer: this needs the server's write half open.
        const got = Buffer.concat(parts).toString();
        setTimeout(() => s.end(`got ${got.length} bytes: ${got}`), 30);
      });
    });
    const p = await proxyTo(port, 10);
    const c = await dial(p.port);
    const reply = readAll(c);
    c.end("hello through the proxy");
    expect((await reply).toString()).toBe("got 23 bytes: hello through the proxy");
    expect(serverSawEnd).toBe(true);
  }, 30_000);

  test("a half-close from the server side: the client keeps sending after the server's FIN", async () => {
    let atServer: Promise<Buffer> | undefined;
    const { port } = await server((s) => {
      atServer = readAll(s);
      s.end("server is done talking");
    });
    const p = await proxyTo(port, 10);
    const c = await dial(p.port);
    const fromServer = await readAll(c); // resolves on the server's FIN
    expect(fromServer.toString()).toBe("server is done talking");
    expect(c.destroyed).toBe(false);
    const tail = randomBytes(3 * MiB);
    await writeAll(c, tail);
    await waitFor(() => atServer !== undefined, 5000, "the server's connection", 10);
    expect(sha(await (atServer as Promise<Buffer>))).toBe(sha(tail));
  }, 30_000);

  test("many concurrent connections each get their own bytes back (echo)", async () => {
    const { port } = await server((s) => s.pipe(s));
    const p = await proxyTo(port, 15);
    const results = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const data = randomBytes(256 * 1024 + i * 977);
        const c = await dial(p.port);
        const back = readAll(c);
        await writeAll(c, data);
        return { data, back: await back };
      }),
    );
    for (const { data, back } of results) expect(sha(back)).toBe(sha(data));
    expect(p.stats().accepted).toBe(24);
    await waitFor(() => p.stats().active === 0, 5000, "every connection to be closed", 10);
  }, 60_000);
});

/** Sends `msg` and resolves with the next data the socket receives and the elapsed ms. */
function roundTrip(c: Socket, msg: string): Promise<{ text: string; ms: number }> {
  return new Promise((res) => {
    const t = performance.now();
    c.once("data", (b: Buffer) => res({ text: b.toString(), ms: performance.now() - t }));
    c.write(msg);
  });
}

describe("delay", () => {
  test("a round trip through the proxy takes at least 2 x delay; ten sequential ones at least 20 x delay", async () => {
    const delay = 40;
    const { port } = await server((s) => s.on("data", (b: Buffer) => s.write(b)));
    const p = await proxyTo(port, delay);
    const c = await dial(p.port);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) {
      const r = await roundTrip(c, `ping ${i}`);
      expect(r.text).toBe(`ping ${i}`);
      expect(r.ms).toBeGreaterThanOrEqual(2 * delay);
    }
    expect(performance.now() - t0).toBeGreaterThanOrEqual(20 * delay);
    c.destroy();
  }, 30_000);

  test("without the proxy the same round trip is far below 2 x delay (the bound above measures the proxy)", async () => {
    const { port } = await server((s) => s.on("data", (b: Buffer) => s.write(b)));
    const c = await dial(port);
    // Best of five: on a busy machine one round trip can stall, but not all of them for 80 ms.
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) best = Math.min(best, (await roundTrip(c, "x")).ms);
    expect(best).toBeLessThan(80);
    c.destroy();
  }, 30_000);

  test("delay 0 forwards immediately and still keeps the bytes", async () => {
    const { port } = await server((s) => s.pipe(s));
    const p = await proxyTo(port, 0);
    const c = await dial(p.port);
    const data = randomBytes(2 * MiB);
    const back = readAll(c);
    await writeAll(c, data);
    expect(sha(await back)).toBe(sha(data));
  }, 30_000);
});

describe("failures and backpressure", () => {
  test("an upstream that refuses the connection closes the client's side; the proxy keeps serving", async () => {
    const dead = await new Promise<number>((res) => {
      const srv = createServer();
      srv.listen({ host: "127.0.0.1", port: 0 }, () => {
        const a = srv.address();
        srv.close(() => res(typeof a === "object" && a !== null ? a.port : 0));
      });
    });
    const p = await proxyTo(dead, 5);
    const c = await dial(p.port);
    const closed = new Promise<void>((res) => c.once("close", () => res()));
    c.on("error", () => undefined); // a reset is a fine way to learn it
    c.write("anyone there?");
    await closed;
    await waitFor(() => p.stats().active === 0, 5000, "the refused connection to be forgotten", 10);
    expect(p.stats().accepted).toBe(1);
    // The proxy still serves: a new connection is accepted (and refused upstream again, cleanly).
    const c2 = await dial(p.port);
    c2.on("error", () => undefined);
    await new Promise<void>((res) => c2.once("close", () => res()));
    expect(p.stats().accepted).toBe(2);
  }, 30_000);

  test("a reset on the server side tears down the client's connection (no hang)", async () => {
    const { port } = await server((s) => {
      s.once("data", () => s.resetAndDestroy());
    });
    const p = await proxyTo(port, 10);
    const c = await dial(p.port);
    let errored = false;
    c.on("error", () => {
      errored = true;
    });
    const closed = new Promise<void>((res) => c.once("close", () => res()));
    // Keep writing: the client must learn that the path broke.
    const data = randomBytes(1 * MiB);
    c.write(data);
    await closed;
    expect(errored).toBe(true); // a reset arrives as ECONNRESET, not as a clean end
    await waitFor(() => p.stats().active === 0, 5000, "the connection to be forgotten", 10);
  }, 30_000);

  test("a reset travels behind the data sent before it: the client gets every byte, then ECONNRESET", async () => {
    const data = randomBytes(256 * 1024);
    const { port } = await server((s) => {
      s.write(data);
      // The proxy has read it all long before this; its delay still holds it when the reset comes.
      setTimeout(() => s.resetAndDestroy(), 60);
    });
    const p = await proxyTo(port, 200);
    const c = await dial(p.port);
    const parts: Buffer[] = [];
    c.on("data", (b: Buffer) => parts.push(b));
    const how = await new Promise<string>((res) => {
      c.once("error", (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
      c.once("end", () => res("end"));
    });
    expect(sha(Buffer.concat(parts))).toBe(sha(data));
    expect(how).toBe("ECONNRESET");
    await waitFor(() => p.stats().active === 0, 5000, "the connection to be forgotten", 10);
  }, 30_000);

  test("a server that does not read makes the proxy stop reading: it holds at most about its window", async () => {
    const window = 1 * MiB;
    let serverSock: Socket | undefined;
    const { port } = await server((s) => {
      serverSock = s;
      s.pause();
    });
    const p = await proxyTo(port, 5, window);
    const c = await dial(p.port);
    const data = randomBytes(64 * MiB);
    c.write(data); // all of it into the client's userland queue; the kernel takes what it can
    await Bun.sleep(1000);
    const st = p.stats();
    // Without backpressure the proxy would have read (and now hold) nearly all 64 MiB.
    expect(st.buffered).toBeLessThanOrEqual(window + 1 * MiB);
    expect(st.bytesUp).toBeLessThan(32 * MiB);
    expect(c.writableLength).toBeGreaterThan(16 * MiB); // the client is the one held back
    // Now the server reads: everything arrives, in order.
    const atServer = readAll(serverSock as Socket);
    (serverSock as Socket).resume();
    c.end();
    expect(sha(await atServer)).toBe(sha(data));
  }, 120_000);

  test("stop() closes every connection and the listening socket", async () => {
    const { port } = await server((s) => s.pipe(s));
    const p = new DelayProxy({ targetHost: "127.0.0.1", targetPort: port, delayMs: 5 });
    const bound = await p.start();
    const c = await dial(bound);
    const closed = new Promise<void>((res) => c.once("close", () => res()));
    c.on("error", () => undefined);
    await roundTrip(c, "hi");
    await p.stop();
    await closed;
    await expect(dial(bound)).rejects.toThrow();
  }, 30_000);
});

describe("CLI", () => {
  test("--listen 127.0.0.1:0 prints the bound address, delays, and exits 0 on SIGTERM", async () => {
    const { port } = await server((s) => s.on("data", (b: Buffer) => s.write(b)));
    const proc = Bun.spawn([process.execPath, SCRIPT, "--listen", "127.0.0.1:0", "--to", `127.0.0.1:${port}`, "--delay-ms", "30"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    cleanups.push(() => {
      if (proc.exitCode === null) proc.kill("SIGKILL");
    });
    const reader = proc.stdout.getReader();
    let out = "";
    while (!/listening on \S+:(\d+)/.test(out)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the proxy exited before listening: ${out} ${await new Response(proc.stderr).text()}`);
      out += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const bound = Number(/listening on \S+:(\d+)/.exec(out)?.[1]);
    expect(bound).toBeGreaterThan(0);
    const c = await dial(bound);
    const r = await roundTrip(c, "through the CLI");
    expect(r.text).toBe("through the CLI");
    expect(r.ms).toBeGreaterThanOrEqual(60);
    c.destroy();
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  }, 30_000);

  test("bad arguments: a one-line error and exit 1", async () => {
    for (const args of [["--listen", "127.0.0.1:0", "--to", "nowhere", "--delay-ms", "5"], ["--listen", "127.0.0.1:0", "--to", "127.0.0.1:1"], ["--bogus"]]) {
      const r = Bun.spawnSync([process.execPath, SCRIPT, ...args], { stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(1);
      const err = r.stderr.toString().trim();
      expect(err.split("\n").length).toBe(1);
      expect(err).toStartWith("delay-proxy: ");
    }
  });
});
