#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# rebalance.bats: assignment changes in a consumer group (docs/design.md, Scaling out; ADR
# 0024): kin announces them in-band, a revoked partition's windows are handed over through
# the checkpoint store without firing, and a rebalance never makes kin read a record twice.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common

setup() {
	cd "$BATS_TEST_TMPDIR" || return
}

# A record of partition $1 of topic t at offset $2 with event time $3 and key $4.
rec() {
	printf '{"_src":{"topic":"t","partition":%d,"offset":%d,"ts":0},"ts":%d,"k":"%s"}\n' "$@"
}

@test "a revoke hands a partition's windows to the store without firing them; the new owner loads them at the same offset and fires them complete" {
	store="file://$BATS_TEST_TMPDIR/store"
	job="j-$$-$RANDOM"
	ck=(--checkpoint-store "$store" --job "$job")
	{
		rec 0 0 1000 a
		rec 1 0 1000 b
		rec 0 1 2000 a
		rec 0 2 3000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":3}]}'
		rec 1 1 70000 b
		echo '{"__evpipe":"end"}'
	} > old
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < old
	# partition 1's windows fire, partition 0's are not written by the copy that lost it
	[ "$(printf '%s\n' "$output" | grep -vc __evpipe)" -eq 2 ]
	[[ $output != *'"k":"a"'* ]]
	[[ $stderr == *"t [0]: revoked at offset 3: 1 windows"*"handed over to the checkpoint store"* ]]
	# the revoke line went on, after the rows before it
	[ "${lines[0]}" = '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":3}]}' ]
	ls store/j-*/handover/evwindow/0-t/00000000000000000003

	{
		echo '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":3}]}'
		rec 0 3 4000 a
		rec 0 4 65000 a
		echo '{"__evpipe":"end"}'
	} > new
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < new
	[[ $stderr == *"t [0]: assigned at offset 3: 1 windows"*"loaded from the hand-over"* ]]
	# the first window holds the old owner's three records and the new owner's one
	[ "$(printf '%s\n' "$output" | jq -c 'select(.k == "a" and .window_start == "1970-01-01 00:00:00") | [.count, .version]')" = "[4,4]" ]
	[ "$(printf '%s\n' "$output" | grep -vc __evpipe)" -eq 2 ]

	# the metrics of a move, from a new owner that waits for more input
	mkfifo hold
	{ head -n 2 new; cat hold; } | evwindow --key k --tumble 1m "${ck[@]}" \
		--metrics-addr 127.0.0.1:0 > /dev/null 2> err.m 3>&- &
	exec 7<> hold
	wait_for 20 grep -q 'serving metrics' err.m
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err.m)
	wait_for 20 bash -c "curl -sf '$url' | grep -q '^evpipe_handover_pause_seconds_count{.*} 1$'"
	curl -sf "$url" > metrics
	exec 7>&-
	wait
	get() { awk -v m="$1" '$1 == m { print $2 }' metrics; }
	[ "$(get 'evpipe_handovers_total{tool="evwindow",job="'"$job"'",direction="loaded"}')" -eq 1 ]
	[ "$(get 'evpipe_handover_bytes_total{tool="evwindow",job="'"$job"'",direction="loaded"}')" -gt 0 ]
	[ "$(get 'evpipe_window_partitions{tool="evwindow",job="'"$job"'"}')" -eq 1 ]

	# an assign at another offset loads nothing: the state there is not where records resume
	{
		echo '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":2}]}'
		echo '{"__evpipe":"end"}'
	} > other
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < other
	[ "${#lines[@]}" -eq 2 ]
	[[ $stderr != *"loaded from the hand-over"* ]]
}

@test "a hand-over that does not match its header or checksum is refused, never loaded" {
	store="file://$BATS_TEST_TMPDIR/store"
	ck=(--checkpoint-store "$store" --job j)
	{
		rec 0 0 1000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":1}]}'
		echo '{"__evpipe":"end"}'
	} > old
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < old
	f=store/j/handover/evwindow/0-t/00000000000000000001
	# one byte of the state changed
	python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-1]^=1; open(p,"wb").write(b)' "$f"
	printf '%s\n' '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":1}]}' \
		"$(rec 0 1 2000 a)" '{"__evpipe":"end"}' > new
	run -1 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < new
	[[ $stderr == *"hand-over 'j/handover/evwindow/0-t/00000000000000000001' is corrupt: its state does not match its size and SHA-256"* ]]
}

@test "without a checkpoint store a revoked partition keeps its windows, said once" {
	{
		rec 0 0 1000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":1}]}'
		echo '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":1}]}'
		rec 0 1 2000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":2}]}'
	} > in
	run -0 --separate-stderr evwindow --key k --tumble 1m < in
	[ "$(printf '%s\n' "$output" | jq -c 'select(.k) | [.count, .version]')" = "[2,2]" ]
	[ "$(grep -c 'revoked partitions keep their windows here (no --checkpoint-store)' <<< "$stderr")" -eq 1 ]
}

# N records {"k":..,"seq":..} from $2 (default 1).
gen_seq() {
	awk -v n="$1" -v from="${2:-1}" 'BEGIN {
		for (i = from; i < from + n; i++) printf "{\"k\":\"key%d\",\"seq\":%d}\n", i % 20, i }'
}

# The records kin wrote to file $1 (lines with provenance).
records() {
	grep -c '^{"_src"' "$1" || true
}

# Every message in file $1 exactly once: no (partition, offset) twice, $2 records in all.
exactly_once() {
	local dups
	dups=$(jq -r 'select(._src) | "\(._src.partition) \(._src.offset)"' "$1" | sort | uniq -d | wc -l)
	[ "$dups" -eq 0 ] || { echo "$dups message(s) written more than once" >&2; return 1; }
	[ "$(records "$1")" -eq "$2" ] || { echo "$(records "$1") records, $2 expected" >&2; return 1; }
}

# Start kin -C on topic $1 in group $2 as a coordinator of checkpoints that never come within the
# test (so nothing is committed: a consumer that rewinds goes back to the beginning), writing to
# out and err, with the extra options that follow.
start_kin() {
	local topic=$1 group=$2
	shift 2
	kin -C -b "$KAFKA_BROKERS" -G "$group" --meta-field _src \
		--checkpoint-store "file://$BATS_TEST_TMPDIR/ck" --job "j-$topic" \
		--checkpoint-interval 1h "$@" "$topic" > out 2> err &
	kin_pid=$!
}

has_records() { [ "$(records "$1")" -ge "$2" ]; }
# kin said "assigned" (a rebalance gave it partitions) at least $1 times in err.
assignments() { [ "$(grep -c 'kin: assigned' err)" -ge "$1" ]; }

@test "one copy, eager protocol: another member joining and leaving the group makes kin write no message twice" {
	need_services
	topic=$(new_topic join) other=$(new_topic other)
	group="g-$topic"
	eager=(-X partition.assignment.strategy=range)
	gen_seq 3000 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	echo '{"n":1}' | kin -P -b "$KAFKA_BROKERS" -t "$other"
	start_kin "$topic" "$group" "${eager[@]}"
	wait_for 60 has_records out 3000 || { cat err >&2; false; }
	# another member of the group, on another topic: every partition is revoked and assigned
	# again (the issue's `kin -C -G <group>` for 8 s)
	kin -C -b "$KAFKA_BROKERS" -G "$group" "${eager[@]}" "$other" > /dev/null 2> err.other &
	other_pid=$!
	wait_for 60 assignments 2 || { cat err err.other >&2; false; }
	gen_seq 1000 3001 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	wait_for 60 has_records out 4000 || { cat err >&2; false; }
	kill "$other_pid"
	wait "$other_pid" || true
	wait_for 60 assignments 3 || { cat err >&2; false; }
	gen_seq 1000 4001 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	wait_for 60 has_records out 5000 || { cat err >&2; false; }
	sleep 2 # anything written twice would be written by now
	kill -TERM "$kin_pid"
	wait "$kin_pid"
	exactly_once out 5000
	# each revoke line follows the last record of its partitions and names where they stopped
	# (the next offset); the assign line after it resumes them there
	jq -c 'select(.__evpipe == "revoke" or .__evpipe == "assign") | .partitions | sort_by(.partition)' out > changes
	[ "$(sed -n 2p changes)" = "$(sed -n 3p changes)" ]
	awk '/"__evpipe":"revoke"/ { exit } /^{"_src"/ { match($0, /"partition":[0-9]+,"offset":[0-9]+/); split(substr($0, RSTART, RLENGTH), a, /[:,]/); next_[a[2]] = a[4] + 1 }
	     END { for (p in next_) print p, next_[p] }' out | sort > written
	jq -r 'select(.__evpipe == "revoke") | .partitions[] | "\(.partition) \(.offset)"' out | head -n 3 | sort > revoked
	assert_same_file revoked written
}

@test "one copy, cooperative (the default): another member joining on another topic moves nothing, kin's partitions keep flowing" {
	need_services
	topic=$(new_topic coop) other=$(new_topic other)
	group="g-$topic"
	gen_seq 2000 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	echo '{"n":1}' | kin -P -b "$KAFKA_BROKERS" -t "$other"
	start_kin "$topic" "$group"
	wait_for 60 has_records out 2000 || { cat err >&2; false; }
	kin -C -b "$KAFKA_BROKERS" -G "$group" "$other" > /dev/null 2> err.other &
	other_pid=$!
	wait_for 60 grep -q 'assigned 3 partition' err.other || { cat err.other >&2; false; }
	gen_seq 1000 2001 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	wait_for 60 has_records out 3000 || { cat err >&2; false; }
	kill "$other_pid"
	wait "$other_pid" || true
	sleep 3
	kill -TERM "$kin_pid"
	wait "$kin_pid"
	exactly_once out 3000
	# one assignment, of the 3 partitions, at the start; nothing revoked
	[ "$(grep -c '"__evpipe":"assign"' out)" -eq 1 ]
	[ "$(jq -r 'select(.__evpipe == "assign") | .partitions | length' out)" -eq 3 ]
	[ "$(grep -c '"__evpipe":"revoke"' out)" -eq 0 ]
}

@test "one copy: a session lost (kin stopped longer than session.timeout.ms, as a broker outage does) makes kin write no message twice" {
	need_services
	topic=$(new_topic lost)
	group="g-$topic"
	gen_seq 2000 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	start_kin "$topic" "$group" -X session.timeout.ms=6000 -X heartbeat.interval.ms=500
	wait_for 60 has_records out 2000 || { cat err >&2; false; }
	kill -STOP "$kin_pid"
	sleep 10
	kill -CONT "$kin_pid"
	wait_for 60 grep -q 'revoked 3 partition(s)' err || { cat err >&2; false; }
	wait_for 60 assignments 2 || { cat err >&2; false; }
	gen_seq 1000 2001 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	wait_for 60 has_records out 3000 || { cat err >&2; false; }
	sleep 2
	kill -TERM "$kin_pid"
	wait "$kin_pid"
	exactly_once out 3000
	grep -q 'revoked 3 partition(s) (lost: the group went on without this member)' err
	# the partitions lost and assigned again, at the offsets the output had reached
	[ "$(jq -c 'select(.__evpipe == "revoke") | .partitions | sort_by(.partition)' out)" = \
		"$(jq -c 'select(.__evpipe == "assign") | .partitions | sort_by(.partition)' out | sed -n 2p)" ]
}

@test "one copy, kin | evwindow: a member joining and leaving hands the windows over and back; the rows equal an offline run's" {
	need_services
	topic=$(new_topic rows) other=$(new_topic other)
	group="g-$topic"
	eager=(-X partition.assignment.strategy=range)
	ck=(--checkpoint-store "file://$BATS_TEST_TMPDIR/ck" --job "j-$topic")
	# event time 100 ms apart per record over 20 keys; partitions are read in any order, so
	# the watermark is held back (out-of-orderness 1h) for no record to be late in either run:
	# every window fires at the end
	gen_ts() {
		awk -v n="$1" -v from="$2" 'BEGIN {
			for (i = from; i < from + n; i++) printf "{\"k\":\"key%d\",\"ts\":%d}\n", i % 20, i * 100 }'
	}
	gen_ts 2000 1 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	echo '{"n":1}' | kin -P -b "$KAFKA_BROKERS" -t "$other"
	# -c 3000: the end of the stream after every message once (written twice, it comes early)
	kin -C -b "$KAFKA_BROKERS" -G "$group" "${eager[@]}" --meta-field _src "${ck[@]}" \
		--checkpoint-interval 1h -c 3000 "$topic" 2> err |
		evwindow --key k --tumble 10s --out-of-orderness 1h "${ck[@]}" > rows 2> err.window &
	wait_for 60 grep -q 'kin: assigned 3' err || { cat err >&2; false; }
	sleep 3
	kin -C -b "$KAFKA_BROKERS" -G "$group" "${eager[@]}" "$other" > /dev/null 2> err.other &
	other_pid=$!
	wait_for 60 assignments 2 || { cat err err.other >&2; false; }
	gen_ts 1000 2001 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	sleep 2
	kill "$other_pid"
	wait "$other_pid" || true
	wait_for 90 grep -q '"__evpipe":"end"' rows || { cat err err.window >&2; false; }
	wait
	grep -q 'handed over to the checkpoint store' err.window
	grep -q 'loaded from the hand-over' err.window
	# the same messages, read once without a group, windowed offline
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -o beginning -e --meta-field _src |
		evwindow --key k --tumble 10s --out-of-orderness 1h > offline
	jq -c 'select(.window_start)' rows | sort > got
	jq -c 'select(.window_start)' offline | sort > want
	[ "$(wc -l < want)" -ge 300 ]
	assert_same_file got want
}

@test "a partition that another member read meanwhile comes back at the group's committed offset, not where kin left it" {
	need_services
	topic=$(new_topic back)
	group="g-$topic"
	gen_seq 300 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	# without checkpoints each member commits what it wrote
	kin -C -b "$KAFKA_BROKERS" -G "$group" --meta-field _src "$topic" > out 2> err &
	kin_pid=$!
	wait_for 60 has_records out 300 || { cat err >&2; false; }
	kin -C -b "$KAFKA_BROKERS" -G "$group" --meta-field _src "$topic" > out.b 2> err.b &
	b_pid=$!
	# the second member takes a share (cooperative: revoked from the first one)
	wait_for 60 grep -q '"__evpipe":"revoke"' out || { cat err err.b >&2; false; }
	gen_seq 300 301 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	both() { [ $(($(records out) + $(records out.b))) -ge 600 ]; }
	wait_for 60 both || { cat err err.b >&2; false; }
	[ "$(records out.b)" -gt 0 ]
	kill -TERM "$b_pid"
	wait "$b_pid"
	# its share comes back to the first member, past where the first one left it
	wait_for 60 assignments 2 || { cat err >&2; false; }
	gen_seq 300 601 | kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k
	all() { [ $(($(records out) + $(records out.b))) -ge 900 ]; }
	wait_for 60 all || { cat err >&2; false; }
	sleep 2
	kill -TERM "$kin_pid"
	wait "$kin_pid"
	cat out out.b > both.out
	exactly_once both.out 900
	grep -q 'by another member since it was revoked here' err
}
