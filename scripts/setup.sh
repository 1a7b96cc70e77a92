#!/usr/bin/env bash
# Installs what uring-sync needs on a fresh Debian/Ubuntu machine (as root), idempotently:
#   scripts/setup.sh          runtime: liburing + Bun and the npm packages
#   scripts/setup.sh --test   also what the test suite uses: gcc + liburing-dev (layout checks,
#                             C reference), attr, rsync, python3-cryptography (record vectors),
#                             the ktls-vm harness (qemu) for the kernel-TLS tests, and zsh, fish,
#                             groff and man to check the completion scripts and the man page
# Nothing is downloaded outside the Debian and npm registries.
set -euo pipefail
cd "$(dirname "$0")/.."

want=(liburing2)
if [ "${1:-}" = "--test" ]; then
  want+=(liburing-dev gcc libc6-dev attr rsync python3 python3-cryptography e2fsprogs util-linux
         qemu-system-x86 busybox-static cpio kmod openssh-server openssh-client
         zsh fish groff-base man-db)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

# Bun comes from npm (the real binary ships in the package), pinned in package.json.
stamp=node_modules/.uring-sync-installed
if [ ! -x node_modules/.bin/bun ] || [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: installing npm packages (bun, citty, consola, noble)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 || npm install --no-audit --no-fund --loglevel=error >/dev/null
  touch "$stamp"
fi
node_modules/.bin/bun --version >/dev/null

# The kernel-TLS tests boot a VM with ../shared/ktls-vm; build its cache once.
if [ "${1:-}" = "--test" ]; then
  vm=../shared/ktls-vm
  if [ -x "$vm/build.sh" ] && [ ! -f "${KTLS_VM_CACHEDIR:-$HOME/.cache/ktls-vm}/initramfs.cpio" ]; then
    echo "setup: building the ktls-vm guest image" >&2
    "$vm/build.sh" --force >/dev/null
  fi
fi
