# Sourced by the test scripts that run uclockd (faults, sandbox, uclockd):
# ok/bad, a temporary directory removed on exit, and a daemon on $page
# started, stopped, and never left behind, even frozen.  Set BUILD first;
# a script with more to clean up defines cleanup_more again.
D="${UCLOCKD:-$BUILD/uclockd}"   # another build's daemon (sanitizer runs)
fail=0
tmp=$(mktemp -d)
daemon=
cleanup_more() { :; }
page="$tmp/run/page"
export UCLOCK_PAGE="$page"

ok() { printf '  ok: %s\n' "$*"; }
bad() { printf '  FAIL: %s\n' "$*"; fail=1; }
field() { grep "^$1=" "$2" | head -n 1 | cut -d= -f2-; }

cleanup() {
	cleanup_more
	[ -n "$daemon" ] && kill -CONT "$daemon" 2>/dev/null
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# uclockd on $page, once it says it keeps it (5 s at most).
start() {  # uclockd's options beyond --path: $UCLOCKD_ARGS
	"$D" --path "$page" ${UCLOCKD_ARGS:-} 2>>"$tmp/daemon.log" &
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

# Until a new process attaches (the daemon calibrates for a millisecond or
# two after it starts): COMMAND prints "mode=shared" when one does.
wait_attached() {  # COMMAND...
	i=0
	while [ $i -lt 50 ]; do
		"$@" > "$tmp/attached" 2>&1
		grep -q 'mode=shared$' "$tmp/attached" && return 0
		sleep 0.1; i=$((i + 1))
	done
	bad "no reader attaches to uclockd's page: $(cat "$tmp/attached")"
	return 1
}
