// bench/fs.ts — CLI: manages the benchmark file systems by hand (mount, status, trim,
// unmount, remove the image). Usage: bun bench/fs.ts <mount|status|trim|umount|destroy> [--fs ext4|tmpfs]

import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { FS_HELP, FS_OPTIONS, selectFs } from "./lib/cli.ts";
import { allocatedBytes, benchPaths, mountAt, trim, unmountExt4, unmountTmpfs } from "./lib/mount.ts";

const HELP = `Usage: bun bench/fs.ts <command> [--fs ext4|tmpfs] [options]
  mount    create (if needed) and mount the benchmark file system, print where
  status   show the ext4 image and tmpfs mounts
  trim     fstrim the ext4 mount (punches freed blocks out of the image)
  umount   unmount (the image is kept)
  destroy  unmount and delete the ext4 image

${FS_HELP}`;

function status(): void {
  const p = benchPaths();
  const e = mountAt(p.ext4Dir);
  const t = mountAt(p.tmpfsDir);
  const img = existsSync(p.image) ? `${(allocatedBytes(p.image) / 2 ** 30).toFixed(2)} GiB allocated` : "absent";
  console.log(`ext4 image ${p.image}: ${img}`);
  console.log(`ext4 mount ${p.ext4Dir}: ${e ? `${e.fstype} from ${e.source} (${e.options})` : "not mounted"}`);
  console.log(`tmpfs      ${p.tmpfsDir}: ${t ? `${t.fstype} (${t.options})` : "not mounted"}`);
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: { ...FS_OPTIONS, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
  const cmd = positionals[0];
  if (values.help || cmd === undefined) {
    console.log(HELP);
    return;
  }
  switch (cmd) {
    case "mount": {
      const fs = selectFs(values);
      console.log(`${fs.dir}: ${fs.description}`);
      return;
    }
    case "status":
      status();
      return;
    case "trim": {
      const fs = selectFs({ ...values, fs: "ext4" });
      trim(fs);
      status();
      return;
    }
    case "umount":
      if (values.fs === "tmpfs") unmountTmpfs();
      else unmountExt4(false);
      return;
    case "destroy":
      unmountExt4(true);
      return;
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd)}; see --help`);
  }
}

try {
  main();
} catch (e: unknown) {
  console.error(`fs: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
