#!/usr/bin/env bash
# pipelines/demo.sh: what `make demo` runs.
#
# Generates events (5% of them invalid) and runs them through the tools that exist so far:
#   events -> evvalidate -> valid records, dead letters -> dlqsink
# With no servers this runs on files. With EVPIPE_DEMO_KAFKA=1 (or KAFKA_BROKERS set) the events
# go through Kafka: kin -P into a topic, kin -C --meta-field back out, dead letters to a topic.
# EVPIPE_DEMO_KAFKA=1 starts the local servers of tests/services when KAFKA_BROKERS is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${EVPIPE_DEMO_EVENTS:-10000}
work=${EVPIPE_DEMO_DIR:-$(mktemp -d)}
mkdir -p "$work"
bin=${EVPIPE_BIN:-bin}
contract=contracts/event.schema.json

if [ "${EVPIPE_DEMO_KAFKA:-0}" = 1 ] && [ -z "${KAFKA_BROKERS:-}" ]; then
	echo "demo: starting the local servers (tests/services/up)" >&2
	tests/services/up >&2
	# shellcheck disable=SC1091
	. tests/services/env
fi

echo "demo: generating $n events, 5% of them invalid, into $work/events.ndjson" >&2
scripts/gen-events "$n" 7 5 > "$work/events.ndjson"
# Dead letters travel through a named pipe to dlqsink, which the demo then waits for.
fifo="$work/dlq.fifo"
rm -f "$fifo" "$work/dlq.ndjson"
mkfifo "$fifo"

if [ -n "${KAFKA_BROKERS:-}" ]; then
	topic="demo-events-$(date +%s)"
	echo "demo: kin -P -t $topic --key-field event_type < events.ndjson" >&2
	"$bin/kin" -P -q -b "$KAFKA_BROKERS" -t "$topic" --key-field event_type < "$work/events.ndjson"
	echo "demo: kin -C -t $topic --meta-field _src | evvalidate | ...; dead letters to $topic.dlq" >&2
	"$bin/dlqsink" -q -b "$KAFKA_BROKERS" -t "$topic.dlq" < "$fifo" &
	sink=$!
	"$bin/kin" -C -q -b "$KAFKA_BROKERS" -t "$topic" -o beginning -e --meta-field _src |
		"$bin/evvalidate" --contract "$contract" --meta-field _src --dlq "$fifo" > "$work/valid.ndjson"
	wait "$sink"
	"$bin/kin" -C -q -b "$KAFKA_BROKERS" -t "$topic.dlq" -o beginning -e > "$work/dlq.ndjson"
else
	echo "demo: evvalidate --contract $contract --dlq dlq.fifo < events.ndjson; dlqsink --file dlq.ndjson < dlq.fifo" >&2
	"$bin/dlqsink" --file "$work/dlq.ndjson" < "$fifo" &
	sink=$!
	"$bin/evvalidate" --contract "$contract" --dlq "$fifo" < "$work/events.ndjson" > "$work/valid.ndjson"
	wait "$sink"
fi

valid=$(wc -l < "$work/valid.ndjson")
dead=$(wc -l < "$work/dlq.ndjson")
echo
echo "valid events by type (jq over valid.ndjson):"
printf "  %-12s %8s %12s\n" event_type count sum_value
jq -r '[.event_type, .value // 0] | @tsv' "$work/valid.ndjson" |
	awk -F'\t' '{ c[$1]++; s[$1] += $2 } END { for (t in c) printf "  %-12s %8d %12.2f\n", t, c[t], s[t] }' |
	sort
echo
echo "dead letters by reason and path:"
jq -r '[.reason, .error.path // ""] | @tsv' "$work/dlq.ndjson" | sort | uniq -c |
	awk '{ printf "  %6d  %s %s\n", $1, $2, $3 }'
echo
echo "demo: $n events in = $valid valid + $dead dead-lettered; files in $work" >&2
[ $((valid + dead)) -eq "$n" ]
