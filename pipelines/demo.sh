#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pipelines/demo.sh: what `make demo` runs: the default job on generated events, then its result.
#
# evgen writes events with a fixed seed, 5% of them invalid and 2% late, and the job's tools
# process them:
#   events -> evvalidate -> evwindow (1-minute windows per event type) -> aggregates
#                \-> dead letters        \-> late events
# Without servers (the default on a fresh machine) this runs on files and prints the aggregates
# and the accounting: events in = valid + dead letters, valid = windowed + late.
# With the local servers of tests/services running (or EVPIPE_DEMO_KAFKA=1, which starts them)
# the events go through real Kafka and ClickHouse: kin -P into a new topic, then
# pipelines/events-to-clickhouse.sh to the end of the topic, and the table is queried with FINAL.
#
# Settings: EVPIPE_DEMO_EVENTS (default 10000), EVPIPE_DEMO_SEED (default 7), EVPIPE_DEMO_DIR
# (where the files go; default a new temporary directory), EVPIPE_DEMO_KAFKA (1: through Kafka,
# starting the local servers when KAFKA_BROKERS and CLICKHOUSE_URL are not set; 0: on files;
# default: through Kafka when the servers answer), EVPIPE_DEMO_TABLE (Kafka: the table,
# recreated; default evpipe.demo_event_aggregates), EVPIPE_BIN (the tools; default bin).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${EVPIPE_DEMO_EVENTS:-10000}
seed=${EVPIPE_DEMO_SEED:-7}
work=${EVPIPE_DEMO_DIR:-$(mktemp -d)}
mkdir -p "$work"
bin=$(cd "${EVPIPE_BIN:-bin}" && pwd)
kafka=${EVPIPE_DEMO_KAFKA:-auto}
contract=contracts/event.schema.json
# The job's windows (pipelines/events-to-clickhouse.sh passes the same).
aggregates=count,sum:value,min:value,max:value,uniq:user_id
window_args=(--tumble 1m --key event_type --agg "$aggregates"
	--out-of-orderness 5s --lateness 30s --idle-timeout 60s --max-future 1h)

say() { printf 'demo: %s\n' "$*" >&2; }

# ---- Files or servers -------------------------------------------------------------------------
if [ "$kafka" != 0 ] && { [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${CLICKHOUSE_URL:-}" ]; }; then
	if [ "$kafka" = 1 ]; then
		say "starting the local servers (tests/services/up)"
		tests/services/up >&2
	fi
	if [ -f tests/services/env ]; then
		# shellcheck disable=SC1091
		. tests/services/env
	fi
fi
servers_answer() {
	[ -n "${KAFKA_BROKERS:-}" ] && [ -n "${CLICKHOUSE_URL:-}" ] && command -v curl >/dev/null &&
		"$bin/kin" -L -q -b "$KAFKA_BROKERS" --timeout 3s >/dev/null 2>&1 &&
		curl -sf --max-time 3 "$CLICKHOUSE_URL/?query=SELECT%201" >/dev/null
}
if [ "$kafka" = auto ]; then
	if servers_answer; then kafka=1; else kafka=0; fi
elif [ "$kafka" = 1 ] && ! servers_answer; then
	say "Kafka at '${KAFKA_BROKERS:-}' or ClickHouse at '${CLICKHOUSE_URL:-}' does not answer"
	exit 1
fi

# ---- The events --------------------------------------------------------------------------------
say "evgen --count $n --seed $seed --rate 50 --invalid-pct 5 --late-pct 2 --out-of-order 10s > events.ndjson"
"$bin/evgen" --count "$n" --seed "$seed" --rate 50 --invalid-pct 5 --late-pct 2 \
	--out-of-order 10s -q > "$work/events.ndjson"

# Print TSV rows (window_start, event_type, count, sum, min, max, uniq users, version) as a
# table.
print_table() {
	awk -F'\t' 'BEGIN { printf "  %-19s  %-11s  %6s  %10s  %6s  %6s  %5s  %7s\n", "window_start",
		"event_type", "count", "sum_value", "min", "max", "users", "version" }
		{ printf "  %-19s  %-11s  %6d  %10.2f  %6.2f  %6.2f  %5d  %7d\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
}

if [ "$kafka" = 0 ]; then
	# ---- On files: the same tools, joined by pipes; side outputs through named pipes to
	# dlqsink, which appends them to files.
	rm -f "$work"/{dlq,late}.{fifo,ndjson}
	mkfifo "$work/dlq.fifo" "$work/late.fifo"
	say "evvalidate --contract $contract --dlq dlq.fifo < events.ndjson | tee valid.ndjson |"
	say "  evwindow ${window_args[*]} --late late.fifo > rows.ndjson"
	say "  (dlqsink --file dlq.ndjson < dlq.fifo; dlqsink --file late.ndjson < late.fifo)"
	"$bin/dlqsink" -q --file "$work/dlq.ndjson" < "$work/dlq.fifo" &
	dlq_sink=$!
	"$bin/dlqsink" -q --file "$work/late.ndjson" < "$work/late.fifo" &
	late_sink=$!
	"$bin/evvalidate" -q --contract "$contract" --dlq "$work/dlq.fifo" < "$work/events.ndjson" |
		tee "$work/valid.ndjson" |
		"$bin/evwindow" -q "${window_args[@]}" --late "$work/late.fifo" > "$work/rows.ndjson"
	wait "$dlq_sink" "$late_sink"

	echo
	echo "aggregates (rows.ndjson, the last version of each window and event type):"
	jq -s -r 'group_by([.window_start, .event_type]) | map(max_by(.version)) | .[] |
		[.window_start, .event_type, .count, .sum_value, .min_value, .max_value,
		 .uniq_user_id, .version] | @tsv' "$work/rows.ndjson" | print_table
	windowed=$(jq -s 'group_by([.window_start, .event_type]) | map(max_by(.version).count) | add // 0' \
		"$work/rows.ndjson")
	valid=$(wc -l < "$work/valid.ndjson")
	dead=$(wc -l < "$work/dlq.ndjson")
	late=$(jq -r 'select(.reason == "late") | .reason' "$work/late.ndjson" | wc -l)
	place="files in $work"
else
	# ---- Through Kafka and ClickHouse: the events into a new topic (keyed by event type, so
	# each type's events share a partition), then the job to the end of the topic.
	topic="demo-events-$(date +%s)-$$"
	table=${EVPIPE_DEMO_TABLE:-evpipe.demo_event_aggregates}
	say "kin -P -t $topic --key-field event_type < events.ndjson"
	"$bin/kin" -P -q -b "$KAFKA_BROKERS" -t "$topic" --key-field event_type < "$work/events.ndjson"
	curl -sSf "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $table" >/dev/null
	say "EVPIPE_TOPIC=$topic EVPIPE_TABLE=$table EVPIPE_EXIT_AT_END=1 pipelines/events-to-clickhouse.sh"
	EVPIPE_BIN=$bin EVPIPE_TOPIC=$topic EVPIPE_GROUP="demo-$topic" EVPIPE_TABLE=$table \
		EVPIPE_EXIT_AT_END=1 EVPIPE_LOG_LEVEL=warn pipelines/events-to-clickhouse.sh 2>&1 |
		sed 's/^/  /' >&2
	"$bin/kin" -C -q -b "$KAFKA_BROKERS" -t "$topic.dlq" -o beginning -e > "$work/dlq.ndjson"
	"$bin/kin" -C -q -b "$KAFKA_BROKERS" -t "$topic.late" -o beginning -e > "$work/late.ndjson" ||
		: > "$work/late.ndjson" # no late event, no topic

	query="SELECT window_start, event_type, count, sum_value, min_value, max_value,"
	query+=" uniq_user_id, version FROM $table FINAL ORDER BY window_start, event_type"
	echo
	echo "aggregates in ClickHouse ($query):"
	curl -sSf "$CLICKHOUSE_URL/" --data-binary "$query FORMAT TSV" | print_table
	windowed=$(curl -sSf "$CLICKHOUSE_URL/" --data-binary "SELECT sum(count) FROM $table FINAL")
	dead=$(wc -l < "$work/dlq.ndjson")
	late=$(jq -r 'select(.reason == "late") | .reason' "$work/late.ndjson" | wc -l)
	valid=$((windowed + late)) # what evvalidate passed went into a window or was late
	place="topics $topic{,.dlq,.late}, table $table, files in $work"
fi

echo
echo "dead letters by reason:"
jq -r '[.reason, .error.keyword // "", .error.path // ""] | @tsv' "$work/dlq.ndjson" | sort |
	uniq -c | awk '{ printf "  %6d  %s %s %s\n", $1, $2, $3, $4 }'
echo
echo "accounting: $n events in = $valid valid + $dead dead letters;" \
	"$valid valid = $windowed in windows + $late late"
say "$place"
if [ "$kafka" = 1 ]; then
	say "the servers keep running; 'make services-down' stops the local ones tests/services/up started (Kafka's JVM alone takes about 500 MB)"
fi
[ $((valid + dead)) -eq "$n" ] && [ $((windowed + late)) -eq "$valid" ]
