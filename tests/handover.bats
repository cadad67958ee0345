#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# handover.bats: copies of the job, pipelines/events-to-clickhouse.sh, joining and leaving one
# consumer group mid-run (docs/design.md, Scaling out; ADR 0025, section 5.1): a partition that
# moves is let go only once its state is durable (a checkpoint after the revoke line), its
# offset committed there, and its next owner resumes it at exactly that offset with the state
# handed over; a copy restarted under its name (static membership) gets its partitions back
# at once.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that copies' teardown replaces common's.
load helpers/common
load helpers/copies

setup() {
	copies_setup hand ho
}

# evwindow's revokes and loads in the copies' stderr: "topic partition offset windows" lines.
revokes() {
	sed -n 's/^evwindow: \([^ ]*\) \[\([0-9]*\)\]: revoked at offset \([0-9]*\): \([0-9]*\) windows.*/\1 \2 \3 \4/p' "$@" | sort
}
loads() {
	sed -n 's/^evwindow: \([^ ]*\) \[\([0-9]*\)\]: assigned at offset \([0-9]*\): \([0-9]*\) windows.*loaded from the hand-over$/\1 \2 \3 \4/p' "$@" | sort
}

@test "copies join and leave mid-run (1, 2, 3, then 1 by SIGTERM), a last copy to the end: each join moves partitions at their revoke offsets with their windows; the table equals the offline result, every dead letter is there, no stage failed" {
	create_topic 6
	# 48 event types (the key) over the 6 partitions, 40 minutes of event time, 2% invalid
	evgen --count 60000 --seed 14 --rate 25 --event-types 48 --invalid-pct 2 --late-pct 0 \
		--out-of-order 10s > events.ndjson 2>/dev/null
	split -n l/40 -d -a 2 events.ndjson piece.
	evvalidate --contract "$EVPIPE_CONTRACT" --dlq offline.dlq < events.ndjson 2>/dev/null |
		evwindow "${WINDOW_ARGS[@]}" 2>/dev/null | last_versions > want.tsv
	[ "$(wc -l < want.tsv)" -ge 400 ]
	[ "$(wc -l < offline.dlq)" -ge 1000 ]
	base=$(free_ports 21)

	# copy a alone; the events flow in while b, then c, join (cooperative: only the
	# partitions that move stop)
	a_then_b "$base"
	wait_for 30 owns "$base" 3 || { cat err.a err.b >&2; false; }
	sleep 2
	start_copy c $((base + 14))
	wait_for 60 owns $((base + 14)) 2 || { cat err.a err.b err.c >&2; false; }
	wait "$producer"
	sleep 2

	# b and c leave by SIGTERM (static members: their partitions move once their sessions
	# time out, at their last checkpoints' offsets)
	kill -TERM "$pid_b" "$pid_c"
	wait "$pid_b"
	wait "$pid_c"
	wait_for 60 owns "$base" 6 || { cat err.a >&2; false; }
	sleep 2
	kill -TERM "$pid_a"
	wait "$pid_a"

	# the last copy, copy a restarted under its name (a static member: its partitions at
	# once, no session to wait for), to the end of the topic
	start=$SECONDS
	run_last_copy a
	[ $((SECONDS - start)) -lt 30 ]

	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	# every dead letter, by distinct source offset
	kin -C -q -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e |
		jq -r '"\(.source.partition) \(.source.offset)"' | sort -u > dlq.offsets
	[ "$(wc -l < dlq.offsets)" -eq "$(wc -l < offline.dlq)" ]
	# no stage of any copy failed
	run -1 grep -h 'failed\|error' err.a err.b err.c err.last
	# the joins moved partitions: each revoked at the offset kin's revoke line gave, its
	# windows handed over there, and loaded by the next owner at exactly that offset (its
	# assign line's: the offset the old owner committed after the checkpoint that made it
	# durable), not where an earlier checkpoint left it
	revokes err.a err.b err.c > revoked
	loads err.a err.b err.c err.last > loaded
	[ "$(wc -l < revoked)" -ge 4 ]
	comm -23 <(sort -u revoked) <(sort -u loaded) > not_loaded
	[ ! -s not_loaded ] || { echo "revoked, never loaded at that offset:" >&2; cat not_loaded >&2; false; }
	# so nothing is read twice at a join; a copy that leaves is resumed from its last complete
	# checkpoint, and what it read since is read again (reported)
	nread=$(grep -h 'kin: [0-9]* message(s) consumed' err.a err.b err.c err.last |
		awk '{ n += $2 } END { print n }')
	[ "$nread" -ge 60000 ]
	grep -q 'kin: 3 partition(s) handed over in' err.a
	echo "# $nread messages read for 60000; the restarted copy ran to the end in" \
		"$((SECONDS - start)) s; $(grep -ho 'handed over in [0-9.]* s' err.a err.b err.c |
			tr '\n' ' ')" >&3
}

# Each line of stdin, prefixed with the time it was read (epoch ms).
stamp() {
	python3 -u -c 'import sys, time
for l in sys.stdin:
    sys.stdout.write("%d %s" % (time.time() * 1000, l))'
}

# The time (epoch ms) of the first line of stamped file $1 that matches $2.
first_at() {
	grep -m1 -- "$2" "$1" | cut -d' ' -f1
}

@test "cooperative: while a copy joins, the partitions that do not move are never stopped: their windows go on in the copy that keeps them" {
	create_topic 6
	store="file://$BATS_TEST_TMPDIR/store"
	# live events, 48 keys, event time now, about 400 a second for 40 s
	python3 -u -c 'import time
for i in range(16000):
    print("{\"k\":\"key%d\",\"ts\":%d}" % (i % 48, time.time() * 1000), flush=True)
    time.sleep(0.0025)' | kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field k &
	producer=$!
	# a copy: kin | evwindow, 200 ms windows fired as the events come, rows stamped as they
	# arrive
	copy() {
		kin -C -b "$KAFKA_BROKERS" -G "g-$TOPIC" --meta-field _src --checkpoint-store "$store" \
			--job j --copy "$1" --checkpoint-interval 1s --checkpoint-expect evwindow \
			"$TOPIC" 2> >(stamp > "err.$1") | tee >(stamp > "records.$1") |
			evwindow --key k --ts-field ts --tumble 200ms --checkpoint-store "$store" \
				--job j --copy "$1" 2> >(stamp > "werr.$1") | stamp > "rows.$1" &
	}
	copy a
	has_rows() { [ "$(grep -c window_start rows.a)" -ge 200 ]; }
	wait_for 60 has_rows || { cat err.a werr.a >&2; false; }
	sleep 2
	copy b
	wait_for 60 grep -q 'kin: assigned 3' err.b || { cat err.a err.b >&2; false; }
	sleep 2
	kill "$producer"
	revoked_at=$(first_at err.a 'kin: revoked')
	handed_at=$(first_at err.a 'partition(s) handed over in')
	assigned_at=$(first_at err.b 'kin: assigned 3')
	# the partitions that moved, and the keys of each partition
	sed -n 's/.* evwindow: [^ ]* \[\([0-9]*\)\]: revoked at offset.*/\1/p' werr.a | sort -u > moved
	[ "$(wc -l < moved)" -eq 3 ]
	kin -C -q -b "$KAFKA_BROKERS" -t "$TOPIC" -o beginning -e -f '%p %s\n' |
		jq -Rr 'capture("^(?<p>[0-9]+) (?<j>.*)$") | "\(.p) \(.j | fromjson | .k)"' |
		sort -u > key_partition
	[ "$(wc -l < key_partition)" -eq 48 ]
	# only the partitions that moved were revoked, once, and handed over; the others were
	# never revoked nor assigned again (the eager protocol revokes all six)
	[ "$(grep -c 'kin: revoked' err.a)" -eq 1 ]
	[ "$(grep -c '"__evpipe":"revoke"' records.a)" -eq 1 ]
	[ "$(grep -c '"__evpipe":"assign"' records.a)" -eq 1 ]
	run -1 grep -q 'loaded from the hand-over' werr.a
	# rows of the keys copy a kept: after the move as before it, and back no later than the
	# moved partitions' in copy b (they never wait for a hand-over); rows that came while the
	# moved partitions were between copies are counted (librdkafka 2.0 may hold every
	# partition of the copy until the rebalance ends: then none)
	kept_rows() {
		awk -v from="$1" -v to="$2" 'NR == FNR { moved[$1] = 1; next }
			FILENAME == "key_partition" { if (!($1 in moved)) kept["\"" $2 "\""] = 1; next }
			$1 > from && $1 < to && match($0, /"k":"[^"]*"/) &&
			(substr($0, RSTART + 4, RLENGTH - 4) in kept) { print $1 }' moved key_partition rows.a
	}
	first_moved=$(awk 'NR == FNR { moved[$1] = 1; next }
		FILENAME == "key_partition" { if ($1 in moved) m["\"" $2 "\""] = 1; next }
		match($0, /"k":"[^"]*"/) && (substr($0, RSTART + 4, RLENGTH - 4) in m) { print $1; exit }' \
		moved key_partition rows.b)
	first_kept=$(kept_rows "$handed_at" 99999999999999 | head -n 1)
	[ "$(kept_rows "$assigned_at" 99999999999999 | wc -l)" -gt 100 ]
	kept=$(kept_rows "$handed_at" "$assigned_at" | wc -l)
	echo "# first row after the hand-over: kept partitions at $first_kept, moved ones at $first_moved" >&3
	# a 200 ms window fires once every kept partition has moved past it: on a loaded machine
	# that varies by some hundreds of ms either way, a wait for the hand-over is seconds
	[ "$first_kept" -le $((first_moved + 1000)) ]
	echo "# revoke to assignment $((assigned_at - revoked_at)) ms; $(grep -o 'handed over in [0-9.]* s' err.a);" \
		"kept partitions' next row $((first_kept - handed_at)) ms after it ($kept rows before the" \
		"assignment), moved partitions' first row $((first_moved - revoked_at)) ms after the revoke" >&3
}
