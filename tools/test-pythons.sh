#!/bin/sh
# Runs py's core test suites again with other Pythons than the default one:
#   cargo test, EUnit py_conversion_tests, py_api_tests and py_prop_tests,
#   Common Test py_core_SUITE (which includes a pip-installed numpy).
#
#   sh tools/test-pythons.sh PYTHON...   run them
#   sh tools/test-pythons.sh --list      the default choice: the newest pyenv
#                                        Python of each minor version >= 3.11
#                                        other than $PYTHON's (the default
#                                        Python, tested in full already)
# Each Python gets its own NIF build, in a copy of the
# application whose priv/ is its own (_build/pythons/VERSION/app, made of
# symlinks to the sources), its own cargo target directories
# (target/pythons/VERSION/) and its own test virtualenv, so that no build
# clobbers another's. Each Python is reported on one line, by its version.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON="${PYTHON:-/usr/bin/python3}"
REBAR="${REBAR:-rebar3}"

version_of() {
    "$1" -c 'import platform; print(platform.python_version())' 2>/dev/null
}

# The newest pyenv Python of each minor version >= 3.11, except the default's.
discover() {
    command -v pyenv >/dev/null 2>&1 || return 0
    default_minor=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
    pyenv versions --bare --skip-aliases 2>/dev/null \
        | grep -E '^3\.[0-9]+\.[0-9]+$' \
        | sort -t. -k1,1n -k2,2n -k3,3n \
        | awk -F. -v d="$default_minor" '$2 >= 11 && ($1 "." $2) != d { newest[$1 "." $2] = $0 }
                                       END { for (m in newest) print newest[m] }' \
        | sort -t. -k1,1n -k2,2n \
        | while read -r v; do
              p="$(pyenv root)/versions/$v/bin/python3"
              [ -x "$p" ] && echo "$p"
          done
}

if [ "${1:-}" = "--list" ]; then
    discover
    exit 0
fi
if [ $# -eq 0 ]; then
    echo "Other Pythons: none (no pyenv Python >= 3.11 besides $PYTHON's version; PYTHONS=\"/path/to/python3 ...\" chooses)"
    exit 0
fi

failed=0
for py in "$@"; do
    if ! v=$(version_of "$py") || [ -z "$v" ]; then
        echo "Python $py: FAILED (cannot run it)"
        failed=1
        continue
    fi
    if ! "$py" -c 'import sys, sysconfig; sys.exit(0 if sys.version_info >= (3, 11) and sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)'; then
        echo "Python $v ($py): SKIPPED (py needs CPython >= 3.11 built with a shared libpython)"
        continue
    fi
    stage="$root/_build/pythons/$v"
    app="$stage/app"
    mkdir -p "$app"
    for f in src_erl test python native lfe Cargo.toml Cargo.lock rebar.config rebar.lock README.md; do
        [ -e "$root/$f" ] && ln -sfn "$root/$f" "$app/$f"
    done
    log="$stage/test.log"
    echo "Python $v ($py): building and running the core suites (log: ${log#$root/})"
    set +e
    (
        set -e
        export PYTHON="$py"
        sh "$root/tools/test-venv.sh" "$stage/test-venv"
        PYO3_PYTHON="$py" CARGO_TARGET_DIR="$root/target/pythons/$v/unit" \
            RUSTFLAGS="-C relro-level=partial" \
            cargo test --release -p py_nif --manifest-path "$root/Cargo.toml"
        cd "$app"
        export CARGO_TARGET_DIR="$root/target/pythons/$v/nif"
        export PY_TEST_VENV="$stage/test-venv"
        "$REBAR" compile
        "$REBAR" eunit --module=py_conversion_tests,py_api_tests,py_prop_tests
        "$REBAR" ct --suite test/py_core_SUITE
        # The NIF loaded is this Python's.
        PY_WANT="$v" erl -noshell -pa _build/default/lib/py/ebin -eval '
            ok = py:start(),
            Want = list_to_binary(os:getenv("PY_WANT")),
            case py:func(platform, python_version, []) of
                Want -> halt(0);
                Other -> io:format("embedded Python is ~s, not ~s~n", [Other, Want]), halt(1)
            end.'
    ) >"$log" 2>&1 </dev/null
    status=$?
    set -e
    if [ "$status" -eq 0 ]; then
        echo "Python $v ($py): core suites passed"
    else
        tail -n 30 "$log"
        echo "Python $v ($py): FAILED (see ${log#$root/})"
        failed=1
    fi
done
exit $failed
