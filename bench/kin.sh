#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/kin.sh: kin against kcat on the local broker (produce and consume), through bench/run:
#   bench/kin.sh [N]      N events (default: BENCH_SCALE, else 1M); results in bench/results/
exec env BENCH_ONLY="${BENCH_ONLY:-produce,consume}" BENCH_SCALE="${1:-${BENCH_SCALE:-1m}}" \
	"$(dirname "$0")/run"
