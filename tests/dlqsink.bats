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

# A record of 200 KB of control bytes: its dead-letter envelope, escaped, is 1.2 MB, over
# Kafka's default message size.
control_bytes_record() {
	python3 -c 'import sys; sys.stdout.buffer.write(b"{\"x\":\"" + b"\x01" * 200000 + b"\"}\n")'
}

@test "oversize dead letters: claim checks in S3, the job goes on, replay gives the exact bytes" {
	need_services
	topic=$(new_topic dlq-big)
	store="s3://$S3_BUCKET/claims-$$-$RANDOM"
	control_bytes_record > big.ndjson
	python3 -c 'import json; print(json.dumps({"event_type": "x", "ts": 1, "pad": "\"" * 900000}))' > quotes.ndjson
	cat big.ndjson quotes.ndjson > records
	run -0 --separate-stderr evvalidate --contract "$EVPIPE_ROOT/contracts/event.schema.json" \
		--dlq dl.ndjson < records
	[ "$(wc -l < dl.ndjson)" -eq 2 ]
	[ "$(head -1 dl.ndjson | wc -c)" -gt 1100000 ]
	{ envelopes 1 2; cat dl.ndjson; envelopes 3 4; echo '{"__evpipe":"barrier","id":1,"ts":1}'; } > in
	run -0 --separate-stderr dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job jb \
		--claim-store "$store" < in
	[[ "$stderr" == *"too large for '$topic': its original bytes are in '$store/jb/claims/"* ]]
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -e > got
	[ "$(wc -l < got)" -eq 6 ]
	[ "$(jq -c 'select(.raw_ref) | [.reason, .raw_bytes, has("raw")]' got | sort | paste -sd,)" = \
		'["parse",200008,false],["too_long",1800039,false]' ]
	for ref in $(jq -r 'select(.raw_ref) | .raw_ref' got); do
		s3cmd -c "$S3CMD_CONFIG" --no-progress get "$ref" obj >/dev/null
		[ "$(sha256sum < obj | cut -d' ' -f1)" = "${ref##*/}" ]
		rm obj
	done
	run -0 --separate-stderr dlqsink replay -b "$KAFKA_BROKERS" -t "$topic" --claim-store "$store"
	printf '%s\n' "$output" > replayed
	sort replayed > a
	{ envelopes 1 4 | jq -r .raw; cat records; } | sort > b
	assert_same_file a b
	# without the store, a claim check is reported, the others are replayed, exit 1
	run -1 --separate-stderr dlqsink replay -b "$KAFKA_BROKERS" -t "$topic"
	[ "$(wc -l <<<"$output")" -eq 4 ]
	[[ "$stderr" == *"no claim store given"* ]]
	[[ "$stderr" == *"2 dead letter(s) could not be replayed"* ]]
}

@test "oversize dead letters: refused by the broker (topic limit), a file store, replay verifies" {
	need_services
	topic=$(new_topic dlq-broker)
	control_bytes_record > big.ndjson
	evvalidate --contract "$EVPIPE_ROOT/contracts/event.schema.json" --dlq dl.ndjson < big.ndjson
	# librdkafka would take 4 MB: the broker's limit is what refuses it
	{ envelopes 1 2; cat dl.ndjson; envelopes 3 4; } |
		dlqsink -b "$KAFKA_BROKERS" -t "$topic" -X message.max.bytes=4000000 \
			--checkpoint-store "file://$PWD/store" --job jf
	sha=$(head -c -1 big.ndjson | sha256sum | cut -d' ' -f1)
	[ "$(wc -c < "store/jf/claims/$sha")" -eq 200008 ]
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -e > got
	[ "$(wc -l < got)" -eq 5 ]
	dlqsink replay --file got --reason parse --checkpoint-store "file://$PWD/store" > back
	assert_same_file back big.ndjson
	# a claim whose object was altered is not replayed
	printf x >> "store/jf/claims/$sha"
	run -1 --separate-stderr dlqsink replay --file got --claim-store "file://$PWD/store"
	[[ "$stderr" == *"200009 bytes with sha256"* ]]
	# a reference outside the store is refused
	jq -c 'select(.raw_ref) | .raw_ref = "file:///etc/passwd"' got > forged
	run -1 --separate-stderr dlqsink replay --file forged --claim-store "file://$PWD/store"
	[[ "$stderr" == *"is not a claim in 'file://$PWD/store'"* ]]
}

@test "oversize dead letters without a claim store: the job goes on, the loss is an error and counted" {
	need_services
	topic=$(new_topic dlq-lost)
	control_bytes_record > big.ndjson
	evvalidate --contract "$EVPIPE_ROOT/contracts/event.schema.json" --dlq dl.ndjson < big.ndjson
	mkfifo in
	dlqsink -b "$KAFKA_BROKERS" -t "$topic" --metrics-addr 127.0.0.1:0 <in 2>err 3>&- &
	pid=$!
	exec 7<>in
	wait_for 20 grep -q 'serving metrics' err
	cat dl.ndjson >&7
	wait_for 20 grep -q 'are lost' err
	curl -sf "$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err)" > metrics
	exec 7>&-
	wait "$pid"
	grep -q '^evpipe_dead_letters_oversize_total{tool="dlqsink",job="evpipe",outcome="raw_lost"} 1$' metrics
	grep -q '^evpipe_dead_letters_oversize_total{tool="dlqsink",job="evpipe",outcome="claim_check"} 0$' metrics
	sha=$(head -c -1 big.ndjson | sha256sum | cut -d' ' -f1)
	stderr=$(cat err)
	[[ "$stderr" == *"there is no claim store (--claim-store): its original bytes (200008, sha256 $sha) are lost"* ]]
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -e > got
	[ "$(jq -c '[.reason, .raw_sha256, .raw_bytes, .raw_lost, has("raw")]' got)" = "[\"parse\",\"$sha\",200008,true,false]" ]
	run -1 --separate-stderr dlqsink replay --file got
	[[ "$stderr" == *"were not kept (sha256 $sha)"* ]]
}
