/**
 * Version, commit and build date of this program.
 *
 * Owns: where those come from. The release build injects the commit and date with
 * `bun build --define`; running from source reads git at most once, lazily.
 */
import { realpathSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };

declare const URING_SYNC_COMMIT: string | undefined;
declare const URING_SYNC_BUILD_DATE: string | undefined;

export const VERSION: string = pkg.version;

export function buildInfo(): { version: string; commit: string; buildDate: string } {
  const commit = typeof URING_SYNC_COMMIT === "string" ? URING_SYNC_COMMIT : sourceCommit();
  const buildDate = typeof URING_SYNC_BUILD_DATE === "string" ? URING_SYNC_BUILD_DATE : "source";
  return { version: VERSION, commit, buildDate };
}

/**
 * HEAD of the checkout these sources are in, and only that: an npm install sits inside the
 * user's own project (node_modules/uring-sync), often a git repository too, whose commit is
 * not ours. So the repository's top level must be this package's root. Asked once per
 * process (doctor and --version both want it; each spawn also leaves Bun a socket to close
 * later, which the doctor's fd-leak test would see).
 */
let cachedCommit: string | undefined;

function sourceCommit(): string {
  cachedCommit ??= gitCommit();
  return cachedCommit;
}

function gitCommit(): string {
  try {
    const pkgRoot = realpathSync(join(import.meta.dir, ".."));
    const r = Bun.spawnSync(["git", "rev-parse", "--show-toplevel", "--short", "HEAD"], { cwd: pkgRoot, stderr: "ignore" });
    const [top, commit] = r.stdout.toString().trim().split("\n");
    return r.exitCode === 0 && top !== undefined && realpathSync(top) === pkgRoot && commit ? commit : "unknown";
  } catch {
    return "unknown";
  }
}
