// bench/net.ts — the network benchmark over loopback: starts its own sshd and rsync
// daemon (throwaway keys, temp config), then runs rsync -a over ssh (default cipher and
// aes128-gcm), the rsync daemon, tar | ssh tar, and uring-sync send/recv (encrypted and
// --plaintext) on the same data in the same run, alternating tools run by run; reports
// medians and ratios to rsync over ssh and rewrites the net section of bench/RESULTS.md.
// Named scenarios (--scenario) add the sync measurements of issue 5: re-runs of an
// unchanged tree and of a tree with 1% of files changed (destinations kept between runs),
// -j 1 vs -j 2, and transfers through a delaying TCP proxy (scripts/delay-proxy.ts); they
// go to the net-sync section of bench/RESULTS.md.
// Usage: bun bench/net.ts --help

import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { DATASETS, DATASET_NAMES, DEFAULT_SEED, isDatasetName, type DatasetName } from "./lib/datasets.ts";
import { DelayProxy } from "../scripts/delay-proxy.ts";
import { applyChanges, changeSet, checkRestored } from "./lib/changes.ts";
import { treeStats } from "./lib/verify.ts";
import {
  FS_HELP,
  FS_OPTIONS,
  RUN_OPTIONS,
  rebuildNote,
  runSettings,
  REPO_ROOT,
  dstRoot,
  makeLogger,
  parseGen,
  parsePositiveInt,
  prepareDatasets,
  selectFs,
  splitFlags,
  uringSyncCommand,
  type UringCommand,
} from "./lib/cli.ts";
import { CompetitorFailure, expectedStats, renderCommands, renderTable, runRounds, type Tool, type ToolOutcome } from "./lib/harness.ts";
import { busyProcesses, commandLine, formatMachine, loadAvg, machineInfo, toolVersions } from "./lib/machine.ts";
import { dumpJson, entryFor, type SetReport } from "./lib/report.ts";
import { updateSection } from "./lib/results.ts";
import { addCleanup, failureNote, interrupted, pipeline, removeCleanup, removeTree, shellJoin, sleep, spawnBackground, stopProcess, timedRun, type RunResult } from "./lib/run.ts";
import { isListening, startServers, waitListening, type Servers } from "./lib/servers.ts";

const BASELINE = "rsync-ssh";
const COMPETITORS = ["rsync-ssh", "rsync-ssh-aes", "rsyncd", "tar-ssh"] as const;

/** The named scenarios; "transfer" is the plain benchmark above (net section). */
const SCENARIOS = ["transfer", "rerun", "changed1", "streams", "latency"] as const;
type Scenario = (typeof SCENARIOS)[number];
type SyncScenario = Exclude<Scenario, "transfer">;

interface ScenarioDef {
  id: SyncScenario;
  /** Entry title prefix in RESULTS.md. */
  title: string;
  /** The data set it runs on (--scenario-set overrides, for trials). */
  set: DatasetName;
  /** What is measured, for the section header. */
  what: string;
}

const SCENARIO_DEFS: Readonly<Record<SyncScenario, ScenarioDef>> = {
  rerun: {
    id: "rerun",
    title: "Re-run, nothing changed",
    set: "small100k",
    what: "each tool's destination is filled once by its own untimed run, then every timed run is a re-run into it with nothing to transfer; uring-sync vs `rsync -a` over ssh; issue target: uring-sync at least 3x faster (ratio ≤ 0.33)",
  },
  changed1: {
    id: "changed1",
    title: "Re-run after 1% of files changed",
    set: "small100k",
    what: "as rerun, but before each run (untimed) the same deterministic 1% of the files (another 1% each round) are modified in each tool's destination: first 64 bytes inverted, size kept, mtime moved +1 h; after the run every changed file must equal the source again (bytes and mtime)",
  },
  streams: {
    id: "streams",
    title: "Parallel streams",
    set: "large8",
    what: "uring-sync `send -j 1` vs `send -j 2` (the receiver needs no option), destination deleted between runs; ratio to `-j 1`",
  },
  latency: {
    id: "latency",
    title: "Through a delaying proxy",
    set: "medium10k",
    what: "uring-sync and `rsync -a` over ssh both connect through scripts/delay-proxy.ts (the same added latency each way for both; connection setup not delayed; the proxy runs in the benchmark's own process, and its CPU time is paid by both tools alike), destination deleted between runs",
  },
};

const HELP = `Usage: bun bench/net.ts [options]

Network transfer over loopback (both ends on this machine): uring-sync send/recv vs
rsync -a over ssh (default cipher and aes128-gcm), the rsync daemon and tar | ssh tar.
Starts its own sshd and rsync daemon with throwaway keys and stops them at exit.
Ratios are to rsync -a over ssh with the default cipher.

  --scenario a,b,...    what to measure (default transfer; "all" = every scenario):
      transfer          the full transfer of --sets by every tool (net section of RESULTS.md)
      rerun             small100k re-run with nothing changed: uring-sync vs rsync over ssh,
                        each tool's DST filled once (untimed) and kept; target ratio <= 0.33
      changed1          small100k re-run after 1% of the files changed in each tool's DST
                        (the same files for both tools, another 1% every round)
      streams           large8: uring-sync -j 1 vs -j 2 ("n/a" rows if the CLI rejects -j)
      latency           medium10k through a TCP proxy adding --delay-ms each way:
                        uring-sync vs rsync over ssh (ssh goes through the proxy too)
                        (all but transfer go to the net-sync section of RESULTS.md)
  --delay-ms N          one-way delay of the latency scenario's proxy (default 20)
  --change-percent P    share of files the changed1 scenario modifies (default 1)
  --scenario-set NAME   run every selected scenario (not transfer) on this data set instead of
                        its own, for quick trials (not comparable with the recorded entries)
  --sets a,b,...        data sets of the transfer scenario (default small10k,medium10k,large8,small100k;
                        "all" = every set) ${DATASET_NAMES.join(", ")}
  --mode warm|cold|both (default warm)
  --runs N              timed runs per tool and data set (default 5)
  --warmup N            untimed rounds first (default 1; every tool once; verified)
  --tools a,b,...       subset of: uring-sync,uring-sync-plain,${COMPETITORS.join(",")} (default all;
                        the transfer scenario only)
  --uring-flags FLAGS   extra flags for both uring-sync ends, e.g. "-j 2"
  --ssh-port N          sshd port on 127.0.0.1 (default 2222)
  --rsyncd-port N       rsync daemon port on 127.0.0.1 (default 8730)
  --port N              uring-sync receiver port on 127.0.0.1 (default 7440)
  --results PATH        results file (default bench/RESULTS.md); --no-results to skip writing
  --no-snapshot         run dist/uring-sync in place (default: run a private copy taken at
                        the start, so a rebuild during the run cannot mix versions)
  --timeout SEC         kill a run after SEC seconds (default 1800)
  --trim-every N        fstrim every N rounds on ext4 (default 1)

uring-sync ($URING_SYNC_BIN, else dist/uring-sync, else bun src/cli/main.ts):
  receiver: <bin> recv DST --listen 127.0.0.1:PORT --quiet [--plaintext]  (started first,
            untimed until it listens)
  sender:   <bin> send SRC 127.0.0.1:PORT --quiet [--plaintext]   (PORT of the proxy in
            the latency scenario)
  secret in $URING_SYNC_SECRET (random per benchmark run); time = sender start to
  receiver exit. If uring-sync fails, its rows are skipped with a note; a competitor
  failure aborts. Re-run scenarios verify every run (counts, bytes, sampled contents).

${FS_HELP}`;

/** ssh options of the benchmark sshd, pointed at another port (the delaying proxy in front of it). */
function sshArgsVia(sv: Servers, port: number): string[] {
  const a = [...sv.sshArgs];
  const i = a.indexOf("-p");
  if (i < 0) throw new Error("internal: the benchmark ssh options have no -p");
  a[i + 1] = String(port);
  return a;
}

function rsyncSshTool(sv: Servers, timeoutMs: number, via?: { port: number; note: string }): Tool {
  const sshCmd = shellJoin(["ssh", ...(via ? sshArgsVia(sv, via.port) : sv.sshArgs)]);
  const host = "root@127.0.0.1";
  return {
    id: "rsync-ssh",
    label: `rsync -a over ssh (${sv.defaultCipher.replace("@openssh.com", "")})${via ? " via proxy" : ""}`,
    display: `rsync -a -e 'ssh -p ${via ? via.port : sv.sshPort} ...' SRC/ ${host}:DST/${via ? `   (port ${via.port} = ${via.note} -> sshd :${sv.sshPort})` : ""}`,
    optional: false,
    run: (src, dst) => timedRun(["rsync", "-a", "-e", sshCmd, `${src}/`, `${host}:${dst}/`], { timeoutMs }),
  };
}

function competitorTools(sv: Servers, timeoutMs: number): Tool[] {
  const o = { timeoutMs };
  const aesCmd = shellJoin(["ssh", ...sv.sshArgs, "-c", "aes128-gcm@openssh.com"]);
  const host = "root@127.0.0.1";
  return [
    rsyncSshTool(sv, timeoutMs),
    {
      id: "rsync-ssh-aes",
      label: "rsync -a over ssh (aes128-gcm)",
      display: `rsync -a -e 'ssh -p ${sv.sshPort} -c aes128-gcm@openssh.com ...' SRC/ ${host}:DST/`,
      optional: false,
      run: (src, dst) => timedRun(["rsync", "-a", "-e", aesCmd, `${src}/`, `${host}:${dst}/`], o),
    },
    {
      id: "rsyncd",
      label: "rsync daemon (no encryption)",
      display: `rsync -a SRC/ rsync://127.0.0.1:${sv.rsyncdPort}/${sv.rsyncModule}/rsyncd/   (module path = the destination root)`,
      optional: false,
      run: (src, dst) =>
        timedRun(["rsync", "-a", `${src}/`, `rsync://127.0.0.1:${sv.rsyncdPort}/${sv.rsyncModule}/${dst.split("/").pop() ?? ""}/`], o),
    },
    {
      id: "tar-ssh",
      label: "tar | ssh tar",
      display: `tar -C SRC -cf - . | ssh -p ${sv.sshPort} ... ${host} tar -C DST -xf -   (DST made before timing)`,
      optional: false,
      prepare: (dst) => mkdirSync(dst, { recursive: true }),
      run: (src, dst) =>
        timedRun(pipeline(["tar", "-C", src, "-cf", "-", "."], ["ssh", ...sv.sshArgs, host, shellJoin(["tar", "-C", dst, "-xf", "-"])]), o),
    },
  ];
}

function failed(argv: string[], stderr: string, exitCode: number | null, seconds = 0, timedOut = false): RunResult {
  return { argv, seconds, exitCode: exitCode === 0 ? 1 : exitCode, signal: null, timedOut, stderr };
}

/**
 * One uring-sync transfer: receiver on `port` first (untimed until it listens), then the
 * sender, connecting to `sendPort` (the receiver's port, or a proxy in front of it).
 */
async function uringTransfer(
  bin: UringCommand,
  src: string,
  dst: string,
  port: number,
  sendPort: number,
  flags: string[],
  secret: string,
  timeoutMs: number,
  sendFlags: string[] = [],
): Promise<RunResult> {
  const env = { URING_SYNC_SECRET: secret };
  const recvArgv = [...bin.argv, "recv", dst, "--listen", `127.0.0.1:${port}`, "--quiet", ...flags];
  const sendArgv = [...bin.argv, "send", src, `127.0.0.1:${sendPort}`, "--quiet", ...flags, ...sendFlags];
  if (isListening(port)) return failed(recvArgv, `port ${port} is already in use (use --port)`, 1);
  const recv = spawnBackground(recvArgv, { env });
  if (!(await waitListening(port, recv, 15_000))) {
    recv.proc.kill("SIGKILL");
    const d = await recv.done;
    return failed(recvArgv, `recv: ${d.stderr.trim() || "did not listen within 15 s"}`, d.exitCode);
  }
  const t0 = performance.now();
  const send = spawnBackground(sendArgv, { env });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    send.proc.kill("SIGKILL");
    recv.proc.kill("SIGKILL");
  }, timeoutMs);
  const s = await send.done;
  if (s.exitCode !== 0) {
    // Give the receiver a moment to notice, then make sure it is gone.
    const r = await Promise.race([recv.done, sleep(2000).then(() => undefined)]);
    if (r === undefined) await stopProcess(recv, 1000);
    clearTimeout(timer);
    const rd = await recv.done;
    return failed(sendArgv, `send: ${s.stderr.trim() || `exit ${s.exitCode ?? s.signal}`}; recv: ${rd.stderr.trim()}`, s.exitCode, 0, timedOut);
  }
  const r = await recv.done;
  clearTimeout(timer);
  const seconds = (r.at - t0) / 1000;
  if (r.exitCode !== 0) return failed(recvArgv, `recv: ${r.stderr.trim() || `exit ${r.exitCode ?? r.signal}`}`, r.exitCode, seconds, timedOut);
  return { argv: sendArgv, seconds, exitCode: 0, signal: null, timedOut: false, stderr: `${s.stderr}${r.stderr}` };
}

interface UringToolOptions {
  id: string;
  label: string;
  /** Flags for both ends. */
  flags: string[];
  port: number;
  /** Where the sender connects, when not straight to the receiver; `note` names it in the display. */
  via?: { port: number; note: string };
  secret: string;
  timeoutMs: number;
  /** Options for the sender only (send -j: the receiver takes any number of streams without one). */
  sendFlags?: string[];
}

function uringTool(o: UringToolOptions): Tool {
  const bin = uringSyncCommand();
  const f = o.flags.length > 0 ? ` ${o.flags.join(" ")}` : "";
  const sf = o.sendFlags !== undefined && o.sendFlags.length > 0 ? ` ${o.sendFlags.join(" ")}` : "";
  const sendPort = o.via?.port ?? o.port;
  return {
    id: o.id,
    label: o.label,
    display: `${bin.display} recv DST --listen 127.0.0.1:${o.port} --quiet${f} & ${bin.display} send SRC 127.0.0.1:${sendPort} --quiet${f}${sf}${o.via ? `   (port ${sendPort} = ${o.via.note} -> :${o.port})` : ""}`,
    optional: true,
    run: (src, dst) => uringTransfer(bin, src, dst, o.port, sendPort, o.flags, o.secret, o.timeoutMs, o.sendFlags),
  };
}

function uringTools(port: number, flagStr: string, secret: string, timeoutMs: number): Tool[] {
  const flags = splitFlags(flagStr);
  const sfx = flags.length > 0 ? ` ${flags.join(" ")}` : "";
  return [
    uringTool({ id: "uring-sync", label: `uring-sync (encrypted)${sfx}`, flags, port, secret, timeoutMs }),
    uringTool({ id: "uring-sync-plain", label: `uring-sync --plaintext${sfx}`, flags: [...flags, "--plaintext"], port, secret, timeoutMs }),
  ];
}

/**
 * Whether both uring-sync ends accept `flags`: one tiny transfer. undefined when they do,
 * else the failure in one line (for the "n/a" rows).
 */
async function probeFlags(flags: string[], port: number, secret: string, scratch: string, sendFlags: string[] = []): Promise<string | undefined> {
  const src = `${scratch}/probe-src`;
  const dst = `${scratch}/probe-dst`;
  for (const d of [src, dst]) removeTree(d);
  mkdirSync(`${src}/d`, { recursive: true });
  await Bun.write(`${src}/d/f`, "probe\n");
  const r = await uringTransfer(uringSyncCommand(), src, dst, port, port, flags, secret, 60_000, sendFlags);
  for (const d of [src, dst]) removeTree(d);
  return r.exitCode === 0 && !r.timedOut ? undefined : failureNote(r);
}

interface ScenarioReport extends SetReport {
  def: ScenarioDef;
  tools: Tool[];
  delayMs?: number;
}

interface Context {
  fs: ReturnType<typeof selectFs>;
  dstDir: string;
  sv: Servers;
  port: number;
  secret: string;
  timeoutMs: number;
  uringFlags: string[];
  runs: number;
  warmup: number;
  trimEvery: number;
  delayMs: number;
  changeFraction: number;
  seed: number;
  log: (m: string) => void;
}

/** Starts a delaying proxy for the length of one scenario; stopped on interruption too. */
async function startProxy(targetPort: number, delayMs: number): Promise<{ proxy: DelayProxy; stop: () => Promise<void> }> {
  const proxy = new DelayProxy({ targetHost: "127.0.0.1", targetPort, delayMs });
  await proxy.start();
  const stop = async (): Promise<void> => {
    removeCleanup(stop);
    await proxy.stop();
  };
  addCleanup(stop);
  return { proxy, stop };
}

/** Runs one sync scenario on one cache mode; returns its report (table included). */
async function runScenario(
  def: ScenarioDef,
  set: DatasetName,
  d: { dir: string; marker: { files: number; dirs: number; bytes: number } },
  mode: "warm" | "cold",
  c: Context,
): Promise<ScenarioReport> {
  const expected = expectedStats(d.dir, d.marker);
  const fl = c.uringFlags;
  const sfx = fl.length > 0 ? ` ${fl.join(" ")}` : "";
  const startedAt = new Date().toISOString();
  const loadBefore = loadAvg();
  const busy = busyProcesses();
  if (busy.length > 0) c.log(`warning: the machine is busy (${busy.join(", ")}); expect noise`);
  const t0 = performance.now();
  const base = { src: d.dir, dstRoot: join(c.dstDir, def.id), mode, expected, fs: c.fs, trimEvery: c.trimEvery, log: c.log, runs: c.runs, warmup: c.warmup };
  const title = `${def.id} ${set}`;
  let tools: Tool[];
  let outcomes: ToolOutcome[];
  let baselineId = BASELINE;
  let baselineLabel = "rsync over ssh";
  let target: (t: Tool) => number | undefined = () => undefined;
  const stops: (() => Promise<void>)[] = [];
  try {
    if (def.id === "rerun" || def.id === "changed1") {
      tools = [uringTool({ id: "uring-sync", label: `uring-sync (encrypted)${sfx}`, flags: fl, port: c.port, secret: c.secret, timeoutMs: c.timeoutMs }), rsyncSshTool(c.sv, c.timeoutMs)];
      if (def.id === "rerun") target = (t) => (t.id === "uring-sync" ? 1 / 3 : undefined);
      let files: string[] = [];
      let current: string[] = [];
      let currentRound = Number.NaN;
      if (def.id === "changed1") {
        treeStats(d.dir, files);
        files = files.sort();
      }
      // The same change set for every tool of a round (computed once per round).
      const setFor = (round: number): string[] => {
        if (round !== currentRound) {
          current = changeSet(files, c.changeFraction, c.seed, round);
          currentRound = round;
        }
        return current;
      };
      outcomes = await runRounds({
        ...base,
        title,
        tools,
        keepDst: true,
        beforeRun: def.id === "changed1" ? (_t, dst, round) => applyChanges(d.dir, dst, setFor(round)) : undefined,
        afterRun: def.id === "changed1" ? (_t, dst, round) => checkRestored(d.dir, dst, setFor(round)) : undefined,
      });
    } else if (def.id === "streams") {
      tools = [1, 2].map((j) =>
        uringTool({ id: `uring-sync-j${j}`, label: `uring-sync (encrypted) -j ${j}${sfx}`, flags: fl, sendFlags: ["-j", String(j)], port: c.port, secret: c.secret, timeoutMs: c.timeoutMs }),
      );
      baselineId = "uring-sync-j1";
      baselineLabel = "-j 1";
      const probe = await probeFlags(fl, c.port, c.secret, c.dstDir, ["-j", "2"]);
      if (probe !== undefined) {
        const why = /-j\b|unknown option|unexpected|not supported|unrecognized/i.test(probe) ? `n/a: -j not supported (${probe})` : `n/a: the -j 2 probe failed (${probe})`;
        c.log(`streams: ${why}`);
        outcomes = tools.map((tool) => ({ tool, samples: [], skipped: why }));
      } else {
        outcomes = await runRounds({ ...base, title, tools });
      }
    } else {
      const up = await startProxy(c.port, c.delayMs);
      stops.push(up.stop);
      const sshp = await startProxy(c.sv.sshPort, c.delayMs);
      stops.push(sshp.stop);
      const note = `delay proxy +${c.delayMs} ms each way`;
      tools = [
        uringTool({ id: "uring-sync", label: `uring-sync (encrypted)${sfx} via proxy`, flags: fl, port: c.port, via: { port: up.proxy.port, note }, secret: c.secret, timeoutMs: c.timeoutMs }),
        rsyncSshTool(c.sv, c.timeoutMs, { port: sshp.proxy.port, note }),
      ];
      outcomes = await runRounds({ ...base, title, tools });
    }
  } finally {
    for (const s of stops) await s();
  }
  const table = renderTable(outcomes, baselineId, baselineLabel, target);
  return {
    def,
    scenario: def.id,
    tools,
    delayMs: def.id === "latency" ? c.delayMs : undefined,
    set,
    mode,
    stats: expected,
    outcomes,
    table,
    startedAt,
    seconds: (performance.now() - t0) / 1000,
    loadBefore,
    loadAfter: loadAvg(),
  };
}

function parseScenarios(s: string): Scenario[] {
  if (s.trim() === "all") return [...SCENARIOS];
  const names = s.split(",").map((x) => x.trim()).filter((x) => x.length > 0);
  for (const n of names) {
    if (!(SCENARIOS as readonly string[]).includes(n)) throw new Error(`unknown scenario ${JSON.stringify(n)}; known: ${SCENARIOS.join(", ")}, all`);
  }
  if (names.length === 0) throw new Error("--scenario selected nothing");
  return [...new Set(names)] as Scenario[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...FS_OPTIONS,
      ...RUN_OPTIONS,
      "uring-flags": { type: "string", default: "" },
      "ssh-port": { type: "string", default: "2222" },
      "rsyncd-port": { type: "string", default: "8730" },
      port: { type: "string", default: "7440" },
      scenario: { type: "string", default: "transfer" },
      "delay-ms": { type: "string", default: "20" },
      "change-percent": { type: "string", default: "1" },
      "scenario-set": { type: "string" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const log = makeLogger();
  const { sets, modes, runs, warmup, timeoutMs, trimEvery } = runSettings(values);
  const port = parsePositiveInt("--port", values.port);
  const scenarios = parseScenarios(values.scenario);
  const syncScenarios = scenarios.filter((s): s is SyncScenario => s !== "transfer").map((s) => SCENARIO_DEFS[s]);
  const delayMs = Number(values["delay-ms"]);
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error(`--delay-ms expects a non-negative number, got ${JSON.stringify(values["delay-ms"])}`);
  const changePercent = Number(values["change-percent"]);
  if (!(changePercent > 0 && changePercent <= 100)) throw new Error(`--change-percent expects a number in (0, 100], got ${JSON.stringify(values["change-percent"])}`);
  const override = values["scenario-set"];
  if (override !== undefined && !isDatasetName(override)) throw new Error(`--scenario-set: unknown data set ${JSON.stringify(override)}; known: ${DATASET_NAMES.join(", ")}`);
  const scenarioSet = (def: ScenarioDef): DatasetName => (override as DatasetName | undefined) ?? def.set;
  const transferSets = scenarios.includes("transfer") ? sets : [];
  const allSets = [...new Set([...transferSets, ...syncScenarios.map(scenarioSet)])];

  const command = commandLine(REPO_ROOT);
  const us = uringSyncCommand({ snapshot: !values["no-snapshot"] });
  log(`uring-sync: ${us.display} (${us.identity})${us.snapshot ? `, running a snapshot copy: ${us.snapshot}` : ""}`);
  const notes = new Map<string, string>();
  const fs = selectFs(values);
  const machine = formatMachine(machineInfo());
  log(`file system: ${fs.description}`);
  log(`machine: ${machine}`);
  const gen = parseGen(values);
  const data = prepareDatasets(fs, allSets, { ...gen, regen: values.regen }, log);
  const dstDir = dstRoot(fs, "net");
  mkdirSync(dstDir, { recursive: true });

  const sv = await startServers({
    sshPort: parsePositiveInt("--ssh-port", values["ssh-port"]),
    rsyncdPort: parsePositiveInt("--rsyncd-port", values["rsyncd-port"]),
    dstRoot: dstDir,
  });
  log(`sshd on 127.0.0.1:${sv.sshPort} (default cipher ${sv.defaultCipher}), rsync daemon on 127.0.0.1:${sv.rsyncdPort}, keys in ${sv.tmp}`);

  const secret = randomBytes(16).toString("hex");
  const reports: SetReport[] = [];
  const syncReports: ScenarioReport[] = [];
  const tStart = performance.now();
  let tools: Tool[] = [];
  try {
    tools = [...uringTools(port, values["uring-flags"], secret, timeoutMs), ...competitorTools(sv, timeoutMs)];
    if (values.tools !== undefined) {
      const want = new Set(values.tools.split(",").map((s) => s.trim()));
      tools = tools.filter((t) => want.has(t.id));
      if (tools.length === 0) throw new Error(`--tools selected nothing`);
    }
    for (const set of transferSets) {
      const d = data.get(set);
      if (d === undefined) continue;
      const expected = expectedStats(d.dir, d.marker);
      for (const mode of modes) {
        const startedAt = new Date().toISOString();
        const loadBefore = loadAvg();
        const busy = busyProcesses();
        if (busy.length > 0) log(`warning: the machine is busy (${busy.join(", ")}); expect noise`);
        const t0 = performance.now();
        log(`${set} ${mode}: ${tools.map((t) => t.label).join(", ")}; ${runs} runs each`);
        const outcomes = await runRounds({
          title: set,
          tools,
          src: d.dir,
          dstRoot: dstDir,
          runs,
          warmup,
          mode,
          expected,
          fs,
          trimEvery,
          log,
        });
        const table = renderTable(outcomes, BASELINE, "rsync over ssh", () => undefined);
        const seconds = (performance.now() - t0) / 1000;
        reports.push({ set, mode, stats: expected, outcomes, table, startedAt, seconds, loadBefore, loadAfter: loadAvg() });
        const note = rebuildNote(us);
        if (note !== undefined) {
          notes.set(`${set}:${mode}`, note);
          log(`warning: ${note}`);
        }
        console.log(`\n### ${set} (${DATASETS[set].description}), ${mode} cache, ${fs.kind}, loopback\n\n${table}\n`);
        log(`${set} ${mode} took ${seconds.toFixed(1)} s`);
      }
    }
    const ctx: Context = {
      fs,
      dstDir,
      sv,
      port,
      secret,
      timeoutMs,
      uringFlags: splitFlags(values["uring-flags"]),
      runs,
      warmup,
      trimEvery,
      delayMs,
      changeFraction: changePercent / 100,
      seed: gen.seed ?? DEFAULT_SEED,
      log,
    };
    for (const def of syncScenarios) {
      const set = scenarioSet(def);
      const d = data.get(set);
      if (d === undefined) continue;
      for (const mode of modes) {
        log(`scenario ${def.id} on ${set}, ${mode}; ${runs} runs each`);
        const r = await runScenario(def, set, d, mode, ctx);
        syncReports.push(r);
        const note = rebuildNote(us);
        if (note !== undefined) {
          notes.set(`${def.id}:${set}:${mode}`, note);
          log(`warning: ${note}`);
        }
        console.log(`\n### ${def.title}: ${set} (${DATASETS[set].description}), ${mode} cache, ${fs.kind}${def.id === "latency" ? `, +${delayMs} ms each way` : ""}\n\n${r.table}\n`);
        log(`scenario ${def.id} ${set} ${mode} took ${r.seconds.toFixed(1)} s`);
      }
    }
  } catch (e) {
    if (interrupted() !== undefined) return; // the signal handler stops everything and exits
    await sv.stop();
    if (e instanceof CompetitorFailure) {
      console.error(`\nABORTED: a competitor failed, so no comparison is valid.\n${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  await sv.stop();
  log(`all benchmarks took ${((performance.now() - tStart) / 1000).toFixed(1)} s; servers stopped`);
  if (reports.length > 0) log(`raw samples: ${dumpJson(REPO_ROOT, "net", { command, fs, reports })}`);
  if (syncReports.length > 0) log(`raw samples: ${dumpJson(REPO_ROOT, "net-sync", { command, fs, reports: syncReports })}`);
  if (values["no-results"]) return;
  const extra = `uring-sync: \`${us.display}\` (${us.identity})`;
  if (reports.length > 0) {
    const header = [
      "## Network transfer over loopback (bench/net.ts)",
      "",
      "Generated by `bench/net.ts`; each entry below is replaced when the same data set, cache mode and file system is measured again.",
      "Both ends run on the same 2-core machine over 127.0.0.1 (sender and receiver compete for the CPUs), source and destination on the same file system.",
      "Wall seconds per run (lower is better): median, min and max over the runs; ratio = median / median of `rsync -a` over ssh with the default cipher, measured in the same run.",
      "uring-sync is timed from the sender's start to the receiver's exit (the receiver is started and listening before the clock starts).",
      "Warm: `sync` before each run; cold: `sync; echo 3 > /proc/sys/vm/drop_caches`. The destination is deleted (untimed) between runs; one untimed warm-up round first; each tool's first copy is verified.",
      `sshd: OpenSSH on 127.0.0.1:${sv.sshPort} with a throwaway ed25519 key, default cipher negotiated: ${sv.defaultCipher}; rsync daemon: \`use chroot = no\`.`,
      "",
      "Commands:",
      "",
      renderCommands(tools),
      "",
      `Last run: ${toolVersions(["rsync", "tar", "ssh"])}.`,
    ].join("\n");
    updateSection(values.results, "net", header, reports.map((r) => {
        const note = notes.get(`${r.set}:${r.mode}`);
        return entryFor(r, fs, { command, machine, runs, warmup, extra: note ? `${extra}; NOTE: ${note}` : extra });
      }));
    log(`updated the net section of ${values.results}`);
  }
  if (syncReports.length > 0) {
    const header = [
      "## Network sync scenarios over loopback (bench/net.ts --scenario)",
      "",
      "Generated by `bench/net.ts --scenario rerun,changed1,streams,latency`; each entry is replaced when the same scenario, data set, cache mode and file system is measured again.",
      "Same machine, servers, timing and alternation as the network transfer section; wall seconds per run (lower is better), ratio = median / the baseline's median in the same run.",
      "",
      ...syncScenarios.map((d) => `- **${d.id}** (${d.title}, ${d.set} unless the entry says otherwise): ${d.what}.`),
      "",
      `Last run: ${toolVersions(["rsync", "ssh"])}.`,
    ].join("\n");
    updateSection(values.results, "net-sync", header, syncReports.map((r) => {
        const note = notes.get(`${r.def.id}:${r.set}:${r.mode}`);
        const parts = [extra];
        if (r.delayMs !== undefined) parts.push(`proxy delay ${r.delayMs} ms each way`);
        if (r.def.id === "changed1") parts.push(`${changePercent}% of files changed per run`);
        parts.push(`commands: ${r.tools.map((t) => `\`${t.display}\``).join("; ")}`);
        if (note) parts.push(`NOTE: ${note}`);
        return entryFor(r, fs, { command, machine, runs, warmup, extra: parts.join("; "), scenario: { id: r.def.id, title: r.def.title, rank: SCENARIOS.indexOf(r.def.id) } });
      }));
    log(`updated the net-sync section of ${values.results}`);
  }
  for (const line of (await import("./chart.ts")).writeCharts(values.results)) log(line); // charts/ next to the results file
}

main().catch((e: unknown) => {
  const detail = e instanceof Error ? (process.env.BENCH_DEBUG ? (e.stack ?? e.message) : e.message) : String(e);
  console.error(`net: ${detail}`);
  process.exit(1);
});
