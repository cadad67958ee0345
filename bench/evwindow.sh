#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/evwindow.sh: evwindow against the Flink job (bench/peers/flink) on files, 100 and 100k
# keys, the job's event_type and distinct keys, and evwindow's memory at 10M keys, through
# bench/run:
#   bench/evwindow.sh [N]      N events (default: BENCH_SCALE, else 1M); results in bench/results/
exec env BENCH_ONLY="${BENCH_ONLY:-window-job,window-u100,window-u100k,window-distinct,rss-10m}" \
	BENCH_SCALE="${1:-${BENCH_SCALE:-1m}}" "$(dirname "$0")/run"
