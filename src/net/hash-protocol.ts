/**
 * Messages between the hash pool (hash-pool.ts) and its workers (hash-worker.ts), and the
 * layout of their shared result table: Int32 states (0 = running, 1 = digest ready,
 * negative = -errno) followed by one 32-byte digest per slot.
 */
export const HASH_SLOT_BYTES = 32;

export type HashWorkerIn =
  | { t: "init"; shared: SharedArrayBuffer; slots: number; efd: number }
  | { t: "job"; slot: number; fd: number; length: number };
