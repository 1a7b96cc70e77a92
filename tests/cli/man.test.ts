/**
 * man/uring-sync.1: the committed page is exactly what scripts/gen-man.ts renders from
 * the command definitions now (so it cannot drift from --help), it documents every
 * command, flag, exit code and user-facing environment variable, and groff and man
 * render it without a warning.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { aliasFlagsOf, flagOf } from "../../src/cli/args.ts";
import { COMMANDS } from "../../src/cli/commands.ts";
import { EXIT } from "../../src/cli/exit.ts";
import { ENVIRONMENT, MAN_PATH, NOT_DOCUMENTED, renderManPage, roff } from "../../scripts/gen-man.ts";

const ROOT = join(import.meta.dir, "..", "..");
const page = readFileSync(MAN_PATH, "utf8");
const has = (prog: string): boolean => Bun.which(prog) !== null;

/** The page as man shows it: wide, so no option is split across lines. */
function rendered(): string {
  const r = Bun.spawnSync(["groff", "-man", "-Tutf8", "-ww", "-rLL=200n", MAN_PATH], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  // grotty's overstrike bold/underline ("x BACKSPACE x") back to plain text.
  return r.stdout.toString().replace(/.\x08/g, "");
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("man/uring-sync.1", () => {
  test("equals what scripts/gen-man.ts renders now (regenerate: bun scripts/gen-man.ts)", () => {
    expect(page).toBe(renderManPage());
    const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "gen-man.ts"), "--check"], { stderr: "pipe" });
    expect(r.exitCode).toBe(0);
  });

  test("has the sections of a man page", () => {
    for (const s of ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", '"EXIT STATUS"', "ENVIRONMENT", "EXAMPLES", '"SEE ALSO"']) {
      expect(page).toContain(`\n.SH ${s}\n`);
    }
  });

  test("documents every command and every flag and alias of each, in its own section", () => {
    const sections = page.split("\n.SS ");
    for (const c of Object.values(COMMANDS)) {
      const section = sections.find((s) => s.startsWith(`"${roff(`uring-sync ${c.name}`)}"`));
      expect(section).toBeDefined();
      for (const [name, s] of Object.entries(c.options)) {
        if (s.type === "positional") continue;
        for (const f of [flagOf(name), ...aliasFlagsOf(s)]) expect(section).toContain(`\\fB${roff(f)}\\fR`);
        expect(section).toContain(roff(s.description));
      }
    }
    const text = rendered();
    for (const c of Object.values(COMMANDS)) {
      expect(text).toContain(`uring-sync ${c.name}`);
      for (const name of Object.keys(c.options)) if (c.options[name].type !== "positional") expect(text).toContain(flagOf(name));
    }
  });

  test("EXIT STATUS lists every exit code", () => {
    const exit = page.slice(page.indexOf('.SH "EXIT STATUS"'), page.indexOf(".SH ENVIRONMENT"));
    for (const code of Object.values(EXIT)) expect(exit).toContain(`.TP\n\\fB${code}\\fR\n`);
  });

  test("ENVIRONMENT: every URING_SYNC_ variable the code reads is documented or listed as internal, and no other", () => {
    const read = new Set<string>();
    for (const f of [...sources(join(ROOT, "src")), ...sources(join(ROOT, "ffi"))]) {
      for (const m of readFileSync(f, "utf8").matchAll(/URING_SYNC_[A-Z0-9_]+/g)) read.add(m[0]);
    }
    const documented = ENVIRONMENT.map(([name]) => name);
    for (const v of read) expect([...documented, ...Object.keys(NOT_DOCUMENTED)]).toContain(v);
    for (const v of documented.filter((v) => v.startsWith("URING_SYNC_"))) expect(read.has(v)).toBe(true);
    for (const v of documented) expect(page).toContain(`.TP\n\\fB${roff(v)}\\fR\n`);
    for (const v of Object.keys(NOT_DOCUMENTED)) expect(page).not.toContain(v);
  });

  test("roff escaping: hyphens, backslashes, leading dots, code spans", () => {
    expect(roff("--crypto")).toBe("\\-\\-crypto");
    expect(roff("a\\b")).toBe("a\\eb");
    expect(roff("`cp -a`")).toBe("\\fBcp \\-a\\fR");
    expect(roff("l’été")).toBe("l\\[u2019]\\[u00E9]t\\[u00E9]");
    // No text line of the page starts with a dot or quote that is not a request.
    for (const l of page.split("\n")) if (/^[.']/.test(l)) expect(l).toMatch(/^\.(\\"|[A-Za-z]{1,2}\b)/);
  });

  test.skipIf(!has("groff"))("groff -man -ww renders it without a warning", () => {
    const r = Bun.spawnSync(["groff", "-man", "-Tutf8", "-ww", "-z", MAN_PATH], { stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test.skipIf(!has("man"))("man -l renders it without a warning", () => {
    const r = Bun.spawnSync(["man", "--warnings", "-l", MAN_PATH], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MANWIDTH: "80" } });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const text = r.stdout.toString().replace(/.\x08/g, "");
    expect(text).toContain("EXIT STATUS");
    expect(text).toContain("--queue-depth N");
  });
});
