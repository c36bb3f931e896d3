#!/bin/sh
# uclock info and uclock vdso: exit statuses, the JSON keys scripts rely on,
# the clocksource as sysfs has it, and the vDSO listing against objdump -T
# of the image --dump writes.  Run from the top of the tree; BUILD names the
# build directory.  Exit 0 pass, 1 fail, 77 skip.
BUILD=${BUILD:-build}
UCLOCK=$BUILD/uclock
CURRENT=/sys/devices/system/clocksource/clocksource0/current_clocksource
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# expect STATUS COMMAND...: the command's exit status, output kept in $tmp.
expect() {
	want=$1; shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	[ "$got" -eq "$want" ] || {
		fail "'$*' exited $got, expected $want"
		sed 's/^/    /' "$tmp/err" | head -n 5
	}
}

[ -x "$UCLOCK" ] || { echo "FAIL: $UCLOCK not built"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# A kernel booted with vdso=0 maps none: then vdso must say so, exit 1.
mapped=1
"$UCLOCK" vdso >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'no vDSO mapped' "$tmp/err" && mapped=0

expect 0 "$UCLOCK" info
grep -q '^Kernel' "$tmp/out" || fail "info: no Kernel section"
expect 0 "$UCLOCK" info --help
grep -q '^usage: uclock info' "$tmp/out" || fail "info --help: no usage on stdout"
expect 0 "$UCLOCK" vdso --help
expect 2 "$UCLOCK" info --bogus
expect 2 "$UCLOCK" info extra
expect 2 "$UCLOCK" vdso --bogus
expect 2 "$UCLOCK" vdso extra
expect 2 "$UCLOCK" vdso --dump
expect 1 "$UCLOCK" vdso --dump /nonexistent/dir/x
expect 0 "$UCLOCK" info --json
cp "$tmp/out" "$tmp/info.json"

# Bytes from the environment, echoed in the reasons, must come out as valid
# UTF-8 JSON: ill-formed bytes each as U+FFFD, good characters as they are.
# UCLOCK_SOURCE: \377 is never UTF-8, \177 (DEL) is escaped, then e-acute,
# the euro sign and an emoji (2, 3, 4 bytes), a surrogate (\355\240\200)
# and a code point above U+10FFFF (\364\220\200\200).
expect 0 env "UCLOCK_SOURCE=$(printf 'x\377y\177\303\251\342\202\254\360\237\230\200\355\240\200\364\220\200\200z')" \
	"$UCLOCK" info --json
cp "$tmp/out" "$tmp/bytes-source.json"
# Cut to 64 bytes by the library, in the middle of the emoji.
expect 0 env "UCLOCK_SOURCE=$(printf '%062d\360\237\230\200' 0)" "$UCLOCK" info --json
cp "$tmp/out" "$tmp/bytes-cut.json"
# UCLOCK_PAGE, looked for when the TSC is used: a 2-byte sequence cut short
# (\303 then b) and an overlong '/' (\300\257).
expect 0 env UCLOCK_SOURCE=tsc "UCLOCK_PAGE=$(printf '%s/nopage\303b\300\257c' "$tmp")" \
	"$UCLOCK" info --json
cp "$tmp/out" "$tmp/bytes-page.json"

if [ "$mapped" = 0 ]; then
	echo "note: no vDSO mapped here, listing not compared"
	expect 1 "$UCLOCK" vdso --dump "$tmp/vdso.so"
	: >"$tmp/vdso.so"
else
	expect 0 "$UCLOCK" vdso --dump "$tmp/vdso.so"
	[ -s "$tmp/vdso.so" ] || fail "vdso --dump wrote nothing"
	expect 0 "$UCLOCK" vdso
	grep -q 'clock_gettime' "$tmp/out" || fail "vdso: no clock_gettime listed"
fi
expect $((1 - mapped)) "$UCLOCK" vdso --json
cp "$tmp/out" "$tmp/vdso.json"

if [ "$mapped" = 0 ]; then
	: >"$tmp/objdump.txt"
elif command -v objdump >/dev/null 2>&1; then
	objdump -T "$tmp/vdso.so" >"$tmp/objdump.txt" 2>&1 ||
		fail "objdump -T cannot read the dumped image"
else
	echo "note: objdump not found, listing not compared"
	: >"$tmp/objdump.txt"
fi

if ! command -v python3 >/dev/null 2>&1; then
	[ "$failures" -eq 0 ] || exit 1
	echo "SKIP: python3 not found (JSON checks)"
	exit 77
fi

current=
[ -r "$CURRENT" ] && current=$(cat "$CURRENT")
python3 - "$tmp" "$current" "$mapped" <<'EOF' || failures=$((failures + 1))
import json, os, sys

tmp, current, mapped = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
bad = []

def get(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            raise KeyError(path)
        obj = obj[part]
    return obj

def expect(obj, path, kinds, nullable=False):
    try:
        v = get(obj, path)
    except KeyError:
        bad.append("info --json: no key " + path)
        return None
    if v is None and nullable:
        return v
    if not isinstance(v, kinds) or (kinds is not bool and isinstance(v, bool)):
        bad.append("info --json: %s is %r" % (path, v))
    return v

try:
    info = json.load(open(os.path.join(tmp, "info.json")))
    vdso = json.load(open(os.path.join(tmp, "vdso.json")))
except ValueError as e:
    print("FAIL: JSON does not parse:", e)
    sys.exit(1)

num = (int, float)
expect(info, "platform.kernel.release", str)
cur = expect(info, "platform.clocksource.current", str, nullable=True)
avail = expect(info, "platform.clocksource.available", list, nullable=True)
if avail is not None and not all(isinstance(s, str) for s in avail):
    bad.append("clocksource.available: not all strings: %r" % avail)
if (cur or "") != current:
    bad.append("clocksource.current %r, sysfs says %r" % (cur, current))
if current and avail is not None and current not in avail:
    bad.append("current clocksource %r not among available %r" % (current, avail))
vs = expect(info, "platform.vsyscall", str)
if vs not in ("emulate", "xonly", "none"):
    bad.append("vsyscall %r" % vs)
if expect(info, "platform.vdso.mapped", bool) != mapped:
    bad.append("info --json: vdso.mapped is not %r" % mapped)
if mapped and expect(info, "platform.vdso.size_bytes", int) != os.path.getsize(os.path.join(tmp, "vdso.so")):
    bad.append("info --json: vdso.size_bytes is not the dump's size")
syms = expect(info, "platform.vdso.symbols", list, nullable=True) or []
for s in syms:
    if not isinstance(s, dict) or "name" not in s or "version" not in s:
        bad.append("vdso.symbols: bad entry %r" % (s,))
expect(info, "platform.cpu.vendor", str, nullable=True)
expect(info, "platform.cpu.model", str, nullable=True)
for f in ("present", "invariant", "constant", "nonstop", "known_freq",
          "rdtscp", "rdpid", "reliable", "kvm_stable"):
    expect(info, "platform.tsc." + f, bool)
# Frequencies nobody reported are null, never 0.
for f in ("platform.tsc.cpuid_frequency_hz", "platform.tsc.hypervisor_frequency_hz",
          "platform.cpu.base_frequency_hz", "uclock.counter_hz"):
    if expect(info, f, int, nullable=True) == 0:
        bad.append("info --json: %s is 0, not null" % f)
hv = expect(info, "platform.cpu.hypervisor", str, nullable=True)
if hv == "":
    bad.append("platform.cpu.hypervisor is \"\", not null")
expect(info, "platform.ntp.synchronized", bool, nullable=True)
for f in ("frequency_ppm", "estimated_error_us", "maximum_error_us", "tai_offset_s"):
    expect(info, "platform.ntp." + f, num, nullable=True)
for f in ("monotonic_offset_ns", "boottime_offset_ns"):
    expect(info, "platform.time_namespace." + f, int, nullable=True)
for f in ("source", "mode", "reason", "counter_read", "kernel_path"):
    expect(info, "uclock." + f, str, nullable=True)

# The vDSO listing against objdump -T of the dumped image.
if vdso.get("mapped") is not mapped:
    bad.append("vdso --json: mapped is %r" % vdso.get("mapped"))
if mapped and vdso.get("size_bytes") != os.path.getsize(os.path.join(tmp, "vdso.so")):
    bad.append("vdso --json: size_bytes %r, the dump has %d bytes"
               % (vdso.get("size_bytes"), os.path.getsize(os.path.join(tmp, "vdso.so"))))
# Addresses as the text view prints them: 0x and 16 hex digits.
def address(a):
    if not isinstance(a, str) or len(a) != 18 or not a.startswith("0x"):
        bad.append("vdso --json: address %r is not 0x and 16 hex digits" % (a,))
        return None
    return int(a, 16)
if mapped:
    address(vdso.get("address"))
ours, ours_named = set(), set()
for s in vdso.get("symbols") or []:
    for k in ("name", "version", "hidden_version", "address", "size_bytes",
              "type", "bind"):
        if k not in s:
            bad.append("vdso --json: symbol without %s: %r" % (k, s))
    ours.add((s.get("name"), s.get("version"), address(s.get("address")),
              s.get("size_bytes")))
    ours_named.add((s.get("name"), s.get("version")))
listed = set((s.get("name"), s.get("version")) for s in syms if isinstance(s, dict))
if not listed <= ours_named:
    bad.append("info lists symbols vdso does not: %r" % sorted(listed - ours_named))

# "addr flags section\tsize [version] name"; "(v)" hidden, "Base" none.
# The same names, versions, addresses and sizes as vdso --json.
theirs, seen = set(), False
for line in open(os.path.join(tmp, "objdump.txt")):
    if "DYNAMIC SYMBOL TABLE" in line:
        seen = True
        continue
    if not seen or "\t" not in line:
        continue
    head, tail = line.split("\t", 1)
    if head.split()[-1] == "*UND*":
        continue
    tok = tail.split()
    addr, size = int(head.split()[0], 16), int(tok[0], 16)
    if len(tok) == 2:
        theirs.add((tok[1], None, addr, size))
    elif len(tok) == 3:
        v = tok[1].strip("()")
        theirs.add((tok[2], None if v in ("Base", "*local*", "*global*") else v,
                    addr, size))
if seen and ours != theirs:
    bad.append("vdso --json and objdump -T differ: only ours %r, only objdump %r"
               % (sorted(ours - theirs, key=str), sorted(theirs - ours, key=str)))
if seen and ours == theirs:
    print("objdump -T: the same %d symbols as uclock vdso --json" % len(ours))

for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
EOF

# Read as bytes and decoded strictly: invalid UTF-8 fails, whatever the locale.
python3 - "$tmp" <<'EOF' || failures=$((failures + 1))
import json, os, sys

tmp = sys.argv[1]
bad = []

def load(name):
    raw = open(os.path.join(tmp, name), "rb").read()
    try:
        return raw, json.loads(raw.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError is one
        bad.append("%s: not UTF-8 JSON: %s" % (name, e))
        return raw, None

def has(name, obj, key, text):
    v = obj.get("uclock", {}).get(key)
    if not isinstance(v, str) or text not in v:
        bad.append("%s: uclock.%s is %r, without %r" % (name, key, v, text))

raw, info = load("bytes-source.json")
if info is not None:
    # \377, then 3 for the surrogate and 4 for the code point too large.
    has("bytes-source.json", info, "reason",
        "UCLOCK_SOURCE=x\ufffdy\x7f\u00e9\u20ac\U0001f600"
        + "\ufffd" * 7 + "z is not")
    if b"\\u007f" not in raw:
        bad.append("bytes-source.json: DEL not written as \\u007f")

raw, info = load("bytes-cut.json")
if info is not None:
    has("bytes-cut.json", info, "reason",
        "UCLOCK_SOURCE=" + "0" * 62 + "\ufffd\ufffd is not")

raw, info = load("bytes-page.json")
if info is not None:
    if info.get("uclock", {}).get("source") == "tsc":
        has("bytes-page.json", info, "page_reason", "/nopage\ufffdb\ufffd\ufffdc")
    else:
        print("note: the TSC is not used here, UCLOCK_PAGE not looked for")

for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
EOF

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "ok"
exit 0
