#!/bin/sh
# libuclock-preload.so and `uclock run` with real, unmodified programs:
# date, python3, perl and a C program calling each interposed function,
# their readings against raw system calls; unserved and invalid clock ids as
# without the shim; the --stats line; a static program detected; threads,
# fork and exec under the shim; the --stats page mapped only when the
# descriptor named is still uclock run's (never a file the program reused it
# for).
BUILD=${BUILD:-build}
U="$BUILD/uclock"
C="$BUILD/tests/helpers/clock_calls"
H="$BUILD/tests/helpers/stats_fd"
SHIM="$(cd "$BUILD" && pwd)/libuclock-preload.so"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { printf '  ok: %s\n' "$1"; }
bad() { printf '  FAIL: %s\n' "$1"; fail=1; }
# The --stats line: "uclock: N clock calls: C from uclock's counter, V by
# the kernel's vDSO, S by system calls".
stats_of() { grep '^uclock: [0-9]* clock calls*:' "$1" | tail -1; }
total() { stats_of "$1" | sed 's/^uclock: \([0-9]*\) clock call.*/\1/'; }
served() { stats_of "$1" | sed "s/.* \([0-9]*\) from uclock's counter.*/\1/"; }
by_vdso() { stats_of "$1" | sed "s/.* \([0-9]*\) by the kernel's vDSO.*/\1/"; }
by_syscall() { stats_of "$1" | sed 's/.* \([0-9]*\) by system calls$/\1/'; }

echo "== the shim exports the C library's clock calls, nothing else"
exports=$(nm -D --defined-only "$SHIM" | awk '{print $3}' | sort | tr '\n' ' ')
[ "$exports" = "__clock_gettime __gettimeofday clock_getres clock_gettime ftime gettimeofday time timespec_get " ] &&
	ok "exports: $exports" || bad "exports: $exports"

echo "== a C program calling each interposed function"
"$U" run --stats "$C" check > "$tmp/check" 2>&1
[ $? = 0 ] && grep -q "every call within raw system calls" "$tmp/check" &&
	ok "clock_gettime (5 clocks + coarse), gettimeofday, time, timespec_get, ftime, the timezone" ||
	{ bad "check under the shim"; cat "$tmp/check"; }
[ "$(served "$tmp/check")" -gt 100000 ] 2>/dev/null && ok "$(stats_of "$tmp/check")" ||
	bad "stats: $(stats_of "$tmp/check")"

echo "== unserved and invalid clock ids: as without the shim"
"$C" errno > "$tmp/plain"
LD_PRELOAD="$SHIM" "$C" errno > "$tmp/shim"
cmp -s "$tmp/plain" "$tmp/shim" && ok "result and errno of clock_gettime and clock_getres for ids -20..39" ||
	{ bad "errno differs"; diff "$tmp/plain" "$tmp/shim" | head; }
LD_PRELOAD="$SHIM" "$C" null > "$tmp/null" && ok "a NULL result: the system call's answer, not a crash" ||
	{ bad "NULL results"; cat "$tmp/null"; }

echo "== the stats line counts the calls, where they were answered"
"$U" run --stats "$C" count 5000 > "$tmp/count" 2>&1
calls=$(grep '^calls=' "$tmp/count" | cut -d= -f2)
n=$(total "$tmp/count"); s=$(served "$tmp/count"); v=$(by_vdso "$tmp/count"); k=$(by_syscall "$tmp/count")
[ -n "$calls" ] && [ "$n" = "$calls" ] && [ $((s + v + k)) = "$calls" ] && [ "$s" -ge 5000 ] &&
	ok "$calls calls made, counted $s + $v + $k" || bad "counted $n = $s + $v + $k, made $calls"
# A short program (date: one call) runs while uclock calibrates: every
# served clock is the kernel's answer through its vDSO
# (in user space), not a system call; with the vDSO off, system calls.
"$U" run --stats date > /dev/null 2> "$tmp/one"
[ "$(by_syscall "$tmp/one")" = 0 ] && [ "$(by_vdso "$tmp/one")" -gt 0 ] &&
	ok "a short run, calibrating: $(stats_of "$tmp/one")" || bad "short run: $(stats_of "$tmp/one")"
grep -q "while uclock was calibrating.*start uclockd" "$tmp/one" &&
	ok "and it says calibration took the run" || bad "no calibration hint: $(cat "$tmp/one")"
UCLOCK_VDSO=off "$U" run --stats date > /dev/null 2> "$tmp/novdso"
[ "$(by_vdso "$tmp/novdso")" = 0 ] && [ "$(by_syscall "$tmp/novdso")" -gt 0 ] &&
	ok "UCLOCK_VDSO=off: $(stats_of "$tmp/novdso")" || bad "vDSO off: $(stats_of "$tmp/novdso")"
UCLOCK_SOURCE=kernel "$U" run --stats "$C" count 1000 > "$tmp/pass" 2>&1
[ "$(served "$tmp/pass")" = 0 ] && [ "$(by_syscall "$tmp/pass")" = 0 ] &&
	ok "pass-through: $(stats_of "$tmp/pass")" || bad "pass-through: $(stats_of "$tmp/pass")"
! grep -q "calibrating" "$tmp/pass" && ok "pass-through is not calibrating" ||
	bad "pass-through said calibrating"

echo "== date"
before=$(date +%s%N)
now=$("$U" run -- date +%s%N)
after=$(date +%s%N)
[ "$now" -ge "$before" ] && [ "$now" -le "$after" ] && ok "date +%s%N under the shim: $now" ||
	bad "date: $before $now $after"
"$U" run --stats -- date > /dev/null 2> "$tmp/date"
[ "$(total "$tmp/date")" -ge 1 ] 2>/dev/null && ok "date: $(stats_of "$tmp/date")" || bad "date stats"

echo "== python3"
if command -v python3 >/dev/null; then
	"$U" run --stats python3 - > "$tmp/py" 2>&1 <<'PY'
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
class Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]
def raw(clock):
    ts = Timespec()
    assert libc.syscall(228, clock, ctypes.byref(ts)) == 0   # SYS_clock_gettime
    return ts.sec * 10**9 + ts.nsec
assert "libuclock-preload.so" in os.environ.get("LD_PRELOAD", "")
bad = 0
for i in range(20000):
    a = raw(0); v = time.time_ns(); b = raw(0)
    bad += not (a - 100 <= v <= b + 100)
    a = raw(1); v = time.monotonic_ns(); b = raw(1)
    bad += not (a - 100 <= v <= b + 100)
print("python: %d readings outside the system calls' brackets" % bad)
raise SystemExit(1 if bad else 0)
PY
	[ $? = 0 ] && ok "$(grep '^python' "$tmp/py"); $(stats_of "$tmp/py")" || { bad "python3"; cat "$tmp/py"; }
else
	echo "  (python3 not installed)"
fi

echo "== perl"
if command -v perl >/dev/null && perl -MTime::HiRes -e 1 2>/dev/null; then
	"$U" run --stats perl - > "$tmp/pl" 2>&1 <<'PL'
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC CLOCK_REALTIME);
sub raw { my $ts = pack("qq", 0, 0); syscall(228, $_[0], $ts) == 0 or die; my ($s, $n) = unpack("qq", $ts); return $s * 1e9 + $n; }
my $bad = 0;
for (1 .. 20000) {
	my $a = raw(1); my $v = clock_gettime(CLOCK_MONOTONIC) * 1e9; my $b = raw(1);
	# perl's clock_gettime returns seconds as a double: microsecond-ish precision
	$bad++ unless $v >= $a - 1000 && $v <= $b + 1000;
	$a = raw(0); $v = Time::HiRes::time() * 1e9; $b = raw(0);
	$bad++ unless $v >= $a - 1000 && $v <= $b + 1000;
}
print "perl: $bad readings outside the system calls' brackets\n";
exit($bad ? 1 : 0);
PL
	[ $? = 0 ] && ok "$(grep '^perl' "$tmp/pl"); $(stats_of "$tmp/pl")" || { bad "perl"; cat "$tmp/pl"; }
else
	echo "  (perl with Time::HiRes not installed)"
fi

echo "== before the shim's own constructor has run"
EARLY="$(cd "$BUILD" && pwd)/tests/helpers/libearly_ctor.so"
LD_PRELOAD="$SHIM:$EARLY" /bin/true 2> "$tmp/early"
grep -q "early constructor: right" "$tmp/early" && ok "a library constructor's clock calls, answered right" ||
	{ bad "early constructor"; cat "$tmp/early"; }

echo "== threads, fork and exec under the shim"
LD_PRELOAD="$SHIM" "$C" threads > "$tmp/threads" && ok "$(cat "$tmp/threads")" || { bad "threads"; cat "$tmp/threads"; }
"$U" run --stats sh -c "\"$C\" count 100 && \"$C\" count 100" > "$tmp/exec" 2>&1
calls=$(grep '^calls=' "$tmp/exec" | cut -d= -f2 | awk '{ s += $1 } END { print s }')
n=$(total "$tmp/exec")
[ -n "$calls" ] && [ -n "$n" ] && [ "$n" -ge "$calls" ] && ok "two exec'd children counted on one line: $n >= $calls" ||
	bad "exec: $(cat "$tmp/exec")"

echo "== --stats: the shim maps uclock run's page, nothing else"
# The page: one inherited descriptor, high, named with the object's identity.
"$U" run --stats sh -c 'echo "$UCLOCK_RUN_STATS"
	for f in /proc/$$/fd/*; do
		case $(readlink "$f") in *memfd:uclock-run-stats*) echo "fd ${f##*/} $(stat -L -c %d:%i "$f")" ;; esac
	done' > "$tmp/where" 2>/dev/null
value=$(head -1 "$tmp/where"); fd=${value%%:*}
where=$(grep '^fd ' "$tmp/where" | tr '\n' ' ')
case $value in
*[!0-9:]* | '') bad "UCLOCK_RUN_STATS=$value" ;;
*) [ "$where" = "fd $fd ${value#*:} " ] && [ "$fd" -ge 100 ] &&
	ok "UCLOCK_RUN_STATS=$value: fd:dev:ino, the page's only descriptor" ||
	bad "UCLOCK_RUN_STATS=$value, descriptors of the page: $where" ;;
esac

# Under a descriptor limit of 100 or less, the page goes lower: still counted.
sh -c 'ulimit -n 50 && exec "$@"' sh "$U" run --stats "$C" count 100 > "$tmp/low" 2>&1
calls=$(grep '^calls=' "$tmp/low" | cut -d= -f2)
n=$(total "$tmp/low")
[ -n "$calls" ] && [ "$n" = "$calls" ] && ok "descriptor limit 50: $calls calls made, $n counted" ||
	{ bad "descriptor limit 50"; cat "$tmp/low"; }

# A program of the run reuses the numbers (fd 3, as a shell's `exec 3<>`,
# and the one named, high), then runs a program under the shim: the files
# are not written, nothing dies, the first program's calls are counted.
: > "$tmp/empty"
awk 'BEGIN { for (i = 0; i < 400; i++) printf "line %03d of a file the program owns\n", i }' > "$tmp/content"
for kind in empty content; do
	cp "$tmp/$kind" "$tmp/$kind.3"; cp "$tmp/$kind" "$tmp/$kind.named"
	"$U" run --stats sh -c '"$1" count 100 || exit
		n=${UCLOCK_RUN_STATS%%:*}
		exec 3<>"$2"
		"$3" reuse "${n:-100}" "$4" "$1" count 100' \
		sh "$C" "$tmp/$kind.3" "$H" "$tmp/$kind.named" > "$tmp/reuse" 2>&1
	rc=$?
	first=$(grep -m1 '^calls=' "$tmp/reuse" | cut -d= -f2)
	all=$(grep '^calls=' "$tmp/reuse" | cut -d= -f2 | awk '{ s += $1 } END { print s }')
	n=$(total "$tmp/reuse")
	cmp -s "$tmp/$kind" "$tmp/$kind.3" && cmp -s "$tmp/$kind" "$tmp/$kind.named" &&
		ok "$kind file on fd 3 and on the named fd: unchanged" ||
		bad "$kind file reusing the descriptor was written to"
	[ $rc = 0 ] && [ "$(grep -c '^calls=' "$tmp/reuse")" = 2 ] && ok "$kind file: both programs ran (exit 0)" ||
		{ bad "$kind file: exit $rc"; cat "$tmp/reuse"; }
	[ -n "$first" ] && [ -n "$n" ] && [ "$n" -ge "$first" ] && [ "$n" -le "$all" ] &&
		ok "$kind file: $n counted, the first program made $first" ||
		{ bad "$kind file: counted $n, the first program made $first"; cat "$tmp/reuse"; }
done

# The variable set by hand, naming a regular file with its own identity.
for kind in empty content; do
	cp "$tmp/$kind" "$tmp/fake.$kind"
	LD_PRELOAD="$SHIM" UCLOCK_RUN_STATS="3:$(stat -c %d:%i "$tmp/fake.$kind")" \
		"$C" count 100 3<>"$tmp/fake.$kind" > "$tmp/fake" 2>&1
	rc=$?
	cmp -s "$tmp/$kind" "$tmp/fake.$kind" && changed=no || changed=yes
	[ $rc = 0 ] && [ $changed = no ] &&
		ok "a regular $kind file, its own dev:ino named: not mapped, unchanged" ||
		{ bad "a regular $kind file named by hand: exit $rc, changed: $changed"; cat "$tmp/fake"; }
done

# Counters objects almost like uclock run's, and malformed values: refused.
line=$("$H" fake good "$SHIM" "$C" count 100 | grep '^good: ')
case $line in
"good: status=0 counted="*" changed=yes") [ "$line" != "good: status=0 counted=0 changed=yes" ] &&
	ok "an object made as uclock run makes it: counted (${line#*counted=})" || bad "$line" ;;
*) bad "an object made as uclock run makes it: $line" ;;
esac
refused=""
for m in unsealed no-sealing seals-unsealed small wrong-magic wrong-version wrong-ino wrong-dev \
	trailing extra missing empty-field space plus fd-overflow ino-overflow; do
	line=$("$H" fake $m "$SHIM" "$C" count 100 | grep "^$m: ")
	[ "$line" = "$m: status=0 counted=0 changed=no" ] && refused="$refused $m" || bad "${line:-$m: no result}"
done
ok "refused, the object untouched:$refused"

echo "== a program the shim cannot reach"
if cc -static -O1 -o "$tmp/static" tests/helpers/clock_calls.c -lpthread 2>/dev/null; then
	"$U" run --stats "$tmp/static" count 10 > "$tmp/static.out" 2>&1
	grep -q "is statically linked" "$tmp/static.out" && ok "static: $(grep 'statically' "$tmp/static.out")" ||
		{ bad "static binary not detected"; cat "$tmp/static.out"; }
	[ "$(served "$tmp/static.out")" = 0 ] && ok "and no call is claimed served" || bad "static: $(stats_of "$tmp/static.out")"
else
	echo "  (no static libc: static case not run)"
fi

echo "== uclock run's own behaviour"
"$U" run > /dev/null 2>&1; [ $? = 2 ] && ok "no program: exit 2" || bad "no program"
"$U" run --bogus true > /dev/null 2>&1; [ $? = 2 ] && ok "bad option: exit 2" || bad "bad option"
"$U" run no-such-program-anywhere > /dev/null 2>&1; [ $? = 127 ] && ok "missing program: exit 127" || bad "missing program"
"$U" run sh -c 'exit 7'; [ $? = 7 ] && ok "the program's exit status" || bad "exit status"
"$U" run --stats sh -c 'exit 5' 2>/dev/null; [ $? = 5 ] && ok "the program's exit status with --stats" || bad "exit status --stats"
"$U" run sh -c 'echo "$LD_PRELOAD"' | grep -q 'libuclock-preload.so' && ok "LD_PRELOAD set for the program" || bad "LD_PRELOAD"
LD_PRELOAD=/lib/x86_64-linux-gnu/libc.so.6 "$U" run sh -c 'echo "$LD_PRELOAD"' | grep -q 'libuclock-preload.so:/lib' &&
	ok "an existing LD_PRELOAD is kept" || bad "existing LD_PRELOAD"
UCLOCK_PRELOAD=/nonexistent "$U" run true 2>/dev/null; [ $? = 1 ] && ok "shim not found: exit 1" || bad "shim not found"

[ $fail = 0 ] && echo "preload: all checks passed" || echo "preload: failures above"
exit $fail
