/**
 * Secret sources for send/recv (src/cli/secret.ts): precedence, the secret file's newline
 * rule, the --secret warning, the one-time code (format, entropy, uniqueness) and the
 * normalisation that lets a code be retyped loosely, identically on both ends.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import {
  ARGV_WARNING, chooseSecret, CODE_ALPHABET, generateCode, normalizeSecret, readSecretFile,
} from "../../src/cli/secret.ts";

const dir = mkdtempSync("/tmp/uring-sync-secret-test-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string, mode = 0o600): string => {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
};

describe("the one-time code", () => {
  test("4 groups of 5 Crockford base32 symbols: 100 bits", () => {
    const c = generateCode();
    expect(c).toMatch(/^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$/);
    expect(CODE_ALPHABET.length).toBe(32);
    expect(new Set(CODE_ALPHABET).size).toBe(32);
    expect(c.replace(/-/g, "").length * Math.log2(CODE_ALPHABET.length)).toBeGreaterThanOrEqual(100);
  });

  test("every symbol is used and codes do not repeat", () => {
    const seen = new Set<string>();
    const symbols = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const c = generateCode();
      seen.add(c);
      for (const ch of c.replace(/-/g, "")) symbols.add(ch);
    }
    expect(seen.size).toBe(2000);
    expect(symbols.size).toBe(32);
  });

  test("it maps random bytes through the low 5 bits (uniform over 32 symbols)", () => {
    const c = generateCode((n) => Uint8Array.from({ length: n }, (_, i) => i * 8 + 1));
    expect(c.replace(/-/g, "")).toBe(Array.from({ length: 20 }, (_, i) => CODE_ALPHABET[(i * 8 + 1) & 31]).join(""));
  });
});

describe("normalizeSecret", () => {
  test("a retyped code (case, spaces, no dashes, O/I/L look-alikes) becomes the canonical code", () => {
    const c = "K7Q2M-8XW4P-3J9TD-VB6RC";
    for (const typed of [c, c.toLowerCase(), c.replace(/-/g, ""), c.replace(/-/g, " "), ` ${c} `, "k7q2m8xw4p3j9tdvb6rc"]) {
      expect(normalizeSecret(typed), typed).toBe(c);
    }
    expect(normalizeSecret("00000-11111-00000-11111")).toBe("00000-11111-00000-11111");
    expect(normalizeSecret("OOOOO-IIIII-ooooo-lllll")).toBe("00000-11111-00000-11111");
  });

  test("anything that is not a code is left exactly as it is (spaces included)", () => {
    for (const s of ["hunter2", " padded ", "correct horse battery staple", "K7Q2M-8XW4P-3J9TD-VB6R", "K7Q2M-8XW4P-3J9TD-VB6RCX", "U7Q2M-8XW4P-3J9TD-VB6RC", "é"]) {
      expect(normalizeSecret(s)).toBe(s);
    }
  });
});

describe("readSecretFile", () => {
  test("one trailing LF or CRLF is dropped, nothing else", () => {
    expect(readSecretFile(file("a", "s3cret\n")).secret).toBe("s3cret");
    expect(readSecretFile(file("b", "s3cret\r\n")).secret).toBe("s3cret");
    expect(readSecretFile(file("c", "s3cret\n\n")).secret).toBe("s3cret\n");
    expect(readSecretFile(file("d", " spaced secret ")).secret).toBe(" spaced secret ");
  });

  test("empty, missing and directory paths are usage errors; a group/world-readable file warns", () => {
    expect(() => readSecretFile(file("e", "\n"))).toThrow(/empty/);
    expect(() => readSecretFile(join(dir, "missing"))).toThrow(UsageError);
    const sub = join(dir, "sub");
    mkdirSync(sub, { recursive: true });
    expect(() => readSecretFile(sub)).toThrow(/directory/);
    expect(readSecretFile(file("f", "x", 0o644)).warnings.join(" ")).toMatch(/readable by other users/);
    expect(readSecretFile(file("g", "x", 0o600)).warnings).toEqual([]);
  });
});

describe("chooseSecret", () => {
  const base = { stdinIsTTY: false } as const;

  test("precedence: --secret-file, then --secret (with the argv warning), then the environment", async () => {
    const f = file("p", "from-file\n");
    expect(await chooseSecret({ ...base, role: "send", file: f, env: "from-env" })).toMatchObject({ secret: "from-file", source: "file" });
    const a = await chooseSecret({ ...base, role: "recv", argv: "from-argv", env: "from-env" });
    expect(a).toMatchObject({ secret: "from-argv", source: "argv" });
    expect(a.warnings).toEqual([ARGV_WARNING]);
    expect(ARGV_WARNING).toMatch(/other local users/);
    expect(await chooseSecret({ ...base, role: "send", env: "from-env" })).toMatchObject({ secret: "from-env", source: "env", warnings: [] });
    await expect(chooseSecret({ ...base, role: "send", file: f, argv: "x" })).rejects.toThrow(/not both/);
    await expect(chooseSecret({ ...base, role: "send", argv: "" })).rejects.toThrow(/empty/);
  });

  test("nothing given: recv generates a fresh code; send without a terminal fails clearly", async () => {
    const r1 = await chooseSecret({ ...base, role: "recv", env: "" });
    const r2 = await chooseSecret({ ...base, role: "recv" });
    expect(r1.source).toBe("generated");
    expect(r1.secret).toMatch(/^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
    expect(r1.secret).not.toBe(r2.secret);
    await expect(chooseSecret({ ...base, role: "send" })).rejects.toThrow(/URING_SYNC_SECRET.*--secret-file/);
  });

  test("send on a terminal asks, and a typed code is normalised like the receiver's", async () => {
    let asked = "";
    const r = await chooseSecret({
      role: "send", stdinIsTTY: true,
      prompt: async (q) => {
        asked = q;
        return "k7q2m 8xw4p 3j9td vb6rc";
      },
    });
    expect(asked).toMatch(/code/i);
    expect(r).toMatchObject({ secret: "K7Q2M-8XW4P-3J9TD-VB6RC", source: "prompt" });
    await expect(chooseSecret({ role: "send", stdinIsTTY: true, prompt: async () => "" })).rejects.toThrow(UsageError);
  });
});
