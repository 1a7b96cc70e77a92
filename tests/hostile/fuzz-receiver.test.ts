// tests/hostile/fuzz-receiver.test.ts — seeded fuzzing of a real `uring-sync recv
// --keep-listening`: dozens of connections, each either mutating the handshake (before
// authentication) or completing it honestly (want or push mode) and then sending mutated
// valid streams (ROOT, dirs, files of DATA/HOLE ending in FILE_END/FILE_ABORT, links),
// frames with random types and lengths, or sealed random bytes. After every connection the
// receiver must still be running; at the end it must serve a good sender, have written
// nothing outside DST, never have printed a crash, and stop cleanly on SIGINT.
// Reproduce with FUZZ_SEED=<seed from the failure> bun test tests/hostile/fuzz-receiver.test.ts

import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatResult } from "../helpers/cli.ts";
import { Fuzz } from "../helpers/fuzz.ts";
import { describeTree } from "../helpers/net-hostile.ts";
import { HANDSHAKE_TIMEOUT_ENV, TEST_SECRET, expectNoCrash, killAllReceivers, runSender, startReceiver } from "../helpers/net.ts";
import {
  FLAG_PUSH,
  KIND,
  MSG_CONTINUE,
  MSG_FILE_ABORT,
  MSG_HOLE,
  MSG_REKEY,
  MSG_ROOT,
  Peer,
  concatBytes,
  dataFrame,
  fileAbortFrame,
  fileEndFrame,
  helloMessage,
  holeFrame,
  listEndFrame,
  rawEntry,
  rawFrame,
  rootFrame,
} from "../helpers/net-peer.ts";
import { MSG_DATA, MSG_ENTRY, MSG_ERROR, MSG_FILE_END, MSG_LIST_END, MSG_REPORT, MSG_SKIP, MSG_WANT } from "../../src/net/wire.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_f022) >>> 0;
const POST_AUTH = 48;
const PRE_AUTH = 16;
/** Hard budget for the connections; the test stops early rather than run long. */
const BUDGET_MS = 45_000;

afterAll(killAllReceivers);

class StreamFuzz extends Fuzz {
  /** Flip, overwrite, insert, delete, duplicate or truncate a few bytes. */
  mutate(src: Uint8Array): Uint8Array {
    let b = Array.from(src);
    for (let e = 1 + this.int(4); e > 0; e--) {
      const at = this.int(b.length + 1);
      switch (this.int(6)) {
        case 0:
          if (at < b.length) b[at] ^= 1 << this.int(8);
          break;
        case 1:
          if (at < b.length) b[at] = this.pick([0, 0xff, 0x7f, 0x80, 0x2e, 0x2f, this.int(256)]);
          break;
        case 2:
          b.splice(at, 0, ...this.bytes(1 + this.int(8)));
          break;
        case 3:
          b.splice(at, 1 + this.int(8));
          break;
        case 4:
          b = b.concat(b.slice(at, at + 1 + this.int(64)));
          break;
        default:
          b = b.slice(0, at);
      }
    }
    return Uint8Array.from(b);
  }
}

/** A plausible stream of sender frames: dirs, files with data, links, end of list. */
function validStream(f: StreamFuzz): Uint8Array[] {
  const frames: Uint8Array[] = [];
  if (f.int(3) === 0) frames.push(rootFrame(f.pick([0o755, 0o7777, 0o700]), BigInt(f.int(2 ** 31)) * 1_000_000_000n));
  let id = 1;
  const dirs = ["d", "d/e", "x y", "é"];
  for (const d of dirs.slice(0, 1 + f.int(dirs.length))) frames.push(rawEntry({ id: id++, kind: KIND.dir, mode: 0o755, path: d }));
  const fileId = id;
  for (let i = 0; i < 1 + f.int(3); i++) {
    const size = f.pick([0, 1, 100, 5000, 70_000]);
    const fid = id++;
    const path = `${f.pick(["", "d/", "d/e/"])}f${i}.bin`;
    frames.push(rawEntry({ id: fid, kind: KIND.file, mode: f.pick([0o644, 0o4755, 0o600]), size: BigInt(size), path }));
    for (let off = 0; off < size; off += 30_000) {
      const len = Math.min(30_000, size - off);
      frames.push(f.int(4) === 0 ? holeFrame(fid, BigInt(off), BigInt(len)) : dataFrame(fid, BigInt(off), f.bytes(len)));
    }
    frames.push(f.int(6) === 0 ? fileAbortFrame(fid) : fileEndFrame(fid));
  }
  frames.push(rawEntry({ id: id++, kind: KIND.symlink, mode: 0o777, path: "ln", target: f.pick(["f0.bin", "../up", "/etc/passwd", "d"]) }));
  frames.push(rawEntry({ id: id++, kind: KIND.hardlink, mode: 0o644, path: "hl", linkId: fileId }));
  frames.push(listEndFrame());
  return frames;
}

/** A frame with a random (mostly known) type, random length field and random payload. */
function randomFrame(f: StreamFuzz): Uint8Array {
  const type = f.pick([MSG_ENTRY, MSG_DATA, MSG_FILE_END, MSG_LIST_END, MSG_HOLE, MSG_FILE_ABORT, MSG_REKEY, MSG_CONTINUE, MSG_ROOT, MSG_WANT, MSG_SKIP, MSG_REPORT, MSG_ERROR, f.int(256)]);
  const payload = f.bytes(f.int(200));
  const declared = f.pick([payload.length, payload.length, f.int(1 << 16), 0xffffffff, 1024 * 1024 + 65, f.int(30)]);
  return rawFrame(type, payload, declared);
}

test(`fuzzing a real receiver: ${PRE_AUTH} mutated handshakes and ${POST_AUTH} authenticated sessions of mutated frames never crash it (seed ${SEED})`, async () => {
  const base = mkdtempSync("/tmp/uring-sync-fuzz-");
  const dst = join(base, "dst");
  const outside = join(base, "outside");
  mkdirSync(dst);
  mkdirSync(outside);
  writeFileSync(join(outside, "canary.txt"), "outside canary\n");
  const tmpCanary = mkdtempSync("/tmp/uring-sync-fuzz-canary-");
  writeFileSync(join(tmpCanary, "canary.txt"), "tmp canary\n");
  const outsideBefore = JSON.stringify(describeTree(outside));
  const tmpBefore = JSON.stringify(describeTree(tmpCanary));
  const good = mkdtempSync("/tmp/uring-sync-fuzz-good-");
  writeFileSync(join(good, "final.txt"), "the good sender at the end\n");
  const f = new StreamFuzz(SEED);
  const rcv = await startReceiver({ dst, args: ["--keep-listening", "--crypto", "user"], env: { [HANDSHAKE_TIMEOUT_ENV]: "3000" }, lifetimeMs: 150_000 });
  const started = performance.now();
  const log: string[] = [];
  try {
    const plan: ("pre" | "post")[] = [...Array<"pre">(PRE_AUTH).fill("pre"), ...Array<"post">(POST_AUTH).fill("post")];
    for (let i = plan.length - 1; i > 0; i--) {
      const j = f.int(i + 1);
      [plan[i], plan[j]] = [plan[j], plan[i]];
    }
    let ran = 0;
    for (const [k, kind] of plan.entries()) {
      if (performance.now() - started > BUDGET_MS) break;
      const connSeed = f.int(2 ** 31);
      const g = new StreamFuzz(connSeed);
      const peer = await Peer.connect(rcv.host, rcv.port);
      let what = "";
      if (kind === "pre") {
        // Mutate a real handshake opening: our HELLO and a share-shaped message.
        const opening = concatBytes([helloMessage(), Uint8Array.of(0x02, 0x00, 0x20), g.bytes(32), Uint8Array.of(0x03, 0x00, 0x20), g.bytes(32)]);
        const bytes = g.int(4) === 0 ? g.bytes(1 + g.int(600)) : g.mutate(opening);
        what = `pre-auth ${bytes.length} bytes`;
        await peer.writeRaw(bytes);
        await peer.waitClosed(300);
      } else {
        // Half the sessions in push mode (the reference sender's), half in want mode.
        const push = g.int(2) === 1;
        const hs = await peer.handshake({ secret: TEST_SECRET, flags: push ? FLAG_PUSH : 0 });
        if (!hs.ok) throw new Error(`connection ${k}: the honest handshake failed: ${hs.error}\n${peer.describe()}\n${rcv.describe()}`);
        const mode = g.int(4);
        let stream: Uint8Array;
        if (mode === 0) {
          stream = g.mutate(concatBytes(validStream(g)));
          what = "mutated valid stream";
        } else if (mode === 1) {
          const frames = validStream(g);
          const at = g.int(frames.length);
          frames[at] = g.mutate(frames[at]);
          stream = concatBytes(frames);
          what = `valid stream, frame ${at} mutated`;
        } else if (mode === 2) {
          stream = concatBytes(Array.from({ length: 1 + g.int(6) }, () => randomFrame(g)));
          what = "random frames";
        } else {
          stream = g.bytes(1 + g.int(40_000));
          what = "sealed random bytes";
        }
        what = `${push ? "push" : "want"} mode, ${what}`;
        await peer.send(stream);
        await peer.waitUntil(() => peer.ended || peer.errorMessage !== undefined || peer.report !== undefined, 400);
      }
      peer.destroy();
      log.push(`#${k} seed ${connSeed}: ${what}`);
      ran++;
      await Bun.sleep(30);
      if (!rcv.alive()) {
        const r = await rcv.result.catch((e: Error) => e.message);
        throw new Error(`the receiver died after connection #${k} (${what}; FUZZ_SEED=${SEED}, connection seed ${connSeed})\n${log.slice(-5).join("\n")}\n${typeof r === "string" ? r : formatResult(r)}`);
      }
    }
    process.stderr.write(`[fuzz-receiver] ${ran} connections in ${Math.round(performance.now() - started)} ms (seed ${SEED})\n`);
    expect(ran, "enough connections ran within the budget").toBeGreaterThanOrEqual(32);

    // Still serving: a good sender succeeds.
    const s = await runSender(good, rcv.address, { args: ["--crypto", "user"] });
    if (s.code !== 0) throw new Error(`after the fuzzing, a good sender failed (exit ${s.code})\n${formatResult(s)}\n--- receiver ---\n${rcv.describe()}`);
    expect(readFileSync(join(dst, "final.txt"), "utf8")).toBe("the good sender at the end\n");
    expect(rcv.alive(), rcv.describe()).toBe(true);
    const r = await rcv.stop("SIGINT");
    expect([0, 130], `stops cleanly on SIGINT\n${formatResult(r)}`).toContain(r.code ?? -1);
    expectNoCrash(r.stderr, "the receiver's stderr", formatResult(r));
    // Nothing outside DST.
    expect(readdirSync(base).sort(), "only dst and outside beside each other").toEqual(["dst", "outside"]);
    expect(JSON.stringify(describeTree(outside)), "outside DST unchanged").toBe(outsideBefore);
    expect(JSON.stringify(describeTree(tmpCanary)), "/tmp canary unchanged").toBe(tmpBefore);
  } finally {
    if (rcv.alive()) await rcv.stop("SIGKILL", 2_000).catch(() => undefined);
    for (const d of [base, tmpCanary, good]) rmSync(d, { recursive: true, force: true });
  }
}, 90_000);
