#!/bin/sh
# Instructions per operator.add round trip, counted by callgrind: the VM
# runs 10,000 and then 30,000 sequential calls (schedulers never
# busy-wait: +sbwt none +sbwtdcpu none +sbwtdio none), and the difference
# of the loops' totals over 20,000 is one round trip (the counters are
# zeroed before each loop and dumped after it: start-up and warm-up are not
# counted). Prints the figure, then the share of each object file and the
# costliest functions. Needs valgrind; takes a few minutes
# (`make callgrind`).
set -eu
cd "$(dirname "$0")/.."
EBIN=_build/default/lib/py/ebin
EXTRA=_build/extra
OUT=$(mktemp -d "${TMPDIR:-/tmp}/py_callgrind.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
run() {
    # valgrind 3.19 itself sometimes dies of an assertion on a signal
    # (vgCallgrind_post_signal) before the dump: tried up to 3 times.
    for try in 1 2 3; do
        rm -rf "$OUT/$1"
        mkdir -p "$OUT/$1"
        # erl is a script that starts beam.smp: follow children; the JIT
        # writes code, so check every write (--smc-check=all).
        valgrind --tool=callgrind --trace-children=yes --smc-check=all --fair-sched=yes \
            --trace-children-skip='*/sh,*/perl,*/callgrind_control,*/vgdb' \
            --callgrind-out-file="$OUT/$1/cg.%p" \
            erl +sbwt none +sbwtdcpu none +sbwtdio none -noshell \
            -pa "$EBIN" -pa "$EXTRA" -run py_callgrind main "$1" >"$OUT/log.$1" 2>&1 || true
        # The dump made after the loop (counters zeroed before it).
        if ls "$OUT/$1"/cg.*.1 >/dev/null 2>&1; then
            ls "$OUT/$1"/cg.*.1 | head -1
            return 0
        fi
        echo "callgrind: run of $1 calls left no dump (try $try); its log ends:" >&2
        tail -3 "$OUT/log.$1" >&2
    done
    return 1
}
A=$(run 10000)
B=$(run 30000)
callgrind_annotate --threshold=100 --auto=no "$A" >"$OUT/a.txt" 2>/dev/null
callgrind_annotate --threshold=100 --auto=no "$B" >"$OUT/b.txt" 2>/dev/null
python3 - "$OUT/a.txt" "$OUT/b.txt" <<'PY'
import re, sys
CALLS = 20000
def parse(path):
    # The totals line, then the per-function table only (not the
    # annotated sources after it).
    total, funcs, section = 0, {}, None
    for line in open(path, errors="replace"):
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
            continue
        if line.rstrip().endswith("file:function"):
            section = "functions"
            continue
        if section == "functions" and line.startswith("-- "):
            break
        m = re.match(r"\s*([\d,]+) (?:\([^)]*\))?\s+(.*)$", line)
        if section == "functions" and m:
            name = re.sub(r"'\d+", "", m.group(2))
            funcs[name] = funcs.get(name, 0) + int(m.group(1).replace(",", ""))
    return total, funcs
ta, fa = parse(sys.argv[1])
tb, fb = parse(sys.argv[2])
print("callgrind: %.0f instructions per operator.add round trip (30k calls %d, 10k calls %d)"
      % ((tb - ta) / CALLS, tb, ta))
def jit(name):
    # Code the JIT wrote (Erlang functions): addresses differ between the
    # two runs, so only their sum means something.
    return name.startswith("???:0x")
def obj(name):
    if jit(name):
        return "JIT code (Erlang)"
    m = re.search(r"\[([^\]]*)\]\s*$", name)
    return m.group(1).rsplit("/", 1)[-1] if m else "?"
objs = {}
diffs = {}
# Thread entry frames carry the cost of everything under them in a dump
# taken mid-run: left out of the lists.
FRAMES = ("clone.S:", "start_thread", "thread_start", "call_once")
for name in set(fa) | set(fb):
    if any(f in name for f in FRAMES):
        continue
    d = (fb.get(name, 0) - fa.get(name, 0)) / CALLS
    diffs[name] = d
    objs[obj(name)] = objs.get(obj(name), 0) + d
# The two runs' function tables must agree for the shares to mean
# anything (they do not when JIT code or a thread's frames differ between
# them): checked against the totals.
if abs(sum(objs.values()) - (tb - ta) / CALLS) > 0.1 * (tb - ta) / CALLS:
    print("(no breakdown: the two runs' function tables differ; run again)")
    sys.exit(0)
print("by object file (instructions per call):")
for o, d in sorted(objs.items(), key=lambda kv: -kv[1]):
    if d >= 20:
        print("  %7.0f  %s" % (d, o))
print("costliest functions (instructions per call):")
for name, d in sorted(((n, d) for n, d in diffs.items() if not jit(n)), key=lambda kv: -kv[1])[:25]:
    print("  %7.0f  %s" % (d, re.sub(r"\s*\[[^\]]*\]\s*$", "", name)[:110]))
PY
