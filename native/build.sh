#!/bin/sh
# Builds the NIF and lays out priv/ (run by rebar3's pre-compile hook and by
# the Makefile; the working directory is the application's root).
# PYTHON selects the Python to link against and embed (one for both).
set -eu
PYTHON="${PYTHON:-/usr/bin/python3}"
if ! command -v cargo >/dev/null 2>&1; then
    echo "py: cargo is needed to build the NIF (https://rustup.rs)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sysconfig,sys; sys.exit(0 if sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)'; then
    echo "py: $PYTHON has no shared libpython; set PYTHON to one that has (e.g. /usr/bin/python3)" >&2
    exit 1
fi
PYO3_PYTHON="$PYTHON" cargo build --release --quiet --manifest-path Cargo.toml -p py_nif
mkdir -p priv
target_dir="${CARGO_TARGET_DIR:-target}"
cp "$target_dir/release/libpy_nif.so" priv/py_nif.so.tmp
mv -f priv/py_nif.so.tmp priv/py_nif.so
rm -rf priv/python
cp -R python priv/python
