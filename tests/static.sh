#!/bin/sh
# The built libraries as others link them:
#  - $BUILD/libuclock.so exports only the API (uclock_*) and the inline
#    readers' internals (uclock__*), and has SONAME libuclock.so.0;
#  - examples/hello.c links fully static with $BUILD/libuclock.a and
#    -lpthread, runs, and says the clock works.
# Exit 0 pass, 1 fail, 77 skip (no static libc; the symbol checks passed).
#
# -e is off on purpose: every command's status is checked explicitly, so
# that the script can only end with 0, 1 or 77.
set -u

BUILD=${BUILD:-build}
CC=${CC:-cc}
SHARED=$BUILD/libuclock.so
STATIC=$BUILD/libuclock.a
SONAME=libuclock.so.0

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

for f in "$SHARED" "$STATIC" examples/hello.c include/uclock.h; do
	if [ ! -f "$f" ]; then
		echo "FAIL: $f not found (run make from the top of the source tree)"
		exit 1
	fi
done
for tool in nm readelf; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not found (binutils)"
		exit 77
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-static.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

# --- exported symbols ----------------------------------------------------
echo "== $SHARED exports only uclock_* and uclock__* symbols"
if ! nm -D --defined-only "$SHARED" >"$tmp/syms" 2>"$tmp/err"; then
	sed 's/^/    /' "$tmp/err"
	fail "nm -D $SHARED"
else
	# Lines are "value type name[@[@]version]"; type A entries are the
	# version script's node names (UCLOCK_0.1), not symbols.
	awk '{ name = $NF; sub(/@.*/, "", name) }
	     $(NF-1) == "A" && name ~ /^UCLOCK_[0-9.]+$/ { next }
	     name !~ /^uclock_/ { print "    " $0 }' "$tmp/syms" >"$tmp/leaks"
	n=$(grep -vc " A " "$tmp/syms")
	if [ -s "$tmp/leaks" ]; then
		cat "$tmp/leaks"
		fail "$SHARED exports symbols outside the uclock_/uclock__ namespace"
	elif ! grep -Eq ' uclock_gettime(@|$)' "$tmp/syms"; then
		fail "$SHARED does not export uclock_gettime"
	else
		echo "   $n defined dynamic symbols, all uclock_*/uclock__*"
	fi
fi

# --- SONAME --------------------------------------------------------------
echo "== $SHARED has SONAME $SONAME"
soname=$(readelf -d "$SHARED" 2>/dev/null |
	sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" = "$SONAME" ]; then
	echo "   SONAME $soname"
else
	fail "SONAME of $SHARED is '${soname:-none}', expected $SONAME"
fi

# --- fully static hello ----------------------------------------------------
echo "== static libc available to $CC"
printf 'int main(void) { return 0; }\n' >"$tmp/probe.c"
if ! $CC -static "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1 ||
	! "$tmp/probe"; then
	if [ "$failures" -ne 0 ]; then
		echo "static: $failures check(s) failed"
		exit 1
	fi
	echo "SKIP: $CC cannot link -static (no static libc); symbol and SONAME checks passed"
	exit 77
fi
echo "   yes"

echo "== $CC -static examples/hello.c $STATIC -lpthread"
if ! $CC -std=c11 -static -Iinclude examples/hello.c "$STATIC" -lpthread \
	-o "$tmp/hello" >"$tmp/log" 2>&1; then
	sed 's/^/    /' "$tmp/log"
	fail "linking examples/hello.c statically"
else
	if readelf -d "$tmp/hello" 2>/dev/null | grep -q '(NEEDED)'; then
		readelf -d "$tmp/hello" | grep '(NEEDED)' | sed 's/^/    /'
		fail "the -static hello still needs shared libraries"
	fi
	echo "== run the static hello"
	"$tmp/hello" >"$tmp/out" 2>&1
	rc=$?
	sed 's/^/   /' "$tmp/out"
	if [ "$rc" -ne 0 ]; then
		fail "the static hello exited with status $rc"
	elif ! grep -qx 'uclock works' "$tmp/out"; then
		fail "the static hello did not say 'uclock works'"
	fi
fi

if [ "$failures" -ne 0 ]; then
	echo "static: $failures check(s) failed"
	exit 1
fi
echo "static: all checks passed"
exit 0
