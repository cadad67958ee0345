#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# scaleout-state.bats: copies of the job, pipelines/events-to-clickhouse.sh, moving partitions
# whose state matters (docs/design.md, Scaling out; ADR 0025, section 5): a partition with more
# than 100k open windows handed over to a joining copy, and a stream with late and invalid
# records whose every record's fate (windowed, late, dead) is compared with the offline run's.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that copies' teardown replaces common's, and the
# last_versions and table_rows below replace copies' ones.
load helpers/common
load helpers/copies

# q's time limit: the first test's table has over 220k rows
# shellcheck disable=SC2034 # read by copies' q
Q_TIMEOUT=30

setup() {
	copies_setup bigst st
}

# The last version of each window and event type, as TSV in the table's column order and
# sorted as table_rows sorts, from evwindow's rows on stdin (in place of copies' one: read as a
# stream, not slurped by jq -s, and sorted by sort(1), as the table's rows are here).
last_versions() {
	jq -r 'select(.window_start) | [.window_start, .window_end, .event_type, .count,
		.sum_value, .min_value, .max_value, .uniq_user_id, .version] | @tsv' |
		sort -t "$(printf '\t')" -k1,1 -k3,3 -k9,9n |
		awk -F'\t' 'NR > 1 && ($1 != s || $3 != k) { print l } { s = $1; k = $3; l = $0 }
			END { if (NR) print l }' | reals
}

table_rows() {
	q "SELECT window_start, window_end, event_type, count, sum_value, min_value, max_value,
		uniq_user_id, version FROM $TABLE FINAL ORDER BY window_start, event_type
		FORMAT TSV" | reals | sort -t "$(printf '\t')" -k1,1 -k3,3
}

# The value of metric line $2 (a regex of its name and labels) at port $1.
metric() {
	curl -sf "http://127.0.0.1:$1/metrics" | awk -v re="^$2 " '$0 ~ re { print $NF; exit }'
}

# The stage at port $1 read at least $2 records.
read_at_least() {
	local n
	n=$(metric "$1" 'evpipe_records_in_total(\{[^}]*\})?') && [ -n "$n" ] && [ "${n%.*}" -ge "$2" ]
}

# evwindow's loads in the copies' stderr: "partition offset windows bytes" lines.
loads() {
	sed -n 's/^evwindow: [^ ]* \[\([0-9]*\)\]: assigned at offset \([0-9]*\): \([0-9]*\) windows (\([0-9]*\) bytes) loaded from the hand-over$/\1 \2 \3 \4/p' "$@"
}

@test "a partition whose state is large (over 100k open windows) moves to a joining copy and its windows are complete after: the table equals the offline result" {
	create_topic 2
	# 10000 event types (the key) over 2 partitions and 4 hours of event time: about one
	# record per window, every window open until the end (out-of-orderness 5h)
	export EVPIPE_OUT_OF_ORDERNESS=5h
	evgen --count 240000 --seed 14 --rate 16 --event-types 10000 --invalid-pct 0 \
		--late-pct 0 --out-of-order 10s > events.ndjson 2>/dev/null
	evvalidate --contract "$EVPIPE_CONTRACT" < events.ndjson 2>/dev/null |
		evwindow --tumble 1m --key event_type --agg "$AGGREGATES" --out-of-orderness 5h \
			--lateness 30s --idle-timeout 60s --max-future 1h 2>/dev/null |
		last_versions > want.tsv
	[ "$(wc -l < want.tsv)" -ge 220000 ]
	head -n 228000 events.ndjson > first
	tail -n +228001 events.ndjson > rest
	split -n l/20 -d -a 2 rest piece.
	base=$(free_ports 14)

	# copy a reads both partitions: over 100k open windows in each
	kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field event_type < first
	start_copy a "$base"
	wait_for 240 read_at_least $((base + 2)) 228000 || { cat err.a >&2; false; }
	# b joins while the rest flows in: one partition moves with its windows
	produce_pieces piece.* &
	producer=$!
	start_copy b $((base + 7))
	wait_for 60 owns $((base + 7)) 1 || { cat err.a err.b >&2; false; }
	wait "$producer"
	wait_for 30 grep -q 'loaded from the hand-over' err.b || { cat err.a err.b >&2; false; }
	sleep 3
	pause_count=$(metric $((base + 9)) 'evpipe_handover_pause_seconds_count(\{[^}]*\})?')
	pause_sum=$(metric $((base + 9)) 'evpipe_handover_pause_seconds_sum(\{[^}]*\})?')
	wait_s=$(metric "$base" 'evpipe_handover_wait_seconds_sum(\{[^}]*\})?')
	moved_bytes=$(metric $((base + 9)) 'evpipe_handover_bytes_total\{[^}]*direction="loaded"[^}]*\}')

	# b leaves (SIGTERM); once its session timed out a has both again; then a stops and,
	# restarted under its name, runs to the end
	kill -TERM "$pid_b"
	wait "$pid_b"
	wait_for 60 owns "$base" 2 || { cat err.a err.b >&2; false; }
	sleep 2
	kill -TERM "$pid_a"
	wait "$pid_a"
	run_last_copy a

	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	run -1 grep -h 'failed\|error' err.a err.b err.last
	# the moved partition's state went through the store with its 100k windows, and was
	# loaded where it was saved
	loads err.b > loaded
	[ "$(wc -l < loaded)" -eq 1 ]
	read -r part offset windows bytes < loaded
	[ "$windows" -ge 100000 ] || { cat loaded >&2; grep -h "revoked at\|spill" err.a >&2; false; }
	grep -q "^evwindow: $TOPIC \[$part\]: revoked at offset $offset: $windows windows" err.a
	[ "$pause_count" = 1 ]
	[ "$moved_bytes" = "$bytes" ]
	echo "# partition $part moved with $windows windows ($bytes bytes); pause (assign to" \
		"first record) ${pause_sum} s; kin held it ${wait_s} s; $(grep -ho \
		'handed over in [0-9.]* s' err.a | head -n 1)" >&3
}

# The committed records of topic $1 from the beginning (read_committed, librdkafka's default).
topic_records() {
	kin -C -q -b "$KAFKA_BROKERS" -t "$1" -o beginning -e
}

# The committed records of side output $1 are at least $2.
side_outputs_reach() {
	[ "$(topic_records "$TOPIC.$1" | wc -l)" -ge "$2" ]
}

# The event ids of the raw records in side-output records (stdin), sorted.
event_ids() {
	jq -r '.raw' | grep -o '"event_id":"[^"]*"' | sort
}

# Every record's fate against the offline run. In the job each copy's evwindow judges a record
# by the copy's watermark: the minimum, over the partitions it owns that are not idle, of each
# one's maximum event time minus the out-of-orderness, and it never goes back (ADR 0016; also
# when a hand-over brings a partition whose maximum is behind it). Offline, one file has one
# watermark, its maximum so far. So the job's watermark can be behind the offline one (a
# partition read behind the others holds it) or ahead of a partition's own records (one
# handed over, or back from idleness, into a copy whose watermark is further on), and a record
# whose delay behind the stream is within about the skew of the partitions as read around
# out-of-orderness + window + lateness is late in one run and windowed in the other. Also a
# record more than max-future ahead of its partition's maximum is a dead letter: offline the
# stream's maximum, in the job the partition's own, so a partition whose first record is a
# late one (6 h behind) would turn its next on-time record into a dead letter in the job only
# (evwindow's dead letters, "future" among them, go to the late topic with the late records).
# Here no record is in between: out-of-orderness 2h is more than the stream spans (no on-time
# record can be late however partitions interleave), late records are 6 h behind (late
# whatever the order, once the copy's watermark is known: every copy has seen or loaded a
# partition before), and none is among the first 500 (none is a partition's first record).
# So the fates must match exactly: the windows (the table), the dead letters and the late
# records, each present exactly once by source offset. (WINDOW_ARGS: copies', out-of-orderness
# 2h.)

@test "with late and invalid records, copies join and leave (1, 2, 3, one killed with SIGKILL, one stopped by SIGTERM), a last copy to the end: every record's fate (windowed, late, dead) equals the offline run's, each side output exactly once by source offset" {
	create_topic 6
	export EVPIPE_OUT_OF_ORDERNESS=2h
	# The copy killed leaves its dlqsinks' open transactions behind: the copy that takes its
	# partitions over fences them (ADR 0021, 10), so read_committed consumers of the side
	# outputs do not stop before them for the transaction timeout (120 s, not shortened here).
	export EVPIPE_CHECKPOINT_TIMEOUT=10s
	# 48 event types (the key) over the 6 partitions, 24 minutes of event time, 2% invalid,
	# 2% late by 6 to 9 hours; none of those among the first 500
	evgen --count 36000 --seed 14 --rate 25 --event-types 48 --invalid-pct 2 --late-pct 2 \
		--late-by 6h --out-of-order 10s 2>/dev/null |
		awk 'match($0, /"ts":[0-9]+/) { ts = substr($0, RSTART + 5, RLENGTH - 5) + 0
			if (ts < max - 3600000 && NR <= 500) next; if (ts > max) max = ts } { print }' \
			> events.ndjson
	evvalidate --contract "$EVPIPE_CONTRACT" --dlq offline.dlq < events.ndjson 2>/dev/null |
		evwindow "${WINDOW_ARGS[@]}" --late offline.late 2>/dev/null | last_versions > want.tsv
	[ "$(wc -l < want.tsv)" -ge 900 ]
	[ "$(wc -l < offline.dlq)" -ge 300 ]
	[ "$(wc -l < offline.late)" -ge 500 ]
	split -n l/40 -d -a 2 events.ndjson piece.
	base=$(free_ports 21)

	# copy a alone; b, then c, join while the events flow in
	a_then_b "$base"
	sleep 2
	start_copy c $((base + 14))
	wait_for 60 owns $((base + 14)) 2 || { cat err.a err.b err.c >&2; false; }
	wait "$producer"
	sleep 3
	# c dies (SIGKILL), b leaves (SIGTERM): a gets their partitions once their sessions
	# timed out, at their last complete checkpoints' offsets with the state written there
	kill_copy pid_c
	kill -TERM "$pid_b"
	wait "$pid_b"
	wait_for 60 owns "$base" 6 || { cat err.a >&2; false; }
	sleep 2
	kill -TERM "$pid_a"
	wait "$pid_a"
	run_last_copy a
	run -1 grep -h 'failed\|error' err.a err.b err.last

	# windowed: the table equals the offline result
	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	# dead and late: the same records as offline, each once by source offset, at once: the
	# killed copy's transactions were fenced by the copy that took its partitions
	grep -q "copy 'c-$TOPIC' of the job is gone with partitions assigned here" err.a
	start=$SECONDS
	wait_for 10 side_outputs_reach dlq "$(wc -l < offline.dlq)"
	wait_for 10 side_outputs_reach late "$(wc -l < offline.late)"
	blocked=$((SECONDS - start))
	for side in dlq late; do
		topic_records "$TOPIC.$side" > "$side.records"
		jq -r '"\(.source.partition) \(.source.offset)"' "$side.records" | sort > "$side.offsets"
		sort -u "$side.offsets" > "$side.distinct"
		assert_same_file "$side.offsets" "$side.distinct"
		event_ids < "$side.records" > "$side.ids"
		event_ids < "offline.$side" > "offline.$side.ids"
		assert_same_file "$side.ids" "offline.$side.ids"
		[ "$(wc -l < "$side.offsets")" -eq "$(wc -l < "offline.$side")" ]
	done
	# the partitions moved: by the joins (handed over), and from the copies that left
	[ "$(grep -ch 'loaded from the hand-over' err.a err.b err.c err.last |
		awk '{ n += $1 } END { print n }')" -ge 5 ]
	echo "# $(wc -l < late.offsets) late records and $(wc -l < dlq.offsets) dead letters," \
		"as offline (read_committed held back ${blocked} s after the end); $(grep -ch 'loaded from the hand-over' err.a err.b err.c err.last |
			awk '{ n += $1 } END { print n }') partition states loaded" >&3
}
