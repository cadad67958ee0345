#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# scaleout.bats: several copies of the job, pipelines/events-to-clickhouse.sh, in one consumer
# group over one S3 checkpoint store (docs/design.md, Scaling out; ADR 0025, section 5): each
# copy's checkpoints under its own name, every checkpoint a hand-over of every partition, so
# that the partitions of a copy killed with SIGKILL resume in another one with their windows.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

load helpers/common

JOB="$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh"
# Partitions are read in any order by any copy: the watermark is held back (out-of-orderness
# 2h, more than the events span) for no record to be late in the job or offline, and every
# window fires at the end of the stream, in the last copy.
AGGREGATES=count,sum:value,min:value,max:value,uniq:user_id
WINDOW_ARGS=(--tumble 1m --key event_type --agg "$AGGREGATES"
	--out-of-orderness 2h --lateness 30s --idle-timeout 60s --max-future 1h)

setup() {
	cd "$BATS_TEST_TMPDIR" || return
	need_services
	TOPIC=$(new_topic scale)
	TABLE="evpipe.scale_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	export KAFKA_BROKERS CLICKHOUSE_URL S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	export EVPIPE_TOPIC=$TOPIC EVPIPE_GROUP="g-$TOPIC" EVPIPE_TABLE=$TABLE EVPIPE_JOB="j-$TOPIC"
	export EVPIPE_CHECKPOINT_STORE="s3://$S3_BUCKET/so-$TOPIC" EVPIPE_CHECKPOINT_INTERVAL=1s
	export EVPIPE_OUT_OF_ORDERNESS=2h
	# the contract with any event type: more keys than partitions
	jq 'del(.properties.event_type.enum)' "$EVPIPE_ROOT/contracts/event.schema.json" > contract.json
	export EVPIPE_CONTRACT=$BATS_TEST_TMPDIR/contract.json
	# a copy killed with SIGKILL leaves the group once its session times out
	printf 'session.timeout.ms=6000\nheartbeat.interval.ms=500\n' > kafka.properties
	export EVPIPE_KAFKA_CONFIG=$BATS_TEST_TMPDIR/kafka.properties
	export TMPDIR="$BATS_TEST_TMPDIR/tmp"
	mkdir -p "$TMPDIR"
}

teardown() {
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one pid per word
	[ -z "$pids" ] || kill $pids 2>/dev/null || true
	for pid in $(pgrep -f -- "--job $EVPIPE_JOB " || true); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	curl -sS "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
}

q() {
	curl -sS --fail-with-body --max-time 10 "$CLICKHOUSE_URL/" --data-binary "$1"
}

# The last version of each window and event type, as TSV in the table's column order, from
# evwindow's rows on stdin.
last_versions() {
	jq -s -r 'map(select(.window_start)) | group_by([.window_start, .event_type]) |
		map(max_by(.version)) | .[] | [.window_start, .window_end, .event_type, .count,
		.sum_value, .min_value, .max_value, .uniq_user_id, .version] | @tsv' | reals
}

# Reals with 15 significant digits, so that equal doubles compare equal whatever printed them
# (and however the server parsed them: ClickHouse's JSON parser may miss the nearest double by
# one unit in the last place).
reals() {
	awk -F'\t' -v OFS='\t' '{ for (i = 5; i <= 7; i++) $i = sprintf("%.15g", $i); print }'
}

# Start copy $1 (its state directory, metrics ports from $2) in the background: its pid in
# copy_pid, its stderr in err.$1.
start_copy() {
	EVPIPE_COPY="$1-$TOPIC" EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state.$1" \
		EVPIPE_METRICS_PORT_BASE=$2 "$JOB" 2> "err.$1" 3>&- &
	copy_pid=$!
}

# The partitions kin of the copy serving metrics at port $1 owns is $2.
owns() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		grep -q "^evpipe_kafka_partitions_assigned{.*} $2\$"
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

# The first of N consecutive ports where nothing listens, below the range the kernel gives
# to outgoing connections.
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

@test "two copies in one group, one killed with SIGKILL: the other takes its partitions over with their windows, a last copy ends; the table equals the offline result, checkpoint ids per copy" {
	local libs=${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/kafka-$KAFKA_VERSION/libs
	java -cp "$libs/*" "$EVPIPE_ROOT/tests/helpers/CreateTopic.java" "$KAFKA_BROKERS" "$TOPIC" 6
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
	a_pid=$copy_pid
	start_copy b $((base + 7))
	b_pid=$copy_pid
	wait_for 90 owns "$base" 3 || { cat err.a err.b >&2; false; }
	wait_for 90 owns $((base + 7)) 3 || { cat err.a err.b >&2; false; }
	wait_for 90 completed_over "$base" 1 || { cat err.a >&2; false; }
	wait_for 90 completed_over $((base + 7)) 1 || { cat err.b >&2; false; }
	kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field event_type < second
	# both read their share of the second half, and checkpoint it
	sleep 4

	# copy a killed with SIGKILL, every process of it at once: nothing handed over
	# (the stages are the script's children)
	stages=$(pgrep -P "$a_pid")
	# shellcheck disable=SC2086 # one pid per word
	kill -KILL "$a_pid" $stages
	wait "$a_pid" || true
	for pid in $stages; do
		wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
	done
	# b takes a's partitions once a's session timed out, each at the group's committed offset
	# (a's last complete checkpoint's) with the state a's evwindow wrote there
	wait_for 90 owns $((base + 7)) 6 || { cat err.b >&2; false; }
	n=$(completed $((base + 7)))
	wait_for 90 completed_over $((base + 7)) $((n + 2)) || { cat err.b >&2; false; }
	kill -TERM "$b_pid"
	wait "$b_pid"

	# the last copy, to the end of the topic
	EVPIPE_COPY="c-$TOPIC" EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state.c" EVPIPE_EXIT_AT_END=1 \
		run -0 --separate-stderr "$JOB" 3>&-
	q "SELECT window_start, window_end, event_type, count, sum_value, min_value, max_value,
		uniq_user_id, version FROM $TABLE FINAL ORDER BY window_start, event_type
		FORMAT TSV" | reals > got.tsv
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
