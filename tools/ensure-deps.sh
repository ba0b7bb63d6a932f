#!/bin/sh
# Installs what building and testing py needs on a fresh Debian machine of
# this project's kind, when it is missing: Erlang/OTP with its test tools,
# rebar3, and the Python pieces (shared libpython, venv); Elixir for the
# Elixir tests when it can (optional). Rust (cargo) must
# already be there: it comes from rustup, not Debian.
set -eu
PYTHON="${PYTHON:-/usr/bin/python3}"

missing=""
command -v erl >/dev/null 2>&1 || missing="$missing erlang-nox erlang-dev"
command -v rebar3 >/dev/null 2>&1 || missing="$missing rebar3"
if command -v erl >/dev/null 2>&1; then
    for app in eunit common_test dialyzer proper; do
        if ! erl -noshell -eval "case code:lib_dir($app) of {error,_} -> halt(1); _ -> halt(0) end." >/dev/null 2>&1; then
            case $app in
                common_test) missing="$missing erlang-common-test" ;;
                *) missing="$missing erlang-$app" ;;
            esac
        fi
    done
    # PropEr's header file comes in a separate package.
    if ! erl -noshell -eval 'case code:lib_dir(proper) of {error,_} -> halt(1); D -> halt(case filelib:is_regular(filename:join([D, "include", "proper.hrl"])) of true -> 0; false -> 1 end) end.' >/dev/null 2>&1; then
        missing="$missing erlang-proper-dev"
    fi
else
    missing="$missing erlang-eunit erlang-common-test erlang-dialyzer erlang-proper erlang-proper-dev"
fi
if [ ! -x "$PYTHON" ]; then
    missing="$missing python3"
fi
if ! "$PYTHON" -c 'import sysconfig,os,sys; d=sysconfig.get_config_var("LIBDIR"); l=sysconfig.get_config_var("LDLIBRARY"); sys.exit(0 if os.path.exists(os.path.join(d,l)) else 1)' 2>/dev/null; then
    missing="$missing python3-dev"
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    missing="$missing python3-venv"
fi

if [ -n "$missing" ]; then
    cmd="apt-get install -y --no-install-recommends$missing"
    if [ "$(id -u)" = 0 ]; then
        echo "py: installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $cmd
    else
        echo "py: missing packages; as root run: apt-get update && $cmd" >&2
        exit 1
    fi
fi
# Elixir, for the Elixir tests (skipped without it): Debian's package,
# when Erlang is Debian's too (it depends on Debian's erlang-base).
if ! command -v elixir >/dev/null 2>&1 && dpkg -s erlang-base >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "py: installing: elixir (for the Elixir tests)"
        { apt-get install -y --no-install-recommends elixir >/dev/null 2>&1 ||
          { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends elixir >/dev/null; }; } ||
            echo "py: could not install elixir; the Elixir tests will be skipped" >&2
    else
        echo "py: no elixir, the Elixir tests will be skipped (as root: apt-get install elixir)" >&2
    fi
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "py: cargo (Rust) is needed to build the NIF: install it with rustup" >&2
    exit 1
fi
