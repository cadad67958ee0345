#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# observability.bats: the metrics reference (docs/metrics.md), the Grafana dashboard, the
# Prometheus configuration and alerts and the compose stack agree with each other and with the
# tools, checked offline; then a real pipeline of the tools, scraped by the local Prometheus of
# tests/services (which loads compose/prometheus/alerts.yml too), answers every panel.
# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common

COMPOSE="$EVPIPE_ROOT/compose/docker-compose.yml"
PROM_DIR="$EVPIPE_ROOT/compose/prometheus"
DASHBOARD="$EVPIPE_ROOT/grafana/dashboards/evpipe-overview.json"
METRICS_MD="$EVPIPE_ROOT/docs/metrics.md"
OBS="$EVPIPE_ROOT/tests/helpers/obs.py"
PIPELINE="$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh"

# Panels whose metrics no tool exposes yet (none: kept so that a panel added ahead of its
# metric is declared here, visibly, and the live test checks it stays empty).
PENDING_CHECKPOINT_PANELS=()


setup() {
	cd "$BATS_TEST_TMPDIR" || return
	SD_FILE=""
	TABLE=""
	STAGES=()
}

teardown() {
	[ -z "$SD_FILE" ] || rm -f "$SD_FILE"
	stop_stages
	if [ -n "$TABLE" ]; then
		curl -sS --max-time 10 "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $TABLE" \
			>/dev/null 2>&1 || true
	fi
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one pid per word
	[ -z "$pids" ] || kill $pids 2>/dev/null || true
}

# docker-compose with no engine to talk to: config must work offline.
compose() {
	env DOCKER_HOST=unix:///nonexistent/docker.sock docker-compose -f "$COMPOSE" "$@"
}

# An image reference with a version: a tag that names one (a digit in it, not "latest"), or a
# digest.
pinned() {
	local ref=$1 name tag
	[[ $ref != *@sha256:* ]] || return 0
	name=${ref##*/}
	[[ $name == *:* ]] || return 1
	tag=${name##*:}
	[ "$tag" != latest ] && [[ $tag =~ [0-9] ]]
}

@test "compose: docker-compose config -q accepts the stack offline, without warnings" {
	run -0 --separate-stderr compose config -q
	[ -z "$output" ]
	[ -z "$stderr" ]
}

@test "compose: every image is pinned to a version, the Dockerfile's base too" {
	run -0 --separate-stderr compose config
	local config=$output images=() services image
	mapfile -t images < <(sed -n 's/^    image: *//p' <<<"$config")
	services=$(compose config --services | wc -l)
	# every service names its image (a built one too, with its version)
	[ "${#images[@]}" -eq "$services" ]
	[ "$services" -ge 9 ]
	mapfile -t -O "${#images[@]}" images < <(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$EVPIPE_ROOT/Dockerfile")
	[ "${#images[@]}" -gt "$services" ]
	for image in "${images[@]}"; do
		pinned "$image" || {
			echo "not pinned to a version: $image" >&2
			return 1
		}
	done
	# and the check can fail
	run -1 pinned apache/kafka
	run -1 pinned apache/kafka:latest
	run -1 pinned debian:bookworm-slim
	run -0 pinned registry:5000/minio/mc:RELEASE.2025-04-16T18-13-26Z
}

@test "compose: the pipeline script reads every setting compose gives it" {
	run -0 "$PIPELINE" --help
	local help=$output settings=() s
	mapfile -t settings < <(compose config | awk '
		/^  [a-z]/ { svc = $1 }
		svc == "pipeline:" && /^    environment:$/ { env = 1; next }
		env && /^      [A-Z_0-9]+:/ { sub(/^ +/, ""); sub(/:.*/, ""); print; next }
		{ env = 0 }')
	[ "${#settings[@]}" -ge 5 ]
	for s in "${settings[@]}"; do
		[[ $help == *"  $s "* ]] || {
			echo "compose sets $s for the pipeline, which '$PIPELINE --help' does not list" >&2
			return 1
		}
	done
}

@test "compose: the pipeline scales (--scale pipeline=N): no fixed name or host port, a state directory per copy, checkpoints in MinIO" {
	run -0 --separate-stderr compose config
	local svc
	svc=$(python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)["services"]["pipeline"]))' <<<"$output")
	[ "$(jq -r '.container_name // "none"' <<<"$svc")" = none ]
	[ "$(jq -r '.ports // [] | length' <<<"$svc")" -eq 0 ]
	# shellcheck disable=SC2016 # the compose file's own text: $$ is compose's escape of $
	[[ "$(jq -r '.command | join(" ")' <<<"$svc")" == *'EVPIPE_STATE_DIR=/var/lib/evpipe/state/$$HOSTNAME exec evpipe-events-to-clickhouse'* ]]
	[[ "$(jq -r '.environment.EVPIPE_CHECKPOINT_STORE' <<<"$svc")" == s3://* ]]
	[ "$(jq -r '.environment.S3_ENDPOINT' <<<"$svc")" = http://minio:9000 ]
}

@test "prometheus: promtool checks the configuration and rules; every stage of the script is scraped" {
	run -0 promtool check config "$PROM_DIR/prometheus.yml"
	run -0 promtool check rules "$PROM_DIR/alerts.yml"
	# the tools' own job and tool labels are kept
	grep -q '^    honor_labels: true$' "$PROM_DIR/prometheus.yml"
	# the script's port map (--help: "BASE kin, +1 evvalidate, ... +6 ...") from compose's base
	run -0 "$PIPELINE" --help
	local last base i
	last=$(grep -o '+[0-9][0-9]* [a-z]' <<<"$output" | tr -dc '0-9\n' | sort -n | tail -n 1)
	[ "$last" -ge 5 ]
	base=$(compose config | sed -n 's/^      EVPIPE_METRICS_PORT_BASE: *//p' | tr -d "'\"")
	[ -n "$base" ]
	for ((i = 0; i <= last; i++)); do
		grep -q "^ *- {names: \[pipeline\], type: A, port: $((base + i))," "$PROM_DIR/prometheus.yml" || {
			echo "prometheus.yml does not scrape port $((base + i)) of every copy of the pipeline" >&2
			return 1
		}
	done
}

@test "prometheus: every alert has a unit test where it fires and one where it does not" {
	run -0 promtool test rules "$PROM_DIR/alerts_test.yml"
	local alerts=() a
	mapfile -t alerts < <(sed -n 's/^ *- alert: *//p' "$PROM_DIR/alerts.yml")
	[ "${#alerts[@]}" -ge 5 ]
	for a in "${alerts[@]}"; do
		awk -v a="$a" '$0 ~ "alertname: " a "$" {
				getline
				if ($0 ~ /exp_alerts: \[\]/) quiet = 1; else fires = 1
			}
			END { exit !(quiet && fires) }' "$PROM_DIR/alerts_test.yml" || {
			echo "alert $a lacks a test that fires or one that does not" >&2
			return 1
		}
	done
	# a rule that changes meaning fails its tests
	sed 's/evpipe_kafka_consumer_lag > 1000/evpipe_kafka_consumer_lag > 0/' \
		"$PROM_DIR/alerts.yml" >alerts.yml
	cp "$PROM_DIR/alerts_test.yml" .
	run -1 promtool test rules alerts_test.yml
}

@test "docs/metrics.md lists every metric the tools register, and only those" {
	run --separate-stderr python3 "$OBS" doc "$METRICS_MD" "$EVPIPE_ROOT"
	printf '%s\n' "$stderr" >&2
	[ "$status" -eq 0 ]
	# and the check can fail: a metric left out
	grep -v "^| \`evpipe_state_spills_total\`" "$METRICS_MD" >metrics.md
	run -1 --separate-stderr python3 "$OBS" doc metrics.md "$EVPIPE_ROOT"
	[[ $stderr == *"evpipe_state_spills_total is not in metrics.md"* ]]
}

@test "dashboard: valid JSON, unique panel ids, a data source on every panel, documented metrics" {
	run --separate-stderr python3 "$OBS" lint "$DASHBOARD" "$METRICS_MD"
	printf '%s\n' "$stderr" >&2
	[ "$status" -eq 0 ]
	# the variables job and tool, and the data source of every panel comes from a variable
	[ "$(jq -r '[.templating.list[].name] | join(",")' "$DASHBOARD")" = datasource,job,tool ]
	[ "$(jq '[.panels[] | select(.datasource.uid != "${datasource}")] | length' "$DASHBOARD")" -eq 0 ]
	# and the lint can fail
	jq '.panels[3].id = .panels[2].id' "$DASHBOARD" >dup.json
	run -1 --separate-stderr python3 "$OBS" lint dup.json "$METRICS_MD"
	[[ $stderr == *"already used"* ]]
	jq 'del(.panels[3].datasource)' "$DASHBOARD" >nods.json
	run -1 --separate-stderr python3 "$OBS" lint nods.json "$METRICS_MD"
	[[ $stderr == *"no data source"* ]]
	jq '.panels[3].targets[0].expr = "rate(evpipe_no_such_thing_total[5m])"' "$DASHBOARD" >unknown.json
	run -1 --separate-stderr python3 "$OBS" lint unknown.json "$METRICS_MD"
	[[ $stderr == *"evpipe_no_such_thing_total is not in"* ]]
	# every metric of the job is on some panel
	jq 'del(.panels[] | select(any(.targets[]?; .expr | test("evpipe_keys_cross_partition_total"))))' \
		"$DASHBOARD" >missing.json
	run -1 --separate-stderr python3 "$OBS" lint missing.json "$METRICS_MD"
	[[ $stderr == *"evpipe_keys_cross_partition_total ("*"metrics.md) is on no panel"* ]]
	printf '{"panels": [' >bad.json
	run -1 --separate-stderr python3 "$OBS" lint bad.json "$METRICS_MD"
	[[ $stderr == *"not valid JSON"* ]]
}

@test "grafana: provisioning finds the data source and the dashboards where compose mounts them" {
	local prov="$EVPIPE_ROOT/grafana/provisioning" path uid
	path=$(sed -n 's/^ *path: *//p' "$prov/dashboards/provider.yml")
	# compose mounts grafana/dashboards there (docker-compose prints volumes as SRC:DST:MODE)
	compose config | grep -q "^    - /.*/grafana/dashboards:$path:ro\$"
	grep -q '^    url: http://prometheus:9090$' "$prov/datasources/prometheus.yml"
	compose config --services | grep -qx prometheus
	uid=$(sed -n 's/^    uid: *//p' "$prov/datasources/prometheus.yml")
	[ -n "$uid" ]
	grep -q '^    isDefault: true$' "$prov/datasources/prometheus.yml"
}

# stage NAME IN OUT COMMAND...: run one tool of the pipeline in the background, stderr to NAME.err.
stage() {
	local name=$1 in=$2 out=$3
	shift 3
	"$@" 2>"$name.err" <"$in" >"$out" 3>&- &
	STAGES+=("$!")
	NAMES+=("$name")
}

# Stop the stages (SIGTERM drains each), SIGKILL what is left after 10 s.
stop_stages() {
	local pid i alive
	[ "${#STAGES[@]}" -gt 0 ] || return 0
	kill -TERM "${STAGES[@]}" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive=0
		for pid in "${STAGES[@]}"; do ! kill -0 "$pid" 2>/dev/null || alive=1; done
		[ $alive = 1 ] || break
		sleep 0.1
	done
	kill -KILL "${STAGES[@]}" 2>/dev/null || true
	wait "${STAGES[@]}" 2>/dev/null || true
	STAGES=()
}

@test "live: a pipeline with checkpoints, scraped by the test Prometheus, answers every panel" {
	need_services
	if [ -z "${PROMETHEUS_URL:-}" ] || [ ! -d "${PROMETHEUS_SD_DIR:-}" ]; then
		echo "no Prometheus in tests/services/env: run tests/services/up" >&2
		return 1
	fi
	local job topic name i targets=() url pending=()
	job="obs-$$-$RANDOM"
	topic=$(new_topic obs)
	TABLE="evpipe.obs_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	sed "s/evpipe\.event_aggregates/$TABLE/g" "$EVPIPE_ROOT/pipelines/sql/event_aggregates.sql" >table.sql

	# 12000 events (2 minutes of event time, 5% invalid), then records late within and beyond
	# the allowed lateness and one from two hours ahead, into a topic keyed by event type
	"$EVPIPE_ROOT/scripts/gen-events" 12000 7 5 >events
	for ts in 1732400050000 1732400010000 1732407400000; do
		printf '{"event_id":"x%s","event_type":"click","user_id":"u1","ts":%s,"value":1.5}\n' "$ts" "$ts"
	done >>events
	kin -P -q -b "$KAFKA_BROKERS" -t "$topic" --key-field event_type <events

	# the job of pipelines/events-to-clickhouse.sh, every stage serving metrics on a port of its own
	mkfifo records valid rows invalid late rejected
	NAMES=()
	local m=(--metrics-addr 127.0.0.1:0 --job "$job")
	local ck=(--checkpoint-store "file://$BATS_TEST_TMPDIR/checkpoints")
	# the invalid records to a topic, exactly once as the job does (ADR 0021): the
	# transaction panels
	stage dlqsink-invalid invalid /dev/null dlqsink -b "$KAFKA_BROKERS" -t "$topic.dlq" \
		--delivery exactly-once "${m[@]}" "${ck[@]}" --stage dlqsink-invalid
	stage dlqsink-late late /dev/null dlqsink --file late.ndjson "${m[@]}" "${ck[@]}" \
		--stage dlqsink-late
	stage dlqsink-rejected rejected /dev/null dlqsink --file rejected.ndjson "${m[@]}" \
		"${ck[@]}" --stage dlqsink-rejected
	stage chsink rows acks chsink --url "$CLICKHOUSE_URL" --table "$TABLE" --create-table table.sql \
		--linger 200ms --dlq rejected "${m[@]}" "${ck[@]}"
	stage evwindow valid rows evwindow --key event_type --ts-field ts --tumble 1m \
		--agg count,sum:value,min:value,max:value,uniq:user_id --out-of-orderness 5s \
		--lateness 30s --idle-timeout 60s --max-future 1h --meta-field _src --late late "${m[@]}" \
		"${ck[@]}"
	stage evvalidate records valid evvalidate --contract "$EVPIPE_ROOT/contracts/event.schema.json" \
		--meta-field _src --dlq invalid "${m[@]}" "${ck[@]}"
	stage kin /dev/null records kin -C -b "$KAFKA_BROKERS" -G "$topic" -o beginning \
		--meta-field _src -X statistics.interval.ms=1000 "${m[@]}" "${ck[@]}" \
		--checkpoint-interval 1s \
		--checkpoint-expect evvalidate,evwindow,chsink,dlqsink-invalid,dlqsink-late,dlqsink-rejected "$topic"

	# their addresses, as a file_sd target file of the test Prometheus
	for name in "${NAMES[@]}"; do
		wait_for 30 grep -q 'serving metrics at' "$name.err" || {
			echo "$name: no metrics address" >&2
			cat "$name.err" >&2
			return 1
		}
		url=$(sed -n 's|.*serving metrics at http://\([^/]*\)/metrics.*|\1|p' "$name.err")
		targets+=("\"$url\"")
	done
	SD_FILE="$PROMETHEUS_SD_DIR/obs-$job.json"
	(
		IFS=,
		printf '[{"targets": [%s]}]\n' "${targets[*]}"
	) >"$PROMETHEUS_SD_DIR/.obs-$job.tmp"
	mv "$PROMETHEUS_SD_DIR/.obs-$job.tmp" "$SD_FILE"
	# the rules as compose/prometheus/alerts.yml has them now
	curl -sSf --max-time 30 -X POST "$PROMETHEUS_URL/-/reload"

	for name in "${PENDING_CHECKPOINT_PANELS[@]}"; do pending+=(--pending "$name"); done
	run --separate-stderr python3 "$OBS" live --prometheus "$PROMETHEUS_URL" --job "$job" \
		--tools kin,evvalidate,evwindow,chsink,dlqsink --alerts "$PROM_DIR/alerts.yml" \
		--rate-interval 30s --wait 40 "${pending[@]}" "$DASHBOARD" "$METRICS_MD"
	printf '%s\n' "$output" "$stderr" >&2
	[ "$status" -eq 0 ]
	# what the panels showed did happen: rows in ClickHouse, every stage still running
	[ "$(curl -sS --max-time 10 "$CLICKHOUSE_URL/" --data-binary "SELECT count() FROM $TABLE")" -gt 0 ]
	for i in "${!STAGES[@]}"; do
		kill -0 "${STAGES[$i]}" || {
			echo "${NAMES[$i]} exited early:" >&2
			cat "${NAMES[$i]}.err" >&2
			return 1
		}
	done
}
