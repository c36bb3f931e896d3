#!/bin/sh
# The command and the daemon of a cross build, under the emulator that
# runs them (make test-aarch64: EMULATOR="qemu-aarch64-static -L ..."):
#  - uclock info names the counter (cntvct), its stated frequency and the
#    reason, as text and JSON, forced and not;
#  - the report and uclock bench print their tables (figures from an
#    emulator, not the CPU's: only their shape is checked);
#  - uclockd keeps a page, a reader attaches to it, and a clean stop marks
#    it stopped.
# Exit 0 pass, 1 fail, 77 skip (not a cross build under an emulator).
#
# -e is off on purpose: every command's status is checked explicitly.
set -u

BUILD=${BUILD:-build}
if [ -z "${EMULATOR:-}" ]; then
	echo "SKIP: no EMULATOR (run by make test-aarch64)"
	exit 77
fi
UCLOCK="$EMULATOR $BUILD/uclock"
UCLOCKD="$EMULATOR $BUILD/uclockd"

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-emulated.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
daemon=
cleanup() {
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

# Forced: the counter is CNTVCT_EL0 at the frequency CNTFRQ_EL0 states.
if UCLOCK_SOURCE=counter $UCLOCK info >"$tmp/info" 2>&1; then
	grep -q '^  source        cntvct (UCLOCK_SOURCE=counter)$' "$tmp/info" ||
		fail "info: the source is not cntvct, forced: $(grep '^  source' "$tmp/info")"
	grep -q '^  cpu counter   cntvct, stated [0-9.]* MHz$' "$tmp/info" ||
		fail "info: no stated frequency of cntvct"
	grep -q '^  ordered read  \(isb+cntvct\|cntvctss\)$' "$tmp/info" ||
		fail "info: ordered read $(grep 'ordered read' "$tmp/info")"
	grep -q '^  counter       CNTVCT_EL0, [0-9.]* MHz (CNTFRQ_EL0)$' "$tmp/info" ||
		fail "info: no generic timer section"
else
	fail "uclock info exited $?"; cat "$tmp/info"
fi

# Not forced: a reason either way (here the kernel is the emulator's host).
UCLOCK_SOURCE=auto $UCLOCK info >"$tmp/auto" 2>&1 || fail "uclock info (auto) failed"
grep -q '^  source        \(kernel\|cntvct\) (.\{10,\})$' "$tmp/auto" ||
	fail "info (auto): $(grep '^  source' "$tmp/auto")"

if UCLOCK_SOURCE=counter $UCLOCK info --json >"$tmp/info.json" 2>&1; then
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$tmp/info.json" <<'EOF' || fail "info --json"
import json, sys
d = json.load(open(sys.argv[1]))
u, c = d["uclock"], d["platform"]["cntvct"]
ok = (u["source"] == "cntvct" and u["counter"] == "cntvct" and
      u["counter_nominal_hz"] > 0 and c["present"] is True and
      c["frequency_hz"] == u["counter_nominal_hz"] and
      u["counter_read"] in ("isb+cntvct", "cntvctss"))
if not ok:
    print("info --json:", u, c)
sys.exit(0 if ok else 1)
EOF
	fi
else
	fail "uclock info --json exited $?"
fi

# The report: the path uclock takes, named.
UCLOCK_SOURCE=counter $UCLOCK >"$tmp/report" 2>&1 || fail "uclock (report) failed"
grep -q 'uclock  *user space, from the counter (CNTVCT_EL0)' "$tmp/report" ||
	fail "report: $(grep '^  uclock ' "$tmp/report")"
grep -q '^  counter       CNTVCT_EL0, ' "$tmp/report" || fail "report: no counter line"

# The bench table: every uclock reader ran (figures are the emulator's).
UCLOCK_SOURCE=counter $UCLOCK bench --duration 0.5 >"$tmp/bench" 2>&1 ||
	fail "uclock bench failed"
for m in 'counter cntvct' 'counter isb+cntvct' 'uclock_mono_ns()' \
	 'uclock_gettime(MONOTONIC)' 'syscall clock_gettime(MONOTONIC)'; do
	grep -q "^$m  *[a-z]*  *[0-9.]* ns  *[0-9.]* ns" "$tmp/bench" ||
		fail "bench: no figures for $m"
done
sed -n '1,6p' "$tmp/bench"

# uclockd: a page, a reader on it, a clean stop.
UCLOCK_SOURCE=counter $UCLOCKD --path "$tmp/page" 2>"$tmp/daemon.log" &
daemon=$!
i=0
while [ ! -f "$tmp/page" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ -f "$tmp/page" ]; then
	# Not forced: the daemon's word is the reader's reason.
	UCLOCK_SOURCE=auto UCLOCK_PAGE="$tmp/page" $UCLOCK info >"$tmp/attached" 2>&1
	grep -q "^  shared page   attached to $tmp/page (uclockd pid" "$tmp/attached" ||
		fail "reader not attached: $(grep 'shared page' "$tmp/attached")"
	grep -q '^  source        cntvct (uclockd (pid [0-9]*) keeps its page from the counter' \
		"$tmp/attached" || fail "attached: $(grep '^  source' "$tmp/attached")"
else
	fail "uclockd made no page"; cat "$tmp/daemon.log"
fi
kill "$daemon"
wait "$daemon"
rc=$?
daemon=
[ $rc -eq 0 ] || fail "uclockd exited $rc on SIGTERM"
grep -q 'marked stopped' "$tmp/daemon.log" || fail "uclockd: $(cat "$tmp/daemon.log")"

[ $failures -eq 0 ] || exit 1
echo "PASS: info, report, bench and uclockd under $EMULATOR"
exit 0
