# Sourced by the scripts that test the uclock command (cli, cli_verify,
# cli_progress, cli_usage): $U the command, ok/bad counting failures into
# $fail, a temporary directory $tmp removed on exit, and expect.  Set
# BUILD first if not the default.
BUILD=${BUILD:-build}
U="$BUILD/uclock"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { printf '  ok: %s\n' "$1"; }
bad() { printf '  FAIL: %s\n' "$1"; fail=1; }

# expect STATUS DESCRIPTION COMMAND...: the exit status is STATUS; the
# output in $tmp/out and $tmp/err (their end shown when it is not).
expect() {
	want=$1 what=$2; shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" = "$want" ]; then ok "$what (exit $got)"
	else bad "$what: exit $got, wanted $want"; sed 's/^/    /' "$tmp/out" "$tmp/err" | tail -n 20; fi
}
