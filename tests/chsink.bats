#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# chsink.bats: rows into ClickHouse (the real 18.16 server of tests/services): batches, barrier
# acknowledgements, bisection of rejected rows, retries, credentials, idempotent replay.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common

SQL="$EVPIPE_ROOT/pipelines/sql/event_aggregates.sql"
BARRIER='{"__evpipe":"barrier","id":7,"ts":1732406400000}'
WATERMARK='{"__evpipe":"watermark","ts":1732406400000}'

setup() {
	cd "$BATS_TEST_TMPDIR" || return
	need_services
	TABLE=""
	TABLES=()
}

teardown() {
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one pid per word
	[ -z "$pids" ] || kill $pids 2>/dev/null || true
	for t in "${TABLES[@]}"; do
		q "DROP TABLE IF EXISTS $t" >/dev/null 2>&1 || true
	done
}

# Run a statement; the answer on stdout, an error answer is a failure.
q() {
	curl -sS --fail-with-body --max-time 10 "$CLICKHOUSE_URL/" --data-binary "$1"
}

rows_in_table() {
	q "SELECT count() FROM $TABLE FORMAT TSV"
}

count_is() {
	[ "$(rows_in_table)" = "$1" ]
}

# A table of the shipped schema under a name of this test's own, made by chsink --create-table.
new_table() {
	TABLE="evpipe.t_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	TABLES+=("$TABLE")
	sed "s/evpipe\.event_aggregates/$TABLE/g" "$SQL" >table.sql
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --create-table table.sql </dev/null
}

# evwindow-shaped rows for minutes $1..$2 of a day (below 1439), with version $3 (default 1).
rows() {
	awk -v a="$1" -v b="$2" -v v="${3:-1}" 'BEGIN {
		for (i = a; i <= b; i++) {
			s = sprintf("2024-11-24 %02d:%02d:00", int(i / 60), i % 60)
			e = sprintf("2024-11-24 %02d:%02d:00", int((i + 1) / 60), (i + 1) % 60)
			printf "{\"window_start\":\"%s\",\"window_end\":\"%s\",\"event_type\":\"click\",", s, e
			printf "\"count\":%d,\"sum_value\":%d.5,\"min_value\":1,\"max_value\":%d,", i, i, i
			printf "\"uniq_user_id\":2,\"version\":%d}\n", v
		}
	}'
}

# The rows as ClickHouse's TSV output shows them: one line per row, columns in table order
# (the milliseconds of the bounds 0 when a row has none: whole-second windows).
as_tsv() {
	jq -r '[.window_start, .window_start_msec // 0, .window_end, .window_end_msec // 0,
		.event_type, .count, .sum_value, .min_value, .max_value, .uniq_user_id, .version]
		| map(if . == null then "\\N" else tostring end) | join("\t")' "$@"
}

select_all() {
	q "SELECT * FROM $TABLE ${1:-} ORDER BY window_start, event_type, window_start_msec FORMAT TSV"
}

# The proxy of tests/helpers/flaky_http.py in front of ClickHouse, failing the first $1
# INSERTs (-1: all); PROXY_URL is its address, proxy.log its log.
start_proxy() {
	python3 "$EVPIPE_ROOT/tests/helpers/flaky_http.py" --target "$CLICKHOUSE_URL" \
		--port-file port --fail "$1" --log proxy.log 3>&- &
	wait_for 10 test -s port
	PROXY_URL="http://127.0.0.1:$(cat port)"
}

metrics_url() {
	sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' "$1"
}

# The sum of a metric's series in the file metrics.
metric() {
	awk -v m="$1" '$1 ~ "^"m"[{]" { s += $2 } END { print s + 0 }' metrics
}

@test "rows land with their values: nulls, integer sums, and nothing on stdout" {
	new_table
	{
		echo '{"window_start":"2024-11-24 00:00:00","window_end":"2024-11-24 00:01:00","event_type":"click","count":3,"sum_value":6.5,"min_value":1,"max_value":3.5,"uniq_user_id":2,"version":1}'
		echo '{"window_start":"2024-11-24 00:00:00","window_end":"2024-11-24 00:01:00","event_type":"view","count":2,"sum_value":null,"min_value":null,"max_value":null,"uniq_user_id":1,"version":1}'
		echo '{"window_start":"2024-11-24 00:01:00","window_end":"2024-11-24 00:02:00","event_type":"click","count":4,"sum_value":10,"min_value":-2,"max_value":7,"uniq_user_id":4,"version":3}'
		rows 10 20
	} >in.ndjson
	run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$TABLE" <in.ndjson
	[ -z "$output" ]
	[[ "$stderr" == *"14 row(s) inserted into '$TABLE' in 1 batch(es)"* ]]
	select_all >got.tsv
	as_tsv in.ndjson | sort >want.tsv
	assert_same_file got.tsv want.tsv
	[ "$(q "SELECT event_type FROM $TABLE WHERE sum_value IS NULL FORMAT TSV")" = view ]
}

@test "--create-table is idempotent; the shipped DDL is a ReplacingMergeTree(version)" {
	for _ in 1 2; do
		run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table evpipe.event_aggregates \
			--create-table "$SQL" -v </dev/null
		[[ "$stderr" == *"statement 2 applied"* ]]
	done
	# (the shared evpipe.event_aggregates may predate the shipped DDL: a table of its own)
	new_table
	ddl=$(q "SHOW CREATE TABLE $TABLE FORMAT TSVRaw")
	[[ "$ddl" == *"ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(window_start) ORDER BY (window_start, event_type, window_start_msec)"* ]]
	[[ "$ddl" == *"window_start_msec UInt16"*"window_end_msec UInt16"* ]]
	[[ "$ddl" == *"sum_value Nullable(Float64)"* ]]
	# A statement ClickHouse refuses stops the start (exit 1), naming it.
	printf 'SELECT 1;\nSELECT nosuchfunction();\n' >bad.sql
	run -1 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table evpipe.event_aggregates \
		--create-table bad.sql </dev/null
	[[ "$stderr" == *"--create-table 'bad.sql': statement 2: Code: 46"* ]]
	printf "SELECT ';\n" >open.sql
	run -1 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table evpipe.event_aggregates \
		--create-table open.sql </dev/null
	[[ "$stderr" == *"not closed"* ]]
	# Without it, a table that does not exist is an error before any row is read.
	run -1 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "evpipe.nosuch_$$" </dev/null
	[[ "$stderr" == *"table 'evpipe.nosuch_$$' does not exist"* ]]
}

@test "batches by --batch-rows over one kept-alive connection, counted in the metrics" {
	new_table
	mkfifo in
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --batch-rows 100 --linger 1h \
		--metrics-addr 127.0.0.1:0 <in >out 2>err 3>&- &
	pid=$!
	exec 7<>in
	wait_for 20 grep -q 'serving metrics' err
	rows 1 250 >&7
	echo "$BARRIER" >&7
	wait_for 20 grep -q barrier out
	curl -sf "$(metrics_url err)" >metrics
	exec 7>&-
	wait "$pid"
	[ "$(metric evpipe_sink_batches_total)" -eq 3 ]
	grep -q '^evpipe_sink_batch_seconds_count{tool="chsink",job="evpipe"} 3$' metrics
	grep -q '^evpipe_sink_batch_rows_bucket{tool="chsink",job="evpipe",le="100"} 3$' metrics
	grep -q '^evpipe_sink_batch_rows_bucket{tool="chsink",job="evpipe",le="10"} 0$' metrics
	[ "$(metric evpipe_records_in_total)" -eq 250 ]
	[ "$(metric evpipe_records_out_total)" -eq 250 ]
	[ "$(metric evpipe_sink_inserted_rows_total)" -eq 250 ]
	[ "$(metric evpipe_sink_inserted_bytes_total)" -eq "$(rows 1 250 | wc -c)" ]
	[ "$(metric evpipe_sink_connections_total)" -eq 1 ]
	[ "$(metric evpipe_barriers_total)" -eq 1 ]
	[ "$(metric evpipe_sink_retries_total)" -eq 0 ]
	count_is 250
}

@test "batches by --batch-bytes: none larger than the limit unless a row alone is" {
	new_table
	rows 1 40 >in.ndjson
	run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --batch-bytes 1KiB -v <in.ndjson
	sed -n 's/.*batch [0-9]*: \([0-9]*\) row(s), \([0-9]*\) bytes.*/\1 \2/p' <<<"$stderr" >batches
	[ "$(awk '{ r += $1 } END { print r }' batches)" -eq 40 ]
	[ "$(awk '$2 > 1024' batches | wc -l)" -eq 0 ]
	[ "$(wc -l <batches)" -ge $(($(wc -c <in.ndjson) / 1024 + 1)) ]
	count_is 40
	# A row longer than the limit goes alone.
	rows 41 41 >big.ndjson
	run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --batch-bytes 64 -v <big.ndjson
	[[ "$stderr" == *"batch 1: 1 row(s)"* ]]
	count_is 41
}

@test "a barrier is acknowledged on stdout only once the rows before it are queryable" {
	new_table
	mkfifo in
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --linger 1h --dlq dlq <in >out 2>err 3>&- &
	pid=$!
	exec 7<>in
	rows 1 100 >&7
	echo "$WATERMARK" >&7
	# The watermark is forwarded at once: the rows before it were read, and are held for the
	# linger.
	wait_for 20 grep -q watermark out
	count_is 0
	echo "$BARRIER" >&7
	wait_for 20 grep -q barrier out
	count_is 100
	rows 101 110 >&7
	exec 7>&-
	wait "$pid"
	count_is 110
	[ "$(jq -r .__evpipe out | paste -sd,)" = watermark,barrier ]
	[ "$(jq -r .__evpipe dlq | paste -sd,)" = watermark,barrier ]
}

@test "--linger: a partial batch is inserted while the input stays open" {
	new_table
	mkfifo in
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --linger 200ms <in >out 2>err 3>&- &
	pid=$!
	exec 7<>in
	rows 1 10 >&7
	wait_for 10 count_is 10
	rows 11 12 >&7
	wait_for 10 count_is 12
	exec 7>&-
	wait "$pid"
}

@test "rejected rows are bisected out to the dlq with ClickHouse's error; the rest are inserted" {
	new_table
	rows 1 40 >good.ndjson
	awk 'NR == 5 { sub(/"count":5/, "\"count\":\"five\"") }
	     NR == 17 { sub(/"event_type":"click"/, "\"event_type\":17") }
	     NR == 33 { sub(/"window_start":"[^"]*"/, "\"window_start\":[1]") }
	     { print } NR == 20 { print "not json"; print ""; print "[1,2]" }' good.ndjson >in.ndjson
	sed -n '5p;17p;36p' in.ndjson >want_rejected
	mkfifo in
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --dlq dlq.ndjson --linger 1h \
		--metrics-addr 127.0.0.1:0 <in >out 2>err 3>&- &
	pid=$!
	exec 7<>in
	wait_for 20 grep -q 'serving metrics' err
	cat in.ndjson >&7
	echo "$BARRIER" >&7
	wait_for 20 grep -q barrier out
	curl -sf "$(metrics_url err)" >metrics
	exec 7>&-
	wait "$pid"
	# the good rows, all of them and only them
	select_all >got.tsv
	sed '5d;17d;33d' good.ndjson | as_tsv | sort >want.tsv
	assert_same_file got.tsv want.tsv
	# the bad ones, with their bytes, line numbers and ClickHouse's words
	[ "$(jq -r 'select(.reason == "rejected") | .raw' dlq.ndjson)" = "$(cat want_rejected)" ]
	[ "$(jq -r 'select(.reason == "rejected") | .line' dlq.ndjson | paste -sd,)" = 5,17,36 ]
	[ "$(jq -r 'select(.reason == "rejected") | .error.message | test("^Code: [0-9]+")' dlq.ndjson | sort -u)" = true ]
	jq -r 'select(.reason == "rejected") | .error.message' dlq.ndjson | grep -q 'Cannot parse'
	[ "$(jq -r 'select(.reason == "parse") | .raw' dlq.ndjson | paste -sd,)" = 'not json,[1,2]' ]
	[ "$(tail -n 1 dlq.ndjson)" = "$BARRIER" ]
	# in = inserted + dead-lettered (+ a blank line skipped)
	[ "$(metric evpipe_records_in_total)" -eq 42 ]
	[ "$(metric evpipe_records_out_total)" -eq 37 ]
	grep -q '^evpipe_dead_letters_total{tool="chsink",job="evpipe",reason="rejected"} 3$' metrics
	grep -q '^evpipe_dead_letters_total{tool="chsink",job="evpipe",reason="parse"} 2$' metrics
	grep -q '^evpipe_records_skipped_total{tool="chsink",job="evpipe",reason="blank"} 1$' metrics
	[ "$(metric evpipe_sink_batches_total)" -eq 1 ]
	[ "$(metric evpipe_sink_requests_total)" -gt 5 ]
	# Without --dlq, every dead letter is an error line.
	new_table
	run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$TABLE" <in.ndjson
	[ "$(grep -c ': rejected: Code: ' <<<"$stderr")" -eq 3 ]
	[ "$(grep -c ': parse: ' <<<"$stderr")" -eq 2 ]
	[[ "$stderr" == *"line 17: rejected: Code: "* ]]
	count_is 37
}

@test "SIGTERM inserts what was read, then exits 0" {
	new_table
	mkfifo in
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --linger 1h <in >out 2>err 3>&- &
	pid=$!
	exec 7<>in
	rows 1 50 >&7
	echo "$WATERMARK" >&7
	wait_for 20 grep -q watermark out
	count_is 0
	kill -TERM "$pid"
	wait "$pid"
	exec 7>&-
	count_is 50
	grep -q 'stopping on signal 15' err
}

@test "server errors are retried with backoff, and every row lands once" {
	new_table
	start_proxy 3
	rows 1 20 >in.ndjson
	run -0 --separate-stderr chsink --url "$PROXY_URL" --table "$TABLE" --batch-rows 1000 <in.ndjson
	[ "$(grep -c '^503 INSERT' proxy.log)" -eq 3 ]
	[ "$(grep -c '^200 INSERT' proxy.log)" -eq 1 ]
	[[ "$stderr" == *"HTTP 503: flaky_http: failing on purpose; retrying for up to 300 s"* ]]
	[[ "$stderr" == *"ClickHouse answers again, after 3 retries"* ]]
	count_is 20
	select_all >got.tsv
	as_tsv in.ndjson | sort >want.tsv
	assert_same_file got.tsv want.tsv
}

@test "after --retry-timeout chsink exits 1 naming the rows not written" {
	new_table
	start_proxy -1
	rows 1 7 >in.ndjson
	SECONDS=0
	run -1 --separate-stderr chsink --url "$PROXY_URL" --table "$TABLE" --retry-timeout 1s <in.ndjson
	[ "$SECONDS" -lt 10 ]
	[[ "$stderr" == *"gave up after 1 s of retries: HTTP 503"* ]]
	[[ "$stderr" == *"7 row(s) not written to '$TABLE'"* ]]
	[ "$(grep -c '^503 INSERT' proxy.log)" -ge 3 ]
	count_is 0
}

@test "a server never reached since start fails at once, before any row: nothing listening, unknown host" {
	rows 1 7 >in.ndjson
	SECONDS=0
	run -1 --separate-stderr chsink --url http://127.0.0.1:1 --table evpipe.t <in.ndjson
	[ "$SECONDS" -lt 10 ]
	[ -z "$output" ]
	[[ "$stderr" == *"chsink: checking table 'evpipe.t': "*"127.0.0.1 port 1"*"(ClickHouse at 'http://127.0.0.1:1' never answered since start: not retried)"* ]]
	[[ "$stderr" != *"retrying"* ]]
	run -1 --separate-stderr chsink --url http://no-such-host.invalid:8123 \
		--table evpipe.event_aggregates --create-table "$SQL" <in.ndjson
	[ "$SECONDS" -lt 20 ]
	[[ "$stderr" == *"chsink: --create-table '$SQL': statement 1: "*"no-such-host.invalid"*"never answered since start: not retried)"* ]]
}

@test "--create-table of a file that creates another table than --table is refused at start" {
	TABLE="evpipe.t_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	TABLES+=("$TABLE" "${TABLE}_other")
	sed "s/evpipe\.event_aggregates/${TABLE}_other/g" "$SQL" >other.sql
	rows 1 3 >in.ndjson
	run -2 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --create-table other.sql <in.ndjson
	[ "$stderr" = "chsink: --create-table 'other.sql' creates table '${TABLE}_other', not --table '$TABLE'"$'\n'"try 'chsink --help'" ]
	# nothing was created
	[ "$(q "EXISTS TABLE ${TABLE}_other FORMAT TSV")" = 0 ]
	# the same table, with or without its database and quotes, is accepted
	printf "CREATE TABLE IF NOT EXISTS \`%s\` (n UInt8) ENGINE = Memory;\n" "${TABLE#evpipe.}" >same.sql
	echo '{"n":1}' | run -0 --separate-stderr chsink --url "$CLICKHOUSE_URL/?database=evpipe" \
		--table "$TABLE" --create-table same.sql
	[ "$(q "SELECT n FROM $TABLE FORMAT TSV")" = 1 ]
}

@test "while retrying no input is read (backpressure); SIGTERM then stops with exit 1" {
	new_table
	start_proxy -1
	mkfifo in
	chsink --url "$PROXY_URL" --table "$TABLE" --batch-rows 10 --retry-timeout 1m \
		--metrics-addr 127.0.0.1:0 <in >out 2>err 3>&- &
	pid=$!
	exec 7<>in
	wait_for 20 grep -q 'serving metrics' err
	rows 1 10 >&7
	wait_for 20 grep -q 'retrying for up to 60 s' err
	# More than a pipe holds: the writer blocks, because chsink reads nothing meanwhile.
	rows 11 1400 >more.ndjson
	[ "$(wc -c <more.ndjson)" -gt 200000 ]
	rc=0
	timeout 2 cat more.ndjson >&7 || rc=$?
	[ "$rc" -eq 124 ]
	curl -sf "$(metrics_url err)" >metrics
	[ "$(metric evpipe_records_in_total)" -eq 10 ]
	[ "$(metric evpipe_sink_retries_total)" -ge 2 ]
	# the time spent waiting for ClickHouse is counted while it lasts (how much depends on the
	# machine's load: only that it moved is asserted)
	awk '$1 ~ /^evpipe_sink_wait_seconds_total/ && $2 > 0 { ok = 1 } END { exit !ok }' metrics
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	exec 7>&-
	[ "$rc" -eq 1 ]
	grep -q 'stopping on signal 15 while retrying: HTTP 503' err
	grep -q "10 row(s) not written to '$TABLE'" err
	count_is 0
}

@test "a missing table mid-run is fatal at once: no retries, the rows not written named" {
	new_table
	start_proxy 0
	mkfifo in
	chsink --url "$PROXY_URL" --table "$TABLE" --linger 1h --retry-timeout 1m <in >out 2>err 3>&- &
	pid=$!
	exec 7<>in
	echo "$WATERMARK" >&7
	wait_for 20 grep -q watermark out
	q "DROP TABLE $TABLE"
	rows 1 5 >&7
	echo "$BARRIER" >&7
	rc=0
	wait "$pid" || rc=$?
	exec 7>&-
	[ "$rc" -eq 1 ]
	grep -q "doesn't exist" err
	grep -q "5 row(s) not written to '$TABLE'" err
	[ "$(grep -c INSERT proxy.log)" -eq 1 ]
	run ! grep -q barrier out
}

@test "replayed rows converge under FINAL; a higher version replaces a window" {
	new_table
	rows 1 30 >in.ndjson
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" <in.ndjson
	select_all FINAL >first.tsv
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --batch-rows 7 <in.ndjson
	select_all FINAL >replayed.tsv
	assert_same_file first.tsv replayed.tsv
	[ "$(q "SELECT count() FROM $TABLE FINAL FORMAT TSV")" -eq 30 ]
	# A late update of minute 7: version 2 wins, with FINAL and with argMax.
	rows 7 7 2 | sed 's/"count":7,/"count":70,/' | chsink --url "$CLICKHOUSE_URL" --table "$TABLE"
	[ "$(q "SELECT count, version FROM $TABLE FINAL WHERE window_start = '2024-11-24 00:07:00' FORMAT TSV")" = "$(printf '70\t2')" ]
	[ "$(q "SELECT argMax(count, version) AS c FROM $TABLE WHERE window_start = '2024-11-24 00:07:00' FORMAT TSV")" = 70 ]
	[ "$(q "SELECT sum(count) FROM $TABLE FINAL FORMAT TSV")" -eq $((465 - 7 + 70)) ]
}

@test "credentials from the environment or --password-file; wrong ones fail at once, unseen" {
	new_table
	start_proxy 0
	rows 1 3 >in.ndjson
	secret="s3cr3t-$RANDOM$RANDOM"
	run -1 --separate-stderr env CLICKHOUSE_PASSWORD="$secret" chsink --url "$PROXY_URL" --table "$TABLE" <in.ndjson
	[[ "$stderr" == *"Wrong password for user default"* ]]
	[[ "$stderr" != *"$secret"* ]]
	[ "$(wc -l <proxy.log)" -eq 1 ]
	printf '%s\n' "$secret" >pw
	run -1 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --password-file pw <in.ndjson
	[[ "$stderr" == *"Wrong password for user default"* ]]
	[[ "$stderr" != *"$secret"* ]]
	run -1 --separate-stderr env CLICKHOUSE_USER=nobody chsink --url "$CLICKHOUSE_URL" --table "$TABLE" <in.ndjson
	[[ "$stderr" == *"Unknown user nobody"* ]]
	# The default user's password is empty: from a file, it is the right one (and the file
	# wins over the environment).
	: >empty
	run -0 --separate-stderr env CLICKHOUSE_PASSWORD="$secret" CLICKHOUSE_USER=default \
		chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --password-file empty <in.ndjson
	count_is 3
	# Never on the command line, and never repeated back.
	for arg in --password "--password=$secret" --pass; do
		run -2 --separate-stderr chsink --url "$CLICKHOUSE_URL" --table "$TABLE" "$arg" "$secret"
		[[ "$stderr" == *"there is no --password option"* ]]
		[[ "$stderr" != *"$secret"* ]]
	done
	run -2 --separate-stderr chsink --url "http://default:$secret@127.0.0.1:1" --table "$TABLE"
	[[ "$stderr" == *"credentials in the URL are refused"* ]]
	[[ "$stderr" != *"$secret"* ]]
	run -2 --separate-stderr chsink --url "$CLICKHOUSE_URL/?password=$secret" --table "$TABLE"
	[[ "$stderr" != *"$secret"* ]]
}

@test "--compress sends gzip bodies, which ClickHouse 18.16 accepts" {
	new_table
	start_proxy 0
	rows 1 500 >in.ndjson
	run -0 --separate-stderr chsink --url "$PROXY_URL" --table "$TABLE" --compress <in.ndjson
	line=$(grep '^200 INSERT' proxy.log)
	[[ "$line" == *"gzip=1"* ]]
	[ "${line##*bytes=}" -lt $(($(wc -c <in.ndjson) / 5)) ]
	select_all >got.tsv
	as_tsv in.ndjson | sort >want.tsv
	assert_same_file got.tsv want.tsv
}

@test "evwindow | chsink: the windows land as evwindow wrote them" {
	new_table
	# Events over three minutes; values missing for 'view', so its sum/min/max are null.
	awk 'BEGIN { for (i = 0; i < 600; i++) {
		t = 1732406400000 + i * 300; type = (i % 3 == 0) ? "view" : "click"
		v = (type == "click") ? sprintf(",\"value\":%d", i % 7) : ""
		printf "{\"event_type\":\"%s\",\"user_id\":\"u%d\",\"ts\":%.0f%s}\n", type, i % 11, t, v } }' >events
	evwindow --tumble 1m --key event_type --ts-field ts \
		--agg count,sum:value,min:value,max:value,uniq:user_id <events >windows.ndjson
	[ "$(wc -l <windows.ndjson)" -ge 6 ]
	evwindow --tumble 1m --key event_type --ts-field ts \
		--agg count,sum:value,min:value,max:value,uniq:user_id <events |
		chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --dlq dlq
	[ ! -s dlq ]
	select_all FINAL >got.tsv
	as_tsv windows.ndjson | sort >want.tsv
	assert_same_file got.tsv want.tsv
}

# Three 250 ms windows within one second, one updated by a late record: they once all had the
# bounds "2024-11-24 00:00:00" and merged into one row; the milliseconds keep them apart.
@test "evwindow --tumble 250ms | chsink: sub-second windows are distinct rows (FINAL), counts exact" {
	new_table
	for ms in 100 300 350 600 700 720 200; do
		printf '{"event_type":"click","ts":%d}\n' $((1732406400000 + ms))
	done >events
	run -0 --separate-stderr bash -c "evwindow --tumble 250ms --key event_type --lateness 1s <events |
		chsink --url '$CLICKHOUSE_URL' --table '$TABLE' --dlq dlq"
	[ ! -s dlq ]
	# [0, 250 ms) twice: versions 1 and 2 (the records folded into it, ADR 0016)
	[ "$(q "SELECT count() FROM $TABLE FORMAT TSV")" = 4 ]
	got=$(q "SELECT window_start, window_start_msec, window_end, window_end_msec, count, version
		FROM $TABLE FINAL ORDER BY window_start, window_start_msec FORMAT TSV")
	want=$(printf '2024-11-24 00:00:00\t%s\n' 0$'\t'"2024-11-24 00:00:00"$'\t'250$'\t'2$'\t'2 \
		250$'\t'"2024-11-24 00:00:00"$'\t'500$'\t'2$'\t'2 500$'\t'"2024-11-24 00:00:00"$'\t'750$'\t'3$'\t'3)
	[ "$got" = "$want" ]
	[ "$(q "SELECT sum(count) FROM $TABLE FINAL")" = 7 ]
	[ "$(q "SELECT toUInt64(window_start) * 1000 + window_end_msec FROM $TABLE FINAL WHERE window_start_msec = 500")" = 1732406400750 ]
}

# A table of the DDL before window_start_msec: whole-second rows still land there; sub-second
# ones are rejected (dead letters, never merged into one row); the in-place upgrade of
# pipelines/sql/event_aggregates.sql then takes them, on 18.16.
@test "a table without the millisecond columns: whole-second rows land, sub-second ones are rejected until upgraded" {
	TABLE="evpipe.t_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	TABLES+=("$TABLE")
	q "CREATE TABLE $TABLE (window_start DateTime, window_end DateTime, event_type String,
		count UInt64, sum_value Nullable(Float64), min_value Nullable(Float64),
		max_value Nullable(Float64), uniq_user_id UInt64, version UInt64)
		ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(window_start)
		ORDER BY (window_start, event_type)"
	printf '{"event_type":"click","ts":%d}\n' 1732406400100 1732406400300 1732406401600 >events
	evwindow --tumble 1s --key event_type <events | chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --dlq dlq
	[ ! -s dlq ]
	[ "$(q "SELECT count FROM $TABLE FINAL ORDER BY window_start FORMAT TSV" | paste -sd,)" = 2,1 ]
	# another job's (a table holds one window size per key)
	sed 's/click/view/' events | evwindow --tumble 250ms --key event_type >subsecond.ndjson
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --dlq dlq <subsecond.ndjson
	[ "$(jq -r .reason dlq | sort | uniq -c | awk '{ print $1, $2 }')" = "3 rejected" ]
	[[ "$(head -1 dlq | jq -r .error.message)" == *window_start_msec* ]]
	[ "$(q "SELECT count() FROM $TABLE FORMAT TSV")" = 2 ]
	# the upgrade as the DDL file states it (its comment, without the leading "--")
	sed -n '/^--   ALTER TABLE/,/^--       MODIFY ORDER BY/p' "$SQL" | sed "s/^--//; s/evpipe\.event_aggregates/$TABLE/" >upgrade.sql
	[ "$(wc -l <upgrade.sql)" -eq 4 ]
	q "$(cat upgrade.sql)"
	rm dlq
	chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --dlq dlq <subsecond.ndjson
	[ ! -s dlq ]
	q "OPTIMIZE TABLE $TABLE FINAL"
	[ "$(q "SELECT event_type, window_start_msec, window_end_msec, count FROM $TABLE FINAL
		ORDER BY window_start, event_type, window_start_msec FORMAT CSV" | paste -sd' ')" = '"click",0,0,2 "view",0,250,1 "view",250,500,1 "click",0,0,1 "view",500,750,1' ]
}

@test "usage errors exit 2" {
	run -2 --separate-stderr chsink --url http://127.0.0.1:1
	[[ "$stderr" == *"no table: give --table DB.TABLE"* ]]
	run -2 --separate-stderr env -u CLICKHOUSE_URL chsink --table evpipe.x
	[[ "$stderr" == *"give --url URL or set CLICKHOUSE_URL"* ]]
	run -2 --separate-stderr chsink --url ftp://127.0.0.1:1 --table evpipe.x
	[[ "$stderr" == *"unsupported URL scheme 'ftp'"* ]]
	run -2 --separate-stderr chsink --url http://127.0.0.1:1 --table 'evpipe.x; DROP TABLE y'
	[[ "$stderr" == *"invalid table name"* ]]
	for bad in "--batch-rows 0" "--batch-bytes 0" "--linger soon" "--retry-timeout -1s" \
		"--timeout 0" "--max-line-bytes x"; do
		# shellcheck disable=SC2086
		run -2 --separate-stderr chsink --url http://127.0.0.1:1 --table evpipe.x $bad
		[[ "$stderr" == *"try 'chsink --help'"* ]]
	done
	run -0 --separate-stderr chsink --help
	[[ "$output" == *"usage: chsink --url URL --table DB.TABLE"* ]]
	run -0 --separate-stderr chsink --version
	[[ "${lines[0]}" == "chsink (evpipe) "* ]]
}
