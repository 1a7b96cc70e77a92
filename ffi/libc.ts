/**
 * Thin typed bindings to the C library (glibc, x86_64), named after the C symbols.
 *
 * Owns: the dlopen of libc and the raw symbol table. Functions return what C returns
 * (-1 and errno on failure); checking and error objects belong to the callers
 * . Never add policy or retries here.
 */
import { dlopen, FFIType, ptr, read, type Pointer } from "bun:ffi";
import { SYS } from "./structs.ts";

// FFIType.i64_fast returns a JS number (exact below 2^53), which every size and offset we use is.
const lib = dlopen("libc.so.6", {
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  openat: { args: ["i32", "ptr", "i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  /** (initval, flags): a counter fd; a worker thread's write(8 bytes) wakes a READ on the ring. */
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  write: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  pread: { args: ["i32", "ptr", "u64", "i64"], returns: FFIType.i64_fast },
  pwrite: { args: ["i32", "ptr", "u64", "i64"], returns: FFIType.i64_fast },
  readv: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  preadv: { args: ["i32", "ptr", "i32", "i64"], returns: FFIType.i64_fast },
  pwritev: { args: ["i32", "ptr", "i32", "i64"], returns: FFIType.i64_fast },
  writev: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: "ptr" },
  munmap: { args: ["ptr", "u64"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  accept4: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  shutdown: { args: ["i32", "i32"], returns: "i32" },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  sendmsg: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  getpeername: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  statx: { args: ["i32", "ptr", "i32", "u32", "ptr"], returns: "i32" },
  fsync: { args: ["i32"], returns: "i32" },
  fdatasync: { args: ["i32"], returns: "i32" },
  fallocate: { args: ["i32", "i32", "i64", "i64"], returns: "i32" },
  ftruncate: { args: ["i32", "i64"], returns: "i32" },
  splice: { args: ["i32", "ptr", "i32", "ptr", "u64", "u32"], returns: FFIType.i64_fast },
  pipe2: { args: ["ptr", "i32"], returns: "i32" },
  renameat2: { args: ["i32", "ptr", "i32", "ptr", "u32"], returns: "i32" },
  unlinkat: { args: ["i32", "ptr", "i32"], returns: "i32" },
  mkdirat: { args: ["i32", "ptr", "u32"], returns: "i32" },
  mknodat: { args: ["i32", "ptr", "u32", "u64"], returns: "i32" },
  symlinkat: { args: ["ptr", "i32", "ptr"], returns: "i32" },
  readlinkat: { args: ["i32", "ptr", "ptr", "u64"], returns: FFIType.i64_fast },
  linkat: { args: ["i32", "ptr", "i32", "ptr", "i32"], returns: "i32" },
  fchmodat: { args: ["i32", "ptr", "u32", "i32"], returns: "i32" },
  fchmod: { args: ["i32", "u32"], returns: "i32" },
  utimensat: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  futimens: { args: ["i32", "ptr"], returns: "i32" },
  fchownat: { args: ["i32", "ptr", "u32", "u32", "i32"], returns: "i32" },
  fchown: { args: ["i32", "u32", "u32"], returns: "i32" },
  lseek: { args: ["i32", "i64", "i32"], returns: FFIType.i64_fast },
  syscall: { args: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], returns: FFIType.i64_fast },
  posix_memalign: { args: ["ptr", "u64", "u64"], returns: "i32" },
  free: { args: ["ptr"], returns: "void" },
  getrlimit: { args: ["i32", "ptr"], returns: "i32" },
  setrlimit: { args: ["i32", "ptr"], returns: "i32" },
  geteuid: { args: [], returns: "u32" },
  flistxattr: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  fgetxattr: { args: ["i32", "ptr", "ptr", "u64"], returns: FFIType.i64_fast },
  fsetxattr: { args: ["i32", "ptr", "ptr", "u64", "i32"], returns: "i32" },
  llistxattr: { args: ["ptr", "ptr", "u64"], returns: FFIType.i64_fast },
  lgetxattr: { args: ["ptr", "ptr", "ptr", "u64"], returns: FFIType.i64_fast },
  lsetxattr: { args: ["ptr", "ptr", "ptr", "u64", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "cstring" },
  gnu_get_libc_version: { args: [], returns: "cstring" },
  // Local copy engine (src/copy/): directory reading, umask, file system type, pipes.
  getdents64: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  umask: { args: ["u32"], returns: "u32" },
  fstatfs: { args: ["i32", "ptr"], returns: "i32" },
  getegid: { args: [], returns: "u32" },
  fcntl: { args: ["i32", "i32", "i64"], returns: "i32" },
  posix_fadvise: { args: ["i32", "i64", "i64", "i32"], returns: "i32" },
});

/**
 * `i64_fast` returns `number | bigint` in bun-types (a bigint only beyond 2^53, which no
 * size, offset or result here reaches): typed as `number` so callers can do arithmetic.
 * (The string "i64_fast" works at run time but is not in bun-types' string table.)
 */
type FastReturn<R> = [R] extends [number | bigint] ? ([number | bigint] extends [R] ? number : R) : R;
type Symbols<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => FastReturn<R> : T[K] };

/** The raw libc symbols. */
export const libc = lib.symbols as Symbols<typeof lib.symbols>;

// errno is thread-local; the location is stable for the life of this thread (one JS thread per Worker).
const errnoPtr = lib.symbols.__errno_location() as Pointer;

/** errno as left by the last failing libc call on this thread. Read it right after the call. */
export function errno(): number {
  return read.i32(errnoPtr, 0);
}

/** A NUL-terminated copy of a string (or bytes) for passing as `const char *`. */
export function cstr(s: string | Uint8Array): Buffer {
  if (typeof s === "string") return Buffer.from(s + "\0", "utf8");
  const b = Buffer.allocUnsafe(s.length + 1);
  b.set(s, 0);
  b[s.length] = 0;
  return b;
}

/** strerror(3) as a JS string. */
export function strerror(e: number): string {
  return String(lib.symbols.strerror(e));
}

/** The address of a typed array's bytes, for SQE fields and pointer arguments. */
export function addressOf(view: ArrayBufferView, byteOffset = 0): number {
  return (ptr(view as NodeJS.TypedArray) as number) + byteOffset;
}

/** openat2(2) through syscall(): glibc 2.36 has no wrapper. Returns fd or -1 with errno. */
export function openat2(dirfd: number, path: Buffer, how: ArrayBufferView, size: number): number {
  return libc.syscall(SYS.openat2, dirfd, addressOf(path), addressOf(how), size, 0, 0);
}

/**
 * copy_file_range(2) through the raw syscall: glibc 2.41/2.42's wrapper can corrupt copies
 * over 2 GiB on some file systems (FIELD_NOTES section 3). Offsets are passed by pointer.
 */
export function copy_file_range(fdIn: number, offIn: BigInt64Array | null, fdOut: number, offOut: BigInt64Array | null, len: number): number {
  return libc.syscall(
    SYS.copy_file_range, fdIn, offIn === null ? 0 : addressOf(offIn), fdOut, offOut === null ? 0 : addressOf(offOut), len, 0,
  );
}
