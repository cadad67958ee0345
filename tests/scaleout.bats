#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# scaleout.bats: several copies of the job, pipelines/events-to-clickhouse.sh, in one consumer
# group over one S3 checkpoint store (docs/design.md, Scaling out; ADR 0025, section 5): each
# copy's checkpoints under its own name, every checkpoint a hand-over of every partition, so
# that the partitions of a copy killed with SIGKILL resume in another one with their windows.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that copies' teardown replaces common's.
load helpers/common
load helpers/copies

setup() {
	copies_setup scale so
}

# The checkpoints kin of the copy serving metrics at port $1 completed.
completed() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk '/^evpipe_checkpoints_total\{.*outcome="completed"/ { print $2 }'
}

# kin at port $1 completed more than $2 checkpoints.
completed_over() {
	local n
	n=$(completed "$1") && [ -n "$n" ] && [ "$n" -gt "$2" ]
}

@test "two copies in one group, one killed with SIGKILL: the other takes its partitions over with their windows, a last copy ends; the table equals the offline result, checkpoint ids per copy" {
	create_topic 6
	# 48 event types (the key) over the 6 partitions, 40 minutes of event time
	evgen --count 60000 --seed 14 --rate 25 --event-types 48 --invalid-pct 2 --late-pct 0 \
		--out-of-order 10s > events.ndjson 2>/dev/null
	head -n 30000 events.ndjson > first
	tail -n +30001 events.ndjson > second
	evvalidate --contract "$EVPIPE_CONTRACT" < events.ndjson 2>/dev/null |
		evwindow "${WINDOW_ARGS[@]}" 2>/dev/null | last_versions > want.tsv
	[ "$(wc -l < want.tsv)" -ge 400 ]
	kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field event_type < first
	base=$(free_ports 14)

	# copies a and b start together: each owns 3 partitions once the group settled
	start_copy a "$base"
	start_copy b $((base + 7))
	wait_for 90 owns "$base" 3 || { cat err.a err.b >&2; false; }
	wait_for 90 owns $((base + 7)) 3 || { cat err.a err.b >&2; false; }
	wait_for 90 completed_over "$base" 1 || { cat err.a >&2; false; }
	wait_for 90 completed_over $((base + 7)) 1 || { cat err.b >&2; false; }
	kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field event_type < second
	# both read their share of the second half, and checkpoint it
	sleep 4

	# copy a killed with SIGKILL, every process of it at once: nothing handed over
	kill_copy pid_a
	# b takes a's partitions once a's session timed out, each at the group's committed offset
	# (a's last complete checkpoint's) with the state a's evwindow wrote there
	wait_for 90 owns $((base + 7)) 6 || { cat err.b >&2; false; }
	n=$(completed $((base + 7)))
	wait_for 90 completed_over $((base + 7)) $((n + 2)) || { cat err.b >&2; false; }
	kill -TERM "$pid_b"
	wait "$pid_b"

	# the last copy, to the end of the topic
	run_last_copy c
	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	# b loaded the state of a's partitions where a's last checkpoint left them
	[ "$(grep -c 'loaded from the hand-over' err.b)" -ge 3 ]

	# the checkpoint ids of the copies did not collide: each copy's under its own name, none
	# under the job's own chk-<N>
	s3cmd -c "$S3CMD_CONFIG" ls -r "$EVPIPE_CHECKPOINT_STORE/$EVPIPE_JOB/" |
		awk '{ print $4 }' > objects
	grep -q "/$EVPIPE_JOB/copies/a-$TOPIC/chk-[0-9]*/_manifest.json$" objects
	grep -q "/$EVPIPE_JOB/copies/b-$TOPIC/chk-[0-9]*/_manifest.json$" objects
	run -1 grep -q "/$EVPIPE_JOB/chk-" objects
	grep -q "/$EVPIPE_JOB/handover/evwindow/[0-5]-$TOPIC/" objects

	# ckpt: every copy's checkpoints with the copy's name; a copy's manifest lists the state
	# of each partition and which copy wrote it, and verify checks those objects too
	run -0 --separate-stderr ckpt --job "$EVPIPE_JOB" ls
	[[ ${lines[0]} == *"STATE        COPY" ]]
	grep -q "complete     a-$TOPIC$" <<< "$output"
	grep -q "complete     b-$TOPIC$" <<< "$output"
	run -1 --separate-stderr ckpt --job "$EVPIPE_JOB" show latest
	[[ $stderr == *"has no checkpoints of its own but those of its copies (a-$TOPIC, b-$TOPIC"*"): give --copy NAME"* ]]
	run -0 --separate-stderr ckpt --job "$EVPIPE_JOB" --copy "b-$TOPIC" -J show latest
	[ "$(jq -r .copy <<< "$output")" = "b-$TOPIC" ]
	[ "$(jq '[.partitions[] | select(.state.evwindow.key | startswith("'"$EVPIPE_JOB/handover/evwindow/"'"))] | length' <<< "$output")" -eq 6 ]
	run -0 --separate-stderr ckpt --job "$EVPIPE_JOB" --copy "b-$TOPIC" verify latest
	[[ $output == *"; the state of 6 partition(s) present and intact" ]]
	# b pruned the hand-over objects after each of its checkpoints, none that the checkpoints
	# a left behind still reference (a restore of a's latest would load them)
	run -0 --separate-stderr ckpt --job "$EVPIPE_JOB" --copy "a-$TOPIC" verify latest
	[[ $output == *"; the state of "[0-9]*" partition(s) present and intact" ]]
}
