#!/bin/sh
# uclockd under faults, with readers on it: four threads read MONOTONIC,
# MONOTONIC_RAW, BOOTTIME and REALTIME, each reading bracketed by two system
# calls, while the daemon is stopped cleanly (SIGTERM) and started again,
# killed (SIGKILL) and started again, frozen (SIGSTOP) and continued, and
# restarted at once, round after round.  No reading may be more than 1 us
# outside its bracket, none may go back within a thread, and the process
# keeps one mapping of the page throughout.
BUILD=${BUILD:-build}
D="${UCLOCKD:-$BUILD/uclockd}"
R="$BUILD/tests/helpers/fault_reader"
ROUNDS=${FAULT_ROUNDS:-3}
fail=0
tmp=$(mktemp -d)
daemon=
cleanup() {
	[ -n "$daemon" ] && kill -CONT "$daemon" 2>/dev/null
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ok() { printf '  ok: %s\n' "$1"; }
bad() { printf '  FAIL: %s\n' "$1"; fail=1; }
page="$tmp/run/page"
export UCLOCK_PAGE="$page"

start() {
	"$D" --path "$page" 2>>"$tmp/daemon.log" &
	daemon=$!
	i=0
	while [ $i -lt 50 ]; do
		grep -q "keeping .*(pid $daemon)" "$tmp/daemon.log" && return 0
		sleep 0.1; i=$((i + 1))
	done
	bad "uclockd did not start"; cat "$tmp/daemon.log"
	return 1
}
stop() {  # SIGNAL
	kill "-$1" "$daemon"; wait "$daemon" 2>/dev/null; daemon=
}

start || exit 1
# The reader attaches at its first read (once the daemon has calibrated),
# then lives through every fault.
i=0
while [ $i -lt 50 ] && ! "$BUILD/tests/helpers/page_reader" stat | grep -q '^mode=shared'; do
	sleep 0.1; i=$((i + 1))
done
seconds=$((ROUNDS * 7 + 2))
"$R" "$seconds" 4 > "$tmp/reader" & reader=$!
sleep 1
round=1
while [ $round -le "$ROUNDS" ]; do
	echo "== round $round: clean stop and start; kill and start; freeze; restarts"
	stop TERM; sleep 0.5; start
	sleep 1; stop KILL; sleep 0.3; start
	sleep 1; kill -STOP "$daemon"; sleep 0.5; kill -CONT "$daemon"
	sleep 1; stop TERM; start
	sleep 1; stop KILL; start
	sleep 1.2
	round=$((round + 1))
done
wait $reader; rc=$?
cat "$tmp/reader" | sed 's/^/  /'
field() { grep "^$1=" "$tmp/reader" | cut -d= -f2-; }
[ $rc = 0 ] && ok "$(field readings) readings: none more than 1 us outside the kernel's brackets, none back" ||
	bad "readings outside their brackets or back"
# Attached from the first read; off the page and back after each fault that
# makes readers leave (a clean stop, a kill, a freeze longer than 'hard').
backs=$(field modes | tr ',' '\n' | grep -c '^shared$')
case $(field modes) in
shared,*) [ "$backs" -gt "$ROUNDS" ] && ok "the process left the page and came back $((backs - 1)) times" ||
	bad "modes $(field modes)" ;;
*) bad "not attached at the first read: modes $(field modes)" ;;
esac
[ "$(field mappings)" = 1 ] && ok "the page mapped once, after $((ROUNDS * 5)) faults" ||
	bad "page mapped $(field mappings) times"
n=$(grep -c "took over" "$tmp/daemon.log")
[ "$n" -ge "$((ROUNDS * 4))" ] && ok "each new daemon took over the same page ($n times)" ||
	{ bad "took over $n times"; cat "$tmp/daemon.log"; }

[ $fail = 0 ] && echo "faults: all checks passed" || echo "faults: failures above"
exit $fail
