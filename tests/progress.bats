#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# progress.bats: the live status line on a terminal (under script(1), util-linux) and not when
# stderr is a pipe or a file, the summary every tool prints at exit, and rate-limited warnings.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR" || return
	CONTRACT="$EVPIPE_ROOT/contracts/event.schema.json"
	seq 2000 | awk '{ printf "{\"event_id\":\"e%d\",\"event_type\":\"click\",\"user_id\":\"u\",\"ts\":17324%08d}\n", $1, $1 }' > events
	# a slow input: 2000 records over about 2 seconds
	cat > slow <<-'EOF'
		#!/usr/bin/env bash
		for i in $(seq 20); do sed -n "$(((i - 1) * 100 + 1)),$((i * 100))p" events; sleep 0.1; done
	EOF
	chmod +x slow
}

# on_tty COMMAND: run COMMAND (a shell command line) with its stdin, stdout and stderr on a
# terminal; what the terminal got goes to tty.out.
on_tty() {
	script -qec "$1" /dev/null > tty.out
}

# The status lines drawn on the terminal (each begins with a carriage return).
status_lines() {
	tr '\r' '\n' < tty.out | grep -a "^$1: .*blocked [0-9]*%" || true
}

@test "evvalidate: a status line on a terminal, refreshed at most 4 times a second; none when stderr is not one" {
	on_tty "./slow | $EVPIPE_BIN/evvalidate --contract $CONTRACT > /dev/null"
	status_lines evvalidate > status
	n=$(wc -l < status)
	# about 2 s of input: at least 2 lines, at most 4 a second and the one redrawn after the summary
	[ "$n" -ge 2 ] && [ "$n" -le 14 ]
	grep -q '^evvalidate: in [0-9.]*k\?/s | out [0-9.]*k\?/s | dead 0/s | blocked [0-9]*% | [0-9.]*k\? in, [0-9.]*k\? out' status
	grep -aq $'\033\\[K' tty.out # each drawing clears the rest of the line
	# the summary is a line of its own, the status line taken off before it
	tr '\r' '\n' < tty.out | grep -aq 'evvalidate: 2000 record(s): 2000 valid'
	# not when the data goes to the terminal too: it would mix with them
	on_tty "./slow | $EVPIPE_BIN/evvalidate --contract $CONTRACT"
	[ "$(tr '\r' '\n' < tty.out | grep -ac '^{"event_id"')" -eq 2000 ]
	[ -z "$(status_lines evvalidate)" ]
	# not on a pipe or a file
	./slow | evvalidate --contract "$CONTRACT" > /dev/null 2> err
	[ "$(cat err)" = "evvalidate: 2000 record(s): 2000 valid, 0 dead-lettered; 0 blank line(s) skipped" ]
	# EVPIPE_PROGRESS=0 turns it off on a terminal, EVPIPE_PROGRESS=1 on elsewhere
	on_tty "EVPIPE_PROGRESS=0 $EVPIPE_BIN/evvalidate --contract $CONTRACT events > /dev/null"
	[ -z "$(status_lines evvalidate)" ]
	./slow | EVPIPE_PROGRESS=1 evvalidate --contract "$CONTRACT" > /dev/null 2> err
	tr '\r' '\n' < err | grep -aq '^evvalidate: in '
	# and so do the options, which win over it
	on_tty "EVPIPE_PROGRESS=1 $EVPIPE_BIN/evvalidate --no-progress --contract $CONTRACT events > /dev/null"
	[ -z "$(status_lines evvalidate)" ]
	./slow | EVPIPE_PROGRESS=0 evvalidate --progress --contract "$CONTRACT" > /dev/null 2> err
	tr '\r' '\n' < err | grep -aq '^evvalidate: in '
}

@test "evwindow, dlqsink, evgen: a status line on a terminal (evwindow's with late records and the watermark lag)" {
	on_tty "./slow | $EVPIPE_BIN/evwindow --tumble 1s > /dev/null"
	status_lines evwindow | grep -q '^evwindow: in [0-9.k]*/s | out [0-9.k]*/s | \(dead 0/s | \)\?late 0/s | wm lag [0-9]*d | blocked [0-9]*%'
	on_tty "./slow | $EVPIPE_BIN/dlqsink --file dl > /dev/null"
	status_lines dlqsink | grep -q '^dlqsink: in [0-9.k]*/s | out '
	on_tty "$EVPIPE_BIN/evgen -n 2000000 > /dev/null"
	status_lines evgen | grep -q '^evgen: out [0-9.kM]*/s | blocked [0-9]*% | [0-9.kM]* out'
}

@test "every tool says at exit what it did, at info level (-q: nothing)" {
	run -0 --separate-stderr evwindow --tumble 1s --late late < events
	[ "$stderr" = "evwindow: 2000 record(s): 3 row(s) written, 0 late, 0 dead-lettered; 0 blank line(s) skipped" ]
	printf '{"reason":"schema","raw":"x","at":1}\n\nnot an envelope\n' > dl.in
	run -0 --separate-stderr dlqsink --file dl < dl.in
	[[ "$stderr" == *"dlqsink: 2 line(s): 2 written to 'dl' (1 not dead-letter envelopes, kept as they are); 1 blank line(s) skipped" ]]
	run -0 --separate-stderr evwindow --tumble 1s -q < events
	[ -z "$stderr" ]
}

@test "kin says at exit what it consumed and produced" {
	need_services
	topic=$(new_topic progress)
	printf '{"n":1}\n\n{"__evpipe":"watermark","ts":5}\n{"n":2}\n' > in
	run -0 --separate-stderr kin -P -l -b "$KAFKA_BROKERS" -t "$topic" in
	[[ "$stderr" == *"kin: 4 line(s): 2 message(s) delivered, 0 not produced; 1 blank and 1 control line(s) skipped" ]]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e
	[[ "$stderr" == *"kin: 2 message(s) consumed, 2 written" ]]
}

@test "dlqsink --file warns about the first lines that are not envelopes, then counts the rest" {
	head -c 60000 /dev/urandom | base64 -w 76 > garbage
	n=$(wc -l < garbage)
	run -0 --separate-stderr dlqsink --file dl < garbage
	[ "$(wc -l < dl)" -eq "$n" ]
	[ "$(grep -c 'is not a dead-letter envelope' <<<"$stderr")" -eq 10 ]
	[[ "$stderr" == *"line 10 is not a dead-letter envelope; kept as it is (more like it within a minute are counted, not reported)"* ]]
	[[ "$stderr" == *"dlqsink: warning: $((n - 10)) more lines that are not envelopes not reported"* ]]
	[ "$(wc -l <<<"$stderr")" -eq 12 ]
}
