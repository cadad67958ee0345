#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# clickhouse-current.bats: pipelines/sql on a current ClickHouse too. The integration tests'
# server is Debian's 18.16, while users and the compose stack run a current release: chdb
# (ClickHouse in-process, tests/services/requirements-chdb.txt) applies the same table file,
# takes the same rows as chsink sends them (JSONEachRow, in batches) and must answer the
# README's FINAL and argMax queries exactly as the 18.16 server does.
bats_require_minimum_version 1.5.0

setup_file() {
	local root
	root="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
	# built once into $EVPIPE_CACHE_DIR/venv-chdb (a 180 MB wheel), then reused
	CHDB_PYTHON=$("$root/tests/services/chdb-venv")
	export CHDB_PYTHON
}

setup() {
	load helpers/common
	need_services
	cd "$BATS_TEST_TMPDIR" || return
	TABLE="evpipe.current_$BATS_SUITE_TEST_NUMBER$$$RANDOM"
}

teardown() {
	[ -z "${CLICKHOUSE_URL:-}" ] ||
		curl -sf "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $TABLE" >/dev/null || true
}

q() { curl -sSf "$CLICKHOUSE_URL/" --data-binary "$1 FORMAT TSV"; }

# compare_on ROWS QUERY...: the job's table (under this test's name, as the pipeline script
# renames it) filled with ROWS and asked QUERY... in chdb and on the 18.16 server through
# chsink, 50 rows per insert; the answers must be the same, and not empty.
compare_on() {
	local rows=$1 query
	shift
	# windows written more than once (late updates; a version is the records folded, ADR 0016)
	[ "$(jq -s 'group_by([.window_start, .window_start_msec, .event_type]) | map(select(length > 1)) | length' "$rows")" -gt 10 ]
	sed -e "s/evpipe\.event_aggregates/$TABLE/g" "$EVPIPE_ROOT/pipelines/sql/event_aggregates.sql" >table.sql
	run -0 --separate-stderr "$CHDB_PYTHON" "$EVPIPE_ROOT/tests/helpers/chdb_run.py" table.sql "$rows" 50 "$@"
	[[ $stderr == "chdb: ClickHouse 2"[0-9]"."* ]] || { echo "$stderr"; false; }
	printf '%s\n' "$output" >current.tsv

	[[ $(q "SELECT version()") == 18.16.* ]]
	run -0 chsink -q --url "$CLICKHOUSE_URL" --table "$TABLE" --create-table table.sql --batch-rows 50 <"$rows"
	: >server.tsv
	for query; do
		q "$query" >>server.tsv
		echo -- >>server.tsv
	done
	[ "$(wc -l <server.tsv)" -gt 40 ]
	# 18.16 reads some decimals one unit in the last place off (the text 4.81 becomes
	# 4.8100000000000005; its SQL literal 4.81 does not), a current release reads them exactly:
	# floats are compared to 12 significant digits, everything else exactly.
	diff -u <(floats12 server.tsv) <(floats12 current.tsv)
}

# floats12 FILE: the TSV with every decimal number written with 12 significant digits.
floats12() {
	awk -F'\t' -v OFS='\t' '{
		for (i = 1; i <= NF; i++) if ($i ~ /^-?[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?$/) $i = sprintf("%.12g", $i)
		print
	}' "$1"
}

# events with late updates (a window written again) and late records past the lateness, windowed by
# the job's aggregates in windows of $1
window_rows() {
	evgen -q --count 4000 --seed 11 --rate 20 --out-of-order 20s --invalid-pct 3 --late-pct 3 |
		evvalidate -q -c "$EVPIPE_ROOT/contracts/event.schema.json" --dlq /dev/null |
		evwindow -q --tumble "$1" --key event_type --agg count,sum:value,min:value,max:value,uniq:user_id \
			--out-of-orderness 5s --lateness 30s --late /dev/null
}

final_all() {
	echo "SELECT window_start, window_start_msec, event_type, count, sum_value, min_value, max_value, uniq_user_id, version FROM $TABLE FINAL ORDER BY window_start, window_start_msec, event_type"
}
arg_max() {
	echo "SELECT window_start, window_start_msec, event_type, argMax(count, version) AS events, argMax(sum_value, version) AS total FROM $TABLE GROUP BY window_start, window_start_msec, event_type ORDER BY window_start, window_start_msec, event_type"
}
totals() {
	echo "SELECT sum(count), count() FROM $TABLE FINAL"
}

@test "chdb (current ClickHouse) answers the FINAL and argMax queries on chsink's rows as 18.16 does" {
	window_rows 1m >rows.ndjson
	# README's "Read the results with FINAL", then pipelines/sql's FINAL and argMax readings
	compare_on rows.ndjson \
		"SELECT window_start, event_type, count FROM $TABLE FINAL ORDER BY window_start DESC, event_type LIMIT 20" \
		"$(final_all)" "$(arg_max)" "$(totals)"
}

@test "chdb and 18.16 agree on sub-second windows too (their milliseconds in columns of their own)" {
	window_rows 250ms >rows.ndjson
	[ "$(jq -s 'map(select(.window_start_msec > 0)) | length' rows.ndjson)" -gt 10 ]
	compare_on rows.ndjson "$(final_all)" "$(arg_max)" "$(totals)"
}

@test "the quirk the comparison allows for: 18.16 reads the text 4.81 one unit in the last place off, chdb exactly" {
	[ "$(q "SELECT toFloat64('4.81'), 4.81")" = "$(printf '4.8100000000000005\t4.81')" ]
	run -0 "$CHDB_PYTHON" -c 'import chdb; print(chdb.query("SELECT toFloat64(\x274.81\x27), 4.81", "TSV"), end="")'
	[ "$output" = "$(printf '4.81\t4.81')" ]
	printf '4.8100000000000005\t1\n' >a.tsv
	printf '4.81\t1\n' >b.tsv
	[ "$(floats12 a.tsv)" = "$(floats12 b.tsv)" ]
	printf '4.82\t1\n' >c.tsv
	[ "$(floats12 a.tsv)" != "$(floats12 c.tsv)" ]
}
