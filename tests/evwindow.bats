#!/usr/bin/env bats
# evwindow.bats: event-time windows, watermarks and lateness.
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR"
	FIX="$EVPIPE_ROOT/tests/fixtures/evwindow"
	AGGS=count,sum:value,min:value,max:value,avg:value,uniq:user_id,first:user_id,last:user_id
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
	# [0, 10 s) fires only when partition 1 passes 10 s, after the barrier; [20 s, 30 s) at the end
	[ "$(jq -c -r 'if .__evpipe then .__evpipe else "\(.window_start[17:19])+\(.count)" end' <<<"$output" | paste -sd,)" = "barrier,00+3,20+2" ]
}

@test "a record far in the future is a dead letter and does not move time" {
	printf '{"ts":1000}\n{"ts":999999999999}\n{"ts":2000}\n' > in
	run -0 --separate-stderr evwindow --tumble 10s --agg count --max-future 1h --late late < in
	[ "$output" = '{"window_start":"1970-01-01 00:00:00","window_end":"1970-01-01 00:00:10","count":2,"version":1}' ]
	[ "$(jq -r .reason late)" = future ]
}
