#!/bin/sh
# Instructions per operator.add round trip, counted by callgrind: the VM
# runs 10,000 and then 30,000 sequential calls (schedulers never busy-wait:
# +sbwt none), and the difference of the totals, divided by 20,000, is one
# round trip (start-up and warm-up cancel out). Prints the figure and the
# share of each object file. Needs valgrind; takes a few minutes.
set -eu
cd "$(dirname "$0")/.."
EBIN=_build/default/lib/py/ebin
EXTRA=_build/extra
OUT=${TMPDIR:-/tmp}/py_callgrind.$$
mkdir -p "$OUT"
run() {
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1" --smc-check=all-non-file \
        --trace-children=no \
        erl +sbwt none +sbwtdcpu none +sbwtdio none -noshell \
        -pa "$EBIN" -pa "$EXTRA" -run py_callgrind main "$1" >"$OUT/log.$1" 2>&1
}
total() { callgrind_annotate "$OUT/cg.$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
by_object() { callgrind_annotate --inclusive=no --threshold=100 "$OUT/cg.$1" 2>/dev/null \
    | awk '/^ *[0-9,]+ .*:/ {n=$1; gsub(",", "", n); split($NF, a, ":"); f=a[1]; sub(".*/", "", f); s[f]+=n} END {for (f in s) print s[f], f}'; }
run 10000
run 30000
A=$(total 10000); B=$(total 30000)
echo "callgrind: $(( (B - A) / 20000 )) instructions per operator.add round trip (30k calls: $B, 10k calls: $A)"
by_object 10000 | sort -k2 > "$OUT/a"
by_object 30000 | sort -k2 > "$OUT/b"
join -1 2 -2 2 "$OUT/a" "$OUT/b" | awk '{d=($3-$2)/20000; if (d > 50) printf "  %7.0f  %s\n", d, $1}' | sort -rn
rm -rf "$OUT"
