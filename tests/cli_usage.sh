#!/bin/sh
# The commands' surface: every --help in one layout, every usage error in
# one line naming what was wrong, one version everywhere, and the bash
# completion offering only what the commands accept.
. tests/helpers/cli.sh
COMMANDS="info vdso bench check verify watch run bounds"

echo "== --help: one layout"
for cmd in $COMMANDS; do
	"$U" $cmd --help > "$tmp/help" 2>&1 || bad "$cmd --help: exit $?"
	head -n 1 "$tmp/help" | grep -q "^usage: uclock $cmd" || bad "$cmd: first line is not its usage"
	[ -z "$(sed -n 2p "$tmp/help")" ] || bad "$cmd: no blank line after the usage"
	grep -q '^  -h, --help  *this help$' "$tmp/help" || bad "$cmd: no '-h, --help  this help'"
	grep -q '^Exit status: ' "$tmp/help" || bad "$cmd: no exit status"
	# Each option line: two spaces, the option, two spaces or more, text.
	bad_lines=$(grep -- '^ *-' "$tmp/help" | grep -v '^  -[-a-z].*[^ ]  \+[^ ]' | grep -v '^  -h, --help')
	[ -z "$bad_lines" ] || bad "$cmd: option lines out of layout: $bad_lines"
done
ok "checked the help of: $COMMANDS"

echo "== usage errors: one line, naming what was wrong"
error() {  # WHAT-MUST-APPEAR ARGS...
	want=$1; shift
	"$U" "$@" > "$tmp/out" 2> "$tmp/err"
	st=$?
	if [ $st = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -qF -- "$want" "$tmp/err" &&
	   [ ! -s "$tmp/out" ]; then
		ok "uclock $*: $(cat "$tmp/err")"
	else
		bad "uclock $*: exit $st, said: $(cat "$tmp/err")"
	fi
}
for cmd in $COMMANDS; do
	error "'--no-such-option'" $cmd --no-such-option
	error "'-Z'" $cmd -Z
done
error "'--duration'" bench --duration
error "'--calls'" check --calls
error "'--interval'" watch --interval
error "'--dump'" vdso --dump
error "'--duration'" verify --duration
error "'x'" bench --duration x
error "'stray'" info stray
error "'stray'" bounds stray
error "'frobnicate'" frobnicate
error "'--frob'" --frob
error "'stray'" --json stray
error "'--csv' and '--json'" watch --json --csv
"$BUILD/uclockd" --no-such-option 2> "$tmp/err"
[ $? = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q "'--no-such-option'" "$tmp/err" &&
	ok "uclockd --no-such-option: $(cat "$tmp/err")" || bad "uclockd: $(cat "$tmp/err")"
for arg in "--max-drift 0" "--max-drift fast" "--max-drift 100001" "--chrony"; do
	"$BUILD/uclockd" $arg 2> "$tmp/err"
	st=$?
	want=$(echo "$arg" | awk '{ print ($2 == "" ? $1 : $2) }')
	[ $st = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -qF -- "'$want'" "$tmp/err" &&
		ok "uclockd $arg: $(cat "$tmp/err")" || bad "uclockd $arg: exit $st, $(cat "$tmp/err")"
done
"$BUILD/uclockd" --interval 9 2> "$tmp/err"
[ $? = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q "'9'" "$tmp/err" &&
	ok "uclockd --interval 9: $(cat "$tmp/err")" || bad "uclockd: $(cat "$tmp/err")"

echo "== one version"
v=$(sed -n 's/^#define UCLOCK_VERSION_STRING "\(.*\)"/\1/p' include/uclock.h)
[ -n "$v" ] || bad "no UCLOCK_VERSION_STRING in uclock.h"
[ "$("$U" --version)" = "uclock $v" ] && ok "uclock --version: $v" || bad "uclock --version: $("$U" --version)"
[ "$("$BUILD/uclockd" --version)" = "uclockd (uclock) $v" ] && ok "uclockd --version: $v" ||
	bad "uclockd --version: $("$BUILD/uclockd" --version)"
[ "$(make -s --no-print-directory print-version)" = "$v" ] && ok "the Makefile's VERSION: $v" ||
	bad "the Makefile's VERSION: $(make -s --no-print-directory print-version)"
head -n 1 debian/changelog | grep -q "^uclock ($v-" && ok "debian/changelog: $v" ||
	bad "debian/changelog: $(head -n 1 debian/changelog)"

echo "== bash completion"
if command -v bash >/dev/null; then
	complete_words() {  # WORDS...: what completing the last word offers
		bash -c '
			_command_offset() { :; }
			. packaging/uclock.bash-completion
			COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
			_uclock
			printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
	}
	for cmd in $COMMANDS; do
		complete_words uclock "$cmd" - > "$tmp/offered"
		[ -s "$tmp/offered" ] || bad "completion offers nothing for $cmd"
		"$U" $cmd --help > "$tmp/help"
		for opt in $(cat "$tmp/offered"); do
			[ "$opt" = -- ] && continue
			grep -qe "  $opt\b" -e "$opt[ ,]" "$tmp/help" || bad "completion offers $cmd $opt, which $cmd's help does not list"
		done
		for opt in $(grep -o -- '--[a-z][a-z-]*' "$tmp/help" | sort -u); do
			grep -qx -- "$opt" "$tmp/offered" || bad "completion misses $cmd $opt"
		done
	done
	complete_words uclock "" > "$tmp/offered"
	for cmd in $COMMANDS; do
		grep -qx "$cmd" "$tmp/offered" || bad "completion misses the command $cmd"
	done
	# The options of uclock itself, as the usage lines of its help give them.
	complete_words uclock - > "$tmp/offered"
	"$U" --help > "$tmp/help"
	for opt in $(sed '/^$/q' "$tmp/help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -qx -- "$opt" "$tmp/offered" || bad "completion misses uclock $opt"
	done
	for opt in $(cat "$tmp/offered"); do
		grep -qe "$opt\b" "$tmp/help" || bad "completion offers uclock $opt, which uclock --help does not list"
	done
	ok "completion checked against every command's help"
else
	echo "  (bash not installed: completion not checked)"
fi

[ $fail = 0 ] && echo "cli_usage: all checks passed" || echo "cli_usage: failures above"
exit $fail
