#!/bin/sh
# The manual pages: every page in man/ renders without a single groff
# warning (the .so links through the tree they are installed in); every
# public function of include/uclock.h has a page, its own or a .so link to
# one that names it; every UCLOCK_ variable the library or the shim reads
# is in libuclock(7)'s ENVIRONMENT, and every one the tools read there or in
# their own page; every field of struct uclock_stat is described in
# uclock_stat(3), and nothing else is; `make install` puts the pages in
# man3 and man7, where the links resolve, and `make uninstall` takes them
# away.
# Exit 0 pass, 1 fail, 77 skip (groff missing).
#
# -e is off on purpose: every command's status is checked explicitly, so
# that the script can only end with 0, 1 or 77.
set -u

BUILD=${BUILD:-build}
HEADER=include/uclock.h

if ! command -v groff >/dev/null 2>&1; then
	echo "SKIP: groff not installed"
	exit 77
fi
if [ ! -f Makefile ] || [ ! -f "$HEADER" ] || [ ! -d man ]; then
	echo "FAIL: run from the top of the source tree"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-man.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

fail=0
ok() { printf '  ok: %s\n' "$1"; }
bad() { printf '  FAIL: %s\n' "$1"; fail=1; }

# The target of a .so link page (its only line), or nothing.
so_target() {
	sed -n '1s/^\.so[ 	]\{1,\}\([^ 	]*\)[ 	]*$/\1/p' "$1"
}

# The text of a page's section NAME (.SH NAME up to the next .SH).
section() {
	awk -v want="$2" '/^\.SH/ { sub(/^\.SH[ \t]+/, ""); gsub(/"/, "");
				   inside = ($0 == want); next }
			  inside' "$1"
}

# The tags of the .TP paragraphs of a section (or, with a third argument,
# of a subsection .SS of it): the first word after the font macro.
tags() {
	awk -v want="$2" -v sub_want="${3:-}" '
		/^\.SH/ { s = $0; sub(/^\.SH[ \t]+/, "", s); gsub(/"/, "", s);
			  in_sh = (s == want); in_ss = (sub_want == ""); next }
		/^\.SS/ { s = $0; sub(/^\.SS[ \t]+/, "", s); gsub(/"/, "", s);
			  in_ss = (sub_want == "" || s == sub_want); next }
		in_sh && in_ss && /^\.TP/ { tp = 1; next }
		tp { tp = 0; w = $2; gsub(/"/, "", w); sub(/=.*/, "", w); print w }
	' "$1"
}

# The page that documents NAME in man/ (itself, or the target of its .so
# link), or nothing.
page_of() {
	f=man/$1.3
	[ -f "$f" ] || return 0
	target=$(so_target "$f")
	if [ -n "$target" ]; then
		f=man/$(basename "$target")
	fi
	[ -f "$f" ] && echo "$f"
}

# Every page rendered from a tree laid out as installed (man1/, man3/...),
# so that the .so links resolve as they will.
echo "== every page renders without warnings"
mkdir -p "$tmp/tree" || exit 1
pages=0
for f in man/*.[1-9]; do
	[ -f "$f" ] || continue
	sec=${f##*.}
	mkdir -p "$tmp/tree/man$sec" && cp "$f" "$tmp/tree/man$sec/" || exit 1
done
for f in man/*.[1-9]; do
	[ -f "$f" ] || continue
	pages=$((pages + 1))
	name=$(basename "$f")
	sec=${f##*.}
	target=$(so_target "$f")
	if [ -n "$target" ]; then
		if [ "$(wc -l < "$f")" -ne 1 ]; then
			bad "$name: a .so link page must be that one line"
		fi
		if [ ! -f "man/$(basename "$target")" ]; then
			bad "$name: links to $target, not in man/"
		fi
		case $target in
		man[1-9]/*.[1-9])
			[ "${target%%/*}" = "man${target##*.}" ] ||
				bad "$name: links to $target, not in its section's directory" ;;
		*) bad "$name: .so $target is not relative to the man directory (manN/page.N)" ;;
		esac
	fi
	(cd "$tmp/tree" && groff -man -Tutf8 -ww -z "man$sec/$name") \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne 0 ] || [ -s "$tmp/err" ]; then
		bad "$name: groff -man -Tutf8 -ww -z (exit $rc)"
		sed 's/^/    /' "$tmp/err" | head -10
	else
		ok "$name"
	fi
done
[ $pages -gt 0 ] || bad "no pages in man/"

echo "== every public function has a page"
# Declarations that start a line with UCLOCK_API or static inline; the name
# is the word before the first '(' (which may be on a later line).
awk '/^(UCLOCK_API|static inline)/ {
		decl = $0
		while (decl !~ /\(/ && (getline line) > 0)
			decl = decl " " line
		sub(/\(.*/, "", decl)
		n = split(decl, w, /[ \t*]+/)
		print w[n]
	}' "$HEADER" | grep '^uclock_' | grep -v '^uclock__' | sort -u >"$tmp/functions"
for known in uclock_gettime uclock_mono_ns uclock_ticks_after uclock_stat; do
	grep -qx "$known" "$tmp/functions" ||
		bad "the header's declarations were not read: $known not found"
done
while read -r fn; do
	page=$(page_of "$fn")
	if [ -z "$page" ]; then
		bad "$fn: no man/$fn.3 (a page, or a .so link to one)"
	elif ! section "$page" NAME | grep -qw "$fn"; then
		bad "$fn: $page does not name it in NAME"
	elif ! section "$page" SYNOPSIS | grep -q "$fn("; then
		bad "$fn: $page does not declare it in SYNOPSIS"
	else
		ok "$fn: $page"
	fi
done <"$tmp/functions"

echo "== every environment variable is documented"
# getenv("UCLOCK_...") and secure_getenv("UCLOCK_..."), and getenv(MACRO)
# with MACRO #defined as a string.
env_vars() {
	grep -rhoE 'getenv\("[A-Za-z0-9_]+"\)' "$@" | sed 's/.*"\(.*\)".*/\1/'
	grep -rhoE 'getenv\([A-Z][A-Z0-9_]*\)' "$@" | sed 's/.*(\(.*\))/\1/' |
	while read -r macro; do
		value=$(grep -rhE "^#define[[:space:]]+$macro[[:space:]]+\"" "$@" include |
			sed 's/.*"\(.*\)".*/\1/' | head -1)
		if [ -n "$value" ]; then
			echo "$value"
		else
			echo "?$macro"
		fi
	done
}
env_vars src preload | sort -u >"$tmp/lib_env"
env_vars tools | sort -u >"$tmp/tool_env"
tags man/libuclock.7 ENVIRONMENT | sort -u >"$tmp/documented"
for f in man/*.1 man/*.8; do tags "$f" ENVIRONMENT; done | sort -u >"$tmp/tool_documented"
grep -qx UCLOCK_SOURCE "$tmp/lib_env" ||
	bad "the library's getenv calls were not found (no UCLOCK_SOURCE)"
for v in $(grep '^?' "$tmp/lib_env" "$tmp/tool_env" | cut -d'?' -f2); do
	bad "getenv($v): cannot tell which variable it reads"
done
for v in $(grep '^UCLOCK_' "$tmp/lib_env"); do
	if grep -qx "$v" "$tmp/documented"; then ok "$v in libuclock.7"
	else bad "$v (read by the library) is not in libuclock.7's ENVIRONMENT"; fi
done
for v in $(grep '^UCLOCK_' "$tmp/tool_env"); do
	if grep -qx "$v" "$tmp/documented"; then ok "$v in libuclock.7"
	elif grep -qx "$v" "$tmp/tool_documented"; then ok "$v in its tool's page"
	else bad "$v (read by a tool) is in no page's ENVIRONMENT"; fi
done

echo "== every field of struct uclock_stat is described"
awk '/^struct uclock_stat \{/ { inside = 1; next }
     inside && /^\};/ { exit }
     inside {
	sub(/\/\*.*/, "")
	if (index($0, ";") == 0) next
	sub(/;.*/, "")
	n = split($0, w, /[ \t*]+/)
	print w[n]
     }' "$HEADER" | sort -u >"$tmp/fields"
tags man/uclock_stat.3 DESCRIPTION Fields | sort -u >"$tmp/described"
[ "$(wc -l < "$tmp/fields")" -ge 20 ] && grep -qx size "$tmp/fields" &&
	grep -qx update_time_ns "$tmp/fields" ||
	bad "struct uclock_stat was not read from $HEADER"
missing=$(grep -vxF -f "$tmp/described" "$tmp/fields")
extra=$(grep -vxF -f "$tmp/fields" "$tmp/described")
for field in $missing; do
	bad "struct uclock_stat's $field is not described in uclock_stat.3"
done
for field in $extra; do
	bad "uclock_stat.3 describes $field, which struct uclock_stat has not"
done
[ -z "$missing$extra" ] && ok "$(wc -l < "$tmp/fields") fields, each described"

echo "== make install DESTDIR=... installs them; the links resolve"
root=$tmp/root
mandir=$root/usr/local/share/man
if ! make -s install PREFIX=/usr/local DESTDIR="$root" BUILD="$BUILD" \
	>"$tmp/log" 2>&1; then
	bad "make install"
	sed 's/^/    /' "$tmp/log" | tail -20
else
	for f in man/*.3 man/*.7 man/*.1 man/*.8; do
		[ -f "$f" ] || continue
		installed=$mandir/man${f##*.}/$(basename "$f")
		if [ ! -f "$installed" ]; then
			bad "make install did not install $installed"
		elif ! cmp -s "$f" "$installed"; then
			bad "$installed differs from $f"
		fi
	done
	[ -f "$mandir/man3/uclock_getres.3" ] && [ -f "$mandir/man7/libuclock.7" ] &&
		ok "pages in share/man/man3 and share/man/man7"
	links=0
	for link in uclock_getres.3 $(cd man && grep -l '^\.so ' *.3 2>/dev/null); do
		(cd "$mandir" && groff -man -Tutf8 -ww -P-cbou "man3/$link") \
			>"$tmp/out" 2>"$tmp/err"
		fn=${link%.3}
		if [ -s "$tmp/err" ]; then
			bad "installed $link: groff says"
			sed 's/^/    /' "$tmp/err" | head -5
		elif ! grep -q "^SYNOPSIS" "$tmp/out" || ! grep -q "$fn(" "$tmp/out"; then
			bad "installed $link does not render its page (.so not resolved)"
		else
			links=$((links + 1))
		fi
	done
	ok "$links installed links render through .so (uclock_getres.3 among them)"
	# man(1) itself, where it is installed and reads pages given by path.
	if command -v man >/dev/null 2>&1 &&
		(cd "$mandir" && MANPAGER=cat man -l man3/uclock_gettime.3) >/dev/null 2>&1; then
		(cd "$mandir" && MANPAGER=cat MANWIDTH=80 man -l man3/uclock_getres.3) \
			>"$tmp/out" 2>"$tmp/err"
		if grep -q "uclock_getres(" "$tmp/out" && ! grep -q "so request" "$tmp/err"; then
			ok "man -l renders the installed uclock_getres.3"
		else
			bad "man -l man3/uclock_getres.3 in $mandir"
			sed 's/^/    /' "$tmp/err" | head -5
		fi
	fi
	if ! make -s uninstall PREFIX=/usr/local DESTDIR="$root" BUILD="$BUILD" \
		>"$tmp/log" 2>&1; then
		bad "make uninstall"
		sed 's/^/    /' "$tmp/log" | tail -20
	fi
	left=$(find "$mandir" -type f 2>/dev/null)
	if [ -n "$left" ]; then
		bad "make uninstall left pages behind: $(echo $left)"
	else
		ok "make uninstall removes every page"
	fi
fi

[ $fail = 0 ] && echo "man: all checks passed" || echo "man: failures above"
exit $fail
