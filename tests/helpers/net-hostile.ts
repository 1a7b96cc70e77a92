/**
 * The frame of every hostile-peer test: a case directory with DST and an "outside"
 * directory beside it, a canary directory under /tmp, a real `uring-sync recv` child, a
 * test peer (net-peer.ts) that completes the handshake honestly and then does what the
 * case says, and the checks every case shares:
 *
 *  - the receiver reports a clear error (its stderr matches the case's pattern, one line,
 *    no stack trace) and, if it exits, exits non-zero without a signal;
 *  - if it stays up instead (failed sessions may not end a receiver), it must still serve
 *    a good sender afterwards and then exit 0;
 *  - nothing was written outside DST: the case directory holds only DST and "outside",
 *    "outside" and the /tmp canaries are byte-for-byte unchanged, and named escape targets
 *    do not exist;
 *  - DST holds only what the case allows (complete, byte-correct files, expected dirs and
 *    symlinks) once the receiver has exited: no partial file under a final name, and no
 *    temporary file left behind.
 *
 * Owns: the set-up, the run and those checks. The cases themselves live in tests/hostile/.
 */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatResult, type RunResult } from "./cli.ts";
import { Peer, sendFile } from "./net-peer.ts";
import { HANDSHAKE_TIMEOUT_ENV, TEST_SECRET, expectNoCrash, receiverEnds, runSender, startReceiver, type Receiver } from "./net.ts";

export interface CaseDirs {
  /** The case directory: only dst/ and outside/ may ever exist in it. */
  base: string;
  dst: string;
  /** A directory next to DST, holding canary.txt: targets for symlinks and traversal. */
  outside: string;
  /** A canary directory under /tmp (absolute-path targets), holding canary.txt. */
  tmpCanary: string;
  /** A unique token for names in this case (escape targets are searched for it). */
  tag: string;
}

export type Allowed =
  | { type: "file"; data: Uint8Array; mode?: number }
  | { type: "dir"; mode?: number }
  | { type: "symlink"; target: string };

/** The honest file a case sends first (okFirst). */
export const OK_DATA = new TextEncoder().encode("a complete, honest file before the attack\n");
/** What DST may hold after okFirst alone. */
export const OK_ALLOWED: Record<string, Allowed> = { "ok-first.txt": { type: "file", data: OK_DATA } };

/**
 * Sends OK_DATA as ok-first.txt and demands a WANT: the attack must come after a file the
 * receiver accepted, or the error seen would not be about the attack.
 */
export async function okFirst(peer: Peer): Promise<void> {
  const answer = await sendFile(peer, { id: 1, path: "ok-first.txt", data: OK_DATA });
  if (answer !== "want") throw new Error(`the receiver did not WANT an honest first file (answer: ${answer}): the test peer and the engine disagree about the protocol\n${peer.describe()}`);
}

export interface HostileCase {
  name: string;
  /** Plaintext session (frames straight on TCP) instead of userspace TLS records. */
  plaintext?: boolean;
  /** Before the receiver starts: plant things in DST. */
  plant?: (c: CaseDirs) => void;
  /** After the honest handshake: misbehave (more connections to `rcv` if needed). The harness then waits and checks. */
  run: (peer: Peer, c: CaseDirs, rcv: Receiver) => Promise<void>;
  /** HELLO flags of the first connection (e.g. CONTINUATION, PUSH). */
  flags?: number;
  /** Receiver arguments; default --crypto user (or --plaintext when plaintext). */
  recvArgs?: string[];
  /** Extra receiver environment (e.g. URING_SYNC_IDLE_TIMEOUT_MS). */
  recvEnv?: Record<string, string>;
  /** How long the receiver may take to print its error (timeouts). Default 4 s. */
  errorWaitMs?: number;
  /** More checks at the end (receiver exited); returns problems. */
  check?: (c: CaseDirs) => string[];
  /** The receiver's clear error (stderr) for this misbehaviour. Absent: the session must succeed. */
  error?: RegExp;
  /**
   * With `error` set: "error" (default) the receiver must report it; "either" the receiver
   * may instead complete the session (exit 0), e.g. by replacing a planted symlink.
   */
  outcome?: "error" | "either";
  /**
   * What DST may contain afterwards, by relative path (parents of listed paths are implied
   * dirs); a list means any one of those.
   */
  allowed?: (c: CaseDirs) => Record<string, Allowed | Allowed[]>;
  /** Paths that must exist afterwards with exactly their allowed value (success cases). */
  required?: string[];
  /** DST-relative final names that must never exist, checked mid-run and at the end. */
  forbidden?: string[];
  /** Absolute paths that must not exist afterwards (escape targets). */
  mustNotExist?: (c: CaseDirs) => string[];
  /** How long to wait for the receiver to react after run(). Default 6 s. */
  settleMs?: number;
}

export interface HostileOutcome {
  peer: Peer;
  /** The receiver's final result. */
  recv: RunResult;
  /** Whether the receiver stayed up after the hostile session (and then served a good sender). */
  survived: boolean;
  good?: RunResult;
}

const GOOD_FILES: Record<string, string> = { "good/after.txt": "a good sender after the hostile one\n", "good/sub/second.txt": "second\n" };

function newCase(name: string): CaseDirs {
  const tag = `${name.replace(/[^a-z0-9]+/gi, "-").slice(0, 40)}-${Math.random().toString(36).slice(2, 8)}`;
  const base = mkdtempSync(`/tmp/uring-sync-hostile-${tag}-`);
  const dst = join(base, "dst");
  const outside = join(base, "outside");
  mkdirSync(dst);
  mkdirSync(outside);
  writeFileSync(join(outside, "canary.txt"), `outside canary ${tag}\n`);
  const tmpCanary = mkdtempSync(`/tmp/uring-sync-canary-${tag}-`);
  writeFileSync(join(tmpCanary, "canary.txt"), `tmp canary ${tag}\n`);
  return { base, dst, outside, tmpCanary, tag };
}

interface DirState {
  [rel: string]: string;
}

/** Everything under `root` (not following symlinks): type, mode, size, content, target, mtime. */
export function describeTree(root: string): DirState {
  const out: DirState = {};
  const walk = (rel: string): void => {
    const abs = rel === "" ? root : join(root, rel);
    const st = lstatSync(abs, { bigint: true });
    const key = rel === "" ? "." : rel;
    if (st.isSymbolicLink()) out[key] = `symlink -> ${readlinkSync(abs)}`;
    else if (st.isDirectory()) {
      out[key] = `dir ${(Number(st.mode) & 0o7777).toString(8)} mtime ${st.mtimeNs}`;
      for (const n of readdirSync(abs).sort()) walk(rel === "" ? n : `${rel}/${n}`);
    } else if (st.isFile()) {
      out[key] = `file ${(Number(st.mode) & 0o7777).toString(8)} ${st.size} mtime ${st.mtimeNs} ${readFileSync(abs).toString("base64").slice(0, 200)}`;
    } else out[key] = `special ${Number(st.mode).toString(8)}`;
  };
  walk("");
  return out;
}

/** Every entry under DST (relative paths, not following symlinks). */
function listDst(dst: string): Map<string, { kind: string; abs: string }> {
  const m = new Map<string, { kind: string; abs: string }>();
  const walk = (rel: string): void => {
    for (const n of readdirSync(rel === "" ? dst : join(dst, rel))) {
      const r = rel === "" ? n : `${rel}/${n}`;
      const abs = join(dst, r);
      const st = lstatSync(abs);
      const kind = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "special";
      m.set(r, { kind, abs });
      if (kind === "dir") walk(r);
    }
  };
  walk("");
  return m;
}

/** Problems with DST's contents against `allowed` (+ implied parent dirs); empty = fine. */
export function dstProblems(dst: string, allowed: Record<string, Allowed | Allowed[]>, required: readonly string[] = [], final = true, forbidden: readonly string[] = []): string[] {
  const problems: string[] = [];
  for (const f of forbidden) {
    let there = false;
    try {
      lstatSync(join(dst, f));
      there = true;
    } catch {
      // good
    }
    if (there) problems.push(`${JSON.stringify(f)}: exists under its final name, but the receiver must refuse it (no partial or forbidden file)`);
  }
  const impliedDirs = new Set<string>();
  for (const p of Object.keys(allowed)) {
    // Every parent of an allowed path (walking up; stop at one already known).
    for (let i = p.lastIndexOf("/"); i > 0; i = p.lastIndexOf("/", i - 1)) {
      const parent = p.slice(0, i);
      if (impliedDirs.has(parent)) break;
      impliedDirs.add(parent);
    }
  }
  const entries = listDst(dst);
  for (const [rel, e] of entries) {
    const wants = allowed[rel];
    if (wants === undefined) {
      if (e.kind === "dir" && impliedDirs.has(rel)) continue;
      // Mid-session (final = false) an unlisted name may be a temp file still in use: only
      // the forbidden names matter then. At the end nothing unlisted may remain.
      if (final) problems.push(`${JSON.stringify(rel)}: a ${e.kind} that must not be in DST (partial file under a final name, a stray temp file, or an entry the receiver should have refused)`);
      continue;
    }
    const options = Array.isArray(wants) ? wants : [wants];
    const why = options.map((w) => entryMismatch(e, w));
    if (why.every((w) => w !== undefined)) problems.push(`${JSON.stringify(rel)}: ${why.join("; or ")}`);
  }
  for (const r of required) if (!entries.has(r)) problems.push(`${JSON.stringify(r)}: missing (the receiver should have stored it)`);
  return problems;
}

/** Why entry `e` is not `want`, or undefined when it is. */
function entryMismatch(e: { kind: string; abs: string }, want: Allowed): string | undefined {
  if (want.type !== e.kind) return `a ${e.kind}, expected a ${want.type}`;
  if (want.type === "file") {
    const got = readFileSync(e.abs);
    if (!got.equals(Buffer.from(want.data))) return `${got.length} bytes that are not the ${want.data.length} bytes sent (a partial or wrong file under its final name)`;
  }
  if (want.type === "symlink" && readlinkSync(e.abs) !== want.target) return `symlink to ${readlinkSync(e.abs)}, expected ${want.target}`;
  if (want.type !== "symlink" && want.mode !== undefined) {
    const mode = lstatSync(e.abs).mode & 0o7777;
    if (mode !== want.mode) return `mode 0${mode.toString(8)}, expected 0${want.mode.toString(8)}`;
  }
  return undefined;
}

function diffState(a: DirState, b: DirState): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[k] !== b[k]) out.push(`${k}: ${a[k] ?? "(absent)"} -> ${b[k] ?? "(absent)"}`);
  }
  return out;
}

/** Search /tmp (one level) for names carrying the case tag that the case did not create. */
function strayTmpNames(c: CaseDirs): string[] {
  const mine = new Set([c.base, c.tmpCanary]);
  return readdirSync("/tmp")
    .map((n) => join("/tmp", n))
    .filter((p) => p.includes(c.tag) && !mine.has(p));
}

/**
 * Run one hostile case against a fresh receiver. Throws (failing the test) with the
 * receiver's and the peer's view when any shared check fails.
 */
export async function runHostileCase(hc: HostileCase): Promise<HostileOutcome> {
  const c = newCase(hc.name);
  let rcv: Receiver | undefined;
  let peer: Peer | undefined;
  try {
    hc.plant?.(c);
    const outsideBefore = describeTree(c.outside);
    const tmpBefore = describeTree(c.tmpCanary);
    const recvArgs = hc.recvArgs ?? (hc.plaintext ? ["--plaintext"] : ["--crypto", "user"]);
    rcv = await startReceiver({ dst: c.dst, args: recvArgs, env: { [HANDSHAKE_TIMEOUT_ENV]: "5000", ...hc.recvEnv } });
    peer = await Peer.connect(rcv.host, rcv.port);
    const hs = await peer.handshake({ secret: TEST_SECRET, plaintext: hc.plaintext, flags: hc.flags });
    if (!hs.ok) throw new Error(`the test peer could not complete an honest handshake: ${hs.error ?? "connection closed"}\n${peer.describe()}\n${rcv.describe()}`);
    await hc.run(peer, c, rcv);
    const ctx = (): string => `${peer!.describe()}\n--- receiver ---\n${rcv!.describe()}`;

    // Let the receiver react: it should send ERROR/REPORT and/or close.
    const p = peer;
    await p.waitUntil(() => p.ended || p.report !== undefined || p.errorMessage !== undefined || p.streamError !== undefined, hc.settleMs ?? 6_000);
    await p.close(1_500);
    // A failing receiver prints its error first, then exits (or stays up): wait for the
    // error, then briefly for an exit, to tell the two apart.
    if (hc.error !== undefined) await rcv.waitStderr(hc.error, hc.errorWaitMs ?? 4_000, `a clear error matching ${hc.error}`).catch((e: Error) => {
      if (hc.outcome !== "either") throw e;
    });
    let recv = await rcv.waitExit(hc.error === undefined ? 15_000 : 800);
    let survived = recv === null;
    let good: RunResult | undefined;
    const allowed = hc.allowed?.(c) ?? {};

    if (hc.error === undefined) {
      if (recv === null) throw new Error(`the session should have succeeded and the receiver exited 0; it is still running\n${ctx()}`);
      if (recv.code !== 0) throw new Error(`the session should have succeeded: receiver exit ${recv.code ?? recv.signal}\n${ctx()}`);
    } else if (hc.outcome === "either" && recv !== null && recv.code === 0) {
      // The receiver completed the session without following anything: allowed here.
    } else {
      // The clear error, whether the receiver exits or stays up.
      await rcv.waitStderr(hc.error, 1_000, `a clear error matching ${hc.error}`);
      if (recv !== null) {
        if (recv.code === 0 || recv.code === null) {
          throw new Error(`the receiver must not exit ${recv.code ?? `by signal ${recv.signal}`} after a hostile session\n${ctx()}`);
        }
      } else {
        // Still up: no partial file under a final name right now either.
        const now = dstProblems(c.dst, allowed, [], false, hc.forbidden);
        if (now.length > 0) throw new Error(`DST right after the hostile session:\n  ${now.join("\n  ")}\n${ctx()}`);
        // It must still serve a good sender, then exit 0.
        const src = mkdtempSync(`/tmp/uring-sync-good-`);
        try {
          for (const [rel, text] of Object.entries(GOOD_FILES)) {
            mkdirSync(join(src, rel, ".."), { recursive: true });
            writeFileSync(join(src, rel), text);
          }
          good = await runSender(src, rcv.address, { args: recvArgs });
          if (good.code !== 0) {
            // A receiver that was only slow to exit (non-zero) refuses the connection: that is the other branch.
            const late = await rcv.waitExit(5_000);
            if (late !== null && late.code !== 0 && late.code !== null && /refused|ECONNREFUSED|connect/i.test(good.stderr)) {
              recv = late;
              good = undefined;
              survived = false;
            } else throw new Error(`the receiver stayed up after the hostile session but then failed a good sender (exit ${good.code})\n${formatResult(good)}\n${ctx()}`);
          } else {
            recv = await receiverEnds(rcv, 15_000, good);
            if (recv.code !== 0) throw new Error(`the receiver should exit 0 after the good session, got ${recv.code ?? recv.signal}\n${ctx()}`);
          }
        } finally {
          rmSync(src, { recursive: true, force: true });
        }
        if (good !== undefined) for (const [rel, text] of Object.entries(GOOD_FILES)) allowed[rel] = { type: "file", data: new TextEncoder().encode(text) };
      }
    }
    expectNoCrash(recv.stderr, "the receiver's stderr", `${ctx()}`);

    // Nothing outside DST.
    const problems: string[] = [];
    const baseNames = readdirSync(c.base).sort();
    if (JSON.stringify(baseNames) !== JSON.stringify(["dst", "outside"])) problems.push(`beside DST: ${JSON.stringify(baseNames)} (only dst and outside may exist)`);
    for (const d of diffState(outsideBefore, describeTree(c.outside))) problems.push(`outside DST changed: ${d}`);
    for (const d of diffState(tmpBefore, describeTree(c.tmpCanary))) problems.push(`/tmp canary changed: ${d}`);
    for (const p of hc.mustNotExist?.(c) ?? []) {
      let exists = false;
      try {
        lstatSync(p);
        exists = true;
      } catch {
        // good
      }
      if (exists) problems.push(`${p} exists: written outside DST`);
    }
    for (const p of strayTmpNames(c)) problems.push(`${p}: created in /tmp`);
    problems.push(...(hc.check?.(c) ?? []));
    // DST: only allowed, complete things, and no temp files left at exit.
    problems.push(...dstProblems(c.dst, allowed, [...(hc.required ?? []), ...(good ? Object.keys(GOOD_FILES) : [])], true, hc.forbidden));
    if (problems.length > 0) throw new Error(`${hc.name}:\n  ${problems.join("\n  ")}\n--- DST ---\n${JSON.stringify(describeTree(c.dst), null, 1)}\n${ctx()}`);
    if (process.env.URING_SYNC_TEST_VERBOSE === "1") {
      const lines = recv.stderr.split("\n").filter((l) => l.trim() !== "" && !/listening on|receiving from|give this code/.test(l));
      process.stderr.write(`[hostile] ${hc.name}: receiver ${survived ? "stayed up, served a good sender, exit" : "exit"} ${recv.code}; peer saw ${peer.errorMessage !== undefined ? `ERROR ${JSON.stringify(peer.errorMessage)}` : peer.report ? `REPORT ${JSON.stringify(peer.report.failures.map((f) => f.code))}` : "no message"}\n  ${lines.slice(0, 3).join("\n  ")}\n`);
    }
    return { peer, recv, survived, good };
  } finally {
    peer?.destroy();
    if (rcv?.alive()) await rcv.stop("SIGKILL", 2_000).catch(() => undefined);
    // rm -rf: node's recursive rmSync takes ~10 s on a 2000-level deep tree.
    Bun.spawnSync(["rm", "-rf", "--", c.base, c.tmpCanary]);
  }
}
