# SPDX-License-Identifier: Apache-2.0
# tests/helpers/copies.bash: what the bats files of copies of the job in one consumer group
# (scaleout.bats, handover.bats, scaleout-state.bats) share: the job and its windows, each
# test's setup (copies_setup: topic, table, S3 checkpoint store, contract, Kafka session) and
# teardown, the queries of the table and the offline result (q, reals, last_versions,
# table_rows), and the copies' life: create_topic, produce_pieces, start_copy, owns, a_then_b,
# kill_copy, run_last_copy.
# Load it at file level after helpers/common, as those files do: its teardown replaces
# common's, and a function a file defines after the load replaces the one here (a load in
# setup() would replace the file's own instead).

JOB="$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh"
# Partitions are read in any order by any copy: the watermark is held back (out-of-orderness
# 2h, more than the events span) for no record to be late in the job or offline, and every
# window fires at the end of the stream, in the last copy.
AGGREGATES=count,sum:value,min:value,max:value,uniq:user_id
# shellcheck disable=SC2034 # used by the files that load this one
WINDOW_ARGS=(--tumble 1m --key event_type --agg "$AGGREGATES"
	--out-of-orderness 2h --lateness 30s --idle-timeout 60s --max-future 1h)

# A test's setup: in its directory, the topic, table, group and job named from $1 and the
# test, checkpoints every second to the S3 server under $2-<topic>, out-of-orderness 2h.
copies_setup() {
	cd "$BATS_TEST_TMPDIR" || return
	need_services
	TOPIC=$(new_topic "$1")
	TABLE="evpipe.$1_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	export KAFKA_BROKERS CLICKHOUSE_URL S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	export EVPIPE_TOPIC=$TOPIC EVPIPE_GROUP="g-$TOPIC" EVPIPE_TABLE=$TABLE EVPIPE_JOB="j-$TOPIC"
	export EVPIPE_CHECKPOINT_STORE="s3://$S3_BUCKET/$2-$TOPIC" EVPIPE_CHECKPOINT_INTERVAL=1s
	export EVPIPE_OUT_OF_ORDERNESS=2h
	# the contract with any event type: more keys than partitions
	jq 'del(.properties.event_type.enum)' "$EVPIPE_ROOT/contracts/event.schema.json" > contract.json
	export EVPIPE_CONTRACT=$BATS_TEST_TMPDIR/contract.json
	# a copy killed with SIGKILL, or a static member that stopped, leaves the group (gives its
	# partitions up) once its session times out
	printf 'session.timeout.ms=6000\nheartbeat.interval.ms=500\n' > kafka.properties
	export EVPIPE_KAFKA_CONFIG=$BATS_TEST_TMPDIR/kafka.properties
	export TMPDIR="$BATS_TEST_TMPDIR/tmp"
	mkdir -p "$TMPDIR"
}

# Stop what the test left running: its background jobs, every process of its copies (this
# test's directory or topic in their arguments), and drop its table.
teardown() {
	stop_jobs
	for pid in $(pgrep -f -- "$BATS_TEST_TMPDIR|$TOPIC" || true); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	curl -sS "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
}

# The answer of ClickHouse to query $1, within $Q_TIMEOUT seconds (10 unless a file sets it).
q() {
	curl -sS --fail-with-body --max-time "${Q_TIMEOUT:-10}" "$CLICKHOUSE_URL/" --data-binary "$1"
}

# Reals with 15 significant digits, so that equal doubles compare equal whatever printed them
# (and however the server parsed them: ClickHouse's JSON parser may miss the nearest double by
# one unit in the last place).
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

# The table's rows, as last_versions writes the offline result.
table_rows() {
	q "SELECT window_start, window_end, event_type, count, sum_value, min_value, max_value,
		uniq_user_id, version FROM $TABLE FINAL ORDER BY window_start, event_type
		FORMAT TSV" | reals
}

# Create the test's topic with $1 partitions.
create_topic() {
	local libs=${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/kafka-$KAFKA_VERSION/libs
	java -cp "$libs/*" "$EVPIPE_ROOT/tests/helpers/CreateTopic.java" "$KAFKA_BROKERS" "$TOPIC" "$1"
}

# Produce the files given to the topic, keyed by event type, one every 0.3 s.
produce_pieces() {
	local f
	for f in "$@"; do
		kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field event_type < "$f"
		sleep 0.3
	done
}

# Start copy $1 (its name, state directory, metrics ports from $2) in the background: its pid
# in pid_$1, its stderr in err.$1.
start_copy() {
	EVPIPE_COPY="$1-$TOPIC" EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state.$1" \
		EVPIPE_METRICS_PORT_BASE=$2 "$JOB" 2> "err.$1" 3>&- &
	printf -v "pid_$1" '%s' "$!"
}

# Of 6 partitions and the events in piece.00 to piece.39: copy a (metrics ports from $1)
# alone on piece.00 until it owns all 6; the other pieces produced from then on in the
# background (the producer's pid in producer); 3 s later copy b (ports from $1 + 7) joins,
# until it owns 3.
a_then_b() {
	produce_pieces piece.00
	start_copy a "$1"
	wait_for 60 owns "$1" 6 || { cat err.a >&2; false; }
	produce_pieces piece.0[1-9] piece.[1-3]? &
	# shellcheck disable=SC2034 # waited for by the test
	producer=$!
	sleep 3
	start_copy b $(($1 + 7))
	wait_for 60 owns $(($1 + 7)) 3 || { cat err.a err.b >&2; false; }
}

# Stop the copy whose pid is in variable $1 with SIGKILL, the script and every stage of it at
# once: nothing handed over, its open transactions left to abort (the stages are the script's
# children).
kill_copy() {
	local pid stages
	pid=${!1}
	stages=$(pgrep -P "$pid")
	# shellcheck disable=SC2086 # one pid per word
	kill -KILL "$pid" $stages
	wait "$pid" || true
	for pid in $stages; do
		wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
	done
}

# Run copy $1 (under its name, on its state directory) to the end of the topic, with bats' run:
# it must exit 0; its stderr in err.last.
run_last_copy() {
	EVPIPE_COPY="$1-$TOPIC" EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state.$1" EVPIPE_EXIT_AT_END=1 \
		run -0 --separate-stderr "$JOB" 3>&-
	printf '%s\n' "$stderr" > err.last
}

# kin of the copy serving metrics from port $1 owns $2 partitions.
owns() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		grep -q "^evpipe_kafka_partitions_assigned{.*} $2\$"
}
