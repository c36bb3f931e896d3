#!/bin/sh
# Progress of the long runs: on a terminal, uclock verify, bench and check,
# and bench/shared.sh (make bench-shared), draw a bar on stderr and erase
# it before their results; piped, stderr stays empty.  The terminal is a
# pseudo-terminal from script(1).
# Exit 0 pass, 1 fail, 77 skip (no script(1) to make a terminal).
. tests/helpers/cli.sh

# on_terminal NAME COMMAND: COMMAND's output through a terminal, in $tmp/NAME.
on_terminal() {
	script -qec "$2" /dev/null < /dev/null > "$tmp/$1" 2>&1
}

if ! command -v script >/dev/null || ! on_terminal probe true; then
	echo "SKIP: no script(1) to run the commands on a terminal"
	exit 77
fi

# bar NAME WHAT: a bar was drawn ("\r[###...] NN% ") and the line erased
# after it.
bar() {
	if ! grep -q "$(printf '\r')\[[# ]*\] *[0-9]*% " "$tmp/$1"; then
		bad "$2: no progress bar on a terminal"
	elif ! grep -q "$(printf '\r') \{79\}$(printf '\r')" "$tmp/$1"; then
		bad "$2: the bar is not erased"
	else
		ok "$2: a progress bar on a terminal, erased when done"
	fi
}

# quiet NAME WHAT COMMAND: piped, COMMAND writes nothing on stderr.
quiet() {
	sh -c "$3" > "$tmp/$1.out" 2> "$tmp/$1.err"
	if [ $? != 0 ]; then
		bad "$2, piped: exit status"
	elif [ -s "$tmp/$1.err" ]; then
		bad "$2, piped: stderr: $(head -c 200 "$tmp/$1.err")"
	else
		ok "$2, piped: nothing on stderr"
	fi
}

# progress_of NAME WHAT COMMAND
progress_of() {
	on_terminal "$1" "$3" || bad "$2 on a terminal: exit status"
	bar "$1" "$2"
	quiet "$1" "$2" "$3"
}

progress_of verify "uclock verify" "$U verify --duration 0.1"
progress_of bench "uclock bench" "$U bench --duration 0.1"
progress_of scaling "uclock bench --threads 2 --json" "$U bench --duration 0.1 --threads 2 --json"
progress_of check "uclock check" "$U check --calls 100"
if command -v python3 >/dev/null; then
	progress_of shared "bench/shared.sh" "BUILD=$BUILD sh bench/shared.sh 0.1"
	grep -q "in-process" "$tmp/shared" || bad "bench/shared.sh printed no table"
fi

[ $fail = 0 ] && echo "cli_progress: all checks passed" || echo "cli_progress: failures above"
exit $fail
