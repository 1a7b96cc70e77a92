/**
 * parseStrict and option `choices`: the fixed values of an option are defined once in
 * its spec, and the parser, --help (the value hint) and shell completion all use them.
 */
import { describe, expect, test } from "bun:test";
import { parseStrict, toCittyArgs, valueHintOf, type OptionSpecs } from "../../src/cli/args.ts";
import { SECRET_OPTIONS } from "../../src/cli/send.ts";

const specs: OptionSpecs = {
  shell: { type: "positional", choices: ["bash", "zsh"], description: "shell" },
  mode: { type: "string", choices: ["fast", "safe"], description: "mode" },
  level: { type: "string", choices: ["1", "2"], valueHint: "N", description: "level" },
};

const fails = (argv: string[]): string => {
  try {
    parseStrict(argv, specs, "t");
  } catch (e) {
    return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  return "parsed";
};

describe("option choices", () => {
  test("a listed value is accepted, as --flag VALUE and --flag=VALUE", () => {
    expect(parseStrict(["zsh", "--mode", "safe", "--level=2"], specs, "t")).toEqual({ shell: "zsh", mode: "safe", level: "2" });
  });

  test("any other value is a UsageError that lists the choices", () => {
    expect(fails(["bash", "--mode", "slow"])).toBe("UsageError: --mode must be one of fast, safe (got 'slow')");
    expect(fails(["fish"])).toBe("UsageError: SHELL must be one of bash, zsh (got 'fish')");
    expect(fails(["bash", "--level", "3"])).toBe("UsageError: --level must be one of 1, 2 (got '3')");
  });

  test("a missing value or argument names the choices when there is no other hint", () => {
    expect(fails(["bash", "--mode"])).toBe("UsageError: --mode needs a value (fast|safe)");
    expect(fails([])).toBe("UsageError: missing argument bash|zsh for 't'");
    expect(fails(["bash", "--level"])).toBe("UsageError: --level needs a value (N)");
  });

  test("--help shows them as the value hint", () => {
    expect(valueHintOf(specs.mode)).toBe("fast|safe");
    expect(toCittyArgs(specs).mode).toMatchObject({ type: "string", valueHint: "fast|safe" });
    expect(toCittyArgs(specs).shell).toMatchObject({ type: "positional", valueHint: "bash|zsh" });
  });

  test("--crypto and --cipher are checked by their choices", () => {
    expect(SECRET_OPTIONS.crypto.choices).toEqual(["auto", "kernel", "user"]);
    expect(() => parseStrict(["--crypto", "both"], SECRET_OPTIONS, "send")).toThrow("--crypto must be one of auto, kernel, user (got 'both')");
    expect(() => parseStrict(["--cipher", "rot13"], SECRET_OPTIONS, "send")).toThrow("--cipher must be one of aes-128-gcm, aes-256-gcm, chacha20-poly1305");
    expect(parseStrict(["--cipher", "chacha20-poly1305"], SECRET_OPTIONS, "send").cipher).toBe("chacha20-poly1305");
  });
});
