#!/bin/sh
# Runs the LFE tests through a real LFE when `lfe` is on PATH; says clearly
# that they were skipped otherwise (LFE is in no package registry here).
#
# LFE exits 0 when it cannot read a script (a syntax error), so success is
# the exit status 0 *and* a last line "N passed, 0 failed".
set -eu
cd "$(dirname "$0")/.."
if ! command -v lfe >/dev/null 2>&1; then
    echo "LFE tests: SKIPPED (no 'lfe' on PATH; install LFE to run them)"
    exit 0
fi
if [ ! -f lfe/py-tests.lfe ]; then
    echo "LFE tests: none yet"
    exit 0
fi
out=$(mktemp)
trap 'rm -f "$out" "$out.rc"' EXIT
{ status=0
  lfe -pa _build/default/lib/py/ebin -- lfe/py-tests.lfe 2>&1 || status=$?
  echo "$status" >"$out.rc"; } | tee "$out"
status=$(cat "$out.rc")
if [ "$status" -ne 0 ]; then
    echo "LFE tests: FAILED (lfe exited with status $status)"
    exit 1
fi
if ! tail -n 1 "$out" | grep -Eq '^[0-9]+ passed, 0 failed$'; then
    echo "LFE tests: FAILED (no closing 'N passed, 0 failed' line)"
    exit 1
fi
