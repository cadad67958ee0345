# tests/helpers/common.bash: shared set-up for the bats files.
# The tools under test come from $EVPIPE_BIN (make check sets it to the sanitizer build).

EVPIPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EVPIPE_BIN="${EVPIPE_BIN:-$EVPIPE_ROOT/bin}"
PATH="$EVPIPE_BIN:$PATH"
export EVPIPE_ROOT EVPIPE_BIN PATH

# Load the addresses of the real servers written by tests/services/up. A test that needs a
# server fails, never skips, when they are missing: a skipped integration test proves nothing.
need_services() {
	local env="${EVPIPE_SERVICES_ENV:-$EVPIPE_ROOT/tests/services/env}"
	if [ ! -f "$env" ]; then
		echo "tests/services/env is missing: run tests/services/up (make check does)" >&2
		return 1
	fi
	# shellcheck disable=SC1090
	. "$env"
}

# A topic name unique to this test, so tests never see each other's records.
new_topic() {
	echo "t-${1:-x}-$BATS_SUITE_TEST_NUMBER-$$-$RANDOM"
}

# Fail with both texts shown when two files differ.
assert_same_file() {
	if ! cmp -s "$1" "$2"; then
		echo "files differ: $1 $2" >&2
		diff "$1" "$2" | head -40 >&2 || true
		return 1
	fi
}

# Wait until a command succeeds, at most $1 seconds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

# Stop what a test left running in the background, so that a failed test cannot hang the
# suite (bats waits for every process that holds its output open).
teardown() {
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one word per pid
	[ -z "$pids" ] || kill $pids 2>/dev/null || true
}
