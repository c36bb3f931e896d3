#!/bin/sh
# uclock verify: passes here with the defaults, and fails, exit 1, naming
# the check, on configurations that are bad by construction:
#  - a clock 500 ns ahead or 200 ns behind (UCLOCK_VERIFY_INJECT_NS):
#    "brackets";
#  - updates every 10 us (UCLOCK_INTERVAL_US=10): every 10 us of reading,
#    one reading runs an update (about a microsecond, far more than a
#    reading), so about one reading in 150 to 300 sits that far from its
#    bracket's midpoint, above the one in 1000 that "p99.9" allows, on any
#    machine; never a matter of chance.
# The JSON has its keys; --help names every check.  No timing is asserted:
# the limits are verify's own, relative to the brackets it measures.
# Exit 0 pass, 1 fail.
. tests/helpers/cli.sh

echo "== --help names the checks"
expect 0 "verify --help" "$U" verify --help
for check in brackets p99.9 errno "time warps" monotonic; do
	grep -q "^  $check  " "$tmp/out" && ok "--help describes '$check'" ||
		bad "--help does not describe '$check'"
done

echo "== the defaults pass"
expect 0 "verify passes here" "$U" verify --duration 0.5
grep -q "^verdict: PASS" "$tmp/out" || bad "verify prints a PASS verdict"
grep -q "^failed:" "$tmp/out" && bad "a passing verify names a failed check"
for row in CLOCK_REALTIME CLOCK_MONOTONIC_COARSE "uclock_mono_ns()"; do
	grep -qF "$row " "$tmp/out" || bad "the table lacks $row"
done

echo "== a clock off the kernel's fails 'brackets'"
expect 1 "verify fails on a clock 500 ns ahead" \
	env UCLOCK_VERIFY_INJECT_NS=500 "$U" verify --duration 0.3
grep -q "^verdict: FAIL (.*brackets" "$tmp/out" && ok "the verdict names brackets" ||
	bad "the verdict does not name brackets: $(grep '^verdict' "$tmp/out")"
grep -q "^failed: brackets: CLOCK_REALTIME [0-9]* of [0-9]* outside" "$tmp/out" ||
	bad "no 'failed: brackets:' line naming the clocks"
expect 1 "verify fails on a clock 200 ns behind" \
	env UCLOCK_VERIFY_INJECT_NS=-200 "$U" verify --duration 0.3
grep -q "^verdict: FAIL (.*brackets" "$tmp/out" || bad "the verdict does not name brackets"

echo "== updates every 10 us fail 'p99.9'"
expect 1 "verify fails with UCLOCK_INTERVAL_US=10" \
	env UCLOCK_INTERVAL_US=10 "$U" verify --duration 0.5
grep -q "^verdict: FAIL (.*p99\.9" "$tmp/out" && ok "the verdict names p99.9" ||
	bad "the verdict does not name p99.9: $(grep '^verdict' "$tmp/out")"
grep -q "^failed: p99\.9: CLOCK_" "$tmp/out" || bad "no 'failed: p99.9:' line naming the clocks"

if command -v python3 >/dev/null; then
	echo "== JSON"
	"$U" verify --duration 0.3 --json > "$tmp/pass.json"
	UCLOCK_INTERVAL_US=10 "$U" verify --duration 0.3 --json > "$tmp/fail.json"
	python3 - "$tmp/pass.json" "$tmp/fail.json" <<'PY' && ok "verify --json parses, has its keys" || bad "verify --json"
import json, sys
v = json.load(open(sys.argv[1]))
assert v["passed"] is True and v["failed"] == [], v["failed"]
names = [c["name"] for c in v["clocks"]]
for n in ["CLOCK_REALTIME", "CLOCK_MONOTONIC", "CLOCK_MONOTONIC_RAW",
          "CLOCK_BOOTTIME", "CLOCK_TAI", "CLOCK_REALTIME_COARSE",
          "CLOCK_MONOTONIC_COARSE", "uclock_mono_ns()", "uclock_real_ns()"]:
    assert n in names, n
for c in v["clocks"]:
    assert c["readings"] > 0 and c["outside"] == 0 and c["beyond_ns"] == 0, c
    assert 0 <= c["p50_ns"] <= c["p99_ns"] <= c["p999_ns"] <= c["p999_limit_ns"], c
assert v["errno"]["mismatches"] == 0 and v["errno"]["ids"] > 50
assert v["warp"]["cpus"] >= 1 and v["warp"]["backward"] == 0
assert v["monotonic"]["backward"] == 0
assert v["steering"]["min_ppm"] <= v["steering"]["max_ppm"]
bad = json.load(open(sys.argv[2]))
assert bad["passed"] is False and "p99.9" in bad["failed"], bad["failed"]
PY
fi

[ $fail = 0 ] && echo "cli_verify: all checks passed" || echo "cli_verify: failures above"
exit $fail
