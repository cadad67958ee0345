# SPDX-License-Identifier: Apache-2.0
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

# The first of $1 consecutive ports where nothing listens, below the range the kernel gives to
# outgoing connections (so that no client of the busy test servers holds one).
free_ports() {
	local low _ base
	read -r low _ < /proc/sys/net/ipv4/ip_local_port_range
	for _ in $(seq 100); do
		base=$((10000 + RANDOM % (low - 10000 - $1)))
		if [ -z "$(ss -Htln "sport >= :$base and sport < :$((base + $1))")" ]; then
			echo "$base"
			return
		fi
	done
	return 1
}

# Stop what a test left running in the background, so that a failed test cannot hang the
# suite (bats waits for every process that holds its output open).
stop_jobs() {
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one word per pid
	[ -z "$pids" ] || kill $pids 2>/dev/null || true
}

teardown() {
	stop_jobs
}

# The broker's transactions whose transactional.id begins with $1: "<id> <state> <start ms>"
# lines (tests/helpers/Transactions.java: kafka-transactions.sh list and describe).
transactions() {
	local libs=${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/kafka-$KAFKA_VERSION/libs
	java -cp "$libs/*" "$EVPIPE_ROOT/tests/helpers/Transactions.java" "$KAFKA_BROKERS" "$1"
}

# No transaction of the ids beginning with $1 is open that began before $2 (epoch ms; 0:
# none open at all).
none_open() {
	local id state start
	transactions "$1" > txns || return 1
	while read -r id state start; do
		case $state in
		Ongoing | PrepareCommit | PrepareAbort)
			if [ "${2:-0}" -eq 0 ] || [ "$start" -lt "$2" ]; then
				echo "transaction $id is still $state (began at $start)" >&2
				return 1
			fi
			;;
		esac
	done < txns
}
