#!/bin/sh
# Creates the virtualenv the tests use for a pip-installed C extension
# (numpy), from PyPI, with the same Python the NIF embeds. Idempotent.
set -eu
PYTHON="${PYTHON:-/usr/bin/python3}"
VENV="${1:-_build/test-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check numpy
fi
