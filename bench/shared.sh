#!/bin/sh
# Readers on uclockd's shared page against in-process readers: the same
# `uclock bench`, alternately attached and not, three times each; prints
# the median cost of each uclock reader both ways and the ratio.  On a
# terminal, a progress bar on stderr (as uclock's own commands draw it).
BUILD=${BUILD:-build}
RUNS=3
tmp=$(mktemp -d)
"$BUILD/uclockd" --path "$tmp/page" 2>/dev/null &
daemon=$!
trap 'kill $daemon 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM

# progress DONE TOTAL WHAT: the bar, on a terminal only; DONE = TOTAL
# erases it.
progress() {
	[ -t 2 ] || return 0
	if [ "$1" -ge "$2" ]; then
		printf '\r%79s\r' '' >&2
		return 0
	fi
	filled=$(($1 * 30 / $2))
	printf '\r[%-30s] %3d%% %-40.40s' "$(printf '%*s' "$filled" '' | tr ' ' '#')" \
		$(($1 * 100 / $2)) "$3" >&2
}

# bench NAME: one run of uclock bench into $tmp/NAME (its errors shown).
bench() {
	if ! "$BUILD/uclock" bench --duration "${DURATION:-2}" --json > "$tmp/$1" 2> "$tmp/err"; then
		progress 1 1 ""
		cat "$tmp/err" >&2
		exit 1
	fi
}

sleep 0.5
DURATION=${1:-2}
for i in $(seq $RUNS); do
	progress $((2 * i - 2)) $((2 * RUNS)) "run $i of $RUNS, attached to uclockd's page"
	UCLOCK_PAGE="$tmp/page" bench shared.$i
	progress $((2 * i - 1)) $((2 * RUNS)) "run $i of $RUNS, in-process"
	UCLOCK_PAGE=off bench own.$i
done
progress 1 1 ""
python3 - "$tmp" "$RUNS" <<'PY'
import json, statistics, sys
d, runs = sys.argv[1], int(sys.argv[2])
def load(kind):
    runs_ = [json.load(open(f"{d}/{kind}.{i}")) for i in range(1, runs + 1)]
    modes = {r["uclock"]["mode"] for r in runs_}
    cost = {}
    for r in runs_:
        for m in r["methods"]:
            if m["kind"] == "uclock" and m["available"]:
                cost.setdefault(m["name"], []).append(m["median_ns"])
    return modes, {k: statistics.median(v) for k, v in cost.items()}
smodes, shared = load("shared")
omodes, own = load("own")
print(f"modes: shared page runs {sorted(smodes)}, in-process runs {sorted(omodes)}")
print(f"{'reader':36} {'in-process':>11} {'shared':>9} {'ratio':>7}")
for name in own:
    print(f"{name:36} {own[name]:9.2f}ns {shared[name]:7.2f}ns {shared[name] / own[name]:7.3f}")
PY
