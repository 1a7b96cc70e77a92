/**
 * Connected TCP socket pairs over 127.0.0.1, made with plain blocking libc calls, for
 * probes (doctor's kTLS checks) and tests.
 *
 * Owns: every fd it creates until the caller closes the pair or listener; on any
 * failure part-way it closes what it opened before throwing SysError. Blocking calls
 * are fine here: connect() to a listening socket completes through the backlog before
 * accept() runs. Never use it on a hot path (it blocks the JS thread).
 */
import { errno, libc } from "../../ffi/libc.ts";
import { AF, SO, SOCK, SOCKADDR_IN, SOL, TCP, TIMEVAL } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";

export interface LoopbackPair {
  /** The connecting end. */
  readonly client: number;
  /** The accepted end. */
  readonly server: number;
  close(): void;
}

function closeQuietly(fd: number): void {
  if (fd >= 0) libc.close(fd);
}

function check(r: number, syscall: string, opened: number[]): void {
  if (r >= 0) return;
  const e = errno();
  for (const fd of opened) closeQuietly(fd);
  throw new SysError(syscall, e, "127.0.0.1");
}

function setTimeouts(fd: number, ms: number): void {
  const tv = new BigInt64Array(TIMEVAL.size / 8);
  tv[TIMEVAL.sec / 8] = BigInt(Math.floor(ms / 1000));
  tv[TIMEVAL.usec / 8] = BigInt((ms % 1000) * 1000);
  // A probe must never hang: a receive that waits longer than this fails with EAGAIN.
  libc.setsockopt(fd, SOL.SOCKET, SO.RCVTIMEO, tv, TIMEVAL.size);
  libc.setsockopt(fd, SOL.SOCKET, SO.SNDTIMEO, tv, TIMEVAL.size);
}

/** A listening socket on 127.0.0.1 with a kernel-chosen port. */
export class LoopbackListener {
  readonly fd: number;
  readonly port: number;
  private readonly addr: Uint8Array;
  private closed = false;

  constructor(private readonly timeoutMs = 2000) {
    const fd = libc.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
    check(fd, "socket", []);
    const addr = new Uint8Array(SOCKADDR_IN.size);
    const dv = new DataView(addr.buffer);
    dv.setUint16(SOCKADDR_IN.family, AF.INET, true);
    dv.setUint32(SOCKADDR_IN.addr, 0x7f000001, false);
    check(libc.bind(fd, addr, addr.length), "bind", [fd]);
    check(libc.listen(fd, 16), "listen", [fd]);
    const len = new Uint32Array([addr.length]);
    check(libc.getsockname(fd, addr, len), "getsockname", [fd]);
    this.fd = fd;
    this.addr = addr;
    this.port = dv.getUint16(SOCKADDR_IN.port, false);
  }

  /** A fresh connected pair (TCP_NODELAY, send/receive timeouts set). */
  connect(): LoopbackPair {
    if (this.closed) throw new Error("loopback listener is closed");
    const client = libc.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
    check(client, "socket", []);
    check(libc.connect(client, this.addr, this.addr.length), "connect", [client]);
    const server = libc.accept4(this.fd, null, null, SOCK.CLOEXEC);
    check(server, "accept4", [client]);
    const one = new Int32Array([1]);
    for (const fd of [client, server]) {
      libc.setsockopt(fd, SOL.TCP, TCP.NODELAY, one, 4);
      setTimeouts(fd, this.timeoutMs);
    }
    let open = true;
    return {
      client,
      server,
      close(): void {
        if (!open) return;
        open = false;
        closeQuietly(client);
        closeQuietly(server);
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.fd);
  }
}

/** Run `fn` with a fresh connected loopback pair; both ends (and the listener) are closed afterwards. */
export function withLoopbackPair<T>(fn: (pair: LoopbackPair) => T): T {
  const listener = new LoopbackListener();
  try {
    const pair = listener.connect();
    try {
      return fn(pair);
    } finally {
      pair.close();
    }
  } finally {
    listener.close();
  }
}
