#!/bin/sh
# uclockd under faults, with readers on it: four threads read MONOTONIC,
# MONOTONIC_RAW, BOOTTIME and REALTIME, each reading bracketed by two system
# calls, while the daemon is stopped cleanly (SIGTERM) and started again,
# killed (SIGKILL) and started again, frozen (SIGSTOP) and continued, and
# restarted at once, round after round.  No reading may be more than 1 us
# outside its bracket, none may go back within a thread, and the process
# keeps one mapping of the page throughout.
BUILD=${BUILD:-build}
R="$BUILD/tests/helpers/fault_reader"
ROUNDS=${FAULT_ROUNDS:-3}
. tests/helpers/daemon.sh

start || exit 1
# The reader attaches at its first read (once the daemon has calibrated),
# then lives through every fault.
wait_attached "$BUILD/tests/helpers/page_reader" stat || exit 1
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
[ $rc = 0 ] && ok "$(field readings "$tmp/reader") readings: none more than 1 us outside the kernel's brackets, none back" ||
	bad "readings outside their brackets or back"
# Attached from the first read; off the page and back after each fault that
# makes readers leave (a clean stop, a kill, a freeze longer than 'hard').
backs=$(field modes "$tmp/reader" | tr ',' '\n' | grep -c '^shared$')
case $(field modes "$tmp/reader") in
shared,*) [ "$backs" -gt "$ROUNDS" ] && ok "the process left the page and came back $((backs - 1)) times" ||
	bad "modes $(field modes "$tmp/reader")" ;;
*) bad "not attached at the first read: modes $(field modes "$tmp/reader")" ;;
esac
[ "$(field mappings "$tmp/reader")" = 1 ] && ok "the page mapped once, after $((ROUNDS * 5)) faults" ||
	bad "page mapped $(field mappings "$tmp/reader") times"
n=$(grep -c "took over" "$tmp/daemon.log")
[ "$n" -ge "$((ROUNDS * 4))" ] && ok "each new daemon took over the same page ($n times)" ||
	{ bad "took over $n times"; cat "$tmp/daemon.log"; }

[ $fail = 0 ] && echo "faults: all checks passed" || echo "faults: failures above"
exit $fail
