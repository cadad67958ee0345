#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# evvalidate.bats: the data contract, dead letters and their accounting.
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR" || return
	FIX="$EVPIPE_ROOT/tests/fixtures/evvalidate"
	CONTRACT="$EVPIPE_ROOT/contracts/event.schema.json"
}

# The bad cases of bad.tsv as input lines, interleaved with the valid records, plus blank lines.
build_input() {
	: > want.reasons
	: > want.raw
	local n=0 reason path line
	while IFS=$'\t' read -r reason path line; do
		case "$reason" in '#'*) continue ;; esac
		printf '%b\n' "$line" >> in.ndjson
		printf '%b\n' "$line" >> want.raw
		[ "$path" = - ] && path=
		printf '%s\t%s\n' "$reason" "$path" >> want.reasons
		n=$((n + 1))
		if [ $((n % 7)) = 0 ]; then
			sed -n "$((n / 7))p" "$FIX/valid.ndjson" >> in.ndjson
			echo >> in.ndjson
		fi
	done < "$FIX/bad.tsv"
	BAD=$n
}

@test "every bad record is dead-lettered once with its reason and its exact bytes; valid ones pass unchanged" {
	build_input
	[ "$BAD" -ge 30 ]
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq.ndjson < in.ndjson
	printf '%s\n' "$output" > out.ndjson
	# valid records, byte for byte and in order
	grep -a -F -x -f "$FIX/valid.ndjson" in.ndjson > want.valid
	assert_same_file out.ndjson want.valid
	# dead letters: one per bad line, in order, with reason and path
	[ "$(wc -l < dlq.ndjson)" -eq "$BAD" ]
	jq -r '[.reason, .error.path] | @tsv' dlq.ndjson > got.reasons
	assert_same_file got.reasons want.reasons
	# and the original bytes, whether kept as raw or as raw_b64
	jq -j 'if .raw_b64 then .raw_b64 else (.raw | @base64) end + "\n"' dlq.ndjson |
		while read -r b; do printf '%s' "$b" | base64 -d; echo; done > got.raw
	assert_same_file got.raw want.raw
	# every envelope says where and when
	[ "$(jq -s 'map(select((.line | type) == "number" and (.at | type) == "number")) | length' dlq.ndjson)" -eq "$BAD" ]
	[[ "$stderr" == *"dead-lettered"* ]]
}

@test "in = valid + dead-lettered + skipped, in the metrics" {
	build_input
	mkfifo hold
	{ cat in.ndjson; cat hold; } | evvalidate --contract "$CONTRACT" --dlq dlq.ndjson \
		--metrics-addr 127.0.0.1:0 > out.ndjson 2> err 3>&- &
	pid=$!
	exec 7<> hold
	wait_for 20 grep -q 'serving metrics' err
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err)
	wait_for 20 bash -c "curl -sf '$url' | grep -q '^evpipe_records_in_total{.*} [1-9]'"
	sleep 0.5
	curl -sf "$url" > metrics
	exec 7>&-
	wait "$pid"
	total=$(grep -a -c . in.ndjson)
	blank=$(grep -a -c "^$" in.ndjson)
	get() { awk -v m="$1" '$1 ~ "^"m"[{]" { s += $2 } END { print s + 0 }' metrics; }
	[ "$(get evpipe_records_in_total)" -eq "$total" ]
	[ "$(get evpipe_records_skipped_total)" -eq "$blank" ]
	[ "$(get evpipe_records_out_total)" -eq "$(wc -l < out.ndjson)" ]
	[ "$(get evpipe_dead_letters_total)" -eq "$(wc -l < dlq.ndjson)" ]
	[ $(($(get evpipe_records_out_total) + $(get evpipe_dead_letters_total))) -eq "$total" ]
	grep -q '^evpipe_dead_letters_total{tool="evvalidate",job="evpipe",reason="encoding"} 4$' metrics
}

@test "a truncated last line, an over-long line and --all-errors" {
	printf '{"event_id":"e1","event_type":"click","user_id":"u1","ts":1732400000000}\n' > in
	{ head -c 3000 /dev/zero | tr '\0' a | sed 's/^/{"event_id":"/; s/$/"}/'; echo; } >> in
	printf '{"event_type":"nope","ts":"x","extra":1}\n{"event_id":"e2"' >> in
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq --max-line-bytes 1KiB --all-errors < in
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .reason dlq | paste -sd,)" = "too_long,schema,truncated" ]
	[ "$(sed -n 1p dlq | jq -r .raw | wc -c)" -eq 3016 ]
	[ "$(sed -n 2p dlq | jq '.errors | length')" -ge 4 ]
	[ "$(sed -n 3p dlq | jq -r .raw)" = '{"event_id":"e2"' ]
}

@test "control lines go to both outputs, in order" {
	cat > in <<-'EOF'
		{"event_id":"e1","event_type":"click","user_id":"u1","ts":1732400000000}
		{"__evpipe":"watermark","ts":5}
		bad
		{"__evpipe":"barrier","id":1,"ts":6}
		{"event_id":"e2","event_type":"click","user_id":"u1","ts":1732400000000}
	EOF
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq < in
	[ "$(jq -c -r '.__evpipe // .event_id' <<<"$output" | paste -sd,)" = "e1,watermark,barrier,e2" ]
	[ "$(jq -c -r '.__evpipe // .reason' dlq | paste -sd,)" = "watermark,parse,barrier" ]
}

@test "without --dlq each dead letter is reported on stderr" {
	printf 'nope\n{"event_id":"e1","event_type":"click","user_id":"u1","ts":1732400000000}\n' > in
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" < in
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == *"evvalidate: line 1: parse"* ]]
}

@test "a contract with a keyword it does not support is refused at start" {
	echo '{"type":"object","unknownKeyword":1}' > c.json
	run -2 --separate-stderr evvalidate --contract c.json < /dev/null
	[[ "$stderr" == *"unknownKeyword"* ]]
	run -2 --separate-stderr evvalidate --contract /nonexistent < /dev/null
	[[ "$stderr" == *"/nonexistent"* ]]
}

@test "a format it does not assert is refused at start unless taken as an annotation; the others are asserted" {
	echo '{"properties":{"site":{"format":"idn-hostname"},"host":{"format":"hostname"}}}' > c.json
	run -2 --separate-stderr evvalidate --contract c.json < /dev/null
	[[ "$stderr" == "evvalidate: contract 'c.json': unsupported format 'idn-hostname' at '#/properties/site': the formats asserted are "*" (--formats-as-annotations accepts the others unchecked)"* ]]
	printf '%s\n' '{"site":"anything","host":"example.com"}' '{"site":"x","host":"-bad-"}' > in
	run -0 --separate-stderr evvalidate --formats-as-annotations --contract c.json --dlq dlq < in
	[ "$output" = '{"site":"anything","host":"example.com"}' ]
	[ "$(jq -r '[.error.path, .error.keyword] | join(" ")' dlq)" = "/host format" ]
	# hostname, uri, uri-reference, json-pointer, relative-json-pointer and regex are asserted
	cat > c.json <<-'JSON'
		{"properties":{"h":{"format":"hostname"},"u":{"format":"uri"},
		 "r":{"format":"uri-reference"},"p":{"format":"json-pointer"},
		 "q":{"format":"relative-json-pointer"},"x":{"format":"regex"}}}
	JSON
	printf '%s\n' '{"h":"a.example","u":"https://a.example/x?y#z","r":"../x","p":"/a/~1b","q":"1/a","x":"^a+$"}' \
		'{"h":"a_b"}' '{"u":"/relative"}' '{"r":"bad ref"}' '{"p":"a/b"}' '{"q":"-1"}' '{"x":"(a"}' > in
	run -0 --separate-stderr evvalidate --contract c.json --dlq dlq2 < in
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .error.path dlq2 | paste -sd,)" = "/h,/u,/r,/p,/q,/x" ]
}

@test "bad records from Kafka land in the dead-letter topic with their provenance, and replay" {
	need_services
	src=$(new_topic vsrc)
	dlq=$(new_topic vdlq)
	build_input
	# One message per line, blank lines included (kin skips them when producing).
	kin -P -b "$KAFKA_BROKERS" -t "$src" -p 0 < in.ndjson
	kin -C -b "$KAFKA_BROKERS" -t "$src" -e --meta-field _src |
		evvalidate --contract "$CONTRACT" --meta-field _src --dlq >(dlqsink -b "$KAFKA_BROKERS" -t "$dlq") \
		> valid.ndjson
	wait_for 30 bash -c "[ \$(kin -C -b '$KAFKA_BROKERS' -t '$dlq' -e 2>/dev/null | wc -l) -ge $BAD ]"
	kin -C -b "$KAFKA_BROKERS" -t "$dlq" -e -J > dlq.json
	[ "$(wc -l < dlq.json)" -eq "$BAD" ]
	# the same reasons as from a file: provenance changes nothing but "source"
	jq -r '.payload | fromjson | [.reason, .error.path] | @tsv' dlq.json | sort > got.reasons
	sort want.reasons > want.sorted
	assert_same_file got.reasons want.sorted
	# keyed by reason, with the source offset of each
	[ "$(jq -r 'select(.key != (.payload | fromjson | .reason))' dlq.json | wc -l)" -eq 0 ]
	jq -r '.payload | fromjson | [.source.topic, .source.partition] | @tsv' dlq.json | sort -u > src
	[ "$(cat src)" = "$(printf '%s\t0' "$src")" ]
	[ "$(jq -r '.payload | fromjson | .source.offset' dlq.json | sort -u | wc -l)" -eq "$BAD" ]
	# the records, and kin's end line (kin -e feeding a pipeline says the stream is finished)
	[ "$(grep -vc '^{"__evpipe"' valid.ndjson)" -eq "$(grep -a -c -F -x -f "$FIX/valid.ndjson" in.ndjson)" ]
	[ "$(tail -n 1 valid.ndjson)" = '{"__evpipe":"end"}' ]
	# every dead letter holds the exact bytes that were produced
	jq -j '.payload | fromjson | if .raw_b64 then .raw_b64 else (.raw | @base64) end + "\n"' dlq.json |
		while read -r b; do printf '%s' "$b" | base64 -d; echo; done | sort > got.raw
	sort want.raw > want.raw.sorted
	assert_same_file got.raw want.raw.sorted
	# replay the schema failures: the original bytes come back
	dlqsink replay -b "$KAFKA_BROKERS" -t "$dlq" --reason schema > replayed
	[ "$(wc -l < replayed)" -eq "$(grep -c '^schema' want.reasons)" ]
	grep -F -x -f replayed want.raw > /dev/null
}

@test "dead letters fixed and replayed from the topic flow through" {
	need_services
	src=$(new_topic fsrc)
	dlq=$(new_topic fdlq)
	for i in 1 2 3; do
		printf '{"event_id":"f%d","event_type":"click","user_id":"u","ts":1732400000000,"debug":true}\n' "$i"
	done | kin -P -b "$KAFKA_BROKERS" -t "$src"
	validate() {
		kin -C -b "$KAFKA_BROKERS" -t "$1" -e --meta-field _src |
			evvalidate --contract "$CONTRACT" --meta-field _src --dlq dead.ndjson
	}
	run -0 --separate-stderr validate "$src"
	[ "$output" = '{"__evpipe":"end"}' ] # no record is valid; kin's end line goes on
	dlqsink -b "$KAFKA_BROKERS" -t "$dlq" < dead.ndjson
	# the fix: drop the field the contract does not allow; then re-inject
	fixed=$(new_topic fixed)
	dlqsink replay -b "$KAFKA_BROKERS" -t "$dlq" --reason schema | jq -c 'del(.debug)' |
		kin -P -b "$KAFKA_BROKERS" -t "$fixed"
	run -0 --separate-stderr validate "$fixed"
	[ "$(grep -v '^{"__evpipe"' <<<"$output" | jq -r .event_id | sort | paste -sd,)" = "f1,f2,f3" ]
}

@test "with checkpoints, a last line cut off by a stage that died is not a record (a restore replays it)" {
	good='{"event_id":"e1","event_type":"click","user_id":"u1","ts":1732400000000,"value":1.5}'
	printf '%s\n{"event_id":"e2","event_ty' "$good" > torn.ndjson
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq.ndjson \
		--checkpoint-store "file://$BATS_TEST_TMPDIR/ck" < torn.ndjson
	[ "$output" = "$good" ]
	[ ! -s dlq.ndjson ]
	[[ $stderr == *"the input ended in the middle of a line"* ]]
	# without checkpoints nothing replays it: it is a dead letter, with its bytes
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq2.ndjson < torn.ndjson
	[ "$(jq -r .raw dlq2.ndjson)" = '{"event_id":"e2","event_ty' ]
}

@test "checkpoint options are checked at start as chsink and dlqsink check them: a bad store or --restore without one exits 1" {
	good='{"event_id":"e1","event_type":"click","user_id":"u1","ts":1732400000000,"value":1.5}'
	run -1 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq.ndjson \
		--checkpoint-store bogus://x <<<"$good"
	[ "$output" = "" ]
	[[ $stderr == *"evvalidate: checkpoints: unsupported checkpoint store scheme 'bogus'"* ]]
	run -1 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq.ndjson --restore latest <<<"$good"
	[ "$output" = "" ]
	[[ $stderr == *"evvalidate: checkpoints: --restore needs --checkpoint-store"* ]]
	# the same options as the sinks take them
	run -1 --separate-stderr chsink --url http://127.0.0.1:9 --table t.t --restore latest <<<"$good"
	[[ $stderr == *"chsink: checkpoints: --restore needs --checkpoint-store"* ]]
	# a store that opens and has no checkpoint yet: a restore of latest starts afresh
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq.ndjson \
		--checkpoint-store "file://$BATS_TEST_TMPDIR/ck" --restore latest <<<"$good"
	[ "$output" = "$good" ]
}
