#!/bin/sh
# Builds the NIF and lays out priv/ (run by rebar3's pre-compile hook, also
# when mix builds py as a dependency; the working directory is the
# application's root). PYTHON selects the Python to link against and embed
# (one for both).
#
# Cargo builds in CARGO_TARGET_DIR when it is set. Otherwise in target/
# here when py is the project being built, and, when py is a dependency
# (rebar3 builds it in _build/PROFILE/lib/py, mix in deps/py), in a cache
# directory outside the project, ${XDG_CACHE_HOME:-~/.cache}/py/target,
# so that a project's _build does not carry cargo's ~130 MB and a rebuild
# of the dependency reuses what cargo built before.
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

here=$(pwd -P)
is_dependency() {
    # mix runs `rebar3 bare compile` for its rebar3 dependencies.
    [ -n "${REBAR_BARE_COMPILER_OUTPUT_DIR:-}" ] && return 0
    [ -n "${REBAR_DEPS_DIR:-}" ] || return 1
    deps=$(cd "$REBAR_DEPS_DIR" 2>/dev/null && pwd -P) || return 1
    case "$here" in
        "$deps"/*) return 0 ;;
        *) return 1 ;;
    esac
}
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    CARGO_TARGET_DIR=target
    if is_dependency; then
        cache="${XDG_CACHE_HOME:-${HOME:-}/.cache}/py/target"
        if [ -n "${XDG_CACHE_HOME:-}${HOME:-}" ] && mkdir -p "$cache" 2>/dev/null; then
            CARGO_TARGET_DIR="$cache"
        fi
    fi
fi
export CARGO_TARGET_DIR

echo "py: building the NIF with cargo for $PYTHON (target directory $CARGO_TARGET_DIR; about a minute the first time)"
PYO3_PYTHON="$PYTHON" cargo build --release --manifest-path Cargo.toml -p py_nif
mkdir -p priv
cp "$CARGO_TARGET_DIR/release/libpy_nif.so" priv/py_nif.so.tmp
mv -f priv/py_nif.so.tmp priv/py_nif.so
rm -rf priv/python
cp -R python priv/python
