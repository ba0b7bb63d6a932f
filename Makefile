# py: Python for the Erlang ecosystem.
#
#   make test    install what is missing, build, run every test suite
#   make demo    build and run a short walk-through
#   make shell   an Erlang shell with py started
#   make bench   print the benchmark figures
#   make callgrind  instructions per call, by callgrind (valgrind)
#   make check   lint: cargo fmt/clippy, xref, dialyzer
#
# PYTHON is the one Python used both to build (link) and to embed.
PYTHON ?= /usr/bin/python3
# Other Pythons `make test` runs the core suites with (after the whole suite
# with PYTHON): by default the newest pyenv Python of each minor version
# >= 3.11 other than PYTHON's. `make test PYTHONS=` runs none.
PYTHONS ?= $(shell sh tools/test-pythons.sh --list)
REBAR ?= rebar3
export PYTHON

TEST_VENV := _build/test-venv
EBIN := _build/default/lib/py/ebin

.PHONY: all deps build compile extra test cargo-test eunit ct lfe-test elixir-test pythons-test demo shell lfe-repl bench callgrind check clean

all: build

deps:
	@sh tools/ensure-deps.sh

build: deps
	$(REBAR) compile

compile: build

$(TEST_VENV)/bin/python:
	sh tools/test-venv.sh $(TEST_VENV)

test: build $(TEST_VENV)/bin/python cargo-test eunit ct lfe-test elixir-test
	@echo "Python $$($(PYTHON) -c 'import platform; print(platform.python_version())') ($(PYTHON)): all suites passed"
	@sh tools/test-pythons.sh $(PYTHONS)

# Unit tests link the NIF crate into an executable without the BEAM: its
# enif_* symbols must stay unresolved until called (never, in these tests).
cargo-test:
	PYO3_PYTHON=$(PYTHON) CARGO_TARGET_DIR=target/unit RUSTFLAGS="-C relro-level=partial" \
		cargo test --release -p py_nif

eunit:
	PY_TEST_VENV=$(CURDIR)/$(TEST_VENV) $(REBAR) eunit

ct:
	PY_TEST_VENV=$(CURDIR)/$(TEST_VENV) $(REBAR) ct --dir test

lfe-test:
	@sh lfe/run-tests.sh

elixir-test:
	@sh test/elixir/run-tests.sh

pythons-test:
	@sh tools/test-pythons.sh $(PYTHONS)

EXTRA := _build/extra

# Runs Module:main() and halts, with status 1 and the error printed (not a
# crash dump) when it fails, e.g. when py cannot start.
main = 'try $(1):main() of _ -> halt(0) catch C:R -> io:format(standard_error, "~p:~n~p~n", [C, R]), halt(1) end.'

extra: build
	@mkdir -p $(EXTRA)
	erlc -o $(EXTRA) examples/*.erl bench/*.erl

demo: extra
	erl -noshell -pa $(EBIN) -pa $(EXTRA) -eval $(call main,py_demo)

shell: build
	erl -pa $(EBIN) -eval 'case py:start() of ok -> ok; E -> io:format("py:start() -> ~p~n", [E]) end.'

# The LFE REPL with py started. LFE is in no package registry: build it
# from source (it is not part of this project).
lfe-repl:
	@if ! command -v lfe >/dev/null 2>&1; then \
		echo "make lfe-repl: no 'lfe' on PATH. LFE is in no package registry:"; \
		echo "  git clone https://github.com/lfe/lfe && cd lfe && make compile"; \
		echo "then put its bin/lfe on PATH (e.g. ln -s \$$PWD/bin/lfe /usr/local/bin/lfe)."; \
		exit 1; \
	fi
	@$(MAKE) --no-print-directory build
	lfe -pa $(EBIN) -erl_eval 'case py:start() of ok -> ok; E -> io:format("(py:start) -> ~p~n", [E]) end.'

bench: extra $(TEST_VENV)/bin/python
	erl -noshell -pa $(EBIN) -pa $(EXTRA) -eval $(call main,py_bench)

# Instructions per operator.add round trip, by callgrind (needs valgrind).
callgrind: extra
	sh bench/callgrind.sh

check: build
	cargo fmt --all -- --check
	PYO3_PYTHON=$(PYTHON) cargo clippy --release -p py_nif --all-targets -- -D warnings
	$(REBAR) xref
	$(REBAR) dialyzer

clean:
	$(REBAR) clean
	cargo clean
	rm -rf priv/py_nif.so priv/python
