#!/bin/sh
# uclockd under a service manager: it says READY=1 on systemd's notify
# socket once its page is calibrated (so that a process started then reads
# the page from its first call), STOPPING=1 when stopped; a notify socket
# that is wrong or gone is logged, never fatal.  The unit verifies, lets
# the daemon read the kernel's NTP state and chronyd's socket (the error
# bound's sources), and systemd-analyze rates its exposure 2 or less.
BUILD=${BUILD:-build}
R="$BUILD/tests/helpers/page_reader"
. tests/helpers/daemon.sh

# Listen on the notify socket ($1; '@' for an abstract one): each message
# on a line of $2, until $3 messages or 10 s.
listen() {
	python3 - "$1" "$3" > "$2" <<'EOF' &
import socket, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + name[1:] if name.startswith("@") else name)
s.settimeout(10)
for _ in range(int(sys.argv[2])):
    try:
        print(s.recv(4096).decode(), flush=True)
    except socket.timeout:
        break
EOF
	listener=$!
	i=0  # until it is bound
	while [ $i -lt 50 ]; do
		case $1 in
		@*) grep -q "@${1#@}" /proc/net/unix 2>/dev/null && return 0 ;;
		*) [ -S "$1" ] && return 0 ;;
		esac
		sleep 0.1; i=$((i + 1))
	done
	bad "the listener did not bind $1"
}

wait_for() {  # TEXT FILE: 5 s at most
	i=0
	while [ $i -lt 50 ]; do
		grep -qx "$1" "$2" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

if ! command -v python3 >/dev/null; then
	echo "SKIP python3 not installed (the notify socket's listener)"; exit 77
fi

echo "== READY=1 once calibrated, STOPPING=1 at the stop"
for sock in "$tmp/notify" "@uclock-test-$$"; do
	listen "$sock" "$tmp/said" 2
	NOTIFY_SOCKET=$sock start || exit 1
	if wait_for READY=1 "$tmp/said"; then
		"$R" stat > "$tmp/stat"
		[ "$(field mode "$tmp/stat")" = shared ] &&
			ok "$sock: READY=1; a process started then reads the page at once" ||
			bad "$sock: READY=1 before the page is usable: $(field reason "$tmp/stat")"
	else
		bad "$sock: no READY=1"; cat "$tmp/daemon.log"
	fi
	stop TERM
	wait_for STOPPING=1 "$tmp/said" && ok "$sock: STOPPING=1 on SIGTERM" ||
		bad "$sock: no STOPPING=1: $(cat "$tmp/said")"
	wait "$listener" 2>/dev/null
	[ "$(grep -c . "$tmp/said")" = 2 ] && ok "$sock: nothing else said" ||
		bad "$sock: said $(cat "$tmp/said")"
done

echo "== a notify socket that is wrong or gone"
for sock in "relative/name" "$tmp/nobody-listens"; do
	: > "$tmp/daemon.log"
	NOTIFY_SOCKET=$sock start || exit 1
	wait_attached "$R" stat && ok "'$sock': the page is kept all the same"
	grep -q "notify" "$tmp/daemon.log" && ok "'$sock': logged" ||
		bad "'$sock': not logged: $(cat "$tmp/daemon.log")"
	stop TERM
done

echo "== the systemd unit"
if command -v systemd-analyze >/dev/null; then
	sed "s|@SBINDIR@/uclockd|$(cd "$BUILD" && pwd)/uclockd|" packaging/uclockd.service.in \
		> "$tmp/uclockd.service"
	systemd-analyze verify --man=no "$tmp/uclockd.service" >"$tmp/unit" 2>&1 &&
		ok "uclockd.service verifies" || { bad "uclockd.service"; cat "$tmp/unit"; }
	grep -qx "Type=notify" packaging/uclockd.service.in && ok "Type=notify" ||
		bad "the unit does not wait for readiness"
	# The error bound reads the kernel's NTP state: ProtectClock= refuses
	# adjtimex() even read-only, and @system-service does not list it.
	! grep -q "^ProtectClock=yes" packaging/uclockd.service.in &&
	grep -q "^SystemCallFilter=.*adjtimex.*clock_adjtime" packaging/uclockd.service.in &&
		ok "adjtimex() and clock_adjtime() allowed (the error bound's source)" ||
		bad "the unit refuses the read-only adjtimex() the error bound needs"
	grep -q "^ReadWritePaths=-/run/chrony" packaging/uclockd.service.in &&
		ok "chronyd's socket directory reachable" || bad "the unit cannot reach chronyd's socket"
	if systemd-analyze security --offline=true "$tmp/uclockd.service" >"$tmp/security" 2>&1; then
		level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$tmp/security")
		awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 2.0) }' &&
			ok "exposure $level (2 or less)" || { bad "exposure '$level'"; grep '✗' "$tmp/security"; }
	else
		echo "  (systemd-analyze security --offline not supported: not rated)"
	fi
else
	echo "  (systemd-analyze not installed: the unit not checked)"
fi

[ $fail = 0 ] && echo "service: all checks passed" || echo "service: failures above"
exit $fail
