/**
 * The few system calls the e2e helpers need that node:fs lacks: utimensat with nanoseconds
 * (also on symlinks), lseek SEEK_DATA/SEEK_HOLE, and extended attributes. Bound directly
 * to libc with bun:ffi so the tests do not depend on the project's own ffi/ layer (which
 * they are testing). Owns: thin wrappers that throw on failure; no policy.
 */
import { dlopen, ptr, read } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  utimensat: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  lseek: { args: ["i32", "i64", "i32"], returns: "i64" },
  llistxattr: { args: ["ptr", "ptr", "u64"], returns: "i64" },
  lgetxattr: { args: ["ptr", "ptr", "ptr", "u64"], returns: "i64" },
  lsetxattr: { args: ["ptr", "ptr", "ptr", "u64", "i32"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
});
const C = libc.symbols;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
const ERRNO: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 6: "ENXIO", 13: "EACCES", 22: "EINVAL", 34: "ERANGE", 61: "ENODATA", 95: "EOPNOTSUPP" };

function errno(): number {
  const p = C.__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

function fail(call: string, path: string): never {
  const e = errno();
  throw new Error(`${call} ${path}: ${ERRNO[e] ?? `errno ${e}`}`);
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, "utf8");

/** Split nanoseconds since the epoch into a timespec (floor division, so pre-1970 works). */
function timespec(ns: bigint): [bigint, bigint] {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return [sec, nsec];
}

/** Set atime and mtime with nanoseconds, without following a final symlink. */
export function setTimesNs(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const ts = new BigInt64Array([...timespec(atimeNs), ...timespec(mtimeNs)]);
  if (C.utimensat(AT_FDCWD, cstr(path), ptr(ts), AT_SYMLINK_NOFOLLOW) !== 0) fail("utimensat", path);
}

/**
 * The data segments of an open file as [start, end) pairs (SEEK_DATA/SEEK_HOLE).
 * A file system without SEEK_DATA support reports the whole file as one segment.
 */
export function dataSegments(fd: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  let off = 0;
  while (off < size) {
    const d = Number(C.lseek(fd, off, SEEK_DATA));
    if (d < 0) {
      if (errno() === 6) break; // ENXIO: no data after off
      return [[0, size]];
    }
    let h = Number(C.lseek(fd, d, SEEK_HOLE));
    if (h < 0) h = size;
    out.push([d, Math.min(h, size)]);
    off = h;
  }
  return out;
}

/** All extended attributes of a path (not following symlinks), values as hex. */
export function listXattrs(path: string): Record<string, string> {
  const p = cstr(path);
  const n = Number(C.llistxattr(p, null, 0));
  if (n < 0) {
    if (errno() === 95) return {}; // EOPNOTSUPP
    fail("llistxattr", path);
  }
  if (n === 0) return {};
  const names = Buffer.alloc(n);
  const got = Number(C.llistxattr(p, ptr(names), n));
  if (got < 0) fail("llistxattr", path);
  const out: Record<string, string> = {};
  for (const name of names.subarray(0, got).toString("utf8").split("\0")) {
    if (name === "") continue;
    const nb = cstr(name);
    const len = Number(C.lgetxattr(p, nb, null, 0));
    if (len < 0) fail(`lgetxattr ${name}`, path);
    const val = Buffer.alloc(Math.max(len, 1));
    const vlen = len === 0 ? 0 : Number(C.lgetxattr(p, nb, ptr(val), len));
    if (vlen < 0) fail(`lgetxattr ${name}`, path);
    out[name] = val.subarray(0, vlen).toString("hex");
  }
  return out;
}

/** Set one extended attribute (not following symlinks). */
export function setXattr(path: string, name: string, value: Buffer | string): void {
  const v = typeof value === "string" ? Buffer.from(value) : value;
  const vb = v.length === 0 ? Buffer.alloc(1) : v;
  if (C.lsetxattr(cstr(path), cstr(name), ptr(vb), v.length, 0) !== 0) fail(`lsetxattr ${name}`, path);
}

/** Create a unix socket file at `path` (bound, then the descriptor closed; the file stays). */
export function makeUnixSocket(path: string): void {
  const fd = C.socket(1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0);
  if (fd < 0) fail("socket", path);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  const n = addr.write(path, 2, "utf8");
  if (n > 107) throw new Error(`socket path too long: ${path}`);
  const r = C.bind(fd, ptr(addr), 2 + n + 1);
  C.close(fd);
  if (r !== 0) fail("bind", path);
}
