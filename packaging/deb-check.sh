#!/bin/sh
# Build the Debian packages from a copy of this tree, check them with
# lintian (no errors), install them, use what they installed (uclock,
# uclock run, uclockd, the man pages, pkg-config), and remove them.
# Root (or sudo) for dpkg -i; the CI runs it (.ci/run).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
installed=
cleanup() {
	[ -n "$installed" ] && $SUDO dpkg --purge uclock libuclock-dev libuclock0 >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() { echo "deb-check: FAIL: $*"; exit 1; }

# dpkg-buildpackage writes beside the tree: build a copy in $work.
mkdir "$work/uclock"
(cd "$top" && git ls-files -z | xargs -0 cp --parents -t "$work/uclock") ||
	fail "copying the tree"
cd "$work/uclock"
dpkg-buildpackage -us -uc -b > "$work/build.log" 2>&1 ||
	{ tail -n 30 "$work/build.log"; fail "dpkg-buildpackage"; }
cd "$work"
ls ./*.deb
lintian --tag-display-limit 0 ./*.changes > "$work/lintian.log" 2>&1 || true
cat "$work/lintian.log"
! grep -q '^E:' "$work/lintian.log" || fail "lintian found errors"

installed=1
$SUDO dpkg -i libuclock0_*.deb libuclock-dev_*.deb uclock_*.deb > "$work/dpkg.log" 2>&1 ||
	{ cat "$work/dpkg.log"; fail "dpkg -i"; }
version=$(sed -n 's/^#define UCLOCK_VERSION_STRING "\(.*\)"/\1/p' "$top/include/uclock.h")
[ "$(uclock --version)" = "uclock $version" ] || fail "uclock --version: $(uclock --version)"
[ "$(uclockd --version)" = "uclockd (uclock) $version" ] || fail "uclockd --version"
uclock info --json | python3 -c 'import json, sys; json.load(sys.stdin)' || fail "uclock info --json"
uclock run -- /bin/true || fail "uclock run"
uclock run --stats -- /bin/sh -c 'date > /dev/null' 2> "$work/stats" || fail "uclock run --stats"
grep -q 'uclock:' "$work/stats" || fail "uclock run --stats printed nothing"
for page in uclock uclockd uclock_gettime uclock_getres uclock_mono_ns uclock_stat libuclock; do
	man -w "$page" > /dev/null 2>&1 || fail "man $page"
done
systemd-analyze verify --man=no /lib/systemd/system/uclockd.service ||
	fail "the installed unit does not verify"
# uclockd as the unit runs it, on a scratch page; a process reads it.
uclockd --path "$work/run/page" 2> "$work/uclockd.log" &
daemon=$!
sleep 1
UCLOCK_PAGE="$work/run/page" uclock info --json |
	python3 -c 'import json, sys; m = json.load(sys.stdin)["uclock"]["mode"]; sys.exit(m != "shared")' ||
	{ cat "$work/uclockd.log"; kill "$daemon"; fail "a process does not read uclockd's page"; }
kill "$daemon"; wait "$daemon" || true
# The header and library, as a consumer builds against them.
printf '#include <uclock.h>\nint main(void) { return uclock_mono_ns() > 0 ? 0 : 1; }\n' > "$work/c.c"
cc "$work/c.c" $(pkg-config --cflags --libs uclock) -o "$work/c" && "$work/c" ||
	fail "a program built with pkg-config uclock"
echo "deb-check: built, lintian clean of errors, installed and used: $(ls ./*.deb | tr '\n' ' ')"
