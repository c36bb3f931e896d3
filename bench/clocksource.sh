#!/bin/sh
# uclock where the kernel's clock is not read from the TSC, side by side
# with the C library in one process (uclock bench):
#  - the kernel's clocksource switched to another it offers (kvm-clock, hpet,
#    acpi_pm...; as root, and always switched back), with uclock verify;
#  - every kernel reading a system call (UCLOCK_VDSO=off), with uclock
#    verify, and the time the timekeeper's updates take.
# Figures only: `make test` checks correctness (tests/clocksource.sh).
BUILD=${BUILD:-build}
U="$BUILD/uclock"
CS=/sys/devices/system/clocksource/clocksource0
export UCLOCK_PAGE=off
show() { grep -E "^uclock: source|vdso clock_gettime\(MONOTONIC\)|libc clock_gettime\(MONOTONIC\)|syscall clock_gettime\(MONOTONIC\)|^uclock_gettime\(MONOTONIC\) |^uclock_mono_ns\(\) |C library|^updates|^counter rdtsc"; }

echo "== every kernel reading a system call (UCLOCK_VDSO=off)"
UCLOCK_VDSO=off "$U" bench --duration ${1:-2} | show
UCLOCK_VDSO=off "$U" verify --duration 1 | tail -n 1

original=$(cat "$CS/current_clocksource" 2>/dev/null)
other=
for c in kvm-clock hyperv_clocksource_tsc_page xen hpet acpi_pm; do
	case " $(cat "$CS/available_clocksource" 2>/dev/null) " in *" $c "*) other=$c; break ;; esac
done
if [ "$(id -u)" != 0 ] || [ -z "$other" ] || [ "$original" = "$other" ]; then
	echo "(not root, or no other clocksource to switch to: the second part is not run)"
	exit 0
fi
trap 'echo "$original" > "$CS/current_clocksource"' EXIT INT TERM
echo "$other" > "$CS/current_clocksource" || exit 1
echo
echo "== the kernel's clocksource $other (it was $original)"
"$U" bench --duration ${1:-2} | show
"$U" verify --duration 1 | tail -n 1
