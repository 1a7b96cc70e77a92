/**
 * Start-up JIT setting for the network commands: `send` and `recv` of the compiled
 * executable run with JavaScriptCore's top tier (FTL) off, by re-executing themselves once
 * with `BUN_JSC_useFTLJIT=0` before anything else happens.
 *
 * Why: a transfer's per-file code runs thousands of times in its first second, so the JIT
 * compiles dozens of functions with FTL too, on a thread of its own. Measured on 10,000
 * x 4 KiB over loopback (both ends on a 2-core machine): FTL compilation cost each end
 * ~100-150 ms of CPU, about a sixth of the whole transfer's CPU, and the code it made was
 * not measurably faster than DFG's even on 100,000 files (the time goes to syscalls and
 * native crypto). JSC reads its options only at start-up, from the environment, hence the
 * re-exec (about 10 ms of start-up, paid once per process).
 *
 * Owns: that decision and the execve. Must be the first import of main.ts (it must run
 * before the program does anything). Never re-executes more than once (the variable it
 * sets is the guard), never from source (`bun src/cli/main.ts`), never when the user set
 * the variable or URING_SYNC_JIT=default; if execve fails the program simply continues.
 */
import { dlopen, ptr, type Pointer } from "bun:ffi";

const COMMANDS = new Set(["send", "recv"]);

function reexecWithoutFtl(): void {
  const env = process.env;
  if (env.BUN_JSC_useFTLJIT !== undefined || env.URING_SYNC_JIT === "default") return;
  if (!import.meta.path.startsWith("/$bunfs/")) return;
  // process.argv of a compiled program: [execPath, its /$bunfs entry, ...the user's arguments].
  const args = process.argv.slice(2);
  if (!COMMANDS.has(args[0] ?? "")) return;
  const lib = dlopen("libc.so.6", { execve: { args: ["ptr", "ptr", "ptr"], returns: "i32" } });
  const keep: Buffer[] = [];
  const z = (s: string): Pointer => {
    const b = Buffer.from(`${s}\0`, "utf8");
    keep.push(b);
    return ptr(b);
  };
  const array = (items: string[]): BigUint64Array => {
    const a = new BigUint64Array(items.length + 1);
    items.forEach((s, i) => {
      a[i] = BigInt(z(s));
    });
    return a;
  };
  const path = process.execPath;
  const argv = array([path, ...args]);
  const envp = array([...Object.entries(env).map(([k, v]) => `${k}=${v ?? ""}`), "BUN_JSC_useFTLJIT=0"]);
  // Returns only on failure: then this process goes on with the default JIT.
  lib.symbols.execve(z(path), argv, envp);
  lib.close();
}

reexecWithoutFtl();
