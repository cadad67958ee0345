#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# trust.bats: control lines come only from evpipe's own tools (docs/design.md, Trust boundaries;
# ADR 0013): what anyone can produce to a topic never becomes a control line or two lines, and
# every stage refuses a control line that evpipe could not have written. And a stage that hangs
# fails checkpoints while it hangs. Against the real Kafka of tests/services.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	need_services
	cd "$BATS_TEST_TMPDIR" || return
	cat > contract.json <<-'EOF'
		{"type":"object","required":["ts","k"],"properties":{"ts":{"type":"integer"},"k":{"type":"string"}}}
	EOF
}

# Produce kin -J envelopes (stdin) to topic $1, on partition 0, so that the order is kept.
produce_envelopes() {
	kin -P -J -b "$KAFKA_BROKERS" -t "$1" -p 0
}

FORGED_WM='{"__evpipe":"watermark","ts":4102444800000}' # year 2100

@test "a payload with a newline and a forged watermark in it moves no time: dead-lettered with its bytes (plain and --meta-field)" {
	topic=$(new_topic nl)
	t0=1732400000000
	# Records in minute 0, then one whose payload carries a second line (a watermark in 2100),
	# then more in minute 0: late only if that watermark had been believed.
	{
		for i in 1 2 3; do jq -cn --argjson ts $((t0 + i * 1000)) '{payload: ({ts: $ts, k: "a"} | tojson)}'; done
		jq -cn --arg wm "$FORGED_WM" --argjson ts $((t0 + 4000)) '{payload: (({ts: $ts, k: "a"} | tojson) + "\n" + $wm)}'
		jq -cn --arg wm "$FORGED_WM" '{payload: ("{\"ts\":1,\"k\":\"a\"}\r" + $wm)}'
		for i in 5 6 7; do jq -cn --argjson ts $((t0 + i * 1000)) '{payload: ({ts: $ts, k: "a"} | tojson)}'; done
	} > env.ndjson
	produce_envelopes "$topic" < env.ndjson
	for mode in plain meta; do
		meta=()
		[ $mode = plain ] || meta=(--meta-field _src)
		run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e "${meta[@]}"
		printf '%s\n' "$output" > consumed
		run -0 --separate-stderr bash -c "evvalidate --contract contract.json ${meta[*]} --dlq dlq.$mode < consumed |
			evwindow --key k --tumble 1m --late late.$mode"
		# none of the good records is late: the window holds all six
		[ "$(grep -vc '"__evpipe"' "late.$mode" || true)" -eq 0 ]
		[ "$(jq -s -c 'map(select(.count)) | map(.count)' <<<"$output")" = "[6]" ]
		# one line per message (and kin's own end line with --meta-field), none of them forged
		[ "$(grep -vc '^{"__evpipe":"end"}$' consumed)" -eq 8 ]
		[ "$(grep -c '"__evpipe":"watermark"' consumed || true)" -eq 0 ]
		[ "$(grep -c '^{"__evpipe_rejected":' consumed)" -eq 2 ]
		# both dead letters keep the message's bytes exactly, with where it came from
		jq -r 'select(.reason) | .reason' "dlq.$mode" > reasons
		[ "$(paste -sd, reasons)" = "embedded_newline,embedded_newline" ]
		jq -c 'select(.reason) | .raw' "dlq.$mode" > got
		jq -c 'select(.payload | test("[\r\n]")) | .payload' env.ndjson > want
		assert_same_file got want
		[ "$(jq -r 'select(.reason) | .source.offset' "dlq.$mode" | paste -sd,)" = "3,4" ]
	done
	# -J keeps each message one line, whatever it holds
	run -0 --separate-stderr kin -C -J -b "$KAFKA_BROKERS" -t "$topic" -e
	[ "${#lines[@]}" -eq 8 ]
	[ "$(jq -r .payload <<<"$output" | grep -c '__evpipe')" -eq 2 ]
}

@test "a payload that is a control line (stop, barrier) does not act: dead-lettered as reserved" {
	topic=$(new_topic forged)
	{
		jq -cn '{payload: "{\"ts\":1732400001000,\"k\":\"a\"}"}'
		jq -cn '{payload: "{\"__evpipe\":\"stop\"}"}'
		jq -cn '{payload: " {\"__evpipe\":\"barrier\",\"id\":1,\"ts\":0}"}'
		jq -cn '{payload: "{\"__evpipe_rejected\":{\"topic\":\"x\",\"partition\":0,\"offset\":0,\"ts\":0,\"wrapped\":true,\"rejected\":\"reserved\"},\"payload\":\"{}\"}"}'
		jq -cn '{payload: "{\"ts\":1732400002000,\"k\":\"a\"}"}'
	} > env.ndjson
	produce_envelopes "$topic" < env.ndjson
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e --meta-field _src
	printf '%s\n' "$output" > consumed
	run -0 --separate-stderr bash -c 'evvalidate --contract contract.json --meta-field _src --dlq dlq < consumed |
		evwindow --key k --tumble 1m'
	# the stop did not suspend the stream: both records are in the fired window
	[ "$(jq -s -c 'map(select(.count)) | map(.count)' <<<"$output")" = "[2]" ]
	# kin's own end line is the only control line
	[ "$(grep -c '"__evpipe":' consumed)" -eq 1 ]
	[ "$(tail -n 1 consumed)" = '{"__evpipe":"end"}' ]
	[ "$(jq -r 'select(.reason) | .reason' dlq | paste -sd,)" = "reserved,reserved,reserved" ]
	jq -c 'select(.reason) | .raw' dlq > got
	jq -c 'select(.payload | test("__evpipe")) | .payload' env.ndjson > want
	assert_same_file got want
}

# Feed tool "$@" the lines of file in: it must refuse the last one, exit 1, and say why.
refuses() {
	run -1 --separate-stderr "$@" < in
	[[ $stderr == *"impossible control line"* ]]
}

@test "every stage refuses impossible control lines: barrier ids -1, 999999999999, repeated or going back, a watermark in 2100, an unknown type" {
	mkdir -p dlq
	good='{"__evpipe":"barrier","id":4,"ts":0}'
	for bad in '{"__evpipe":"barrier","id":-1,"ts":0}' '{"__evpipe":"barrier","id":999999999999,"ts":0}' \
		"$good" '{"__evpipe":"barrier","id":3,"ts":0}' "$FORGED_WM" '{"__evpipe":"nonsense"}' \
		'{"__evpipe":"watermark"}'; do
		printf '%s\n' '{"ts":1732400001000,"k":"a"}' "$good" "$bad" > in
		refuses evvalidate --contract contract.json
		[[ $stderr == *"line 3: impossible control line"* ]]
		refuses evwindow --key k --tumble 1m
		refuses dlqsink --file dlq/out
	done
	# what evpipe's tools write passes
	printf '%s\n' '{"__evpipe":"barrier","id":4,"ts":0}' '{"__evpipe":"watermark","ts":1732400001000}' \
		'{"__evpipe":"barrier","id":5,"ts":0}' '{"__evpipe":"end"}' > in
	run -0 --separate-stderr evwindow --key k --tumble 1m < in
	[ "${#lines[@]}" -eq 4 ]
}

@test "assign and revoke lines go through every stage in order; malformed ones are refused" {
	mkdir -p dlq
	assign='{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":5},{"topic":"t","partition":1}]}'
	revoke='{"__evpipe":"revoke","partitions":[{"topic":"t","partition":1,"offset":9}]}'
	printf '%s\n' "$assign" '{"ts":1732400001000,"k":"a"}' "$revoke" '{"__evpipe":"end"}' > in
	run -0 --separate-stderr evvalidate --contract contract.json < in
	[ "${lines[0]}" = "$assign" ] && [ "${lines[2]}" = "$revoke" ]
	printf '%s\n' "$output" > validated
	run -0 --separate-stderr evwindow --key k --tumble 1m < validated
	[ "${lines[0]}" = "$assign" ] && [ "${lines[1]}" = "$revoke" ]
	run -0 --separate-stderr dlqsink --file dlq/out < in
	[ "$(grep -c __evpipe dlq/out)" -eq 0 ]
	for bad in '{"__evpipe":"revoke"}' '{"__evpipe":"assign","topic":"t","partitions":[0]}' \
		'{"__evpipe":"assign","partitions":[{"topic":"a/../b","partition":0}]}' \
		'{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":-1}]}'; do
		printf '%s\n' '{"ts":1732400001000,"k":"a"}' "$assign" "$bad" > in
		refuses evvalidate --contract contract.json
		[[ $stderr == *"line 3: impossible control line"*"malformed"* ]]
		refuses evwindow --key k --tumble 1m
		refuses dlqsink --file dlq/out
	done
}

@test "a stage that hangs (never reads): kin fails the checkpoints while blocked, the blocked time grows, the job stops past --tolerable-failures" {
	topic=$(new_topic hang)
	awk 'BEGIN { pad = sprintf("%0200d", 0); for (i = 1; i <= 5000; i++) printf "{\"n\":%d,\"pad\":\"%s\"}\n", i, pad }' |
		kin -P -b "$KAFKA_BROKERS" -t "$topic"
	mkfifo pipe
	exec 9<> pipe # a reader that never reads: the pipe fills and kin's write blocks
	kin -C -b "$KAFKA_BROKERS" -t "$topic" --meta-field _src --metrics-addr 127.0.0.1:0 \
		--checkpoint-store "file://$BATS_TEST_TMPDIR/ck" --checkpoint-expect stuck \
		--checkpoint-interval 300ms --checkpoint-timeout 1s --tolerable-failures 5 \
		> pipe 2> kin.err 3>&- &
	pid=$!
	wait_for 20 grep -q 'serving metrics' kin.err
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' kin.err)
	metric() { curl -sf "$url" | awk -v m="$1" 'index($0, m) == 1 { print $NF }'; }
	failed() { [ "$(metric 'evpipe_checkpoints_total{tool="kin",job="evpipe",outcome="failed"}')" -ge "$1" ]; }
	wait_for 10 failed 1
	blocked1=$(metric 'evpipe_output_blocked_seconds_total{tool="kin",job="evpipe",output="stdout"}')
	sleep 1.5
	kill -0 "$pid" # still hanging, not stopped yet
	blocked2=$(metric 'evpipe_output_blocked_seconds_total{tool="kin",job="evpipe",output="stdout"}')
	awk -v a="$blocked1" -v b="$blocked2" 'BEGIN { exit !(b >= a + 1) }'
	wait_for 5 failed 2
	# the sixth failure in a row is one too many: kin stops, exit 1, saying why
	exited() { grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; }
	wait_for 30 exited
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 1 ]
	grep -q '6 consecutive checkpoints failed (more than --tolerable-failures 5): stopping' kin.err
	run -1 grep -q 'cannot write standard output' kin.err
	exec 9<&-
}
