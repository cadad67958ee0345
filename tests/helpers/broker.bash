# SPDX-License-Identifier: Apache-2.0
# tests/helpers/broker.bash: kill the Kafka broker of tests/services and start it again, on the
# same port and data (the exactly-once tests of the broker's crash). The broker is shared by
# every test: keep the outage short, and start it again in teardown whatever happened:
#   [ ! -f "$BATS_TEST_TMPDIR/broker.cmd" ] || start_broker

# The Kafka broker of tests/services: its directory, and its pid when it runs (the pid file
# alone is not trusted: the process must run in that directory, as tests/services/up starts it).
broker_dir() {
	echo "$EVPIPE_SERVICES_DIR/kafka"
}

broker_pid() {
	local pid
	read -r pid < "$(broker_dir)/pid" 2>/dev/null && [[ $pid =~ ^[0-9]+$ ]] &&
		[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(broker_dir)" ] &&
		{ grep -q '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null || echo "$pid"; } # not a zombie
}

broker_up() {
	kcat -L -b "$KAFKA_BROKERS" -m 5 2>/dev/null | grep -qF "broker 1 at $KAFKA_BROKERS"
}

# Start the broker again when it is down, with the command line saved before the kill: the
# same port and data directory, in its own session, its pid in the pid file (as tests/services/up
# does); wait until it answers.
start_broker() {
	local dir cmd=()
	dir=$(broker_dir)
	if ! broker_pid > /dev/null; then
		mapfile -d '' -t cmd < "$BATS_TEST_TMPDIR/broker.cmd"
		(
			cd "$dir" || exit 1
			# shellcheck disable=SC2016 # expanded by sh
			setsid sh -c 'echo $$ > pid.tmp && mv pid.tmp pid && exec "$@"' sh "${cmd[@]}" \
				< /dev/null >> "$dir/kafka.out" 2>&1 3>&- &
		)
	fi
	wait_for 300 broker_up
}

# Kill the broker with SIGKILL, its command line saved for start_broker.
kill_broker() {
	local pid
	pid=$(broker_pid)
	[ -n "$pid" ]
	cat "/proc/$pid/cmdline" > "$BATS_TEST_TMPDIR/broker.cmd"
	kill -KILL "$pid"
	wait_for 30 eval '! broker_pid > /dev/null'
}

# Freeze the broker (SIGSTOP): it is down for its clients, whose connections stay open and
# unanswered (a network partition), and it is back at once, with no log recovery, on
# resume_broker. Start it again in teardown: [ ! -f "$BATS_TEST_TMPDIR/broker.paused" ] ||
# resume_broker
pause_broker() {
	local pid
	pid=$(broker_pid)
	[ -n "$pid" ]
	echo "$pid" > "$BATS_TEST_TMPDIR/broker.paused"
	kill -STOP "$pid"
}

resume_broker() {
	local pid
	read -r pid < "$BATS_TEST_TMPDIR/broker.paused"
	kill -CONT "$pid"
	rm -f "$BATS_TEST_TMPDIR/broker.paused"
	wait_for 60 broker_up
}
