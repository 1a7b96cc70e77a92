/**
 * `send` and `recv` option sets. The network engine (src/net/) is built in a separate
 * issue; until it lands, both commands say so plainly and exit with EXIT.NOT_IMPLEMENTED.
 */
import { hostPort, oneOf, type OptionSpecs } from "./args.ts";
import type { Command } from "./command.ts";
import { FILTER_OPTIONS, OUTPUT_OPTIONS, PARALLEL_OPTIONS, RING_OPTIONS, SYNC_OPTIONS } from "./common.ts";
import { EXIT } from "./exit.ts";
import { log } from "./report.ts";

const SECRET_OPTIONS: OptionSpecs = {
  "secret-file": { type: "string", valueHint: "PATH", description: "Read the shared secret from PATH (default: $URING_SYNC_SECRET, else a prompt)" },
  secret: { type: "string", valueHint: "S", description: "The shared secret on the command line (other local users can read it: prefer the env var)" },
  crypto: { type: "string", valueHint: "auto|kernel|user", description: "Where TLS records are encrypted: kernel (kTLS), user (userspace), auto (default; also $URING_SYNC_CRYPTO)", validate: oneOf(["auto", "kernel", "user"]) },
  tls: { type: "boolean", description: "Same as --crypto kernel (kept from the original tool)" },
  plaintext: { type: "boolean", description: "No encryption (both ends must say so); authentication still happens" },
  cipher: { type: "string", valueHint: "NAME", description: "aes-128-gcm (default), aes-256-gcm or chacha20-poly1305", validate: oneOf(["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"]) },
};

function notBuilt(what: string): number {
  log.error(`${what} is not built yet in this version: only local copy and doctor work so far`);
  return EXIT.NOT_IMPLEMENTED;
}

export const send: Command = {
  name: "send",
  summary: "Send a tree to a receiver over TCP, encrypted and authenticated by a shared secret",
  details: "Example:\n  URING_SYNC_SECRET=... uring-sync send ./data otherhost:7000",
  options: {
    src: { type: "positional", valueHint: "SRC", description: "File or directory to send" },
    dest: { type: "positional", valueHint: "HOST:PORT", description: "Receiver address, e.g. host:7000 or [::1]:7000", validate: hostPort(false) },
    ...SECRET_OPTIONS, ...SYNC_OPTIONS, ...FILTER_OPTIONS, ...PARALLEL_OPTIONS, ...RING_OPTIONS, ...OUTPUT_OPTIONS,
  },
  run: () => notBuilt("network transfer (send)"),
};

export const recv: Command = {
  name: "recv",
  summary: "Receive a tree into DST from a sender",
  details: "Example:\n  uring-sync recv ./data --listen 7000",
  options: {
    dst: { type: "positional", valueHint: "DST", description: "Directory to receive into (created if missing)" },
    listen: { type: "string", valueHint: "[ADDR:]PORT", description: "Address and port to listen on, e.g. 7000, 0.0.0.0:7000, [::]:7000", validate: hostPort(true), required: true },
    "keep-listening": { type: "boolean", description: "Serve one session after another instead of exiting after the first" },
    ...SECRET_OPTIONS, ...RING_OPTIONS, ...OUTPUT_OPTIONS,
  },
  run: () => notBuilt("network transfer (recv)"),
};
