#!/usr/bin/env bash
# pipelines/demo.sh: what `make demo` runs. Generates events, sends them through Kafka with kin
# and reads them back, then summarises them with jq. The Kafka broker is the local one of
# tests/services (started when it is not running).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${EVPIPE_DEMO_EVENTS:-10000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -z "${KAFKA_BROKERS:-}" ]; then
	echo "demo: starting a local Kafka broker (tests/services/up)" >&2
	tests/services/up >&2
	# shellcheck disable=SC1091
	. tests/services/env
fi
topic="demo-events-$(date +%s)"

echo "demo: generating $n events" >&2
scripts/gen-events "$n" 7 > "$work/events.ndjson"
echo "demo: kin -P -t $topic --key-field event_type < events.ndjson" >&2
bin/kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field event_type < "$work/events.ndjson"
echo "demo: kin -L -t $topic" >&2
bin/kin -L -b "$KAFKA_BROKERS" -t "$topic"
echo "demo: kin -C -J -t $topic -e | jq (events per partition and type)" >&2
bin/kin -C -J -b "$KAFKA_BROKERS" -t "$topic" -o beginning -e > "$work/out.json"
jq -r '[.partition, (.payload | fromjson | .event_type)] | @tsv' "$work/out.json" |
	sort | uniq -c | awk 'BEGIN { printf "%-10s %-12s %s\n", "partition", "event_type", "events" }
	{ printf "%-10s %-12s %s\n", $2, $3, $1 }'
got=$(wc -l < "$work/out.json")
echo "demo: $got of $n events came back" >&2
[ "$got" -eq "$n" ]
