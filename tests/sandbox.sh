#!/bin/sh
# libuclock in sandboxes: after its first read, a process must read the
# time with no system call the C library would not make, and answer as the
# C library would when the kernel's clock fails.
#  1. seccomp makes clock_gettime(2) fail with EPERM (UCLOCK_VDSO=off): in
#     counter mode and in warm-up, reads come back -1/EPERM, never hang,
#     and no reading that succeeds goes back;
#  2. a whitelist filter kills the process on any other system call (and,
#     where the vDSO serves every clock, on any clock_gettime(2) but the
#     test's own): every clock read right for seconds, in-process (vDSO;
#     UCLOCK_VDSO=off), attached to uclockd while it is stopped, killed and
#     restarted, and through libuclock-preload.so;
#  3. no /proc, in another time namespace: not attached, its own clocks;
#  4. children in another time namespace, by raw clone() (no atfork
#     handlers) and by fork(): their own clocks, off the page;
#  5. under strace, with UCLOCK_VDSO=off: at most 3 system calls a read,
#     1000 reads back to back, and 1000 reads spread over 100 ms (each due
#     100 us after the last: a sleep until then, as a traced sleep takes
#     longer than asked; the sleeps are not counted).
# Each reading is checked against the kernel's, read by system calls on
# both sides of it (1 us of slack).  (Every wait names its processes: a
# bare wait would wait for the daemon too.)
BUILD=${BUILD:-build}
R="$BUILD/tests/helpers/sandbox_reader"
L="$BUILD/tests/helpers/sandbox_libc"
P="$(cd "$BUILD" && pwd)/libuclock-preload.so"
ran=0
readers=
. tests/helpers/daemon.sh
# The readers' own timeouts pass a kill on to them.
cleanup_more() { for p in $readers; do kill "$p" 2>/dev/null; done; }

skip() { printf '  (skipped: %s)\n' "$1"; }
show() { sed 's/^/    /' "$1"; }
# How a helper ended, from its exit status (through timeout) [and output].
ended() {  # STATUS [OUTPUT]
	case $1 in
	0) echo "exit 0" ;;
	124 | 137) echo "hung: killed by timeout" ;;
	159) echo "killed by SIGSYS: a system call outside the filter${2:+$(sigsys "$2")}" ;;
	*) [ "$1" -gt 128 ] && echo "killed by signal $(($1 - 128))" || echo "exit $1" ;;
	esac
}
# The call the filter killed the helper for, as the kernel logged it (if
# the log may be read).
sigsys() {  # OUTPUT
	spid=$(field pid "$1")
	[ -n "$spid" ] && dmesg 2>/dev/null | grep 'type=1326' | grep " pid=$spid " | tail -n 1 |
		sed -n 's/.* syscall=\([0-9]*\).*/ (system call number \1)/p'
}

attachable() { wait_attached env UCLOCK_PAGE="$page" "$R" stat; }

seccomp=yes
"$R" probe > "$tmp/probe" 2>&1 || { seccomp=no; show "$tmp/probe"; }
# Where the counter cannot be trusted, the library passes every read to the
# kernel and uclockd does not run.
source=$(UCLOCK_PAGE=off "$R" stat | sed -n 's/^stat source=//p')
[ "$source" = tsc ] && final=counter phases="counter warmup" || final=kernel phases=kernel
notsc="the library does not trust the counter here (source '$source'): no uclockd"
# Strict: clock_gettime(2) only for the test's own readings, where the
# vDSO serves every clock (as there the C library makes no system call).
vdso=$("$R" vdso-check)
strict=${vdso%% *}

echo "== 1. clock_gettime(2) fails with EPERM (UCLOCK_VDSO=off): -1/EPERM, never a hang"
if [ $seccomp = yes ]; then
	ran=$((ran + 1))
	for clock in mono real; do
		for phase in $phases; do
			UCLOCK_VDSO=off UCLOCK_PAGE=off timeout -k 2 10 "$R" eperm $clock $phase \
				> "$tmp/eperm" 2>&1
			rc=$?
			if [ $rc = 0 ]; then
				ok "$clock, filter in $phase mode: -1/EPERM after" \
					"$(field read_before_eperm "$tmp/eperm") good readings, none back"
			else
				bad "$clock, filter in $phase mode: $(ended $rc)"; show "$tmp/eperm"
			fi
		done
	done
else
	skip "seccomp filters cannot be installed here"
fi

echo "== 2. whitelist filter: any other system call kills ($vdso)"
if [ $seccomp = yes ]; then
	ran=$((ran + 1))
	UCLOCK_PAGE=off timeout -k 2 20 "$R" run 2.6 "$strict" > "$tmp/run.a" 2>&1 & a=$!
	UCLOCK_PAGE=off UCLOCK_VDSO=off timeout -k 2 20 "$R" run 2.6 loose > "$tmp/run.b" 2>&1 & b=$!
	# Sanitizer builds do not preload the shim (an instrumented library
	# into a program whose runtime comes later; see SKIP_SCRIPTS in the
	# Makefile): case (d) is the plain builds'.
	case " ${SKIP_SCRIPTS:-} " in
	*" preload "*) preload=no; d= ;;
	*) preload=yes
	   UCLOCK_PAGE=off LD_PRELOAD="$P" timeout -k 2 20 "$L" run 2.6 "$strict" \
		> "$tmp/run.d" 2>&1 & d=$! ;;
	esac
	readers="$a $b $d"
	wait $a; rc_a=$?
	wait $b; rc_b=$?
	[ -n "$d" ] && { wait $d; rc_d=$?; }
	readers=
	for c in a b; do
		case $c in
		a) rc=$rc_a what="in-process, vDSO" ;;
		b) rc=$rc_b what="in-process, UCLOCK_VDSO=off" ;;
		esac
		modes=$(field 'run modes' "$tmp/run.$c")
		case ",$modes," in *,$final,*) reached=yes ;; *) reached=no ;; esac
		if [ $rc = 0 ] && [ $reached = yes ]; then
			ok "($c) $what: $(field 'run readings' "$tmp/run.$c") readings right, modes $modes"
		else
			bad "($c) $what: $(ended $rc "$tmp/run.$c"), modes '$modes'"; show "$tmp/run.$c"
		fi
	done

	[ "$source" = tsc ] || skip "(c) $notsc"
	[ "$source" = tsc ] && start && attachable && {
		UCLOCK_PAGE="$page" nice -n 10 timeout -k 2 30 "$R" run 4.5 "$strict" shared > "$tmp/run.c" 2>&1 &
		c=$!; readers=$c
		i=0
		while [ $i -lt 50 ] && ! grep -qs '^filtered=' "$tmp/run.c"; do sleep 0.1; i=$((i + 1)); done
		sleep 0.5; stop TERM; sleep 0.3; start
		sleep 0.5; stop KILL; sleep 0.3; start
		sleep 0.3
		kill -0 $c 2>/dev/null && alive=yes || alive=no
		wait $c; rc=$?; readers=
		modes=$(field 'run modes' "$tmp/run.c")
		first=$(field 'first mode' "$tmp/run.c")
		what="(c) attached; uclockd stopped, started, killed, started"
		if [ $rc = 0 ] && [ "$first" = shared ] && [ "$alive" = yes ] &&
		   [ "${modes%%,*}" = shared ] && [ "$modes" != shared ]; then
			ok "$what: $(field 'run readings' "$tmp/run.c") readings right, modes $modes"
		else
			bad "$what: $(ended $rc "$tmp/run.c"), first mode '$first'," \
				"alive through the faults: $alive, modes '$modes'"
			show "$tmp/run.c"
		fi
	}

	if [ $preload = no ]; then
		skip "(d): the shim is not preloaded in sanitizer builds"
	elif [ $rc_d = 0 ] && [ "$(field interposed "$tmp/run.d")" = yes ]; then
		ok "(d) the C library's calls through libuclock-preload.so:" \
			"$(field 'libc readings' "$tmp/run.d") readings right"
	else
		bad "(d) libuclock-preload.so: $(ended $rc_d "$tmp/run.d")," \
			"interposed '$(field interposed "$tmp/run.d")'"
		show "$tmp/run.d"
	fi
else
	skip "seccomp filters cannot be installed here"
fi

echo "== 3. no /proc, in another time namespace: not attached, its own clocks"
if [ "$source" != tsc ]; then
	skip "$notsc"
elif [ -z "$daemon" ] && ! start; then
	:
elif ! unshare -m -T --monotonic=100000 --boottime=100000 --fork sh -c 'umount -l /proc' \
	> "$tmp/unshare" 2>&1; then
	skip "unshare -m -T, or umount /proc, not permitted: $(head -n 1 "$tmp/unshare")"
elif attachable; then
	ran=$((ran + 1))
	outside=$("$R" mono)
	UCLOCK_PAGE="$page" timeout -k 2 20 unshare -m -T --monotonic=100000 --boottime=100000 \
		--fork sh -c 'umount -l /proc && exec "$0" noproc 1' "$R" > "$tmp/noproc" 2>&1
	rc=$?
	inside=$(field mono_s "$tmp/noproc")
	ahead=$((${inside:-0} - ${outside:-0}))
	mode=$(field 'noproc mode' "$tmp/noproc")
	reason=$(field 'noproc reason' "$tmp/noproc")
	if [ "$(field proc "$tmp/noproc")" != absent ] || [ $ahead -lt 99990 ]; then
		bad "the sandbox was not made: /proc $(field proc "$tmp/noproc")," \
			"MONOTONIC ${inside:-?} s inside, $outside s outside"
		show "$tmp/noproc"
	elif [ "$mode" != shared ] && echo "$reason" | grep -q "time namespace cannot be checked"; then
		ok "not attached: $reason"
	else
		bad "mode $mode: $reason"
	fi
	if [ $rc = 0 ]; then
		ok "MONOTONIC, BOOTTIME, RAW, REALTIME ($(field 'noproc readings' "$tmp/noproc")" \
			"readings) in its own brackets, $ahead s ahead of uclockd's"
	else
		bad "readings without /proc: $(ended $rc)"; show "$tmp/noproc"
	fi
fi

echo "== 4. children in another time namespace: raw clone() and fork()"
if [ "$source" != tsc ]; then
	skip "$notsc"
elif ! unshare -T true 2>/dev/null; then
	skip "unshare -T not permitted"
elif attachable; then
	UCLOCK_PAGE="$page" timeout -k 2 30 "$R" clone > "$tmp/clone" 2>&1
	rc=$?
	if [ $rc = 77 ]; then
		skip "$(grep -m 1 '^SKIP' "$tmp/clone")"
	else
		ran=$((ran + 1))
		for part in clone_enter parent_a clone_born parent_b fork_born fork_enter parent_c; do
			case $part in
			clone_enter) what="(a) raw clone, the child makes a namespace and enters it" ;;
			parent_a) what="(a) the parent, still on the page" ;;
			clone_born) what="(b) the parent unshares, raw clone: the child born in it" ;;
			parent_b) what="(b) the parent, its own clocks unchanged" ;;
			fork_born) what="(c) fork, the child born in the namespace" ;;
			fork_enter) what="(c) fork, the child enters a namespace of its own" ;;
			parent_c) what="(c) the parent" ;;
			esac
			r=$(field "$part" "$tmp/clone")
			n=$(field "$part readings" "$tmp/clone")
			m=$(field "$part mode" "$tmp/clone")
			[ "$r" = ok ] && ok "$what: $n readings right${m:+, then mode $m}" || bad "$what: ${r:-not run}"
		done
		[ $rc = 0 ] || { bad "clone: $(ended $rc)"; show "$tmp/clone"; }
	fi
fi
[ -n "$daemon" ] && stop TERM

echo "== 5. system calls per read under strace (UCLOCK_VDSO=off)"
# The calls between the markers, not counting their own writes, the
# sleeps, or strace's notes on signals and exits.
between() {  # STRACE-OUTPUT
	awk '/write\(2, "sandbox: steady reads begin/ { on = 1; next }
	     /write\(2, "sandbox: steady reads end/ { on = 0 }
	     on && !/nanosleep\(/ && !/ (---|\+\+\+) / { sub(/^[0-9]+ +/, ""); print }' "$1"
}
if ! command -v strace >/dev/null; then
	skip "strace is not installed"
else
	ran=$((ran + 1))
	for nap in 0 100; do
		UCLOCK_VDSO=off UCLOCK_PAGE=off timeout -k 2 60 strace -f -o "$tmp/strace.$nap" \
			"$R" strace 1000 $nap > "$tmp/traced.$nap" 2>"$tmp/strace.err"
		rc=$?
		if [ ! -s "$tmp/strace.$nap" ]; then
			ran=$((ran - 1)); skip "strace cannot trace here: $(head -n 1 "$tmp/strace.err")"; break
		fi
		n=$(between "$tmp/strace.$nap" | wc -l)
		calls=$(between "$tmp/strace.$nap" | sed 's/(.*//' | sort | uniq -c | sort -rn |
			awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
		[ $nap = 0 ] && how="back to back" || how="one due every $nap us"
		echo "    1000 reads $how: $n system calls${calls:+ ($calls)}," \
			"$(field elapsed_us "$tmp/traced.$nap") us, $(field updates "$tmp/traced.$nap") updates," \
			"mode $(field 'strace mode' "$tmp/traced.$nap")"
		if [ $rc = 0 ] && [ "$n" -le 3000 ]; then
			ok "$how: $n system calls for 1000 reads (3000 allowed)"
		else
			bad "$how: $n system calls for 1000 reads (3000 allowed), $(ended $rc)"
			show "$tmp/traced.$nap"
		fi
	done
fi

if [ $ran = 0 ]; then
	echo "SKIP no sandbox can be made here (seccomp, unshare, strace)"
	exit 77
fi
[ $fail = 0 ] && echo "sandbox: all checks passed" || echo "sandbox: failures above"
exit $fail
