#!/bin/sh
# What the timekeeper costs, on this machine (figures, no pass or fail):
# read latency tails against the vDSO, an update's cost, the first read of
# a fresh process (in-process and with uclockd), uclockd's CPU time and
# wakeups while nothing changes, and values converted a minute after their
# capture.  PAST_SECONDS shortens the last (default 60).
BUILD=${BUILD:-build}
B="$BUILD/bench-timekeeper"
tmp=$(mktemp -d)
daemon=
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.1f us (median of %d; %.1f..%.1f)", v[int((NR + 1) / 2)] / 1e3, NR, v[1] / 1e3, v[NR] / 1e3 }'; }

echo "== in-process (UCLOCK_PAGE=off)"
UCLOCK_PAGE=off "$B" tail
UCLOCK_PAGE=off "$B" update
printf 'first read of a fresh process: '
for i in $(seq 20); do UCLOCK_PAGE=off "$B" first-read; done | median; echo

echo
echo "== with uclockd"
"$BUILD/uclockd" --path "$tmp/page" 2>/dev/null & daemon=$!
sleep 3
export UCLOCK_PAGE="$tmp/page"
printf 'first read of a fresh process: '
for i in $(seq 20); do "$B" first-read; done | median; echo
s0=$(awk '{ print $1 }' /proc/$daemon/schedstat)
c0=$(awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/$daemon/status)
sleep 10
s1=$(awk '{ print $1 }' /proc/$daemon/schedstat)
c1=$(awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/$daemon/status)
echo "uclockd, steady, 10 s: $(( (s1 - s0) / 10000 )) us of CPU a second" \
	"($(echo "scale=3; ($s1 - $s0) / 100000000" | bc) %), $(( (c1 - c0) / 10 )) wakeups a second"
"$B" tail | tail -n 4

echo
echo "== values captured and converted later (in-process)"
UCLOCK_PAGE=off "$B" past "${PAST_SECONDS:-60}"
