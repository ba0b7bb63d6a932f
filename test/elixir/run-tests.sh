#!/bin/sh
# Runs the Elixir tests (test/elixir/readme_test.exs, ExUnit) when `elixir`
# is on PATH; says clearly that they were skipped otherwise. Needs py built
# (`make build`).
set -eu
cd "$(dirname "$0")/../.."
if ! command -v elixir >/dev/null 2>&1; then
    echo "Elixir tests: SKIPPED (no 'elixir' on PATH; Debian: apt-get install elixir)"
    exit 0
fi
status=0
elixir -pa _build/default/lib/py/ebin test/elixir/readme_test.exs || status=$?
if [ "$status" -ne 0 ]; then
    echo "Elixir tests: FAILED (exit status $status)"
    exit 1
fi
echo "Elixir tests: passed ($(elixir --version | tail -n 1))"
