#!/bin/sh
# Readers on uclockd's shared page against in-process readers: the same
# `uclock bench`, alternately attached and not, three times each; prints
# the median cost of each uclock reader both ways and the ratio.
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
"$BUILD/uclockd" --path "$tmp/page" 2>/dev/null &
daemon=$!
trap 'kill $daemon 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
sleep 0.5
for i in 1 2 3; do
	UCLOCK_PAGE="$tmp/page" "$BUILD/uclock" bench --duration ${1:-2} --json > "$tmp/shared.$i"
	UCLOCK_PAGE=off "$BUILD/uclock" bench --duration ${1:-2} --json > "$tmp/own.$i"
done
python3 - "$tmp" <<'PY'
import json, statistics, sys
d = sys.argv[1]
def load(kind):
    runs = [json.load(open(f"{d}/{kind}.{i}")) for i in (1, 2, 3)]
    modes = {r["uclock"]["mode"] for r in runs}
    cost = {}
    for r in runs:
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
