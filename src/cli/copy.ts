/**
 * `uring-sync [copy] SRC DST`: the local copy command.
 *
 * Owns: turning options into an engine call (src/copy/engine.ts), what the user sees
 * (per-file errors and warnings as they happen, the progress line on a terminal, the
 * one-line summary, --json, --dry-run's list), SIGINT/SIGTERM (stop, clean up temp files,
 * exit 130) and the exit code. Never touches files itself.
 */
import { type CopyErrorInfo, type CopyResult, copy as runCopy, RING_MAX } from "../copy/engine.ts";
import { bool, int, list, size, type Parsed } from "./args.ts";
import type { Command } from "./command.ts";
import { FILTER_OPTIONS, OUTPUT_OPTIONS, PARALLEL_OPTIONS, RING_OPTIONS, SYNC_OPTIONS } from "./common.ts";
import { EXIT } from "./exit.ts";
import { formatBytes, formatCount, plural, ProgressLine } from "./progress.ts";
import { log, printJson } from "./report.ts";

/** Errors printed one by one; past this, only counted (all are in --json up to the engine's cap). */
const MAX_ERROR_LINES = 1000;
/** --json --dry-run lists at most this many changes. */
const MAX_JSON_CHANGES = 100_000;

const DETAILS = `
The contents of SRC land in DST, which is created if missing, like \`cp -a SRC/. DST\`:
running the same command twice never nests a second copy, and the second run copies
only what changed (size or mtime differs; --checksum compares content instead).

Examples:
  uring-sync ./photos /backup/photos            copy a tree (DST/ gets the contents of ./photos)
  uring-sync ./photos /backup/photos            run it again: copies nothing, nothing nests
  uring-sync copy ./photos /backup/photos -n    what would change (copy/update/delete lines)
  uring-sync ./src /mnt/dst --delete            mirror: also remove from DST what SRC no longer has
  uring-sync ./src /mnt/dst --exclude '*.tmp' --exclude cache/ --include keep.tmp
  uring-sync ./src /mnt/dst --checksum --json   compare by SHA-256; machine-readable summary
  uring-sync ./big.iso /mnt/usb/                a single file into an existing directory
  uring-sync ./big.iso /mnt/usb/copy.iso        a single file to a new name
  sudo uring-sync /srv /mnt/backup/srv --xattrs --specials --fsync   everything cp -a keeps, durably

Fidelity: bytes, mode bits (setuid too), owner/group (as root; --no-owner to skip), atime and
mtime to the nanosecond, symlinks as symlinks, hard links kept, sparse files kept sparse,
directory modes and times set after their contents; xattrs with --xattrs; FIFOs, sockets
and devices with --specials (as root), otherwise skipped with a warning.
Safety: a DST that does not exist yet is built under a hidden name next to it
(.<name>.usync-stage-*) and renamed into place when done; in an existing DST every file is
written under a temporary name and appears under its final name only when complete (an
existing copy is replaced atomically). A killed run's hidden tree is removed by the next
run; --fsync makes all of it durable. DST inside SRC, SRC inside DST and SRC equal to DST are refused (exit 2).
Globs (--exclude/--include) match the path relative to SRC; without a "/" they match the last
component at any depth; a trailing "/" matches directories only; --include wins over --exclude.
Exit codes: 0 all copied, 1 some files failed (or ENOSPC stopped the run), 2 usage, 130 interrupted.`;

export const copy: Command = {
  name: "copy",
  summary: "Copy a file or directory tree (the default command: `uring-sync SRC DST`)",
  details: DETAILS,
  options: {
    src: { type: "positional", valueHint: "SRC", description: "File or directory to copy" },
    dst: { type: "positional", valueHint: "DST", description: "Destination (created if missing; receives the contents of SRC)" },
    ...SYNC_OPTIONS,
    ...FILTER_OPTIONS,
    "no-owner": { type: "boolean", description: "Do not keep owner and group (kept by default when run as root)" },
    xattrs: { type: "boolean", description: "Copy extended attributes too" },
    specials: { type: "boolean", description: "Recreate FIFOs, sockets and device nodes (as root); default: skip them with a warning" },
    fsync: { type: "boolean", description: "Make the copy durable: fsync each file before its rename, and every directory at the end" },
    ...PARALLEL_OPTIONS,
    ...RING_OPTIONS,
    "no-splice": { type: "boolean", description: "Never use splice(2) (copy_file_range, then read/write only)" },
    ...OUTPUT_OPTIONS,
  },
  run: (args) => runCommand(args),
};

function oneLine(r: CopyResult): string {
  const size = formatBytes(r.bytes);
  const verb = r.dryRun ? "would copy" : "copied";
  const parts = [`${verb} ${plural(r.filesCopied, "file")} (${size}) in ${r.seconds.toFixed(r.seconds < 10 ? 2 : 1)} s`];
  parts.push(`skipped ${formatCount(r.filesSkipped)} unchanged`);
  if (r.deleted > 0) parts.push(`${r.dryRun ? "would delete" : "deleted"} ${formatCount(r.deleted)}`);
  if (r.specialsSkipped > 0) parts.push(`${plural(r.specialsSkipped, "special file")} skipped`);
  parts.push(`${formatCount(r.filesFailed)} failed`);
  const head = r.dryRun ? "dry run: " : r.interrupted ? "interrupted: " : r.stoppedBy !== null ? `stopped (${r.stoppedBy}): ` : "";
  return `${head}${parts.join(", ")} — backend ${r.backend}`;
}

async function runCommand(args: Parsed): Promise<number> {
  const quiet = bool(args, "quiet");
  const json = bool(args, "json");
  const verbose = bool(args, "verbose");
  const dryRun = bool(args, "dry-run");
  const showProgress = process.stderr.isTTY === true && !quiet && process.env.URING_SYNC_NO_PROGRESS !== "1";
  const bar = showProgress ? new ProgressLine(process.stderr) : null;
  const say = (f: () => void): void => {
    bar?.clear();
    f();
  };
  let errorLines = 0;
  const changes: { action: string; path: string }[] = [];
  let changesOmitted = 0;
  const controller = new AbortController();
  let signalled = false;
  const onSignal = (): void => {
    signalled = true;
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const chunk = size(args, "chunk");
  try {
    const result = await runCopy(
      {
        src: String(args.src),
        dst: String(args.dst),
        checksum: bool(args, "checksum"),
        ignoreTimes: bool(args, "ignore-times"),
        delete: bool(args, "delete"),
        dryRun,
        exclude: list(args, "exclude"),
        include: list(args, "include"),
        jobs: int(args, "jobs"),
        queueDepth: int(args, "queue-depth"),
        chunk,
        sync: bool(args, "sync"),
        splice: !bool(args, "no-splice"),
        fsync: bool(args, "fsync"),
        owner: !bool(args, "no-owner"),
        xattrs: bool(args, "xattrs"),
        specials: bool(args, "specials"),
      },
      {
        signal: controller.signal,
        onError: (e: CopyErrorInfo) => {
          if (errorLines++ < MAX_ERROR_LINES) say(() => log.error(e.message));
          else if (errorLines === MAX_ERROR_LINES + 1) say(() => log.error("more errors follow; not shown (see --json)"));
        },
        onWarning: (m) => say(() => log.warn(m)),
        onChange: (action, path) => {
          if (json) {
            if (changes.length < MAX_JSON_CHANGES) changes.push({ action, path });
            else changesOmitted++;
          } else if (dryRun) say(() => process.stdout.write(`${action} ${path}\n`));
          else say(() => log.debug(`${action === "delete" ? "deleted" : action} ${path}`));
        },
        onBackend: (kind, detail) => {
          const ring = Math.min(chunk ?? 1 << 20, RING_MAX);
          say(() => log.debug(`backend ${kind}: ${detail}; data path: whole-file reads through the ring up to ${formatBytes(ring)}, copy_file_range above (splice or read/write where it cannot)`));
        },
        onProgress: bar === null ? undefined : (p) => bar.update(p),
      },
    );
    bar?.clear();
    if (verbose) {
      const used = Object.entries(result.dataPaths).map(([k, v]) => `${k} ${formatCount(v)}`).join(", ");
      log.debug(`data paths used: ${used === "" ? "none" : used}`);
      log.debug(`files per thread: main ${result.threads.map((n, i) => (i === 0 ? `${n}` : `worker${i} ${n}`)).join(", ")}`);
    }
    if (json) {
      printJson({
        filesCopied: result.filesCopied,
        filesSkipped: result.filesSkipped,
        filesFailed: result.filesFailed,
        dirs: result.dirs,
        symlinks: result.symlinks,
        hardlinks: result.hardlinks,
        specials: result.specials,
        specialsSkipped: result.specialsSkipped,
        deleted: result.deleted,
        bytes: result.bytes,
        seconds: Number(result.seconds.toFixed(6)),
        backend: result.backend,
        backendDetail: result.backendDetail,
        dataPaths: result.dataPaths,
        dryRun: result.dryRun,
        interrupted: result.interrupted,
        stoppedBy: result.stoppedBy,
        errors: result.errors.map((e) => ({ path: e.path, code: e.code, message: e.message })),
        errorsOmitted: result.errorsOmitted,
        ...(dryRun ? { changes, changesOmitted } : {}),
      });
    }
    if (!quiet && !json) log.info(oneLine(result));
    else if (quiet && (result.interrupted || result.stoppedBy !== null)) log.warn(oneLine(result));
    if (result.interrupted || signalled) return EXIT.INTERRUPTED;
    return result.filesFailed > 0 || result.errors.length > 0 || result.stoppedBy !== null ? EXIT.FAILED : EXIT.OK;
  } finally {
    bar?.clear();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
