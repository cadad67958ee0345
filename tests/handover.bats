#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# handover.bats: copies of the job, pipelines/events-to-clickhouse.sh, joining and leaving one
# consumer group mid-run (docs/design.md, Scaling out; ADR 0025, section 5.1): a partition that
# moves is let go only once its state is durable (a checkpoint after the revoke line), its
# offset committed there, and its next owner resumes it at exactly that offset with the state
# handed over; a copy restarted under its name (static membership) gets its partitions back
# at once.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

load helpers/common

JOB="$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh"
# Partitions are read in any order by any copy: the watermark is held back (out-of-orderness
# 2h, more than the events span) for no record to be late in the job or offline, and every
# window fires at the end of the stream, in the last copy.
WINDOW_ARGS=(--tumble 1m --key event_type --agg count,sum:value,min:value,max:value,uniq:user_id
	--out-of-orderness 2h --lateness 30s --idle-timeout 60s --max-future 1h)

setup() {
	cd "$BATS_TEST_TMPDIR" || return
	need_services
	TOPIC=$(new_topic hand)
	TABLE="evpipe.hand_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	export KAFKA_BROKERS CLICKHOUSE_URL S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	export EVPIPE_TOPIC=$TOPIC EVPIPE_GROUP="g-$TOPIC" EVPIPE_TABLE=$TABLE EVPIPE_JOB="j-$TOPIC"
	export EVPIPE_CHECKPOINT_STORE="s3://$S3_BUCKET/ho-$TOPIC" EVPIPE_CHECKPOINT_INTERVAL=1s
	export EVPIPE_OUT_OF_ORDERNESS=2h
	# the contract with any event type: more keys than partitions
	jq 'del(.properties.event_type.enum)' "$EVPIPE_ROOT/contracts/event.schema.json" > contract.json
	export EVPIPE_CONTRACT=$BATS_TEST_TMPDIR/contract.json
	# a static member that stopped gives its partitions up once its session times out
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
	for pid in $(pgrep -f -- "$BATS_TEST_TMPDIR|$TOPIC" || true); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	curl -sS "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
}

q() {
	curl -sS --fail-with-body --max-time 10 "$CLICKHOUSE_URL/" --data-binary "$1"
}

# Reals with 15 significant digits, so that equal doubles compare equal whatever printed them.
reals() {
	awk -F'\t' -v OFS='\t' '{ for (i = 5; i <= 7; i++) $i = sprintf("%.15g", $i); print }'
}

# The last version of each window and event type, as TSV in the table's column order, from
# evwindow's rows on stdin.
last_versions() {
	jq -s -r 'map(select(.window_start)) | group_by([.window_start, .event_type]) |
		map(max_by(.version)) | .[] | [.window_start, .window_end, .event_type, .count,
		.sum_value, .min_value, .max_value, .uniq_user_id, .version] | @tsv' | reals
}

table_rows() {
	q "SELECT window_start, window_end, event_type, count, sum_value, min_value, max_value,
		uniq_user_id, version FROM $TABLE FINAL ORDER BY window_start, event_type
		FORMAT TSV" | reals
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

# Start copy $1 (its name, state directory, metrics ports from $2) in the background: its pid
# in pid_$1, its stderr in err.$1.
start_copy() {
	EVPIPE_COPY="$1-$TOPIC" EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state.$1" \
		EVPIPE_METRICS_PORT_BASE=$2 "$JOB" 2> "err.$1" 3>&- &
	printf -v "pid_$1" '%s' "$!"
}

# kin of the copy serving metrics from port $1 owns $2 partitions.
owns() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		grep -q "^evpipe_kafka_partitions_assigned{.*} $2\$"
}

# Produce the pieces piece.* to the topic, keyed by event type, one every 0.3 s.
produce_pieces() {
	local f
	for f in piece.*; do
		kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field event_type < "$f"
		sleep 0.3
	done
}

# evwindow's revokes and loads in the copies' stderr: "topic partition offset windows" lines.
revokes() {
	sed -n 's/^evwindow: \([^ ]*\) \[\([0-9]*\)\]: revoked at offset \([0-9]*\): \([0-9]*\) windows.*/\1 \2 \3 \4/p' "$@" | sort
}
loads() {
	sed -n 's/^evwindow: \([^ ]*\) \[\([0-9]*\)\]: assigned at offset \([0-9]*\): \([0-9]*\) windows.*loaded from the hand-over$/\1 \2 \3 \4/p' "$@" | sort
}

@test "copies join and leave mid-run (1, 2, 3, then 1 by SIGTERM), a last copy to the end: each join moves partitions at their revoke offsets with their windows; the table equals the offline result, every dead letter is there, no stage failed" {
	local libs=${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/kafka-$KAFKA_VERSION/libs
	java -cp "$libs/*" "$EVPIPE_ROOT/tests/helpers/CreateTopic.java" "$KAFKA_BROKERS" "$TOPIC" 6
	# 48 event types (the key) over the 6 partitions, 40 minutes of event time, 2% invalid
	evgen --count 60000 --seed 14 --rate 25 --event-types 48 --invalid-pct 2 --late-pct 0 \
		--out-of-order 10s > events.ndjson 2>/dev/null
	split -n l/40 -d -a 2 events.ndjson piece.
	evvalidate --contract "$EVPIPE_CONTRACT" --dlq offline.dlq < events.ndjson 2>/dev/null |
		evwindow "${WINDOW_ARGS[@]}" 2>/dev/null | last_versions > want.tsv
	[ "$(wc -l < want.tsv)" -ge 400 ]
	[ "$(wc -l < offline.dlq)" -ge 1000 ]
	base=$(free_ports 21)

	# copy a alone; the events flow in while b, then c, join (cooperative: only the
	# partitions that move stop)
	start_copy a "$base"
	wait_for 60 owns "$base" 6 || { cat err.a >&2; false; }
	produce_pieces &
	producer=$!
	sleep 3
	start_copy b $((base + 7))
	wait_for 60 owns $((base + 7)) 3 || { cat err.a err.b >&2; false; }
	owns "$base" 3
	sleep 2
	start_copy c $((base + 14))
	wait_for 60 owns $((base + 14)) 2 || { cat err.a err.b err.c >&2; false; }
	wait "$producer"
	sleep 2

	# b and c leave by SIGTERM (static members: their partitions move once their sessions
	# time out, at their last checkpoints' offsets)
	kill -TERM "$pid_b" "$pid_c"
	wait "$pid_b"
	wait "$pid_c"
	wait_for 60 owns "$base" 6 || { cat err.a >&2; false; }
	sleep 2
	kill -TERM "$pid_a"
	wait "$pid_a"

	# the last copy, copy a restarted under its name (a static member: its partitions at
	# once, no session to wait for), to the end of the topic
	start=$SECONDS
	EVPIPE_COPY="a-$TOPIC" EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state.a" EVPIPE_EXIT_AT_END=1 \
		run -0 --separate-stderr "$JOB" 3>&-
	printf '%s\n' "$stderr" > err.last
	[ $((SECONDS - start)) -lt 30 ]

	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	# every dead letter, by distinct source offset
	kin -C -q -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e |
		jq -r '"\(.source.partition) \(.source.offset)"' | sort -u > dlq.offsets
	[ "$(wc -l < dlq.offsets)" -eq "$(wc -l < offline.dlq)" ]
	# no stage of any copy failed
	run -1 grep -h 'failed\|error' err.a err.b err.c err.last
	# the joins moved partitions: each revoked at the offset kin's revoke line gave, its
	# windows handed over there, and loaded by the next owner at exactly that offset (its
	# assign line's: the offset the old owner committed after the checkpoint that made it
	# durable), not where an earlier checkpoint left it
	grep -q 'kin: 3 partition(s) handed over in' err.a
	revokes err.a err.b err.c > revoked
	loads err.a err.b err.c err.last > loaded
	[ "$(wc -l < revoked)" -ge 4 ]
	join -j1 <(awk '{ print $1 "/" $2 "/" $3 "/" $4 }' revoked | sort) \
		<(awk '{ print $1 "/" $2 "/" $3 "/" $4 }' loaded | sort) > matched
	[ "$(wc -l < matched)" -eq "$(wc -l < revoked)" ] || { diff revoked loaded >&2; false; }
}
