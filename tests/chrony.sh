#!/bin/sh
# libuclock's client for chronyd's command socket against a real chronyd:
# chronyd in a temporary directory, never touching the system clock (-x),
# no NTP servers, its command socket there, synchronised to a reference
# clock this test feeds (tests/helpers/chrony_refclock: a SOCK refclock,
# 1 ms ahead of the system clock and running 20 ppm faster).  Checked:
# reference ID, stratum and leap status; every field against
# `chronyc -c tracking` between two readings of ours (the report moves
# with time: the correction, the dispersion); the correction and frequency
# against what the reference is fed (so the signs are chronyc's); the
# reference time advancing; a stopped chronyd (a timeout, no hang), a
# killed one (its socket file left: refused), a missing socket; nothing
# left behind.  And the error bound uclockd publishes from it: source
# chrony, synchronised, the service's part as chronyc's figures give it,
# an interval that holds true time (the reference's: the kernel's
# REALTIME plus what the feeder adds) at every reading over seconds;
# free running from its last figures once chronyd is gone, and growing.
# Skips unless root with chronyd, chronyc and python3.
BUILD=${BUILD:-build}
H="$BUILD/tests/helpers"
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root (chronyd must start as root)"
PATH="$PATH:/usr/sbin:/sbin"
command -v chronyd >/dev/null 2>&1 || skip "chronyd not installed"
command -v chronyc >/dev/null 2>&1 || skip "chronyc not installed"
command -v python3 >/dev/null 2>&1 || skip "python3 not found (to compare the reports)"

fail=0
ok() { printf '  ok: %s\n' "$*"; }
bad() { printf '  FAIL: %s\n' "$*"; fail=1; }
field() { grep "^$1=" "$2" | head -n 1 | cut -d= -f2-; }

tmp=$(mktemp -d)   # 0700, root's: chronyd accepts a socket there
chronyd= feeder= daemon=
cleanup() {
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
	[ -n "$feeder" ] && kill "$feeder" 2>/dev/null
	[ -n "$chronyd" ] && kill -CONT "$chronyd" 2>/dev/null
	[ -n "$chronyd" ] && kill -9 "$chronyd" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
sock="$tmp/chronyd.sock"
cat > "$tmp/chrony.conf" <<EOF
cmdport 0
port 0
bindcmdaddress $sock
pidfile $tmp/chronyd.pid
driftfile $tmp/drift
refclock SOCK $tmp/ref.sock refid UCLK poll 0
EOF
OFFSET=0.001 DRIFT_PPM=20
track() { "$H/chrony_tracking" "$sock" 1000 > "$1"; }

echo "== chronyd (-x) on a reference clock of ours"
# 8 samples a second for 60 s at most: it outlives no test.
fed_from=$(date +%s.%N)
"$H/chrony_refclock" "$tmp/ref.sock" $OFFSET $DRIFT_PPM 8 60 & feeder=$!
chronyd -x -d -u root -f "$tmp/chrony.conf" > "$tmp/chronyd.log" 2>&1 & chronyd=$!
# Synchronised: stratum 1 (30 s at most; 3 s here).
start=$(date +%s)
until track "$tmp/t" && [ "$(field stratum "$tmp/t")" = 1 ]; do
	if [ "$(date +%s)" -gt $((start + 30)) ] || ! kill -0 "$chronyd" 2>/dev/null; then
		bad "chronyd did not synchronise to the reference: $(tr '\n' ' ' < "$tmp/t")"
		sed 's/^/    /' "$tmp/chronyd.log"
		exit 1
	fi
	sleep 0.5
done
ok "synchronised after $(($(date +%s) - start)) s"
[ "$(field ref_id "$tmp/t")" = 55434C4B ] && ok "reference ID 55434C4B (UCLK, the refclock's)" ||
	bad "reference ID $(field ref_id "$tmp/t")"
[ "$(field leap_status "$tmp/t")" = 0 ] && ok "leap status 0 (normal)" ||
	bad "leap status $(field leap_status "$tmp/t")"

echo "== every field as chronyc -c tracking shows it"
# Ours, chronyc's, ours again: each of chronyc's values lies between our
# two, within the rounding it prints; again if chronyd updated in between.
compare() {
	python3 - "$tmp/before" "$tmp/csv" "$tmp/after" <<'EOF'
import sys
def ours(path):
    return dict(l.rstrip("\n").split("=", 1) for l in open(path) if "=" in l)
before, after = ours(sys.argv[1]), ours(sys.argv[3])
csv = open(sys.argv[2]).read().strip().split(",")
if before["ref_time_ns"] != after["ref_time_ns"]:
    sys.exit(2)                       # an update in between: again
ns = int(before["ref_time_ns"])
exact = {0: ("ref_id", before["ref_id"]), 2: ("stratum", before["stratum"]),
         3: ("ref_time", "%d.%09d" % (ns // 10**9, ns % 10**9)),
         13: ("leap_status", ["Normal", "Insert second", "Delete second",
                              "Not synchronised"][int(before["leap_status"])])}
floats = {4: "current_correction_s", 5: "last_offset_s", 6: "rms_offset_s",
          7: "freq_ppm", 8: "resid_freq_ppm", 9: "skew_ppm", 10: "root_delay_s",
          11: "root_dispersion_s", 12: "last_update_interval_s"}
bad = 0
for i, (name, want) in exact.items():
    if csv[i] != want:
        print("  FAIL: %s: chronyc %s, ours %s" % (name, csv[i], want)); bad = 1
for i, name in floats.items():
    a, b = float(before[name]), float(after[name])
    r = 0.5 * 10 ** -len(csv[i].split(".")[1]) + 1e-12
    if not min(a, b) - r <= float(csv[i]) <= max(a, b) + r:
        print("  FAIL: %s: chronyc %s, ours %.9g then %.9g" % (name, csv[i], a, b)); bad = 1
sys.exit(bad)
EOF
}
tries=0
while :; do
	track "$tmp/before"
	chronyc -h "$sock" -c tracking > "$tmp/csv"
	track "$tmp/after"
	compare; rc=$?
	tries=$((tries + 1))
	[ $rc = 2 ] && [ $tries -lt 20 ] && continue
	break
done
case $rc in
0) ok "14 fields as chronyc shows them: $(cat "$tmp/csv")" ;;
2) bad "chronyd updated during each of $tries comparisons" ;;
*) bad "fields differ from chronyc's: $(cat "$tmp/csv")" ;;
esac

echo "== the reference time advances as samples come"
first=$(field ref_time_ns "$tmp/after")
start=$(date +%s)
while track "$tmp/t" && [ "$(field ref_time_ns "$tmp/t")" -le "$first" ] &&
	[ "$(date +%s)" -le $((start + 20)) ]; do
	sleep 0.2
done
later=$(field ref_time_ns "$tmp/t")
[ -n "$later" ] && [ "$later" -gt "$first" ] &&
	ok "ref_time $first -> $later ns" || bad "ref_time stays at $first: $(tr '\n' ' ' < "$tmp/t")"

echo "== what the reference was fed"
python3 - "$tmp/t" $OFFSET $DRIFT_PPM <<'EOF' || fail=1
import sys
t = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
offset, drift = float(sys.argv[2]), float(sys.argv[3])
correction, freq = float(t["current_correction_s"]), float(t["freq_ppm"])
# The system clock falls behind the reference from OFFSET s, by DRIFT_PPM,
# for at most the feeder's 60 s: chronyc calls a positive correction
# "slow", and a negative frequency "slow" too.
ok = True
if not offset - 1e-6 <= correction <= offset + drift * 1e-6 * 60 + 1e-6:
    print("  FAIL: correction %g s, not between %g and %g" % (correction, offset,
          offset + drift * 60e-6)); ok = False
if abs(freq + drift) > 0.5:
    print("  FAIL: frequency %g ppm, not near -%g" % (freq, drift)); ok = False
if ok:
    print("  ok: correction %.9f s (fed %g s, then %g ppm), frequency %.3f ppm"
          % (correction, offset, drift, freq))
sys.exit(0 if ok else 1)
EOF

echo "== uclockd's error bound from chronyd"
UCLOCK_PAGE="$tmp/run/page"
export UCLOCK_PAGE
# The system clock drifts 20 ppm from the reference here: the drift rate
# the bound assumes must be above that (the default, 15 ppm, is for real
# clocks disciplined by chronyd).
"$BUILD/uclockd" --path "$UCLOCK_PAGE" --chrony "$sock" --max-drift 50 \
	2> "$tmp/uclockd.log" & daemon=$!
# bounds NAME: uclock bounds --json, and the time around it (ns).
bounds() {
	python3 -c 'import time; print(time.time_ns())' > "$tmp/$1.when"
	"$BUILD/uclock" bounds --json > "$tmp/$1.json" 2>&1
	python3 -c 'import time; print(time.time_ns())' >> "$tmp/$1.when"
}
# holds NAME EXPRESSION: over b (the bounds object), d, before, after,
# true_at(ns) (the reference's time at the kernel's REALTIME ns) and the
# chronyc -c tracking fields in c (a list) if $tmp/NAME.csv exists.
holds() {
	python3 - "$tmp/$1" "$2" "$fed_from" $OFFSET $DRIFT_PPM <<'EOF'
import json, os, sys
name, expr = sys.argv[1], sys.argv[2]
fed_from, offset, drift = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
try:
    d = json.load(open(name + ".json"))
except ValueError:
    sys.exit(1)
b = d["bounds"]
before, after = [int(x) for x in open(name + ".when").read().split()]
c = open(name + ".csv").read().strip().split(",") if os.path.exists(name + ".csv") else []
def true_at(ns):
    return ns + int((offset + drift * 1e-6 * (ns / 1e9 - fed_from)) * 1e9)
sys.exit(0 if eval(expr) else 1)
EOF
}
i=0
until bounds b && holds b "d['writer_pid'] == $daemon and b['source'] == 'chrony' and b['status'] == 'synchronized'"; do
	i=$((i + 1))
	if [ $i -gt 50 ]; then
		bad "uclockd's page never gave chronyd's bound: $(cat "$tmp/b.json")"
		sed 's/^/    /' "$tmp/uclockd.log"
		break
	fi
	sleep 0.2
done
[ $i -le 50 ] && ok "synchronised, from chrony, read by uclockd (pid $daemon)"
grep -q "error bound: synchronized, from chrony" "$tmp/uclockd.log" &&
	ok "uclockd says so: $(grep 'error bound: synchronized, from chrony' "$tmp/uclockd.log" | head -n 1)" ||
	bad "uclockd's log: $(cat "$tmp/uclockd.log")"
# The service's part against chronyc's figures a moment later: |system
# time| + root dispersion + root delay / 2, which move by microseconds a
# second here (the 20 ppm the system clock falls behind).
bounds b; chronyc -h "$sock" -c tracking > "$tmp/b.csv"
holds b "abs(b['service_error_ns'] - (abs(float(c[4])) + float(c[11]) + float(c[10]) / 2) * 1e9) <= 100000" &&
	ok "the service's part follows chronyc: $(python3 -c "import json; print(json.load(open('$tmp/b.json'))['bounds']['service_error_ns'])") ns; chronyc: $(cat "$tmp/b.csv")" ||
	bad "the service's part is not chronyd's: $(cat "$tmp/b.json") against $(cat "$tmp/b.csv")"
rm -f "$tmp/b.csv"
held=0 missed=0
for k in 1 2 3 4 5 6 7 8 9 10; do
	bounds b
	if holds b "b['status'] == 'synchronized' and before <= b['now_ns'] <= after and b['earliest_ns'] <= true_at(b['now_ns']) <= b['latest_ns']"; then
		held=$((held + 1))
	else
		missed=$((missed + 1)); cat "$tmp/b.json"
	fi
	sleep 0.3
done
[ $missed = 0 ] && ok "true time (the reference's) inside the interval at $held readings over 3 s" ||
	bad "true time outside the interval at $missed of 10 readings"

echo "== chronyd stopped, killed; no socket"
# Each must be an error within the helper's timeout; 20 s is a hang.
expect_error() {  # ERRNO WHAT SOCKET
	timeout 20 "$H/chrony_tracking" "$3" 300 > "$tmp/e"
	rc=$?
	if [ $rc = 124 ]; then bad "$2: no answer in 20 s (hung)"
	elif [ $rc = 1 ] && [ "$(field errno "$tmp/e")" = "$1" ]; then ok "$2: $1, $(field error "$tmp/e")"
	else bad "$2: exit $rc, $(tr '\n' ' ' < "$tmp/e")"; fi
}
kill -STOP "$chronyd"
expect_error ETIMEDOUT "chronyd stopped" "$sock"
kill -CONT "$chronyd"
track "$tmp/t" && ok "chronyd continued: answers again" || bad "after SIGCONT: $(tr '\n' ' ' < "$tmp/t")"
kill -9 "$chronyd"; wait "$chronyd" 2>/dev/null; chronyd=
expect_error ECONNREFUSED "chronyd killed (its socket file left)" "$sock"
# uclockd: chronyd gone, its last figures growing.
i=0
until bounds gone && holds gone "b['status'] == 'free-running' and b['source'] == 'chrony'"; do
	i=$((i + 1)); [ $i -gt 25 ] && break; sleep 0.2
done
if [ $i -le 25 ]; then
	sleep 1.2; bounds later
	holds later "b['status'] == 'free-running' and b['error_ns'] > json.load(open('$tmp/gone.json'))['bounds']['error_ns']" &&
		ok "chronyd gone: free running from its last figures, the bound growing" ||
		bad "free running: $(cat "$tmp/gone.json" "$tmp/later.json")"
else
	bad "chronyd gone: $(cat "$tmp/gone.json")"
fi
kill "$daemon"; wait "$daemon" 2>/dev/null; daemon=
expect_error ENOENT "no socket" "$tmp/none.sock"
left=$(ls "$tmp" | grep '^uclock\.')
[ -z "$left" ] && ok "no reply socket left in $tmp" || bad "left behind: $left"
exit $fail
