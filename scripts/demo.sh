#!/usr/bin/env bash
# The demo (README): installs what is needed, makes a sample tree of a few thousand files,
# copies it with uring-sync, checks the copy, and shows the summary and `doctor`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
work=$(mktemp -d /tmp/uring-sync-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== making a sample tree in $work/src (3,000 files in 30 directories)"
bun scripts/make-sample-tree.ts "$work/src" 3000 30
echo "== uring-sync $work/src $work/dst"
bun src/cli/main.ts "$work/src" "$work/dst"
echo "== checking the copy (diff -r)"
diff -r "$work/src" "$work/dst" && echo "identical"
echo "== running it again (nothing to do)"
bun src/cli/main.ts "$work/src" "$work/dst"
echo "== uring-sync doctor"
bun src/cli/main.ts doctor
