#!/bin/sh
# The readers as a caller without a C compiler reaches them: Python's
# ctypes loads $BUILD/libuclock.so and calls the exported uclock_mono_ns,
# uclock_real_ns and uclock_ticks.  Each reading lies between two readings
# of the kernel's same clock taken around it, MONOTONIC never goes back,
# and a tick converts (uclock_ticks_to_ns) into the bracket it was read in.
# Exit 0 pass, 1 fail, 77 skip (no python3).
set -u
BUILD=${BUILD:-build}
command -v python3 >/dev/null 2>&1 || { echo "SKIP no python3"; exit 77; }
LIB="$BUILD/libuclock.so" python3 - <<'PY'
import ctypes, os, sys, time

lib = ctypes.CDLL(os.environ["LIB"])
for name, res in (("uclock_mono_ns", ctypes.c_int64), ("uclock_real_ns", ctypes.c_int64),
                  ("uclock_ticks", ctypes.c_uint64), ("uclock_ticks_to_ns", ctypes.c_int64)):
    getattr(lib, name).restype = res
lib.uclock_ticks_to_ns.argtypes = (ctypes.c_int, ctypes.c_uint64)

MONO, REAL = time.CLOCK_MONOTONIC, time.CLOCK_REALTIME
bad = []
last = 0
n = 0
end = time.monotonic() + 1.0   # through calibration into steady state
while time.monotonic() < end:
    for clock, read in ((MONO, lib.uclock_mono_ns), (REAL, lib.uclock_real_ns)):
        a = time.clock_gettime_ns(clock)
        v = read()
        b = time.clock_gettime_ns(clock)
        if not a <= v <= b:
            bad.append("clock %d: %d not in [%d, %d]" % (clock, v, a, b))
        if clock == MONO:
            if v < last:
                bad.append("MONOTONIC back: %d after %d" % (v, last))
            last = v
    a = time.clock_gettime_ns(MONO)
    t = lib.uclock_ticks()
    b = time.clock_gettime_ns(MONO)
    v = lib.uclock_ticks_to_ns(MONO, t)
    if not a <= v <= b:
        bad.append("tick %d converts to %d, not in [%d, %d]" % (t, v, a, b))
    n += 1
for line in bad[:10]:
    print("  FAIL: " + line)
if bad:
    sys.exit(1)
print("  ok: %d rounds of uclock_mono_ns, uclock_real_ns, uclock_ticks through ctypes, "
      "each inside the kernel's bracket" % n)
PY
