#!/bin/sh
# uclock where the kernel's clocksource is not tsc: as root, where another
# clocksource is available (kvm-clock, hpet, acpi_pm...), switch to it, and
# check that uclock chooses as its policy says (in-process, and with
# uclockd, which checks the TSC across CPUs), agrees with the kernel
# ('uclock verify': brackets, errno parity, time warps across CPUs), and
# costs less than the C library.  The clocksource is always put back, even
# on failure or interruption.
BUILD=${BUILD:-build}
R="$BUILD/tests/helpers/page_reader"
U="$BUILD/uclock"
CS=/sys/devices/system/clocksource/clocksource0
. tests/helpers/daemon.sh

skip() { echo "SKIP $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root: the clocksource cannot be switched"
[ -w "$CS/current_clocksource" ] || skip "$CS/current_clocksource is not writable"
original=$(cat "$CS/current_clocksource")
other=
for c in kvm-clock hyperv_clocksource_tsc_page xen hpet acpi_pm; do
	case " $(cat "$CS/available_clocksource") " in *" $c "*) other=$c; break ;; esac
done
[ -n "$other" ] || skip "no clocksource but $(cat "$CS/available_clocksource")"
[ "$original" = tsc ] || skip "the clocksource is $original already: not switched"

restore() {
	echo "$original" > "$CS/current_clocksource"
	[ "$(cat "$CS/current_clocksource")" = "$original" ] ||
		echo "  FAIL: the clocksource could not be put back to $original"
}
cleanup_more() { restore; }

echo "== the clocksource switched from $original to $other"
echo "$other" > "$CS/current_clocksource" || skip "the kernel refused $other"
[ "$(cat "$CS/current_clocksource")" = "$other" ] || { restore; skip "$other not taken"; }

field_of() { sed -n "s/^$1=//p" "$2" | head -n 1; }
UCLOCK_PAGE=off "$R" stat > "$tmp/own"
source=$(field_of source "$tmp/own")
reason=$(field_of trust "$tmp/own")
echo "  in-process: source $source: $reason"
case "$source:$reason" in
tsc:*"KVM keeps it stable"* | tsc:*"marks it reliable"*)
	ok "in-process, the TSC is used: $reason" ;;
kernel:*"run uclockd"*)
	ok "in-process, nothing vouches for the TSC: passes through ($reason)" ;;
*) bad "in-process: source '$source', reason '$reason'" ;;
esac

UCLOCK_PAGE=off timeout 60 "$U" > "$tmp/report" 2>&1
if [ "$source" = tsc ]; then
	grep -q "Trusted because: $reason" "$tmp/report" &&
		ok "the report says why the TSC is trusted here" ||
		{ bad "report"; sed -n '/^Verdict/,/^uclock /p' "$tmp/report"; }
else
	grep -q "Start uclockd" "$tmp/report" && ok "the report advises starting uclockd" ||
		{ bad "report"; sed -n '/^Verdict/,/^uclock /p' "$tmp/report"; }
fi
grep -q "The kernel still lists tsc: switching its clocksource" "$tmp/report" &&
	ok "the report gives the classic advice (the clocksource back to tsc)" ||
	{ bad "no clocksource advice"; sed -n '/^Advice/,/^uclock /p' "$tmp/report"; }

UCLOCK_PAGE=off timeout 120 "$U" verify --duration 1 > "$tmp/verify" 2>&1 &&
	ok "in-process: uclock verify passes ($(grep '^time warps' "$tmp/verify"))" ||
	{ bad "in-process: uclock verify"; sed 's/^/    /' "$tmp/verify"; }

echo "== with uclockd, which checks the TSC across every CPU"
if start && wait_attached "$R" stat; then
	"$R" stat > "$tmp/shared"
	reason=$(field_of trust "$tmp/shared")
	case $reason in
	*"found in step on all"*"by uclockd"* | *"KVM keeps it stable"* | *"marks it reliable"* | \
	*"uclockd (pid "*") keeps its page from the TSC, found in step on all"*)
		ok "attached: $reason" ;;
	*) bad "attached, but the reason says: $reason" ;;
	esac
	grep -q "TSC.*in step\|keeping" "$tmp/daemon.log" && ok "uclockd: $(grep keeping "$tmp/daemon.log" | tail -n 1 | cut -c1-160)"
	timeout 120 "$U" verify --duration 1 > "$tmp/verify.shared" 2>&1 &&
		ok "attached: uclock verify passes" ||
		{ bad "attached: uclock verify"; sed 's/^/    /' "$tmp/verify.shared"; }
	stop TERM
else
	grep -q "cannot be trusted" "$tmp/daemon.log" &&
		ok "uclockd refuses: $(tail -n 1 "$tmp/daemon.log")" || bad "uclockd did not start"
fi

echo "== cost against the C library, here (figures, not a check)"
UCLOCK_PAGE=off "$U" bench --duration 0.5 2>/dev/null | grep -E "vdso clock_gettime\(MONOTONIC\)|libc clock_gettime\(MONOTONIC\)|uclock_gettime\(MONOTONIC\)|uclock_mono_ns" | sed 's/^/  /'

restore
[ "$(cat "$CS/current_clocksource")" = "$original" ] && ok "the clocksource is $original again" ||
	bad "the clocksource was not put back"
[ $fail = 0 ] && echo "clocksource: all checks passed" || echo "clocksource: failures above"
exit $fail
