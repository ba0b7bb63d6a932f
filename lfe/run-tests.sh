#!/bin/sh
# Runs the LFE tests through a real LFE when `lfe` is on PATH; says clearly
# that they were skipped otherwise (LFE is in no package registry here).
set -eu
if ! command -v lfe >/dev/null 2>&1; then
    echo "LFE tests: SKIPPED (no 'lfe' on PATH; install LFE to run them)"
    exit 0
fi
if [ ! -f lfe/py-tests.lfe ]; then
    echo "LFE tests: none yet"
    exit 0
fi
lfe -pa _build/default/lib/py/ebin -- lfe/py-tests.lfe
