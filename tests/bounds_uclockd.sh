#!/bin/sh
# The error bound through uclockd's page: the daemon reads the time
# service's figures once a second into the page, and every attached
# process's uclock_now_bounds() reads them there.
#  - attached: uclock bounds --json names the daemon as the figures'
#    writer, with the kernel's NTP state as their source;
#  - as root, where no time service keeps the kernel synchronised: the
#    kernel's state set with adjtimex() (maxerror, esterror, status: they
#    change no clock; the state found is put back at exit) is followed by
#    the page within seconds: synchronised, the service's error at least
#    what was set, an interval around a reading within the kernel's
#    REALTIME taken around the command (tests/bounds_kernel.c checks the
#    interval against readings taken around the call itself);
#    unsynchronised again: unknown, no interval;
#  - in-process, a drift rate that is not one gives no bound and says why.
# Exit 0 pass, 1 fail, 77 skip (no python3 to read the JSON).
BUILD=${BUILD:-build}
. tests/helpers/daemon.sh
U="$BUILD/uclock"
N="$BUILD/tests/helpers/ntp_state"
command -v python3 >/dev/null 2>&1 || { echo "SKIP no python3"; exit 77; }
saved=
cleanup_more() {
	[ -n "$saved" ] && "$N" set $saved
}

# bounds FILE: uclock bounds --json into FILE, with the kernel's REALTIME
# in ns just before and after, as "BEFORE AFTER" in FILE.when.
bounds() {
	python3 -c 'import time; print(time.time_ns())' > "$1.when"
	"$U" bounds --json > "$1" 2> "$1.err"
	st=$?
	python3 -c 'import time; print(time.time_ns())' >> "$1.when"
	return $st
}

# check FILE EXPRESSION: a python expression over b (the bounds object),
# d (the document), before and after.
check() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
b = d["bounds"]
before, after = [int(x) for x in open(sys.argv[1] + ".when").read().split()]
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}

# until EXPRESSION holds (10 s at most): the daemon reads once a second.
until_holds() {
	i=0
	while [ $i -lt 50 ]; do
		bounds "$tmp/b.json" && check "$tmp/b.json" "$1" && return 0
		sleep 0.2; i=$((i + 1))
	done
	return 1
}

UCLOCKD_ARGS="--chrony none"
start || exit 1
if until_holds "d['writer_pid'] == $daemon"; then
	ok "attached: the figures are uclockd's (pid $daemon)"
else
	bad "no figures from uclockd's page: $(cat "$tmp/b.json" "$tmp/b.json.err")"
fi
check "$tmp/b.json" "b['source'] == 'adjtimex'" &&
	ok "their source: the kernel's NTP state" || bad "source: $(cat "$tmp/b.json")"
grep -q "error bound: .*from adjtimex" "$tmp/daemon.log" &&
	ok "uclockd logs the bound's status and source" || bad "no 'error bound' line in the log"

state=$("$N" get 2>/dev/null)
status=${state%% *}
if [ "$(id -u)" != 0 ]; then
	echo "  skip: setting the kernel's NTP state needs root"
elif [ -z "$state" ] || [ $((status & 0x40)) = 0 ]; then
	echo "  skip: a time service keeps the kernel synchronised here ($state); left alone"
elif ! "$N" set $state 2>/dev/null; then
	echo "  skip: cannot set the kernel's NTP state here"
else
	saved=$state
	"$N" set $((status & ~0x40)) 30000 500
	if until_holds "b['status'] == 'synchronized'"; then
		ok "synchronised with maxerror 30 ms: the page follows"
		check "$tmp/b.json" "b['source'] == 'adjtimex' and b['service_error_ns'] >= 30000000" &&
			ok "the service's error: at least the 30 ms set" ||
			bad "service error: $(cat "$tmp/b.json")"
		check "$tmp/b.json" "before <= b['now_ns'] <= after and b['earliest_ns'] == b['now_ns'] - b['error_ns'] and b['latest_ns'] == b['now_ns'] + b['error_ns']" &&
			ok "an interval around a reading of the kernel's REALTIME" ||
			bad "the interval is not around the reading: $(cat "$tmp/b.json" "$tmp/b.json.when")"
		check "$tmp/b.json" "b['error_ns'] >= b['service_error_ns'] + b['drift_ns'] + b['uclock_error_ns']" &&
			ok "its parts add up" || bad "parts: $(cat "$tmp/b.json")"
	else
		bad "the page never showed the kernel synchronised: $(cat "$tmp/b.json")"
	fi
	"$N" set $((status | 0x40)) 16000000 16000000
	until_holds "b['status'] == 'unknown' and b['earliest_ns'] is None" &&
		ok "unsynchronised again: unknown, no interval" ||
		bad "still bounded after STA_UNSYNC: $(cat "$tmp/b.json")"
	"$N" set $saved && saved=
fi

UCLOCK_PAGE=off UCLOCK_MAX_DRIFT_PPM=fast bounds "$tmp/bad.json"
cp "$tmp/bad.json.err" "$tmp/bad.err"
check "$tmp/bad.json" "b['status'] == 'unknown' and b['source'] == 'none'" &&
	ok "UCLOCK_MAX_DRIFT_PPM=fast: no bound" || bad "a bad drift rate: $(cat "$tmp/bad.json")"
grep -q "UCLOCK_MAX_DRIFT_PPM='fast'" "$tmp/bad.err" &&
	ok "and says why: $(cat "$tmp/bad.err")" || bad "nothing said of the bad rate"
exit $fail
