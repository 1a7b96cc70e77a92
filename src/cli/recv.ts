/**
 * `uring-sync recv DST --listen [ADDR:]PORT`: receives trees from senders
 * (src/net/session.ts).
 *
 * Owns: the options of `recv`, the one-time code shown when no secret was given, what the
 * user sees (listening address, every failed or refused connection as one error line,
 * progress on a terminal, per-file errors, one summary per session, --json per session),
 * SIGINT/SIGTERM (temporaries cleaned, exit 130) and the exit code: after one completed
 * session (the default) 0 if everything was stored, 1 if some files failed.
 */
import { statSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { parseHostPort } from "../net/address.ts";
import { InterruptedError, runRecv, type RecvResult } from "../net/session.ts";
import { displaySafe } from "../net/wire.ts";
import { bool, type Parsed } from "./args.ts";
import type { Command } from "./command.ts";
import { OUTPUT_OPTIONS, RING_OPTIONS } from "./common.ts";
import { EXIT } from "./exit.ts";
import { formatBytes, formatCount, plural, ProgressLine, receiveLine } from "./progress.ts";
import { log, printJson } from "./report.ts";
import { cryptoText, MAX_ERROR_LINES, SECRET_OPTIONS, secretFromArgs, securityFromArgs } from "./send.ts";

const DETAILS = `
Listens on [ADDR:]PORT and stores what a sender sends under DST (created if missing).
Without ADDR it listens on every interface: [::] dual-stack (IPv4 too), or 0.0.0.0 where
the machine has no IPv6. ADDR may be an IPv4 address, [IPV6] in brackets, or a host name.

By default it exits after one completed session (0 if everything was stored, 1 if some
files failed); --keep-listening serves one session after another (with --json: one
summary per session, each a JSON object on one line). A connection that
fails (wrong secret, garbage, a timeout, a broken session) is reported on one line and
never ends the receiver; a handshake must complete within 10 s, and a session that sends
nothing for 60 s is dropped.

Without --secret-file, --secret or $URING_SYNC_SECRET it makes a one-time code and prints
it: give it to the sender.

Confinement: every path from the sender stays beneath DST (no "..", no absolute paths,
symlinks already in DST are never followed), no device nodes or FIFOs are created,
setuid/setgid/sticky bits are dropped, and a file appears under its final name only when
complete: a dropped connection leaves no partial file under a final name. (A large file,
1 MiB or more, keeps what arrived as .NAME.usync-partial, so that the sender's next run
resumes it after checking its SHA-256 (after the receiver itself was killed, all but the
last 65 MiB, which may not have been written); the sender's --delete, --dry-run, --checksum and
--ignore-times reach the receiver with the handshake.)

Examples:
  uring-sync recv ./incoming --listen 7000               (prints a code for the sender)
  URING_SYNC_SECRET=... uring-sync recv /srv/in --listen 10.0.0.2:7000 --keep-listening
  uring-sync recv ./in --listen [::1]:7000 --crypto user --json

Exit codes: 0 stored everything, 1 some files failed, 2 usage, 3 --crypto kernel without
kernel TLS, 130 interrupted.`;

export const recv: Command = {
  name: "recv",
  summary: "Receive a tree into DST from a sender",
  details: DETAILS,
  options: {
    dst: { type: "positional", valueHint: "DST", description: "Directory to receive into (created if missing)" },
    listen: {
      type: "string", valueHint: "[ADDR:]PORT", description: "Where to listen, e.g. 7000 (every interface), 127.0.0.1:7000, [::]:7000, myhost:7000",
      validate: (v, flag) => void parseHostPort(v, flag, true), required: true,
    },
    "keep-listening": { type: "boolean", description: "Serve one session after another instead of exiting after the first" },
    ...SECRET_OPTIONS,
    ...RING_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  run: (args) => runRecvCommand(args),
};

function summary(r: RecvResult): string {
  const s = r.stats;
  const seconds = `${r.seconds.toFixed(r.seconds < 10 ? 2 : 1)} s`;
  // A dry run changed nothing: its counts say what the sender's real run would do here.
  const parts = r.dryRun
    ? [`dry run: would receive ${plural(Math.max(0, s.announcedFiles - s.unchanged), "file")} in ${seconds}, nothing changed`]
    : [`received ${plural(s.files, "file")} (${formatBytes(s.bytes)}) in ${seconds}`];
  if (s.dirs > 0 && !r.dryRun) parts.push(plural(s.dirs, "directory", "directories"));
  if (s.symlinks > 0 && !r.dryRun) parts.push(plural(s.symlinks, "symlink"));
  // Counted apart from files, as the sender counts them (a hard link is a name, not file data).
  if (s.hardlinks > 0 && !r.dryRun) parts.push(plural(s.hardlinks, "hard link"));
  if (s.unchanged > 0) parts.push(`${formatCount(s.unchanged)} unchanged`);
  if (s.resumed > 0) parts.push(`${formatCount(s.resumed)} resumed`);
  if (s.deleted > 0) parts.push(r.dryRun ? `would delete ${formatCount(s.deleted)}` : `${formatCount(s.deleted)} deleted`);
  parts.push(`${formatCount(r.failures.length)} failed`);
  return `${parts.join(", ")} — ${cryptoText(r.layer, r.cipher)} from ${r.peer}${r.streams > 1 ? `, ${r.streams} streams` : ""}${r.rekeys > 0 ? `, ${r.rekeys} re-keys` : ""}`;
}

/** Refused before listening (and before a code is made up): a DST that can never hold a tree. */
function checkDst(dst: string): void {
  const st = statSync(dst, { throwIfNoEntry: false });
  if (st !== undefined && !st.isDirectory()) throw new UsageError(`DST ${dst} exists and is not a directory: cannot receive a tree into it`);
}

async function runRecvCommand(args: Parsed): Promise<number> {
  const quiet = bool(args, "quiet");
  const json = bool(args, "json");
  const keepListening = bool(args, "keep-listening");
  const sec = securityFromArgs(args);
  const listen = parseHostPort(String(args.listen), "--listen", true);
  checkDst(String(args.dst));
  const { secret, generated } = await secretFromArgs(args, "recv");
  const showProgress = process.stderr.isTTY === true && !quiet && !json && process.env.URING_SYNC_NO_PROGRESS !== "1";
  const bar = showProgress ? new ProgressLine(process.stderr) : null;
  const say = (f: () => void): void => {
    bar?.clear();
    f();
  };
  let signalled = false;
  const onSignal = (): void => {
    signalled = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let lastFailures = 0;
  let sessionStart = performance.now();
  try {
    let results: RecvResult[];
    try {
      results = await runRecv({
        dst: String(args.dst),
        listen,
        keepListening,
        secret,
        crypto: sec.crypto,
        plaintext: sec.plaintext,
        cipher: sec.cipher,
        ring: { backend: bool(args, "sync") ? "sync" : undefined, entries: args["queue-depth"] !== undefined ? Number(args["queue-depth"]) : undefined },
        interrupted: () => signalled,
        onEvent: (e) => {
          switch (e.type) {
            case "listening":
              say(() => log.info(`listening on ${e.address}`));
              // The code is what the user needs even with --quiet: always shown.
              if (generated !== undefined) say(() => process.stderr.write(`uring-sync: give this code to the sender: ${generated}\n`));
              break;
            case "connection-failed":
              say(() => log.error(`connection from ${e.peer}: ${displaySafe(e.error.message)}`));
              break;
            case "session-start":
              sessionStart = performance.now();
              say(() => log.info(`receiving from ${e.peer} — ${cryptoText(e.layer, e.cipher)}`));
              break;
            case "rekey":
              say(() => log.debug(`session continues on a new connection from ${e.peer} (fresh keys)`));
              break;
            case "session-failed":
              say(() => log.error(`session from ${e.peer} failed: ${displaySafe(e.error.message)}${e.stats.files > 0 ? ` (${plural(e.stats.files, "complete file")} kept)` : ""}`));
              break;
            case "session-done": {
              const r = e.result;
              lastFailures = r.failures.length;
              say(() => {
                r.failures.slice(0, MAX_ERROR_LINES).forEach((f) => log.error(displaySafe(f.message)));
                if (r.failures.length > MAX_ERROR_LINES) log.error(`${formatCount(r.failures.length - MAX_ERROR_LINES)} more failures not shown (see --json)`);
              });
              if (json) {
                printJson({
                  filesReceived: r.stats.files,
                  filesUnchanged: r.stats.unchanged,
                  filesDeleted: r.stats.deleted,
                  filesResumed: r.stats.resumed,
                  filesFailed: r.failures.length,
                  dryRun: r.dryRun,
                  dirs: r.stats.dirs,
                  symlinks: r.stats.symlinks,
                  hardlinks: r.stats.hardlinks,
                  bytes: r.stats.bytes,
                  seconds: Number(r.seconds.toFixed(6)),
                  crypto: r.crypto,
                  cipher: r.cipher,
                  layer: r.layer,
                  peer: r.peer,
                  rekeys: r.rekeys,
                  streams: r.streams,
                  backend: r.backend,
                  failures: r.failures.map((f) => ({ path: f.path, code: f.code, message: f.message })),
                }, keepListening);
              }
              if (!quiet && !json) say(() => log.info(summary(r)));
              break;
            }
          }
        },
        onProgress: bar === null ? undefined : (p) => {
          const s = p.stats;
          // The totals (and so an ETA) once the sender's LISTED said its listing is complete.
          bar.show(receiveLine({
            files: s.files, unchanged: s.unchanged, written: s.written, settled: s.settledBytes,
            announcedFiles: s.announcedFiles, announcedBytes: s.announcedBytes, listed: s.listed,
            seconds: (performance.now() - sessionStart) / 1000,
          }));
        },
      });
    } catch (e) {
      bar?.clear();
      if (e instanceof InterruptedError || signalled) {
        if (!quiet) log.info("interrupted: stopped listening");
        return EXIT.INTERRUPTED;
      }
      throw e;
    }
    void results;
    return lastFailures > 0 ? EXIT.FAILED : EXIT.OK;
  } finally {
    bar?.clear();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
