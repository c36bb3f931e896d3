#!/bin/sh
# The public header, include/uclock.h, as users compile it: strict C11 and
# C99 (with and without POSIX feature macros) and C++11/C++17, each with
# -Wall -Wextra -pedantic -Werror, in a translation unit that uses every
# inline reader and uclock_gettime().  The C++ programs (and the C11 one)
# are then linked against $BUILD/libuclock.so and run.
# Exit 0 pass, 1 fail, 77 skip (no C++ compiler; the C checks still ran).
#
# -e is off on purpose: every command's status is checked explicitly, so
# that the script can only end with 0, 1 or 77.
set -u

BUILD=${BUILD:-build}
CC=${CC:-cc}
CXX=${CXX:-c++}
HEADER=include/uclock.h

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

if [ ! -f "$HEADER" ]; then
	echo "FAIL: $HEADER not found (run from the top of the source tree)"
	exit 1
fi
if [ ! -f "$BUILD/libuclock.so" ]; then
	echo "FAIL: $BUILD/libuclock.so not found (run make first)"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-header.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

inc=$(cd include && pwd)
lib=$(cd "$BUILD" && pwd)

# Runs a command with its output in $tmp/log; shows the output if it fails.
quiet() {
	if "$@" >"$tmp/log" 2>&1; then
		return 0
	fi
	sed 's/^/    /' "$tmp/log"
	return 1
}

# Does the compiler $1 accept -std=$2 (language $3: c or c++)?
supports() {
	printf 'int main(void) { return 0; }\n' >"$tmp/probe.$3"
	$1 -std="$2" -c "$tmp/probe.$3" -o "$tmp/probe.o" >/dev/null 2>&1
}

# The C user.  Without feature-test macros, strict C99 has no struct
# timespec and no CLOCK_MONOTONIC: the header must still compile, and
# uclock_gettime() is then only taken by address.  Included twice to check
# the include guard.
cat >"$tmp/use.c" <<'EOF'
#include "uclock.h"
#include "uclock.h"

static int (*const gettime)(clockid_t, struct timespec *) = uclock_gettime;

int main(void)
{
	uint64_t a = uclock_ticks();
	int64_t mono = uclock_mono_ns();
	int64_t real = uclock_real_ns();
	uint64_t b = uclock_ticks();
	int bad = 0;

#ifdef CLOCK_MONOTONIC
	{
		struct timespec ts;
		bad |= gettime(CLOCK_MONOTONIC, &ts) != 0;
		bad |= ts.tv_sec < 0;
	}
#else
	bad |= gettime == 0;
#endif
	bad |= mono == INT64_MIN || mono < 0;
	bad |= real == INT64_MIN || real <= 0;
	bad |= uclock_ticks_after(a, b);      /* a was read first */
	bad |= !uclock_ticks_after(b + 1, b);
	bad |= !uclock_ticks_before(b, b + 1);
	return bad;
}
EOF

# The C++ user: the extern "C" block, C++ casts and aggregates.
cat >"$tmp/use.cc" <<'EOF'
#include <cstdio>
#include <ctime>

#include "uclock.h"
#include "uclock.h"

int main()
{
	struct timespec ts;
	uint64_t a = uclock_ticks();
	int rc = uclock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t mono = uclock_mono_ns();
	int64_t real = uclock_real_ns();
	uint64_t b = uclock_ticks();
	int bad = 0;

	if (rc != 0 || ts.tv_sec < 0) {
		std::puts("uclock_gettime(CLOCK_MONOTONIC) failed");
		bad = 1;
	}
	if (mono == INT64_MIN || mono < 0) {
		std::puts("uclock_mono_ns() failed");
		bad = 1;
	}
	if (real == INT64_MIN || real <= 0) {
		std::puts("uclock_real_ns() failed");
		bad = 1;
	}
	if (uclock_ticks_after(a, b) || !uclock_ticks_after(b + 1, b)) {
		std::puts("uclock_ticks() / uclock_ticks_after() inconsistent");
		bad = 1;
	}
	if (!bad)
		std::printf("C++ (%ld): mono %lld ns, real %lld ns\n",
			    static_cast<long>(__cplusplus),
			    static_cast<long long>(mono),
			    static_cast<long long>(real));
	return bad;
}
EOF

# check_c STD [FEATURE-MACRO] [run]: compile (and maybe link and run) use.c.
check_c() {
	std=$1 macro=${2:-} run=${3:-}
	what="$CC -std=$std -pedantic -Wall -Wextra -Werror${macro:+ $macro}"
	echo "== C: $what"
	if ! quiet $CC -std="$std" -pedantic -Wall -Wextra -Werror $macro \
		-I"$inc" -c "$tmp/use.c" -o "$tmp/use.o"; then
		fail "$HEADER does not compile with $what"
		return
	fi
	[ -n "$run" ] || return 0
	echo "   link against $BUILD/libuclock.so and run"
	if ! quiet $CC "$tmp/use.o" -L"$lib" -luclock -o "$tmp/use-c"; then
		fail "linking the C program against $BUILD/libuclock.so"
		return
	fi
	if ! LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		"$tmp/use-c"; then
		fail "the C program built with $what exited nonzero"
	fi
}

check_c c11
check_c c11 -D_POSIX_C_SOURCE=200809L run
if supports "$CC" c99 c; then
	check_c c99
	check_c c99 -D_POSIX_C_SOURCE=200809L
else
	echo "== C99: $CC does not accept -std=c99, not checked"
fi

# check_cxx STD: compile, link against $BUILD/libuclock.so and run use.cc.
check_cxx() {
	std=$1
	what="$CXX -std=$std -Wall -Wextra -Werror -pedantic"
	echo "== C++: $what"
	if ! quiet $CXX -std="$std" -Wall -Wextra -Werror -pedantic \
		-I"$inc" -c "$tmp/use.cc" -o "$tmp/use.o"; then
		fail "$HEADER does not compile with $what"
		return
	fi
	echo "   link against $BUILD/libuclock.so and run"
	if ! quiet $CXX "$tmp/use.o" -L"$lib" -luclock -o "$tmp/use-cxx"; then
		fail "linking the C++ program against $BUILD/libuclock.so"
		return
	fi
	if LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		"$tmp/use-cxx" >"$tmp/out" 2>&1; then
		sed 's/^/   /' "$tmp/out"
	else
		sed 's/^/    /' "$tmp/out"
		fail "the C++ program built with $what exited nonzero"
	fi
}

no_cxx=0
if ! command -v "${CXX%% *}" >/dev/null 2>&1; then
	echo "== C++: no C++ compiler ($CXX), not checked"
	no_cxx=1
else
	check_cxx c++11
	if supports "$CXX" c++17 cc; then
		check_cxx c++17
	else
		echo "== C++17: $CXX does not accept -std=c++17, not checked"
	fi
fi

if [ "$failures" -ne 0 ]; then
	echo "header: $failures check(s) failed"
	exit 1
fi
if [ "$no_cxx" -eq 1 ]; then
	echo "SKIP: no C++ compiler ($CXX); the C checks passed"
	exit 77
fi
echo "header: all checks passed"
exit 0
