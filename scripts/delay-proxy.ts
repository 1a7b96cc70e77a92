#!/usr/bin/env bun
/**
 * scripts/delay-proxy.ts — a small TCP proxy that adds a fixed one-way latency in each
 * direction, for tests and benchmarks that need a "far away" peer on a kernel without
 * `tc netem` (FIELD_NOTES section 1).
 *
 * Owns: accepting connections, one upstream connection per accepted one, and moving bytes
 * both ways with a delay: every chunk read at time t is written to the other side at
 * t + delay. Chunks are never serialised behind each other's timers (one timer per
 * direction, set for the oldest pending chunk; everything due is written at once), so it is
 * a latency, not a throughput cap, as long as the in-flight window (--max-buffer-mb per
 * direction, default 32 MiB) exceeds bandwidth x delay. Byte order is kept; a FIN is
 * delayed like data and forwarded as a half-close (the other direction keeps flowing); an
 * error or reset on one side is passed on as a reset to the other side after the delay,
 * behind the bytes that side sent before it broke, and then both are gone. Reading
 * pauses while a direction holds more than the window (delay queue + the socket's own write
 * buffer), so nothing buffers without bound. Connection setup itself is not delayed.
 * Must never: reorder, drop or alter bytes, or keep a connection open after both sides
 * finished.
 *
 * CLI:
 *   bun scripts/delay-proxy.ts --listen 127.0.0.1:PORT --to 127.0.0.1:PORT --delay-ms 20
 * (PORT 0 for --listen picks a free port; the bound address is printed on stdout as
 * "listening on HOST:PORT"). Runs until SIGINT/SIGTERM.
 *
 * Library:
 *   const p = new DelayProxy({ targetHost: "127.0.0.1", targetPort: 7440, delayMs: 20 });
 *   const port = await p.start();   // listens on 127.0.0.1:0 unless listenHost/listenPort
 *   ...; await p.stop();
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface DelayProxyOptions {
  /** Default 127.0.0.1. */
  listenHost?: string;
  /** Default 0 (any free port; see `port` after start()). */
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  /** One-way delay added to every chunk (and FIN) in each direction, in milliseconds. */
  delayMs: number;
  /** Bytes in flight per direction before reading pauses (default 32 MiB). */
  maxBufferBytes?: number;
}

export interface DelayProxyStats {
  /** Connections accepted so far. */
  accepted: number;
  /** Connections still open. */
  active: number;
  /** Bytes forwarded client -> target and target -> client. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes held by the proxy right now (delay queues + sockets' write buffers), all connections. */
  buffered: number;
}

interface Pending {
  due: number;
  /** null = the FIN: end the other side's write half; a function = the reset: abort, then call it. */
  chunk: Buffer | null | (() => void);
}

/** One direction of one connection: reads `from`, writes `to` after the delay. */
class Direction {
  private readonly queue: Pending[] = [];
  private head = 0;
  private queued = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private paused = false;
  /** True once the FIN has been written on (passed to) `to`. */
  finished = false;
  /** Cancelled: the connection is gone; nothing more is queued or written. */
  private dead = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly delayMs: number,
    private readonly maxBuffer: number,
    private readonly count: (n: number) => void,
  ) {
    from.on("data", (chunk: Buffer) => this.push(chunk));
    from.on("end", () => this.push(null));
    to.on("drain", () => this.maybeResume());
  }

  private push(chunk: Pending["chunk"]): void {
    if (this.dead) return;
    this.queue.push({ due: performance.now() + this.delayMs, chunk });
    if (chunk instanceof Buffer) {
      this.queued += chunk.length;
      if (!this.paused && this.queued + this.to.writableLength > this.maxBuffer) {
        this.paused = true;
        this.from.pause();
      }
    }
    if (this.timer === undefined) this.arm();
  }

  private arm(): void {
    if (this.head >= this.queue.length) return;
    const wait = this.queue[this.head].due - performance.now();
    this.timer = setTimeout(() => this.flush(), Math.max(0, Math.ceil(wait)));
  }

  private flush(): void {
    this.timer = undefined;
    // Timers fire late, or (rounding) a fraction early: only what is due goes; arm() re-waits for the rest.
    const now = performance.now();
    while (this.head < this.queue.length && this.queue[this.head].due <= now) {
      const { chunk } = this.queue[this.head++];
      if (typeof chunk === "function") {
        // The reset travels behind the data that came before it, like the packet it was.
        abort(this.to);
        this.cancel();
        chunk();
        return;
      }
      if (this.to.destroyed) continue;
      if (chunk === null) {
        this.to.end();
        this.finished = true;
      } else {
        this.queued -= chunk.length;
        this.count(chunk.length);
        this.to.write(chunk);
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.maybeResume();
    this.arm();
  }

  private maybeResume(): void {
    if (this.paused && !this.from.destroyed && this.queued + this.to.writableLength <= this.maxBuffer / 2) {
      this.paused = false;
      this.from.resume();
    }
  }

  /** Bytes read from `from` and not yet taken by the kernel on `to`. */
  inFlight(): number {
    return this.queued + (this.to.destroyed ? 0 : this.to.writableLength);
  }

  /** `from` broke (reset, error): after what it sent before, reset `to` too, then call `done`. */
  resetLater(done: () => void): void {
    this.push(done);
  }

  /** Drops what is pending (the connection is being torn down). */
  cancel(): void {
    this.dead = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.head = 0;
    this.queued = 0;
  }
}

function abort(s: Socket): void {
  if (s.destroyed) return;
  // A reset tells the peer the connection broke (as a real link failure would), not a clean end.
  if (typeof s.resetAndDestroy === "function" && !s.connecting) s.resetAndDestroy();
  else s.destroy();
}

export class DelayProxy {
  private server: Server | undefined;
  private readonly conns = new Set<{ client: Socket; upstream: Socket; up: Direction; down: Direction }>();
  private boundPort = 0;
  private readonly s = { accepted: 0, bytesUp: 0, bytesDown: 0 };

  constructor(private readonly o: DelayProxyOptions) {
    if (!(o.delayMs >= 0) || !Number.isFinite(o.delayMs)) throw new Error(`delay-proxy: the delay must be a non-negative number of ms, got ${o.delayMs}`);
    for (const p of [o.listenPort ?? 0, o.targetPort]) {
      if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`delay-proxy: bad port ${p}`);
    }
  }

  /** The bound port (valid after start()). */
  get port(): number {
    return this.boundPort;
  }

  get host(): string {
    return this.o.listenHost ?? "127.0.0.1";
  }

  /** "HOST:PORT" (IPv6 in brackets) of the listening socket, for a client's command line. */
  get address(): string {
    return this.host.includes(":") ? `[${this.host}]:${this.boundPort}` : `${this.host}:${this.boundPort}`;
  }

  stats(): DelayProxyStats {
    let buffered = 0;
    for (const c of this.conns) buffered += c.up.inFlight() + c.down.inFlight();
    return { ...this.s, active: this.conns.size, buffered };
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<number> {
    if (this.server !== undefined) throw new Error("delay-proxy: already started");
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: this.host, port: this.o.listenPort ?? 0, exclusive: true }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const a = server.address();
    this.boundPort = typeof a === "object" && a !== null ? a.port : 0;
    if (this.boundPort === 0) throw new Error("delay-proxy: could not read the bound port");
    return this.boundPort;
  }

  /** Destroys every open connection (a "dropped link"); the proxy keeps listening. */
  dropConnections(): void {
    for (const c of [...this.conns]) {
      c.up.cancel();
      c.down.cancel();
      abort(c.client);
      abort(c.upstream);
    }
    this.conns.clear();
  }

  /** Stops listening and destroys every connection. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.dropConnections();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.s.accepted++;
    client.setNoDelay(true);
    const upstream = createConnection({ host: this.o.targetHost, port: this.o.targetPort, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const max = this.o.maxBufferBytes ?? 32 * 2 ** 20;
    const up = new Direction(client, upstream, this.o.delayMs, max, (n) => (this.s.bytesUp += n));
    const down = new Direction(upstream, client, this.o.delayMs, max, (n) => (this.s.bytesDown += n));
    const conn = { client, upstream, up, down };
    this.conns.add(conn);
    let closed = 0;
    let broken = false;
    const teardown = (): void => {
      up.cancel();
      down.cancel();
      abort(client);
      abort(upstream);
      this.conns.delete(conn);
    };
    // One side broke (reset, error): nothing more can reach it; what it sent before still
    // reaches the other side after the delay, and then so does the reset.
    const brokeAt = (s: Socket): void => {
      if (broken) return;
      broken = true;
      (s === client ? down : up).cancel();
      abort(s);
      (s === client ? up : down).resetLater(teardown);
    };
    for (const s of [client, upstream]) {
      s.on("error", () => brokeAt(s));
      s.on("close", (hadError: boolean) => {
        if (hadError) return brokeAt(s);
        // A clean close of one side means both its directions finished; once both sides
        // closed, the connection is gone. A side that closes before its FIN was forwarded
        // cannot happen cleanly, so anything else is torn down.
        closed++;
        if (closed === 2) this.conns.delete(conn);
        else if (!(s === client ? down.finished : up.finished)) teardown();
      });
    }
  }
}

// ---- CLI ------------------------------------------------------------------------------

function parseHostPort(flag: string, s: string | undefined): { host: string; port: number } {
  if (s === undefined) throw new Error(`${flag} HOST:PORT is required`);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (m === null) throw new Error(`${flag} expects HOST:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(s)}`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port > 65535) throw new Error(`${flag}: bad port in ${JSON.stringify(s)}`);
  return { host: m[1], port };
}

const HELP = `Usage: bun scripts/delay-proxy.ts --listen HOST:PORT --to HOST:PORT --delay-ms MS [--max-buffer-mb N]

A TCP proxy that delays every chunk (and FIN) by MS milliseconds in each direction, so a
round trip through it takes at least 2 x MS. --listen port 0 picks a free port; the bound
address is printed as "listening on HOST:PORT". Stops on SIGINT/SIGTERM.
  --max-buffer-mb N   bytes in flight per direction before reading pauses (default 32)`;

async function main(argv: string[]): Promise<void> {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: "string" },
      to: { type: "string" },
      "delay-ms": { type: "string" },
      "max-buffer-mb": { type: "string", default: "32" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const listen = parseHostPort("--listen", values.listen);
  const to = parseHostPort("--to", values.to);
  const delayMs = Number(values["delay-ms"]);
  if (values["delay-ms"] === undefined || !Number.isFinite(delayMs) || delayMs < 0) throw new Error("--delay-ms expects a non-negative number");
  const mb = Number(values["max-buffer-mb"]);
  if (!Number.isFinite(mb) || mb <= 0) throw new Error("--max-buffer-mb expects a positive number");
  if (to.port === 0) throw new Error("--to needs a real port, not 0");
  const proxy = new DelayProxy({
    listenHost: listen.host,
    listenPort: listen.port,
    targetHost: to.host,
    targetPort: to.port,
    delayMs,
    maxBufferBytes: Math.round(mb * 2 ** 20),
  });
  await proxy.start();
  console.log(`listening on ${proxy.address}, forwarding to ${values.to} with ${delayMs} ms each way`);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      const st = proxy.stats();
      void proxy.stop().then(() => {
        console.error(`delay-proxy: stopped; ${st.accepted} connections, ${st.bytesUp} bytes up, ${st.bytesDown} bytes down`);
        process.exit(0);
      });
    });
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`delay-proxy: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
