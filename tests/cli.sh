#!/bin/sh
# The uclock command: usage errors and exit codes, the report, watch, the
# man page (verify: tests/cli_verify.sh).
. tests/helpers/cli.sh

echo "== usage and exit codes"
expect 0 "uclock --help" "$U" --help
grep -q "verify" "$tmp/out" || bad "--help lists the commands"
expect 2 "unknown command" "$U" frobnicate
grep -q "unknown command" "$tmp/err" || bad "unknown command: one-line error"
grep -q "(see 'uclock --help')" "$tmp/err" || bad "unknown command: usage hint"
[ "$(wc -l < "$tmp/err")" = 1 ] || bad "usage error in one line"
expect 2 "unknown option to the report" "$U" --frob
for cmd in info vdso bench check verify watch; do
	expect 0 "uclock $cmd --help" "$U" $cmd --help
	expect 2 "uclock $cmd --no-such-option" "$U" $cmd --no-such-option
	expect 2 "uclock $cmd with a stray argument" "$U" $cmd stray
done
expect 0 "uclock run --help" "$U" run --help
expect 2 "uclock run --no-such-option" "$U" run --no-such-option
expect 2 "uclock run without a program" "$U" run
expect 2 "verify --duration abc" "$U" verify --duration abc
expect 2 "verify --duration 0" "$U" verify --duration 0
expect 2 "watch --interval -1" "$U" watch --interval -1
expect 2 "watch --count 0" "$U" watch --count 0

echo "== the report"
expect 0 "uclock" "$U"
for section in "This machine" "Which path each call takes here" "Cost per call" \
	"Verdict" "Advice" "uclock against the kernel"; do
	grep -q "$section" "$tmp/out" && ok "report has '$section'" || bad "report lacks '$section'"
done

echo "== watch"
expect 0 "watch --csv --count 3" "$U" watch --csv --interval 0.05 --count 3
[ "$(wc -l < "$tmp/out")" = 4 ] && ok "header and three lines" || bad "watch line count"
head -1 "$tmp/out" | grep -q "^time_s,realtime_ns,monotonic_ns" && ok "CSV header" ||
	bad "CSV header"
awk -F, 'NR > 1 && NF != 12 { exit 1 }' "$tmp/out" && ok "twelve CSV fields" || bad "CSV fields"
expect 0 "watch, human" "$U" watch --interval 0.05 --count 2
grep -q "MONOTONIC" "$tmp/out" || bad "watch shows MONOTONIC"

echo "== man page"
if command -v groff >/dev/null; then
	groff -man -Tutf8 -ww -z man/uclock.1 2>"$tmp/groff"
	[ ! -s "$tmp/groff" ] && ok "uclock.1 renders without warnings" ||
		{ bad "uclock.1 warnings"; cat "$tmp/groff"; }
	for cmd in info vdso bench check verify watch run; do
		grep -q "^\.B $cmd" man/uclock.1 || bad "uclock.1 documents $cmd"
	done
else
	echo "  (groff not installed: man page not rendered)"
fi

[ $fail = 0 ] && echo "cli: all checks passed" || echo "cli: failures above"
exit $fail
