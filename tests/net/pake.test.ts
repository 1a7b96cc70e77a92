// CPace: the draft's ristretto255 test vectors, then protocol properties.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { cpaceGenerator, cpaceStart, lvCat, prependLen, transcriptIr } from "../../src/net/pake.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

// draft-irtf-cfrg-cpace, appendix "Test vector for CPace using group ristretto255 and hash SHA-512"
const TV = {
  prs: ascii("Password"),
  ci: hex("0b415f696e69746961746f720b425f726573706f6e646572"),
  sid: hex("7e4b4791d6a8ef019b936c79fb7f2c57"),
  g: "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56",
  ya: hex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08"),
  Ya: "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157",
  yb: hex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d"),
  Yb: "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258",
  ada: ascii("ADa"),
  adb: ascii("ADb"),
  iskIr:
    "b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc" +
    "ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c" +
    "3fa2068af7900447",
};

describe("CPace string helpers (draft vectors)", () => {
  test("prepend_len", () => {
    expect(toHex(prependLen(new Uint8Array(0)))).toBe("00");
    expect(toHex(prependLen(ascii("1234")))).toBe("0431323334");
    const r127 = Uint8Array.from({ length: 127 }, (_, i) => i);
    expect(toHex(prependLen(r127)).slice(0, 4)).toBe("7f00");
    const r128 = Uint8Array.from({ length: 128 }, (_, i) => i);
    expect(toHex(prependLen(r128)).slice(0, 6)).toBe("800100");
    expect(prependLen(r128).length).toBe(130);
  });
  test("lv_cat", () => {
    expect(toHex(lvCat(ascii("1234"), ascii("5"), new Uint8Array(0), ascii("678")))).toBe("043132333401350003363738");
  });
  test("transcript_ir", () => {
    expect(toHex(transcriptIr(ascii("123"), ascii("PartyA"), ascii("234"), ascii("PartyB")))).toBe(
      "03313233065061727479410332333406506172747942",
    );
    expect(toHex(transcriptIr(ascii("3456"), ascii("PartyA"), ascii("2345"), ascii("PartyB")))).toBe(
      "043334353606506172747941043233343506506172747942",
    );
  });
});

describe("CPace ristretto255 (draft vectors)", () => {
  test("generator", () => {
    expect(toHex(cpaceGenerator(TV.prs, TV.ci, TV.sid))).toBe(TV.g);
  });
  test("shares and ISK, initiator-responder", () => {
    const a = cpaceStart(TV.prs, TV.sid, TV.ci, TV.ya);
    const b = cpaceStart(TV.prs, TV.sid, TV.ci, TV.yb);
    expect(toHex(a.share)).toBe(TV.Ya);
    expect(toHex(b.share)).toBe(TV.Yb);
    const t = transcriptIr(a.share, TV.ada, b.share, TV.adb);
    expect(toHex(a.finish(b.share, t))).toBe(TV.iskIr);
    expect(toHex(b.finish(a.share, t))).toBe(TV.iskIr);
  });
});

describe("CPace properties", () => {
  const sid = crypto.getRandomValues(new Uint8Array(64));
  const ci = ascii("uring-sync/1");

  function run(secretA: string, secretB: string): [Uint8Array, Uint8Array] {
    const a = cpaceStart(ascii(secretA), sid, ci);
    const b = cpaceStart(ascii(secretB), sid, ci);
    const t = transcriptIr(a.share, ascii("A"), b.share, ascii("B"));
    return [a.finish(b.share, t), b.finish(a.share, t)];
  }

  test("same secret gives the same 64-byte ISK on both sides", () => {
    const [ka, kb] = run("correct horse", "correct horse");
    expect(ka.length).toBe(64);
    expect(toHex(ka)).toBe(toHex(kb));
  });

  test("different secrets give different ISKs", () => {
    const [ka, kb] = run("correct horse", "correct horsf");
    expect(toHex(ka)).not.toBe(toHex(kb));
  });

  test("different transcripts give different ISKs", () => {
    const a = cpaceStart(ascii("s"), sid, ci);
    const b = cpaceStart(ascii("s"), sid, ci);
    const ka = a.finish(b.share, transcriptIr(a.share, ascii("A"), b.share, ascii("B")));
    const kb = b.finish(a.share, transcriptIr(a.share, ascii("A"), b.share, ascii("X")));
    expect(toHex(ka)).not.toBe(toHex(kb));
  });

  test("shares are fresh every run, even with identical inputs", () => {
    const shares = new Set<string>();
    for (let i = 0; i < 8; i++) shares.add(toHex(cpaceStart(ascii("s"), sid, ci).share));
    expect(shares.size).toBe(8);
  });

  test("the share does not contain the secret", () => {
    const secret = ascii("a-rather-long-secret-value-0123456789");
    const s = cpaceStart(secret, sid, ci);
    expect(Buffer.from(s.share).includes(Buffer.from(secret.subarray(0, 8)))).toBe(false);
  });

  const invalid: [string, Uint8Array][] = [
    ["identity", new Uint8Array(32)],
    ["non-canonical encoding (draft Y_i1)", hex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c")],
    ["all ones", new Uint8Array(32).fill(0xff)],
    ["too short", new Uint8Array(31).fill(1)],
    ["too long", new Uint8Array(33)],
  ];
  for (const [name, bad] of invalid) {
    test(`peer share rejected: ${name}`, () => {
      const s = cpaceStart(ascii("s"), sid, ci);
      let err: unknown;
      try {
        s.finish(bad, new Uint8Array(0));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).kind).toBe("auth");
    });
  }

  test("a session finishes once", () => {
    const a = cpaceStart(ascii("s"), sid, ci);
    const b = cpaceStart(ascii("s"), sid, ci);
    a.finish(b.share, new Uint8Array(0));
    expect(() => a.finish(b.share, new Uint8Array(0))).toThrow(RangeError);
  });

  test("a failed finish also burns the scalar", () => {
    const a = cpaceStart(ascii("s"), sid, ci);
    const b = cpaceStart(ascii("s"), sid, ci);
    expect(() => a.finish(new Uint8Array(32), new Uint8Array(0))).toThrow(ProtocolError);
    expect(() => a.finish(b.share, new Uint8Array(0))).toThrow(RangeError);
  });
});
