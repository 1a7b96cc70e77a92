#!/usr/bin/env bash
# Run bun tests, or any command, inside the kernel-TLS VM (../shared/ktls-vm), with this
# repository shared read-write at the same path. The host kernel has no kTLS; the guest
# (Debian 6.1, tls.ko loaded) has.
#
#   scripts/vm-test.sh tests/vm/doctor.vm.ts [more test files]   # bun test FILES in the guest
#   scripts/vm-test.sh -- bun src/cli/main.ts doctor                  # any command in the guest
#   scripts/vm-test.sh --check                                        # only check the prerequisites
#
# In the guest: URING_SYNC_IN_VM=1; `bun` is this repo's node_modules/bun/bin/bun.exe (the
# guest has the host's glibc, which is all bun needs) and is first on PATH; liburing is the
# host's liburing.so.2*, copied into .tmp/vm-lib/ (inside the shared folder, git-ignored)
# and found through LD_LIBRARY_PATH, because the guest image carries only glibc; the
# host's libcrypto.so.3 is shipped the same way (the record layer's AEAD).
# URING_SYNC_VM_LIBURING says which liburing version was shipped ("" = none on the host).
# Extra host variables to pass: URING_SYNC_VM_PASSENV="NAME ...". The KTLS_VM_* knobs of
# run-in-vm.sh apply (default KTLS_VM_TIMEOUT here: 150 s).
#
# Exit status: the guest command's; 124 VM timeout; 125 VM/harness failure or a missing
# prerequisite (qemu, the VM image, bun), with a message saying how to install it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM_DIR=${URING_SYNC_KTLS_VM_DIR:-$(cd "$ROOT/.." && pwd)/shared/ktls-vm}
CACHE_DIR=${KTLS_VM_CACHEDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ktls-vm}
BUN=$ROOT/node_modules/bun/bin/bun.exe
INSTALL="install it with: bash scripts/setup.sh --test (apt-installs qemu-system-x86 and builds the VM image with $VM_DIR/build.sh), or run $VM_DIR/setup.sh"

missing() { echo "vm-test: missing prerequisite: $*; $INSTALL" >&2; exit 125; }

check() {
  [ -x "$VM_DIR/run-in-vm.sh" ] || missing "the ktls-vm harness ($VM_DIR/run-in-vm.sh)"
  command -v qemu-system-x86_64 >/dev/null 2>&1 || missing "qemu-system-x86_64 (Debian package qemu-system-x86)"
  local kpkg ver
  [ -f "$CACHE_DIR/kpkg" ] && [ -f "$CACHE_DIR/initramfs.cpio" ] || missing "the VM image cache ($CACHE_DIR/kpkg, initramfs.cpio)"
  kpkg=$(cat "$CACHE_DIR/kpkg"); ver=${kpkg#linux-image-}
  [ -f "$CACHE_DIR/kernel-$ver/vmlinux" ] || missing "the VM kernel ($CACHE_DIR/kernel-$ver/vmlinux)"
  [ -x "$BUN" ] || { echo "vm-test: missing $BUN: run bash scripts/setup.sh (npm install)" >&2; exit 125; }
}

# The host's liburing, copied where the guest can see it (the same file, symlinks kept).
ship_liburing() {
  local d f lib=$ROOT/.tmp/vm-lib
  URING_SYNC_VM_LIBURING=
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
    f=$(ls "$d"/liburing.so.2.* 2>/dev/null | head -n1) || true
    [ -n "$f" ] || continue
    mkdir -p "$lib"
    # Replace atomically and only when it changed: another VM run may be reading it.
    if ! cmp -s "$f" "$lib/${f##*/}"; then
      cp -L "$f" "$lib/.${f##*/}.$$" && mv -f "$lib/.${f##*/}.$$" "$lib/${f##*/}"
    fi
    [ "$(readlink "$lib/liburing.so.2" 2>/dev/null)" = "${f##*/}" ] || ln -sfn "${f##*/}" "$lib/liburing.so.2"
    URING_SYNC_VM_LIBURING=${f##*/liburing.so.}
    break
  done
  export URING_SYNC_VM_LIBURING
  export LD_LIBRARY_PATH=$lib
  # libcrypto too: the user-space record layer seals/opens with it (src/net/record.ts), and
  # kernel <-> user-space interop must be tested with the back end hosts really use.
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
    f=$d/libcrypto.so.3
    [ -f "$f" ] || continue
    mkdir -p "$lib"
    if ! cmp -s "$f" "$lib/libcrypto.so.3"; then
      cp -L "$f" "$lib/.libcrypto.so.3.$$" && mv -f "$lib/.libcrypto.so.3.$$" "$lib/libcrypto.so.3"
    fi
    break
  done
}

if [ "${1:-}" = "--check" ]; then
  check
  echo "vm-test: ok (harness $VM_DIR, image $(cat "$CACHE_DIR/kpkg"))"
  exit 0
fi
[ $# -ge 1 ] || { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
check
ship_liburing

cmd=()
if [ "$1" = "--" ]; then
  shift
  [ $# -ge 1 ] || { echo "vm-test: no command after --" >&2; exit 2; }
  cmd=("$@")
else
  # The same per-test timeout as scripts/test.sh on the host (bun ignores bunfig's): the guest
  # is emulated (TCG) and shares a loaded host, so one CLI start-up can take more than 5 s.
  cmd=("$BUN" test --timeout 60000)
  for f in "$@"; do
    [ -f "$ROOT/$f" ] || [ -f "$f" ] || { echo "vm-test: no such test file: $f" >&2; exit 2; }
    case "$f" in /*) cmd+=("$f") ;; *) cmd+=("./${f#./}") ;; esac
  done
fi

export URING_SYNC_IN_VM=1
export PATH="$ROOT/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export KTLS_VM_PASSENV="URING_SYNC_IN_VM URING_SYNC_VM_LIBURING LD_LIBRARY_PATH PATH ${URING_SYNC_VM_PASSENV:-} ${KTLS_VM_PASSENV:-}"
export KTLS_VM_TIMEOUT=${KTLS_VM_TIMEOUT:-150}
cd "$ROOT"
exec "$VM_DIR/run-in-vm.sh" "$ROOT" "${cmd[@]}"
