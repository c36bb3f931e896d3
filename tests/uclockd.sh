#!/bin/sh
# uclockd with real processes: readers attach and agree with the kernel,
# convert ticks identically; the daemon stopped, killed and restarted; pages
# that must be refused (writable by others, another owner, truncated,
# corrupted, another layout); a reader in another time namespace; fork and
# exec children; many readers at once; a clean stop.  (Every wait names
# its processes: a bare wait would wait for the daemon too.)
BUILD=${BUILD:-build}
R="$BUILD/tests/helpers/page_reader"
. tests/helpers/daemon.sh
# Up and calibrated: a new reader attaches.
start_attached() { start && wait_attached "$R" stat; }

# Readers spin on every CPU; the daemon, which the unit runs at real-time
# priority, here only gets the CPU first if they are niced.

echo "== start, attach, agree with the kernel"
start_attached || exit 1
"$R" stat > "$tmp/stat"
[ "$(field mode "$tmp/stat")" = shared ] && ok "a reader attaches (mode shared)" || bad "not attached: $(field reason "$tmp/stat")"
[ "$(field writer "$tmp/stat")" = "$daemon" ] && ok "it names uclockd's pid" || bad "writer pid"
[ "$(stat -c %a "$page")" = 644 ] && ok "page mode 644" || bad "page mode $(stat -c %a "$page")"
"$BUILD/uclock" info --json > "$tmp/info.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["uclock"]["mode"] == "shared", d["uclock"]' \
	"$tmp/info.json" && ok "uclock info: uclock.mode = shared" || bad "uclock info mode"
pids=; for i in 1 2 3; do nice -n 10 "$R" run 1 > "$tmp/run.$i" & pids="$pids $!"; done; wait $pids
# Each must attach and read right.  Staying attached for the whole second
# depends on the daemon keeping up with three readers spinning on two CPUs
# (a sanitizer's build of it may not: the readers then leave the page, as
# they must); one at least must.
throughout=0
for i in 1 2 3; do
	modes=$(field modes "$tmp/run.$i")
	[ "$modes" = shared ] && throughout=$((throughout + 1))
	[ "$(field off "$tmp/run.$i")" = 0 ] && [ "$(field back "$tmp/run.$i")" = 0 ] &&
		[ "${modes%%,*}" = shared ] &&
		ok "reader $i: $(field readings "$tmp/run.$i") readings in the kernel's brackets, modes $modes" ||
		{ bad "reader $i"; cat "$tmp/run.$i"; }
done
[ $throughout -ge 1 ] && ok "$throughout of 3 readers on the page throughout" ||
	bad "no reader stayed on the page"

echo "== two processes convert the same tick to the same time"
# A second daemon updating once a second: both conversions use one copy
# of the parameters (an update between them may move the line; then again).
"$D" --path "$tmp/slow/page" --interval 1 2>>"$tmp/daemon.log" & slow=$!
sleep 0.3
same=0
for try in 1 2 3; do
	t=$(UCLOCK_PAGE="$tmp/slow/page" "$R" now)
	a=$(UCLOCK_PAGE="$tmp/slow/page" "$R" ticks "$t")
	b=$(UCLOCK_PAGE="$tmp/slow/page" "$R" ticks "$t")
	[ -n "$a" ] && [ "$a" = "$b" ] && { same=1; break; }
done
kill "$slow"; wait "$slow"
[ $same = 1 ] && ok "tick $t -> $a ns in both processes" || bad "tick $t: $a vs $b"

echo "== the daemon stopped (SIGSTOP), then continued"
# Stopped after the reader's first look for the page again (1 s), in case
# it found the page stale at start (an instrumented reader, a busy machine).
nice -n 10 "$R" run 4 > "$tmp/stop" & reader=$!
sleep 1.2; kill -STOP "$daemon"; sleep 1; kill -CONT "$daemon"; wait $reader
rc=$?
modes=$(field modes "$tmp/stop")
[ $rc = 0 ] && ok "no reading off the kernel or back ($(field readings "$tmp/stop") readings)" || { bad "readings while stopped"; cat "$tmp/stop"; }
# On the page, left it, and came back (a slow machine may leave it again later).
case $modes in shared,*,shared* | *,shared,*,shared*) ok "left the page, came back: $modes" ;; *) bad "modes $modes" ;; esac

echo "== the daemon killed (SIGKILL), then started again"
nice -n 10 "$R" run 3 > "$tmp/kill" & reader=$!
sleep 0.5; stop KILL; sleep 0.5
start_attached
wait $reader
rc=$?
modes=$(field modes "$tmp/kill")
[ $rc = 0 ] && ok "no reading off the kernel or back" || { bad "readings around the kill"; cat "$tmp/kill"; }
case $modes in shared,*,shared*) ok "in-process while dead, back on the new page: $modes" ;; *) bad "modes $modes" ;; esac

echo "== threads on every CPU while the process leaves the page and comes back"
"$BUILD/tests/threads" > "$tmp/threads" 2>&1 & t=$!
sleep 0.3; kill -STOP "$daemon"; sleep 0.4; kill -CONT "$daemon"; wait $t
[ $? = 0 ] && ok "no reading before an earlier one on another CPU: $(tail -1 "$tmp/threads")" ||
	{ bad "threads across hand-overs"; cat "$tmp/threads"; }

echo "== fork and exec children"
"$R" fork > "$tmp/fork"; rc=$?
[ $rc = 0 ] && [ "$(field parent "$tmp/fork")" = shared ] && [ "$(field child "$tmp/fork")" = shared ] &&
	ok "a fork child reads the page, right" || { bad "fork child"; cat "$tmp/fork"; }
sh -c "exec \"$R\" stat" | grep -q '^mode=shared' && ok "an exec'd child attaches" || bad "exec child"

echo "== many readers at once"
pids=; i=0
while [ $i -lt 8 ]; do nice -n 10 "$R" run 1 > "$tmp/many.$i" & pids="$pids $!"; i=$((i + 1)); done
wait $pids
i=0; good=0; while [ $i -lt 8 ]; do
	[ "$(field off "$tmp/many.$i")" = 0 ] && [ "$(field back "$tmp/many.$i")" = 0 ] && good=$((good + 1))
	i=$((i + 1)); done
[ $good = 8 ] && ok "8 reader processes, all right" || bad "$good of 8 readers right"

echo "== pages that must be refused"
refused() {  # FILE EXPECTED-REASON
	UCLOCK_PAGE="$1" timeout 10 "$R" stat > "$tmp/refused" 2>&1; rc=$?
	if [ $rc = 0 ] && [ "$(field mode "$tmp/refused")" != shared ] &&
	   field reason "$tmp/refused" | grep -q "$2"; then
		ok "refused: $(field reason "$tmp/refused")"
	else
		bad "$1 (exit $rc): $(cat "$tmp/refused")"
	fi
}
cp "$page" "$tmp/copy"
chmod 666 "$tmp/copy"; refused "$tmp/copy" "writable by others"
chmod 664 "$tmp/copy"; refused "$tmp/copy" "writable by others"
chmod 644 "$tmp/copy"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	chown nobody "$tmp/copy"; refused "$tmp/copy" "owned by uid"; chown 0 "$tmp/copy"
else
	echo "  (not root: the other-owner case is not run)"
fi
head -c 100 "$page" > "$tmp/short"; chmod 644 "$tmp/short"; refused "$tmp/short" "100 bytes"
: > "$tmp/empty"; refused "$tmp/empty" "0 bytes"
cp "$page" "$tmp/magic"; printf 'XXXX' | dd of="$tmp/magic" conv=notrunc 2>/dev/null
refused "$tmp/magic" "not a uclock page"
cp "$page" "$tmp/version"; printf '\377\0\0\0' | dd of="$tmp/version" bs=1 seek=4 conv=notrunc 2>/dev/null
refused "$tmp/version" "layout version"
mkdir "$tmp/dir"; refused "$tmp/dir" "not a regular file"
refused "$tmp/none" "no page at"
# Nothing is opened that is not a regular file: a FIFO would block every
# reader, a device might act on being opened.
mkfifo "$tmp/fifo"; refused "$tmp/fifo" "not a regular file"
UCLOCK_PAGE="$tmp/fifo" timeout 10 "$BUILD/uclock" info > /dev/null 2>&1
[ $? = 0 ] && ok "uclock info with a FIFO for a page: no hang" || bad "uclock info with a FIFO"
refused /dev/zero "not a regular file"
ln -s "$page" "$tmp/link"; refused "$tmp/link" "not a regular file"

# A page that passes every check of the file, but whose lines cannot be
# right: it must be refused, never followed (a zero rate would hold the
# clock still for as long as its spans say).
forge() {  # OUT FIELD=VALUE...  (in both copies; fields of struct uclock__copy)
	out=$1; shift
	python3 - "$page" "$out" "$@" <<'PY'
import struct, sys
src, out, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
page = bytearray(open(src, 'rb').read())
offsets = {'limit': 16, 'mult': 24, 'hard': 104, 'keep': 232, 'nsec0': 168}
for base in (64, 64 + 256):
    for e in edits:
        name, value = e.split('=')
        fmt = '<I' if name.startswith('nsec') else '<Q'
        struct.pack_into(fmt, page, base + offsets[name], int(value))
open(out, 'wb').write(page)
PY
	chmod 644 "$out"
}
forge "$tmp/frozen" mult=0 limit=$((1 << 60)) hard=$((1 << 61)) keep=0
refused "$tmp/frozen" "cannot be right"
UCLOCK_PAGE="$tmp/frozen" "$R" run 0.5 > "$tmp/frozen.run" &&
	ok "a reader given a page of rate 0 and endless spans keeps time itself: $(field modes "$tmp/frozen.run")" ||
	{ bad "reader on a rate-0 page"; cat "$tmp/frozen.run"; }
forge "$tmp/fast" mult=$((1 << 60)); refused "$tmp/fast" "cannot be right"
forge "$tmp/long" hard=$((1 << 50)); refused "$tmp/long" "cannot be right"
forge "$tmp/split" nsec0=1000000000; refused "$tmp/split" "cannot be right"

echo "== a second daemon on the same page"
"$D" --path "$page" 2> "$tmp/second"; rc=$?
[ $rc = 1 ] && grep -q "another uclockd (pid $daemon) keeps" "$tmp/second" &&
	ok "refused, exit 1: $(cat "$tmp/second")" || { bad "second daemon (exit $rc)"; cat "$tmp/second"; }
"$R" stat > "$tmp/after2"
[ "$(field writer "$tmp/after2")" = "$daemon" ] && ok "the first keeps the page" ||
	bad "after a second daemon: $(cat "$tmp/after2")"

echo "== the page's directory, made whatever the umask"
(umask 077; exec "$D" --path "$tmp/made/page" 2>>"$tmp/daemon.log") & made=$!
sleep 0.5; kill "$made"; wait "$made"
[ "$(stat -c %a "$tmp/made")" = 755 ] && ok "mkdir under umask 077: mode 755" ||
	bad "directory mode $(stat -c %a "$tmp/made")"
UCLOCK_PAGE=off "$R" stat | grep -q '^reason=UCLOCK_PAGE=off' && ok "UCLOCK_PAGE=off: never attached" || bad "UCLOCK_PAGE=off"

echo "== the default page's directory: trusted only if no other user can change it"
# In a mount namespace of its own, over a private /run: the machine's is
# not touched.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && unshare -m true 2>/dev/null; then
	D="$D" R="$R" unshare -m sh -c '
		mount -t tmpfs tmpfs /run || exit 3
		unset UCLOCK_PAGE
		"$D" --path /run/uclock/page 2>/dev/null & d=$!
		for i in 1 2 3 4 5 6 7 8 9 10; do
			"$R" stat | grep -q "^mode=shared" && break; sleep 0.1
		done
		show() { timeout 10 "$R" stat | grep -E "^(mode|reason)=" | tr "\n" " "; echo; }
		echo "root 755: $(show)"
		chown nobody /run/uclock; echo "nobody 755: $(show)"
		chown 0 /run/uclock; chmod 777 /run/uclock; echo "root 777: $(show)"
		chmod 755 /run/uclock; echo "root 755 again: $(show)"
		kill $d; wait $d
		rm /run/uclock/page; mkfifo /run/uclock/page; echo "fifo: $(show)"
	' > "$tmp/default" 2>&1
	line() { grep "^$1: " "$tmp/default" | cut -d: -f2-; }
	line "root 755" | grep -q "mode=shared" && line "root 755 again" | grep -q "mode=shared" &&
		ok "/run/uclock of root, mode 755: attached" || { bad "default page"; cat "$tmp/default"; }
	line "nobody 755" | grep -q "belongs to uid 65534" &&
		ok "another user's /run/uclock: refused" || { bad "other-owned directory"; cat "$tmp/default"; }
	line "root 777" | grep -q "writable by others" &&
		ok "a /run/uclock anyone can write: refused" || { bad "mode 777 directory"; cat "$tmp/default"; }
	line "fifo" | grep -q "not a regular file" &&
		ok "a FIFO at the default path: refused, no hang" || { bad "FIFO at the default path"; cat "$tmp/default"; }
else
	echo "  (not root, or no mount namespaces: the default directory case is not run)"
fi

echo "== a reader in another time namespace"
if unshare -T true 2>/dev/null; then
	unshare -T --monotonic=1000 --boottime=2000 "$R" stat > "$tmp/ns"
	[ "$(field mode "$tmp/ns")" != shared ] && field reason "$tmp/ns" | grep -q "time namespace" &&
		ok "not attached: $(field reason "$tmp/ns")" || bad "timens: $(cat "$tmp/ns")"
	unshare -T --monotonic=1000 --boottime=2000 "$R" run 1 > "$tmp/nsrun" &&
		ok "its own namespace's MONOTONIC, in the kernel's brackets" || { bad "timens run"; cat "$tmp/nsrun"; }
else
	echo "  (unshare -T not permitted here: time namespace case not run)"
fi

echo "== uclockd's verdict on the TSC across CPUs"
grep -q "in step on all" "$tmp/daemon.log" && ok "uclockd checked the TSC on every CPU" ||
	bad "no check across CPUs in the log: $(head -n 3 "$tmp/daemon.log")"
# A later check finding the TSC out of step (written into the live page
# here, as uclockd would): attached readers stop reading the TSC, and no
# reading goes off the kernel or back on the way.
nice -n 10 "$R" run 2 > "$tmp/step" & reader=$!
sleep 0.7
python3 - "$page" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(48); f.write(struct.pack('<I', 2))   # tsc_sync: out of step
    f.seek(56); f.write(struct.pack('<q', 12345))
PY
wait $reader; rc=$?
"$R" stat > "$tmp/step.stat"
[ $rc = 0 ] && case $(field modes "$tmp/step") in shared,*kernel) true ;; *) false ;; esac &&
	ok "out of step: the reader passed through, right throughout ($(field modes "$tmp/step"))" ||
	{ bad "reader when the TSC was found out of step"; cat "$tmp/step"; }
field trust "$tmp/step.stat" | grep -q "out of step across CPUs (2 CPUs, up to 12345 ns" &&
	ok "a new process refuses the TSC: $(field trust "$tmp/step.stat")" ||
	bad "new process: $(cat "$tmp/step.stat")"
python3 - "$page" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(48); f.write(struct.pack('<I', 1))
PY

echo "== a clean stop"
kill -TERM "$daemon"; wait "$daemon"; rc=$?; daemon=
[ $rc = 0 ] && ok "uclockd exits 0 on SIGTERM" || bad "uclockd exit $rc"
"$R" stat > "$tmp/after"
field reason "$tmp/after" | grep -q "marked stopped" && ok "the page is marked stopped: $(field reason "$tmp/after")" ||
	bad "after stop: $(cat "$tmp/after")"
grep -q "stopped; .* marked stopped" "$tmp/daemon.log" && ok "uclockd logs its stop" || bad "log"

echo "== usage"
"$D" --bogus 2>/dev/null; [ $? = 2 ] && ok "bad option: exit 2" || bad "bad option"
"$D" --interval 0 2>/dev/null; [ $? = 2 ] && ok "bad interval: exit 2" || bad "bad interval"
"$D" --help >/dev/null; [ $? = 0 ] && ok "--help: exit 0" || bad "--help"
"$D" --path /proc/nonexistent/page 2>/dev/null; [ $? = 1 ] && ok "unwritable path: exit 1" || bad "unwritable path"

echo "== man page and systemd unit"
if command -v groff >/dev/null; then
	groff -man -Tutf8 -ww -z man/uclockd.8 2>"$tmp/groff"
	[ ! -s "$tmp/groff" ] && ok "uclockd.8 renders without warnings" || { bad "uclockd.8"; cat "$tmp/groff"; }
fi
if command -v systemd-analyze >/dev/null; then
	sed "s|@SBINDIR@/uclockd|$(cd "$BUILD" && pwd)/uclockd|" packaging/uclockd.service.in \
		> "$tmp/uclockd.service"
	systemd-analyze verify --man=no "$tmp/uclockd.service" >"$tmp/unit" 2>&1 &&
		ok "uclockd.service verifies" || { bad "uclockd.service"; cat "$tmp/unit"; }
fi

[ $fail = 0 ] && echo "uclockd: all checks passed" || echo "uclockd: failures above"
exit $fail
