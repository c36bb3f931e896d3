#!/bin/sh
# uclock check, which counts the system calls of each way to read time
# with ptrace: a raw clock_gettime makes one per call, the vDSO and every
# uclock reader none (also with UCLOCK_SOURCE=kernel, where the vDSO
# serves uclock); the JSON has the keys the spec names; the table runs;
# bad usage exits 2; a child that cannot be traced (under strace -f, when
# strace is here) gives exit 1 and JSON whose "error" says so.
# Exit 0 pass, 1 fail, 77 skip (no python3, or no tracing allowed here).
#
# -e is off on purpose: every command's status is checked explicitly, so
# that the script can only end with 0, 1 or 77.
set -u

BUILD=${BUILD:-build}
UCLOCK=$BUILD/uclock
CALLS=5000

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

if [ ! -x "$UCLOCK" ]; then
	echo "FAIL: $UCLOCK not found (run make first)"
	exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 not found (needed to read the JSON)"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-check.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

# Reads uclock check --json from a file.  Exit 0 all good, 1 a failure
# (printed), 77 tracing is not permitted here.
cat >"$tmp/read.py" <<'EOF'
import json
import sys

path, label, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
failures = 0


def fail(message):
    global failures
    print("FAIL: %s: %s" % (label, message))
    failures += 1


try:
    with open(path) as f:
        doc = json.load(f)
except ValueError as e:
    print("FAIL: %s: not JSON: %s" % (label, e))
    sys.exit(1)
if not isinstance(doc, dict):
    print("FAIL: %s: not a JSON object" % label)
    sys.exit(1)
if doc.get("error") is not None:
    if "cannot trace" in str(doc["error"]):
        print("SKIP: %s" % doc["error"])
        sys.exit(77)
    print("FAIL: %s: error: %s" % (label, doc["error"]))
    sys.exit(1)
if doc.get("calls") != calls:
    fail("calls is %r, not %d" % (doc.get("calls"), calls))
methods = doc.get("methods")
if not isinstance(methods, list) or not methods:
    print("FAIL: %s: no methods[]" % label)
    sys.exit(1)

by_name = {}
for m in methods:
    missing = [k for k in ("name", "kind", "calls", "syscalls", "syscalls_per_call",
                           "user_time_s", "system_time_s",
                           "system_time_per_call_ns", "cpu_time_per_call_ns",
                           "verdict", "error")
               if k not in m]
    if missing:
        fail("%r lacks %s" % (m.get("name"), ", ".join(missing)))
        continue
    by_name[m["name"]] = m
    if m["calls"] != calls:
        fail("%s: calls %r, not %d" % (m["name"], m["calls"], calls))
    if m.get("kind") == "counter":
        fail("%s: counters are not traced" % m["name"])


def expect(name, in_range, wanted_range, verdict):
    m = by_name.get(name)
    if m is None:
        fail("%s: not in methods[]" % name)
        return
    per_call = m["syscalls_per_call"]
    if not isinstance(per_call, (int, float)) or not in_range(per_call):
        fail("%s: %r system calls per call, wanted %s"
             % (name, per_call, wanted_range))
    if m["verdict"] != verdict:
        fail("%s: verdict %r, wanted %r" % (name, m["verdict"], verdict))


expect("syscall clock_gettime(MONOTONIC)", lambda x: 0.95 <= x <= 1.05,
       "0.95 to 1.05", "system call")
for name in ("vdso clock_gettime(MONOTONIC)", "uclock_gettime(MONOTONIC)",
             "uclock_mono_ns()"):
    expect(name, lambda x: 0 <= x < 0.01, "below 0.01", "user space")

# Every uclock reader stays in user space, whatever its first call found
# (a reader that set nothing up once made a system call on every call).
for m in methods:
    if m.get("kind") == "uclock":
        expect(m["name"], lambda x: 0 <= x < 0.01, "below 0.01", "user space")
sys.exit(1 if failures else 0)
EOF

# $1: label; the rest: the environment to run uclock check --json in.
check_json() {
	label=$1
	shift
	env "$@" "$UCLOCK" check --json --calls "$CALLS" >"$tmp/out.json" 2>"$tmp/err"
	rc=$?
	python3 "$tmp/read.py" "$tmp/out.json" "$label" "$CALLS"
	case $? in
	0) [ "$rc" -eq 0 ] || fail "$label: exit $rc after a good report" ;;
	77) exit 77 ;;
	*)
		fail "$label: the report of uclock check --json (exit $rc) is wrong"
		sed 's/^/    /' "$tmp/err"
		;;
	esac
}

check_json "default source"
check_json "UCLOCK_SOURCE=kernel" UCLOCK_SOURCE=kernel

# The table.
"$UCLOCK" check --calls 1000 >"$tmp/table" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "uclock check (table): exit $rc: $(cat "$tmp/err")"
for name in "syscall clock_gettime(MONOTONIC)" "vdso clock_gettime(MONOTONIC)" \
	"uclock_gettime(MONOTONIC)" "uclock_mono_ns()"; do
	grep -qF "$name" "$tmp/table" || fail "the table does not mention $name"
done
grep -q '^clock_gettime(MONOTONIC): ' "$tmp/table" ||
	fail "the table has no closing line on clock_gettime(MONOTONIC)"

# Usage.
usage_exit() {
	want=$1
	shift
	"$UCLOCK" check "$@" >"$tmp/usage" 2>&1
	rc=$?
	[ "$rc" -eq "$want" ] || fail "uclock check $*: exit $rc, wanted $want"
}
usage_exit 2 --calls 0
usage_exit 2 --calls 99
usage_exit 2 --calls 10000001
usage_exit 2 --calls 12x
usage_exit 2 --calls
usage_exit 2 --bogus
usage_exit 2 extra
usage_exit 0 --help
grep -q '^usage: uclock check' "$tmp/usage" || fail "--help prints no usage"
usage_exit 0 -h

# A child that cannot be traced: under strace -f it already has a tracer.
# LeakSanitizer cannot run under ptrace either: off for this run.
if command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true 2>/dev/null; then
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -o /dev/null "$UCLOCK" check --json --calls 100 \
		>"$tmp/denied.json" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 1 ] || fail "uclock check under strace -f: exit $rc, wanted 1"
	grep -q 'cannot trace a child' "$tmp/err" ||
		fail "uclock check under strace -f: no 'cannot trace a child' on stderr"
	python3 - "$tmp/denied.json" <<'EOF' ||
import json, sys
doc = json.load(open(sys.argv[1]))
sys.exit(0 if str(doc.get("error", "")).startswith("cannot trace a child") else 1)
EOF
		fail "uclock check under strace -f: no JSON with an error"
else
	echo "NOTE: strace cannot run here: the untraceable case is not tested"
fi

[ "$failures" -eq 0 ] || exit 1
echo "PASS"
exit 0
