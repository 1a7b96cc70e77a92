// bench/ring-nop.ts — NOP throughput of the TypeScript ring (liburing and raw-syscall
// backends) beside a C reference using liburing (bench/c/nop_ref.c), at batch sizes 1, 16,
// 64 and 256, plus a comparison of ring setup flags for picking DEFAULT_SETUP_FLAGS.
//
// Each TypeScript iteration: getSqe + prepNop + track for `batch` SQEs, submitAndWait(batch),
// processCompletions (which dispatches every completion to its target) — what an engine
// does. The C reference: io_uring_get_sqe + io_uring_prep_nop, io_uring_submit_and_wait,
// io_uring_peek_batch_cqe + io_uring_cq_advance. TS and C runs alternate within each round
// (the order flips every round) and the tables report medians over the rounds: this
// machine is shared and noisy, so only side-by-side ratios mean much. Besides wall-clock
// ops/s (tinybench) both sides also report ops per CPU-second of the process (user +
// system), which does not depend on how much of the machine others took meanwhile.
//
// Usage: bun bench/ring-nop.ts [--write] [--rounds N] [--time MS] [--batches 1,16,64,256]
//   --write  replace the <!-- ring:begin --> ... <!-- ring:end --> section of bench/RESULTS.md
//            (other sections are left alone; the file is created if missing).

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { Bench } from "tinybench";
import { SETUP } from "../ffi/structs.ts";
import { DEFAULT_SETUP_FLAGS, openRing } from "../src/uring/backend.ts";
import { prepNop } from "../src/uring/prep.ts";
import type { CompletionTarget } from "../src/uring/ring.ts";

const ROOT = resolve(import.meta.dir, "..");
const RESULTS = join(ROOT, "bench/RESULTS.md");
const BUILD = join(ROOT, "bench/.build"); // git-ignored
const C_SRC = join(ROOT, "bench/c/nop_ref.c");
const C_BIN = join(BUILD, "nop_ref");
const ENTRIES = 256;
const TARGET_BATCH = 64;
const TARGET_RATIO = 0.85;

interface Options {
  write: boolean;
  rounds: number;
  timeMs: number;
  batches: number[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { write: false, rounds: 7, timeMs: 200, batches: [1, 16, 64, 256] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--write") o.write = true;
    else if (a === "--rounds") o.rounds = Number.parseInt(value(), 10);
    else if (a === "--time") o.timeMs = Number.parseInt(value(), 10);
    else if (a === "--batches") o.batches = value().split(",").map((x) => Number.parseInt(x, 10));
    else throw new Error(`unknown argument ${a} (usage: bun bench/ring-nop.ts [--write] [--rounds N] [--time MS] [--batches 1,16,64,256])`);
  }
  if (!(o.rounds >= 1) || !(o.timeMs >= 10) || o.batches.some((b) => !(b >= 1 && b <= ENTRIES))) {
    throw new Error(`bad arguments: rounds >= 1, time >= 10 ms, batches in 1..${ENTRIES}`);
  }
  return o;
}

// ---- the C reference ----------------------------------------------------------------

/** Builds bench/.build/nop_ref when gcc and liburing-dev are present; returns why not otherwise. */
function buildC(): string | undefined {
  if (Bun.which("gcc") === null) return "gcc not found";
  if (!existsSync("/usr/include/liburing.h")) return "liburing-dev not installed (no /usr/include/liburing.h)";
  mkdirSync(BUILD, { recursive: true });
  if (existsSync(C_BIN) && statSync(C_BIN).mtimeMs >= statSync(C_SRC).mtimeMs) return undefined;
  const r = Bun.spawnSync(["gcc", "-O2", "-Wall", "-o", C_BIN, C_SRC, "-luring"], { stderr: "pipe" });
  return r.exitCode === 0 ? undefined : `gcc failed: ${r.stderr.toString().trim()}`;
}

/** Throughput of one run: wall-clock ops/s and ops per CPU-second of the process. */
interface Rate {
  wall: number;
  cpu: number;
}

function measureC(batch: number, timeMs: number, flags: number): Rate {
  const r = Bun.spawnSync([C_BIN, String(batch), String(timeMs), String(flags), String(ENTRIES)], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`nop_ref failed: ${r.stderr.toString()}`);
  const j = JSON.parse(r.stdout.toString()) as { opsPerSec: number; opsPerCpuSec: number };
  return { wall: j.opsPerSec, cpu: j.opsPerCpuSec };
}

// ---- the TypeScript ring ----------------------------------------------------------------

/** Counts completions; one long-lived target, as engines use the ring. */
class Counter implements CompletionTarget {
  n = 0;
  bad = 0;
  onCompletion(res: number): void {
    this.n++;
    if (res !== 0) this.bad++;
  }
}

function measureTs(backend: "liburing" | "raw", flags: number, batch: number, timeMs: number): Rate {
  const ring = openRing({ backend, entries: ENTRIES, flags });
  if (ring.backend.setupFlags !== flags) {
    ring.close();
    throw new Error(`ring refused setup flags 0x${flags.toString(16)} (got 0x${ring.backend.setupFlags.toString(16)})`);
  }
  const target = new Counter();
  let ops = 0;
  const iteration = (): void => {
    ops += batch;
    for (let i = 0; i < batch; i++) {
      const sqe = ring.getSqe();
      prepNop(ring, sqe);
      ring.setUserData(sqe, ring.track(target, i));
    }
    ring.submitAndWait(batch);
    ring.processCompletions();
  };
  try {
    const bench = new Bench({ time: timeMs, warmupTime: Math.max(20, timeMs / 2), subtractTimerOverhead: true, throws: true });
    // CPU time of the run phase only (not warmup, when the JIT compiles on other threads).
    let cpu0 = process.cpuUsage();
    let ops0 = 0;
    let cpuMicros = 0;
    let cpuOps = 0;
    bench.add("nop", iteration, {
      beforeAll(mode) {
        if (mode !== "run") return;
        ops0 = ops;
        cpu0 = process.cpuUsage();
      },
      afterAll(mode) {
        if (mode !== "run") return;
        const c = process.cpuUsage(cpu0);
        cpuMicros = c.user + c.system;
        cpuOps = ops - ops0;
      },
    });
    bench.runSync();
    const task = bench.tasks[0];
    const result = task?.result;
    if (result === undefined || !("period" in result)) throw new Error(`tinybench produced no result (${result?.state})`);
    if (target.bad > 0 || ring.inFlight !== 0) throw new Error(`NOPs failed (${target.bad}) or were lost (${ring.inFlight})`);
    if (cpuMicros <= 0) throw new Error("no CPU time measured for the run phase");
    return { wall: (batch * 1000) / result.period, cpu: (cpuOps * 1e6) / cpuMicros };
  } finally {
    ring.close();
  }
}

// ---- statistics and output ----------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmtOps(x: number): string {
  return Number.isFinite(x) ? `${(x / 1e6).toFixed(2)} M` : "n/a";
}

function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : "n/a";
}

function flagName(f: number): string {
  if (f === 0) return "none";
  const names = Object.entries(SETUP).filter(([, v]) => (f & v) !== 0).map(([k]) => k);
  return names.join("\\|");
}

function machine(): string[] {
  const run = (cmd: string[]): string => {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    return r.exitCode === 0 ? r.stdout.toString().trim() : "unknown";
  };
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) cpu = m[1].trim();
  } catch {
    // keep os.cpus()'s answer
  }
  let load = "";
  try {
    load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    load = "unknown";
  }
  return [
    `- Machine: ${run(["nproc"])} CPUs (nproc), ${cpu}, Linux ${run(["uname", "-r"])}, bun ${Bun.version}; load average at start ${load}`,
    `- Date: ${new Date().toISOString()}`,
    `- Command: \`bun bench/ring-nop.ts ${process.argv.slice(2).join(" ")}\``.replace(/ `$/, "`"),
  ];
}

function replaceSection(text: string, section: string): string {
  const begin = "<!-- ring:begin -->";
  const end = "<!-- ring:end -->";
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) return text.slice(0, i) + section + text.slice(j + end.length);
  return `${text.replace(/\n*$/, "\n\n")}${section}\n`;
}

// ---- main ----------------------------------------------------------------------------------

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  const header = machine();
  const cWhyNot = buildC();
  if (cWhyNot !== undefined) console.error(`C reference skipped: ${cWhyNot}`);
  const DEFER = SETUP.SINGLE_ISSUER | SETUP.DEFER_TASKRUN;
  const flagSets = [0, SETUP.COOP_TASKRUN, DEFER];

  type Key = string;
  const samples = new Map<Key, number[]>();
  const add = (k: Key, v: number): void => {
    const a = samples.get(k) ?? [];
    a.push(v);
    samples.set(k, a);
  };
  const med = (k: Key): number => {
    const a = samples.get(k);
    return a === undefined || a.length === 0 ? Number.NaN : median(a);
  };
  /** Per-round ratios, so each is measured side by side. */
  const ratios = new Map<Key, number[]>();
  const addRatio = (k: Key, v: number): void => {
    const a = ratios.get(k) ?? [];
    a.push(v);
    ratios.set(k, a);
  };

  // Warm the JIT up once (both backends, every batch size): otherwise whichever TS run comes
  // first pays for compiling the hot path.
  for (const batch of o.batches) for (const b of ["liburing", "raw"] as const) measureTs(b, DEFAULT_SETUP_FLAGS, batch, 50);

  const started = performance.now();
  for (let round = 0; round < o.rounds; round++) {
    for (const batch of o.batches) {
      // Main comparison, default flags for both TS and C; order flips every round.
      const jobs: [string, () => Rate][] = [
        ["ts-liburing", () => measureTs("liburing", DEFAULT_SETUP_FLAGS, batch, o.timeMs)],
        ["ts-raw", () => measureTs("raw", DEFAULT_SETUP_FLAGS, batch, o.timeMs)],
      ];
      if (cWhyNot === undefined) jobs.push(["c", () => measureC(batch, o.timeMs, DEFAULT_SETUP_FLAGS)]);
      // Setup flags (TS ring, liburing backend), interleaved with the rest.
      for (const f of flagSets) if (f !== DEFAULT_SETUP_FLAGS) jobs.push([`flags-${f}`, () => measureTs("liburing", f, batch, o.timeMs)]);
      if (round % 2 === 1) jobs.reverse();
      const got = new Map<string, Rate>();
      for (const [name, fn] of jobs) got.set(name, fn());
      got.set(`flags-${DEFAULT_SETUP_FLAGS}`, got.get("ts-liburing") as Rate);
      for (const [name, v] of got) {
        add(`wall:${name}:${batch}`, v.wall);
        add(`cpu:${name}:${batch}`, v.cpu);
      }
      const c = got.get("c");
      if (c !== undefined) {
        for (const m of ["wall", "cpu"] as const) {
          addRatio(`${m}:liburing:${batch}`, (got.get("ts-liburing") as Rate)[m] / c[m]);
          addRatio(`${m}:raw:${batch}`, (got.get("ts-raw") as Rate)[m] / c[m]);
        }
      }
      console.error(
        `round ${round + 1}/${o.rounds} batch ${batch}: ` +
          [...got].filter(([k]) => k !== `flags-${DEFAULT_SETUP_FLAGS}`)
            .map(([k, v]) => `${k} ${fmtOps(v.wall)} (cpu ${fmtOps(v.cpu)})`).join(", "),
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;

  const medRatio = (k: Key): number => {
    const a = ratios.get(k);
    return a === undefined ? Number.NaN : median(a);
  };
  const table = (m: "wall" | "cpu"): string[] => {
    const rows = [
      "| batch | TS, liburing backend | TS, raw backend | C, liburing | TS liburing / C | TS raw / C |",
      "|---:|---:|---:|---:|---:|---:|",
    ];
    for (const b of o.batches) {
      rows.push(
        `| ${b} | ${fmtOps(med(`${m}:ts-liburing:${b}`))} | ${fmtOps(med(`${m}:ts-raw:${b}`))} | ${fmtOps(med(`${m}:c:${b}`))} | ` +
          `${fmtRatio(medRatio(`${m}:liburing:${b}`))} | ${fmtRatio(medRatio(`${m}:raw:${b}`))} |`,
      );
    }
    return rows;
  };
  const verdict = (m: "wall" | "cpu"): string => {
    const r = Math.min(medRatio(`${m}:liburing:${TARGET_BATCH}`), medRatio(`${m}:raw:${TARGET_BATCH}`));
    return `${r >= TARGET_RATIO ? "met" : "MISSED"} (worse backend ${fmtRatio(r)})`;
  };
  const lines: string[] = [
    "<!-- ring:begin -->",
    "## io_uring NOP throughput: TypeScript ring vs C (liburing)",
    "",
    ...header,
    `- Method: per iteration, \`batch\` × (getSqe + prepNop + track), submitAndWait(batch), processCompletions ` +
      `(dispatch to a target); tinybench, ${o.timeMs} ms per run. C: bench/c/nop_ref.c (\`gcc -O2 -luring\`), ` +
      `io_uring_get_sqe + io_uring_prep_nop, io_uring_submit_and_wait, io_uring_peek_batch_cqe + io_uring_cq_advance. ` +
      `${o.rounds} rounds, TS and C alternating (order flipped each round); medians; ratios are medians of the per-round ratios. ` +
      `Ring: ${ENTRIES} entries, setup flags ${flagName(DEFAULT_SETUP_FLAGS)} (DEFAULT_SETUP_FLAGS) for all three. ` +
      `Total ${seconds.toFixed(0)} s.`,
    `- Two measures: wall-clock ops/s, and ops per CPU-second of the process (user + system; for TS the tinybench ` +
      `run phase, tinybench's own per-iteration bookkeeping included). The machine is shared (see the load average): ` +
      `wall-clock figures move with what others run; the CPU-time figures do not, and are the fairer comparison.`,
    "",
    "Wall-clock ops/s (M = 10^6):",
    "",
    ...table("wall"),
    "",
    "Ops per CPU-second:",
    "",
    ...table("cpu"),
    "",
  ];
  if (cWhyNot !== undefined) {
    lines.push(`C reference not run: ${cWhyNot}.`);
  } else if (o.batches.includes(TARGET_BATCH)) {
    lines.push(
      `Target: TS ≥ ${TARGET_RATIO * 100}% of C at batch ${TARGET_BATCH}: per CPU-second ${verdict("cpu")}; ` +
        `wall-clock ${verdict("wall")}.`,
    );
  }
  lines.push(
    "",
    "### Ring setup flags (TS ring, liburing backend): wall-clock ops/s; ops per CPU-second",
    "",
    `| batch | ${flagSets.map(flagName).join(" | ")} |`,
    `|---:|${flagSets.map(() => "---:").join("|")}|`,
  );
  for (const b of o.batches) {
    lines.push(`| ${b} | ${flagSets.map((f) => `${fmtOps(med(`wall:flags-${f}:${b}`))}; ${fmtOps(med(`cpu:flags-${f}:${b}`))}`).join(" | ")} |`);
  }
  // Which flags win most batch sizes (by median ops per CPU-second)?
  const wins = new Map<number, number>();
  for (const b of o.batches) {
    let best = flagSets[0];
    for (const f of flagSets) if (med(`cpu:flags-${f}:${b}`) > med(`cpu:flags-${best}:${b}`)) best = f;
    wins.set(best, (wins.get(best) ?? 0) + 1);
  }
  const winner = [...wins].sort((a, b) => b[1] - a[1])[0];
  lines.push(
    "",
    `Most efficient (median ops per CPU-second) at most batch sizes: ${flagName(winner[0])} (${winner[1]} of ${o.batches.length}). ` +
      `DEFAULT_SETUP_FLAGS is ${flagName(DEFAULT_SETUP_FLAGS)}.`,
    "<!-- ring:end -->",
  );
  const section = lines.join("\n");
  console.log(section);
  if (o.write) {
    const text = existsSync(RESULTS) ? readFileSync(RESULTS, "utf8") : "";
    writeFileSync(RESULTS, text === "" ? `${section}\n` : replaceSection(text, section));
    console.error(`wrote the ring section of ${RESULTS}`);
  }
}

main();
