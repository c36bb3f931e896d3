#!/bin/sh
# `uclock bench`: the shape of its output, never its timings.
#  - --json parses; every method has name, kind, available, median_ns and
#    ratio_to_vdso; the key methods ran, at a finite positive cost; the vDSO
#    reference is 1.0x itself; unavailable methods give a reason;
#  - --threads 2 fills the "scaling" array with steps on 1 and 2 threads
#    (null without --threads);
#  - the table prints; --quick measures for half a second or more; bad
#    usage exits 2 and --help 0.
# Exit 0 pass, 1 fail, 77 skip (no python3 to read the JSON; the rest ran).
#
# -e is off on purpose: every command's status is checked explicitly, so
# that the script can only end with 0, 1 or 77.
set -u

BUILD=${BUILD:-build}
UCLOCK=$BUILD/uclock

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

if [ ! -x "$UCLOCK" ]; then
	echo "FAIL: $UCLOCK not found (run make first)"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-cli-bench.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

# expect STATUS ARGS...: uclock exits with STATUS.
expect() {
	want=$1; shift
	"$UCLOCK" "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "uclock $* exited $got, expected $want"
		sed 's/^/    /' "$tmp/err"
		return 1
	fi
	echo "ok: uclock $* exits $want"
}

expect 2 bench --duration 0
expect 2 bench --duration abc
expect 2 bench --duration 601
expect 2 bench --duration
expect 2 bench --threads 0
expect 2 bench --threads 257
expect 2 bench --threads 1.5
expect 2 bench extra
expect 2 bench --bogus
expect 2 bench -x
if expect 0 bench --help && ! grep -q -- '--duration' "$tmp/out"; then
	fail "bench --help does not describe --duration"
fi

# Half a second at least (the rounds end once it is past; never a bound
# from above: this machine may be busy).
if expect 0 bench --quick &&
	! grep -q '^uclock bench: [0-9]* rounds in \(0\.[5-9]\|[1-9]\)' "$tmp/out"; then
	fail "bench --quick does not measure for half a second: $(head -n 1 "$tmp/out")"
fi

if expect 0 bench --duration 0.1; then
	for want in 'uclock_mono_ns()' 'vdso clock_gettime(MONOTONIC)' \
		'source' 'the vDSO'; do
		grep -qF "$want" "$tmp/out" || fail "the table lacks '$want'"
	done
fi

if ! command -v python3 >/dev/null 2>&1; then
	[ "$failures" -eq 0 ] || exit 1
	echo "SKIP: no python3 to read the JSON; the usage checks passed"
	exit 77
fi

# The checks of one JSON report: $1 the file, $2 "threads" if it must have
# the scaling array.
cat >"$tmp/check.py" <<'EOF'
import json, math, sys

KEY = ["vdso clock_gettime(MONOTONIC)", "syscall clock_gettime(MONOTONIC)",
       "uclock_gettime(MONOTONIC)", "uclock_mono_ns()"]
REFERENCE = "vdso clock_gettime(MONOTONIC)"
problems = []

def check(ok, what):
    if not ok:
        problems.append(what)

def positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0

with open(sys.argv[1]) as f:
    report = json.load(f)
check(positive(report.get("duration_s")), "duration_s is not a positive number")
check(isinstance(report.get("uclock"), dict) and "source" in report["uclock"]
      and "mode" in report["uclock"], "no uclock.source and uclock.mode")
methods = report.get("methods")
check(isinstance(methods, list) and methods, "no methods array")
by_name = {}
for m in methods or []:
    name = m.get("name")
    for key in ("name", "kind", "available", "reason", "median_ns", "p99_ns",
                "ratio_to_vdso"):
        check(key in m, "method %r lacks %r" % (name, key))
    by_name[name] = m
    if m.get("available") is False:
        check(isinstance(m.get("reason"), str) and m["reason"],
              "unavailable method %r gives no reason" % name)
        check(m.get("median_ns") is None, "unavailable %r has a cost" % name)
    elif m.get("available") is True:
        check(m.get("reason") is None, "available %r has a reason" % name)
        check(positive(m.get("median_ns")), "%r: median_ns %r"
              % (name, m.get("median_ns")))
    else:
        problems.append("%r: available is not a boolean" % name)
for name in KEY:
    m = by_name.get(name)
    check(m is not None, "method %r missing" % name)
    if m is not None:
        check(m.get("available") is True, "%r not available" % name)
ratio = by_name.get(REFERENCE, {}).get("ratio_to_vdso")
check(isinstance(ratio, (int, float)) and abs(ratio - 1.0) < 1e-9,
      "the reference's ratio_to_vdso is %r, not 1.0" % ratio)
for name in KEY:
    r = by_name.get(name, {}).get("ratio_to_vdso")
    check(positive(r), "%r: ratio_to_vdso %r" % (name, r))

if sys.argv[2] == "threads":
    steps = report.get("scaling")
    check(isinstance(steps, list), "no scaling array")
    seen = set()
    for s in steps or []:
        for key in ("name", "threads", "calls_per_s", "ns_per_call",
                    "efficiency"):
            check(key in s, "scaling entry %r lacks %r" % (s, key))
        check(positive(s.get("calls_per_s")), "scaling entry %r: calls_per_s" % s)
        seen.add((s.get("name"), s.get("threads")))
    for name in KEY:
        for k in (1, 2):
            check((name, k) in seen, "no scaling entry for %r on %d" % (name, k))
else:
    check("scaling" in report and report["scaling"] is None,
          "scaling is not null without --threads")

for p in problems:
    print("FAIL: " + p)
print("%s: %d methods, %d problems" % (sys.argv[1], len(methods or []),
                                       len(problems)))
sys.exit(1 if problems else 0)
EOF

# json_report NAME MODE ARGS...: runs bench with ARGS and checks its JSON;
# MODE "threads" if it must have the scaling array, else "single".
json_report() {
	name=$1 mode=$2; shift 2
	if ! "$UCLOCK" bench "$@" --json >"$tmp/$name.json" 2>"$tmp/err"; then
		fail "uclock bench $* --json exited nonzero"
		sed 's/^/    /' "$tmp/err"
		return
	fi
	python3 "$tmp/check.py" "$tmp/$name.json" "$mode" ||
		fail "uclock bench $* --json: see above"
}

json_report single single --duration 0.3
json_report scaling threads --threads 2 --duration 0.4

if [ "$failures" -ne 0 ]; then
	echo "cli_bench: $failures check(s) failed"
	exit 1
fi
echo "cli_bench: all checks passed"
exit 0
