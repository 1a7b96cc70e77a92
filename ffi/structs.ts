/**
 * Every C struct layout uring-sync touches, in one place (x86_64 Linux).
 *
 * Owns: byte offsets and sizes of the kernel's and liburing 2.3's structs, and the
 * constants that go into them. Pure data: loads no library. tests/ffi/layout.test.ts
 * compiles a C program against the real headers and checks every number here.
 * Never put logic here beyond tiny pack helpers for these layouts.
 */

/** struct io_uring_sqe: 64 bytes. */
export const SQE = {
  size: 64,
  opcode: 0, // u8
  flags: 1, // u8
  ioprio: 2, // u16
  fd: 4, // i32
  off: 8, // u64 (also addr2, cmd_op)
  addr: 16, // u64 (also splice_off_in)
  len: 24, // u32
  opFlags: 28, // u32 union: rw_flags, open_flags, msg_flags, timeout_flags...
  userData: 32, // u64
  bufIndex: 40, // u16 (also buf_group)
  personality: 42, // u16
  spliceFdIn: 44, // i32 (also file_index, addr_len)
  addr3: 48, // u64
} as const;

/** struct io_uring_cqe: 16 bytes (no CQE32). */
export const CQE = { size: 16, userData: 0, res: 8, flags: 12 } as const;

/** struct io_sqring_offsets: 40 bytes. */
export const SQRING_OFFSETS = {
  size: 40, head: 0, tail: 4, ringMask: 8, ringEntries: 12, flags: 16, dropped: 20, array: 24, userAddr: 32,
} as const;

/** struct io_cqring_offsets: 40 bytes. */
export const CQRING_OFFSETS = {
  size: 40, head: 0, tail: 4, ringMask: 8, ringEntries: 12, overflow: 16, cqes: 20, flags: 24, userAddr: 32,
} as const;

/** struct io_uring_params: 120 bytes. */
export const URING_PARAMS = {
  size: 120,
  sqEntries: 0, cqEntries: 4, flags: 8, sqThreadCpu: 12, sqThreadIdle: 16, features: 20, wqFd: 24,
  sqOff: 40, cqOff: 80,
} as const;

/** liburing 2.3's struct io_uring (x86_64): 216 bytes. Offsets measured in FIELD_NOTES section 2. */
export const LIBURING_RING = {
  size: 216,
  sqKhead: 0, sqKtail: 8, sqKringMask: 16, sqKringEntries: 24, sqKflags: 32, sqKdropped: 40,
  sqArray: 48, sqSqes: 56, sqSqeHead: 64, sqSqeTail: 68, sqRingSz: 72, sqRingPtr: 80,
  sqRingMask: 88, sqRingEntries: 92,
  cqKhead: 104, cqKtail: 112, cqKringMask: 120, cqKringEntries: 128, cqKflags: 136,
  cqKoverflow: 144, cqCqes: 152, cqRingSz: 160, cqRingPtr: 168, cqRingMask: 176, cqRingEntries: 180,
  flags: 192, ringFd: 196, features: 200, enterRingFd: 204, intFlags: 208,
} as const;

/** struct io_uring_probe header (16 bytes) followed by io_uring_probe_op (8 bytes each). */
export const URING_PROBE = { size: 16, lastOp: 0, opsLen: 1, ops: 16, opSize: 8, opOp: 0, opFlags: 2 } as const;

/** struct __kernel_timespec: 16 bytes. */
export const KERNEL_TIMESPEC = { size: 16, sec: 0, nsec: 8 } as const;

/** struct statx: 256 bytes; statx_timestamp is {i64 sec, u32 nsec, i32 pad}. */
export const STATX = {
  size: 256,
  mask: 0, blksize: 4, attributes: 8, nlink: 16, uid: 20, gid: 24, mode: 28, ino: 32, size_: 40,
  blocks: 48, attributesMask: 56, atime: 64, btime: 80, ctime: 96, mtime: 112,
  rdevMajor: 128, rdevMinor: 132, devMajor: 136, devMinor: 140,
  tsSec: 0, tsNsec: 8,
} as const;

/** struct open_how (openat2): 24 bytes. */
export const OPEN_HOW = { size: 24, flags: 0, mode: 8, resolve: 16 } as const;

/** struct sockaddr_in: 16 bytes; struct sockaddr_in6: 28 bytes. Port is big-endian. */
export const SOCKADDR_IN = { size: 16, family: 0, port: 2, addr: 4 } as const;
export const SOCKADDR_IN6 = { size: 28, family: 0, port: 2, flowinfo: 4, addr: 8, scopeId: 24 } as const;
/** sockaddr_storage is 128 bytes: big enough for either. */
export const SOCKADDR_STORAGE_SIZE = 128;

/** struct iovec: 16 bytes. */
export const IOVEC = { size: 16, base: 0, len: 8 } as const;

/** struct msghdr: 56 bytes. */
export const MSGHDR = {
  size: 56, name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48,
} as const;

/** struct cmsghdr: 16-byte header, data aligned to 8. */
export const CMSGHDR = { size: 16, len: 0, level: 8, type: 12, data: 16 } as const;

/** struct pollfd: 8 bytes. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/** struct tls_crypto_info header + the per-cipher structs of <linux/tls.h>. */
export const TLS_CRYPTO_INFO = {
  version: 0, // u16
  cipherType: 2, // u16
  aesGcm128: { size: 40, iv: 4, ivLen: 8, key: 12, keyLen: 16, salt: 28, saltLen: 4, recSeq: 32 },
  aesGcm256: { size: 56, iv: 4, ivLen: 8, key: 12, keyLen: 32, salt: 44, saltLen: 4, recSeq: 48 },
  chacha20Poly1305: { size: 56, iv: 4, ivLen: 12, key: 16, keyLen: 32, salt: 48, saltLen: 0, recSeq: 48 },
  /** struct tls12_crypto_info_aes_ccm_128: the same shape as AES-GCM-128. */
  aesCcm128: { size: 40, iv: 4, ivLen: 8, key: 12, keyLen: 16, salt: 28, saltLen: 4, recSeq: 32 },
  recSeqLen: 8,
} as const;

/** struct timeval (SO_RCVTIMEO/SO_SNDTIMEO): 16 bytes. */
export const TIMEVAL = { size: 16, sec: 0, usec: 8 } as const;

/** struct rlimit: 16 bytes; RLIM_INFINITY is all ones. */
export const RLIMIT = { size: 16, cur: 0, max: 8 } as const;
export const RLIM_INFINITY = 0xffffffffffffffffn;

// ---- constants -------------------------------------------------------------------

/** io_uring opcodes (enum io_uring_op). */
export const OP = {
  NOP: 0, READV: 1, WRITEV: 2, FSYNC: 3, READ_FIXED: 4, WRITE_FIXED: 5, POLL_ADD: 6, POLL_REMOVE: 7,
  SYNC_FILE_RANGE: 8, SENDMSG: 9, RECVMSG: 10, TIMEOUT: 11, TIMEOUT_REMOVE: 12, ACCEPT: 13,
  ASYNC_CANCEL: 14, LINK_TIMEOUT: 15, CONNECT: 16, FALLOCATE: 17, OPENAT: 18, CLOSE: 19,
  FILES_UPDATE: 20, STATX: 21, READ: 22, WRITE: 23, FADVISE: 24, MADVISE: 25, SEND: 26, RECV: 27,
  OPENAT2: 28, EPOLL_CTL: 29, SPLICE: 30, PROVIDE_BUFFERS: 31, REMOVE_BUFFERS: 32, TEE: 33,
  SHUTDOWN: 34, RENAMEAT: 35, UNLINKAT: 36, MKDIRAT: 37, SYMLINKAT: 38, LINKAT: 39, MSG_RING: 40,
  FSETXATTR: 41, SETXATTR: 42, FGETXATTR: 43, GETXATTR: 44, SOCKET: 45, URING_CMD: 46, SEND_ZC: 47,
  SENDMSG_ZC: 48,
} as const;

/** The opcodes uring-sync uses (what `doctor` probes). */
export const USED_OPS: readonly (keyof typeof OP)[] = [
  "NOP", "READ", "WRITE", "READV", "WRITEV", "READ_FIXED", "WRITE_FIXED", "OPENAT", "OPENAT2", "CLOSE",
  "STATX", "SPLICE", "SEND", "RECV", "SENDMSG", "RECVMSG", "ACCEPT", "CONNECT", "SHUTDOWN", "FSYNC",
  "MKDIRAT", "SYMLINKAT", "LINKAT", "RENAMEAT", "UNLINKAT", "FALLOCATE", "TIMEOUT",
];

export const IOSQE = {
  FIXED_FILE: 1 << 0, IO_DRAIN: 1 << 1, IO_LINK: 1 << 2, IO_HARDLINK: 1 << 3, ASYNC: 1 << 4,
  BUFFER_SELECT: 1 << 5, CQE_SKIP_SUCCESS: 1 << 6,
} as const;

export const SETUP = {
  IOPOLL: 1 << 0, SQPOLL: 1 << 1, CQSIZE: 1 << 3, CLAMP: 1 << 4, SUBMIT_ALL: 1 << 7,
  COOP_TASKRUN: 1 << 8, TASKRUN_FLAG: 1 << 9, SINGLE_ISSUER: 1 << 12, DEFER_TASKRUN: 1 << 13,
  NO_SQARRAY: 1 << 16,
} as const;

export const ENTER = { GETEVENTS: 1 << 0, SQ_WAKEUP: 1 << 1, SQ_WAIT: 1 << 2, EXT_ARG: 1 << 3 } as const;
export const SQ_FLAGS = { NEED_WAKEUP: 1 << 0, CQ_OVERFLOW: 1 << 1, TASKRUN: 1 << 2 } as const;
export const CQE_F = { BUFFER: 1 << 0, MORE: 1 << 1, SOCK_NONEMPTY: 1 << 2, NOTIF: 1 << 3 } as const;
export const FEAT = { SINGLE_MMAP: 1 << 0, NODROP: 1 << 1, SUBMIT_STABLE: 1 << 2, RW_CUR_POS: 1 << 3, EXT_ARG: 1 << 8 } as const;
export const TIMEOUT_F = { ABS: 1 << 0, ETIME_SUCCESS: 1 << 5 } as const;
export const FSYNC_DATASYNC = 1;
export const FILE_INDEX_ALLOC = 0xffffffff;
export const OFF = { SQ_RING: 0, CQ_RING: 0x8000000, SQES: 0x10000000 } as const;
export const REGISTER = { BUFFERS: 0, UNREGISTER_BUFFERS: 1, FILES: 2, UNREGISTER_FILES: 3, PROBE: 8, FILES2: 13, IOWQ_MAX_WORKERS: 19 } as const;
export const RSRC_REGISTER_SPARSE = 1;
export const PROBE_OP_SUPPORTED = 1;

/** x86_64 syscall numbers we call through libc's syscall(). */
export const SYS = {
  io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, openat2: 437, copy_file_range: 326,
  statx: 332, renameat2: 316, preadv2: 327,
} as const;

/** open(2) flags. */
export const O = {
  RDONLY: 0, WRONLY: 1, RDWR: 2, CREAT: 0o100, EXCL: 0o200, NOCTTY: 0o400, TRUNC: 0o1000,
  APPEND: 0o2000, NONBLOCK: 0o4000, DIRECTORY: 0o200000, NOFOLLOW: 0o400000, CLOEXEC: 0o2000000,
  PATH: 0o10000000, TMPFILE: 0o20200000, NOATIME: 0o1000000, DIRECT: 0o40000, LARGEFILE: 0o100000,
} as const;

export const AT = {
  FDCWD: -100, SYMLINK_NOFOLLOW: 0x100, REMOVEDIR: 0x200, SYMLINK_FOLLOW: 0x400, EMPTY_PATH: 0x1000,
  STATX_SYNC_AS_STAT: 0, NO_AUTOMOUNT: 0x800,
} as const;

/** openat2 resolve flags. */
export const RESOLVE = {
  NO_XDEV: 0x01, NO_MAGICLINKS: 0x02, NO_SYMLINKS: 0x04, BENEATH: 0x08, IN_ROOT: 0x10, CACHED: 0x20,
} as const;

export const STATX_MASK = {
  TYPE: 0x1, MODE: 0x2, NLINK: 0x4, UID: 0x8, GID: 0x10, ATIME: 0x20, MTIME: 0x40, CTIME: 0x80,
  INO: 0x100, SIZE: 0x200, BLOCKS: 0x400, BASIC_STATS: 0x7ff, BTIME: 0x800,
} as const;

export const S = {
  IFMT: 0o170000, IFSOCK: 0o140000, IFLNK: 0o120000, IFREG: 0o100000, IFBLK: 0o60000, IFDIR: 0o40000,
  IFCHR: 0o20000, IFIFO: 0o10000, ISUID: 0o4000, ISGID: 0o2000, ISVTX: 0o1000,
} as const;

export const RENAME = { NOREPLACE: 1, EXCHANGE: 2, WHITEOUT: 4 } as const;
export const SEEK = { SET: 0, CUR: 1, END: 2, DATA: 3, HOLE: 4 } as const;
export const SPLICE_F = { MOVE: 1, NONBLOCK: 2, MORE: 4, FD_IN_FIXED: 0x80000000 } as const;
export const FALLOC = { KEEP_SIZE: 1, PUNCH_HOLE: 2 } as const;

/** mmap(2). */
export const PROT = { READ: 1, WRITE: 2 } as const;
export const MAP = { SHARED: 1, PRIVATE: 2, ANONYMOUS: 0x20, POPULATE: 0x8000 } as const;
export const MAP_FAILED = -1;

/** Sockets. */
export const AF = { UNIX: 1, INET: 2, INET6: 10 } as const;
export const SOCK = { STREAM: 1, DGRAM: 2, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const SOL = { SOCKET: 1, TCP: 6, IPV6: 41, TLS: 282 } as const;
export const SO = { REUSEADDR: 2, ERROR: 4, SNDBUF: 7, RCVBUF: 8, KEEPALIVE: 9, RCVTIMEO: 20, SNDTIMEO: 21 } as const;
export const TCP = { NODELAY: 1, CORK: 3, ULP: 31, INFO: 11 } as const;
export const IPV6_V6ONLY = 26;
export const MSG = {
  OOB: 1, PEEK: 2, CTRUNC: 8, TRUNC: 0x20, DONTWAIT: 0x40, EOR: 0x80, WAITALL: 0x100, NOSIGNAL: 0x4000, MORE: 0x8000,
} as const;
export const SHUT = { RD: 0, WR: 1, RDWR: 2 } as const;
export const POLL = { IN: 1, PRI: 2, OUT: 4, ERR: 8, HUP: 16, NVAL: 32 } as const;

/** <linux/tls.h>. */
export const TLS = {
  TX: 1, RX: 2, TX_ZEROCOPY_RO: 3, RX_EXPECT_NO_PAD: 4,
  SET_RECORD_TYPE: 1, GET_RECORD_TYPE: 2,
  VERSION_1_2: 0x0303, VERSION_1_3: 0x0304,
  CIPHER_AES_GCM_128: 51, CIPHER_AES_GCM_256: 52, CIPHER_AES_CCM_128: 53, CIPHER_CHACHA20_POLY1305: 54,
} as const;

export const IOCTL = { FICLONE: 0x40049409, FIONREAD: 0x541b } as const;

export const RLIMIT_NOFILE = 7;
