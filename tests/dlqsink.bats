#!/usr/bin/env bats
# dlqsink.bats: dead letters to a file or topic, durable on barriers, and replay.
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR" || return
}

envelopes() {
	for i in $(seq "$1" "$2"); do
		printf '{"reason":"schema","error":{"path":"/ts"},"raw":"{\\"n\\":%d}","at":%d}\n' "$i" "$((1000 + i))"
	done
}

@test "file: appends envelopes, keeps non-envelopes, skips control lines" {
	{ envelopes 1 3; echo '{"__evpipe":"watermark","ts":1}'; echo 'garbage'; } | dlqsink --file dl
	{ envelopes 4 5; } | dlqsink --file dl
	[ "$(wc -l < dl)" -eq 6 ]
	[ "$(sed -n 4p dl)" = garbage ]
	run -0 --separate-stderr dlqsink replay --file dl
	[ "$(paste -sd, <<<"$output")" = '{"n":1},{"n":2},{"n":3},{"n":4},{"n":5}' ]
	[[ "$stderr" == *"line 4 is not a dead-letter envelope"* ]]
}

@test "replay filters by reason and time, and decodes raw_b64" {
	{ envelopes 1 5; printf '{"reason":"encoding","raw_b64":"/w==","at":2000}\n'; } > dl
	run -0 --separate-stderr dlqsink replay --file dl --reason schema --since 1002 --until 1004
	[ "$(paste -sd, <<<"$output")" = '{"n":2},{"n":3}' ]
	dlqsink replay --reason encoding,parse < dl > out
	[ "$(od -An -tx1 out | tr -d ' ')" = "ff0a" ]
	run -2 --separate-stderr dlqsink replay --since yesterday < dl
}

@test "replay --reason refuses a reason no tool writes, listing the known ones" {
	envelopes 1 3 > dl
	run -2 --separate-stderr dlqsink replay --file dl --reason schema,bogus
	[ -z "$output" ]
	[[ "$stderr" == *"dlqsink: unknown reason 'bogus' (known: parse, "*", schema, "*", late, "* ]]
	run -2 --separate-stderr dlqsink replay --file dl --reason schema,
	[[ "$stderr" == *"unknown reason ''"* ]]
	# one reason of each tool is accepted: evvalidate's, evwindow's, chsink's
	run -0 --separate-stderr dlqsink replay --file dl --reason duplicate_key,late,rejected
	[ -z "$output" ]
	# a long list is matched whole, never cut short
	run -0 --separate-stderr dlqsink replay --file dl \
		--reason "$(printf 'late,%.0s' $(seq 300))schema"
	[ "$(paste -sd, <<<"$output")" = '{"n":1},{"n":2},{"n":3}' ]
}

@test "killed after acknowledging a barrier, a file sink has kept everything before it" {
	mkfifo in
	dlqsink --file dl -v < in 2> err 3>&- &
	pid=$!
	exec 7<> in
	envelopes 1 1000 >&7
	echo '{"__evpipe":"barrier","id":7,"ts":1}' >&7
	wait_for 20 grep -q 'barrier 7: everything before it is durable' err
	envelopes 1001 1010 >&7
	kill -9 "$pid"
	wait "$pid" || true
	exec 7>&-
	[ "$(wc -l < dl)" -ge 1000 ]
	[ "$(head -n 1000 dl)" = "$(envelopes 1 1000)" ]
}

@test "topic: envelopes keyed by reason; killed after a barrier, nothing acknowledged is lost" {
	need_services
	topic=$(new_topic dlq)
	mkfifo in
	dlqsink -b "$KAFKA_BROKERS" -t "$topic" -v < in 2> err 3>&- &
	pid=$!
	exec 7<> in
	envelopes 1 500 >&7
	echo '{"__evpipe":"barrier","id":3,"ts":1}' >&7
	wait_for 30 grep -q 'barrier 3: everything before it is durable' err
	kill -9 "$pid"
	wait "$pid" || true
	exec 7>&-
	kin -C -J -b "$KAFKA_BROKERS" -t "$topic" -e > got.json
	[ "$(jq -r .key got.json | sort -u)" = schema ]
	[ "$(jq -r .payload got.json | sort)" = "$(envelopes 1 500 | sort)" ]
	# replay straight from the topic, filtered by time
	run -0 --separate-stderr dlqsink replay -b "$KAFKA_BROKERS" -t "$topic" --since 1101 --until 1111
	[ "$(sort <<<"$output" | paste -sd,)" = "$(for i in $(seq 101 110); do printf '{"n":%d}\n' "$i"; done | sort | paste -sd,)" ]
	run -1 --separate-stderr dlqsink replay -b "$KAFKA_BROKERS" -t "no-such-topic-$topic" --timeout 3s
	[[ "$stderr" == *"Unknown topic"* ]]
}

@test "an unreachable broker is an error, and so is a missing destination" {
	run -1 --separate-stderr dlqsink -b 127.0.0.1:1 -t x --timeout 1s < /dev/null
	[[ "$stderr" == *"cannot reach Kafka"* ]]
	run -2 --separate-stderr dlqsink < /dev/null
	[[ "$stderr" == *"give -t TOPIC"* ]]
}
