/**
 * `uring-sync doctor`: what this machine supports, as aligned "key: value" lines on
 * stdout, or the whole report as JSON with --json.
 *
 * Owns: rendering the report of src/system/doctor.ts. Never probes anything itself.
 * Exits 0 whenever the report could be produced, whatever it says (a machine without
 * kTLS or io_uring is a fact to report, not a failure).
 */
import { FEAT } from "../../ffi/structs.ts";
import { collectDoctorReport, type DoctorReport } from "../system/doctor.ts";
import type { KtlsCipherProbe, ProbeStep } from "../system/ktls-probe.ts";
import { bool, type Parsed } from "./args.ts";
import type { Command } from "./command.ts";
import { EXIT } from "./exit.ts";
import { printJson } from "./report.ts";

const KEY_WIDTH = 16;
const INDENT = " ".repeat(KEY_WIDTH);
const LINE_WIDTH = 88;

function line(key: string, value: string): string {
  return `${`${key}:`.padEnd(KEY_WIDTH)}${value}`;
}

/** Words wrapped into lines of at most LINE_WIDTH, indented under the values. */
function wrap(words: string[]): string[] {
  const out: string[] = [];
  let cur = "";
  for (const w of words) {
    if (cur !== "" && INDENT.length + cur.length + 1 + w.length > LINE_WIDTH) {
      out.push(INDENT + cur);
      cur = w;
    } else cur = cur === "" ? w : `${cur} ${w}`;
  }
  if (cur !== "") out.push(INDENT + cur);
  return out;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

function stepText(name: string, s: ProbeStep | undefined): string {
  if (s === undefined) return "";
  return `${name} ${s.ok ? "ok" : (s.error ?? "failed")}`;
}

/** One table cell: "ok" when TX, RX and the round trip passed, else what failed first. */
function cell(p: KtlsCipherProbe | undefined, verbose: boolean): string {
  if (p === undefined) return "-";
  if (verbose) {
    return [stepText("tx", p.tx), stepText("rx", p.rx), stepText("rt", p.roundTrip), stepText("nopad", p.rxNoPad)].filter((t) => t !== "").join(", ");
  }
  if (p.tx.ok && p.rx.ok && p.roundTrip.ok) return "ok";
  if (!p.tx.ok) return `TX ${p.tx.error ?? "failed"}`;
  if (!p.rx.ok) return `RX ${p.rx.error ?? "failed"}`;
  return `round trip: ${p.roundTrip.error ?? "failed"}`;
}

function ktlsLines(r: DoctorReport, verbose: boolean): string[] {
  const k = r.ktls;
  if (!k.tlsUlp.tested) return [line("kernel TLS", "untested"), INDENT + k.tlsUlp.reason];
  if (!k.available) {
    const head = k.tlsUlp.error !== undefined ? `unavailable: TCP_ULP "tls" -> ${k.tlsUlp.error}` : "unavailable";
    return [line("kernel TLS", head), INDENT + k.tlsUlp.reason];
  }
  const out = [line("kernel TLS", "available: tls ULP attaches; TLS_TX + TLS_RX + 1 KiB round trip and an alert record:")];
  const ciphers = [...new Set(k.probes.map((p) => p.cipher))];
  const versions = [...new Set(k.probes.map((p) => p.version))];
  const rows = ciphers.map((c) => [c, ...versions.map((v) => cell(k.probes.find((p) => p.cipher === c && p.version === v), verbose))]);
  const head = ["cipher", ...versions.map((v) => `TLS ${v}`)];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)) + 2);
  for (const row of [head, ...rows]) out.push(INDENT + row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join(""));
  return out;
}

function limitText(r: DoctorReport): string {
  const l = r.limits.openFiles;
  return "error" in l ? `unknown (getrlimit: ${l.error})` : `soft ${l.soft}, hard ${l.hard}`;
}

/** The human-readable report. */
export function renderDoctor(r: DoctorReport, verbose: boolean): string {
  const out: string[] = [];
  const u = r.uringSync;
  out.push(line("uring-sync", `${u.version} (commit ${u.commit}, built ${u.buildDate})`));
  const rt = r.runtime;
  out.push(line("bun", `${rt.bun} (${rt.compiled ? "compiled executable" : "running from source"}${verbose ? `, ${rt.execPath}, revision ${rt.bunRevision.slice(0, 12)}, glibc ${rt.glibc}` : ""})`));
  out.push(line("kernel", `${r.kernel.release ?? "unknown"}${verbose && r.kernel.version ? ` (${r.kernel.version})` : ""}`));

  const io = r.ioUring;
  const disabled = io.disabledSetting === null ? "" : `io_uring_disabled=${io.disabledSetting}`;
  if (io.setup.ok) {
    const extra = [disabled, verbose ? `features ${hex(io.setup.features)}` : ""].filter((s) => s !== "").join(", ");
    out.push(line("io_uring", `available${extra ? ` (${extra})` : ""}`));
  } else {
    out.push(line("io_uring", `unavailable: ${io.reason ?? io.setup.errno}`));
  }

  const b = r.backend;
  if (b.kind === null) out.push(line("backend", `none: ${b.error ?? "unknown error"}`));
  else {
    const forced = b.forced !== null ? ` (forced by URING_SYNC_BACKEND=${b.forced})` : "";
    out.push(line("backend", `${b.kind}${forced}: ${b.detail}`));
    if (verbose && b.kind !== "sync") {
      out.push(line("ring setup", `flags ${hex(b.setupFlags)}, features ${hex(b.features)}${(b.features & FEAT.NODROP) !== 0 ? " (NODROP)" : ""}`));
    }
  }
  if (verbose && !b.liburing.loaded) out.push(line("liburing", `not loaded: ${b.liburing.reason}`));

  const o = r.opcodes;
  const source = o.source === "kernel" ? "kernel probe" : o.source === "emulation" ? "synchronous emulation" : "no ring";
  out.push(line("opcodes", `${o.supported}/${o.total} used opcodes supported (${source})${o.missing.length > 0 ? `; missing: ${o.missing.join(" ")}` : ""}`));
  if (verbose) out.push(...wrap(o.ops.map((op) => `${op.opcode}:${op.name}=${op.supported ? "yes" : "NO"}`)));
  else out.push(...wrap(o.ops.map((op) => (op.supported ? op.name : `!${op.name}`))));

  out.push(...ktlsLines(r, verbose));
  const stat = r.ktls.tlsStat;
  if (stat === null) out.push(line("tls_stat", "absent (/proc/net/tls_stat: no tls module)"));
  else {
    const entries = Object.entries(stat).filter(([, v]) => verbose || v !== 0);
    out.push(line("tls_stat", entries.length === 0 ? "all counters 0" : entries.map(([k, v]) => `${k}=${v}`).join(" ")));
  }

  const cpu = r.cpu;
  if (cpu === null) out.push(line("cpu", "unknown (/proc/cpuinfo unreadable)"));
  else {
    const flags = Object.entries(cpu.flags).map(([f, on]) => (on ? f : `-${f}`)).join(" ");
    out.push(line("cpu", `${verbose ? `${cpu.model ?? "unknown model"}, ${cpu.count} CPUs: ` : ""}${flags}`));
  }
  out.push(line("open files", limitText(r)));
  out.push(line("verdict", r.verdict));
  return `${out.join("\n")}\n`;
}

export const doctor: Command = {
  name: "doctor",
  summary: "Report what this machine supports: io_uring backend and opcodes, kTLS ciphers, limits",
  details: `What it checks:
  kernel release; whether io_uring_setup works (and /proc/sys/kernel/io_uring_disabled);
  the ring backend uring-sync would use (liburing, raw io_uring syscalls, or synchronous
  system calls) and why; which of the io_uring opcodes uring-sync uses the kernel supports;
  kernel TLS, by trying it on loopback TCP connections: can the "tls" ULP be attached, and
  for TLS 1.2 and 1.3 with aes-128-gcm, aes-256-gcm, chacha20-poly1305 and aes-128-ccm,
  do TLS_TX and TLS_RX accept keys, and does a real round trip work (1 KiB and an alert
  record sent through TX come back intact through RX on the peer); /proc/net/tls_stat;
  CPU AES/SHA instructions; the open-file limit; the Bun runtime. It ends with a
  one-line verdict.

  -v adds detail (feature bits, every opcode number, every probe step, all counters);
  --json prints the whole report as JSON on stdout; --quiet prints the verdict only.
  Exit status 0 whenever the report could be made, even without io_uring or kTLS.

Examples:
  uring-sync doctor
  uring-sync doctor --json
  URING_SYNC_BACKEND=sync uring-sync doctor     what --sync would use`,
  // The shared OUTPUT_OPTIONS names, with descriptions that are true for this command.
  options: {
    verbose: { type: "boolean", alias: ["v"], description: "More detail: feature bits, opcode numbers, every kTLS probe step, all tls_stat counters" },
    quiet: { type: "boolean", description: "Print only the one-line verdict" },
    json: { type: "boolean", description: "Print the whole report as JSON on stdout" },
  },
  run: (args: Parsed) => {
    const report = collectDoctorReport();
    if (bool(args, "json")) printJson(report);
    else if (bool(args, "quiet")) process.stdout.write(`${report.verdict}\n`);
    else process.stdout.write(renderDoctor(report, bool(args, "verbose")));
    return EXIT.OK;
  },
};
