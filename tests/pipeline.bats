#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# pipeline.bats: the whole job, pipelines/events-to-clickhouse.sh, against the real Kafka and
# ClickHouse of tests/services: its table equals the windows computed offline from the same
# events, every record is accounted for, a failing stage stops it, SIGTERM stops it in order.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common
load helpers/broker

JOB="$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh"
CONTRACT="$EVPIPE_ROOT/contracts/event.schema.json"
# The job's windows, as the script passes them by default.
AGGREGATES=count,sum:value,min:value,max:value,uniq:user_id
WINDOW_ARGS=(--tumble 1m --key event_type --agg "$AGGREGATES"
	--out-of-orderness 5s --lateness 30s --idle-timeout 60s --max-future 1h)

setup() {
	cd "$BATS_TEST_TMPDIR" || return
	need_services
	TOPIC=$(new_topic job)
	TABLE="evpipe.job_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	# The job's settings; its private directory under this test's, to find what it left.
	export KAFKA_BROKERS CLICKHOUSE_URL
	export EVPIPE_TOPIC=$TOPIC EVPIPE_GROUP="g-$TOPIC" EVPIPE_TABLE=$TABLE
	# checkpoints (on by default) in this test's directory, under a job of its own
	export EVPIPE_JOB="j-$TOPIC" EVPIPE_CHECKPOINT_STORE="file://$BATS_TEST_TMPDIR/checkpoints"
	export EVPIPE_CHECKPOINT_INTERVAL=500ms
	export TMPDIR="$BATS_TEST_TMPDIR/tmp"
	mkdir -p "$TMPDIR"
}

teardown() {
	stop_jobs
	q "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
	# a test that froze or killed the broker of tests/services starts it again, whatever
	# happened
	[ ! -f "$BATS_TEST_TMPDIR/broker.paused" ] || resume_broker
	[ ! -f "$BATS_TEST_TMPDIR/broker.cmd" ] || start_broker
}

q() {
	curl -sS --fail-with-body --max-time 10 "$CLICKHOUSE_URL/" --data-binary "$1"
}

# Events of a fixed seed: 20k over 400 s of event time (7 windows), 5% invalid, 2% late
# (beyond the allowed lateness), and up to 20 s out of order: more than the watermark's 5 s,
# so that some windows are updated after they were written (version 2 and more).
events() {
	evgen --count "${1:-20000}" --seed 77 --rate 50 --invalid-pct 5 --late-pct 2 \
		--out-of-order 20s 2>/dev/null
}

# Produce a file to the topic, keyed by event type; "-p 0" puts it all on partition 0.
produce() {
	kin -P -q -b "$KAFKA_BROKERS" -t "$TOPIC" --key-field event_type "$@"
}

# What the job must write, computed offline from the events file $1 by the same tools:
# the last version of each window and event type, as TSV in the table's column order.
# Reals are written with 17 digits on both sides, so that equal doubles compare equal
# whatever printed them.
offline_rows() {
	evvalidate --contract "$CONTRACT" --dlq offline.dlq < "$1" 2>/dev/null |
		evwindow "${WINDOW_ARGS[@]}" --late offline.late 2>/dev/null |
		jq -s -r 'group_by([.window_start, .event_type]) | map(max_by(.version)) | .[] |
			[.window_start, .window_end, .event_type, .count, .sum_value, .min_value,
			 .max_value, .uniq_user_id, .version] | @tsv' | reals
}

table_rows() {
	q "SELECT window_start, window_end, event_type, count, sum_value, min_value, max_value,
		uniq_user_id, version FROM $TABLE FINAL ORDER BY window_start, event_type FORMAT TSV" |
		reals
}

reals() {
	awk -F'\t' -v OFS='\t' '{ for (i = 5; i <= 7; i++) $i = sprintf("%.17g", $i); print }'
}

# The stage serving metrics on port $1 has read $2 records.
read_all() {
	curl -sf "http://127.0.0.1:$1/metrics" | grep -q "^evpipe_records_in_total{.*} $2\$"
}

listening() {
	[ -n "$(ss -Htln "sport = :$1")" ]
}

has_rows() {
	local n
	n=$(q "SELECT count() FROM $TABLE" 2>/dev/null) && [ "$n" -gt 0 ]
}

# The records of a topic, from its beginning to its end.
topic_records() {
	kin -C -q -b "$KAFKA_BROKERS" -t "$1" -o beginning -e
}

# No process of this test's job is left: every stage has this test's directory (its
# private pipes) or its topic in its arguments.
nothing_left() {
	if pgrep -af -- "$BATS_TEST_TMPDIR|$TOPIC"; then
		echo "processes of this test are left (above)" >&2
		return 1
	fi
}

@test "--help lists every setting of pipelines/env.example; wrong settings exit 2" {
	run -0 --separate-stderr "$JOB" --help
	[[ "$output" == "usage: pipelines/events-to-clickhouse.sh"* ]]
	vars=$(sed -n 's/^#* *\([A-Z_][A-Z_0-9]*\)=.*/\1/p' "$EVPIPE_ROOT/pipelines/env.example" | sort -u)
	[ "$(wc -l <<<"$vars")" -ge 20 ]
	for v in $vars; do
		[[ "$output" == *"  $v "* ]] || [[ "$output" == *"  $v"$'\n'* ]] ||
			{ echo "--help does not list $v"; false; }
	done
	# and every setting --help lists is in env.example
	while read -r v; do
		grep -q "^#* *$v=" "$EVPIPE_ROOT/pipelines/env.example" || { echo "env.example lacks $v"; false; }
	done < <(sed -n 's/^  \([A-Z_][A-Z_0-9]*\).*/\1/p' <<<"$output")
	run -2 --separate-stderr "$JOB" --no-such-option
	[[ "$stderr" == *"unknown argument '--no-such-option'"* ]]
	run -2 --separate-stderr env -u KAFKA_BROKERS "$JOB"
	[[ "$stderr" == *"KAFKA_BROKERS is not set"* ]]
	EVPIPE_EXIT_AT_END=yes run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"EVPIPE_EXIT_AT_END must be 0 or 1"* ]]
	EVPIPE_BIN=/nonexistent PATH=/usr/bin:/bin run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"'kin' not found"* ]]
}

@test "settings are checked before any stage starts (exit 2); an unknown EVPIPE_* variable is named" {
	local v
	for v in EVPIPE_WINDOW EVPIPE_OUT_OF_ORDERNESS EVPIPE_LATENESS EVPIPE_IDLE_TIMEOUT \
		EVPIPE_MAX_FUTURE EVPIPE_CHECKPOINT_INTERVAL EVPIPE_CHECKPOINT_TIMEOUT \
		EVPIPE_CLICKHOUSE_RETRY_TIMEOUT; do
		run -2 --separate-stderr env "$v=1x" "$JOB"
		[ "${stderr%%$'\n'*}" = "events-to-clickhouse: $v must be a duration such as 250ms, 10s, 5m or 1h, not '1x'" ]
		[ -z "$output" ]
		# nothing started: no stage named, no private directory made
		[[ "$stderr" != *consuming* ]]
		[ -z "$(ls "$TMPDIR")" ]
	done
	EVPIPE_WINDOW=0s run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"EVPIPE_WINDOW must be longer than 0"* ]]
	EVPIPE_TOPIC='my topic' run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"EVPIPE_TOPIC must be a Kafka topic name"* ]]
	EVPIPE_TABLE='t; DROP TABLE x' EVPIPE_CREATE_TABLE=0 run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"EVPIPE_TABLE must be DB.TABLE"* ]]
	echo '{"properties":{"host":{"format":"idn-hostname"}}}' > contract.json
	EVPIPE_CONTRACT=contract.json run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"evvalidate: contract 'contract.json': unsupported format 'idn-hostname'"* ]]
	[[ "$stderr" == *"EVPIPE_CONTRACT 'contract.json' cannot be used (see above)"* ]]
	EVPIPE_LOG_LEVEL=verbose run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"EVPIPE_LOG_LEVEL must be error, warn, info or debug"* ]]
	EVPIPE_KAFKA_CONFIG=/nonexistent run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"cannot read EVPIPE_KAFKA_CONFIG '/nonexistent'"* ]]
	# a typo is named (the wrong window stops the job before it starts)
	EVPIPE_TOPC=other EVPIPE_WINDOW=1x run -2 --separate-stderr "$JOB"
	[[ "$stderr" == *"warning: EVPIPE_TOPC is not a setting of this job: ignored (--help lists them)"* ]]
	[[ "$stderr" != *"EVPIPE_BIN is not"* ]]
	[[ "$stderr" != *"EVPIPE_ROOT is not"* ]]
}

@test "a ClickHouse URL or a store with credentials in it is refused (exit 2) without showing them" {
	local url
	for url in "http://evpipe:s3cr3t@${CLICKHOUSE_URL#http://}" "$CLICKHOUSE_URL/?password=s3cr3t" \
		"$CLICKHOUSE_URL/?user=evpipe&password=s3cr3t"; do
		CLICKHOUSE_URL=$url run -2 --separate-stderr "$JOB" 3>&-
		[[ "$stderr" == *"CLICKHOUSE_URL carries credentials: give them in CLICKHOUSE_USER and CLICKHOUSE_PASSWORD"* ]]
		[[ "$stderr$output" != *s3cr3t* ]]
	done
	EVPIPE_CHECKPOINT_STORE="s3://AKIDEXAMPLE:s3cr3t@$S3_BUCKET/p" run -2 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"EVPIPE_CHECKPOINT_STORE carries credentials"* ]]
	[[ "$stderr$output" != *s3cr3t* ]]
	[[ "$stderr$output" != *AKIDEXAMPLE* ]]
	nothing_left
}

@test "one partition: the table equals the windows computed offline; every record accounted for" {
	events > events.ndjson
	produce -p 0 < events.ndjson
	EVPIPE_EXIT_AT_END=1 run -0 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"finished: the end of '$TOPIC' was reached"* ]]

	offline_rows events.ndjson > want.tsv
	table_rows > got.tsv
	[ "$(wc -l < want.tsv)" -ge 28 ] # 7 windows of 4 event types
	awk -F'\t' '$9 > 1 { n++ } END { exit !(n > 0) }' want.tsv # some windows were updated
	assert_same_file got.tsv want.tsv

	# in = valid + dead letters: the invalid events are in the .dlq topic, whole
	topic_records "$TOPIC.dlq" > dlq
	[ "$(wc -l < dlq)" -eq "$(wc -l < offline.dlq)" ]
	[ "$(wc -l < dlq)" -gt 800 ]
	jq -r .raw dlq | sort > dlq.raw
	jq -r .raw offline.dlq | sort > want.raw
	assert_same_file dlq.raw want.raw
	[ "$(jq -s 'map(.source.topic) | unique | .[]' -r dlq)" = "$TOPIC" ]
	windowed=$(q "SELECT sum(count) FROM $TABLE FINAL")
	# the late events are in the .late topic, with reason late
	topic_records "$TOPIC.late" > late
	[ "$(jq -r .reason late | sort -u)" = late ]
	[ "$(wc -l < late)" -eq "$(wc -l < offline.late)" ]
	[ "$(wc -l < late)" -gt 300 ]
	[ $((windowed + $(wc -l < late) + $(wc -l < dlq))) -eq 20000 ]
	nothing_left
}

@test "three partitions keyed by event type: valid = windowed + late, invalid in the .dlq topic" {
	events 12000 > events.ndjson
	produce < events.ndjson
	EVPIPE_EXIT_AT_END=1 run -0 --separate-stderr "$JOB" 3>&-
	topic_records "$TOPIC.dlq" > dlq
	topic_records "$TOPIC.late" > late
	evvalidate --contract "$CONTRACT" --dlq offline.dlq < events.ndjson > valid.ndjson 2>/dev/null
	windowed=$(q "SELECT sum(count) FROM $TABLE FINAL")
	[ "$(wc -l < dlq)" -eq "$(wc -l < offline.dlq)" ]
	[ $((windowed + $(wc -l < late))) -eq "$(wc -l < valid.ndjson)" ]
	# the per-partition watermarks leave the late ones late, whatever the interleaving
	[ "$(wc -l < late)" -gt 150 ]
	# every row equals the reference model's (tests/window_ref.py) on the valid events: the
	# events out of order by up to 20 s are within the lateness whatever order the partitions
	# were read in, so the final rows are the same, versions included: a version counts the
	# records folded (ADR 0016), not how often the window was written, which depends on
	# that order
	"$EVPIPE_ROOT/tests/window_ref.py" "${WINDOW_ARGS[@]}" --final --late model.late < valid.ndjson |
		jq -r '[.window_start, .window_end, .event_type, .count, .sum_value, .min_value,
			.max_value, .uniq_user_id, .version] | @tsv' | reals > want.tsv
	table_rows > got.tsv
	[ "$(wc -l < want.tsv)" -ge 16 ] # 4 minutes and more of 4 event types
	assert_same_file got.tsv want.tsv
	nothing_left
}

@test "without checkpoints, SIGTERM stops the job in order (exit 0), state kept; a restart ends with the offline result" {
	events > events.ndjson
	head -n 12000 events.ndjson | produce -p 0
	export EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state" EVPIPE_CHECKPOINT_STORE=none
	port=$(free_ports 7)
	EVPIPE_METRICS_PORT_BASE=$port "$JOB" > out 2> err 3>&- &
	job=$!
	# the windows that close before the stop are written
	wait_for 30 has_rows || { cat err >&2; false; }
	# every stage serves its metrics on the port of the map in --help
	i=0
	for tool in kin evvalidate evwindow chsink dlqsink dlqsink dlqsink; do
		curl -sf "http://127.0.0.1:$((port + i))/metrics" | grep -q "tool=\"$tool\"" ||
			{ echo "no metrics of $tool on port $((port + i))"; false; }
		i=$((i + 1))
	done
	kill -TERM "$job"
	status=0
	wait "$job" || status=$?
	cat err >&2
	[ "$status" -eq 0 ]
	grep -q "stopped; open windows saved in $EVPIPE_STATE_DIR" err
	grep -q "evwindow: state saved in" err
	[ ! -s out ]
	nothing_left
	before=$(q "SELECT count() FROM $TABLE FINAL")

	# the rest of the events, then a run to the end: as if there had been no stop
	tail -n +12001 events.ndjson | produce -p 0
	EVPIPE_EXIT_AT_END=1 run -0 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"evwindow: continuing from the state in"* ]]
	offline_rows events.ndjson > want.tsv
	table_rows > got.tsv
	[ "$before" -lt "$(wc -l < want.tsv)" ]
	assert_same_file got.tsv want.tsv
	[ "$(topic_records "$TOPIC.late" | wc -l)" -eq "$(wc -l < offline.late)" ]
	nothing_left
}

@test "without checkpoints or a state directory, SIGTERM writes the open windows, everything accounted for" {
	export EVPIPE_CHECKPOINT_STORE=none
	events 6000 > events.ndjson
	produce -p 0 < events.ndjson
	port=$(free_ports 7)
	EVPIPE_METRICS_PORT_BASE=$port "$JOB" 2> err 3>&- &
	job=$!
	wait_for 30 read_all $((port + 1)) 6000 || { cat err >&2; false; }
	kill -TERM "$job"
	status=0
	wait "$job" || status=$?
	[ "$status" -eq 0 ]
	grep -q "evwindow: stopping: firing the open windows" err
	windowed=$(q "SELECT sum(count) FROM $TABLE FINAL")
	late=$(topic_records "$TOPIC.late" | wc -l)
	dead=$(topic_records "$TOPIC.dlq" | wc -l)
	[ $((windowed + late + dead)) -eq 6000 ]
	# the last window too: its events arrived, no later event closed it
	offline_rows events.ndjson > want.tsv
	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	nothing_left
}

# A complete checkpoint of job evpipe with records read is in the store $1.
has_checkpoint() {
	local show copy=()
	# a job with a state directory is a copy with a name, kept there (ADR 0025)
	[ ! -s "${EVPIPE_STATE_DIR:-/nonexistent}/copy" ] || copy=(--copy "$(cat "$EVPIPE_STATE_DIR/copy")")
	show=$(ckpt --store "$1" --job evpipe "${copy[@]}" show latest -J 2>/dev/null) || return 1
	jq -e '.state == "complete" and ([.offsets[].offset] | add) > 0' <<<"$show" >/dev/null
}

# The job in the background until a complete checkpoint of it is in the store $1, then
# stopped by SIGTERM: it must exit 0 (its stdout in out, its stderr in err).
run_to_checkpoint() {
	local job
	"$JOB" > out 2> err 3>&- &
	job=$!
	wait_for 60 has_checkpoint "$1" || { cat err >&2; false; }
	kill -TERM "$job"
	wait "$job" || { cat err >&2; false; }
}

@test "another pipeline's checkpoint under the default job and store is refused, naming what differs; EVPIPE_RESTORE_MISMATCH=allow restores it" {
	events 4000 > events.ndjson
	produce -p 0 < events.ndjson
	# the default job (evpipe) and store (file://$HOME/.local/state/evpipe/checkpoints)
	unset EVPIPE_JOB EVPIPE_CHECKPOINT_STORE EVPIPE_STATE_DIR
	export HOME="$BATS_TEST_TMPDIR/home"
	store="file://$HOME/.local/state/evpipe/checkpoints"
	run_to_checkpoint "$store"
	first=$TOPIC

	# the same job name and store, another topic, group and table
	TOPIC=$(new_topic other)
	TABLE2="${TABLE}_other"
	export EVPIPE_TOPIC=$TOPIC EVPIPE_GROUP="g-$TOPIC" EVPIPE_TABLE=$TABLE2
	produce -p 0 < events.ndjson
	EVPIPE_EXIT_AT_END=1 run -1 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"kin: checkpoints: checkpoint "*" of job 'evpipe' is of another pipeline: stage 'kin' topics: [\"$first\"] in the checkpoint, [\"$TOPIC\"] here; group: \"g-$first\" in the checkpoint, \"g-$TOPIC\" here; "*"(--restore-mismatch allow)"* ]]
	[[ "$stderr" == *"chsink: checkpoints: checkpoint "*" is of another pipeline: stage 'chsink' table: \"$TABLE\" in the checkpoint, \"$TABLE2\" here"* ]]
	[[ "$stderr" == *"events-to-clickhouse: stage '"*"' failed"* ]]
	[[ "$stderr" != *"kin: warning: restoring checkpoint"* ]]
	# nothing was written: chsink refused before it made the table
	[ "$(q "EXISTS TABLE $TABLE2")" = 0 ]
	nothing_left

	# with the flag, it is restored, and the restore is a warning with its id and age
	EVPIPE_EXIT_AT_END=1 EVPIPE_RESTORE_MISMATCH=allow run -0 --separate-stderr "$JOB" 3>&-
	q "DROP TABLE IF EXISTS $TABLE2" >/dev/null
	[[ "$stderr" == *"kin: warning: checkpoint "*" of job 'evpipe' is of another pipeline (topics: "*"): restoring it anyway (--restore-mismatch allow)"* ]]
	[[ "$stderr" =~ kin:\ warning:\ restoring\ checkpoint\ [0-9]+\ of\ job\ \'evpipe\'\ from\ $store,\ completed\ [0-9]+\ s\ ago ]]
	[[ "$stderr" == *"evwindow: warning: restoring checkpoint "* ]]
	nothing_left
}

@test "EVPIPE_STATE_DIR with the default store under it: a restart restores, the working copy does not empty the store" {
	events 4000 > events.ndjson
	produce -p 0 < events.ndjson
	unset EVPIPE_JOB EVPIPE_CHECKPOINT_STORE
	export EVPIPE_STATE_DIR="$BATS_TEST_TMPDIR/state"
	store="file://$EVPIPE_STATE_DIR/checkpoints"
	run_to_checkpoint "$store"
	EVPIPE_EXIT_AT_END=1 run -0 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"evwindow: warning: restoring checkpoint "*" of job 'evpipe' from $store"* ]]
	has_checkpoint "$store"
	nothing_left
}

@test "ClickHouse unreachable: chsink fails, the job stops, exit 1 naming it, nothing left" {
	events 2000 | produce
	CLICKHOUSE_URL=http://127.0.0.1:9 EVPIPE_CLICKHOUSE_RETRY_TIMEOUT=1s \
		run -1 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"events-to-clickhouse: stage 'chsink' failed (exit status 1)"* ]]
	nothing_left
	[ -z "$(ls "$TMPDIR")" ] # the private directory is gone
}

@test "a stage killed: the job stops, exit 1 naming it, nothing left" {
	events 2000 | produce
	"$JOB" 2> err 3>&- &
	job=$!
	wait_for 30 pgrep -f -- "^evwindow .*$BATS_TEST_TMPDIR"
	sleep 0.5
	pkill -KILL -f -- "^evwindow .*$BATS_TEST_TMPDIR"
	status=0
	wait "$job" || status=$?
	cat err >&2
	[ "$status" -eq 1 ]
	grep -q "stage 'evwindow' failed (killed by SIGKILL, exit status 137)" err
	nothing_left
	[ -z "$(ls "$TMPDIR")" ]
}

@test "a stage that cannot start (its metrics port is taken): exit 1 naming it, nothing left" {
	events 2000 | produce
	port=$(free_ports 7)
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' \
		$((port + 1)) 3>&- &
	taken=$!
	wait_for 10 listening $((port + 1))
	EVPIPE_METRICS_PORT_BASE=$port run -1 --separate-stderr "$JOB" 3>&-
	kill "$taken"
	[[ "$stderr" == *"evvalidate: cannot serve metrics on '127.0.0.1:$((port + 1))'"* ]]
	[[ "$stderr" == *"events-to-clickhouse: stage 'evvalidate' failed (exit status 1)"* ]]
	nothing_left
	[ -z "$(ls "$TMPDIR")" ]
}

# Stand-ins for the five tools in $1: each opens its side outputs (--dlq, --late) and drains
# its input, kin sleeps $FAKE_KIN_SECONDS instead; each appends the time it exits (ns) to
# $FAKE_EXITS.
fake_tools() {
	mkdir -p "$1"
	cat > "$1/stage" <<'FAKE'
#!/bin/bash
[ "$1" != -q ] || exit 0 # evvalidate checking the contract
prev=
for a; do
	case $prev in --dlq | --late) exec {fd}>"$a" ;; esac
	prev=$a
done
case ${0##*/} in kin) sleep "$FAKE_KIN_SECONDS" ;; *) cat > /dev/null ;; esac
date +%s%N >> "$FAKE_EXITS"
FAKE
	chmod +x "$1/stage"
	for t in kin evvalidate evwindow chsink dlqsink; do ln -s stage "$1/$t"; done
}

@test "the job ends when its last stage does, not up to 0.2 s later" {
	fake_tools fake
	export EVPIPE_BIN=$PWD/fake EVPIPE_CHECKPOINT_STORE=none FAKE_EXITS=$PWD/exits
	# kin's end 50 ms later each time: a job that looked for ended stages every 0.2 s
	# would end 100 ms or more after the last one at least twice
	for ms in 200 250 300 350 400; do
		rm -f exits
		FAKE_KIN_SECONDS=0.$ms run -0 --separate-stderr "$JOB" 3>&-
		end=$(date +%s%N)
		[ "$(wc -l < exits)" -eq 7 ]
		late=$(((end - $(sort -n exits | tail -n 1)) / 1000000))
		echo "kin for ${ms} ms: the job ended ${late} ms after its last stage" >&2
		[ "$late" -lt 80 ]
	done
}

@test "make demo's script: on files, and through Kafka and ClickHouse, everything accounted for" {
	export EVPIPE_DEMO_EVENTS=3000 EVPIPE_DEMO_TABLE=$TABLE
	EVPIPE_DEMO_KAFKA=0 EVPIPE_DEMO_DIR="$BATS_TEST_TMPDIR/files" \
		run -0 --separate-stderr "$EVPIPE_ROOT/pipelines/demo.sh" 3>&-
	[[ "$output" == *"accounting: 3000 events in = "* ]]
	# the table has the rows of the last versions: 2 windows (60 s of events, some before
	# the first minute) of 4 event types
	[ "$(grep -c '^  2024-11-2[34] ' <<<"$output")" -eq 8 ]
	[ -s files/late.ndjson ] && [ -s files/dlq.ndjson ] && [ -s files/rows.ndjson ]
	files_table=$(grep '^  2024-' <<<"$output")
	[[ "$stderr" != *"services-down"* ]]
	EVPIPE_DEMO_KAFKA=1 EVPIPE_DEMO_DIR="$BATS_TEST_TMPDIR/kafka" \
		run -0 --separate-stderr "$EVPIPE_ROOT/pipelines/demo.sh" 3>&-
	[[ "$output" == *"aggregates in ClickHouse (SELECT "*"FROM $TABLE FINAL"* ]]
	# and it says how to stop the servers it leaves running
	[[ "$stderr" == *"'make services-down' stops the local ones"* ]]
	[[ "$output" == *"accounting: 3000 events in = "* ]]
	[ "$(grep -c '^  2024-' <<<"$output")" -eq 8 ]
	# the same windows, whatever the order the partitions were read in
	[ "$(grep '^  2024-' <<<"$output" | awk '{ print $1, $2, $3 }')" = "$(awk '{ print $1, $2, $3 }' <<<"$files_table")" ]
}

# The newest complete checkpoint of this test's job in the S3 store (0: none yet).
latest_checkpoint() {
	s3cmd -c "$S3CMD_CONFIG" ls -r "$EVPIPE_CHECKPOINT_STORE/$EVPIPE_JOB/" 2>/dev/null |
		sed -n 's|.*/chk-0*\([0-9][0-9]*\)/_manifest.json$|\1|p' | sort -n | tail -n 1 | grep . ||
		echo 0
}

newer_checkpoint() {
	[ "$(latest_checkpoint)" -gt "$1" ]
}

# The id of the newest checkpoint of the S3 store when it has no manifest yet but the object
# $1 (e.g. dlqsink-invalid.json); else fails.
inflight_with() {
	local objs n
	objs=$(s3cmd -c "$S3CMD_CONFIG" ls -r "$EVPIPE_CHECKPOINT_STORE/$EVPIPE_JOB/" 2>/dev/null |
		sed -n 's|.*/chk-0*\([0-9][0-9]*\)/\(.*\)$|\1 \2|p')
	n=$(cut -d' ' -f1 <<<"$objs" | sort -n | tail -n 1)
	[ -n "$n" ] && grep -qx "$n $1" <<<"$objs" && ! grep -qx "$n _manifest.json" <<<"$objs" &&
		echo "$n"
}

# The pid of the job's stage $1 (kin, evvalidate, evwindow, chsink, dlqsink-invalid, ...).
stage_pid() {
	pgrep -f -- "^${1%%-*} .*--job $EVPIPE_JOB --stage $1( |\$)" | head -n 1
}

# The dead letters or late records of a topic as a read_committed consumer sees them, or of an
# offline file: reason and original bytes, one JSON array a line, sorted.
side_records() {
	if [ -f "$1" ]; then cat "$1"; else topic_records "$1"; fi |
		jq -c '[.reason, .raw, .raw_b64]' | LC_ALL=C sort
}

# Produce the events' pieces $1 to $2 (of 120), one every $3 s (0.3): records flow during a
# run.
produce_pieces() {
	local n
	for n in $(seq -f %03g "$1" "$2"); do
		produce -p 0 < "piece.$n"
		sleep "${3:-0.3}"
	done
}

# The events of an exactly-once test: $1 of them in events.ndjson, split into $2 pieces
# (piece.000, ...), and what the job must write, computed offline (want.tsv, offline.dlq,
# offline.late).
eo_events() {
	events "$1" > events.ndjson
	split -n "l/$2" -d -a 3 events.ndjson piece.
	offline_rows events.ndjson > want.tsv
}

# The last run of an exactly-once test, from the latest checkpoint to the end of the topic: the
# table, and the dead letters and late records a read_committed consumer sees (got.dlq,
# got.late), equal the offline run's (want.dlq, want.late).
eo_last_run() {
	EVPIPE_EXIT_AT_END=1 run -0 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"restoring checkpoint"* ]]
	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	side_records "$TOPIC.dlq" > got.dlq
	side_records offline.dlq > want.dlq
	assert_same_file got.dlq want.dlq
	side_records "$TOPIC.late" > got.late
	side_records offline.late > want.late
	assert_same_file got.late want.late
}

# The exactly-once test (issues 8 and 18): checkpoints every second to the S3 server, the
# events produced in 12 parts, each while a run goes (in 10 pieces); in each run a stage is killed with SIGKILL
# at a random moment after a checkpoint completed (11 kills: every stage, kin and evwindow
# twice), and the next run restores the latest checkpoint. One kill falls between a manifest and
# its committed line: chsink is stopped (SIGSTOP) until dlqsink-invalid wrote its part of the
# checkpoint in flight, then evvalidate, which forwards the committed line to dlqsink-invalid;
# chsink goes on, the checkpoint completes, and dlqsink-invalid is killed then; the restart must
# commit that checkpoint's transaction (it happened), not abort it. A last run to the end of
# the topic. The table must be the one computed offline, as if nothing had failed, and a
# read_committed consumer of the dead-letter and late topics sees every record of the offline
# run once, byte for byte; a read_uncommitted one sees the aborted copies too.
@test "exactly once: 11 SIGKILLs of every stage, one between a manifest and its commit; the table, the dead letters and the late records equal the offline run's" {
	eo_events 200000 120
	export EVPIPE_CHECKPOINT_STORE="s3://$S3_BUCKET/eo-$TOPIC" EVPIPE_CHECKPOINT_INTERVAL=1s
	export S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	# (not i: bats' run sets it)
	local stages=(kin evvalidate evwindow chsink dlqsink-invalid dlqsink-late dlqsink-rejected
		window kin evwindow dlqsink-late)
	local r stage pid job producer status before restored=0 started v c n
	produce -p 0 < piece.000 # the topic exists when the first run starts
	for r in "${!stages[@]}"; do
		stage=${stages[$r]}
		before=$(latest_checkpoint)
		started=$(($(date +%s%3N) - 1000))
		"$JOB" 2> "err.$r" 3>&- &
		job=$!
		wait_for 120 newer_checkpoint "$before" || { cat "err.$r" >&2; false; }
		# the job is running: its part of the events flows in from now on
		if [ "$stage" = window ]; then
			produce_pieces $((10 * r)) $((10 * r + 9)) 1 &
		else
			produce_pieces $((r ? 10 * r : 1)) $((10 * r + 9)) &
		fi
		producer=$!
		case $r in
		1 | 5 | 8)
			# the last run's transactions were fenced and aborted by the restart
			sleep 5
			none_open "evpipe.$EVPIPE_JOB." "$started"
			;;
		esac
		if [ "$stage" = window ]; then
			# between the manifest of a checkpoint and its committed line
			stage=dlqsink-invalid
			# chsink stopped: the checkpoint in flight cannot complete; until its barrier
			# went through evvalidate, and dlqsink-invalid wrote its part with a transaction
			c=$(stage_pid chsink)
			for _ in $(seq 10); do
				kill -STOP "$c"
				wait_for 8 inflight_with dlqsink-invalid/transaction.log && break
				kill -CONT "$c"
				sleep 1
			done
			n=$(inflight_with dlqsink-invalid/transaction.log) || { kill -CONT "$c"; false; }
			# evvalidate stopped: the committed line of that checkpoint stops there
			v=$(stage_pid evvalidate)
			kill -STOP "$v"
			kill -CONT "$c"
			wait_for 30 newer_checkpoint $((n - 1)) || { kill -CONT "$v"; false; }
			pid=$(stage_pid dlqsink-invalid)
			kill -KILL "$pid" || true
			kill -CONT "$v"
		else
			sleep "0.$((RANDOM % 10))"
			pid=$(stage_pid "$stage")
			[ -n "$pid" ] || { echo "no $stage running" >&2; cat "err.$r" >&2; false; }
			kill -KILL "$pid"
		fi
		status=0
		wait "$job" || status=$?
		[ "$status" -eq 1 ] || { cat "err.$r" >&2; false; }
		wait "$producer"
		grep -q "stage '$stage' failed (killed by SIGKILL" "err.$r"
		run -1 grep -q "firing the open windows" "err.$r"
		grep -q "restoring checkpoint" "err.$r" && restored=$((restored + 1))
		nothing_left
	done
	[ "$restored" -ge 10 ] # every run after the first continued from a checkpoint
	# the run after the kill between a manifest and its commit committed that transaction
	grep -q "dlqsink: checkpoint [0-9]* is complete but its transaction did not commit before the restart" err.8
	produce_pieces 110 119
	# every dead letter and late record once, its reason and bytes those of the offline run
	eo_last_run
	# the aborted copies are in the topics: the transactions were real
	local committed uncommitted
	committed=$(wc -l < got.dlq)
	uncommitted=$(kin -C -q -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e \
		-X isolation.level=read_uncommitted | wc -l)
	echo "dead letters: $committed committed, $uncommitted with the aborted copies" >&2
	[ "$uncommitted" -gt "$committed" ]
	none_open "evpipe.$EVPIPE_JOB." 0
	nothing_left
}

# The broker killed (issue 18): the job with exactly-once side outputs runs with checkpoints to
# the S3 server while the events are produced in 30 pieces; after a random number of them, the
# broker of tests/services is killed with SIGKILL, the side outputs of the last second in open
# transactions; it is started again (same port, same data) and the rest is produced. The job,
# whether it failed or waited for the broker, is stopped and run again to the end of the topic.
# A read_committed consumer of the dead-letter and late topics sees every record of the offline
# run once, byte for byte (a duplicate or a loss is a difference), and the table is the one
# computed offline. The job outlives the broker (its clients reconnect) and stops cleanly, so
# this checks that side outputs in flight across a broker crash are committed once; it does not
# replay past a checkpoint (the stage kills of the test above do).
@test "exactly once: the Kafka broker killed with SIGKILL mid-run and restarted; the table, the dead letters and the late records equal the offline run's" {
	eo_events 60000 30
	export EVPIPE_CHECKPOINT_STORE="s3://$S3_BUCKET/eo-$TOPIC" EVPIPE_CHECKPOINT_INTERVAL=1s
	export S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	local job status k=$((5 + RANDOM % 15))
	produce -p 0 < piece.000
	"$JOB" 2> err.0 3>&- &
	job=$!
	wait_for 120 newer_checkpoint 0 || { cat err.0 >&2; false; }
	produce_pieces 1 "$k"
	kill_broker
	sleep 2
	start_broker
	produce_pieces $((k + 1)) 29
	# the job failed, or it waited for the broker: then it is stopped
	kill -TERM "$job" 2> /dev/null || true
	status=0
	wait "$job" || status=$?
	echo "killed after piece $k; the run exited with $status:" >&2
	grep -v '^evpipe' err.0 | tail -n 5 >&2
	eo_last_run
	[ -s want.dlq ]
	[ -s want.late ]
	echo "dead letters: $(wc -l < got.dlq) committed, $(kin -C -q -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" \
		-o beginning -e -X isolation.level=read_uncommitted | wc -l) with the aborted copies" >&2
	none_open "evpipe.$EVPIPE_JOB." 0
	nothing_left
}

# kin killed while the broker is down (issue 18): the job stops its other stages with SIGTERM
# while dlqsink-invalid has dead letters it cannot deliver in an open transaction: it was
# stopped (SIGSTOP) while evvalidate dead-lettered a piece of the events, the broker was frozen
# (SIGSTOP: a kill would cost every test sharing it a minute of log recovery), and it went on
# with the broker gone. Each of its waits is bounded (--timeout, 10 s, after a stop signal):
# the job ends within seconds, exit 1 naming kin, with the broker still down; it is resumed at
# once. With the broker back, a restart from the last checkpoint ends with the offline result,
# each dead letter and late record once. (The job once waited for more than 6 minutes.)
@test "exactly once: kin killed while the broker is down: the job ends within seconds; a restart gives the offline result" {
	eo_events 30000 30
	export EVPIPE_CHECKPOINT_INTERVAL=1s
	local job port t0 elapsed d status=0 k=$((3 + RANDOM % 20))
	port=$(free_ports 7)
	produce -p 0 < piece.000
	EVPIPE_METRICS_PORT_BASE=$port "$JOB" 2> err.0 3>&- &
	job=$!
	wait_for 120 checkpoint_done || { cat err.0 >&2; false; }
	produce_pieces 1 $((k - 1)) 0.2
	d=$(stage_pid dlqsink-invalid)
	kill -STOP "$d"
	produce_pieces "$k" "$k" 0
	# evvalidate has read pieces 0 to k: their dead letters wait in dlqsink-invalid's pipe
	wait_for 30 read_all $((port + 1)) "$(seq -f piece.%03g 0 "$k" | xargs cat | wc -l)" ||
		{ kill -CONT "$d"; false; }
	pause_broker
	kill -CONT "$d"
	sleep 1
	t0=$SECONDS
	kill -KILL "$(stage_pid kin)"
	wait_for 30 exited "$job" || {
		echo "the job still runs $((SECONDS - t0)) s after kin was killed:" >&2
		pgrep -af -- "$TOPIC" >&2 || true
		resume_broker
		false
	}
	elapsed=$((SECONDS - t0))
	wait "$job" || status=$?
	resume_broker
	echo "the job ended $elapsed s after kin was killed (after piece $k), exit status $status" >&2
	grep -v '^evpipe' err.0 | tail -n 8 >&2
	[ "$status" -eq 1 ]
	grep -q "stage 'kin' failed (killed by SIGKILL" err.0
	nothing_left
	produce_pieces $((k + 1)) 29 0
	eo_last_run
	none_open "evpipe.$EVPIPE_JOB." 0
	nothing_left
}

# A checkpoint of this test's job is complete (its file store).
checkpoint_done() {
	[ -n "$(find "$BATS_TEST_TMPDIR/checkpoints" -name _manifest.json 2> /dev/null | head -n 1)" ]
}

# The process $1 has ended.
exited() {
	if kill -0 "$1" 2> /dev/null; then return 1; fi
}

# Checkpoints of one outcome that kin's metrics on port $1 count.
checkpoints_total() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		sed -n "s/^evpipe_checkpoints_total{.*outcome=\"$2\".*} \([0-9]*\)$/\1/p"
}

more_checkpoints() { # PORT OUTCOME THAN
	local n
	n=$(checkpoints_total "$1" "$2") && [ "${n:-0}" -gt "$3" ]
}

# start_proxy PORT HOST:PORT: a TCP proxy (tests/helpers/tcp_proxy.py) on 127.0.0.1:PORT to a
# server, its pid in $proxy_pid, listening when this returns.
start_proxy() {
	python3 "$EVPIPE_ROOT/tests/helpers/tcp_proxy.py" "$1" "$2" 3>&- &
	proxy_pid=$!
	wait_for 10 listening "$1"
}

# The job reaches S3 through a TCP proxy (tests/helpers/tcp_proxy.py): killing the proxy is
# an outage of S3 for the job, while the server and the checkpoints in it stay.
@test "S3 outage: checkpoints fail and are counted, the job keeps running, they resume when S3 is back" {
	events 20000 > events.ndjson
	produce -p 0 < events.ndjson
	local port proxy proxy_pid job completed failed status s3=${S3_ENDPOINT#http://}
	port=$(free_ports 8)
	proxy=$((port + 7))
	start_proxy "$proxy" "$s3"
	export S3_ENDPOINT="http://127.0.0.1:$proxy" AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	export EVPIPE_CHECKPOINT_STORE="s3://$S3_BUCKET/outage-$TOPIC" EVPIPE_CHECKPOINT_INTERVAL=500ms \
		EVPIPE_CHECKPOINT_TIMEOUT=2s EVPIPE_CHECKPOINT_TOLERABLE_FAILURES=1000
	EVPIPE_METRICS_PORT_BASE=$port "$JOB" 2> err 3>&- &
	job=$!
	wait_for 60 more_checkpoints "$port" completed 1 || { cat err >&2; false; }

	kill "$proxy_pid" # S3 is gone
	wait "$proxy_pid" || true
	failed=$(checkpoints_total "$port" failed)
	wait_for 60 more_checkpoints "$port" failed "${failed:-0}" || { cat err >&2; false; }
	completed=$(checkpoints_total "$port" completed)
	sleep 3
	kill -0 "$job" # the job keeps running
	[ "$(checkpoints_total "$port" completed)" -eq "$completed" ]

	start_proxy "$proxy" "$s3"
	wait_for 90 more_checkpoints "$port" completed "$completed" || { cat err >&2; false; }
	kill -0 "$job"
	kill -TERM "$job"
	status=0
	wait "$job" || status=$?
	kill "$proxy_pid"
	[ "$status" -eq 0 ] || { cat err >&2; false; }
	grep -q "kin: warning: .*checkpoint" err
	# the checkpoints are in the S3 server, as an independent client sees them
	s3cmd -c "$S3CMD_CONFIG" ls -r "$EVPIPE_CHECKPOINT_STORE/$EVPIPE_JOB/" > objects
	grep -q '/_manifest.json$' objects
	grep -q '/shared/evwindow/[0-9a-f]\{64\}\.sst$' objects
	nothing_left
}

# The stages reach S3 through a TCP proxy, kin directly: kin goes on beginning checkpoints and
# injecting barriers while S3 is gone for the stages, the case where a snapshot that uploads on
# the barrier stopped the records for the store's retry budget (ADR 0023). Events arrive
# steadily, a 1 s window of them every 0.3 s; the newest window in ClickHouse is sampled every
# 0.2 s.
@test "S3 cut for the stages: rows keep arriving in ClickHouse, checkpoints complete again, a restore gives the offline result" {
	local port proxy proxy_pid s3=${S3_ENDPOINT#http://} t0 i cut back completed gap pids=()
	local store="s3://$S3_BUCKET/async-$TOPIC" job="j-$TOPIC"
	local wargs=(--tumble 1s --key event_type --agg "$AGGREGATES" --meta-field _src)
	port=$(free_ports 8)
	proxy=$((port + 7))
	start_proxy "$proxy" "$s3"
	sed -e "s/evpipe.event_aggregates/$TABLE/g" "$EVPIPE_ROOT/pipelines/sql/event_aggregates.sql" \
		> table.sql
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	# $1 (any word): the second run, restored from the latest checkpoint, to the topic's end
	run_job() {
		local ck=(--checkpoint-store "$store" --job "$job")
		rm -f records valid rows
		mkfifo records valid rows
		pids=()
		kin -C -b "$KAFKA_BROKERS" -G "g-$TOPIC" --meta-field _src "${ck[@]}" \
			--checkpoint-interval 500ms --checkpoint-timeout 3s --tolerable-failures 1000 \
			--checkpoint-expect evvalidate,evwindow,chsink --metrics-addr "127.0.0.1:$port" \
			${1:+--restore latest -e} "$TOPIC" > records 2>> kin.err 3>&- &
		pids+=($!)
		S3_ENDPOINT="http://127.0.0.1:$proxy" evvalidate --contract "$CONTRACT" --dlq invalid.out \
			--meta-field _src "${ck[@]}" ${1:+--restore latest} < records > valid 2>> evvalidate.err 3>&- &
		pids+=($!)
		S3_ENDPOINT="http://127.0.0.1:$proxy" evwindow "${wargs[@]}" --late late.out "${ck[@]}" \
			--metrics-addr "127.0.0.1:$((port + 1))" ${1:+--restore latest} \
			< valid > rows 2>> evwindow.err 3>&- &
		pids+=($!)
		S3_ENDPOINT="http://127.0.0.1:$proxy" chsink --url "$CLICKHOUSE_URL" --table "$TABLE" \
			--create-table table.sql --linger 100ms "${ck[@]}" ${1:+--restore latest} \
			< rows > /dev/null 2>> chsink.err 3>&- &
		pids+=($!)
	}
	# ClickHouse may read a decimal in JSON one ulp off the nearest double (1.39 as
	# 1.3900000000000001): the reals compare to 12 digits
	reals12() {
		awk -F'\t' -v OFS='\t' '{ for (i = 5; i <= 7; i++) $i = sprintf("%.12g", $i); print }'
	}
	newest() { # the newest window in the table, sampled every 0.2 s: "<ms> <window_end>"
		while :; do
			echo "$(date +%s%3N) $(q "SELECT toUnixTimestamp(max(window_end)) FROM $TABLE" 2>/dev/null || echo -)"
			sleep 0.2
		done
	}
	# steady input: 100 events of one second of event time every 0.3 s, until stop_input exists
	t0=$(($(date +%s) * 1000))
	chunk() {
		evgen --count 100 --seed "$1" --rate 100 --start $((t0 + $1 * 1000)) --users 50 \
			2>/dev/null | tee -a events.ndjson | produce -p 0
	}
	chunk 0 # the topic exists before kin subscribes to it
	(
		for i in $(seq 1 400); do
			[ ! -e stop_input ] || break
			chunk "$i"
			sleep 0.3
		done
	) 3>&- &
	local producer=$!
	run_job
	wait_for 60 more_checkpoints "$port" completed 2 || { cat ./*.err >&2; false; }
	wait_for 30 has_rows
	newest > samples 3>&- &
	local sampler=$!
	sleep 3
	cut=$(date +%s%3N)
	kill "$proxy_pid" # S3 is gone for the stages
	wait "$proxy_pid" || true
	sleep 12
	back=$(date +%s%3N)
	completed=$(checkpoints_total "$port" completed)
	start_proxy "$proxy" "$s3"
	sleep 3
	kill "$sampler"
	# The largest gap between changes of the newest window from the cut to S3's return.
	gap=$(awk -v cut="$cut" -v back="$back" '
		$2 == "-" { next }
		{ if (prev != "" && $2 != prev) { if ($1 > cut && $1 <= back + 1000) changes[n++] = $1 } prev = $2 }
		END { last = cut; max = 0
		      for (i = 0; i < n; i++) { if (changes[i] - last > max) max = changes[i] - last; last = changes[i] }
		      if (back - last > max) max = back - last
		      print max }' samples)
	echo "largest gap between new windows while S3 was cut: $gap ms" >&3
	[ "$gap" -le 3000 ] || { cat samples >&2; false; }
	grep -q "evwindow: warning: checkpoint .* failed\|evwindow: warning: checkpoint .* no part" evwindow.err ||
		{ cat evwindow.err >&2; false; }
	# checkpoints complete again
	wait_for 60 more_checkpoints "$port" completed "$completed" || { cat ./*.err >&2; false; }
	# the checkpoint's timings: its synchronous part on the barrier, the rest in the background
	curl -sf "http://127.0.0.1:$((port + 1))/metrics" > evwindow.metrics
	grep -q '^evpipe_checkpoint_stage_sync_seconds_count{.*} [1-9]' evwindow.metrics
	grep -q '^evpipe_checkpoint_stage_async_seconds_count{.*} [1-9]' evwindow.metrics
	awk '/^evpipe_checkpoint_stage_(sync|async)_seconds_(sum|count)/ {print}' evwindow.metrics >&3
	# and evwindow's part in the newest manifest: duration_ms is their sum (kin's alignment)
	local last
	last=$(ckpt --store "$store" --job "$job" ls | awk '$NF == "complete" { id = $1 } END { print id }')
	s3cmd -c "$S3CMD_CONFIG" get --quiet \
		"$store/$job/chk-$(printf %010d "$last")/_manifest.json" manifest.json
	jq -e '.parts.evwindow | .sync_ms >= 0 and .async_ms >= 0 and
		.duration_ms == .sync_ms + .async_ms' manifest.json
	jq -c '.parts.evwindow | {sync_ms, async_ms, duration_ms}' manifest.json >&3

	# a crash (every stage killed) and a restore from the latest checkpoint to the end
	touch stop_input
	wait "$producer"
	kill -KILL "${pids[@]}"
	wait "${pids[@]}" || true
	run_job restored
	for i in "${pids[@]}"; do
		wait "$i" || { cat ./*.err >&2; false; }
	done
	kill "$proxy_pid"
	grep -q "evwindow: warning: restoring checkpoint [0-9]* of job" evwindow.err
	evvalidate --contract "$CONTRACT" --dlq /dev/null < events.ndjson 2>/dev/null |
		evwindow "${wargs[@]}" 2>/dev/null |
		jq -s -r 'group_by([.window_start, .event_type]) | map(max_by(.version)) | .[] |
			[.window_start, .window_end, .event_type, .count, .sum_value, .min_value,
			 .max_value, .uniq_user_id, .version] | @tsv' | reals12 > expected
	table_rows | reals12 > actual
	[ "$(wc -l < expected)" -gt 100 ]
	assert_same_file expected actual
}

# Start the job in the background ($job, its stderr in err), with the settings "$@", its metrics
# from $port and ClickHouse seen through the TCP proxy $proxy_pid on port $proxy: killing the
# proxy is an outage of ClickHouse for the job.
start_job_via_proxy() {
	port=$(free_ports 8)
	proxy=$((port + 7))
	start_proxy "$proxy" "${CLICKHOUSE_URL#http://}"
	env CLICKHOUSE_URL="http://127.0.0.1:$proxy" EVPIPE_METRICS_PORT_BASE="$port" "$@" "$JOB" \
		2> err 3>&- &
	job=$!
}

# ClickHouse, seen through a TCP proxy, is unreachable for 20 s in the middle of the run:
# chsink retries without reading (the job waits), and when ClickHouse is back nothing is lost.
@test "ClickHouse unreachable for 20 s mid-run: the job waits, the final table is the same, nothing lost" {
	events > events.ndjson
	head -n 10000 events.ndjson | produce -p 0
	export EVPIPE_CHECKPOINT_STORE=none
	local port proxy proxy_pid job status ch=${CLICKHOUSE_URL#http://}
	start_job_via_proxy
	wait_for 30 has_rows || { cat err >&2; false; }

	kill "$proxy_pid" # ClickHouse is gone for the job
	wait "$proxy_pid" || true
	tail -n +10001 events.ndjson | produce -p 0
	sleep 20
	kill -0 "$job"
	start_proxy "$proxy" "$ch"
	# every event read by evvalidate, every row it led to acknowledged: then stop
	wait_for 60 read_all $((port + 1)) 20000 || { cat err >&2; false; }
	sleep 2
	kill -TERM "$job"
	status=0
	wait "$job" || status=$?
	kill "$proxy_pid"
	[ "$status" -eq 0 ] || { cat err >&2; false; }
	grep -q "chsink: .*retry" err
	offline_rows events.ndjson > want.tsv
	table_rows > got.tsv
	assert_same_file got.tsv want.tsv
	nothing_left
}

# The records of $TOPIC after the offsets group $1 committed: a member of the group reads them,
# and commits nothing (no acknowledgement ever comes on /dev/null).
uncommitted() {
	kin -C -q -b "$KAFKA_BROKERS" -G "$1" -e --commit-on-ack /dev/null --checkpoint-timeout 1s \
		"$TOPIC" | { grep -vc '^{"__evpipe"' || true; }
}

# The offset of the first record of events file $1 that a window not in the table (lines
# "<epoch s>\t<type>" of file $2) would hold: valid, and not late in the offline run.
first_unwritten() {
	evvalidate --contract "$CONTRACT" --dlq /dev/null < "$1" 2>/dev/null |
		evwindow "${WINDOW_ARGS[@]}" --late late.first 2>/dev/null >/dev/null
	evvalidate --contract "$CONTRACT" --dlq /dev/null < "$1" > valid.first 2>/dev/null
	jq -r .raw late.first > late.raw
	python3 - "$1" "$2" valid.first late.raw <<-'PY'
		import json, sys
		written = {tuple(l.rstrip("\n").split("\t")) for l in open(sys.argv[2]) if l.strip()}
		valid = set(open(sys.argv[3], "rb")) - set(open(sys.argv[4], "rb"))
		for offset, line in enumerate(open(sys.argv[1], "rb")):
		    if line not in valid:
		        continue
		    e = json.loads(line)
		    if (str(e["ts"] // 60000 * 60), e["event_type"]) not in written:
		        print(offset)
		        break
	PY
}

# Without checkpoints the group's offsets follow the sinks' acknowledgements (ADR 0014): kin
# commits a barrier's offsets once chsink and the dlqsinks acknowledged it, and evwindow holds
# the barrier back until the windows before it are final. ClickHouse becomes unreachable after
# some windows were written; the stop fires the others, which cannot be written: the job fails,
# and the committed offsets stop before every record of a window that is not in the table.
@test "without checkpoints, ClickHouse gone: the job fails, the group did not commit the unwritten records; a rerun writes them" {
	events > events.ndjson
	head -n 10000 events.ndjson | produce -p 0
	n=$(wc -l < events.ndjson)
	export EVPIPE_CHECKPOINT_STORE=none EVPIPE_CLICKHOUSE_RETRY_TIMEOUT=1s EVPIPE_CHECKPOINT_TIMEOUT=10s
	local port proxy proxy_pid job status ch=${CLICKHOUSE_URL#http://}
	port=$(free_ports 8)
	proxy=$((port + 7))
	start_proxy "$proxy" "$ch"
	CLICKHOUSE_URL="http://127.0.0.1:$proxy" EVPIPE_METRICS_PORT_BASE=$port "$JOB" 2> err 3>&- &
	job=$!
	# a barrier follows the first half; the second half makes its windows final
	wait_for 60 read_all $((port + 1)) 10000 || { cat err >&2; false; }
	sleep 1
	tail -n +10001 events.ndjson | produce -p 0
	wait_for 60 read_all $((port + 1)) "$n" || { cat err >&2; false; }
	wait_for 30 has_rows || { cat err >&2; false; }
	sleep 3 # the acknowledgements of the windows written come back
	kill "$proxy_pid"
	wait "$proxy_pid" || true
	kill -TERM "$job"
	status=0
	wait "$job" || status=$?
	cat err >&2
	[ "$status" -eq 1 ]
	grep -q "stage 'chsink' failed" err
	nothing_left

	# Every record of a window that is not in the table is after the committed offset.
	q "SELECT DISTINCT toUnixTimestamp(window_start), event_type FROM $TABLE FORMAT TSV" > written
	table_rows > run1.tsv
	committed=$((n - $(uncommitted "$EVPIPE_GROUP")))
	first=$(first_unwritten events.ndjson written)
	echo "committed $committed of $n; the first record of a window not written: $first" >&2
	[ -n "$first" ] # the windows fired at the stop were not written
	[ "$committed" -gt 0 ] # commits happen while the job runs
	[ "$committed" -le "$first" ]

	# The rerun reads them again: the windows missing are written as the offline run has them.
	EVPIPE_EXIT_AT_END=1 run -0 --separate-stderr "$JOB" 3>&-
	offline_rows events.ndjson > want.tsv
	table_rows > got.tsv
	cut -f1,3 run1.tsv | sort -u > had
	awk -F'\t' 'NR == FNR { had[$1 FS $2] = 1; next } !(($1 FS $3) in had)' had want.tsv > want_missing
	awk -F'\t' 'NR == FNR { had[$1 FS $2] = 1; next } !(($1 FS $3) in had)' had got.tsv > got_missing
	[ -s want_missing ]
	assert_same_file got_missing want_missing
}

# A stop signal while chsink rides out an outage: the job says what it waits for and for how
# long, and a second signal stops it at once.
@test "a stop signal while ClickHouse is down: the job names what it waits for; a second signal stops it now" {
	events 4000 > events.ndjson
	head -n 2000 events.ndjson | produce -p 0
	export EVPIPE_CHECKPOINT_STORE=none
	local port proxy proxy_pid job status
	start_job_via_proxy EVPIPE_CLICKHOUSE_RETRY_TIMEOUT=10m
	wait_for 60 has_rows || { cat err >&2; false; }
	kill "$proxy_pid" # ClickHouse is gone for the job
	wait "$proxy_pid" || true
	tail -n +2001 events.ndjson | produce -p 0
	wait_for 60 grep -q "chsink: warning: .*retrying for up to 600 s" err || { cat err >&2; false; }
	kill -TERM "$job"
	wait_for 10 grep -q "stopping: kin stops consuming, .*(chsink retries a failing insert for up to 10m); a second signal stops every stage now" err
	wait_for 30 grep -q "still waiting for: .*chsink.*(chsink retries a failing insert for up to 10m); a second signal stops every stage now" err ||
		{ cat err >&2; false; }
	kill -0 "$job"
	SECONDS=0
	kill -TERM "$job"
	status=0
	wait "$job" || status=$?
	[ "$SECONDS" -lt 20 ]
	grep -q "second signal: stopping every stage now" err
	grep -q "chsink: .*stopping on signal 15 while retrying" err
	[ "$status" -eq 1 ] || { cat err >&2; false; }
	nothing_left
}

# A record whose dead letter is too large for the .dlq topic (200 KB of control bytes, 1.2 MB
# escaped) does not stop the job: its bytes go to EVPIPE_CLAIM_STORE, the envelope refers to
# them, and dlqsink replay gives them back.
@test "without checkpoints, an oversize dead letter becomes a claim check in EVPIPE_CLAIM_STORE; the job finishes" {
	export EVPIPE_CHECKPOINT_STORE=none EVPIPE_CLAIM_STORE="file://$BATS_TEST_TMPDIR/claims"
	python3 -c 'import sys; sys.stdout.buffer.write(b"{\"x\":\"" + b"\x01" * 200000 + b"\"}\n")' > big.ndjson
	{ events 1000; cat big.ndjson; } > events.ndjson
	produce -p 0 --max-line-bytes 2MiB < events.ndjson
	EVPIPE_EXIT_AT_END=1 run -0 --separate-stderr "$JOB" 3>&-
	[[ "$stderr" == *"too large for '$TOPIC.dlq': its original bytes are in '$EVPIPE_CLAIM_STORE/j-$TOPIC/claims/"* ]]
	topic_records "$TOPIC.dlq" > dlq
	[ "$(jq -r 'select(.raw_ref) | .raw_bytes' dlq)" -eq 200008 ]
	dlqsink replay --file dlq --reason parse --claim-store "$EVPIPE_CLAIM_STORE" > back
	grep -qF "$(head -c 100 big.ndjson)" back
	grep -F "$(head -c 100 big.ndjson)" back > big.back
	assert_same_file big.back big.ndjson
	nothing_left
}
