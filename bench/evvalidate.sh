#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/evvalidate.sh: evvalidate against jq (bench/peers/event-contract.jq) and Python's
# jsonschema (bench/peers/jsonschema_validate.py) on the same events, through bench/run:
#   bench/evvalidate.sh [N]      N events (default: BENCH_SCALE, else 1M); results in bench/results/
exec env BENCH_ONLY="${BENCH_ONLY:-validate}" BENCH_SCALE="${1:-${BENCH_SCALE:-1m}}" \
	"$(dirname "$0")/run"
