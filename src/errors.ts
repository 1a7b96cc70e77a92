/**
 * Typed errors shared by every layer.
 *
 * Owns: the error classes engines throw and the CLI turns into one-line messages
 * and exit codes. Never prints, never exits: reporting is the CLI's job.
 */
import { errnoMessage, errnoName } from "../ffi/errno.ts";

/** A failed system call or io_uring operation, with the path it concerned. */
export class SysError extends Error {
  readonly errno: number;
  /** Symbolic errno name, e.g. "ENOENT". */
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;

  constructor(syscall: string, errno: number, path?: string) {
    const e = errno < 0 ? -errno : errno;
    const code = errnoName(e);
    const where = path === undefined ? "" : ` ${path}`;
    super(`${syscall}${where}: ${code} (${errnoMessage(e)})`);
    this.name = "SysError";
    this.errno = e;
    this.code = code;
    this.syscall = syscall;
    this.path = path;
  }
}

/** Bad input from the user (flags, paths, combinations). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A protocol, authentication or peer failure on the network path. */
export class ProtocolError extends Error {
  /** Short machine-readable kind, e.g. "auth", "frame", "timeout", "path". */
  readonly kind: string;
  constructor(kind: string, message: string) {
    super(message);
    this.name = "ProtocolError";
    this.kind = kind;
  }
}

/** A feature this machine lacks (no kTLS, io_uring disabled...). */
export class UnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedError";
  }
}

/** The user stopped the program (SIGINT/SIGTERM, Ctrl-C at a prompt): exit 130. */
export class InterruptedError extends Error {
  constructor(message = "interrupted") {
    super(message);
    this.name = "InterruptedError";
  }
}
