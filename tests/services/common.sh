# SPDX-License-Identifier: Apache-2.0
# tests/services/common.sh: what up and down share: paths, --only, pid files, stopping, the env file.
# shellcheck shell=bash

services_all=(kafka clickhouse s3 prometheus registry)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
base=${EVPIPE_SERVICES_DIR:-$here/run}
env_file=${EVPIPE_SERVICES_ENV:-$here/env}
prog="services/${0##*/}"

note() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	note "$*"
	exit 1
}

# parse_args USAGE ARGS...: handles --only a,b and --help; sets selected=(...) and purge=0|1.
# --purge is accepted only when USAGE mentions it.
parse_args() {
	local usage=$1 only="" s a ok
	shift
	purge=0
	while [ $# -gt 0 ]; do
		case $1 in
		--only)
			[ $# -ge 2 ] || usage_error "$usage" "--only needs a list"
			only=$2
			shift
			;;
		--only=*) only=${1#--only=} ;;
		--purge)
			[[ $usage == *--purge* ]] || usage_error "$usage" "unknown option '$1'"
			# shellcheck disable=SC2034 # used by down
			purge=1
			;;
		-h | --help)
			printf 'usage: %s\n' "$usage"
			exit 0
			;;
		*) usage_error "$usage" "unknown option '$1'" ;;
		esac
		shift
	done
	selected=()
	if [ -z "$only" ]; then
		selected=("${services_all[@]}")
		return 0
	fi
	for s in ${only//,/ }; do
		ok=0
		for a in "${services_all[@]}"; do [ "$s" = "$a" ] && ok=1; done
		[ $ok = 1 ] || usage_error "$usage" "unknown service '$s' (known: ${services_all[*]})"
		selected+=("$s")
	done
	[ ${#selected[@]} -gt 0 ] || usage_error "$usage" "--only needs a list"
}

usage_error() {
	note "$2"
	printf 'usage: %s\n' "$1" >&2
	exit 2
}

svc_dir() { printf '%s/%s' "$base" "$1"; }

# ensure_venv VENV REQUIREMENTS LOG [PIP_OPTION...]: a Python venv with the pinned packages of
# REQUIREMENTS, built once and again only when that file changes (its hash is kept in the venv).
# On failure the log's end is shown, the venv removed, and the status is 1.
ensure_venv() {
	local venv=$1 reqs=$2 log=$3 want
	shift 3
	want=$(sha256sum "$reqs")
	want=${want%% *}
	if [ -f "$venv/.evpipe-requirements" ] && [ "$(cat "$venv/.evpipe-requirements")" = "$want" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$venv")"
	note "installing $(basename "$reqs") into $venv (first run only)"
	rm -rf "$venv"
	if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "$@" -r "$reqs"; } >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		rm -rf "$venv"
		return 1
	fi
	echo "$want" >"$venv/.evpipe-requirements"
}

# proc_alive PID: the process exists and is not a zombie.
proc_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# svc_pid SVC: print the pid of the running server of SVC, or fail. The pid file alone is not
# trusted (pids get reused): the process must also run in the service's directory or name it
# on its command line.
svc_pid() {
	local dir pid
	dir=$(svc_dir "$1")
	[ -f "$dir/pid" ] || return 1
	read -r pid <"$dir/pid" 2>/dev/null || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	proc_alive "$pid" || return 1
	if [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" != "$dir" ] &&
		! tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/"; then
		return 1
	fi
	printf '%s\n' "$pid"
}

# stop_svc SVC: SIGTERM the server's process group, SIGKILL it after
# $EVPIPE_SERVICES_STOP_TIMEOUT seconds (default 30), remove the pid file.
stop_svc() {
	local svc=$1 dir pid deadline killed=0
	dir=$(svc_dir "$svc")
	if pid=$(svc_pid "$svc"); then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		kill -CONT -- "-$pid" 2>/dev/null || true
		deadline=$((SECONDS + ${EVPIPE_SERVICES_STOP_TIMEOUT:-30}))
		while proc_alive "$pid"; do
			if [ $SECONDS -ge $deadline ]; then
				[ "$killed" = 0 ] || die "$svc: pid $pid survived SIGKILL"
				note "$svc: pid $pid still running, sending SIGKILL"
				kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
				killed=1
				deadline=$((SECONDS + 10))
			fi
			sleep 0.1
		done
		note "$svc: stopped (pid $pid)"
	fi
	rm -f "$dir/pid"
}

# state_get SVC KEY [FILE]: a value from the service's state file (or FILE in its directory).
state_get() {
	sed -n "s/^$2=//p" "$(svc_dir "$1")/${3:-state}" 2>/dev/null
}

# svc_env SVC: print the export lines of a running SVC.
svc_env() {
	local dir region
	dir=$(svc_dir "$1")
	x() { printf 'export %s=%q\n' "$1" "$2"; }
	case $1 in
	kafka)
		x KAFKA_BROKERS "127.0.0.1:$(state_get kafka port)"
		x KAFKA_VERSION "$(state_get kafka version)"
		;;
	clickhouse)
		x CLICKHOUSE_URL "http://127.0.0.1:$(state_get clickhouse http_port)"
		x CLICKHOUSE_HOST 127.0.0.1
		x CLICKHOUSE_HTTP_PORT "$(state_get clickhouse http_port)"
		x CLICKHOUSE_TCP_PORT "$(state_get clickhouse tcp_port)"
		;;
	s3)
		[ -f "$dir/credentials" ] || return 0
		region=$(state_get s3 region)
		x S3_ENDPOINT "http://127.0.0.1:$(state_get s3 port)"
		x S3_BUCKET "$(state_get s3 bucket)"
		x S3_REGION "$region"
		x AWS_ACCESS_KEY_ID "$(state_get s3 access_key credentials)"
		x AWS_SECRET_ACCESS_KEY "$(state_get s3 secret_key credentials)"
		x AWS_REGION "$region"
		x AWS_DEFAULT_REGION "$region"
		x S3CMD_CONFIG "$dir/s3cmd.cfg"
		;;
	prometheus)
		x PROMETHEUS_URL "http://127.0.0.1:$(state_get prometheus port)"
		x PROMETHEUS_CONFIG "$dir/prometheus.yml"
		x PROMETHEUS_SD_DIR "$dir/sd"
		x PROMETHEUS_RULES_DIR "$dir/rules"
		;;
	registry)
		x SCHEMA_REGISTRY_URL "http://127.0.0.1:$(state_get registry port)/apis/ccompat/v7"
		x SCHEMA_REGISTRY_VERSION "$(state_get registry version)"
		x SCHEMA_REGISTRY_JAR "$(state_get registry jar)"
		;;
	esac
}

# write_env: (re)write the env file from the servers running now; leave it untouched when the
# content is the same, remove it when none runs.
write_env() {
	local svc content="" any=0 tmp
	for svc in "${services_all[@]}"; do
		svc_pid "$svc" >/dev/null || continue
		any=1
		content+="# $svc"$'\n'"$(svc_env "$svc")"$'\n'
	done
	if [ $any = 0 ]; then
		rm -f "$env_file"
		return 0
	fi
	content="# written by tests/services/up; source it: . tests/services/env"$'\n'"export EVPIPE_SERVICES_DIR=$(printf '%q' "$base")"$'\n'"$content"
	if [ -f "$env_file" ] && [ "$(cat "$env_file")"$'\n' = "$content" ]; then
		return 0
	fi
	tmp="$env_file.tmp.$$"
	printf '%s' "$content" >"$tmp"
	mv -f "$tmp" "$env_file"
	note "wrote $env_file"
}
