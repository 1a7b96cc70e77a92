/**
 * Seal/open throughput of 16 KiB TLS 1.3 records per cipher and AEAD back end
 * (src/net/record.ts: libcrypto through FFI, node:crypto, portable ChaCha), next to raw
 * node:crypto AES-128-GCM on the same kind of records, so the wrapper's own cost is visible.
 * "GB per CPU-s" counts every thread and the collector: node:crypto's buffer per record
 * shows up there (and as page faults in a real transfer), not in the wall-clock columns.
 *
 *   bun bench/record-seal.ts            # ~20 s
 *   BENCH_TIME_MS=300 bun bench/record-seal.ts
 *
 * The machine is shared and noisy: compare rows of one run, not runs of different days.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { Bench } from "tinybench";
import { libcrypto } from "../ffi/libcrypto.ts";
import {
  CIPHERS,
  CIPHER_KEY_LENGTH,
  MAX_RECORD_PLAINTEXT,
  RECORD_OVERHEAD,
  RecordOpener,
  RecordSealer,
  nativeChaChaAvailable,
  opensslAvailable,
  type AeadBackend,
  type CipherName,
} from "../src/net/record.ts";

const RECORD = MAX_RECORD_PLAINTEXT;
/** Records per task call, so tinybench's per-call overhead is amortised. */
const BATCH = 16;
const time = Number(process.env.BENCH_TIME_MS ?? 1500);

const plaintext = crypto.getRandomValues(new Uint8Array(RECORD));
const out = new Uint8Array(RECORD + RECORD_OVERHEAD);
const iv = crypto.getRandomValues(new Uint8Array(12));

const bench = new Bench({ time, warmupTime: 200 });
/** The same task bodies, kept for the CPU-time pass below. */
const bodies = new Map<string, () => void>();
function add(name: string, body: () => void): void {
  bodies.set(name, body);
  bench.add(name, body);
}

function addCipher(cipher: CipherName, backend: AeadBackend): void {
  const name = `${cipher} (${backend})`;
  const key = crypto.getRandomValues(new Uint8Array(CIPHER_KEY_LENGTH[cipher]));
  // Large limit: the benchmark seals far more than a real key would before re-keying.
  const sealer = new RecordSealer(cipher, key, iv, { maxRecords: Number.MAX_SAFE_INTEGER }, backend);
  // Plaintext in its own buffer, sealed into another: what the channel does.
  add(`seal ${name}`, () => {
    for (let i = 0; i < BATCH; i++) sealer.sealInto(out, 0, plaintext);
  });
  // Open needs records in sequence: seal a pool once, start a new opener per pass.
  const pool: Uint8Array[] = [];
  const poolSealer = new RecordSealer(cipher, key, iv, {}, backend);
  for (let i = 0; i < 64; i++) pool.push(poolSealer.seal(plaintext));
  let opener = new RecordOpener(cipher, key, iv, {}, backend);
  let next = 0;
  // As the channel receives: the record lands in a receive buffer (the copy stands for
  // the kernel's), then pushInPlace opens it there (libcrypto) or into a fresh buffer.
  const rbuf = new Uint8Array(new ArrayBuffer(RECORD + RECORD_OVERHEAD));
  add(`open ${name}`, () => {
    for (let i = 0; i < BATCH; i++) {
      if (next === pool.length) {
        opener = new RecordOpener(cipher, key, iv, {}, backend);
        next = 0;
      }
      rbuf.set(pool[next++]);
      opener.pushInPlace(rbuf);
    }
  });
}

for (const cipher of CIPHERS) {
  if (opensslAvailable()) addCipher(cipher, "openssl");
  if (cipher !== "chacha20-poly1305" || nativeChaChaAvailable()) addCipher(cipher, "node");
  if (cipher === "chacha20-poly1305") addCipher(cipher, "portable");
}

// Baseline: node:crypto alone, no header, no copy into a caller buffer.
{
  const key = crypto.getRandomValues(new Uint8Array(16));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = new Uint8Array(5);
  const inner = new Uint8Array(RECORD + 1);
  add("seal raw node:crypto aes-128-gcm", () => {
    for (let i = 0; i < BATCH; i++) {
      const c = createCipheriv("aes-128-gcm", key, nonce, { authTagLength: 16 });
      c.setAAD(aad);
      c.update(inner);
      c.final();
      c.getAuthTag();
    }
  });
  // Same pool size as the opener above: 64 distinct records, so cache effects match.
  const rawPool = Array.from({ length: 64 }, () => {
    const c = createCipheriv("aes-128-gcm", key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const ct = c.update(crypto.getRandomValues(new Uint8Array(RECORD + 1)));
    c.final();
    return { ct, tag: c.getAuthTag() };
  });
  let k = 0;
  add("open raw node:crypto aes-128-gcm", () => {
    for (let i = 0; i < BATCH; i++) {
      const { ct, tag } = rawPool[k++ & 63];
      const d = createDecipheriv("aes-128-gcm", key, nonce, { authTagLength: 16 });
      d.setAAD(aad);
      d.setAuthTag(tag);
      d.update(ct);
      d.final();
    }
  });
}

await bench.run();

// Throughput from latency (bytes / time), not tinybench's mean of per-sample ops/s, which
// overweights the fast samples when a shared machine makes timings noisy.
// On a shared machine wall-clock rates fall when other jobs take the CPU; bytes per
// CPU-second of this process (all threads, GC included) are steadier.
const cpuRate = new Map<string, number>();
for (const [name, body] of bodies) {
  const calls = name.includes("portable") ? 20 : 1000;
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i++) body();
  const used = process.cpuUsage(before);
  cpuRate.set(name, (calls * BATCH * RECORD) / ((used.user + used.system) / 1e6) / 1e9);
}

const rows: string[][] = [["task", "GB/s (median)", "GB/s (mean)", "GB per CPU-s", "µs/record (median)", "samples"]];
for (const task of bench.tasks) {
  const r = task.result;
  if (r.state !== "completed") {
    rows.push([task.name, r.state === "errored" ? `error: ${r.error.message}` : r.state, "", "", "", ""]);
    continue;
  }
  const gbps = (ms: number): string => {
    const v = (BATCH * RECORD) / (ms / 1000) / 1e9;
    return v.toFixed(v < 1 ? 3 : 2);
  };
  const cpu = cpuRate.get(task.name) ?? 0;
  rows.push([
    task.name,
    gbps(r.latency.p50),
    gbps(r.period),
    cpu.toFixed(cpu < 1 ? 3 : 2),
    ((r.latency.p50 * 1000) / BATCH).toFixed(2),
    String(r.latency.samplesCount),
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
console.log(`16 KiB records, ${BATCH} per call, ${time} ms per task, Bun ${Bun.version}, ${libcrypto()?.version ?? "no libcrypto"}, node:crypto chacha: ${nativeChaChaAvailable()}, load ${load}`);
for (const row of rows) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
