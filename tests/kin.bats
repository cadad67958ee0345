#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# kin.bats: kin against the real Kafka broker of tests/services.
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	load helpers/broker
	need_services
	cd "$BATS_TEST_TMPDIR" || return
}

# N lines of JSON keyed by k, about 150 bytes each.
gen_records() {
	awk -v n="$1" -v keys="${2:-50}" 'BEGIN {
		pad = sprintf("%080d", 0)
		for (i = 1; i <= n; i++)
			printf "{\"k\":\"key%d\",\"seq\":%d,\"event_type\":\"click\",\"pad\":\"%s\"}\n", i % keys, i, pad
	}'
}

@test "200k records produced and consumed back byte-identical, in order per partition" {
	topic=$(new_topic bulk)
	gen_records 200000 > in.ndjson
	run -0 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" --key-field k < in.ndjson
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e -J -o beginning
	printf '%s\n' "$output" > out.json
	[ "$(wc -l < out.json)" -eq 200000 ]

	# The same bytes came back.
	jq -r .payload out.json | sort > got.sorted
	sort in.ndjson > want.sorted
	assert_same_file got.sorted want.sorted

	# Every partition holds its keys' records in the order they were produced.
	parts=$(jq -r .partition out.json | sort -u)
	[ "$(echo "$parts" | wc -l)" -eq 3 ]
	for p in $parts; do
		jq -r --argjson p "$p" 'select(.partition == $p) | .payload' out.json > "got.$p"
		jq -r --argjson p "$p" 'select(.partition == $p) | .key' out.json | sort -u > "keys.$p"
		awk 'NR == FNR { want["\"k\":\"" $0 "\""] = 1; next }
		     { match($0, /"k":"[^"]*"/); if (substr($0, RSTART, RLENGTH) in want) print }' \
			"keys.$p" in.ndjson > "want.$p"
		assert_same_file "got.$p" "want.$p"
		# and offsets are consecutive from 0
		jq -r --argjson p "$p" 'select(.partition == $p) | .offset' out.json > "offsets.$p"
		seq 0 $(($(wc -l < "got.$p") - 1)) > "want-offsets.$p"
		assert_same_file "offsets.$p" "want-offsets.$p"
	done
}

@test "SIGTERM after the consumed topic was deleted: kin still exits, with what it read" {
	topic=$(new_topic gone)
	printf '{"n":1}\n{"n":2}\n' | kin -P -b "$KAFKA_BROKERS" -t "$topic"
	kin -C -b "$KAFKA_BROKERS" -G "g-$topic" "$topic" --meta-field _src > out 2> err 3>&- &
	pid=$!
	both_read() { [ "$(grep -c '^{"_src"' out)" -eq 2 ]; }
	wait_for 20 both_read
	libs=${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/kafka-$KAFKA_VERSION/libs
	java -cp "$libs/*" "$EVPIPE_ROOT/tests/helpers/DeleteTopic.java" "$KAFKA_BROKERS" "$topic"
	sleep 2
	kill -TERM "$pid"
	# librdkafka 2.0 never finishes shutting down here; kin gives it 10 s
	for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "kin still runs 30 s after SIGTERM" >&2
		kill -9 "$pid"
		return 1
	fi
	wait "$pid"
	[ "$(tail -n 1 out)" = '{"__evpipe":"stop"}' ]
	[ "$(grep -c '^{"_src"' out)" -eq 2 ]
}

@test "-o takes beginning, end, absolute, relative and time offsets; e@ stops at a time" {
	topic=$(new_topic offsets)
	# 100 messages on partition 0 with timestamps 1700000000000 + i*1000.
	awk 'BEGIN { for (i = 0; i < 100; i++)
		printf "{\"partition\":0,\"ts\":%.0f,\"key\":null,\"payload\":\"m%d\"}\n", 1700000000000 + i * 1000, i }' > env.ndjson
	run -0 kin -P -J -b "$KAFKA_BROKERS" -t "$topic" < env.ndjson

	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -o beginning
	[ "${#lines[@]}" -eq 100 ] && [ "${lines[0]}" = m0 ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -o 90
	[ "${#lines[@]}" -eq 10 ] && [ "${lines[0]}" = m90 ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -o -5
	[ "${#lines[@]}" -eq 5 ] && [ "${lines[0]}" = m95 ] && [ "${lines[4]}" = m99 ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -o end
	[ -z "$output" ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -o s@1700000042000
	[ "${#lines[@]}" -eq 58 ] && [ "${lines[0]}" = m42 ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -o s@1700000042500
	[ "${lines[0]}" = m43 ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -o s@1700000010000 -o e@1700000020000
	[ "${#lines[@]}" -eq 10 ] && [ "${lines[0]}" = m10 ] && [ "${lines[9]}" = m19 ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -o beginning -c 3
	[ "${#lines[@]}" -eq 3 ] && [ "${lines[2]}" = m2 ]
	# the envelope carries the timestamps back
	run -0 --separate-stderr kin -C -J -b "$KAFKA_BROKERS" -t "$topic" -p 0 -o 7 -c 1
	[ "$(jq -r '[.ts, .tstype, .offset, .payload] | @tsv' <<<"$output")" = "$(printf '1700000007000\tcreate\t7\tm7')" ]
}

@test "-G resumes from the committed offsets after a restart" {
	topic=$(new_topic group)
	group="g-$topic"
	seq 1 300 | sed 's/.*/{"n":&}/' > in.ndjson
	run -0 kin -P -b "$KAFKA_BROKERS" -t "$topic" < in.ndjson
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -G "$group" -o beginning -c 120 "$topic"
	printf '%s\n' "$output" > first
	[ "$(wc -l < first)" -eq 120 ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -G "$group" -o beginning -e "$topic"
	printf '%s\n' "$output" > second
	[ "$(wc -l < second)" -eq 180 ]
	sort first second > all
	sort in.ndjson > want
	assert_same_file all want
	# A third run of the group finds nothing left.
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -G "$group" -e "$topic"
	[ -z "$output" ]
}

# The latest checkpoint of job j in store $1 has partition 0 at offset $2: its id in file id.
checkpoint_at() {
	ckpt --store "$1" --job j -J show latest 2>/dev/null |
		jq --argjson o "$2" 'select(.offsets | any(.partition == 0 and .offset == $o)) | .id' \
			> id
	[ -s id ] # (jq -e exits 0 on no input at all)
}

# kin $1 said it waits for a partition of its checkpoint, or ended.
waiting_or_ended() {
	grep -q "not assigned to this consumer" err 2>/dev/null || ! kill -0 "$1" 2>/dev/null
}

# A consumer of the group that died stays a member until its session times out, holding its
# partitions; a kin restarted from a checkpoint meanwhile gets only a share of them. With -e
# it must not take the end of its share for the end of the partitions it restored: the state
# restored with them (evwindow's open windows) would be fired without their records.
@test "-e with --restore waits for every partition of the checkpoint, one that another member holds too" {
	topic=$(new_topic restore-share)
	group="g-$topic"
	store="file://$BATS_TEST_TMPDIR/ck"
	ck=(--checkpoint-store "$store" --job j --checkpoint-interval 100ms)
	seq 1 20 | sed 's/.*/{"n":&}/' > first
	run -0 kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 < first
	kin -C -q -b "$KAFKA_BROKERS" -G "$group" "${ck[@]}" "$topic" > /dev/null 2> err.ck &
	local ckpt=$!
	wait_for 60 checkpoint_at "$store" 20 || { cat err.ck >&2; false; }
	kill "$ckpt"
	wait "$ckpt"
	seq 21 25 | sed 's/.*/{"n":&}/' > second
	run -0 kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 < second
	# Another member holds partition 0: the range assignor (the eager protocol, both members)
	# gives the member ids that sort first (client.id a) partitions 0 and 1 of 3.
	kin -C -b "$KAFKA_BROKERS" -G "$group" -X client.id=a -X partition.assignment.strategy=range \
		"$topic" > /dev/null 2> err.holder &
	local holder=$!
	wait_for 60 grep -q "assigned" err.holder 2>/dev/null
	kin -C -b "$KAFKA_BROKERS" -G "$group" -X client.id=b -X partition.assignment.strategy=range \
		-e "${ck[@]}" --restore "$(cat id)" \
		"$topic" > out 2> err &
	local restored=$!
	wait_for 60 waiting_or_ended "$restored"
	sleep 1
	kill -0 "$restored" || { cat err >&2; false; } # still waiting, not ended at its share's end
	[[ "$(cat err)" == *"kin: $topic [0] of the restored checkpoint is not assigned to this consumer"* ]]
	kill "$holder"
	wait "$holder"
	local status=0
	wait "$restored" || status=$?
	[ "$status" -eq 0 ] || { cat err >&2; false; }
	grep -v '"__evpipe"' out > got
	assert_same_file got second
	[ "$(tail -n 1 out)" = '{"__evpipe":"end"}' ]
}

@test "-J round trip keeps key, headers, timestamp, partition and binary payloads" {
	src=$(new_topic jsrc)
	dst=$(new_topic jdst)
	cat > env.ndjson <<-'EOF'
		{"partition":1,"ts":1600000000123,"key":"user-1","headers":["trace","abc","empty",null,"bin",{"b64":"AP8="}],"payload":"{\"a\":1}"}
		{"partition":2,"ts":1600000000456,"key_b64":"/wA=","payload_b64":"gIGC"}
		{"partition":0,"ts":1600000000789,"key":null,"payload":"line with \"quotes\" and \\ and \t tab"}
	EOF
	run -0 kin -P -J -b "$KAFKA_BROKERS" -t "$src" < env.ndjson
	run -0 --separate-stderr kin -C -J -b "$KAFKA_BROKERS" -t "$src" -e
	printf '%s\n' "$output" > first.json
	[ "$(wc -l < first.json)" -eq 3 ]
	kin -P -J -b "$KAFKA_BROKERS" -t "$dst" < first.json
	run -0 --separate-stderr kin -C -J -b "$KAFKA_BROKERS" -t "$dst" -e
	printf '%s\n' "$output" > second.json
	norm='[.partition, .ts, .tstype, .key, .key_b64, .headers, .payload, .payload_b64] | tojson'
	jq -c "$norm" first.json | sort > a
	jq -c "$norm" second.json | sort > b
	assert_same_file a b
	# and they are the values that went in
	jq -c '[.partition, .ts, .key, .key_b64, .headers, .payload, .payload_b64] | tojson' env.ndjson | sort > want
	jq -c '[.partition, .ts, .key, .key_b64, .headers, .payload, .payload_b64] | tojson' second.json | sort > got
	assert_same_file got want
}

@test "an unreachable broker is an error within the timeout, not a hang" {
	run -1 --separate-stderr timeout 20 kin -C -b 127.0.0.1:1 -t nothing --timeout 2s
	[[ "$stderr" == *"kin: cannot reach Kafka at '127.0.0.1:1'"* ]]
	run -1 --separate-stderr timeout 20 kin -P -b 127.0.0.1:1 -t nothing --timeout 2s <<<'{"a":1}'
	[[ "$stderr" == *"cannot reach Kafka"* ]]
	run -1 --separate-stderr timeout 20 kin -L -b 127.0.0.1:1 --timeout 2s
	[[ "$stderr" == *"cannot reach Kafka"* ]]
}

@test "a line over --max-line-bytes is reported and not produced; the rest is" {
	topic=$(new_topic long)
	{ echo '{"n":1}'; head -c 5000 /dev/zero | tr '\0' x; echo; echo '{"n":3}'; } > in
	run -1 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" --max-line-bytes 1KiB < in
	[[ "$stderr" == *"line 2: 5000 bytes is over --max-line-bytes 1024: not produced"* ]]
	[[ "$stderr" == *"1 line(s) were not produced"* ]]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e
	[ "$(sort <<<"$output")" = "$(printf '{"n":1}\n{"n":3}')" ]
}

@test "produce skips blank and control lines, and counts everything in its metrics" {
	topic=$(new_topic metrics)
	printf '{"n":1}\n\n{"__evpipe":"watermark","ts":5}\n{"n":2}\r\n{"n":3}' > in
	mkfifo ctl
	# Hold stdin open after the data so the metrics can be read while kin runs.
	{ cat in; echo; cat ctl; } | kin -P -b "$KAFKA_BROKERS" -t "$topic" --metrics-addr 127.0.0.1:0 \
		2> kin.err 3>&- &
	pid=$!
	exec 7<> ctl
	wait_for 20 grep -q 'serving metrics' kin.err
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' kin.err)
	wait_for 20 bash -c "curl -sf '$url' | grep -q 'evpipe_records_out_total{tool=\"kin\",job=\"evpipe\"} 3'"
	curl -sf "$url" > metrics
	exec 7>&-
	wait "$pid"
	grep -q 'evpipe_records_in_total{tool="kin",job="evpipe"} 5' metrics
	grep -q 'evpipe_records_skipped_total{tool="kin",job="evpipe",reason="blank"} 1' metrics
	grep -q 'evpipe_records_skipped_total{tool="kin",job="evpipe",reason="control"} 1' metrics
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e
	[ "$(sort <<<"$output")" = "$(printf '{"n":1}\n{"n":2}\n{"n":3}')" ]
}

# The metrics at $1 (saved in metrics) show a lag of 0 on three partitions and $2 records out.
caught_up() {
	curl -sf "$1" > metrics || return 1
	[ "$(grep -c '^evpipe_kafka_consumer_lag{.*} 0$' metrics)" -eq 3 ] &&
		grep -q "^evpipe_records_out_total{.*} $2\$" metrics
}

@test "consume exports consumer lag per partition" {
	topic=$(new_topic lag)
	# Null keys spread the messages over the three partitions.
	seq 1 1000 | sed 's/.*/{"n":&}/' | kin -P -b "$KAFKA_BROKERS" -t "$topic"
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -o beginning --metrics-addr 127.0.0.1:0 \
		-X statistics.interval.ms=200 2> kin.err > out 3>&- &
	pid=$!
	wait_for 20 grep -q 'serving metrics' kin.err
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' kin.err)
	# Once everything is consumed, every partition reports a lag of 0 and all 1000 records
	# are written. Both are waited for in one scrape: the lag counts what librdkafka handed
	# over, which a loaded machine may show before kin wrote the last batch of it.
	wait_for 30 caught_up "$url" 1000
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(wc -l < out)" -eq 1000 ]
	for p in 0 1 2; do
		grep -q "^evpipe_kafka_consumer_lag{tool=\"kin\",job=\"evpipe\",topic=\"$topic\",partition=\"$p\"} 0$" metrics
	done
	grep -q '^evpipe_records_out_total{tool="kin",job="evpipe"} 1000$' metrics
}

@test "-L lists brokers, topics and partitions, as JSON with -J" {
	topic=$(new_topic list)
	echo '{"n":1}' | kin -P -b "$KAFKA_BROKERS" -t "$topic"
	run -0 --separate-stderr kin -L -J -b "$KAFKA_BROKERS" -t "$topic"
	[ "$(jq -r '.topics[0].topic' <<<"$output")" = "$topic" ]
	[ "$(jq '.topics[0].partitions | length' <<<"$output")" -eq 3 ]
	[ "$(jq '.brokers | length' <<<"$output")" -eq 1 ]
	run -0 --separate-stderr kin -L -b "$KAFKA_BROKERS"
	[[ "$output" == *"topic \"$topic\" with 3 partitions:"* ]]
}

@test "SIGTERM while producing flushes what was read, then exits 0" {
	topic=$(new_topic term)
	mkfifo in
	kin -P -b "$KAFKA_BROKERS" -t "$topic" < in 2> kin.err 3>&- &
	pid=$!
	exec 7<> in
	seq 1 500 | sed 's/.*/{"n":&}/' >&7
	sleep 1
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	exec 7>&-
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e
	[ "${#lines[@]}" -eq 500 ]
}

@test "secrets are refused on the command line and taken from a file" {
	run -2 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t x -X sasl.password=hunter2
	[[ "$stderr" == *"refusing secret property 'sasl.password'"* ]]
	[[ "$stderr" != *hunter2* ]]
	printf 'client.id=from-file\n' > kafka.conf
	topic=$(new_topic conf)
	echo '{"n":1}' | EVPIPE_KAFKA_CONFIG=kafka.conf kin -P -b "$KAFKA_BROKERS" -t "$topic"
	run -0 --separate-stderr kin -C -F kafka.conf -b "$KAFKA_BROKERS" -t "$topic" -e
	[ "$output" = '{"n":1}' ]
}

# A sink that acknowledges barriers on the named pipe acks as stage $1, after the first $2 of
# them (the others are ignored, as by a sink that failed before they were durable).
ack_sink() {
	local stage=$1 upto=$2 id
	while IFS= read -r line; do
		case $line in
		'{"__evpipe":"barrier"'*)
			id=$(jq .id <<<"$line")
			[ "$id" -gt "$upto" ] || echo "$stage $id" >&9
			;;
		esac
		echo "$line"
	done 9>acks
}

@test "--commit-on-ack: the group commits only the offsets of the barriers every expected stage acknowledged" {
	topic=$(new_topic ack)
	group="g-$topic"
	seq 1 300 | sed 's/.*/{"n":&}/' > in.ndjson
	head -n 100 in.ndjson | kin -P -q -b "$KAFKA_BROKERS" -t "$topic" -p 0
	mkfifo acks recs
	# a slow stream (barriers between the records): acknowledged up to barrier 3 only
	ack_sink sink 3 < recs > out &
	kin -C -b "$KAFKA_BROKERS" -G "$group" --commit-on-ack acks --checkpoint-interval 100ms \
		--checkpoint-timeout 2s -v "$topic" 2> err > recs &
	pid=$!
	wait_for 30 grep -q 'assigned' err
	for i in $(seq 101 300); do
		sed -n "${i}p" in.ndjson
		[ $((i % 50)) -ne 0 ] || sleep 0.5
	done | kin -P -q -b "$KAFKA_BROKERS" -t "$topic" -p 0
	wait_for 30 test "$(grep -vc __evpipe out)" -eq 300
	kill -TERM "$pid"
	wait "$pid"
	grep -q 'barrier 3 acknowledged: its offsets committed' err
	[[ "$(cat err)" == *"barrier(s) not acknowledged: the offsets after the last acknowledged one are not committed"* ]]
	# barrier 3's offsets are committed, nothing after: a member of the group reads the rest
	# (with acknowledgements that never come, so that it commits nothing)
	kin -C -q -b "$KAFKA_BROKERS" -G "$group" -e --commit-on-ack /dev/null --checkpoint-timeout 1s \
		"$topic" | grep -v __evpipe > rest
	[ "$(wc -l < rest)" -gt 0 ]
	[ "$(wc -l < rest)" -lt 300 ]
	[ "$(head -n 1 rest)" = "$(sed -n "$((300 - $(wc -l < rest) + 1))p" in.ndjson)" ]

	# two expected stages: one acknowledgement is not enough; both are, and at the end kin
	# waits for them
	group2="$group-2"
	kin -C -q -b "$KAFKA_BROKERS" -G "$group2" -e --commit-on-ack acks --checkpoint-expect a,b \
		--checkpoint-timeout 2s "$topic" | ack_sink a 1000000 > /dev/null
	[ "$(kin -C -q -b "$KAFKA_BROKERS" -G "$group2" -e --commit-on-ack /dev/null \
		--checkpoint-timeout 1s "$topic" | grep -vc __evpipe)" -eq 300 ]
	kin -C -q -b "$KAFKA_BROKERS" -G "$group2" -e --commit-on-ack acks --checkpoint-expect a,b \
		"$topic" | ack_sink a 1000000 | ack_sink b 1000000 > /dev/null
	run -0 --separate-stderr kin -C -q -b "$KAFKA_BROKERS" -G "$group2" -e "$topic"
	[ -z "$output" ]
	# usage
	run -2 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" --commit-on-ack acks
	[[ "$stderr" == *"--commit-on-ack needs -C and -G"* ]]
}

# At least $2 messages in topic $1.
topic_has_at_least() {
	[ "$(kin -C -q -b "$KAFKA_BROKERS" -t "$1" -o beginning -e | wc -l)" -ge "$2" ]
}

# The broker down with messages queued (frozen with SIGSTOP: it is shared), then SIGTERM: kin -P
# flushes what it read, but for --timeout at most after the signal (it waited for
# message.timeout.ms, 5 minutes), and exits 1 saying how many were not delivered. The broker is
# resumed before anything is asserted.
@test "produce: the broker down, SIGTERM ends kin -P within --timeout, the messages not delivered said" {
	topic=$(new_topic frozen)
	echo '{"warm":1}' | kin -P -q -b "$KAFKA_BROKERS" -t "$topic"
	mkfifo in
	kin -P -b "$KAFKA_BROKERS" -t "$topic" --timeout 3s < in 2> err &
	pid=$!
	exec 7> in
	# kin connected (its start-up probe passed): a first message delivered
	gen_records 1 >&7
	wait_for 30 topic_has_at_least "$topic" 2
	pause_broker
	local t0=$SECONDS
	gen_records 100 >&7
	sleep 1
	kill -TERM "$pid"
	local ended=0
	for _ in $(seq 150); do
		kill -0 "$pid" 2> /dev/null || { ended=1; break; }
		sleep 0.1
	done
	local elapsed=$((SECONDS - t0)) status=0
	[ "$ended" = 1 ] || kill -KILL "$pid"
	wait "$pid" || status=$?
	resume_broker
	exec 7>&-
	cat err >&2
	echo "kin ended $elapsed s after the broker went down, exit status $status" >&2
	[ "$ended" = 1 ]
	[ "$status" -eq 1 ]
	grep -q "100 message(s) not delivered within --timeout of the stop signal" err
}
