/**
 * Builds the single executable dist/uring-sync (bun build --compile) and its .sha256.
 *
 * Owns: the build command line, including every Worker entry point (a compiled binary
 * only contains workers passed as extra entry points), the version/commit/date baked in
 * with --define, and turning off what the executable would otherwise load from its
 * working directory (bunfig.toml, .env). Usage:
 *   bun scripts/build.ts [--outfile PATH] [--target bun-linux-x64-baseline] [--compile-executable-path BUN]
 * --compile-executable-path: the Bun runtime to embed for --target (scripts/release.ts passes
 * one fetched with npm), so Bun does not download it itself.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const root = join(import.meta.dir, "..");
const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outfile = opt("--outfile") ?? join(root, "dist", "uring-sync");
const target = opt("--target");
const runtime = opt("--compile-executable-path");

/** Worker entry files: add new ones here (the build fails loudly if one is missing). */
const WORKERS = ["src/copy/worker.ts", "src/net/hash-worker.ts"].filter((w) => existsSync(join(root, w)));

function git(...a: string[]): string {
  const r = Bun.spawnSync(["git", ...a], { cwd: root, stderr: "ignore" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : "unknown";
}

const commit = git("rev-parse", "--short", "HEAD");
const dirty = git("status", "--porcelain", "--untracked-files=no") !== "" ? "-dirty" : "";
// SOURCE_DATE_EPOCH (seconds; the reproducible-builds convention) pins the date, e.g. to the commit's.
const epoch = process.env.SOURCE_DATE_EPOCH;
const buildDate = (epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date()).toISOString();
mkdirSync(dirname(outfile), { recursive: true });

const cmd = [
  process.execPath, "build", "--compile", "src/cli/main.ts", ...WORKERS,
  // Precompiled bytecode: the program starts in ~20 ms instead of ~65 ms (measured with
  // --version), which every run pays, on each end of a transfer. Bytecode needs ESM here
  // (main.ts has top-level await).
  "--bytecode", "--format", "esm",
  "--outfile", outfile,
  // A compiled Bun program reads bunfig.toml (preload = code it runs) and .env from the
  // directory it is started in, by default. uring-sync runs in arbitrary directories, some
  // filled by a network peer: it must never take code or settings from there.
  "--no-compile-autoload-bunfig", "--no-compile-autoload-dotenv",
  "--define", `URING_SYNC_COMMIT=${JSON.stringify(commit + dirty)}`,
  "--define", `URING_SYNC_BUILD_DATE=${JSON.stringify(buildDate)}`,
  ...(target ? ["--target", target] : []),
  ...(runtime ? ["--compile-executable-path", runtime] : []),
];
const r = Bun.spawnSync(cmd, { cwd: root, stdout: "inherit", stderr: "inherit" });
if (r.exitCode !== 0) {
  console.error(`build failed: ${cmd.join(" ")}`);
  process.exit(1);
}
const digest = createHash("sha256").update(readFileSync(outfile)).digest("hex");
writeFileSync(`${outfile}.sha256`, `${digest}  ${relative(dirname(outfile), outfile)}\n`);
console.log(`built ${relative(root, outfile)} (${commit}${dirty}, ${buildDate})`);
