#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pipelines/events-to-clickhouse.sh: the default job of docs/design.md, from a Kafka topic of events
# to per-minute aggregates in ClickHouse, as one readable script. `--help` lists its settings;
# pipelines/env.example documents each one.
#
# The job is this pipeline, each stage a tool of evpipe:
#
#   kin -C (consume the topic as a consumer group)
#     | evvalidate (the data contract)     --dlq  -> dlqsink -> <topic>.dlq
#     | evwindow (event-time windows)      --late -> dlqsink -> <topic>.late
#     | chsink (inserts into ClickHouse)   --dlq  -> dlqsink -> <topic>.dlq
#
# Rather than one `a | b | c` line, every stage runs in the background, joined to the next by
# a named pipe in a private directory, so that this script knows each stage's exit status:
# - a stage that fails stops the whole job: the others are stopped, nothing is left running,
#   and the script exits 1 naming the stage;
# - SIGTERM or SIGINT stops the job in order: kin stops consuming and ends its output with a
#   stop line, the records it read flow through every stage, evwindow keeps its open windows
#   in EVPIPE_STATE_DIR for a restart (without it, writes them), and every stage exits 0
#   (it says what it waits for, e.g. chsink riding out a ClickHouse outage; a second signal
#   stops every stage at once);
# - with EVPIPE_EXIT_AT_END=1 kin stops at the end of the topic and everything is flushed:
#   every window is written, as at the end of a file.
set -euo pipefail

me=events-to-clickhouse
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Where the contract and the SQL are: EVPIPE_SHARE_DIR, else the project's tree this script is
# in (pipelines/..), else the installed tree (bin/../share/evpipe, as make install and the
# Debian package lay it out, wherever the prefix).
if [ -n "${EVPIPE_SHARE_DIR:-}" ]; then
	root=$EVPIPE_SHARE_DIR
elif [ -f "$here/../contracts/event.schema.json" ]; then
	root=$(cd "$here/.." && pwd)
else
	root=$(cd "$here/.." && pwd)/share/evpipe
fi
default_table=evpipe.event_aggregates

usage() {
	cat <<EOF
usage: pipelines/events-to-clickhouse.sh [--help]

Runs the evpipe job: events from a Kafka topic, validated against the data contract,
counted per event type in event-time windows, into a ClickHouse table. Invalid records
and rows ClickHouse refuses go to the dead-letter topic, late records to the late topic.
Stops on SIGTERM or SIGINT after draining what was read (exit 0; meanwhile chsink may retry
ClickHouse for up to EVPIPE_CLICKHOUSE_RETRY_TIMEOUT, and a second signal stops every stage
at once); exits 1 naming the stage when one fails, after stopping the others. Every setting
is checked before any stage starts (exit 2 naming the wrong one); an EVPIPE_* variable that
is none of them is reported (a typo), and a URL with credentials in it is refused unshown.

Settings, from the environment (pipelines/env.example documents each one):
  KAFKA_BROKERS             Kafka bootstrap servers, host:port[,...] (required)
  EVPIPE_KAFKA_CONFIG       librdkafka properties file for kin and dlqsink (secrets, TLS)
  CLICKHOUSE_URL            ClickHouse HTTP interface, e.g. http://127.0.0.1:8123 (required)
  CLICKHOUSE_USER           ClickHouse user (default: the server's default user)
  CLICKHOUSE_PASSWORD       its password (never put it in CLICKHOUSE_URL)
  EVPIPE_TOPIC              topic of the events (default events)
  EVPIPE_DLQ_TOPIC          dead letters: invalid records, rows refused (default <topic>.dlq)
  EVPIPE_LATE_TOPIC         records later than the allowed lateness (default <topic>.late)
  EVPIPE_GROUP              Kafka consumer group (default evpipe); a new group starts at the
                            beginning of the topic, an existing one where it stopped
  EVPIPE_TABLE              ClickHouse table, DB.TABLE (default $default_table)
  EVPIPE_CREATE_TABLE       1: create the table (and database) when missing, from
                            pipelines/sql/event_aggregates.sql; 0: it must exist (default 1)
  EVPIPE_CONTRACT           the data contract (default contracts/event.schema.json), or
                            registry:SUBJECT[@VERSION] from the schema registry at
                            SCHEMA_REGISTRY_URL (see evvalidate --help); evvalidate's part
                            of each checkpoint then records the version a restore takes again
  EVPIPE_REGISTRY_CACHE     copies of the registry's schemas, used when it is down at start
                            (default <EVPIPE_STATE_DIR or ~/.cache/evpipe>/registry)
  EVPIPE_CONTRACT_REFRESH   how often a contract without a version asks for the latest one,
                            taken at the next checkpoint (default 60s)
  EVPIPE_SHARE_DIR          where contracts/ and pipelines/sql/ are (default: the project's
                            tree when run from it, else PREFIX/share/evpipe when installed)
  EVPIPE_WINDOW             tumbling window size (default 1m)
  EVPIPE_OUT_OF_ORDERNESS   watermark bound for out-of-order events (default 5s)
  EVPIPE_LATENESS           allowed lateness after a window fired (default 30s)
  EVPIPE_IDLE_TIMEOUT       a partition silent this long stops holding the watermark
                            (default 60s)
  EVPIPE_MAX_FUTURE         events this far ahead of their partition are dead letters
                            (default 1h)
  EVPIPE_JOB                the job's name: checkpoints are kept under it, and every
                            metric carries it as its job label (default evpipe)
  EVPIPE_COPY               this copy's name among the copies of the job in one group
                            (same EVPIPE_JOB, EVPIPE_GROUP and checkpoint store, each
                            its own EVPIPE_STATE_DIR and ports): its checkpoints go under
                            <job>/copies/<name> (default: with EVPIPE_STATE_DIR, a
                            random name kept in it, EVPIPE_STATE_DIR/copy; without, or
                            set and empty: no name, the checkpoints of a job of one copy).
                            When set, kin joins the group as the static member of that
                            name (group.instance.id): a copy restarted under it gets its
                            partitions back at once, and one stopped for good gives them
                            up only after the session timeout (45 s); unset, a dynamic
                            member. Two running copies never share a name
  EVPIPE_CHECKPOINT_STORE   where checkpoints go: file:///dir, s3://bucket/prefix (with
                            S3_ENDPOINT, AWS_REGION and the AWS credentials), or none
                            (default file://<EVPIPE_STATE_DIR or ~/.local/state/evpipe>/checkpoints);
                            also where dead letters too large for their topic are kept.
                            none: the group's offsets follow the sinks' acknowledgements
                            (at-least-once per record, not exact windows after a failure)
  EVPIPE_CLAIM_STORE        where dead letters too large for their topic keep their original
                            bytes: file:///dir or s3://bucket/prefix (default: the
                            checkpoint store; with none, such bytes are lost and counted)
  S3_ENDPOINT               an S3 store's endpoint (MinIO: http://minio:9000; default AWS)
  AWS_REGION                its region (default us-east-1)
  AWS_ACCESS_KEY_ID         its credentials (or AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE)
  AWS_SECRET_ACCESS_KEY     (from the environment or a file, never on a command line)
  EVPIPE_CHECKPOINT_INTERVAL  time between checkpoints (default 10s); with none, between
                            the barriers the sinks acknowledge
  EVPIPE_CHECKPOINT_TIMEOUT   a checkpoint not complete by then is abandoned (default 60s);
                            with none, how long kin waits at a stop for the last
                            acknowledgements
  EVPIPE_CHECKPOINT_RETAIN  complete checkpoints kept (default 3)
  EVPIPE_CHECKPOINT_TOLERABLE_FAILURES
                            abandoned checkpoints in a row that stop the job: more than
                            this (default 3)
  EVPIPE_RESTORE            latest: continue from the newest complete checkpoint when there
                            is one (refused when it fails verification, naming the newest
                            intact one); latest-valid: from the newest one that passes
                            verification; N: from checkpoint N; none: start afresh
                            (default latest)
  EVPIPE_RESTORE_MISMATCH   refuse: a checkpoint of the job taken with other settings (topic,
                            group, contract, windows, aggregates, table) is not restored, the
                            job exits 1 naming what differs; allow: restore it anyway, with a
                            warning (default refuse)
  EVPIPE_STATE_DIR          window state directory (default: a private one). Without
                            checkpoints, open windows are saved there on stop and a restart
                            continues them; with checkpoints its window/ is a working copy
  EVPIPE_CLICKHOUSE_RETRY_TIMEOUT
                            how long chsink retries a failing insert before the job fails
                            (default 5m)
  EVPIPE_METRICS_HOST       the address the metrics listen on (default 127.0.0.1; 0.0.0.0
                            in a container that Prometheus scrapes from outside)
  EVPIPE_METRICS_PORT_BASE  serve Prometheus metrics on EVPIPE_METRICS_HOST, one port per stage:
                            BASE kin, +1 evvalidate, +2 evwindow, +3 chsink,
                            +4 dlqsink of invalid records, +5 dlqsink of late records,
                            +6 dlqsink of rows refused by ClickHouse (default: none)
  EVPIPE_EXIT_AT_END        1: stop at the end of the topic, write every window, exit 0
                            (default 0: run until stopped)
  EVPIPE_BIN                directory of the evpipe tools (default: the project's bin/ if
                            built, else this script's directory if they are there, else \$PATH)
  EVPIPE_LOG_LEVEL          error, warn, info or debug, for every tool (default info)

Exit status: 0 stopped by a signal or at the end of the topic, 1 a stage failed,
2 a setting is wrong.
EOF
}

say() { printf '%s: %s\n' "$me" "$*" >&2; }
usage_error() {
	say "$*"
	echo "try '$0 --help'" >&2
	exit 2
}

case $# in
0) ;;
1) [ "$1" = --help ] || [ "$1" = -h ] || usage_error "unknown argument '$1'" ;;
*) usage_error "unexpected arguments: $*" ;;
esac
if [ $# -eq 1 ]; then
	usage
	exit 0
fi

# ---- Settings -------------------------------------------------------------------------------
# Every setting is checked here, before any stage starts: a wrong one exits 2 naming it.

# An EVPIPE_* variable that is none of the settings is most likely a typo (EVPIPE_TOPC): say so.
# The others that evpipe reads: the tools' EVPIPE_FASTJSON, and those of the project's build,
# tests and demo.
others=" EVPIPE_FASTJSON EVPIPE_ROOT EVPIPE_VERSION EVPIPE_CACHE_DIR EVPIPE_KEEP_SERVICES "
settings=" $(usage | sed -n 's/^  \(EVPIPE_[A-Z0-9_]*\).*/\1/p' | tr '\n' ' ') "
for v in $(compgen -e); do
	case $v in
	EVPIPE_DEMO_* | EVPIPE_SERVICES_*) ;;
	EVPIPE_*)
		[[ $settings$others == *" $v "* ]] ||
			say "warning: $v is not a setting of this job: ignored (--help lists them)"
		;;
	esac
done

# A URL with credentials in it (user:password@, or user= or password= in its query): its
# secrets would end up in logs and process lists. Refused without repeating it.
has_credentials() {
	[[ $1 =~ ^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@ ]] || [[ $1 =~ [?\&](user|password)= ]]
}
# A URL as it may be logged: no user information, no query.
redact() {
	local url=${1%%\?*}
	[[ $url =~ ^([A-Za-z][A-Za-z0-9+.-]*://)[^/]*@(.*)$ ]] && url=${BASH_REMATCH[1]}${BASH_REMATCH[2]}
	printf '%s' "$url"
}

# A duration as the tools take it: a number and ms, s, m, h or d.
is_duration() {
	[[ $1 =~ ^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)?$ ]]
}

[ -n "${KAFKA_BROKERS:-}" ] || usage_error "KAFKA_BROKERS is not set"
[ -n "${CLICKHOUSE_URL:-}" ] || usage_error "CLICKHOUSE_URL is not set"
! has_credentials "$CLICKHOUSE_URL" ||
	usage_error "CLICKHOUSE_URL carries credentials: give them in CLICKHOUSE_USER and CLICKHOUSE_PASSWORD"
[[ $CLICKHOUSE_URL =~ ^https?://[^/?#]+ ]] || usage_error "CLICKHOUSE_URL must be http(s)://host:port"
topic=${EVPIPE_TOPIC:-events}
dlq_topic=${EVPIPE_DLQ_TOPIC:-$topic.dlq}
late_topic=${EVPIPE_LATE_TOPIC:-$topic.late}
group=${EVPIPE_GROUP:-evpipe}
table=${EVPIPE_TABLE:-$default_table}
create_table=${EVPIPE_CREATE_TABLE:-1}
contract=${EVPIPE_CONTRACT:-$root/contracts/event.schema.json}
window=${EVPIPE_WINDOW:-1m}
out_of_orderness=${EVPIPE_OUT_OF_ORDERNESS:-5s}
lateness=${EVPIPE_LATENESS:-30s}
idle_timeout=${EVPIPE_IDLE_TIMEOUT:-60s}
max_future=${EVPIPE_MAX_FUTURE:-1h}
state_dir=${EVPIPE_STATE_DIR:-}
job=${EVPIPE_JOB:-evpipe}
store=${EVPIPE_CHECKPOINT_STORE:-file://${state_dir:-${HOME:-/tmp}/.local/state/evpipe}/checkpoints}
checkpoint_interval=${EVPIPE_CHECKPOINT_INTERVAL:-10s}
checkpoint_timeout=${EVPIPE_CHECKPOINT_TIMEOUT:-60s}
checkpoint_retain=${EVPIPE_CHECKPOINT_RETAIN:-3}
tolerable=${EVPIPE_CHECKPOINT_TOLERABLE_FAILURES:-3}
restore=${EVPIPE_RESTORE:-latest}
restore_mismatch=${EVPIPE_RESTORE_MISMATCH:-refuse}
claim_store=${EVPIPE_CLAIM_STORE:-}
metrics_host=${EVPIPE_METRICS_HOST:-127.0.0.1}
retry_timeout=${EVPIPE_CLICKHOUSE_RETRY_TIMEOUT:-5m}
port_base=${EVPIPE_METRICS_PORT_BASE:-}
exit_at_end=${EVPIPE_EXIT_AT_END:-0}

for v in window out_of_orderness lateness idle_timeout max_future checkpoint_interval \
	checkpoint_timeout retry_timeout; do
	case $v in
	retry_timeout) name=EVPIPE_CLICKHOUSE_RETRY_TIMEOUT ;;
	*) name=EVPIPE_${v^^} ;;
	esac
	is_duration "${!v}" || usage_error "$name must be a duration such as 250ms, 10s, 5m or 1h, not '${!v}'"
done
[[ $window =~ [1-9] ]] || usage_error "EVPIPE_WINDOW must be longer than 0"
for v in topic dlq_topic late_topic; do
	[[ ${!v} =~ ^[A-Za-z0-9._-]{1,249}$ ]] ||
		usage_error "EVPIPE_${v^^} must be a Kafka topic name: letters, digits, '.', '_' or '-'"
done
[[ $table =~ ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$ ]] ||
	usage_error "EVPIPE_TABLE must be DB.TABLE (letters, digits and '_')"
[[ $create_table = 0 || $table = "$default_table" || $table =~ ^[A-Za-z_][A-Za-z0-9_]*\. ]] ||
	usage_error "EVPIPE_TABLE '$table' is not DB.TABLE (or set EVPIPE_CREATE_TABLE=0)"
[[ ${EVPIPE_LOG_LEVEL:-info} =~ ^(error|warn|info|debug)$ ]] ||
	usage_error "EVPIPE_LOG_LEVEL must be error, warn, info or debug"
[ -z "${EVPIPE_KAFKA_CONFIG:-}" ] || [ -r "$EVPIPE_KAFKA_CONFIG" ] ||
	usage_error "cannot read EVPIPE_KAFKA_CONFIG '$EVPIPE_KAFKA_CONFIG'"
[[ $exit_at_end =~ ^[01]$ ]] || usage_error "EVPIPE_EXIT_AT_END must be 0 or 1"
[[ $create_table =~ ^[01]$ ]] || usage_error "EVPIPE_CREATE_TABLE must be 0 or 1"
if [ -n "$port_base" ] && ! { [[ $port_base =~ ^[0-9]{1,5}$ ]] && ((port_base > 0 && port_base + 6 <= 65535)); }; then
	usage_error "EVPIPE_METRICS_PORT_BASE must be a port number, at most 65529"
fi
case $contract in
registry:?*)
	[ -n "${SCHEMA_REGISTRY_URL:-}" ] || usage_error "EVPIPE_CONTRACT '$contract' needs SCHEMA_REGISTRY_URL"
	;;
*) [ -r "$contract" ] || usage_error "cannot read the contract '$contract'" ;;
esac
registry_cache=${EVPIPE_REGISTRY_CACHE:-${state_dir:-${XDG_CACHE_HOME:-$HOME/.cache}/evpipe}/registry}
contract_refresh=${EVPIPE_CONTRACT_REFRESH:-60s}
[ -z "$state_dir" ] || mkdir -p "$state_dir"
[[ $job =~ ^[A-Za-z0-9_.-]+$ ]] || usage_error "EVPIPE_JOB must be letters, digits, '_', '.' or '-'"
# This copy's name: EVPIPE_COPY, else the one kept in the state directory, else a new random one
# kept there, so that a restart of this copy continues its own checkpoints. Without a state
# directory of its own, the job is one copy: no name.
if [ -n "${EVPIPE_COPY+set}" ] || [ "$store" = none ] || [ -z "$state_dir" ]; then
	copy=${EVPIPE_COPY:-}
elif [ -s "$state_dir/copy" ]; then
	copy=$(cat "$state_dir/copy")
else
	copy=c$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	printf '%s\n' "$copy" >"$state_dir/copy"
fi
[ -z "$copy" ] || { [[ $copy =~ ^[A-Za-z0-9_.-]{1,64}$ ]] && [ "$copy" != . ] && [ "$copy" != .. ]; } ||
	usage_error "EVPIPE_COPY must be 1 to 64 letters, digits, '_', '.' or '-'"
[[ $restore =~ ^(latest|latest-valid|none|[0-9]+)$ ]] || usage_error "EVPIPE_RESTORE must be latest, latest-valid, none or a checkpoint id"
[[ $restore_mismatch =~ ^(refuse|allow)$ ]] || usage_error "EVPIPE_RESTORE_MISMATCH must be refuse or allow"
[[ $checkpoint_retain =~ ^[1-9][0-9]*$ ]] || usage_error "EVPIPE_CHECKPOINT_RETAIN must be a positive number"
[[ $tolerable =~ ^[0-9]+$ ]] || usage_error "EVPIPE_CHECKPOINT_TOLERABLE_FAILURES must be a number"
! has_credentials "$store" ||
	usage_error "EVPIPE_CHECKPOINT_STORE carries credentials: give them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
case $store in
none) ;;
file:///*) mkdir -p "${store#file://}" ;;
s3://?*) ;;
*) usage_error "EVPIPE_CHECKPOINT_STORE must be file:///dir, s3://bucket/prefix or none" ;;
esac
! has_credentials "$claim_store" ||
	usage_error "EVPIPE_CLAIM_STORE carries credentials: give them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
case $claim_store in
'') ;;
file:///*) mkdir -p "${claim_store#file://}" ;;
s3://?*) ;;
*) usage_error "EVPIPE_CLAIM_STORE must be file:///dir or s3://bucket/prefix" ;;
esac

# The tools: from EVPIPE_BIN, else the project's bin/ when it was built, else the directory
# this script is installed in when they are there too, else $PATH.
if [ -n "${EVPIPE_BIN:-}" ]; then
	PATH="$EVPIPE_BIN:$PATH"
elif [ -x "$root/bin/kin" ]; then
	PATH="$root/bin:$PATH"
elif [ -x "$here/kin" ]; then
	PATH="$here:$PATH"
fi
for tool in kin evvalidate evwindow chsink dlqsink; do
	command -v "$tool" >/dev/null || usage_error "'$tool' not found: build the tools (make) or set EVPIPE_BIN"
done
# The contract as evvalidate compiles it: one it refuses (an unknown keyword or format) is a
# wrong setting, said before anything starts (a registry's, fetched or from the cache).
evvalidate -q --contract "$contract" --registry-cache "$registry_cache" </dev/null >/dev/null ||
	usage_error "EVPIPE_CONTRACT '$contract' cannot be used (see above)"

# Stage i's metrics address, when EVPIPE_METRICS_PORT_BASE is set (the port map is in --help).
metrics() {
	metrics_args=()
	[ -z "$port_base" ] || metrics_args=(--metrics-addr "$metrics_host:$((port_base + $1))")
}

# Every stage's checkpoint options, under its stage name (kin coordinates: docs/design.md, State and
# checkpoints, and ADR 0008). Each stage that writes a part is named in kin's --checkpoint-expect.
checkpoint_args() {
	ckpt_args=(--job "$job" --stage "$1")
	[ "$store" = none ] || ckpt_args+=(--checkpoint-store "$store" --restore "$restore"
		--restore-mismatch "$restore_mismatch")
	[ "$store" = none ] || [ -z "$copy" ] || ckpt_args+=(--copy "$copy")
}
expect=evvalidate,evwindow,chsink,dlqsink-invalid,dlqsink-late,dlqsink-rejected

# Without checkpoints the sinks acknowledge kin's barriers on a named pipe once what preceded
# each is durable, and kin commits the offsets of a barrier every sink acknowledged (evwindow
# holds a barrier back until the windows before it are final): ADR 0014.
ack_expect=chsink,dlqsink-invalid,dlqsink-late,dlqsink-rejected
sink_args() {
	checkpoint_args "$1"
	[ "$store" != none ] || ckpt_args+=(--ack "$dir/acks")
	case $1 in dlqsink-*) [ -z "$claim_store" ] || ckpt_args+=(--claim-store "$claim_store") ;; esac
}

# ---- The private directory: named pipes between the stages ----------------------------------
dir=$(mktemp -d "${TMPDIR:-/tmp}/evpipe-job.XXXXXX")
declare -A stage_of=() # pid -> stage name, of every stage still running
declare -A pid_of=()   # stage name -> pid
stopping=0             # 1 once a signal asked the job to stop
stopped_at=0           # when ($SECONDS)
told_waiting=0         # 1 once the stages still draining were named
killing=0              # 1 once every stage was told to stop at once
failures=()            # "name status" of the stages that failed, in the order they exited

# Whatever happens to this script, no stage outlives it and the directory goes.
cleanup() {
	local pids=("${!stage_of[@]}")
	if [ ${#pids[@]} -gt 0 ]; then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

for pipe in records valid rows invalid late rejected tick acks; do
	mkfifo "$dir/$pipe"
done

# Table creation: the shipped schema, under the table's own name when it is not the default.
create_args=()
if [ "$create_table" = 1 ]; then
	sql=$root/pipelines/sql/event_aggregates.sql
	if [ "$table" != "$default_table" ]; then
		sed -e "s/$default_table/$table/g" \
			-e "s/^CREATE DATABASE IF NOT EXISTS evpipe;/CREATE DATABASE IF NOT EXISTS ${table%%.*};/" \
			"$sql" >"$dir/create-table.sql"
		sql=$dir/create-table.sql
	fi
	create_args=(--create-table "$sql")
fi

# start NAME IN OUT COMMAND...: run one stage in the background with its stdin and stdout,
# in a session of its own, so that a Ctrl-C reaches this script only and the script stops the
# stages in order. setsid execs the tool in the same process: $! is the tool's pid. Temporary
# files of the tools (evwindow's private store) go to the private directory too.
# The stages share one stderr: none draws a live status line on it (EVPIPE_PROGRESS=0).
start() {
	local name=$1 in=$2 out=$3
	shift 3
	TMPDIR=$dir EVPIPE_PROGRESS=0 setsid "$@" <"$in" >"$out" &
	stage_of[$!]=$name
	pid_of[$name]=$!
}

# ---- Stopping -------------------------------------------------------------------------------
# A stage failed: stop every other one at once.
stop_all() {
	killing=1
	local pids=("${!stage_of[@]}")
	[ ${#pids[@]} -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
}

on_signal() {
	if [ "$stopping" = 1 ]; then
		say "second signal: stopping every stage now"
		stop_all
		return
	fi
	stopping=1
	stopped_at=$SECONDS
	say "stopping: kin stops consuming, the records it read go through the job" \
		"(chsink retries a failing insert for up to $retry_timeout); a second signal stops every stage now"
	[ -z "${pid_of[kin]:-}" ] || kill -TERM "${pid_of[kin]}" 2>/dev/null || true
}

# Stopping takes a while: name the stages still draining, once.
still_draining() {
	[ "$stopping" = 1 ] && [ "$killing" = 0 ] && [ "$told_waiting" = 0 ] &&
		[ $((SECONDS - stopped_at)) -ge 5 ] || return 0
	told_waiting=1
	local names=("${stage_of[@]}")
	say "still waiting for: ${names[*]} (chsink retries a failing insert for up to" \
		"$retry_timeout); a second signal stops every stage now"
}

trap on_signal TERM INT HUP

# ---- The stages, from the last to the first ---------------------------------------------------
# Dead letters and late records, each side output to its own dlqsink (two writers on one pipe
# could interleave their lines).
metrics 4
sink_args dlqsink-invalid
start dlqsink-invalid "$dir/invalid" /dev/null dlqsink -t "$dlq_topic" "${metrics_args[@]}" \
	"${ckpt_args[@]}"
metrics 5
sink_args dlqsink-late
start dlqsink-late "$dir/late" /dev/null dlqsink -t "$late_topic" "${metrics_args[@]}" \
	"${ckpt_args[@]}"
metrics 6
sink_args dlqsink-rejected
start dlqsink-rejected "$dir/rejected" /dev/null dlqsink -t "$dlq_topic" "${metrics_args[@]}" \
	"${ckpt_args[@]}"

metrics 3
sink_args chsink
start chsink "$dir/rows" /dev/null chsink --url "$CLICKHOUSE_URL" --table "$table" \
	"${create_args[@]}" --retry-timeout "$retry_timeout" --dlq "$dir/rejected" "${metrics_args[@]}" \
	"${ckpt_args[@]}"

aggregates=count,sum:value,min:value,max:value,uniq:user_id # the table's columns
window_args=(--key event_type --ts-field ts --tumble "$window" --agg "$aggregates"
	--out-of-orderness "$out_of_orderness" --lateness "$lateness"
	--idle-timeout "$idle_timeout" --max-future "$max_future" --meta-field _src)
# With checkpoints, evwindow's directory is a working copy that a restore empties: it is a
# directory of its own, never the one that holds the default store (state_dir/checkpoints).
if [ -n "$state_dir" ] && [ "$store" = none ]; then
	window_args+=(--state-dir "$state_dir")
elif [ -n "$state_dir" ]; then
	window_args+=(--state-dir "$state_dir/window")
fi
metrics 2
checkpoint_args evwindow
start evwindow "$dir/valid" "$dir/rows" evwindow "${window_args[@]}" --late "$dir/late" \
	"${metrics_args[@]}" "${ckpt_args[@]}"

metrics 1
checkpoint_args evvalidate
start evvalidate "$dir/records" "$dir/valid" evvalidate --contract "$contract" \
	--registry-cache "$registry_cache" --contract-refresh "$contract_refresh" --meta-field _src \
	--dlq "$dir/invalid" "${metrics_args[@]}" "${ckpt_args[@]}"

consume_args=(-C -b "$KAFKA_BROKERS" -G "$group" --meta-field _src)
[ "$exit_at_end" = 0 ] || consume_args+=(-e)
checkpoint_args kin
[ "$store" = none ] || consume_args+=(--checkpoint-interval "$checkpoint_interval"
	--checkpoint-timeout "$checkpoint_timeout" --retain "$checkpoint_retain"
	--tolerable-failures "$tolerable"
	--checkpoint-expect "$expect")
# A copy known by a stable name is a static member of the group (ADR 0025): restarted, it gets
# its partitions back without a rebalance.
[ -z "${EVPIPE_COPY:-}" ] || consume_args+=(-X "group.instance.id=$EVPIPE_COPY")
[ "$store" != none ] || consume_args+=(--commit-on-ack "$dir/acks" --checkpoint-expect "$ack_expect"
	--checkpoint-interval "$checkpoint_interval" --checkpoint-timeout "$checkpoint_timeout")
metrics 0
start kin /dev/null "$dir/records" kin "${consume_args[@]}" "${metrics_args[@]}" "${ckpt_args[@]}" \
	"$topic"
[ "$stopping" = 0 ] || kill -TERM "${pid_of[kin]}" 2>/dev/null || true # a signal came meanwhile

say "consuming '$topic' as group '$group' from $KAFKA_BROKERS into $table at $(redact "$CLICKHOUSE_URL");" \
	"dead letters to '$dlq_topic', late records to '$late_topic';" \
	"checkpoints of job '$job'${copy:+, copy $copy}: $(redact "$store") (restore: $restore)"

# The stage NAME exited with STATUS: a failure stops the job.
finished() {
	local name=$1 status=$2
	[ "$status" -ne 0 ] || return 0
	# After stop_all, a stage killed by SIGTERM (a shell still opening a pipe) was told to.
	if [ "$killing" = 0 ] || [ "$status" -ne 143 ]; then
		failures+=("$name $status")
	fi
	[ "$killing" = 1 ] || stop_all
}

# ---- Running: wait for the stages ----------------------------------------------------------
# Collect the stages that have exited: a pid that no longer exists has ended, and `wait PID`
# gives its status (several may end at once). Then wait for the next one to end: `wait -n -p`
# (bash 5.1) returns as soon as one does, with its pid and status, or at a signal, so the job
# ends when its last stage does. While stopping, and on an older bash, every 0.2 s instead
# (the stages still draining are named after a while): a read from a pipe nobody writes to,
# so the pause starts no process.
collect() { # PID STATUS
	local name=${stage_of[$1]}
	unset "stage_of[$1]"
	finished "$name" "$2"
}
wait_next=0
((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501)) || wait_next=1
while [ ${#stage_of[@]} -gt 0 ]; do
	for pid in "${!stage_of[@]}"; do
		kill -0 "$pid" 2>/dev/null && continue
		status=0
		wait "$pid" 2>/dev/null || status=$?
		collect "$pid" "$status"
	done
	still_draining
	[ ${#stage_of[@]} -gt 0 ] || break
	if [ "$wait_next" = 1 ] && [ "$stopping" = 0 ]; then
		status=0
		wait -n -p ended "${!stage_of[@]}" 2>/dev/null || status=$?
		if [ -n "${ended:-}" ]; then
			collect "$ended" "$status"
		elif [ "$status" -le 128 ]; then
			wait_next=0 # not a signal: none is a child of this shell any more, poll
		fi
	else
		read -r -t 0.2 _ <>"$dir/tick" || true
	fi
done

if [ ${#failures[@]} -gt 0 ]; then
	# The cause is the first stage that failed by itself: a stage killed by SIGPIPE (status
	# 141) only wrote to one that had already gone.
	cause=${failures[0]}
	for f in "${failures[@]}"; do
		if [ "${f##* }" -ne 141 ]; then
			cause=$f
			break
		fi
	done
	name=${cause% *} status=${cause##* }
	how="exit status $status"
	[ "$status" -le 128 ] || how="killed by SIG$(kill -l "$status"), exit status $status"
	say "stage '$name' failed ($how); the other stages were stopped"
	exit 1
fi
if [ "$stopping" = 1 ]; then
	if [ "$store" != none ]; then
		say "stopped; a restart continues from the last checkpoint of job '$job'"
	else
		say "stopped${state_dir:+; open windows saved in $state_dir}"
	fi
else
	say "finished: the end of '$topic' was reached and everything was written"
fi
