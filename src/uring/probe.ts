/**
 * Decodes struct io_uring_probe into a per-opcode "supported" table.
 *
 * Owns: the probe layout interpretation. Never calls the kernel.
 */
import { PROBE_OP_SUPPORTED, URING_PROBE } from "../../ffi/structs.ts";

export function parseProbe(buf: Uint8Array): boolean[] {
  const lastOp = buf[URING_PROBE.lastOp];
  const opsLen = buf[URING_PROBE.opsLen];
  const supported: boolean[] = [];
  for (let i = 0; i < opsLen && i <= lastOp; i++) {
    const at = URING_PROBE.ops + i * URING_PROBE.opSize;
    const flags = buf[at + URING_PROBE.opFlags] | (buf[at + URING_PROBE.opFlags + 1] << 8);
    supported[buf[at + URING_PROBE.opOp]] = (flags & PROBE_OP_SUPPORTED) !== 0;
  }
  return supported;
}
