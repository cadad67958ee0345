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

@test "chdb (current ClickHouse) answers the FINAL and argMax queries on chsink's rows as 18.16 does" {
	# windows with late updates (versions above 1) and late records past the lateness
	evgen -q --count 4000 --seed 11 --rate 20 --out-of-order 20s --invalid-pct 3 --late-pct 3 |
		evvalidate -q -c "$EVPIPE_ROOT/contracts/event.schema.json" --dlq /dev/null |
		evwindow -q --tumble 1m --key event_type --agg count,sum:value,min:value,max:value,uniq:user_id \
			--out-of-orderness 5s --lateness 30s --late /dev/null >rows.ndjson
	[ "$(jq -s 'map(select(.version > 1)) | length' rows.ndjson)" -gt 10 ]
	# the job's table under this test's name, as the pipeline script renames it
	sed -e "s/evpipe\.event_aggregates/$TABLE/g" "$EVPIPE_ROOT/pipelines/sql/event_aggregates.sql" >table.sql

	local queries=(
		# README, "Read the results with FINAL"
		"SELECT window_start, event_type, count FROM $TABLE FINAL ORDER BY window_start DESC, event_type LIMIT 20"
		# pipelines/sql/event_aggregates.sql, FINAL (every column) and argMax
		"SELECT window_start, event_type, count, sum_value, min_value, max_value, uniq_user_id, version FROM $TABLE FINAL ORDER BY window_start, event_type"
		"SELECT window_start, event_type, argMax(count, version) AS events, argMax(sum_value, version) AS total FROM $TABLE GROUP BY window_start, event_type ORDER BY window_start, event_type"
		# the job's totals: what each reading counts
		"SELECT sum(count), count() FROM $TABLE FINAL"
	)
	run -0 --separate-stderr "$CHDB_PYTHON" "$EVPIPE_ROOT/tests/helpers/chdb_run.py" table.sql rows.ndjson 50 "${queries[@]}"
	[[ $stderr == "chdb: ClickHouse 2"[0-9]"."* ]] || { echo "$stderr"; false; }
	printf '%s\n' "$output" >current.tsv

	# the 18.16 server: the same table file and rows through chsink, 50 rows per insert
	[[ $(q "SELECT version()") == 18.16.* ]]
	run -0 chsink -q --url "$CLICKHOUSE_URL" --table "$TABLE" --create-table table.sql --batch-rows 50 \
		<rows.ndjson
	: >server.tsv
	local query
	for query in "${queries[@]}"; do
		q "$query" >>server.tsv
		echo -- >>server.tsv
	done
	# answers with rows in them (20 + 24 + 24 + 1 lines and the 4 separators)
	[ "$(wc -l <server.tsv)" -gt 60 ]
	diff -u server.tsv current.tsv
}
