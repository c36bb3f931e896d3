#!/bin/sh
# Every JSON output of uclock against man/uclock.1's JSON OUTPUT section:
#  - the report, info, vdso, bench (with --threads), check, verify,
#    watch and bounds run with --json; each document parses, is one line, and starts
#    with "schema_version": 1 (watch: every line);
#  - the key paths of each output (a.b, a[].b) are exactly those the man
#    page lists for the command, with the shared objects it refers to
#    ("the uclock object") expanded: a key in the code and not in the page
#    fails, and so does one in the page and not in the output, unless a
#    key above it is null or an empty array here;
#  - each value has the type the page gives it, and is null only where the
#    page says it may be;
#  - info, past its warm-up, is in counter mode where uclock's policy
#    serves from the counter here (source tsc); where it passes through,
#    that check is skipped with the reason.
# Exit 0 pass, 1 fail, 77 skip (no python3).
#
# -e is off on purpose: every command's status is checked explicitly, so
# that the script can only end with 0, 1 or 77.
set -u

BUILD=${BUILD:-build}
UCLOCK=$BUILD/uclock
MAN=man/uclock.1
# The tests own this process's timekeeper: no uclockd page here.
UCLOCK_PAGE=off
export UCLOCK_PAGE

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

if [ ! -x "$UCLOCK" ] || [ ! -f "$MAN" ]; then
	echo "FAIL: run from the top of the tree after make ($UCLOCK, $MAN)"
	exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 not found (needed to read the JSON)"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uclock-json.XXXXXX") || {
	echo "FAIL: mktemp -d"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

# run NAME STATUSES ARGS...: uclock ARGS into $tmp/NAME.json; the exit
# status must be one of STATUSES (comma-separated).
run() {
	name=$1 statuses=$2; shift 2
	"$UCLOCK" "$@" >"$tmp/$name.json" 2>"$tmp/$name.err"
	rc=$?
	case ",$statuses," in
	*",$rc,"*) echo "ok: uclock $* exits $rc" ;;
	*)
		fail "uclock $* exited $rc, expected $statuses"
		sed 's/^/    /' "$tmp/$name.err" | head -n 5
		;;
	esac
}

# What is checked elsewhere (a vDSO mapped, tracing allowed, the clock
# verified) may differ here: those statuses are the other tests' business.
run report 0 --json
run info 0 info --json
run vdso 0,1 vdso --json
run bench 0 bench --duration 0.2 --threads 2 --json
run check 0,1 check --calls 200 --json
run verify 0,1 verify --duration 0.2 --json
run watch 0 watch --json --count 3 --interval 0.1
run bounds 0 bounds --json
"$UCLOCK" info >"$tmp/info.txt" 2>&1 || fail "uclock info exited $?"

python3 - "$MAN" "$tmp" <<'EOF' || failures=$((failures + 1))
import json, os, re, sys

man, tmp = sys.argv[1], sys.argv[2]
problems = []
notes = []

def problem(message):
    problems.append(message)

# ---- The man page: subsections of JSON OUTPUT, each a list of keys. ----

TYPES = ("integer", "number", "string", "boolean", "object", "array")

def unescape(s):
    return s.replace("\\-", "-").replace('"', "").strip()

def read_sections(path):
    """{subsection title: [(key, description)]} of .SH JSON OUTPUT."""
    sections, inside, title, key, desc = {}, False, None, None, []
    def flush():
        if title is not None and key is not None:
            sections[title].append((key, " ".join(desc)))
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith(".SH"):
            flush()
            key = None
            inside = unescape(line[3:]) == "JSON OUTPUT"
            title = None
            continue
        if not inside:
            continue
        if line.startswith(".SS"):
            flush()
            key, title = None, unescape(line[3:])
            sections[title] = []
        elif line.startswith(".TP"):
            flush()
            key, desc = "", []
        elif line.startswith(".PP"):
            flush()
            key = None
        elif key == "" and line.startswith(".B "):
            key = unescape(line[3:])
        elif key:
            # Macro names off: the words are what is left.
            desc.append(re.sub(r"^\.[A-Z]+ ", "", line))
    flush()
    return sections

def entry(key, desc, where):
    words = desc.split()
    kind = words[0].rstrip(":,.;") if words else ""
    if kind not in TYPES:
        problem("%s: %s: the description does not start with a type: %r"
                % (where, key, desc))
    of = None
    if kind == "array" and len(words) > 2 and words[1] == "of":
        of = words[2].rstrip(":,.;")
    shared = None
    m = re.match(r"object: the (\w+) object", desc)
    if m:
        shared = m.group(1)
    return {"type": kind, "of": of, "nullable": "null" in desc,
            "shared": shared}

sections = read_sections(man)
shared = {}
commands = {}
for title, entries in sections.items():
    m = re.match(r"The (\w+) object$", title)
    if m:
        shared[m.group(1)] = entries
        continue
    m = re.match(r"uclock ?(\w*) --json$", title)
    if not m:
        problem("JSON OUTPUT: subsection %r names no command" % title)
        continue
    commands[m.group(1) or "report"] = entries

def documented(command):
    """{key path: entry} for a command, shared objects expanded."""
    keys = {}
    def add(prefix, entries, where, depth=0):
        for key, desc in entries:
            e = entry(key, desc, where)
            keys[prefix + key] = e
            if e["shared"]:
                if e["shared"] not in shared or depth > 3:
                    problem("%s: %s refers to %r, not in the page"
                            % (where, key, e["shared"]))
                    continue
                add(prefix + key + ".", shared[e["shared"]],
                    "the %s object" % e["shared"], depth + 1)
    add("", commands.get(command, []), label(command))
    return keys

expected = ["report", "info", "vdso", "bench", "check", "verify", "watch", "bounds"]
for c in expected:
    if c not in commands:
        problem("JSON OUTPUT has no subsection for %s" % c)
for c in commands:
    if c not in expected:
        problem("JSON OUTPUT documents %r, which this test does not run" % c)
for name in ("platform", "uclock", "bounds"):
    if name not in shared:
        problem("JSON OUTPUT has no subsection 'The %s object'" % name)

# ---- The outputs. ----

def load(name):
    """The documents of one output: one, or one a line for watch."""
    raw = open(os.path.join(tmp, name + ".json"), "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problem("%s: not UTF-8: %s" % (name, e))
        return []
    lines = text.split("\n")
    if not text.endswith("\n") or lines[-1] != "":
        problem("%s: the output does not end with a newline" % name)
    lines = [l for l in lines if l]
    if name != "watch" and len(lines) != 1:
        problem("%s: %d lines, not one JSON object on one line"
                % (name, len(lines)))
    docs = []
    for i, line in enumerate(lines):
        try:
            doc = json.loads(line)
        except ValueError as e:
            problem("%s: line %d does not parse: %s" % (name, i + 1, e))
            continue
        if not isinstance(doc, dict):
            problem("%s: line %d is not an object" % (name, i + 1))
            continue
        first = next(iter(doc), None)
        v = doc.get("schema_version")
        if first != "schema_version" or type(v) is not int or v != 1:
            problem("%s: line %d: the first key is %r, schema_version %r, "
                    "not \"schema_version\": 1" % (name, i + 1, first, v))
        docs.append(doc)
    return docs

def walk(value, prefix, seen):
    """seen: {key path: [values]}, for every key of every object."""
    if isinstance(value, dict):
        for k, v in value.items():
            path = prefix + k
            seen.setdefault(path, []).append(v)
            if isinstance(v, dict):
                walk(v, path + ".", seen)
            elif isinstance(v, list):
                for item in v:
                    if isinstance(item, dict):
                        walk(item, path + "[].", seen)

def ancestors(path):
    """The key paths above one: a.b[].c gives a, a.b."""
    out = []
    for m in re.finditer(r"\.|\[\]\.", path):
        out.append(path[:m.start()])
    return out

def type_ok(value, e):
    t = e["type"]
    if t == "integer":
        return type(value) is int
    if t == "number":
        return type(value) in (int, float)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        if not isinstance(value, list):
            return False
        want = {"strings": str, "objects": dict}.get(e["of"])
        return want is None or all(isinstance(x, want) for x in value)
    return False

def label(command):
    return "uclock --json" if command == "report" else "uclock %s --json" % command

def compare(command, docs):
    keys = documented(command)
    seen = {}
    for doc in docs:
        walk(doc, "", seen)
    if not docs:
        return
    for path in sorted(set(seen) - set(keys)):
        problem("%s: %s is not in man/uclock.1 (JSON OUTPUT)"
                % (label(command), path))
    # Under a null or an empty array there is nothing to see.
    hollow = set(p for p, vs in seen.items()
                 if any(v is None or v == [] for v in vs))
    for path in sorted(set(keys) - set(seen)):
        if not any(a in hollow for a in ancestors(path)):
            problem("%s: %s is in man/uclock.1 but not in the output"
                    % (label(command), path))
    for path, values in sorted(seen.items()):
        e = keys.get(path)
        if e is None:
            continue
        # The first value that is wrong, not every one.
        for v in values:
            if v is None and not e["nullable"]:
                problem("%s: %s is null; the man page does not say it may be"
                        % (label(command), path))
                break
            if v is not None and not type_ok(v, e):
                problem("%s: %s is %r, not %s%s"
                        % (label(command), path, v, e["type"],
                           " of " + e["of"] if e["of"] else ""))
                break
    print("%s: %d documents, %d key paths, as documented%s"
          % (label(command), len(docs), len(seen),
             "" if not problems else " (see the failures)"))

outputs = {}
for command in expected:
    docs = load(command)
    outputs[command] = docs
    compare(command, docs)
if len(outputs["watch"]) != 3:
    problem("watch --json --count 3: %d lines" % len(outputs["watch"]))

# ---- Past its warm-up, info is in counter mode where the policy serves
# from the counter.  The text agrees on the source. ----

info = outputs["info"][0] if outputs["info"] else {}
u = info.get("uclock") or {}
text = open(os.path.join(tmp, "info.txt"), encoding="utf-8", errors="replace").read()
m = re.search(r"^  source +(\S+)", text, re.M)
if not m or m.group(1) != u.get("source"):
    problem("uclock info says source %r, info --json %r"
            % (m.group(1) if m else None, u.get("source")))
if u.get("source") == "tsc":
    if u.get("mode") != "counter":
        problem("info --json: source tsc, mode %r after the warm-up, not "
                "\"counter\"" % u.get("mode"))
    else:
        print("uclock info --json: mode counter after its warm-up")
else:
    notes.append("the counter-mode check is skipped: uclock passes through "
                 "here (source %r: %s)" % (u.get("source"), u.get("reason")))

for n in notes:
    print("note: " + n)
for p in problems:
    print("FAIL: " + p)
sys.exit(1 if problems else 0)
EOF

[ "$failures" -eq 0 ] || { echo "cli_json: $failures failure(s)"; exit 1; }
echo "cli_json: all checks passed"
exit 0
