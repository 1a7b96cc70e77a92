// bench/net.ts — the network benchmark over loopback: starts its own sshd and rsync
// daemon (throwaway keys, temp config), then runs rsync -a over ssh (default cipher and
// aes128-gcm), the rsync daemon, tar | ssh tar, and uring-sync send/recv (encrypted and
// --plaintext) on the same data in the same run, alternating tools run by run; reports
// medians and ratios to rsync over ssh and rewrites the net section of bench/RESULTS.md.
// Usage: bun bench/net.ts --help

import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { DATASETS, DATASET_NAMES } from "./lib/datasets.ts";
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
import { CompetitorFailure, expectedStats, renderCommands, renderTable, runRounds, type Tool } from "./lib/harness.ts";
import { busyProcesses, commandLine, formatMachine, loadAvg, machineInfo, toolVersions } from "./lib/machine.ts";
import { dumpJson, entryFor, type SetReport } from "./lib/report.ts";
import { updateSection } from "./lib/results.ts";
import { interrupted, pipeline, shellJoin, sleep, spawnBackground, stopProcess, timedRun, type RunResult } from "./lib/run.ts";
import { isListening, startServers, waitListening, type Servers } from "./lib/servers.ts";

const BASELINE = "rsync-ssh";
const COMPETITORS = ["rsync-ssh", "rsync-ssh-aes", "rsyncd", "tar-ssh"] as const;

const HELP = `Usage: bun bench/net.ts [options]

Network transfer over loopback (both ends on this machine): uring-sync send/recv vs
rsync -a over ssh (default cipher and aes128-gcm), the rsync daemon and tar | ssh tar.
Starts its own sshd and rsync daemon with throwaway keys and stops them at exit.
Ratios are to rsync -a over ssh with the default cipher.

  --sets a,b,...        data sets (default small10k,medium10k,large8,small100k; "all" = every set)
                        ${DATASET_NAMES.join(", ")}
  --mode warm|cold|both (default warm)
  --runs N              timed runs per tool and data set (default 5)
  --warmup N            untimed rounds first (default 1; every tool once; verified)
  --tools a,b,...       subset of: uring-sync,uring-sync-plain,${COMPETITORS.join(",")} (default all)
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
  sender:   <bin> send SRC 127.0.0.1:PORT --quiet [--plaintext]
  secret in $URING_SYNC_SECRET (random per benchmark run); time = sender start to
  receiver exit. If uring-sync fails, its rows are skipped with a note; a competitor
  failure aborts.

${FS_HELP}`;

function competitorTools(sv: Servers, timeoutMs: number): Tool[] {
  const o = { timeoutMs };
  const sshCmd = shellJoin(["ssh", ...sv.sshArgs]);
  const aesCmd = shellJoin(["ssh", ...sv.sshArgs, "-c", "aes128-gcm@openssh.com"]);
  const host = "root@127.0.0.1";
  return [
    {
      id: "rsync-ssh",
      label: `rsync -a over ssh (${sv.defaultCipher.replace("@openssh.com", "")})`,
      display: `rsync -a -e 'ssh -p ${sv.sshPort} ...' SRC/ ${host}:DST/`,
      optional: false,
      run: (src, dst) => timedRun(["rsync", "-a", "-e", sshCmd, `${src}/`, `${host}:${dst}/`], o),
    },
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

/** One uring-sync transfer: receiver first (untimed until it listens), then the sender. */
async function uringTransfer(
  bin: UringCommand,
  src: string,
  dst: string,
  port: number,
  flags: string[],
  secret: string,
  timeoutMs: number,
): Promise<RunResult> {
  const env = { URING_SYNC_SECRET: secret };
  const recvArgv = [...bin.argv, "recv", dst, "--listen", `127.0.0.1:${port}`, "--quiet", ...flags];
  const sendArgv = [...bin.argv, "send", src, `127.0.0.1:${port}`, "--quiet", ...flags];
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

function uringTools(port: number, flagStr: string, timeoutMs: number): Tool[] {
  const bin = uringSyncCommand();
  const flags = splitFlags(flagStr);
  const secret = randomBytes(16).toString("hex");
  const sfx = flags.length > 0 ? ` ${flags.join(" ")}` : "";
  const mk = (id: string, label: string, extra: string[]): Tool => ({
    id,
    label: `${label}${sfx}`,
    display: `${bin.display} recv DST --listen 127.0.0.1:${port} --quiet${sfx}${extra.length ? ` ${extra.join(" ")}` : ""} & ${bin.display} send SRC 127.0.0.1:${port} --quiet${sfx}${extra.length ? ` ${extra.join(" ")}` : ""}`,
    optional: true,
    run: (src, dst) => uringTransfer(bin, src, dst, port, [...flags, ...extra], secret, timeoutMs),
  });
  return [mk("uring-sync", "uring-sync (encrypted)", []), mk("uring-sync-plain", "uring-sync --plaintext", ["--plaintext"])];
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

  const command = commandLine(REPO_ROOT);
  const us = uringSyncCommand({ snapshot: !values["no-snapshot"] });
  log(`uring-sync: ${us.display} (${us.identity})${us.snapshot ? `, running a snapshot copy: ${us.snapshot}` : ""}`);
  const notes = new Map<string, string>();
  const fs = selectFs(values);
  const machine = formatMachine(machineInfo());
  log(`file system: ${fs.description}`);
  log(`machine: ${machine}`);
  const data = prepareDatasets(fs, sets, { ...parseGen(values), regen: values.regen }, log);
  const dstDir = dstRoot(fs, "net");
  mkdirSync(dstDir, { recursive: true });

  const sv = await startServers({
    sshPort: parsePositiveInt("--ssh-port", values["ssh-port"]),
    rsyncdPort: parsePositiveInt("--rsyncd-port", values["rsyncd-port"]),
    dstRoot: dstDir,
  });
  log(`sshd on 127.0.0.1:${sv.sshPort} (default cipher ${sv.defaultCipher}), rsync daemon on 127.0.0.1:${sv.rsyncdPort}, keys in ${sv.tmp}`);

  const reports: SetReport[] = [];
  const tStart = performance.now();
  let tools: Tool[] = [];
  try {
    tools = [...uringTools(port, values["uring-flags"], timeoutMs), ...competitorTools(sv, timeoutMs)];
    if (values.tools !== undefined) {
      const want = new Set(values.tools.split(",").map((s) => s.trim()));
      tools = tools.filter((t) => want.has(t.id));
      if (tools.length === 0) throw new Error(`--tools selected nothing`);
    }
    for (const set of sets) {
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
  const json = dumpJson(REPO_ROOT, "net", { command, fs, reports });
  log(`raw samples: ${json}`);
  if (!values["no-results"]) {
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
    const extra = `uring-sync: \`${us.display}\` (${us.identity})`;
    updateSection(values.results, "net", header, reports.map((r) => {
        const note = notes.get(`${r.set}:${r.mode}`);
        return entryFor(r, fs, { command, machine, runs, warmup, extra: note ? `${extra}; NOTE: ${note}` : extra });
      }));
    log(`updated the net section of ${values.results}`);
    for (const line of (await import("./chart.ts")).writeCharts(values.results)) log(line); // charts/ next to the results file
  }
}

main().catch((e: unknown) => {
  const detail = e instanceof Error ? (process.env.BENCH_DEBUG ? (e.stack ?? e.message) : e.message) : String(e);
  console.error(`net: ${detail}`);
  process.exit(1);
});
