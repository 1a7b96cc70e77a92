// tests/ffi/layout.test.ts — every struct layout and constant in ffi/structs.ts, checked
// against the real C headers: a C program is generated from the tables below, compiled
// with gcc against <liburing.h> and the kernel/glibc headers, and its JSON output is
// compared field by field. A table entry missing for a structs.ts field fails the test
// (so a new field cannot slip in unchecked). gcc and liburing-dev are required: if they
// are missing the test fails with a message saying so (scripts/setup installs them).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as S from "../../ffi/structs.ts";

// ---- what each structs.ts number means in C ----------------------------------------

/** TS key -> C expression. "sizeof" means sizeof(the struct); a bare name is offsetof(struct, name). */
type FieldMap = Record<string, string>;
interface StructSpec {
  ts: string;
  cStruct: string;
  fields: FieldMap;
}

/** Raw C expression (not a field name). */
const expr = (e: string): string => `=${e}`;

const STRUCTS: StructSpec[] = [
  {
    ts: "SQE", cStruct: "struct io_uring_sqe",
    fields: {
      size: "sizeof", opcode: "opcode", flags: "flags", ioprio: "ioprio", fd: "fd", off: "off", addr: "addr",
      len: "len", opFlags: "rw_flags", userData: "user_data", bufIndex: "buf_index", personality: "personality",
      spliceFdIn: "splice_fd_in", addr3: "addr3",
    },
  },
  { ts: "CQE", cStruct: "struct io_uring_cqe", fields: { size: "sizeof", userData: "user_data", res: "res", flags: "flags" } },
  {
    ts: "SQRING_OFFSETS", cStruct: "struct io_sqring_offsets",
    // user_addr (kernel 6.5) is resv2 in the 6.1 / liburing 2.3 headers: same slot.
    fields: {
      size: "sizeof", head: "head", tail: "tail", ringMask: "ring_mask", ringEntries: "ring_entries", flags: "flags",
      dropped: "dropped", array: "array", userAddr: "resv2",
    },
  },
  {
    ts: "CQRING_OFFSETS", cStruct: "struct io_cqring_offsets",
    fields: {
      size: "sizeof", head: "head", tail: "tail", ringMask: "ring_mask", ringEntries: "ring_entries",
      overflow: "overflow", cqes: "cqes", flags: "flags", userAddr: "resv2",
    },
  },
  {
    ts: "URING_PARAMS", cStruct: "struct io_uring_params",
    fields: {
      size: "sizeof", sqEntries: "sq_entries", cqEntries: "cq_entries", flags: "flags", sqThreadCpu: "sq_thread_cpu",
      sqThreadIdle: "sq_thread_idle", features: "features", wqFd: "wq_fd", sqOff: "sq_off", cqOff: "cq_off",
    },
  },
  {
    ts: "LIBURING_RING", cStruct: "struct io_uring",
    fields: {
      size: "sizeof",
      sqKhead: "sq.khead", sqKtail: "sq.ktail", sqKringMask: "sq.kring_mask", sqKringEntries: "sq.kring_entries",
      sqKflags: "sq.kflags", sqKdropped: "sq.kdropped", sqArray: "sq.array", sqSqes: "sq.sqes",
      sqSqeHead: "sq.sqe_head", sqSqeTail: "sq.sqe_tail", sqRingSz: "sq.ring_sz", sqRingPtr: "sq.ring_ptr",
      sqRingMask: "sq.ring_mask", sqRingEntries: "sq.ring_entries",
      cqKhead: "cq.khead", cqKtail: "cq.ktail", cqKringMask: "cq.kring_mask", cqKringEntries: "cq.kring_entries",
      cqKflags: "cq.kflags", cqKoverflow: "cq.koverflow", cqCqes: "cq.cqes", cqRingSz: "cq.ring_sz",
      cqRingPtr: "cq.ring_ptr", cqRingMask: "cq.ring_mask", cqRingEntries: "cq.ring_entries",
      flags: "flags", ringFd: "ring_fd", features: "features", enterRingFd: "enter_ring_fd", intFlags: "int_flags",
    },
  },
  {
    ts: "URING_PROBE", cStruct: "struct io_uring_probe",
    fields: {
      size: "sizeof", lastOp: "last_op", opsLen: "ops_len", ops: "ops",
      opSize: expr("sizeof(struct io_uring_probe_op)"),
      opOp: expr("offsetof(struct io_uring_probe_op, op)"),
      opFlags: expr("offsetof(struct io_uring_probe_op, flags)"),
    },
  },
  { ts: "KERNEL_TIMESPEC", cStruct: "struct __kernel_timespec", fields: { size: "sizeof", sec: "tv_sec", nsec: "tv_nsec" } },
  {
    ts: "STATX", cStruct: "struct statx",
    fields: {
      size: "sizeof", mask: "stx_mask", blksize: "stx_blksize", attributes: "stx_attributes", nlink: "stx_nlink",
      uid: "stx_uid", gid: "stx_gid", mode: "stx_mode", ino: "stx_ino", size_: "stx_size", blocks: "stx_blocks",
      attributesMask: "stx_attributes_mask", atime: "stx_atime", btime: "stx_btime", ctime: "stx_ctime",
      mtime: "stx_mtime", rdevMajor: "stx_rdev_major", rdevMinor: "stx_rdev_minor", devMajor: "stx_dev_major",
      devMinor: "stx_dev_minor",
      tsSec: expr("offsetof(struct statx_timestamp, tv_sec)"),
      tsNsec: expr("offsetof(struct statx_timestamp, tv_nsec)"),
    },
  },
  { ts: "OPEN_HOW", cStruct: "struct open_how", fields: { size: "sizeof", flags: "flags", mode: "mode", resolve: "resolve" } },
  {
    ts: "SOCKADDR_IN", cStruct: "struct sockaddr_in",
    fields: { size: "sizeof", family: "sin_family", port: "sin_port", addr: "sin_addr" },
  },
  {
    ts: "SOCKADDR_IN6", cStruct: "struct sockaddr_in6",
    fields: {
      size: "sizeof", family: "sin6_family", port: "sin6_port", flowinfo: "sin6_flowinfo", addr: "sin6_addr",
      scopeId: "sin6_scope_id",
    },
  },
  { ts: "IOVEC", cStruct: "struct iovec", fields: { size: "sizeof", base: "iov_base", len: "iov_len" } },
  {
    ts: "MSGHDR", cStruct: "struct msghdr",
    fields: {
      size: "sizeof", name: "msg_name", namelen: "msg_namelen", iov: "msg_iov", iovlen: "msg_iovlen",
      control: "msg_control", controllen: "msg_controllen", flags: "msg_flags",
    },
  },
  {
    ts: "CMSGHDR", cStruct: "struct cmsghdr",
    fields: { size: "sizeof", len: "cmsg_len", level: "cmsg_level", type: "cmsg_type", data: expr("CMSG_LEN(0)") },
  },
  { ts: "POLLFD", cStruct: "struct pollfd", fields: { size: "sizeof", fd: "fd", events: "events", revents: "revents" } },
  { ts: "TIMEVAL", cStruct: "struct timeval", fields: { size: "sizeof", sec: "tv_sec", usec: "tv_usec" } },
  { ts: "RLIMIT", cStruct: "struct rlimit", fields: { size: "sizeof", cur: "rlim_cur", max: "rlim_max" } },
];

/** TLS_CRYPTO_INFO is nested: one header and three cipher structs. */
const TLS_INFO: Record<string, string> = {
  version: "offsetof(struct tls_crypto_info, version)",
  cipherType: "offsetof(struct tls_crypto_info, cipher_type)",
  recSeqLen: "TLS_CIPHER_AES_GCM_128_REC_SEQ_SIZE",
};
const TLS_CIPHERS: Record<string, { cStruct: string; prefix: string }> = {
  aesGcm128: { cStruct: "struct tls12_crypto_info_aes_gcm_128", prefix: "TLS_CIPHER_AES_GCM_128" },
  aesGcm256: { cStruct: "struct tls12_crypto_info_aes_gcm_256", prefix: "TLS_CIPHER_AES_GCM_256" },
  chacha20Poly1305: { cStruct: "struct tls12_crypto_info_chacha20_poly1305", prefix: "TLS_CIPHER_CHACHA20_POLY1305" },
  aesCcm128: { cStruct: "struct tls12_crypto_info_aes_ccm_128", prefix: "TLS_CIPHER_AES_CCM_128" },
};
function tlsCipherFields(c: { cStruct: string; prefix: string }): Record<string, string> {
  const m = (f: string): string => `sizeof(((${c.cStruct} *)0)->${f})`;
  return {
    size: `sizeof(${c.cStruct})`,
    iv: `offsetof(${c.cStruct}, iv)`, ivLen: `${c.prefix}_IV_SIZE`,
    key: `offsetof(${c.cStruct}, key)`, keyLen: `${c.prefix}_KEY_SIZE`,
    salt: `offsetof(${c.cStruct}, salt)`, saltLen: `${c.prefix}_SALT_SIZE`,
    recSeq: `offsetof(${c.cStruct}, rec_seq)`,
    // The array sizes themselves, so a header constant and the struct cannot disagree unseen.
    "ivLen#array": m("iv"), "keyLen#array": m("key"), "saltLen#array": m("salt"),
  };
}

/** Constant groups: TS object -> (key -> C name). */
const pre = (p: string) => (k: string): string => p + k;
const CONSTS: { ts: string; name: (k: string) => string }[] = [
  { ts: "OP", name: pre("IORING_OP_") },
  { ts: "IOSQE", name: pre("IOSQE_") },
  { ts: "SETUP", name: pre("IORING_SETUP_") },
  { ts: "ENTER", name: pre("IORING_ENTER_") },
  { ts: "SQ_FLAGS", name: pre("IORING_SQ_") },
  { ts: "CQE_F", name: pre("IORING_CQE_F_") },
  { ts: "FEAT", name: pre("IORING_FEAT_") },
  { ts: "TIMEOUT_F", name: pre("IORING_TIMEOUT_") },
  { ts: "OFF", name: pre("IORING_OFF_") },
  { ts: "REGISTER", name: (k) => (k.startsWith("UNREGISTER_") ? `IORING_${k}` : `IORING_REGISTER_${k}`) },
  { ts: "SYS", name: pre("__NR_") },
  { ts: "O", name: (k) => (k === "LARGEFILE" ? "K_O_LARGEFILE" : `O_${k}`) },
  { ts: "AT", name: pre("AT_") },
  { ts: "RESOLVE", name: pre("RESOLVE_") },
  { ts: "STATX_MASK", name: pre("STATX_") },
  { ts: "S", name: pre("S_") },
  { ts: "RENAME", name: pre("RENAME_") },
  { ts: "SEEK", name: pre("SEEK_") },
  { ts: "SPLICE_F", name: pre("SPLICE_F_") },
  { ts: "FALLOC", name: pre("FALLOC_FL_") },
  { ts: "PROT", name: pre("PROT_") },
  { ts: "MAP", name: pre("MAP_") },
  { ts: "AF", name: pre("AF_") },
  { ts: "SOCK", name: pre("SOCK_") },
  { ts: "SOL", name: pre("SOL_") },
  { ts: "SO", name: pre("SO_") },
  { ts: "TCP", name: pre("TCP_") },
  { ts: "MSG", name: pre("MSG_") },
  { ts: "SHUT", name: pre("SHUT_") },
  { ts: "POLL", name: pre("POLL") },
  {
    ts: "TLS",
    name: (k) => {
      const v = /^VERSION_(\d)_(\d)$/.exec(k);
      return v ? `TLS_${v[1]}_${v[2]}_VERSION` : `TLS_${k}`;
    },
  },
  { ts: "IOCTL", name: (k) => k },
];

/** Single constants: TS export -> C expression. */
const SCALARS: Record<string, string> = {
  FSYNC_DATASYNC: "IORING_FSYNC_DATASYNC",
  FILE_INDEX_ALLOC: "IORING_FILE_INDEX_ALLOC",
  RSRC_REGISTER_SPARSE: "IORING_RSRC_REGISTER_SPARSE",
  PROBE_OP_SUPPORTED: "IO_URING_OP_SUPPORTED",
  SOCKADDR_STORAGE_SIZE: "sizeof(struct sockaddr_storage)",
  MAP_FAILED: "(long long)(intptr_t)MAP_FAILED",
  IPV6_V6ONLY: "IPV6_V6ONLY",
  RLIMIT_NOFILE: "RLIMIT_NOFILE",
  RLIM_INFINITY: "RLIM_INFINITY",
};

/** Exports of structs.ts that are not C numbers (checked separately below). */
const NOT_C = new Set(["USED_OPS"]);

/**
 * Constants newer than the installed headers (linux-libc-dev 6.1, liburing 2.3). Each is
 * checked against the value the kernel source gives it, here, and reported as such.
 */
const NEWER_THAN_HEADERS: Record<string, { value: number; why: string }> = {
  IORING_SETUP_NO_SQARRAY: { value: 1 << 16, why: "kernel 6.6 include/uapi/linux/io_uring.h" },
};

const HEADERS = [
  "liburing.h", "linux/io_uring.h", "linux/stat.h", "linux/openat2.h", "netinet/in.h", "sys/socket.h", "sys/uio.h",
  "poll.h", "linux/tls.h", "linux/time_types.h",
  // For the constants: open/at/mmap/rlimit/syscall numbers/ioctls.
  "fcntl.h", "sys/stat.h", "sys/mman.h", "sys/resource.h", "sys/syscall.h", "sys/ioctl.h", "netinet/tcp.h",
  "stdio.h", "linux/fs.h", "linux/falloc.h", "stddef.h", "stdint.h",
];

// ---- generating, compiling, running ------------------------------------------------

interface Check {
  /** Name shown on mismatch, e.g. "SQE.fd" or "OP.READ (IORING_OP_READ)". */
  label: string;
  ts: number | bigint;
  /** Key in the C program's JSON output. */
  key: string;
  c: string;
}

const tsRecord = (name: string): Record<string, unknown> => (S as unknown as Record<string, Record<string, unknown>>)[name];

function structChecks(): { checks: Check[]; unmapped: string[] } {
  const checks: Check[] = [];
  const unmapped: string[] = [];
  for (const spec of STRUCTS) {
    const ts = tsRecord(spec.ts);
    if (ts === undefined) {
      unmapped.push(`${spec.ts}: not exported by structs.ts`);
      continue;
    }
    for (const [k, v] of Object.entries(ts)) {
      const f = spec.fields[k];
      if (f === undefined) {
        unmapped.push(`${spec.ts}.${k}: no C counterpart in tests/ffi/layout.test.ts`);
        continue;
      }
      const c = f === "sizeof" ? `sizeof(${spec.cStruct})` : f.startsWith("=") ? f.slice(1) : `offsetof(${spec.cStruct}, ${f})`;
      checks.push({ label: `${spec.ts}.${k}`, ts: v as number, key: `${spec.ts}.${k}`, c });
    }
  }
  const tls = tsRecord("TLS_CRYPTO_INFO");
  for (const [k, v] of Object.entries(tls)) {
    if (typeof v === "number") {
      const c = TLS_INFO[k];
      if (c === undefined) unmapped.push(`TLS_CRYPTO_INFO.${k}: no C counterpart`);
      else checks.push({ label: `TLS_CRYPTO_INFO.${k}`, ts: v, key: `TLS_CRYPTO_INFO.${k}`, c });
      continue;
    }
    const cipher = TLS_CIPHERS[k];
    if (cipher === undefined) {
      unmapped.push(`TLS_CRYPTO_INFO.${k}: no C counterpart`);
      continue;
    }
    const fields = tlsCipherFields(cipher);
    for (const [fk, fv] of Object.entries(v as Record<string, number>)) {
      if (fields[fk] === undefined) {
        unmapped.push(`TLS_CRYPTO_INFO.${k}.${fk}: no C counterpart`);
        continue;
      }
      checks.push({ label: `TLS_CRYPTO_INFO.${k}.${fk}`, ts: fv, key: `TLS.${k}.${fk}`, c: fields[fk] });
      const arr = fields[`${fk}#array`];
      if (arr !== undefined) {
        checks.push({ label: `TLS_CRYPTO_INFO.${k}.${fk} (array size in struct)`, ts: fv, key: `TLS.${k}.${fk}#array`, c: arr });
      }
    }
  }
  return { checks, unmapped };
}

function constChecks(): { checks: Check[]; names: string[] } {
  const checks: Check[] = [];
  for (const g of CONSTS) {
    for (const [k, v] of Object.entries(tsRecord(g.ts))) {
      const cName = g.name(k);
      checks.push({ label: `${g.ts}.${k} (${cName})`, ts: v as number, key: cName, c: cName });
    }
  }
  for (const [k, c] of Object.entries(SCALARS)) {
    checks.push({ label: `${k} (${c})`, ts: (S as unknown as Record<string, number | bigint>)[k], key: k, c });
  }
  return { checks, names: checks.map((c) => c.c).filter((c) => /^[A-Z_][A-Z0-9_]*$/i.test(c)) };
}

interface Compiled {
  /** Every value as the C program printed it (a decimal string of the 64-bit pattern). */
  values: Record<string, string>;
  /** C names that the headers do not define (skipped in the program). */
  missing: string[];
  /** Every IORING_OP_* enumerator in the header (without IORING_OP_LAST). */
  headerOps: string[];
}

function run(cmd: string[], cwd: string): { ok: boolean; out: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: r.stdout.toString() + r.stderr.toString() };
}

function requireToolchain(): void {
  const problems: string[] = [];
  if (Bun.which("gcc") === null) problems.push("gcc not found in PATH");
  if (!existsSync("/usr/include/liburing.h")) problems.push("/usr/include/liburing.h missing (liburing-dev)");
  if (problems.length > 0) {
    throw new Error(
      `layout test needs gcc and liburing-dev (${problems.join("; ")}). ` +
        "Install them (scripts/setup.sh does: apt-get install gcc liburing-dev); this test never skips.",
    );
  }
}

function compileAndRun(dir: string, checks: Check[], names: string[]): Compiled {
  const includes = HEADERS.map((h) => `#include <${h}>`).join("\n");
  const prelude = `#define _GNU_SOURCE 1\n${includes}\n`;
  // Which names do the headers know? Macros from -dM, enumerators from the preprocessed text.
  writeFileSync(join(dir, "probe.c"), prelude);
  const macros = run(["gcc", "-E", "-dM", "probe.c"], dir);
  const text = run(["gcc", "-E", "probe.c"], dir);
  if (!macros.ok || !text.ok) throw new Error(`gcc -E failed:\n${macros.out}\n${text.out}`);
  const known = new Set<string>();
  for (const m of macros.out.matchAll(/^#define (\w+)/gm)) known.add(m[1]);
  for (const m of text.out.matchAll(/\b([A-Z_][A-Z0-9_]*)\b/g)) known.add(m[1]);
  known.add("K_O_LARGEFILE");
  const missing = [...new Set(names)].filter((n) => !known.has(n));
  const skip = new Set(missing);

  const lines: string[] = [];
  const seen = new Set<string>();
  for (const c of checks) {
    if (seen.has(c.key) || skip.has(c.c)) continue;
    seen.add(c.key);
    lines.push(`  P(${JSON.stringify(c.key)}, (unsigned long long)(${c.c}));`);
  }
  const main = `${prelude}
/* The kernel's O_LARGEFILE (glibc defines it as 0 on x86_64, where it is implied). */
extern const long long K_O_LARGEFILE;
static int first = 1;
/* Printed as strings: 64-bit patterns such as RLIM_INFINITY do not survive a JSON double. */
static void P(const char *k, unsigned long long v) { printf("%s\\n  \\"%s\\": \\"%llu\\"", first ? "" : ",", k, v); first = 0; }
int main(void) {
  printf("{");
${lines.join("\n")}
  printf("\\n}\\n");
  return 0;
}
`;
  // A separate unit with only the kernel's uapi fcntl header (it clashes with glibc's).
  const kernel = "#include <asm/fcntl.h>\nconst long long K_O_LARGEFILE = O_LARGEFILE;\n";
  writeFileSync(join(dir, "layout.c"), main);
  writeFileSync(join(dir, "kernel.c"), kernel);
  const cc = run(["gcc", "-std=gnu11", "-Wall", "-Werror", "-o", "layout", "layout.c", "kernel.c", "-luring"], dir);
  if (!cc.ok) throw new Error(`gcc failed:\n${cc.out}`);
  const out = run(["./layout"], dir);
  if (!out.ok) throw new Error(`layout program failed:\n${out.out}`);
  const headerOps = [...new Set([...text.out.matchAll(/\bIORING_OP_(\w+)\b/g)].map((m) => m[1]))].filter((n) => n !== "LAST");
  return { values: JSON.parse(out.out) as Record<string, string>, missing, headerOps };
}

// ---- the tests -------------------------------------------------------------------------

let dir = "";
let compiled: Compiled | undefined;
let setupError: Error | undefined;
const structs = structChecks();
const consts = constChecks();

beforeAll(() => {
  try {
    requireToolchain();
    dir = mkdtempSync(join(tmpdir(), "uring-layout-"));
    compiled = compileAndRun(dir, [...structs.checks, ...consts.checks], consts.names);
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
});

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

function results(): Compiled {
  if (setupError !== undefined) throw setupError;
  if (compiled === undefined) throw new Error("layout program did not run");
  return compiled;
}

/** C's value as a signed number when it fits the way structs.ts would write it. */
function cValue(pattern: string, like: number | bigint): number | bigint {
  const u = BigInt(pattern);
  if (typeof like === "bigint") return u;
  // Negative TS numbers (AT_FDCWD, MAP_FAILED) are compared as C's signed 64-bit value;
  // everything else as the unsigned value (so 1 << 31 for a u32 flag is a mismatch).
  return Number(like < 0 ? BigInt.asIntN(64, u) : u);
}

function mismatches(checks: Check[], c: Compiled): string[] {
  const bad: string[] = [];
  for (const ch of checks) {
    if (c.missing.includes(ch.c)) continue;
    const v = c.values[ch.key];
    if (v === undefined) bad.push(`${ch.label}: not printed by the C program`);
    else if (cValue(v, ch.ts) !== ch.ts) bad.push(`${ch.label}: structs.ts says ${ch.ts}, C says ${cValue(v, ch.ts)}`);
  }
  return bad;
}

describe("ffi/structs.ts against the C headers", () => {
  test("toolchain present and the generated C program compiles and runs", () => {
    const c = results();
    expect(Object.keys(c.values).length).toBeGreaterThan(200);
  });

  test("every struct field in structs.ts has a C counterpart in this test", () => {
    expect(structs.unmapped).toEqual([]);
  });

  test("every export of structs.ts is checked by this test", () => {
    const covered = new Set<string>([
      ...STRUCTS.map((x) => x.ts), "TLS_CRYPTO_INFO", ...CONSTS.map((x) => x.ts), ...Object.keys(SCALARS), ...NOT_C,
    ]);
    const unchecked = Object.keys(S).filter((k) => !covered.has(k));
    expect(unchecked).toEqual([]);
  });

  test("struct sizes and field offsets match", () => {
    const c = results();
    expect(mismatches(structs.checks, c)).toEqual([]);
  });

  test("constants match the headers", () => {
    const c = results();
    expect(mismatches(consts.checks, c)).toEqual([]);
  });

  test("constants the headers lack are exactly the known newer ones, with the kernel's values", () => {
    const c = results();
    expect(c.missing.sort()).toEqual(Object.keys(NEWER_THAN_HEADERS).sort());
    const bad: string[] = [];
    for (const [name, { value, why }] of Object.entries(NEWER_THAN_HEADERS)) {
      const ch = consts.checks.find((x) => x.c === name);
      if (ch === undefined) bad.push(`${name}: not in structs.ts`);
      else if (ch.ts !== value) bad.push(`${ch.label}: structs.ts says ${ch.ts}, ${why} says ${value}`);
    }
    expect(bad).toEqual([]);
  });

  test("OP has every opcode of the header's enum io_uring_op, and no other", () => {
    // The constants test checked OP -> header; this is header -> OP.
    const c = results();
    expect(c.headerOps.length).toBeGreaterThan(40);
    expect(c.headerOps.filter((n) => !(n in S.OP))).toEqual([]);
    expect(Object.keys(S.OP).filter((n) => !c.headerOps.includes(n))).toEqual([]);
  });

  test("USED_OPS names only opcodes that exist", () => {
    const unknown = S.USED_OPS.filter((n) => !(n in S.OP));
    expect(unknown).toEqual([]);
    expect(S.USED_OPS.length).toBeGreaterThan(20);
  });
});
