#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# evgen.bats: the event generator: the same bytes for a seed, the rates asked for, valid events
# that meet the contract, invalid ones that evvalidate dead-letters, late ones that evwindow
# finds late.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR" || return
	CONTRACT="$EVPIPE_ROOT/contracts/event.schema.json"
}

# "N event(s): I invalid, L late" from evgen's stderr (in $stderr) as "N I L".
summary() {
	sed -n 's/^evgen: \([0-9]*\) event(s): \([0-9]*\) invalid, \([0-9]*\) late$/\1 \2 \3/p' <<<"$stderr"
}

@test "the same seed gives the same bytes; the golden file pins them on every machine" {
	evgen --count 5000 --seed 9 --invalid-pct 5 --late-pct 2 --out-of-order 3s > a 2>/dev/null
	evgen --count 5000 --seed 9 --invalid-pct 5 --late-pct 2 --out-of-order 3s > b 2>/dev/null
	assert_same_file a b
	evgen --count 5000 --seed 10 --invalid-pct 5 --late-pct 2 --out-of-order 3s > c 2>/dev/null
	run ! cmp -s a c
	# a longer run starts with the shorter one
	evgen --count 7000 --seed 9 --invalid-pct 5 --late-pct 2 --out-of-order 3s 2>/dev/null | head -n 5000 > d
	assert_same_file a d
	# xoshiro256** and the formatting are fixed: this file was written by this command
	evgen --count 40 --seed 42 --rate 10 --invalid-pct 20 --late-pct 10 --out-of-order 2s \
		--late-by 1m --users 50 --event-types 3 > golden 2>/dev/null
	assert_same_file golden "$EVPIPE_ROOT/tests/fixtures/evgen/golden.ndjson"
}

@test "counts and rates: N lines, invalid and late about the percentages asked" {
	run -0 --separate-stderr evgen --count 20000 --seed 3 --invalid-pct 5 --late-pct 2
	[ "${#lines[@]}" -eq 20000 ]
	read -r n invalid late <<<"$(summary)"
	[ "$n" -eq 20000 ]
	# 5% and 2% of 20000, within about 4 standard deviations
	[ "$invalid" -gt 880 ] && [ "$invalid" -lt 1120 ]
	[ "$late" -gt 320 ] && [ "$late" -lt 480 ]
	# and none when none are asked for
	run -0 --separate-stderr evgen --count 3000
	[ "${#lines[@]}" -eq 3000 ]
	[ "$(summary)" = "3000 0 0" ]
	run -0 --separate-stderr evgen --count 0
	[ -z "$output" ]
	# about 150 bytes an event
	evgen --count 1000 2>/dev/null | awk '{ s += length($0) + 1 } END { exit !(s / NR > 130 && s / NR < 170) }'
}

@test "every valid event passes evvalidate; every invalid one is dead-lettered, in seven ways" {
	evgen --count 20000 --seed 11 --invalid-pct 10 --late-pct 3 --out-of-order 4s > events 2> err
	read -r _ invalid _ <<<"$(stderr=$(cat err) summary)"
	run -0 --separate-stderr evvalidate --contract "$CONTRACT" --dlq dlq < events
	[ "$(wc -l < dlq)" -eq "$invalid" ]
	[ "${#lines[@]}" -eq $((20000 - invalid)) ]
	# the dead letters are the invalid events, whole: truncated, a required field missing,
	# an unknown event_type, a negative value, an unknown field, a ts that is not a time, a
	# value that is a string
	jq -r '[.reason, .error.keyword // "", .error.path // ""] | join(" ")' dlq | sort -u > kinds
	cat > want <<-'EOF'
		schema additionalProperties /debug
		schema enum /event_type
		schema minimum /value
		schema oneOf /ts
		schema required 
		schema type /value
		truncated  
	EOF
	assert_same_file kinds want
	# each required field is the missing one sometimes
	[ "$(jq -r 'select(.error.keyword == "required") | .error.message' dlq | sort -u | wc -l)" -eq 4 ]
	# with no invalid events asked for, nothing is dead-lettered
	evgen --count 5000 --seed 12 --late-pct 5 --out-of-order 5s 2>/dev/null |
		evvalidate --contract "$CONTRACT" --dlq dlq0 > /dev/null
	[ ! -s dlq0 ]
}

@test "late events are beyond 30 s of lateness with 5 s of out-of-orderness; the others never late" {
	# out-of-order jitter of up to 5 s, the bound of the watermark: no event is late but those
	# that evgen made late, and every one of those is
	evgen --count 30000 --seed 5 --rate 200 --late-pct 3 --out-of-order 5s > events 2> err
	read -r _ _ late <<<"$(stderr=$(cat err) summary)"
	[ "$late" -gt 0 ]
	run -0 --separate-stderr evwindow --tumble 1m --key event_type --agg count \
		--out-of-orderness 5s --lateness 30s --late late.ndjson < events
	[ "$(jq -r .reason late.ndjson | sort -u)" = late ]
	[ "$(wc -l < late.ndjson)" -eq "$late" ]
	[ "$(jq -s 'map(.count) | add' <<<"$output")" -eq $((30000 - late)) ]
}

@test "--rate, --start, --event-types and --users shape the events" {
	run -0 --separate-stderr evgen --count 4 --rate 0.5 --start 2024-01-01T00:00:00Z
	[ "$(jq -r .ts <<<"$output" | paste -sd,)" = "1704067200000,1704067202000,1704067204000,1704067206000" ]
	run -0 --separate-stderr evgen --count 3 --rate 4 --start 1704067200000
	[ "$(jq -r .ts <<<"$output" | paste -sd,)" = "1704067200000,1704067200250,1704067200500" ]
	run -0 --separate-stderr evgen --count 2000 --event-types 2 --users 3
	[ "$(jq -r .event_type <<<"$output" | sort -u | paste -sd,)" = "click,page_view" ]
	[ "$(jq -r .user_id <<<"$output" | sort -u | paste -sd,)" = "user_000000,user_000001,user_000002" ]
	run -0 --separate-stderr evgen --count 1000 --event-types signup,login
	[ "$(jq -r .event_type <<<"$output" | sort -u | paste -sd,)" = "login,signup" ]
	# event ids are unique and in order; every value is within [0, 100)
	run -0 --separate-stderr evgen --count 1000 --seed 4
	[ "$(jq -r .event_id <<<"$output" | sort -u | wc -l)" -eq 1000 ]
	[ "$(jq -s 'map(select(.value < 0 or .value >= 100)) | length' <<<"$output")" -eq 0 ]
}

@test "usage errors exit 2 with a hint" {
	# shellcheck disable=SC2089,SC2090 # a literal quote in a type name is the point
	for args in "--count -1" "--count x" "--seed -3" "--rate 0" "--rate 1.0001" \
		"--invalid-pct 101" "--invalid-pct 60 --late-pct 50" "--event-types a,,b" \
		"--event-types bad\"name" "--users 0" "--start yesterday" "--start 0" \
		"--late-by 0" "--out-of-order -5" "extra"; do
		# shellcheck disable=SC2086 # the words are the options
		run -2 --separate-stderr evgen $args
		[ -z "$output" ] || { echo "evgen $args wrote: $output"; false; }
		[[ "$stderr" == *"try 'evgen --help'"* ]] || { echo "evgen $args: $stderr"; false; }
	done
}

@test "SIGTERM stops evgen after whole lines, exit 0" {
	mkfifo out
	tail -c 2000 < out > last 3>&- &
	evgen --count 1000000000000 > out 2> err 3>&- &
	pid=$!
	sleep 0.5
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ]
	wait
	grep -q 'stopping on signal 15' err
	# the last line written is a whole event
	tail -n 1 last | jq -e .event_id > /dev/null
}
