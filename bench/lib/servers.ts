// bench/lib/servers.ts — owns the throwaway servers of the network benchmark: an sshd on
// a loopback port with a fresh host key and client key (authorized for root) in a temp
// directory, an rsync daemon on another loopback port whose module points at the
// destination root, readiness checks, and their shutdown (also on Ctrl-C / SIGTERM,
// through run.ts's clean-up registry).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addCleanup, mustRunSync, removeCleanup, sleep, spawnBackground, stopProcess, type Background } from "./run.ts";

/** True if something listens on 127.0.0.1/0.0.0.0/:: at this TCP port (from /proc/net/tcp{,6}). */
export function isListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4) continue;
      if (cols[3] === "0A" && cols[1].endsWith(`:${hex}`)) return true;
    }
  }
  return false;
}

/** Waits until port is listening; false if the process exits first or time runs out. */
export async function waitListening(port: number, bg: Background | undefined, timeoutMs: number): Promise<boolean> {
  let exited = false;
  void bg?.done.then(() => {
    exited = true;
  });
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (isListening(port)) return true;
    if (exited) return false;
    await sleep(5);
  }
  return false;
}

export interface Servers {
  tmp: string;
  sshPort: number;
  rsyncdPort: number;
  /** ssh options (without cipher) for -e / direct ssh use. */
  sshArgs: string[];
  /** Module name of the rsync daemon; its path is the destination root. */
  rsyncModule: string;
  /** The cipher ssh negotiates by default, as reported by ssh -v. */
  defaultCipher: string;
  /** Stops sshd and the rsync daemon and removes the temp directory (keys, configs). */
  stop: () => Promise<void>;
}

export async function startServers(opts: { sshPort: number; rsyncdPort: number; dstRoot: string }): Promise<Servers> {
  for (const p of [opts.sshPort, opts.rsyncdPort]) {
    if (isListening(p)) throw new Error(`port ${p} is already in use; pick another with --ssh-port / --rsyncd-port`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "uring-sync-net-bench-"));
  const hostKey = join(tmp, "host_ed25519");
  const clientKey = join(tmp, "client_ed25519");
  mustRunSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "uring-sync-bench-host", "-f", hostKey]);
  mustRunSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "uring-sync-bench-client", "-f", clientKey]);
  copyFileSync(`${clientKey}.pub`, join(tmp, "authorized_keys"));
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation directory
  const sshdConf = join(tmp, "sshd_config");
  writeFileSync(
    sshdConf,
    [
      `Port ${opts.sshPort}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(tmp, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(tmp, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "UseDNS no",
      "MaxStartups 64",
      "LogLevel ERROR",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  mustRunSync(["/usr/sbin/sshd", "-t", "-f", sshdConf], "sshd -t (config check)");
  const sshd = spawnBackground(["/usr/sbin/sshd", "-D", "-e", "-f", sshdConf]);

  const rsyncdConf = join(tmp, "rsyncd.conf");
  const rsyncModule = "bench";
  writeFileSync(
    rsyncdConf,
    [
      `pid file = ${join(tmp, "rsyncd.pid")}`,
      `log file = ${join(tmp, "rsyncd.log")}`,
      "use chroot = no",
      "",
      `[${rsyncModule}]`,
      `  path = ${opts.dstRoot}`,
      "  read only = no",
      "  uid = root",
      "  gid = root",
      "",
    ].join("\n"),
  );
  const rsyncd = spawnBackground([
    "rsync",
    "--daemon",
    "--no-detach",
    `--config=${rsyncdConf}`,
    `--port=${opts.rsyncdPort}`,
    "--address=127.0.0.1",
  ]);

  const stop = async (): Promise<void> => {
    removeCleanup(stop);
    await Promise.all([stopProcess(sshd), stopProcess(rsyncd)]);
    rmSync(tmp, { recursive: true, force: true });
  };
  addCleanup(stop);

  try {
    if (!(await waitListening(opts.sshPort, sshd, 10_000))) {
      throw new Error(`sshd did not start on 127.0.0.1:${opts.sshPort}: ${(await Promise.race([sshd.done, sleep(200).then(() => undefined)]))?.stderr ?? "still running"}`);
    }
    if (!(await waitListening(opts.rsyncdPort, rsyncd, 10_000))) {
      throw new Error(`rsync daemon did not start on 127.0.0.1:${opts.rsyncdPort}: ${(await Promise.race([rsyncd.done, sleep(200).then(() => undefined)]))?.stderr ?? "still running"}`);
    }
    const base = [
      "-F", "/dev/null",
      "-i", clientKey,
      "-p", String(opts.sshPort),
      "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null",
      "-o", "BatchMode=yes",
      "-o", "IdentitiesOnly=yes",
    ];
    const sshArgs = [...base, "-o", "LogLevel=ERROR"];
    // Login check, and which cipher the default negotiation picks (for the record).
    const probe = Bun.spawnSync(["ssh", ...base, "-v", "root@127.0.0.1", "true"], { stdout: "pipe", stderr: "pipe" });
    if (probe.exitCode !== 0) throw new Error(`ssh login to the benchmark sshd failed: ${probe.stderr.toString().trim().split("\n").slice(-3).join(" / ")}`);
    const m = /kex: server->client cipher: (\S+)/.exec(probe.stderr.toString());
    return { tmp, sshPort: opts.sshPort, rsyncdPort: opts.rsyncdPort, sshArgs, rsyncModule, defaultCipher: m ? m[1] : "unknown", stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
