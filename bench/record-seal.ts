/**
 * Seal/open throughput of 16 KiB TLS 1.3 records per cipher (src/net/record.ts), next to
 * raw node:crypto AES-128-GCM on the same kind of records, so the wrapper's own cost is visible.
 *
 *   bun bench/record-seal.ts            # ~20 s
 *   BENCH_TIME_MS=300 bun bench/record-seal.ts
 *
 * The machine is shared and noisy: compare rows of one run, not runs of different days.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { Bench } from "tinybench";
import {
  CIPHERS,
  CIPHER_KEY_LENGTH,
  MAX_RECORD_PLAINTEXT,
  RECORD_OVERHEAD,
  RecordOpener,
  RecordSealer,
  nativeChaChaAvailable,
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

function addCipher(cipher: CipherName, portable: boolean): void {
  const name = portable && nativeChaChaAvailable() ? `${cipher} (portable)` : cipher;
  const key = crypto.getRandomValues(new Uint8Array(CIPHER_KEY_LENGTH[cipher]));
  // Large limit: the benchmark seals far more than a real key would before re-keying.
  const sealer = new RecordSealer(cipher, key, iv, { maxRecords: Number.MAX_SAFE_INTEGER }, portable);
  add(`seal ${name}`, () => {
    for (let i = 0; i < BATCH; i++) sealer.sealInto(out, 0, plaintext);
  });
  // Open needs records in sequence: seal a pool once, start a new opener per pass.
  const pool: Uint8Array[] = [];
  const poolSealer = new RecordSealer(cipher, key, iv, {}, portable);
  for (let i = 0; i < 64; i++) pool.push(poolSealer.seal(plaintext));
  let opener = new RecordOpener(cipher, key, iv, {}, portable);
  let next = 0;
  add(`open ${name}`, () => {
    for (let i = 0; i < BATCH; i++) {
      if (next === pool.length) {
        opener = new RecordOpener(cipher, key, iv, {}, portable);
        next = 0;
      }
      opener.open(pool[next++]);
    }
  });
}

for (const cipher of CIPHERS) addCipher(cipher, cipher === "chacha20-poly1305" && !nativeChaChaAvailable());

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
  const calls = name.includes("chacha") && !nativeChaChaAvailable() ? 20 : 1000;
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
console.log(`16 KiB records, ${BATCH} per call, ${time} ms per task, Bun ${Bun.version}, native chacha: ${nativeChaChaAvailable()}, load ${load}`);
for (const row of rows) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
