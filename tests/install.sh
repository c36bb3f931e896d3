#!/bin/sh
# `make install` into a scratch DESTDIR, then the installed tree used the way
# a consumer uses it, with nothing from the source tree but examples/hello.c:
#  1. pkg-config: compile and link hello against the shared library, run it;
#  2. pkg-config --static: link hello against libuclock.a, run it;
#  3. CMake: find_package(uclock) and link uclock::uclock (and
#     uclock::uclock_static), run the results;
#  4. a tree installed with a multiarch LIBDIR and the preload library in
#     a directory of its own (as the Debian packages are): uclock run
#     finds it.
# The tree is installed with PREFIX=/usr/local but used from $tmp/usr/local,
# so the pkg-config file (with PKG_CONFIG_SYSROOT_DIR) and the CMake package
# must both work relocated.
# Exit 0 pass, 1 fail, 77 skip (cmake or pkg-config missing).
#
# -e is off on purpose: every command's status is checked explicitly, so
# that the script can only end with 0, 1 or 77.
set -u

BUILD=${BUILD:-build}
CC=${CC:-cc}
export CC

for tool in pkg-config cmake; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not found"
		exit 77
	fi
done
if [ ! -f Makefile ] || [ ! -f examples/hello.c ]; then
	echo "FAIL: run from the top of the source tree"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-install.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

root=$tmp                    # DESTDIR
prefix=$root/usr/local       # where the installed tree really is
work=$tmp/work               # everything else: logs, programs, CMake
mkdir -p "$work" || exit 1
libdir=$prefix/lib
hello=$(pwd)/examples/hello.c
version=$(make -s --no-print-directory print-version)

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
finish() {
	if [ "$failures" -ne 0 ]; then
		echo "install: $failures check(s) failed"
		exit 1
	fi
	echo "install: all checks passed"
	exit 0
}

# Runs a command with its output in $work/log; shows the output if it fails.
quiet() {
	if "$@" >"$work/log" 2>&1; then
		return 0
	fi
	sed 's/^/    /' "$work/log"
	return 1
}

# run_hello WHAT PROGRAM: PROGRAM must exit 0 and print "uclock works".
run_hello() {
	"$2" >"$work/out" 2>&1
	rc=$?
	sed 's/^/   /' "$work/out"
	if [ "$rc" -ne 0 ]; then
		fail "$1: hello exited with status $rc"
	elif ! grep -qx 'uclock works' "$work/out"; then
		fail "$1: hello did not say 'uclock works'"
	fi
}

# needs_libuclock PROGRAM: does PROGRAM load libuclock.so at run time?
# Without readelf, say yes: the checks that use it are then not made.
needs_libuclock() {
	command -v readelf >/dev/null 2>&1 || return 0
	readelf -d "$1" 2>/dev/null | grep '(NEEDED)' | grep -q 'libuclock\.so'
}
links_libuclock_statically() {
	command -v readelf >/dev/null 2>&1 || return 0
	! needs_libuclock "$1"
}

# --- make install --------------------------------------------------------
echo "== make install PREFIX=/usr/local DESTDIR=$root"
if ! quiet make -s install PREFIX=/usr/local DESTDIR="$root" BUILD="$BUILD" \
	CC="$CC"; then
	fail "make install"
	finish
fi
for f in include/uclock.h lib/libuclock.so.$version lib/libuclock.so.0 \
	lib/libuclock.so lib/libuclock.a lib/pkgconfig/uclock.pc \
	lib/cmake/uclock/uclockConfig.cmake \
	lib/cmake/uclock/uclockConfigVersion.cmake; do
	[ -e "$prefix/$f" ] || fail "make install did not install $f"
done
if grep -n '@[A-Z]*@' "$libdir/pkgconfig/uclock.pc" \
	"$libdir/cmake/uclock/uclockConfigVersion.cmake"; then
	fail "placeholders left unsubstituted in the installed files"
fi
if grep -n "$tmp" "$libdir/pkgconfig/uclock.pc" \
	"$libdir/cmake/uclock/"*.cmake; then
	fail "the installed files name the staging directory $tmp"
fi
[ "$failures" -eq 0 ] || finish
echo "   installed: $(cd "$prefix" && find . ! -type d | sort | tr '\n' ' ')"

# --- 1. pkg-config, shared -------------------------------------------------
PKG_CONFIG_PATH=$libdir/pkgconfig
PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

echo "== pkg-config: shared library"
modversion=$(pkg-config --modversion uclock 2>&1)
if [ "$modversion" != "$version" ]; then
	fail "pkg-config --modversion uclock: '$modversion', expected $version"
	finish
fi
cflags=$(pkg-config --cflags uclock) || fail "pkg-config --cflags uclock"
libs=$(pkg-config --libs uclock) || fail "pkg-config --libs uclock"
echo "   version $modversion; cflags: $cflags; libs: $libs"
case " $cflags " in
*" -I$prefix/include "*) ;;
*) fail "pkg-config --cflags does not give -I$prefix/include" ;;
esac
case " $libs " in
*" -L$libdir "*"-luclock "*) ;;
*) fail "pkg-config --libs does not give -L$libdir ... -luclock" ;;
esac

echo "   $CC -std=c11 -pedantic -Wall -Wextra -Werror \$cflags hello.c \$libs"
if quiet $CC -std=c11 -pedantic -Wall -Wextra -Werror $cflags "$hello" \
	$libs -o "$work/hello-shared"; then
	if ! needs_libuclock "$work/hello-shared"; then
		fail "hello linked with \$(pkg-config --libs) does not need libuclock.so"
	fi
	# Which libuclock the loader picks: the installed one.
	if command -v ldd >/dev/null 2>&1; then
		where=$(LD_LIBRARY_PATH=$libdir ldd "$work/hello-shared" |
			sed -n 's/.*libuclock\.so[^ ]* => \([^ ]*\).*/\1/p')
		echo "   libuclock resolved to $where"
		case $where in
		"$libdir"/*) ;;
		*) fail "hello loads libuclock from '$where', not $libdir" ;;
		esac
	fi
	echo "   run with LD_LIBRARY_PATH=$libdir"
	LD_LIBRARY_PATH=$libdir run_hello "pkg-config (shared)" "$work/hello-shared"
else
	fail "compiling hello.c with pkg-config --cflags --libs uclock"
fi

# --- 2. pkg-config, static -------------------------------------------------
echo "== pkg-config --static: libuclock.a"
slibs=$(pkg-config --static --libs uclock) || fail "pkg-config --static --libs"
echo "   libs: $slibs"
case " $slibs " in
*" -lpthread "*) ;;
*) fail "pkg-config --static --libs lacks -lpthread (Libs.private)" ;;
esac

# 2a. libuclock.a only, the C library still shared: works without libc.a.
mixed=
for w in $slibs; do
	if [ "$w" = -luclock ]; then
		mixed="$mixed -Wl,-Bstatic -luclock -Wl,-Bdynamic"
	else
		mixed="$mixed $w"
	fi
done
echo "   $CC \$cflags hello.c$mixed"
if quiet $CC -std=c11 $cflags "$hello" $mixed -o "$work/hello-mixed"; then
	if ! links_libuclock_statically "$work/hello-mixed"; then
		fail "hello linked with -Bstatic -luclock still needs libuclock.so"
	fi
	echo "   run without LD_LIBRARY_PATH"
	run_hello "pkg-config --static (libuclock.a)" "$work/hello-mixed"
else
	fail "linking hello.c against libuclock.a with pkg-config --static"
fi

# 2b. Fully static, if the C library has an archive.
printf 'int main(void) { return 0; }\n' >"$work/probe.c"
if $CC -static "$work/probe.c" -o "$work/probe" >/dev/null 2>&1; then
	echo "   $CC -static \$cflags hello.c $slibs"
	if quiet $CC -std=c11 -static $cflags "$hello" $slibs \
		-o "$work/hello-static"; then
		if readelf -d "$work/hello-static" 2>/dev/null | grep -q '(NEEDED)'; then
			fail "the -static hello still needs shared libraries"
		fi
		run_hello "pkg-config --static (-static)" "$work/hello-static"
	else
		fail "linking hello.c -static with pkg-config --static"
	fi
else
	echo "   no static libc: fully static link not tried"
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# --- 3. CMake --------------------------------------------------------------
echo "== CMake: find_package(uclock) with CMAKE_PREFIX_PATH=$prefix"
src=$work/cmake-src
bld=$work/cmake-build
mkdir -p "$src" "$bld"
cp "$hello" "$src/hello.c"
cat >"$src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.5)
project(uclock_consumer C)

# Another major version must be refused (SameMajorVersion)...
find_package(uclock 1.0 QUIET)
if(uclock_FOUND)
  message(FATAL_ERROR "find_package(uclock 1.0) accepted ${uclock_VERSION}")
endif()
# ...as must a newer minor one.
find_package(uclock 0.99 QUIET)
if(uclock_FOUND)
  message(FATAL_ERROR "find_package(uclock 0.99) accepted ${uclock_VERSION}")
endif()

find_package(uclock 0.1 REQUIRED)
# Twice: the config must not define its targets again.
find_package(uclock REQUIRED)

get_filename_component(found "${uclock_DIR}" REALPATH)
get_filename_component(expected "${EXPECTED_DIR}" REALPATH)
if(NOT found STREQUAL expected)
  message(FATAL_ERROR "uclock found in ${found}, expected ${expected}")
endif()
message(STATUS "uclock ${uclock_VERSION} in ${uclock_DIR}")

add_executable(hello hello.c)
target_link_libraries(hello PRIVATE uclock::uclock)

if(NOT TARGET uclock::uclock_static)
  message(FATAL_ERROR "no uclock::uclock_static target")
endif()
add_executable(hello_static hello.c)
target_link_libraries(hello_static PRIVATE uclock::uclock_static)
EOF
if ! (cd "$bld" && quiet cmake -DCMAKE_PREFIX_PATH="$prefix" \
	-DEXPECTED_DIR="$libdir/cmake/uclock" "$src"); then
	fail "cmake configure of a find_package(uclock) project"
	finish
fi
sed -n 's/^-- \(uclock .*\)/   \1/p' "$work/log"
if ! quiet cmake --build "$bld"; then
	fail "cmake --build of a project linking uclock::uclock"
	finish
fi
if ! needs_libuclock "$bld/hello"; then
	fail "the uclock::uclock hello does not need libuclock.so"
fi
echo "   run hello (uclock::uclock) with LD_LIBRARY_PATH=$libdir"
LD_LIBRARY_PATH=$libdir run_hello "CMake uclock::uclock" "$bld/hello"
if ! links_libuclock_statically "$bld/hello_static"; then
	fail "the uclock::uclock_static hello needs libuclock.so"
fi
echo "   run hello_static (uclock::uclock_static)"
run_hello "CMake uclock::uclock_static" "$bld/hello_static"

# --- 4. uclock run, installed with another LIBDIR ----------------------------
# Installed in place (no DESTDIR): the CLI is rebuilt with the preload's
# directory, whatever it was built with before.
multi=$tmp/multi
echo "== make install PREFIX=$multi LIBDIR=\$PREFIX/lib/x86_64-linux-gnu PRELOADDIR=.../uclock"
if quiet make -s install PREFIX="$multi" LIBDIR="$multi/lib/x86_64-linux-gnu" \
	PRELOADDIR="$multi/lib/x86_64-linux-gnu/uclock" BUILD="$BUILD" CC="$CC"; then
	[ -e "$multi/lib/x86_64-linux-gnu/uclock/libuclock-preload.so" ] ||
		fail "the preload library is not in PRELOADDIR"
	if "$multi/bin/uclock" run --stats -- /bin/sh -c 'date >/dev/null' >"$work/out" 2>&1; then
		echo "   uclock run: $(tail -n 1 "$work/out")"
	else
		sed 's/^/    /' "$work/out"
		fail "uclock run from a tree with LIBDIR=.../x86_64-linux-gnu"
	fi
else
	fail "make install with a multiarch LIBDIR and PRELOADDIR"
fi
# The build tree's CLI back to its own directories.
quiet make -s all BUILD="$BUILD" CC="$CC" || fail "make all after the install"

finish
