/**
 * Worker entry of the hash pool (hash-pool.ts): SHA-256 of the first `length` bytes of a
 * file descriptor it is handed, one job at a time.
 *
 * Owns: reading and hashing, writing the digest into the pool's shared table, waking the
 * owner's ring through its eventfd, and closing the fd it was given (always, also on
 * failure). Never opens files, never decides anything about them.
 *
 * Build note: `bun build --compile` needs this file as an extra entry point
 * (scripts/build.ts WORKERS).
 */
import { createHash } from "node:crypto";
import { closeSync, readSync, writeSync } from "node:fs";
import { HASH_SLOT_BYTES, type HashWorkerIn } from "./hash-protocol.ts";

declare const self: Worker;

const CHUNK = 1024 * 1024;
const buf = Buffer.allocUnsafe(CHUNK);
const one = new BigUint64Array([1n]);
let state: Int32Array | undefined;
let digests: Uint8Array | undefined;
let efd = -1;

/** -errno of a failed node:fs call (EIO when it says nothing usable). */
function errnoOf(e: unknown): number {
  const n = (e as { errno?: unknown }).errno;
  return typeof n === "number" && n !== 0 ? -Math.abs(n) : -5;
}

function hash(fd: number, length: number, slot: number): number {
  const h = createHash("sha256");
  let off = 0;
  while (off < length) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, Math.min(CHUNK, length - off), off);
    } catch (e) {
      const err = errnoOf(e);
      if (err === -4 /* EINTR */ || err === -11 /* EAGAIN */) continue;
      return err;
    }
    // Shorter than announced (the file shrank): the digest of what is there, which will not match.
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    off += n;
  }
  digests!.set(h.digest(), slot * HASH_SLOT_BYTES);
  return 1;
}

self.onmessage = (m: MessageEvent<HashWorkerIn>): void => {
  const msg = m.data;
  if (msg.t === "init") {
    state = new Int32Array(msg.shared, 0, msg.slots);
    digests = new Uint8Array(msg.shared, msg.slots * 4, msg.slots * HASH_SLOT_BYTES);
    efd = msg.efd;
    return;
  }
  let r: number;
  try {
    r = hash(msg.fd, msg.length, msg.slot);
  } catch (e) {
    r = errnoOf(e);
  } finally {
    try {
      closeSync(msg.fd);
    } catch {
      // Nothing to do: the fd was ours to close.
    }
  }
  Atomics.store(state!, msg.slot, r);
  try {
    writeSync(efd, one);
  } catch {
    // The pool is gone (eventfd closed): nobody waits for this result.
  }
};
