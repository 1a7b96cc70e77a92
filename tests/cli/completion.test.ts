/**
 * `uring-sync completion bash|zsh|fish`: the scripts name every command and every flag of
 * every command (from the same specs as --help), are valid for their shell, and really
 * complete: bash through its completion function with COMP_WORDS set, fish through
 * `complete -C`, zsh through an interactive shell on a pseudo-terminal (zpty) pressing TAB.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aliasFlagsOf, flagOf } from "../../src/cli/args.ts";
import { COMMANDS, DEFAULT_COMMAND } from "../../src/cli/commands.ts";
import { completionScript, HINT_KINDS, SHELLS, type Shell } from "../../src/cli/completion.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const commands = Object.values(COMMANDS);
const has = (prog: string): boolean => Bun.which(prog) !== null;

/** Every flag a user can type for a command: long names and aliases from its specs, plus -h/--help. */
function flagsOf(name: string): string[] {
  const out = ["--help", "-h"];
  for (const [opt, s] of Object.entries(COMMANDS[name].options)) {
    if (s.type === "positional") continue;
    out.push(flagOf(opt), ...aliasFlagsOf(s));
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "usync-completion-"));
const scripts = {} as Record<Shell, string>;
const files = {} as Record<Shell, string>;
/** A directory to complete paths in: alpha.txt and beta/. */
const cwd = join(dir, "cwd");

beforeAll(() => {
  for (const shell of SHELLS) {
    const r = Bun.spawnSync([process.execPath, MAIN, "completion", shell], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stderr.toString()).toBe("");
    scripts[shell] = r.stdout.toString();
    files[shell] = join(dir, `uring-sync.${shell}`);
    writeFileSync(files[shell], scripts[shell]);
  }
  mkdirSync(join(cwd, "beta"), { recursive: true });
  writeFileSync(join(cwd, "alpha.txt"), "a");
});

describe("uring-sync completion (the command)", () => {
  test("prints the script generated from the command registry", () => {
    for (const shell of SHELLS) expect(scripts[shell]).toBe(completionScript(shell, commands, DEFAULT_COMMAND.name));
  });

  test("a missing or unknown shell is a one-line usage error, exit 2", () => {
    for (const argv of [[], ["tcsh"], ["bash", "zsh"], ["--shell", "bash"]]) {
      const r = Bun.spawnSync([process.execPath, MAIN, "completion", ...argv], { stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(2);
      expect(r.stdout.toString()).toBe("");
      const err = r.stderr.toString();
      expect(err.trim().split("\n")).toHaveLength(1);
    }
    const r = Bun.spawnSync([process.execPath, MAIN, "completion", "tcsh"], { stderr: "pipe" });
    expect(r.stderr.toString()).toContain("must be one of bash, zsh, fish (got 'tcsh')");
  });

  test("its --help renders", () => {
    const r = Bun.spawnSync([process.execPath, MAIN, "completion", "--help"], { stdout: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("bash|zsh|fish");
    expect(r.stdout.toString()).toContain("bash-completion/completions/uring-sync");
  });

  test("every value hint in the specs is classified (path or not)", () => {
    for (const c of commands) {
      for (const s of Object.values(c.options)) {
        if (s.valueHint !== undefined && s.choices === undefined) expect(Object.keys(HINT_KINDS)).toContain(s.valueHint);
      }
    }
  });
});

describe("every command and flag in every script", () => {
  test("bash: each command's flag list", () => {
    for (const c of commands) {
      const m = new RegExp(`^    ${c.name}\\) echo "([^"]*)" ;;$`, "m").exec(scripts.bash);
      expect(m).not.toBeNull();
      expect(m?.[1].split(" ").sort()).toEqual(flagsOf(c.name).sort());
    }
  });

  test("zsh: each command's _arguments", () => {
    for (const c of commands) {
      const body = new RegExp(`^_uring_sync_${c.name}\\(\\) \\{\\n([\\s\\S]*?)\\n\\}`, "m").exec(scripts.zsh)?.[1];
      expect(body).toBeDefined();
      for (const f of flagsOf(c.name)) expect(body).toMatch(new RegExp(`['*)]${f}[=+\\[]`));
      expect(scripts.zsh).toContain(`'${c.name}:`);
    }
  });

  test("fish: each command's complete lines", () => {
    for (const c of commands) {
      const lines = scripts.fish.split("\n").filter((l) => l.includes(`-n '__uring_sync_is ${c.name}'`));
      for (const f of flagsOf(c.name)) {
        const opt = f.startsWith("--") ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`;
        expect(lines.some((l) => l.includes(` ${opt} `))).toBe(true);
      }
      expect(scripts.fish).toContain(`-a ${c.name} -d `);
    }
  });
});

// ---- bash ------------------------------------------------------------------------------

/** What bash's completion function puts in COMPREPLY for the words typed (the last one being completed). */
function bashComplete(...words: string[]): string[] {
  const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ");
  const prog = `source ${files.bash}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _uring_sync; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", prog], { cwd, stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  return r.stdout.toString().split("\n").filter((l) => l !== "").sort();
}

describe("bash", () => {
  test("bash -n accepts it, and it registers for uring-sync", () => {
    expect(Bun.spawnSync(["bash", "-n", files.bash]).exitCode).toBe(0);
    const r = Bun.spawnSync(["bash", "--norc", "-c", `source ${files.bash}; complete -p uring-sync`], { stdout: "pipe" });
    expect(r.stdout.toString().trim()).toBe("complete -F _uring_sync uring-sync");
  });

  test("flags complete per command", () => {
    expect(bashComplete("uring-sync", "send", "--cr")).toEqual(["--crypto"]);
    expect(bashComplete("uring-sync", "recv", "--keep")).toEqual(["--keep-listening"]);
    expect(bashComplete("uring-sync", "copy", "--no-")).toEqual(["--no-owner", "--no-splice"]);
    expect(bashComplete("uring-sync", "doctor", "--")).toEqual(["--help", "--json", "--quiet", "--verbose"]);
    // The default command: `uring-sync SRC --de` is copy's --delete; send's flags are not copy's.
    expect(bashComplete("uring-sync", "alpha.txt", "--de")).toEqual(["--delete"]);
    expect(bashComplete("uring-sync", "alpha.txt", "--cr")).toEqual([]);
  });

  test("fixed choices complete after the flag, also written --flag=", () => {
    expect(bashComplete("uring-sync", "send", "--crypto", "")).toEqual(["auto", "kernel", "user"]);
    expect(bashComplete("uring-sync", "recv", "./in", "--crypto", "k")).toEqual(["kernel"]);
    expect(bashComplete("uring-sync", "send", "--cipher", "aes")).toEqual(["aes-128-gcm", "aes-256-gcm"]);
    // COMP_WORDBREAKS splits "--crypto=u" into "--crypto" "=" "u".
    expect(bashComplete("uring-sync", "send", "--crypto", "=", "u")).toEqual(["user"]);
    expect(bashComplete("uring-sync", "send", "--crypto", "=")).toEqual(["auto", "kernel", "user"]);
    // Without '=' in COMP_WORDBREAKS it stays one word.
    expect(bashComplete("uring-sync", "send", "--crypto=u")).toEqual(["--crypto=user"]);
    expect(bashComplete("uring-sync", "completion", "")).toEqual(["bash", "fish", "zsh"]);
  });

  test("the first word: commands and paths (the default command's SRC)", () => {
    expect(bashComplete("uring-sync", "")).toEqual(["alpha.txt", "beta", "completion", "copy", "doctor", "help", "recv", "send"]);
    expect(bashComplete("uring-sync", "d")).toEqual(["doctor"]);
    expect(bashComplete("uring-sync", "--vers")).toEqual(["--version"]);
    expect(bashComplete("uring-sync", "help", "re")).toEqual(["recv"]);
  });

  test("paths where the spec takes a path; nothing where it takes a number or an address", () => {
    expect(bashComplete("uring-sync", "alpha.txt", "b")).toEqual(["beta"]);
    expect(bashComplete("uring-sync", "send", "--secret-file", "al")).toEqual(["alpha.txt"]);
    expect(bashComplete("uring-sync", "recv", "")).toEqual(["alpha.txt", "beta"]);
    // send's second argument is HOST:PORT; the value of -j (a count) and a third copy argument have no completion.
    expect(bashComplete("uring-sync", "send", "alpha.txt", "")).toEqual([]);
    expect(bashComplete("uring-sync", "copy", "-j", "")).toEqual([]);
    expect(bashComplete("uring-sync", "alpha.txt", "beta", "")).toEqual([]);
    // A flag's value is not counted as a positional: -q 8 then SRC.
    expect(bashComplete("uring-sync", "send", "-q", "8", "al")).toEqual(["alpha.txt"]);
    // After --, words starting with - are arguments.
    expect(bashComplete("uring-sync", "copy", "--", "-")).toEqual([]);
  });
});

// ---- fish ------------------------------------------------------------------------------

function fishComplete(line: string): string[] {
  const r = Bun.spawnSync(["fish", "--no-config", "-c", `source ${files.fish}; complete -C ${JSON.stringify(line)}`], { cwd, stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  return r.stdout.toString().split("\n").filter((l) => l !== "").map((l) => l.split("\t")[0]).sort();
}

describe.skipIf(!has("fish"))("fish", () => {
  test("fish --no-execute accepts it", () => {
    const r = Bun.spawnSync(["fish", "--no-execute", files.fish], { stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("complete -C gives flags, choices, commands and paths", () => {
    expect(fishComplete("uring-sync send --cr")).toEqual(["--crypto"]);
    expect(fishComplete("uring-sync send --crypto ")).toEqual(["auto", "kernel", "user"]);
    expect(fishComplete("uring-sync recv ./in --cipher aes")).toEqual(["aes-128-gcm", "aes-256-gcm"]);
    expect(fishComplete("uring-sync completion ")).toEqual(["bash", "fish", "zsh"]);
    expect(fishComplete("uring-sync ")).toEqual(["alpha.txt", "beta/", "completion", "copy", "doctor", "help", "recv", "send"]);
    expect(fishComplete("uring-sync alpha.txt --de")).toEqual(["--delete"]);
    expect(fishComplete("uring-sync send alpha.txt ")).toEqual([]);
    expect(fishComplete("uring-sync send --secret-file al")).toEqual(["alpha.txt"]);
    expect(fishComplete("uring-sync doctor --")).toEqual(["--help", "--json", "--quiet", "--verbose"]);
  });
});

// ---- zsh -------------------------------------------------------------------------------

/**
 * Runs an interactive zsh on a pseudo-terminal (zsh/zpty), loads compinit and the
 * script, types LINE and TAB, and returns what the terminal showed (escapes removed).
 * zpty -r waits for a pattern, not for a time: "DONE" appears only once the shell ran
 * the command typed after the completion.
 */
const ZPTY = `
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "stty rows 200 columns 120; PS1='> '; $1; echo SOURC''ED"
zpty -r z out '*SOURCED*> *' || exit 3
zpty -wn z "$2"$'\\t'
zpty -w z $'\\C-e\\C-u'"echo DO''NE"
zpty -r z out '*DONE*' || exit 4
zpty -d z
print -r -- "$out"
`;

/** The two ways to install: `source <(uring-sync completion zsh)` after compinit, or a file _uring-sync in $fpath. */
function zshScreen(line: string, how: "source" | "fpath" = "source"): string {
  const fpathDir = join(dir, "zfunctions");
  mkdirSync(fpathDir, { recursive: true });
  writeFileSync(join(fpathDir, "_uring-sync"), scripts.zsh);
  const setup = how === "source"
    ? `autoload -Uz compinit; compinit -u -D; source ${files.zsh}`
    : `fpath=(${fpathDir} $fpath); autoload -Uz compinit; compinit -u -D`;
  const r = Bun.spawnSync(["zsh", "-f", "-c", ZPTY, "zpty-test", setup, line], { cwd, stdout: "pipe", stderr: "pipe", timeout: 60_000 });
  expect(r.exitCode).toBe(0);
  // Terminal escapes out (the redraws that follow, backspaces and all, are kept: they come
  // after what the completion drew and would erase the suffix zsh shows as removable).
  return r.stdout.toString().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
}

describe.skipIf(!has("zsh"))("zsh", () => {
  test("zsh -n accepts it", () => {
    const r = Bun.spawnSync(["zsh", "-n", files.zsh], { stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("TAB completes a flag, its choices, commands and flags with descriptions", () => {
    expect(zshScreen("uring-sync send --cr")).toContain("uring-sync send --crypto=");
    const choices = zshScreen("uring-sync send --crypto ");
    expect(choices).toMatch(/auto +kernel +user/);
    const first = zshScreen("uring-sync ");
    for (const c of commands) expect(first).toContain(`${c.name} `);
    expect(first).toContain("alpha.txt");
    const recv = zshScreen("uring-sync recv --");
    for (const f of flagsOf("recv").filter((f) => f.startsWith("--"))) expect(recv).toContain(f);
  }, 120_000);

  test("installed as _uring-sync in $fpath, compinit loads it", () => {
    expect(zshScreen("uring-sync send --crypto ", "fpath")).toMatch(/auto +kernel +user/);
    expect(zshScreen("uring-sync completion ", "fpath")).toMatch(/bash +fish +zsh/);
  }, 120_000);
});
