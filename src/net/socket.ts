/**
 * TCP sockets for send/recv: the listening socket, accepting and connecting through
 * io_uring (so the JS thread never blocks in accept/connect and timeouts are just
 * deadlines on the loop), and the socket options both ends use.
 *
 * Owns: every fd it creates until handed to the caller (on failure it closes what it
 * opened). Never reads or writes stream bytes (channel.ts and hsio.ts do).
 */
import { E } from "../../ffi/errno.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { AF, IPV6_V6ONLY, SO, SOCK, SOCKADDR_STORAGE_SIZE, SOL, TCP } from "../../ffi/structs.ts";
import { SysError } from "../errors.ts";
import { prepAccept, prepConnect } from "../uring/prep.ts";
import type { CompletionTarget } from "../uring/ring.ts";
import { formatAddress, parseSockaddr, sockaddrBytes, type SockAddr } from "./address.ts";
import type { Loop } from "./loop.ts";
import { structs, type Pinned } from "./mem.ts";

function setInt(fd: number, level: number, opt: number, value: number): number {
  return libc.setsockopt(fd, level, opt, new Int32Array([value]), 4);
}

/** Options for a connected data socket: no Nagle delay (handshake messages, the final REPORT). */
export function tuneConnected(fd: number): void {
  setInt(fd, SOL.TCP, TCP.NODELAY, 1);
  setInt(fd, SOL.SOCKET, SO.KEEPALIVE, 1);
}

export interface Listener {
  fd: number;
  /** What it is bound to, as the kernel says (the port is real even when 0 was asked). */
  local: SockAddr;
}

/**
 * Binds and listens on the first of `addrs` that works (for the wildcard: `[::]` with
 * IPV6_V6ONLY off, i.e. dual-stack, then `0.0.0.0` where IPv6 is unavailable).
 */
export function listenOn(addrs: readonly SockAddr[], dualStack: boolean): Listener {
  let last: SysError | undefined;
  for (const a of addrs) {
    const fd = libc.socket(a.family, SOCK.STREAM | SOCK.CLOEXEC, 0);
    if (fd < 0) {
      last = new SysError("socket", errno(), formatAddress(a));
      if (last.errno === 97 /* EAFNOSUPPORT */ && addrs.length > 1) continue;
      throw last;
    }
    setInt(fd, SOL.SOCKET, SO.REUSEADDR, 1);
    if (a.family === AF.INET6 && dualStack) setInt(fd, SOL.IPV6, IPV6_V6ONLY, 0);
    const sa = sockaddrBytes(a);
    if (libc.bind(fd, sa, sa.length) < 0 || libc.listen(fd, 64) < 0) {
      const e = errno();
      libc.close(fd);
      last = new SysError(e === E.EADDRINUSE ? "bind" : "listen", e, formatAddress(a));
      // The dual-stack socket failing for lack of IPv6 (EADDRNOTAVAIL) falls back to IPv4;
      // a port in use does not (it would be in use on IPv4 too).
      if (addrs.length > 1 && e !== E.EADDRINUSE) continue;
      throw last;
    }
    return { fd, local: localAddress(fd) ?? a };
  }
  throw last ?? new SysError("listen", E.EINVAL);
}

export function localAddress(fd: number): SockAddr | null {
  const buf = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  const len = new Uint32Array([buf.length]);
  if (libc.getsockname(fd, buf, len) < 0) return null;
  return parseSockaddr(buf);
}

/** Closes an fd, ignoring errors (teardown paths). */
export function closeFd(fd: number): void {
  if (fd >= 0) libc.close(fd);
}

/** shutdown(2) both ways: wakes any RECV/SEND in flight on it (they complete with 0 / EPIPE). */
export function shutdownFd(fd: number): void {
  if (fd >= 0) libc.shutdown(fd, 2);
}

/** An ACCEPT kept in flight on the listener; each connection goes to `onConnection`. */
export class Acceptor implements CompletionTarget {
  private readonly addr: Pinned;
  private readonly addrLen: Pinned;
  private armed = false;
  private stopped = true;
  private userData = 0;

  constructor(
    private readonly loop: Loop,
    private readonly listenFd: number,
    private readonly onConnection: (fd: number, peer: SockAddr | null) => void,
    private readonly onError: (e: SysError) => void,
  ) {
    this.addr = structs.alloc(SOCKADDR_STORAGE_SIZE);
    this.addrLen = structs.alloc(4);
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  /** No new connections are taken (the kernel keeps them in the backlog). */
  stop(): void {
    this.stopped = true;
    if (this.armed) this.loop.cancel(this.userData);
  }

  /** No ACCEPT in flight (after stop(): the listener may be closed without the ring holding it). */
  get idle(): boolean {
    return !this.armed;
  }

  private arm(): void {
    if (this.armed || this.stopped) return;
    this.armed = true;
    new DataView(this.addrLen.u8.buffer, this.addrLen.u8.byteOffset, 4).setUint32(0, SOCKADDR_STORAGE_SIZE, true);
    const ring = this.loop.ring;
    const sqe = ring.getSqe();
    prepAccept(ring, sqe, this.listenFd, this.addr.addr, this.addrLen.addr, SOCK.CLOEXEC);
    this.userData = ring.track(this, 0);
    ring.setUserData(sqe, this.userData);
  }

  onCompletion(res: number): void {
    this.armed = false;
    if (res >= 0) {
      if (this.stopped) {
        // Raced with stop(): this connection was accepted anyway; drop it.
        closeFd(res);
        return;
      }
      tuneConnected(res);
      this.onConnection(res, parseSockaddr(this.addr.u8));
    } else if (res !== -E.ECANCELED && res !== -E.EINTR && res !== -E.EAGAIN && res !== -E.ECONNABORTED) {
      // EMFILE/ENFILE and friends: report, and keep trying after a pause so a burst of
      // connections cannot wedge the receiver.
      this.onError(new SysError("accept", -res));
      if (!this.stopped) this.loop.after(200, () => this.arm());
      return;
    }
    this.arm();
  }
}

/** One CONNECT through the ring, with a deadline. */
export class Connector implements CompletionTarget {
  private readonly sa: Pinned;
  private userData = 0;
  private result: number | undefined;

  private constructor(readonly fd: number, readonly addr: SockAddr) {
    const bytes = sockaddrBytes(addr);
    this.sa = structs.alloc(bytes.length);
    this.sa.u8.set(bytes);
  }

  /** Connects to `addr` within `timeoutMs`; returns the fd or throws SysError (ETIMEDOUT on timeout). */
  static async connect(loop: Loop, addr: SockAddr, timeoutMs: number): Promise<number> {
    const fd = libc.socket(addr.family, SOCK.STREAM | SOCK.CLOEXEC, 0);
    if (fd < 0) throw new SysError("socket", errno(), formatAddress(addr));
    const c = new Connector(fd, addr);
    const ring = loop.ring;
    const sqe = ring.getSqe();
    prepConnect(ring, sqe, fd, c.sa.addr, c.sa.size);
    c.userData = ring.track(c, 0);
    ring.setUserData(sqe, c.userData);
    let timedOut = false;
    const d = loop.after(timeoutMs, () => {
      timedOut = true;
      loop.cancel(c.userData);
    });
    await loop.run(() => c.result !== undefined);
    d.cancelled = true;
    const res = c.result as number;
    if (res < 0) {
      closeFd(fd);
      throw new SysError("connect", timedOut && res === -E.ECANCELED ? E.ETIMEDOUT : -res, formatAddress(addr));
    }
    tuneConnected(fd);
    return fd;
  }

  onCompletion(res: number): void {
    this.result = res;
  }
}
