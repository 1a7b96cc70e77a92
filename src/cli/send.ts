/**
 * `uring-sync send SRC HOST:PORT`: sends a tree to a receiver (src/net/session.ts).
 *
 * Owns: the options of `send` and the security options shared with `recv` (secret
 * sources, --crypto/--tls/--plaintext/--cipher and URING_SYNC_CRYPTO), what the user sees
 * (progress on a terminal, per-file errors, the summary line saying which crypto path
 * ran, --json), SIGINT/SIGTERM (stop, exit 130) and the exit code: 0 only when every
 * file was sent and the receiver reported storing all of it.
 */
import { parseHostPort } from "../net/address.ts";
import type { CipherName } from "../net/record.ts";
import { InterruptedError, runSend, type CryptoChoice, type SendProgress, type SendResult } from "../net/session.ts";
import type { CopyProgress } from "../copy/engine.ts";
import { Filter } from "../copy/filter.ts";
import { availableParallelism } from "node:os";
import { MAX_STREAMS } from "../net/sender.ts";
import { bool, int, intIn, list, size, str, type OptionSpecs, type Parsed } from "./args.ts";
import type { Command } from "./command.ts";
import { FILTER_OPTIONS, OUTPUT_OPTIONS, RING_OPTIONS, SYNC_OPTIONS } from "./common.ts";
import { EXIT } from "./exit.ts";
import { formatBytes, formatCount, plural, ProgressLine } from "./progress.ts";
import { log, printJson } from "./report.ts";
import { chooseSecret, promptHidden } from "./secret.ts";
import { UsageError } from "../errors.ts";
import { secretFromString } from "../net/handshake.ts";
import { displaySafe } from "../net/wire.ts";

const CRYPTO_CHOICES: readonly CryptoChoice[] = ["auto", "kernel", "user"];

/** send -j default: one connection per CPU, at most this many (see docs/PROTOCOL.md 8.8). */
export const DEFAULT_MAX_JOBS = 4;

export const SECRET_OPTIONS: OptionSpecs = {
  "secret-file": { type: "string", valueHint: "PATH", description: "Read the shared secret from PATH (one trailing newline is ignored)" },
  secret: { type: "string", valueHint: "S", description: "The shared secret on the command line (other local users can read argv: prefer $URING_SYNC_SECRET or --secret-file)" },
  crypto: {
    type: "string", choices: CRYPTO_CHOICES,
    description: "Where TLS records are encrypted: kernel (kTLS), user (userspace), auto (default: kernel when available; also $URING_SYNC_CRYPTO)",
  },
  tls: { type: "boolean", description: "Same as --crypto kernel (kept from the original tool)" },
  plaintext: { type: "boolean", description: "No encryption (both ends must say so); the handshake still authenticates both ends" },
  cipher: {
    type: "string", valueHint: "NAME", description: "aes-128-gcm (default), aes-256-gcm or chacha20-poly1305; the same on both ends",
    choices: ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"],
  },
};

export interface Security {
  crypto: CryptoChoice;
  plaintext: boolean;
  cipher: CipherName;
}

/** --crypto / --tls / --plaintext / --cipher and URING_SYNC_CRYPTO, checked for contradictions. */
export function securityFromArgs(args: Parsed): Security {
  const plaintext = bool(args, "plaintext");
  const tls = bool(args, "tls");
  const flag = str(args, "crypto") as CryptoChoice | undefined;
  const cipherArg = str(args, "cipher") as CipherName | undefined;
  if (tls && flag !== undefined && flag !== "kernel") throw new UsageError(`--tls means --crypto kernel; it contradicts --crypto ${flag}`);
  if (plaintext && (tls || flag !== undefined)) throw new UsageError("--plaintext turns encryption off; it cannot be combined with --crypto or --tls");
  if (plaintext && cipherArg !== undefined) throw new UsageError("--cipher has no effect with --plaintext (nothing is encrypted)");
  let crypto: CryptoChoice = tls ? "kernel" : flag ?? "auto";
  if (!tls && flag === undefined && !plaintext) {
    const env = process.env.URING_SYNC_CRYPTO;
    if (env !== undefined && env !== "") {
      const known = CRYPTO_CHOICES.find((c) => c === env);
      if (known === undefined) throw new UsageError(`URING_SYNC_CRYPTO must be ${CRYPTO_CHOICES.join(", ")} (got '${env}')`);
      crypto = known;
    }
  }
  return { crypto, plaintext, cipher: cipherArg ?? "aes-128-gcm" };
}

/** The secret as the handshake takes it, after telling the user what they should know. */
export async function secretFromArgs(args: Parsed, role: "send" | "recv"): Promise<{ secret: Uint8Array; generated: string | undefined }> {
  const choice = await chooseSecret({
    file: str(args, "secret-file"),
    argv: str(args, "secret"),
    env: process.env.URING_SYNC_SECRET,
    role,
    stdinIsTTY: process.stdin.isTTY === true,
    prompt: promptHidden,
  });
  for (const w of choice.warnings) log.warn(w);
  return { secret: secretFromString(choice.secret), generated: choice.source === "generated" ? choice.secret : undefined };
}

/** "userspace TLS (aes-128-gcm)", "kernel TLS (aes-256-gcm)", "plaintext (no encryption)". */
export function cryptoText(layer: string, cipher: string | null): string {
  return cipher === null ? "plaintext (no encryption)" : `${layer} (${cipher})`;
}

/** Lines of per-file errors printed before only counting them (all of them are in --json up to the cap). */
export const MAX_ERROR_LINES = 1000;

const DETAILS = `
The contents of SRC land in the receiver's DST (a single file lands as DST/NAME).
Only what changed moves: the receiver answers each file as the listing streams in, and
skips a file it already has with the same size and mtime (--checksum: the same SHA-256;
--ignore-times: nothing is skipped). A re-run of an unchanged tree sends no file data.
A large file (1 MiB or more) cut off by a dropped connection is kept on the receiver as
.NAME.usync-partial; the next run checks its prefix (SHA-256) and sends only the rest.
--delete removes from DST what SRC does not have (SRC a directory; --exclude'd paths are
kept); --dry-run (-n) agrees with the receiver on what would change, prints "send PATH"
and "delete PATH" lines, and changes nothing on either side.
Everything is streamed: headers and data go out while SRC is still being read, large
files in 1 MiB chunks; at the end the receiver reports what it has in place (stored now
or already there) and what it wrote, and the exit code says whether all of it arrived.
-j N: up to N connections (each its own handshake and keys); files of 16 MiB or more go
in 8 MiB pieces spread across them; the extra connections open with the first such file.

The secret (both ends must use the same; it is never sent): --secret-file PATH, else
--secret S (warns: argv is visible to other users), else $URING_SYNC_SECRET, else a prompt
when stdin is a terminal. A receiver started without one prints a one-time code to use.

Encryption: TLS 1.3 records (AES-128-GCM by default), keys from a PAKE handshake (CPace).
--crypto auto uses kernel TLS where the kernel has it, else userspace; kernel fails (exit 3)
where it is missing; user forces userspace. --plaintext (on both ends) sends the data
unencrypted after an authenticated handshake: trusted networks only.

Metadata: permission bits (setuid/setgid/sticky dropped), mtimes to the nanosecond,
symlinks as symlinks, empty directories, hard links within SRC, sparse files as holes.
FIFOs, sockets and devices are skipped (with a warning).

Examples:
  URING_SYNC_SECRET=... uring-sync send ./data otherhost:7000
  uring-sync send ./data [fd00::2]:7000 --secret-file ~/.usync-secret --json
  uring-sync send ./big.iso host:7000            (asks for the receiver's code)

Exit codes: 0 all sent and stored, 1 some files failed (or an I/O error), 2 usage,
3 --crypto kernel without kernel TLS, 4 authentication/protocol error or timeout, 130 interrupted.`;

export const send: Command = {
  name: "send",
  summary: "Send a tree to a receiver over TCP, encrypted and authenticated by a shared secret",
  details: DETAILS,
  options: {
    src: { type: "positional", valueHint: "SRC", description: "File or directory to send" },
    dest: {
      type: "positional", valueHint: "HOST:PORT", description: "Receiver address, e.g. host:7000, 10.0.0.2:7000 or [::1]:7000",
      validate: (v, flag) => void parseHostPort(v, flag, false),
    },
    ...SECRET_OPTIONS,
    ...SYNC_OPTIONS,
    ...FILTER_OPTIONS,
    chunk: {
      type: "string", alias: ["c"], valueHint: "BYTES", description: "Largest DATA chunk for big files, 4K to 1M (default 1M)",
      validate: (v, flag) => {
        const n = size({ v }, "v") ?? NaN;
        if (!(n >= 4096 && n <= 1024 * 1024)) throw new UsageError(`${flag} must be a size from 4K to 1M (got '${v}')`);
      },
    },
    jobs: {
      type: "string", alias: ["j"], valueHint: "N",
      description: `Parallel connections (1-${MAX_STREAMS}; default: the number of CPUs, at most ${DEFAULT_MAX_JOBS}): files of 16 MiB or more are split into 8 MiB pieces spread across them; 1 = one connection`,
      validate: intIn(1, MAX_STREAMS),
    },
    ...RING_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  run: (args) => runSendCommand(args),
};

/** --json --dry-run lists at most this many changes (as copy does). */
const MAX_JSON_CHANGES = 100_000;

function summary(r: SendResult, dryRun: boolean): string {
  const failed = r.failures.length + r.omittedFailures;
  const s = r.stats;
  const parts = [`${dryRun ? "would send" : "sent"} ${plural(s.files, "file")} (${formatBytes(s.bytes)}) in ${r.seconds.toFixed(r.seconds < 10 ? 2 : 1)} s`];
  if (s.unchanged > 0) parts.push(`${formatCount(s.unchanged)} unchanged`);
  if (s.resumed > 0) parts.push(`${formatCount(s.resumed)} resumed`);
  if (s.deleted > 0) parts.push(`${dryRun ? "would delete" : "deleted"} ${formatCount(s.deleted)}`);
  // REPORT's files: every entry now in place, stored by this run or already there (docs/PROTOCOL.md 8.5).
  if (!dryRun) parts.push(`receiver has ${plural(r.report.files, "entry", "entries")} in place, ${formatBytes(Number(r.report.bytes))} written`);
  if (s.skipped > 0) parts.push(`${plural(s.skipped, "special file")} skipped`);
  parts.push(`${formatCount(failed)} failed`);
  return `${dryRun ? "dry run: " : ""}${parts.join(", ")} — ${cryptoText(r.layer, r.cipher)} to ${r.peer}${r.streams > 1 ? `, ${r.streams} streams` : ""}${r.rekeys > 0 ? `, ${r.rekeys} re-keys` : ""}`;
}

/**
 * The sender's progress line data: files and bytes against what was announced; the ETA
 * only once the whole tree is listed. Unchanged files and resumed prefixes are never
 * sent: done, not remaining (a re-run's ETA must not wait for bytes that will not come).
 */
export function sendSnapshot(p: SendProgress, seconds: number): CopyProgress {
  const rate = seconds > 0 ? p.sentBytes / seconds : 0;
  const total = p.stats.announcedBytes;
  const done = Math.min(total, p.sentBytes + p.stats.settledBytes);
  return {
    scanning: p.scanning, filesTotal: p.stats.announcedFiles, bytesTotal: total,
    filesDone: p.stats.files + p.stats.unchanged, bytesDone: done, filesCopied: p.stats.files,
    filesSkipped: p.stats.unchanged, filesFailed: 0, seconds, rate,
    eta: !p.scanning && rate > 0 ? Math.max(0, (total - done) / rate) : null,
  };
}

async function runSendCommand(args: Parsed): Promise<number> {
  const quiet = bool(args, "quiet");
  const json = bool(args, "json");
  const sec = securityFromArgs(args);
  const target = parseHostPort(String(args.dest), "HOST:PORT", false);
  const filter = new Filter(list(args, "exclude"), list(args, "include"));
  const sync = { checksum: bool(args, "checksum"), ignoreTimes: bool(args, "ignore-times"), delete: bool(args, "delete"), dryRun: bool(args, "dry-run") };
  if (sync.checksum && sync.ignoreTimes) throw new UsageError("--checksum and --ignore-times contradict each other (--ignore-times sends everything)");
  const verbose = bool(args, "verbose");
  const changes: { action: string; path: string }[] = [];
  let changesOmitted = 0;
  const { secret } = await secretFromArgs(args, "send");
  const showProgress = process.stderr.isTTY === true && !quiet && !json && process.env.URING_SYNC_NO_PROGRESS !== "1";
  const bar = showProgress ? new ProgressLine(process.stderr) : null;
  let signalled = false;
  const onSignal = (): void => {
    signalled = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const t0 = performance.now();
  try {
    let result: SendResult;
    try {
      result = await runSend({
        src: String(args.src),
        target,
        secret,
        crypto: sec.crypto,
        plaintext: sec.plaintext,
        cipher: sec.cipher,
        ring: { backend: bool(args, "sync") ? "sync" : undefined, entries: args["queue-depth"] !== undefined ? Number(args["queue-depth"]) : undefined },
        sync,
        sender: {
          streams: int(args, "jobs") ?? Math.min(DEFAULT_MAX_JOBS, Math.max(1, availableParallelism())),
          chunk: size(args, "chunk"),
          filter: filter.empty ? undefined : (rel, isDir) => filter.excluded(rel, isDir),
          filterRules: { exclude: list(args, "exclude"), include: list(args, "include") },
          onChange: (action, rawPath) => {
            // Called for every file sent: nothing is made of the path unless it is shown.
            if (json ? !sync.dryRun : !sync.dryRun && !verbose) return;
            // A receiver's DELETED path is peer text: shown escaped.
            const path = displaySafe(rawPath);
            if (json) {
              if (changes.length < MAX_JSON_CHANGES) changes.push({ action, path });
              else changesOmitted++;
            } else if (sync.dryRun) {
              bar?.clear();
              process.stdout.write(`${action} ${path}\n`);
            } else {
              bar?.clear();
              log.debug(`${action === "delete" ? "deleted" : "send"} ${path}`);
            }
          },
        },
        interrupted: () => signalled,
        onProgress: bar === null ? undefined : (p) => bar.update(sendSnapshot(p, (performance.now() - t0) / 1000)),
      });
    } catch (e) {
      bar?.clear();
      if (e instanceof InterruptedError || signalled) {
        log.error("interrupted");
        return EXIT.INTERRUPTED;
      }
      throw e;
    }
    bar?.clear();
    const failed = result.failures.length + result.omittedFailures;
    result.failures.slice(0, MAX_ERROR_LINES).forEach((f) => log.error(displaySafe(f.message)));
    if (result.failures.length > MAX_ERROR_LINES) log.error(`${formatCount(result.failures.length - MAX_ERROR_LINES)} more failures not shown (see --json)`);
    if (result.omittedFailures > 0) log.error(`the receiver reported ${formatCount(result.omittedFailures)} more failures it did not list`);
    for (const s of result.skipped.slice(0, 100)) log.warn(`skipped special file ${displaySafe(s)}`);
    if (result.deleteSkipped) log.warn("--delete: nothing was deleted, because some source entries could not be read (their copies would have been removed)");
    const expected = result.stats.files + result.stats.unchanged + result.stats.symlinks + result.stats.hardlinks;
    const mismatch = !sync.dryRun && failed === 0 && result.report.files !== expected;
    if (mismatch) log.error(`the receiver reports ${result.report.files} entries in place, ${expected} were listed`);
    if (json) {
      printJson({
        filesSent: result.stats.files,
        filesUnchanged: result.stats.unchanged,
        filesDeleted: result.stats.deleted,
        filesResumed: result.stats.resumed,
        filesFailed: failed,
        dirs: result.stats.dirs,
        symlinks: result.stats.symlinks,
        hardlinks: result.stats.hardlinks,
        skipped: result.stats.skipped,
        bytes: result.stats.bytes,
        bytesSent: result.stats.bytes,
        bytesTotal: result.stats.announcedBytes,
        dryRun: sync.dryRun,
        deleteSkipped: result.deleteSkipped,
        seconds: Number(result.seconds.toFixed(6)),
        crypto: result.crypto,
        cipher: result.cipher,
        layer: result.layer,
        peer: result.peer,
        rekeys: result.rekeys,
        streams: result.streams,
        backend: result.backend,
        receiver: { files: result.report.files, bytes: Number(result.report.bytes) },
        failures: result.failures.map((f) => ({ path: f.path, code: f.code, message: f.message })),
        failuresOmitted: result.omittedFailures,
        ...(sync.dryRun ? { changes, changesOmitted } : {}),
      });
    }
    if (!quiet && !json) log.info(summary(result, sync.dryRun));
    return failed > 0 || mismatch ? EXIT.FAILED : EXIT.OK;
  } finally {
    bar?.clear();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
