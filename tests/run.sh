#!/bin/sh
# Runs every test (programs in $BUILD/tests, scripts tests/*.sh), each with a
# time limit; prints one line per test and ends with the totals.
# Usage: tests/run.sh [name ...]   (default: all)
# EMULATOR: a command that runs the programs of a cross build (make
# test-aarch64: qemu-aarch64-static -L SYSROOT); the scripts are then
# tests/emulated/*.sh, the others running the build's programs directly.
BUILD=${BUILD:-build}
LIMIT=${TEST_TIMEOUT:-180}
# The tests exercise the in-process timekeeper: a uclockd running on this
# machine must not take them over (tests/uclockd.sh runs its own).
UCLOCK_PAGE=off
export BUILD UCLOCK_PAGE
pass=0 fail=0 skip=0 failed=""

run_one() {
	name=$1; shift
	log="$BUILD/tests/$name.log"
	start=$(date +%s)
	timeout -k 5 "$LIMIT" "$@" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP $name: $(grep -m1 '^SKIP' "$log" | cut -c7-)" ;;
	124|137) fail=$((fail + 1)); failed="$failed $name"; echo "FAIL $name (timed out after ${LIMIT}s)"; sed 's/^/    /' "$log" | tail -n 20 ;;
	*) fail=$((fail + 1)); failed="$failed $name"; echo "FAIL $name (exit $rc)"; sed 's/^/    /' "$log" | tail -n 20 ;;
	esac
}

mkdir -p "$BUILD/tests"
wanted() {
	n=$1; shift
	[ $# -eq 0 ] && return 0
	for w in "$@"; do [ "$w" = "$n" ] && return 0; done
	return 1
}

for t in "$BUILD"/tests/*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	case $t in *.o|*.so|*.log) continue ;; esac
	name=$(basename "$t")
	wanted "$name" "$@" || continue
	# shellcheck disable=SC2086 # EMULATOR is a command and its arguments
	run_one "$name" ${EMULATOR:-} "$t"
done
# SKIP_SCRIPTS: scripts not to run (sanitizer builds skip those that link
# new programs against the library, which would need the sanitizer runtime).
scripts=tests/*.sh
[ -n "${EMULATOR:-}" ] && scripts=tests/emulated/*.sh
for t in $scripts; do
	name=$(basename "$t" .sh)
	case " ${SKIP_SCRIPTS:-} " in *" $name "*) continue ;; esac
	[ "$name" = run ] && continue
	wanted "$name" "$@" || continue
	run_one "$name" sh "$t"
done

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
