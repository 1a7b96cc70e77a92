/**
 * Builds and checks the release artifacts, into dist/ (or --outdir DIR):
 *   uring-sync            + .sha256   bun-linux-x64 runtime: x86-64 with AVX2 (Haswell, 2013, and later)
 *   uring-sync-baseline   + .sha256   bun-linux-x64-baseline runtime: any x86-64 with SSE4.2 (Nehalem)
 *   uring-sync-VERSION.tgz + .sha256  the npm package (`npm pack`), what `npx`/`bunx uring-sync` install
 * Every .sha256 is in sha256sum format: `cd dist && sha256sum -c *.sha256`.
 * Usage: bun scripts/release.ts [--outdir DIR] [--no-baseline] [--no-pack]
 *
 * The baseline runtime is the npm package @oven/bun-linux-x64-baseline at exactly the version of
 * the Bun running this script, fetched with `npm pack` (so npm's registry, proxy and integrity
 * check apply) into node_modules/.cache/uring-sync/ and given to `bun build
 * --compile-executable-path`; Bun itself is never asked to download anything.
 *
 * Owns: which artifacts a release has and the checks each passes before it is called built
 * (checksum, `--version` naming this commit and a build date). The build command line itself
 * is scripts/build.ts.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";

const root = join(import.meta.dir, "..");
const USAGE = "usage: bun scripts/release.ts [--outdir DIR] [--no-baseline] [--no-pack]";
const args = process.argv.slice(2);
let dist = join(root, "dist");
const flags = new Set<string>();
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--outdir" && args[i + 1] !== undefined) dist = resolve(args[++i]);
  else if (args[i] === "--no-baseline" || args[i] === "--no-pack") flags.add(args[i]);
  else fail(`unknown option ${args[i]} (${USAGE})`);
}
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name: string; version: string };

/** The artifact being built and checked: removed (with its .sha256) if that fails, so dist/ never holds an unchecked one. */
let unfinished: string | undefined;

function fail(msg: string): never {
  if (unfinished !== undefined) for (const f of [unfinished, `${unfinished}.sha256`]) rmSync(f, { force: true });
  console.error(`release: ${msg}${unfinished !== undefined ? ` (removed ${basename(unfinished)} and its .sha256)` : ""}`);
  process.exit(1);
}

function run(cmd: string[], what: string, cwd = root): string {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) fail(`${what} failed (exit ${r.exitCode}): ${cmd.join(" ")}\n${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

function writeSha256(file: string): void {
  const digest = createHash("sha256").update(readFileSync(file)).digest("hex");
  writeFileSync(`${file}.sha256`, `${digest}  ${basename(file)}\n`);
}

/** The checks every executable artifact passes: its checksum file verifies, and --version is this build's. */
function check(file: string, commit: string): string {
  run(["sha256sum", "--check", "--strict", `${basename(file)}.sha256`], `sha256sum -c ${basename(file)}.sha256`, dist);
  const version = run([file, "--version"], `${basename(file)} --version`).trim();
  const m = /^uring-sync (\S+) \(commit (\S+), built (\S+)\)$/.exec(version);
  if (m === null) fail(`${basename(file)} --version printed ${JSON.stringify(version)}`);
  if (m[1] !== pkg.version) fail(`${basename(file)} says version ${m[1]}, package.json says ${pkg.version}`);
  if (m[2] !== commit) fail(`${basename(file)} says commit ${m[2]}, the checkout is at ${commit}`);
  if (Number.isNaN(Date.parse(m[3]))) fail(`${basename(file)} has no build date: ${JSON.stringify(m[3])}`);
  return version;
}

/** The Bun runtime for `target` at this Bun's version, from npm (cached; re-fetched if the cache is broken). */
function fetchRuntime(target: string): string {
  const name = `@oven/${target}`;
  const cache = join(root, "node_modules", ".cache", "uring-sync", `${target}-${Bun.version}`);
  const exe = join(cache, "package", "bin", "bun");
  const works = (): boolean => existsSync(exe) && Bun.spawnSync([exe, "--version"]).stdout.toString().trim() === Bun.version;
  if (works()) return exe;
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  const out = run(["npm", "pack", `${name}@${Bun.version}`, "--pack-destination", cache, "--json", "--loglevel=error"], `npm pack ${name}@${Bun.version}`);
  const tgz = (JSON.parse(out) as { filename: string }[])[0].filename;
  run(["tar", "-xzf", tgz], `unpacking ${tgz}`, cache);
  rmSync(join(cache, tgz));
  if (!works()) fail(`${exe} from ${name}@${Bun.version} does not run or is not Bun ${Bun.version}`);
  return exe;
}

const commit = run(["git", "rev-parse", "--short", "HEAD"], "git rev-parse").trim() +
  (run(["git", "status", "--porcelain", "--untracked-files=no"], "git status").trim() !== "" ? "-dirty" : "");
if (commit.endsWith("-dirty")) console.warn("release: the checkout has uncommitted changes; the artifacts will say so (-dirty)");
mkdirSync(dist, { recursive: true });

const built: string[] = [];
const build = (outfile: string, extra: string[]): void => {
  unfinished = outfile;
  const r = Bun.spawnSync([process.execPath, join(root, "scripts", "build.ts"), "--outfile", outfile, ...extra], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) fail(`building ${basename(outfile)} failed`);
  built.push(`${basename(outfile)}: ${check(outfile, commit)}`);
  unfinished = undefined;
};

build(join(dist, "uring-sync"), []);
if (!flags.has("--no-baseline")) {
  const target = "bun-linux-x64-baseline";
  build(join(dist, "uring-sync-baseline"), ["--target", target, "--compile-executable-path", fetchRuntime(target)]);
}
if (!flags.has("--no-pack")) {
  for (const f of readdirSync(dist)) if (/^uring-sync-.*\.tgz(\.sha256)?$/.test(f)) rmSync(join(dist, f));
  const out = run(["npm", "pack", "--pack-destination", dist, "--json", "--loglevel=error"], "npm pack");
  const info = (JSON.parse(out) as { filename: string; size: number; entryCount: number }[])[0];
  // npm names a scoped package's tarball scope-name-version.tgz; keep what npm chose.
  const tgz = join(dist, info.filename);
  unfinished = tgz;
  chmodSync(tgz, 0o644);
  writeSha256(tgz);
  run(["sha256sum", "--check", "--strict", `${info.filename}.sha256`], `sha256sum -c ${info.filename}.sha256`, dist);
  built.push(`${info.filename}: ${info.entryCount} files, ${(info.size / 1024).toFixed(0)} KiB packed`);
  unfinished = undefined;
}
for (const line of built) console.log(`release: ${line}`);
for (const f of readdirSync(dist).sort()) {
  if (!f.startsWith(".")) console.log(`  ${join(dist, f)}  ${(statSync(join(dist, f)).size / 1048576).toFixed(1)} MiB`);
}
