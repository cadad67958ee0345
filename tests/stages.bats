#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# stages.bats: what every stage shares (lib/stage.c): one class per input line (torn, blank,
# control, record, in that order; docs/design.md "Stream format"), input files as arguments
# (several, in order; - for stdin), control lines from files checked as from stdin (ADR 0013).
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR" || return
	CONTRACT="$EVPIPE_ROOT/contracts/event.schema.json"
	R1='{"event_id":"e1","event_type":"click","user_id":"u1","ts":1732400000000,"value":1}'
	R2='{"event_id":"e2","event_type":"click","user_id":"u2","ts":1732400001000,"value":2}'
	R3='{"event_id":"e3","event_type":"purchase","user_id":"u3","ts":1732400002000,"value":3}'
	B1='{"__evpipe":"barrier","id":1,"ts":1732400000000}'
	B2='{"__evpipe":"barrier","id":2,"ts":1732400000000}'
	# a line of spaces and tabs, a blank line in every stage
	printf '%s\n \t \n%s\n' "$R1" "$B1" > a.ndjson
	printf '%s\n\n%s\n' "$R2" "$B2" > b.ndjson
	printf '%s\n' "$R3" > c.ndjson
	# what a stage upstream was writing when it died: the start of a control line
	printf '%s\n{"__evpipe":"barrier","id":3' "$R1" > torn.ndjson
	CK="file://$BATS_TEST_TMPDIR/store"
}

# The metric $1 (summed over its labels) in the file metrics.
metric() {
	awk -v m="$1" '$1 ~ "^"m"([{]|$)" { s += $2 } END { print s + 0 }' metrics
}

# Run "$@" over stdin $1 with metrics, and save them in metrics once it has read everything.
with_metrics() {
	local in=$1
	shift
	mkfifo hold
	{ cat "$in"; cat hold; } | "$@" --metrics-addr 127.0.0.1:0 > out 2> err 3>&- &
	local pid=$!
	exec 7<> hold
	wait_for 20 grep -q 'serving metrics' err
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err)
	wait_for 20 bash -c "curl -sf '$url' | grep -q '^evpipe_control_lines_total{.*} 1$'"
	curl -sf "$url" > metrics
	exec 7>&-
	wait "$pid"
	rm hold
}

@test "evvalidate: files in order, - for stdin; blank lines of spaces skipped and counted" {
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq a.ndjson - c.ndjson < b.ndjson
	[ "$output" = "$(printf '%s\n' "$R1" "$B1" "$R2" "$B2" "$R3")" ]
	[ ! -s dlq ] || [ "$(grep -vc __evpipe dlq)" -eq 0 ]
	[[ "$stderr" == *"3 record(s): 3 valid, 0 dead-lettered; 2 blank line(s) skipped"* ]]
	with_metrics a.ndjson evvalidate --contract "$CONTRACT"
	[ "$(metric evpipe_records_in_total)" -eq 1 ]
	[ "$(metric 'evpipe_records_skipped_total')" -eq 1 ]
	[ "$(metric evpipe_bytes_in_total)" -eq "${#R1}" ]
}

@test "evwindow: files in order, - for stdin; blank lines of spaces skipped and counted" {
	run -0 --separate-stderr evwindow --tumble 1m --key event_type --late late a.ndjson - c.ndjson < b.ndjson
	[ "$(grep -v __evpipe <<<"$output" | jq -c '[.event_type, .count]' | paste -sd,)" = '["click",2],["purchase",1]' ]
	[ "$(grep -c __evpipe <<<"$output")" -eq 2 ]
	# the line of spaces is not a record: no dead letter (it was one, parse, before)
	[ "$(grep -vc __evpipe late)" -eq 0 ]
	run -0 --separate-stderr evwindow --tumble 1m < a.ndjson
	[ "$stderr" = "evwindow: 1 record(s): 1 row(s) written, 0 late, 0 dead-lettered; 1 blank line(s) skipped" ]
	with_metrics a.ndjson evwindow --tumble 1m
	[ "$(metric evpipe_records_in_total)" -eq 1 ]
	grep -q '^evpipe_records_skipped_total{tool="evwindow",job="evpipe",reason="blank"} 1$' metrics
}

@test "dlqsink: files in order, - for stdin; blank lines of spaces skipped; replay reads files" {
	env1='{"reason":"schema","raw":"{\"n\":1}","at":1}'
	env2='{"reason":"parse","raw":"{\"n\":2}","at":2}'
	printf '%s\n \t\n%s\n' "$env1" "$B1" > e1
	printf '%s\n' "$env2" > e2
	run -0 --separate-stderr dlqsink --file dl e1 - < e2
	[ "$(cat dl)" = "$(printf '%s\n' "$env1" "$env2")" ]
	[[ "$stderr" != *"not a dead-letter envelope"* ]]
	run -0 --separate-stderr dlqsink replay dl e1
	[ "$output" = "$(printf '%s\n' '{"n":1}' '{"n":2}' '{"n":1}')" ]
	run -2 --separate-stderr dlqsink replay --file dl e1
	[[ "$stderr" == *"not two"* ]]
}

@test "chsink: files in order, - for stdin; blank lines of spaces skipped and counted" {
	need_services
	table="evpipe.t_stages_$$_$RANDOM"
	sed "s/evpipe\.event_aggregates/$table/g" "$EVPIPE_ROOT/pipelines/sql/event_aggregates.sql" > t.sql
	row() {
		printf '{"window_start":"2024-11-24 00:0%d:00","window_end":"2024-11-24 00:0%d:00",' "$1" "$(($1 + 1))"
		printf '"event_type":"click","count":1,"sum_value":1,"min_value":1,"max_value":1,"uniq_user_id":1,"version":1}\n'
	}
	{ row 1; printf ' \t\n'; echo "$B1"; } > r1
	row 2 > r2
	row 3 > r3
	run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$table" --create-table t.sql r1 - r3 < r2
	count=$(curl -sS --max-time 10 "$CLICKHOUSE_URL/" --data-binary "SELECT count() FROM $table FORMAT TSV")
	curl -sS --max-time 10 "$CLICKHOUSE_URL/" --data-binary "DROP TABLE $table" || true
	[ "$count" -eq 3 ]
	[[ "$stderr" == *"3 row(s) inserted"*"1 blank line(s) skipped"* ]]
	[ "$output" = "$B1" ]
}

@test "with checkpoints, a torn last line is passed over in every stage, even one that starts as a control line" {
	need_services
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --checkpoint-store "$CK" < torn.ndjson
	[ "$output" = "$R1" ]
	[[ "$stderr" == *"the input ended in the middle of a line"* ]]
	run -0 --separate-stderr evwindow --tumble 1m --checkpoint-store "$CK" < torn.ndjson
	[[ "$stderr" == *"the input ended in the middle of a line"* ]]
	[[ "$stderr" != *"impossible control line"* ]]
	run -0 --separate-stderr dlqsink --file dl --checkpoint-store "$CK" < torn.ndjson
	[[ "$stderr" == *"the input ended in the middle of a line"* ]]
	[ "$(cat dl)" = "$R1" ]
	tail -c +$((${#R1} + 2)) torn.ndjson > fragment
	run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table evpipe.event_aggregates \
		--checkpoint-store "$CK" < fragment
	[[ "$stderr" == *"the input ended in the middle of a line"* ]]
	[ -z "$output" ]
	# without checkpoints nothing replays it: it is a control line, and an impossible one
	run -1 --separate-stderr evvalidate --contract "$CONTRACT" torn.ndjson
	[[ "$stderr" == *"'torn.ndjson' line 2: impossible control line"* ]]
}

@test "control lines from files are checked as from stdin (ADR 0013); a missing file is an error" {
	# barrier 2 and then barrier 1: refused, whichever files they come from
	for tool in "evvalidate --contract $CONTRACT" "evwindow --tumble 1m" "dlqsink --file dl"; do
		# shellcheck disable=SC2086 # the tool and its options, one per word
		run -1 --separate-stderr $tool b.ndjson a.ndjson
		[[ "$stderr" == *"'a.ndjson' line 3: impossible control line"*"barrier 1 does not follow barrier 2"* ]]
		# shellcheck disable=SC2086
		run -1 --separate-stderr $tool a.ndjson missing.ndjson
		[[ "$stderr" == *"cannot open 'missing.ndjson': No such file or directory"* ]]
	done
}

@test "a stage whose output's reader goes away ends by SIGPIPE, after cleaning up" {
	seq 20000 | awk '{ printf "{\"event_id\":\"e%d\",\"event_type\":\"click\",\"user_id\":\"u\",\"ts\":17324%08d}\n", $1, $1 }' > many
	for tool in "evvalidate --contract $CONTRACT" "evwindow --tumble 1ms --key event_id"; do
		# shellcheck disable=SC2086 # the tool and its options, one per word
		run bash -c "$tool many 2> err | head -c 1 > /dev/null; echo \${PIPESTATUS[0]}"
		[ "$output" = 141 ]
		[ ! -s err ]
	done
}

@test "kin -P -l: files' lines in order, - for stdin; blank lines of spaces skipped" {
	need_services
	topic=$(new_topic stages)
	# -l: kcat's letter for lines of files (without it each file is one message, as kcat's)
	run -0 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 -l a.ndjson - c.ndjson < b.ndjson
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e
	[ "$output" = "$(printf '%s\n' "$R1" "$R2" "$R3")" ]
	run -1 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" -l missing.ndjson
	[[ "$stderr" == *"cannot open 'missing.ndjson'"* ]]
}
