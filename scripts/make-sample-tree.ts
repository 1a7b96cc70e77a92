/**
 * Makes a sample tree for the demo: N files of 1-8 KiB spread over D directories,
 * plus a symlink and an empty directory. Usage: bun scripts/make-sample-tree.ts DIR N D
 */
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, nArg = "3000", dArg = "30"] = process.argv.slice(2);
if (dir === undefined) {
  console.error("usage: bun scripts/make-sample-tree.ts DIR [FILES] [DIRS]");
  process.exit(2);
}
const files = Number(nArg);
const dirs = Math.max(1, Number(dArg));
const pool = new Uint8Array(64 * 1024);
crypto.getRandomValues(pool.subarray(0, 65536));
for (let d = 0; d < dirs; d++) mkdirSync(join(dir, `dir${d}`), { recursive: true });
for (let i = 0; i < files; i++) {
  const size = 1024 + ((i * 2654435761) % 7168);
  const off = (i * 977) % (pool.length - size);
  writeFileSync(join(dir, `dir${i % dirs}`, `file${i}.bin`), pool.subarray(off, off + size));
}
mkdirSync(join(dir, "empty"), { recursive: true });
symlinkSync("dir0/file0.bin", join(dir, "link-to-file0"));
console.log(`made ${files} files in ${dirs} directories under ${dir}`);
