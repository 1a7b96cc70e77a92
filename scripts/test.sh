#!/usr/bin/env bash
# The test command (README): installs what is needed, builds the executable, runs every
# test with `bun test`, and ends with a summary line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
export PATH="$PWD/node_modules/.bin:$PATH"
bun scripts/build.ts || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p .tmp
# End-to-end tests spawn the CLI and real sockets: the default 5 s is too tight on a loaded
# 2-core machine (and bunfig.toml's [test] timeout is ignored by this bun).
bun test --timeout 60000 "$@" 2>&1 | tee .tmp/test-output.txt
rc=${PIPESTATUS[0]}
pass=$(grep -Eo '^ *[0-9]+ pass$' .tmp/test-output.txt | tail -1 | grep -Eo '[0-9]+' || echo 0)
fail=$(grep -Eo '^ *[0-9]+ fail$' .tmp/test-output.txt | tail -1 | grep -Eo '[0-9]+' || echo 0)
if [ "$rc" -ne 0 ] && [ "$fail" = 0 ]; then fail=1; fi
echo "${pass} passed, ${fail} failed"
exit "$rc"
