/**
 * Version, commit and build date of this program.
 *
 * Owns: where those come from. The release build injects the commit and date with
 * `bun build --define`; running from source reads git at most once, lazily.
 */
import pkg from "../package.json" with { type: "json" };

declare const URING_SYNC_COMMIT: string | undefined;
declare const URING_SYNC_BUILD_DATE: string | undefined;

export const VERSION: string = pkg.version;

export function buildInfo(): { version: string; commit: string; buildDate: string } {
  const commit = typeof URING_SYNC_COMMIT === "string" ? URING_SYNC_COMMIT : sourceCommit();
  const buildDate = typeof URING_SYNC_BUILD_DATE === "string" ? URING_SYNC_BUILD_DATE : "source";
  return { version: VERSION, commit, buildDate };
}

function sourceCommit(): string {
  try {
    const r = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: import.meta.dir, stderr: "ignore" });
    const out = r.stdout.toString().trim();
    return r.exitCode === 0 && out !== "" ? out : "unknown";
  } catch {
    return "unknown";
  }
}
