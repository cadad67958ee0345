#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# dlqsink.bats: dead letters to a file or topic, durable on barriers, and replay.
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common
load helpers/broker

setup() {
	cd "$BATS_TEST_TMPDIR" || return
}

teardown() {
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one pid per word
	[ -z "$pids" ] || kill $pids 2>/dev/null || true
	# a test that froze the broker of tests/services resumes it, whatever happened
	[ ! -f "$BATS_TEST_TMPDIR/broker.paused" ] || resume_broker
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
	# librdkafka would take 4 MB: the topic's limit (the broker's message.max.bytes, 1 MB)
	# is the one. dlqsink learns it at start and sends the claim check at once: the broker
	# never refuses an envelope, and the transaction commits at the end of the stream with
	# no abort (a refusal would make it abortable).
	{ envelopes 1 2; cat dl.ndjson; envelopes 3 4; echo '{"__evpipe":"end"}'; } > in
	run -0 --separate-stderr timeout 60 dlqsink -b "$KAFKA_BROKERS" -t "$topic" \
		-X message.max.bytes=4000000 --checkpoint-store "file://$PWD/store" --job jf < in
	[[ "$stderr" == *"is too large for '$topic': its original bytes are in"* ]]
	[[ "$stderr" != *"new producer"* ]]
	sha=$(head -c -1 big.ndjson | sha256sum | cut -d' ' -f1)
	[ "$(wc -c < "store/jf/claims/$sha")" -eq 200008 ]
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -e > got
	[ "$(wc -l < got)" -eq 5 ]
	# each once, the big one as its claim check; no aborted copy in the topic
	{
		printf '["{\\"n\\":%d}",null]\n' 1 2
		printf '[null,"%s"]\n' "$sha"
		printf '["{\\"n\\":%d}",null]\n' 3 4
	} | sort > want
	jq -c '[.raw, .raw_sha256]' got | sort > pairs
	assert_same_file pairs want
	[ "$(records_as "$topic" read_uncommitted | wc -l)" -eq 5 ]
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

# ---- Exactly once to a topic: Kafka transactions committed with the checkpoints (ADR 0021) ----

# The records of topic $1 as a consumer reading with isolation level $2 sees them.
records_as() {
	kin -C -q -b "$KAFKA_BROKERS" -t "$1" -o beginning -e -X "isolation.level=$2"
}

# At least $1 complete checkpoints in the file store's job directory $2.
manifests_at_least() {
	[ "$(find "$2" -name _manifest.json 2> /dev/null | wc -l)" -ge "$1" ]
}

@test "exactly once: a transaction per checkpoint, committed on its committed line; the rest aborted at a stop" {
	need_services
	topic=$(new_topic eos)
	{
		envelopes 1 3
		echo '{"__evpipe":"barrier","id":1,"ts":1}'
		envelopes 4 5 # after the barrier: held until checkpoint 1 commits
		echo '{"__evpipe":"committed","id":1}'
		envelopes 6 7
		echo '{"__evpipe":"barrier","id":2,"ts":1}'
		envelopes 8 8 # the input ends without an end line: a stop, checkpoint 2 not committed
	} > in
	run -0 --separate-stderr dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$topic" \
		--checkpoint-store "file://$PWD/store" < in
	[[ "$stderr" == *"5 dead letter(s) after the last checkpoint are not committed to '$topic'"* ]]
	# the part of each checkpoint logs its transaction's records
	[ "$(jq -c .transaction "store/j-$topic/chk-0000000001/dlqsink.json")" = "{\"id\":\"evpipe.j-$topic.dlqsink.$topic\",\"records\":3,\"partitions\":[]}" ]
	[ "$(wc -l < "store/j-$topic/chk-0000000002/dlqsink/transaction.log")" -eq 4 ]
	records_as "$topic" read_committed > committed
	[ "$(cat committed)" = "$(envelopes 1 3)" ]
	# the aborted copies are in the topic: the transactions are real
	records_as "$topic" read_uncommitted | sort > uncommitted
	[ "$(cat uncommitted)" = "$(envelopes 1 7 | sort)" ] # 8 waited for checkpoint 2
	# replay reads the committed dead letters only
	run -0 --separate-stderr dlqsink replay -b "$KAFKA_BROKERS" -t "$topic"
	[ "$output" = "$(printf '{"n":%d}\n' 1 2 3)" ]
	none_open "evpipe.j-$topic."
}

@test "exactly once: checkpoints failing for half the transaction timeout renew the transaction; nothing is lost or doubled" {
	need_services
	topic=$(new_topic eos)
	{
		envelopes 1 3
		echo '{"__evpipe":"barrier","id":1,"ts":1}' # checkpoint 1 is abandoned
		sleep 3
		echo '{"__evpipe":"barrier","id":2,"ts":1}' # the transaction is 3 s old: renewed
		echo '{"__evpipe":"committed","id":2}'
		envelopes 4 4
		echo '{"__evpipe":"end"}'
	} | dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$topic" \
		--checkpoint-store "file://$PWD/store" --transaction-timeout 4s 2> err
	grep -qE "'$topic': no checkpoint completed for [23] s: the open transaction is written again in a new one" err
	[ "$(records_as "$topic" read_committed | sort)" = "$(envelopes 1 4 | sort)" ]
	# the renewed transaction's first copies were aborted
	[ "$(records_as "$topic" read_uncommitted | wc -l)" -eq 7 ]
}

@test "exactly once: the input ends after an end line, the finished stream commits all" {
	need_services
	topic=$(new_topic eos)
	{
		envelopes 1 2
		echo '{"__evpipe":"barrier","id":1,"ts":1}'
		envelopes 3 4
		echo '{"__evpipe":"end"}'
	} | dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$topic" --checkpoint-store "file://$PWD/store"
	records_as "$topic" read_committed > committed
	[ "$(sort committed)" = "$(envelopes 1 4 | sort)" ]
}

# 50 envelopes in topic $src, and $topic its dead-letter topic, for uncommitted_copy.
uncommitted_job() {
	need_services
	src=$(new_topic src)
	topic=$src.dlq
	store="file://$PWD/store"
	envelopes 1 50 | kin -P -q -b "$KAFKA_BROKERS" -t "$src"
}

# kin -C of $src in group g-$src, job j-$src (copy $1 when given), checkpoints every 200 ms,
# into dlqsink of $topic, with the committed lines taken out of the stream between them: the
# coordinator dies between each manifest and its committed line. kin's options after $1.
uncommitted_copy() {
	local copy=(${1:+--copy "$1"}) name=${1:-job}
	shift || true
	kin -C -q -b "$KAFKA_BROKERS" -t "$src" -G "g-$src" --job "j-$src" "${copy[@]}" --stage kin \
		--checkpoint-store "$store" --checkpoint-interval 200ms --checkpoint-expect dlqsink \
		"$@" 2> "kin.$name.err" |
		grep --line-buffered -v '"committed"' |
		dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$src" "${copy[@]}" \
			--checkpoint-store "$store" 2> "dlqsink.$name.err" 3>&-
}

# The coordinator dies between the manifest and the committed line: here the committed lines
# are taken out of the stream, and the job killed once checkpoints are complete. The restart
# finds the restored checkpoint's transaction aborted (the marker is older): it writes the
# checkpoint's log again and commits it, once (a second restart adds nothing).
@test "exactly once: a complete checkpoint whose committed line never came is committed by the restart, once" {
	uncommitted_job
	uncommitted_copy &
	wait_for 30 manifests_at_least 2 "store/j-$src"
	pkill -KILL -f -- "-t $src( |$)" || true
	wait || true
	# the dead letters were produced, but nothing committed
	[ "$(records_as "$topic" read_committed | wc -l)" -eq 0 ]
	[ "$(records_as "$topic" read_uncommitted | wc -l)" -ge 50 ]
	run -0 --separate-stderr dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$src" \
		--checkpoint-store "$store" --restore latest < /dev/null
	[[ "$stderr" == *"is complete but its transaction did not commit before the restart: its dead letters were written to '$topic' again and committed"* ]]
	records_as "$topic" read_committed > committed
	[ "$(sort committed)" = "$(envelopes 1 50 | sort)" ]
	wait_for 5 none_open "evpipe.j-$src."
	run -0 --separate-stderr dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$src" \
		--checkpoint-store "$store" --restore latest < /dev/null
	[[ "$stderr" != *"written to '$topic' again"* ]]
	records_as "$topic" read_committed > committed
	[ "$(wc -l < committed)" -eq 50 ]
	# an altered log is refused, not written
	latest=$(dirname "$(find "store/j-$src" -name _manifest.json | sort | tail -n 1)")
	mkdir -p tampered && cp -r store tampered/
	echo '6 schema{"forged":1}' >> "tampered/$latest/dlqsink/transaction.log"
	run -1 --separate-stderr dlqsink -b "$KAFKA_BROKERS" -t "$src.other" --job "j-$src" \
		--checkpoint-store "file://$PWD/tampered/store" --restore latest --restore-mismatch allow \
		-X "transactional.id=evpipe.j-$src.dlqsink.$topic.t" < /dev/null
	[[ "$stderr" == *"is altered"* ]]
}

# Copies of a job (ADR 0025): copy a dies between the manifest of its checkpoint and the commit
# of its transaction (here its committed lines are taken out of the stream, and it is killed
# with SIGKILL: its transaction stays open), and never comes back. Copy b, which takes its
# partitions over where the group's offsets resume them, fences a's producer (no transaction
# stays open to block read_committed consumers for the transaction timeout) and commits the
# dead letters of a's last complete checkpoint for it, once: b itself reads none of them again.
@test "exactly once, copies: the copy that takes over a dead copy's partitions commits its complete checkpoint's dead letters, once" {
	uncommitted_job
	uncommitted_copy a -X session.timeout.ms=6000 &
	wait_for 30 manifests_at_least 2 "store/j-$src/copies/a"
	pkill -KILL -f -- "j-$src --copy a( |$)" || true
	wait || true
	[ "$(records_as "$topic" read_committed | wc -l)" -eq 0 ]
	[ "$(records_as "$topic" read_uncommitted | wc -l)" -ge 50 ]
	run -1 none_open "evpipe.j-$src/copies/a."
	# b: the group resumes the partition at a's last checkpoint, its end. a's last manifest
	# cannot be read at first (the store failing): b goes on, and finishes a's transaction at
	# a later barrier
	latest=$(find "store/j-$src/copies/a" -name _manifest.json | sort | tail -n 1)
	mv "$latest" manifest.saved
	echo '{' > "$latest"
	kin -C -q -b "$KAFKA_BROKERS" -t "$src" -G "g-$src" --job "j-$src" --copy b --stage kin \
		--checkpoint-store "$store" --checkpoint-interval 200ms --checkpoint-expect dlqsink \
		2> kin.b.err |
		dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$src" --copy b --checkpoint-store "$store" \
			2> dlqsink.b.err &
	wait_for 60 grep -q "copy 'a' of the job: cannot read its last checkpoint: .*(tried again at the next barrier)" dlqsink.b.err
	mv manifest.saved "$latest"
	wait_for 30 grep -q "were written again and committed" dlqsink.b.err
	records_as "$topic" read_committed > committed
	[ "$(sort committed)" = "$(envelopes 1 50 | sort)" ]
	grep -q "copy 'a' of the job is gone with partitions assigned here, and its checkpoint [0-9]* is complete but its transaction did not commit: its 50 dead letter(s) were written again and committed" dlqsink.b.err
	pkill -TERM -f -- "j-$src --copy b( |$)"
	wait
	cat kin.b.err dlqsink.b.err >&2
	none_open "evpipe.j-$src/copies/a."
}

# kafka-configs.sh --entity-type topics --entity-name $1 with the rest of the arguments, by the
# broker's own classes.
topic_config() {
	local libs=${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/kafka-$KAFKA_VERSION/libs t=$1
	shift
	java -cp "$libs/*" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BROKERS" \
		--entity-type topics --entity-name "$t" "$@"
}

# The topic $1 has the configuration $2 (key=value).
topic_has() {
	topic_config "$1" --describe | grep -qF " $2 "
}

# The topic $1 has at least $2 records, committed or not.
records_at_least() {
	[ "$(records_as "$1" read_uncommitted | wc -l)" -ge "$2" ]
}

# The process $1 has ended.
exited() {
	if kill -0 "$1" 2> /dev/null; then return 1; fi
}

# The broker refuses an envelope of an open transaction after all: the topic's limit was
# lowered after dlqsink learned it. The transaction cannot commit and its abort is not to be
# trusted (librdkafka 2.0 against Kafka 4 could time out and end fenced): a new producer fences
# the old one and aborts its transaction, the transaction's records are written again (the
# refused envelope as a claim check, under the limit learned again) and committed once.
@test "exactly once: an envelope refused inside a transaction (the topic's limit lowered meanwhile): a new producer writes the transaction again, once" {
	need_services
	topic=$(new_topic eos-lowered)
	python3 -c 'import json; print(json.dumps({"reason": "schema", "raw": "y" * 60000}))' > big
	mkfifo in
	timeout 120 dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$topic" \
		--checkpoint-store "file://$PWD/store" < in 2> err 3>&- &
	pid=$!
	exec 7> in
	envelopes 1 2 >&7
	wait_for 30 records_at_least "$topic" 2
	topic_config "$topic" --alter --add-config max.message.bytes=20000 > /dev/null
	wait_for 20 topic_has "$topic" max.message.bytes=20000
	cat big >&7
	{
		echo '{"__evpipe":"barrier","id":1,"ts":1}'
		echo '{"__evpipe":"committed","id":1}'
		envelopes 3 3
		echo '{"__evpipe":"end"}'
	} >&7
	exec 7>&-
	status=0
	wait "$pid" || status=$?
	cat err >&2
	[ "$status" -eq 0 ]
	grep -q "'$topic': the broker refused 1 dead letter(s) of the open transaction as too large: a new producer fences this one and aborts its transaction, whose dead letters are written again" err
	sha=$(jq -j .raw big | sha256sum | cut -d' ' -f1)
	[ "$(wc -c < "store/j-$topic/claims/$sha")" -eq 60000 ]
	# checkpoint 1 logged the transaction written again: 1, 2 and the claim check
	[ "$(jq -c .transaction.records "store/j-$topic/chk-0000000001/dlqsink.json")" = 3 ]
	{
		printf '["{\\"n\\":%d}",null]\n' 1 2 3
		printf '[null,"%s"]\n' "$sha"
	} | sort > want
	records_as "$topic" read_committed | jq -c '[.raw, .raw_sha256]' | sort > got
	assert_same_file got want
	# the first copies of 1 and 2 were aborted
	[ "$(records_as "$topic" read_uncommitted | wc -l)" -eq 6 ]
	run -0 --separate-stderr dlqsink replay -b "$KAFKA_BROKERS" -t "$topic" \
		--claim-store "file://$PWD/store"
	[ "$(printf '%s\n' "$output" | grep -cx "$(jq -r .raw big)")" -eq 1 ]
	[ "${#lines[@]}" -eq 4 ]
	wait_for 5 none_open "evpipe.j-$topic."
}

# The broker goes down while a transaction is open (issue 18: with kin killed during a broker
# outage, both side-output dlqsinks of the job waited in librdkafka for minutes and the job
# never ended). The input ends without an end line (a stop: the open transaction is to be
# aborted, which needs the broker), then SIGTERM: every wait for the brokers is bounded, and a
# stop signal leaves them --timeout (3 s here) to answer. dlqsink exits 1 saying so within
# seconds, while the broker is still down; it is resumed at once (the broker is shared: it is
# frozen with SIGSTOP rather than killed, which would cost every test a minute of log
# recovery), and a restart of dlqsink fences the transaction left open: the committed dead
# letters are there once, nothing is left open.
@test "exactly once: the broker down with a transaction open, SIGTERM ends dlqsink within seconds; a restart leaves nothing open" {
	need_services
	topic=$(new_topic eos-down)
	mkfifo in
	dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$topic" --timeout 3s \
		--checkpoint-store "file://$PWD/store" < in 2> err 3>&- &
	pid=$!
	exec 7> in
	{
		envelopes 1 3
		echo '{"__evpipe":"barrier","id":1,"ts":1}'
		echo '{"__evpipe":"committed","id":1}'
		envelopes 4 5 # in the open transaction
	} >&7
	wait_for 30 records_at_least "$topic" 5
	[ "$(records_as "$topic" read_committed)" = "$(envelopes 1 3)" ]
	pause_broker
	local t0=$SECONDS
	envelopes 6 6 >&7 # queued, not deliverable
	exec 7>&-
	sleep 1
	kill -TERM "$pid"
	wait_for 15 exited "$pid" || {
		echo "dlqsink still waits $((SECONDS - t0)) s after the broker went down" >&2
		kill -KILL "$pid"
		resume_broker
		false
	}
	local elapsed=$((SECONDS - t0)) status=0
	wait "$pid" || status=$?
	resume_broker
	cat err >&2
	echo "dlqsink ended $elapsed s after the broker went down, exit status $status" >&2
	[ "$status" -eq 1 ]
	grep -q "'$topic': cannot abort the transaction: a stop signal came, and the brokers did not answer within 3000 ms after it" err
	run -0 --separate-stderr timeout 120 dlqsink -b "$KAFKA_BROKERS" -t "$topic" \
		--job "j-$topic" --checkpoint-store "file://$PWD/store" --restore latest < /dev/null
	[ "$(records_as "$topic" read_committed)" = "$(envelopes 1 3)" ]
	wait_for 5 none_open "evpipe.j-$topic."
}

@test "exactly once: a transaction timeout above the broker's maximum is a clear error at start" {
	need_services
	topic=$(new_topic eos)
	run -1 --separate-stderr dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$topic" \
		--checkpoint-store "file://$PWD/store" --transaction-timeout 2h < /dev/null
	[[ "$stderr" == *"the broker refuses a transaction timeout of 7200000 ms: it is above its transaction.max.timeout.ms"* ]]
	run -2 --separate-stderr dlqsink --file x --delivery exactly-once < /dev/null
	[[ "$stderr" == *"--delivery exactly-once needs a topic"* ]]
	run -2 --separate-stderr dlqsink -b "$KAFKA_BROKERS" -t "$topic" --delivery exactly-once < /dev/null
	[[ "$stderr" == *"needs --checkpoint-store"* ]]
	# at least once on request: no transaction, everything delivered at once
	envelopes 1 2 | dlqsink -b "$KAFKA_BROKERS" -t "$topic" --job "j-$topic" \
		--checkpoint-store "file://$PWD/store" --delivery at-least-once
	[ "$(records_as "$topic" read_committed)" = "$(envelopes 1 2)" ]
}
