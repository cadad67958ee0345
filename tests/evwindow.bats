#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# evwindow.bats: event-time windows, watermarks and lateness.
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common

setup() {
	cd "$BATS_TEST_TMPDIR" || return
	FIX="$EVPIPE_ROOT/tests/fixtures/evwindow"
	AGGS=count,sum:value,min:value,max:value,avg:value,uniq:user_id,first:user_id,last:user_id
	SYNC='{"__evpipe":"watermark","ts":1}'
}

# golden-tumble.rows was checked by hand against golden-in.ndjson (watermark = max - 5 s - 1):
# - [22:13, 22:14) fires when the record at 22:14:10 moves the watermark to 22:14:04.999, with
#   click (1 + 2.5) and view (no value: the numeric aggregates are null);
# - the click at 22:13:35 arrives after that, within the 30 s lateness: click version 2;
# - the record at 22:15:40 fires [22:14, 22:15) and drops [22:13, 22:14)'s state, so the click
#   at 22:13:01 is late; the end of input fires [22:15, 22:16).
@test "tumbling windows: rows, versions and lateness as in the golden file" {
	run -0 --separate-stderr evwindow --tumble 1m --key event_type --agg "$AGGS" \
		--out-of-orderness 5s --lateness 30s --late late.ndjson < "$FIX/golden-in.ndjson"
	printf '%s\n' "$output" > rows
	assert_same_file rows "$FIX/golden-tumble.rows"
	[ "$(jq -r .reason late.ndjson | grep -v '^null$' | paste -sd,)" = "late,missing_ts,bad_value" ]
	# the control line went to both outputs
	[ "$(grep -c '__evpipe' late.ndjson)" -eq 1 ]
	[ "$(sed -n 2p late.ndjson | jq -r .raw)" = "$(sed -n 8p "$FIX/golden-in.ndjson")" ]
}

@test "the same input gives the same output bytes" {
	scripts="$EVPIPE_ROOT/scripts"
	"$scripts/gen-events" 20000 5 > in
	evwindow --tumble 10s --key event_type --agg "$AGGS" --out-of-orderness 1s < in > a
	evwindow --tumble 10s --key event_type --agg "$AGGS" --out-of-orderness 1s < in > b
	assert_same_file a b
	# every event is counted once: the final versions add up to the input
	[ "$(jq -s 'map(.count) | add' a)" -eq 20000 ]
}

@test "sliding windows count each record in size/every windows" {
	"$EVPIPE_ROOT/scripts/gen-events" 6000 2 > in
	run -0 --separate-stderr evwindow --slide 1m --every 20s --agg count < in
	[ "$(jq -s 'map(.count) | add' <<<"$output")" -eq 18000 ]
	[ "$(jq -r '.window_start' <<<"$output" | sort -u | wc -l)" -eq "$(wc -l <<<"$output")" ]
}

@test "per-partition watermarks: the slow partition holds windows back" {
	cat > in <<-'EOF'
		{"_src":{"topic":"t","partition":0,"offset":0,"ts":0},"ts":1000}
		{"_src":{"topic":"t","partition":1,"offset":0,"ts":0},"ts":1000}
		{"_src":{"topic":"t","partition":0,"offset":1,"ts":0},"ts":25000}
		{"_src":{"topic":"t","partition":1,"offset":1,"ts":0},"ts":9000}
		{"__evpipe":"barrier","id":1,"ts":0}
		{"_src":{"topic":"t","partition":1,"offset":2,"ts":0},"ts":21000}
	EOF
	run -0 --separate-stderr evwindow --tumble 10s --agg count < in
	# [0, 10 s) fires only when partition 1 passes 10 s, after the barrier; [20 s, 30 s) at the
	# end; the barrier (no checkpoints) waits for both, open when it came; without a key each
	# partition has its own window (state is per partition)
	[ "$(jq -c -r 'if .__evpipe then .__evpipe else "\(.window_start[17:19])+\(.count)" end' <<<"$output" | paste -sd,)" = "00+1,00+2,20+1,20+1,barrier" ]
}

# State is per Kafka partition: correctly keyed input gives the rows it gave before, in any
# number of partitions; a key in two partitions is windowed in each, counted and said once.
@test "keys spanning partitions: windowed apart, counted in a metric, warned once per key" {
	src() { printf '{"_src":{"topic":"t","partition":%d,"offset":%d,"ts":0},"ts":%d,"k":"%s"}\n' "$@"; }
	{ src 0 0 1000 a; src 1 0 1500 b; src 0 1 2000 a; src 1 1 3000 b; src 0 2 12000 a; src 1 2 12500 b; } > keyed
	run -0 --separate-stderr evwindow --tumble 10s --key k < keyed
	printf '%s\n' "$output" > scoped
	jq -c 'del(._src)' keyed | evwindow --tumble 10s --key k > unscoped
	assert_same_file scoped unscoped
	[ "$stderr" = "evwindow: 6 record(s): 4 row(s) written, 0 late, 0 dead-lettered; 0 blank line(s) skipped" ]
	# a in both partitions, three times in partition 1 after its first in partition 0
	{ head -4 keyed; src 1 3 4000 a; src 1 4 5000 a; src 0 3 6000 a; src 1 5 7000 a; tail -2 keyed; } > crossed
	mkfifo hold
	{ cat crossed; cat hold; } | evwindow --tumble 10s --key k --metrics-addr 127.0.0.1:0 \
		> rows 2> err &
	exec 7<> hold
	wait_for 20 grep -q 'serving metrics' err
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err)
	wait_for 20 bash -c "curl -sf '$url' | grep -q '^evpipe_keys_cross_partition_total{.*} 3$'"
	curl -sf "$url" > metrics
	exec 7>&-
	wait
	[ "$(awk '$1 == "evpipe_keys_cross_partition_total{tool=\"evwindow\",job=\"evpipe\"}" { print $2 }' metrics)" -eq 3 ]
	[ "$(grep -c 'spans\|seen first in partition' err)" -eq 1 ]
	grep -q 'key {"k":"a"} of partition t/1 was seen first in partition t/0' err
	# two rows for [0, 10 s) and a, one per partition: 3 records of partition 0, 3 of partition 1
	[ "$(jq -c -r 'select(.k == "a" and .window_start[17:19] == "00") | "\(.count)/\(.version)"' rows | paste -sd,)" = "3/3,3/3" ]
}

@test "--keys-span-partitions: input not keyed by the aggregation key, one state for every partition" {
	src() { printf '{"_src":{"topic":"t","partition":%d,"offset":%d,"ts":0},"ts":%d,"k":"%s"}\n' "$@"; }
	{ src 0 0 1000 a; src 1 0 1500 a; src 0 1 2000 b; src 1 1 3000 a; src 0 2 12000 a; src 1 2 12500 b; } > unkeyed
	run -0 --separate-stderr evwindow --tumble 10s --key k --keys-span-partitions < unkeyed
	printf '%s\n' "$output" > got
	jq -c 'del(._src)' unkeyed | evwindow --tumble 10s --key k > want
	assert_same_file got want
	[ "$stderr" = "evwindow: 6 record(s): 4 row(s) written, 0 late, 0 dead-lettered; 0 blank line(s) skipped" ]
	[ "$(jq -c -r 'select(.k == "a" and .window_start[17:19] == "00") | .count' got)" = 3 ]
	# its state is not another job's: a --state-dir of partition-scoped windows is refused
	printf '%s\n' '{"__evpipe":"stop"}' | cat unkeyed - | evwindow --tumble 10s --key k --state-dir s > /dev/null 2>&1
	run -1 --separate-stderr evwindow --tumble 10s --key k --keys-span-partitions --state-dir s < /dev/null
	[[ "$stderr" == *"belongs to other windows or aggregates"* ]]
}

@test "without checkpoints a barrier waits until the windows open before it are final (lateness passed)" {
	cat > in <<-'EOF'
		{"ts":1000}
		{"__evpipe":"barrier","id":1,"ts":0}
		{"ts":12000}
		{"__evpipe":"barrier","id":2,"ts":0}
		{"ts":14000}
		{"ts":15000}
		{"__evpipe":"watermark","ts":20000}
		{"ts":24000}
		{"__evpipe":"barrier","id":3,"ts":0}
	EOF
	run -0 --separate-stderr evwindow --tumble 10s --lateness 5s --agg count < in
	# [0, 10 s) fires at 12 s (the barrier still waits: a late record may update it) and is
	# final at 15 s: barrier 1 goes; barrier 2 waits for [10 s, 20 s) to be final (25 s: the
	# end), and barrier 3 after it
	[ "$(jq -c -r 'if .__evpipe then "\(.__evpipe)\(.id // "")" else "\(.window_start[17:19])+\(.count)" end' <<<"$output" | paste -sd,)" = "00+1,barrier1,10+3,watermark,20+1,barrier2,barrier3" ]
}

@test "a record far in the future is a dead letter and does not move time" {
	printf '{"ts":1000}\n{"ts":999999999999}\n{"ts":2000}\n' > in
	run -0 --separate-stderr evwindow --tumble 10s --agg count --max-future 1h --late late < in
	[ "$output" = '{"window_start":"1970-01-01 00:00:00","window_end":"1970-01-01 00:00:10","count":2,"version":2}' ]
	[ "$(jq -r .reason late)" = future ]
}

# The reference model (tests/window_ref.py, a plain simulation in Python) and evwindow on the
# same seeded random streams: out-of-order records within the bound, late ones within and
# beyond the lateness, bad records and three partitions. Rows and dead letters must be equal,
# byte for byte (but for the dead letters' wall-clock "at", and the parser's own words for
# a line that is not JSON).
compare_with_model() {
	local seed=$1
	shift
	"$EVPIPE_ROOT/tests/window_ref.py" --generate 20000 --seed "$seed" --partitions 3 --late-pct 2 > in
	rm -f want.late got.late # both append
	"$EVPIPE_ROOT/tests/window_ref.py" "$@" --late want.late < in > want.rows
	evwindow "$@" --late got.late < in > got.rows
	[ -s want.rows ]
	assert_same_file got.rows want.rows
	local norm='del(.at) | if .reason == "parse" then del(.error.message) else . end'
	jq -c "$norm" got.late > got.late.cmp
	jq -c "$norm" want.late > want.late.cmp
	assert_same_file got.late.cmp want.late.cmp
	[ "$(jq -r 'select(.reason == "late") | .reason' want.late | wc -l)" -gt 0 ]
}

@test "tumbling windows equal the reference model on random streams" {
	for seed in 1 2 3; do
		compare_with_model "$seed" --tumble 1m --key event_type --agg "$AGGS" \
			--out-of-orderness 5s --lateness 30s
	done
	# Records read by jansson alone (the fast parser off) give the same bytes.
	EVPIPE_FASTJSON=0 evwindow --tumble 1m --key event_type --agg "$AGGS" \
		--out-of-orderness 5s --lateness 30s --late slow.late < in > slow.rows
	assert_same_file slow.rows got.rows
	jq -c 'del(.at)' slow.late > slow.late.cmp
	jq -c 'del(.at)' got.late > got.late.cmp
	assert_same_file slow.late.cmp got.late.cmp
}

@test "sliding windows equal the reference model on random streams" {
	for seed in 4 5; do
		compare_with_model "$seed" --slide 1m --every 20s --key event_type,user_id \
			--agg count,sum:value,max:value,last:value --out-of-orderness 2s --lateness 10s
	done
}

@test "session windows (merging when a record bridges two) equal the reference model" {
	for seed in 7 8; do
		compare_with_model "$seed" --session-gap 30s --key user_id \
			--agg count,sum:value,first:value,last:value,uniq:event_type \
			--out-of-orderness 5s --lateness 20s
		compare_with_model "$seed" --session-gap 5s --key event_type \
			--agg count,min:value,max:value,avg:value --lateness 1m
	done
}

# Three 250 ms windows within one second once all had window_start == window_end ==
# "1970-01-01 00:00:00": one row in a ReplacingMergeTree. Each bound's milliseconds past its
# DateTime second follow it, so the rows are distinct and the bounds exact.
@test "sub-second windows (--tumble 250ms): distinct bounds, exact to the millisecond" {
	printf '{"ts":%d,"k":"a"}\n' 100 300 350 600 700 720 > in
	run -0 --separate-stderr evwindow --tumble 250ms --key k < in
	[ "$output" = '{"window_start":"1970-01-01 00:00:00","window_start_msec":0,"window_end":"1970-01-01 00:00:00","window_end_msec":250,"k":"a","count":1,"version":1}
{"window_start":"1970-01-01 00:00:00","window_start_msec":250,"window_end":"1970-01-01 00:00:00","window_end_msec":500,"k":"a","count":2,"version":2}
{"window_start":"1970-01-01 00:00:00","window_start_msec":500,"window_end":"1970-01-01 00:00:00","window_end_msec":750,"k":"a","count":3,"version":3}' ]
	# a window across a second, and one before 1970: the second is rounded down
	printf '{"ts":%d}\n' -100 1732406400900 > in
	run -0 --separate-stderr evwindow --tumble 1500ms < in
	[ "$(jq -c '[.window_start, .window_start_msec, .window_end, .window_end_msec, .count]' <<<"$output")" = '["1969-12-31 23:59:58",500,"1970-01-01 00:00:00",0,1]
["2024-11-24 00:00:00",0,"2024-11-24 00:00:01",500,1]' ]
	# whole-second windows keep their rows (the golden files), unless asked
	run -0 --separate-stderr evwindow --tumble 1s < in
	[[ "$output" != *msec* ]]
	run -0 --separate-stderr evwindow --tumble 1s --msec-bounds < in
	[ "$(jq -r '"\(.window_start_msec),\(.window_end_msec)"' <<<"$output" | paste -sd' ')" = "0,0 0,0" ]
	# sessions with --msec-bounds: the exact first record and last record + gap
	run -0 --separate-stderr evwindow --session-gap 2s --msec-bounds < in
	[ "$(jq -r '"\(.window_start).\(.window_start_msec) \(.window_end).\(.window_end_msec)"' <<<"$output" | paste -sd,)" = "1969-12-31 23:59:59.900 1970-01-01 00:00:01.900,2024-11-24 00:00:00.900 2024-11-24 00:00:02.900" ]
}

# Sub-second sizes, --every, --session-gap, --out-of-orderness and --lateness against the model
# (its records are ~50 ms apart): the millisecond fields, versions and late records agree.
@test "sub-second windows, out-of-orderness and lateness equal the reference model" {
	compare_with_model 11 --tumble 250ms --key event_type --agg count,sum:value \
		--out-of-orderness 300ms --lateness 750ms
	[ "$(jq -s 'map(select(.version > 1)) | length' got.rows)" -gt 0 ]
	compare_with_model 12 --slide 1s --every 250ms --key event_type --agg count,max:value \
		--out-of-orderness 2s --lateness 500ms
	compare_with_model 13 --session-gap 300ms --key user_id --agg count,sum:value \
		--out-of-orderness 1s --lateness 1500ms
	[ "$(jq -r '.window_start_msec' got.rows | sort -u | wc -l)" -gt 100 ]
}

@test "no lateness and a max-future: equal to the reference model" {
	compare_with_model 6 --tumble 30s --agg count,avg:value,min:value --max-future 1h \
		--out-of-orderness 1s
}

@test "the reference model's own tests, and its hand-checked example through evwindow" {
	run -0 python3 "$EVPIPE_ROOT/tests/window_ref_test.py"
	# checked by hand in window_ref_test.py (test_cli_golden_fixture)
	run -0 --separate-stderr evwindow --tumble 1m --key event_type --agg "$AGGS" \
		--out-of-orderness 5s --lateness 30s --late late < "$FIX/input.ndjson"
	printf '%s\n' "$output" > rows
	assert_same_file rows "$FIX/tumble-1m.rows"
	jq -c 'del(.at)' late > late.cmp
	jq -c 'del(.at)' "$FIX/tumble-1m.late" > want.cmp
	assert_same_file late.cmp want.cmp
}

@test "metrics: records in and out, late records by outcome, windows, watermark" {
	mkfifo hold
	{ cat "$FIX/golden-in.ndjson"; cat hold; } | evwindow --tumble 1m --key event_type --agg count \
		--out-of-orderness 5s --lateness 30s --late late --metrics-addr 127.0.0.1:0 \
		> rows 2> err 3>&- &
	exec 7<> hold
	wait_for 20 grep -q 'serving metrics' err
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err)
	wait_for 20 bash -c "curl -sf '$url' | grep -q '^evpipe_records_in_total{.*} 9$'"
	curl -sf "$url" > metrics
	exec 7>&-
	wait
	get() { awk -v m="$1" '$1 == m { print $2 }' metrics; }
	[ "$(get 'evpipe_records_out_total{tool="evwindow",job="evpipe"}')" -eq 4 ]
	[ "$(get 'evpipe_late_records_total{tool="evwindow",job="evpipe",outcome="updated"}')" -eq 1 ]
	# with count alone, the record whose value is "x" is merely late; the one without ts is invalid
	[ "$(get 'evpipe_late_records_total{tool="evwindow",job="evpipe",outcome="dead_lettered"}')" -eq 2 ]
	[ "$(get 'evpipe_dead_letters_total{tool="evwindow",job="evpipe",reason="missing_ts"}')" -eq 1 ]
	[ "$(get 'evpipe_windows_fired_total{tool="evwindow",job="evpipe"}')" -eq 3 ]
	# the watermark: 22:15:40 - 5 s - 1 ms, in seconds
	awk -v w="$(get 'evpipe_watermark_seconds{tool="evwindow",job="evpipe"}')" \
		'BEGIN { exit !(w > 1732400134.998 && w < 1732400135) }'
	# at the end of input the last window fires: five rows and the control line
	[ "$(wc -l < rows)" -eq 6 ]
	# 9 in = 6 counted in the final rows (click 3 + view 1 + 1 + 1) + 2 late + 1 invalid
	[ "$(jq -s 'map(select(.version)) | group_by(.window_start + .event_type) | map(max_by(.version).count) | add' rows)" -eq 6 ]
}

# The same random stream through the model and through evwindow with state memory so small
# that windows keep spilling to RocksDB: the rows and dead letters are the model's.
@test "windows spilled to RocksDB for want of memory give the model's rows" {
	"$EVPIPE_ROOT/tests/window_ref.py" --generate 20000 --seed 9 --partitions 3 --late-pct 2 > in
	for args in "--tumble 1m --key event_type,user_id --agg $AGGS --out-of-orderness 2s --lateness 30s" \
		"--slide 1m --every 20s --key event_type,user_id --agg count,sum:value,uniq:user_id,last:value --lateness 10s"; do
		# shellcheck disable=SC2086
		"$EVPIPE_ROOT/tests/window_ref.py" $args --late want.late < in > want.rows
		# shellcheck disable=SC2086
		run -0 --separate-stderr evwindow $args --late got.late --state-memory 1MiB -v < in
		printf '%s\n' "$output" > got.rows
		assert_same_file got.rows want.rows
		# it did spill, more than once
		[ "$(grep -c 'spilling' <<<"$stderr")" -gt 3 ]
		local norm='del(.at) | if .reason == "parse" then del(.error.message) else . end'
		jq -c "$norm" got.late > got.cmp
		jq -c "$norm" want.late > want.cmp
		assert_same_file got.cmp want.cmp
		rm -f got.late want.late
	done
}

# Run the first half of in, stop evwindow with SIGTERM once it has read all of it (a control
# line at the end of the half, a watermark long past that moves nothing, comes back when it
# has), then the second half with the same
# --state-dir: the rows and dead letters are those of one run over the whole.
split_run() {
	local half=$(($(wc -l < in) / 2))
	rm -f whole.late a.late b.late # late outputs append
	evwindow "$@" --late whole.late < in > whole.rows
	{ head -n "$half" in; echo "$SYNC"; } > h1
	tail -n +"$((half + 1))" in > h2
	rm -rf state feed
	mkfifo feed
	evwindow "$@" --state-dir state --late a.late < feed > a.rows 3>&- &
	local pid=$!
	exec 8> feed # held open: no end of input
	cat h1 >&8
	wait_for 20 grep -qF "$SYNC" a.rows
	kill -TERM "$pid"
	wait "$pid"
	exec 8>&-
	run -0 --separate-stderr evwindow "$@" --state-dir state --late b.late < h2
	[[ $stderr == *"continuing from the state in state"* ]]
	printf '%s\n' "$output" > b.rows
	# barriers are left out: a stop saves the windows and lets the barriers it held go
	cat a.rows b.rows | grep -vF "$SYNC" | grep -v '"barrier"' > split.rows
	grep -v '"barrier"' whole.rows > whole.cmp.rows
	assert_same_file split.rows whole.cmp.rows
	cat a.late b.late | grep -vF "$SYNC" | grep -v '"barrier"' | jq -c 'del(.at, .line)' > split.cmp
	grep -v '"barrier"' whole.late | jq -c 'del(.at, .line)' > whole.cmp
	assert_same_file split.cmp whole.cmp
	[ "$(jq -r .reason whole.late | grep -c late)" -gt 0 ]
}

@test "stopped by SIGTERM with --state-dir, a restart continues where it stopped" {
	"$EVPIPE_ROOT/tests/window_ref.py" --generate 20000 --seed 10 --partitions 3 --late-pct 2 > in
	split_run --tumble 1m --key event_type,user_id --agg "$AGGS" --out-of-orderness 2s \
		--lateness 30s --state-memory 1MiB
	split_run --slide 1m --every 20s --key event_type --agg count,sum:value,last:value \
		--lateness 10s
	split_run --session-gap 30s --key user_id --agg count,sum:value,first:value,uniq:event_type \
		--out-of-orderness 5s --lateness 20s
}

@test "a state directory left by a killed run, or by other aggregates, is refused" {
	"$EVPIPE_ROOT/tests/window_ref.py" --generate 2000 --seed 11 > in
	{ cat in; echo "$SYNC"; } > in.sync
	mkfifo feed
	local sig pid
	for sig in KILL TERM; do
		rm -rf state
		evwindow --tumble 1m --state-dir state < feed > out 3>&- &
		pid=$!
		exec 8> feed
		cat in.sync >&8
		wait_for 20 grep -qF "$SYNC" out
		kill -"$sig" "$pid"
		wait "$pid" || [ "$sig" = KILL ]
		exec 8>&-
		[ "$sig" = TERM ] && break
		run -1 evwindow --tumble 1m --state-dir state < in
		[[ $output == *"did not stop cleanly"* ]]
	done
	run -1 evwindow --tumble 1m --agg count,sum:value --state-dir state < in
	[[ $output == *"belongs to other windows or aggregates"* ]]
	# the saved state continues, and its end of input finishes the stream: the next run on the
	# directory starts afresh, as a run without one
	evwindow --tumble 1m --state-dir state < in > continued.rows
	evwindow --tumble 1m --state-dir state < in > second.rows
	evwindow --tumble 1m < in > plain.rows
	assert_same_file second.rows plain.rows
	run -1 cmp -s continued.rows plain.rows
	run -2 evwindow --tumble 1m --state-memory 10k
}

@test "nested values: written as the model writes them, counted once by uniq in any key order" {
	local args=(--tumble 1m --key k --agg 'count,uniq:v,first:v,last:v')
	evwindow "${args[@]}" < "$FIX/nested.ndjson" > got.rows
	"$EVPIPE_ROOT/tests/window_ref.py" "${args[@]}" < "$FIX/nested.ndjson" > want.rows
	assert_same_file got.rows want.rows
	[ "$(jq -r 'select(.k == "a") | .uniq_v' got.rows)" = 2 ]
	grep -qF '"first_v":{"b":[0.1,1.0,true],"a":null}' got.rows
}

@test "--max-line-bytes: a longer line is a too_long dead letter with its bytes, never parsed" {
	printf '%s\n' '{"ts":1000,"k":"a"}' '{"ts":2000,"k":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}' \
		'{"ts":3000,"k":"a"}' > in
	run -0 --separate-stderr evwindow --tumble 10s --key k --max-line-bytes 30 --late late < in
	[ "$output" = '{"window_start":"1970-01-01 00:00:00","window_end":"1970-01-01 00:00:10","k":"a","count":2,"version":2}' ]
	[ "$(jq -r .reason late)" = too_long ]
	[ "$(jq -r .raw late)" = "$(sed -n 2p in)" ]
	[ "$(jq -r .error.message late)" = "line of 54 bytes is over the limit of 30 bytes" ]
	run -2 --separate-stderr evwindow --tumble 10s --max-line-bytes 0
	[[ "$stderr" == *"invalid --max-line-bytes '0'"* ]]
	# a 50 MB line with the default limit (1 MiB): a dead letter, and memory stays far below
	# the 1.8 GB it took to parse it
	{
		printf '{"ts":1000,"k":"a"}\n{"ts":2000,"k":"'
		head -c 50000000 /dev/zero | tr '\0' b
		printf '"}\n'
	} > big
	/usr/bin/time -v "$EVPIPE_BIN/evwindow" --tumble 10s --key k --late big.late < big > out 2> err
	[ "$(jq -r .reason big.late)" = too_long ]
	[ "$(jq -r .raw big.late | wc -c)" -eq 50000019 ]
	[ "$(jq -r .count out)" = 1 ]
	rss=$(awk '/Maximum resident set size/ { print $NF }' err)
	[ "$rss" -lt 600000 ]
}

@test "a closed stdout (| head -1): evwindow dies of SIGPIPE and leaves no private state directory" {
	evgen -n 20000 --rate 100 > in 2> /dev/null
	mkdir tmp
	TMPDIR=$PWD/tmp evwindow --tumble 1s --key user_id < in | head -1 > first
	[ "${PIPESTATUS[0]}" -eq 141 ]
	[ -s first ]
	run -0 find tmp -mindepth 1
	[ -z "$output" ]
}

# The helpers' teardown (stop what a test left running), and the small disk of the test below.
teardown() {
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one pid per word
	[ -z "$pids" ] || kill $pids 2> /dev/null || true
	if mountpoint -q "$BATS_TEST_TMPDIR/full"; then
		umount "$BATS_TEST_TMPDIR/full"
	fi
}

@test "a full disk: the error says no space, exit 1, and the private state directory is removed" {
	mkdir full
	mount -t tmpfs -o size=2m tmpfs full 2> /dev/null || skip "mounting a small tmpfs needs root"
	evgen -n 200000 --users 100000 > in 2> /dev/null
	run -1 --separate-stderr env TMPDIR="$PWD/full" "$EVPIPE_BIN/evwindow" --tumble 1h \
		--key user_id,event_id --state-memory 1MiB < in
	[[ "$stderr" == *"evwindow: state store: "*"No space left on device"* ]]
	run -0 find full -mindepth 1
	[ -z "$output" ]
	# with --state-dir on the full disk, the checkpoints that fail say why and the run goes on
	awk 'NR % 40000 == 0 { printf "{\"__evpipe\":\"barrier\",\"id\":%d,\"ts\":0}\n", NR / 40000 } { print }' in > in.b
	run -1 --separate-stderr evwindow --tumble 1h --key user_id,event_id --state-dir full/s \
		--checkpoint-store "file://$PWD/store" --job j < in.b
	[[ "$stderr" == *"checkpoint "*" failed: "*"No space left on device"* ]]
	[ "$(find full -maxdepth 1 -name 's.chk-*' | wc -l)" -eq 0 ]
}

@test "a full checkpoint store: the checkpoint fails naming no space, and leaves no empty directory behind" {
	mkdir full
	mount -t tmpfs -o size=1m tmpfs full 2> /dev/null || skip "mounting a small tmpfs needs root"
	evgen -n 10000 > in 2> /dev/null
	awk 'NR % 2000 == 0 { printf "{\"__evpipe\":\"barrier\",\"id\":%d,\"ts\":0}\n", NR / 2000 } { print }' in > in.b
	mkdir full/store
	# nothing left on the disk: every put fails, the first in a directory it had to make
	dd if=/dev/zero of=full/filler bs=4k 2> /dev/null || true
	# the job goes on (a failed checkpoint is the coordinator's to count), saying why
	run -0 --separate-stderr evwindow --tumble 1h --key user_id,event_id \
		--checkpoint-store "file://$PWD/full/store" --job j < in.b
	echo "$stderr" >&2
	[[ "$stderr" == *"checkpoint "*" failed: "*"No space left on device"* ]]
	run -0 find full/store -mindepth 1 -type d -empty
	[ -z "$output" ]
}
