/**
 * Directory reading: getdents64 into one reusable buffer, entries handed out one buffer
 * fill at a time (in inode order where that helps), so a directory of any size is read in
 * bounded memory and the first entries can be copied before the directory is fully read.
 *
 * Owns: the dirent64 walk, skipping "." and "..", and the per-fill inode sort. Names are
 * referenced in place (offset + length into the buffer, NUL-terminated by the kernel), so
 * they stay valid only until the next fill(). Never stats, never decides what to copy.
 */
import { errno, libc, addressOf } from "../../ffi/libc.ts";
import { DIRENT64 } from "./sysconst.ts";

/** Bytes per getdents64 call: about 2,000 short names. */
export const DIR_BUF_BYTES = 64 * 1024;

export class DirReader {
  readonly buf: Uint8Array;
  readonly addr: number;
  private readonly dv: DataView;
  private fd = -1;
  private eof = false;
  /** Entries of the current fill, in the order to process them: byte offsets of records. */
  order: Int32Array;
  count = 0;
  private inos: Float64Array;
  private sortable: Int32Array;

  constructor(bytes = DIR_BUF_BYTES) {
    this.buf = new Uint8Array(bytes);
    this.addr = addressOf(this.buf);
    this.dv = new DataView(this.buf.buffer);
    // A record is at least 24 bytes.
    this.order = new Int32Array(Math.ceil(bytes / 24));
    this.inos = new Float64Array(this.order.length);
    this.sortable = new Int32Array(this.order.length);
  }

  open(fd: number): void {
    this.fd = fd;
    this.eof = false;
    this.count = 0;
  }

  /**
   * Read the next batch of entries. Returns the number of entries (0 at the end), or
   * -errno. With `byInode`, `order` lists them by ascending inode number.
   */
  fill(byInode: boolean): number {
    this.count = 0;
    if (this.eof) return 0;
    const n = libc.getdents64(this.fd, this.buf, this.buf.length);
    if (n < 0) return -errno();
    if (n === 0) {
      this.eof = true;
      return 0;
    }
    const b = this.buf;
    let off = 0;
    let c = 0;
    while (off < n) {
      const reclen = b[off + DIRENT64.reclen] | (b[off + DIRENT64.reclen + 1] << 8);
      const nm = off + DIRENT64.name;
      // Skip "." and "..".
      if (!(b[nm] === 0x2e && (b[nm + 1] === 0 || (b[nm + 1] === 0x2e && b[nm + 2] === 0)))) {
        this.order[c++] = off;
      }
      off += reclen;
    }
    this.count = c;
    if (byInode && c > 1) this.sortByInode();
    return c === 0 ? this.fill(byInode) : c;
  }

  private sortByInode(): void {
    const c = this.count;
    const inos = this.inos;
    const w = this.dv;
    for (let i = 0; i < c; i++) {
      const at = this.order[i] + DIRENT64.ino;
      inos[i] = w.getUint32(at, true) + w.getUint32(at + 4, true) * 4294967296;
      this.sortable[i] = i;
    }
    const idx = this.sortable.subarray(0, c);
    idx.sort((x, y) => inos[x] - inos[y]);
    const tmp = new Int32Array(c);
    for (let i = 0; i < c; i++) tmp[i] = this.order[idx[i]];
    this.order.set(tmp, 0);
  }

  /** d_type of the record at `rec`. */
  type(rec: number): number {
    return this.buf[rec + DIRENT64.type];
  }

  /** Byte offset of the NUL-terminated name of the record at `rec`. */
  nameOff(rec: number): number {
    return rec + DIRENT64.name;
  }

  /** Length of the name of the record at `rec`, in bytes. */
  nameLen(rec: number): number {
    const b = this.buf;
    let e = rec + DIRENT64.name;
    while (b[e] !== 0) e++;
    return e - rec - DIRENT64.name;
  }

  /** The name of the record at `rec` (a view into the buffer: valid until the next fill). */
  name(rec: number): Uint8Array {
    const s = rec + DIRENT64.name;
    return this.buf.subarray(s, s + this.nameLen(rec));
  }

  /** The NUL-terminated name of the record (a view; valid until the next fill). */
  zname(rec: number): Uint8Array {
    const s = rec + DIRENT64.name;
    return this.buf.subarray(s, s + this.nameLen(rec) + 1);
  }

  /** Address of the NUL-terminated name, for syscalls and SQEs. */
  nameAddr(rec: number): number {
    return this.addr + rec + DIRENT64.name;
  }
}
