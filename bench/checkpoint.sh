#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/checkpoint.sh: what a checkpoint of evwindow costs, full and incremental.
#   - KEYS windows (default 10M: about 1 GB of state before compression) open in one
#     1-day window, then barrier 1: a full checkpoint;
#   - then 1% of the keys get one more event each, then barrier 2: what it uploads.
# Target (issue): an incremental checkpoint uploads < 5% of a full one.
#   bench/checkpoint.sh [KEYS] [STORE_URL]   (default store: a file:// directory)
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-10000000}
make -s BUILD=build/bench build/bench/bin/evwindow >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=${2:-file://$work/store}
job=bench-ckpt-$$

echo "bench: $keys keys, then 1% of them again, barriers after each" >&2
awk -v n="$keys" 'BEGIN {
	for (i = 0; i < n; i++)
		printf "{\"user_id\":\"user-%09d\",\"ts\":%d,\"value\":%d,\"event_type\":\"click\"}\n", i, 1732406400000 + i % 1000, i % 977
	print "{\"__evpipe\":\"barrier\",\"id\":1,\"ts\":0}"
	for (i = 0; i < n; i += 100)
		printf "{\"user_id\":\"user-%09d\",\"ts\":%d,\"value\":1,\"event_type\":\"view\"}\n", i, 1732406401000
	print "{\"__evpipe\":\"barrier\",\"id\":2,\"ts\":0}"
	print "{\"__evpipe\":\"stop\"}"
}' > "$work/in"

start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/rss" build/bench/bin/evwindow --tumble 1d --key user_id \
	--agg count,sum:value,min:value,max:value,uniq:event_type --checkpoint-store "$store" \
	--job "$job" --state-dir "$work/state" -v < "$work/in" > /dev/null 2> "$work/err"
end=$(date +%s.%N)
grep 'evwindow: checkpoint' "$work/err" >&2 || { cat "$work/err" >&2; exit 1; }
# "checkpoint N: TOTAL bytes, UPLOADED uploaded, SECONDS s"
read -r full_total full_up full_s < <(sed -n 's/.*checkpoint 1: \([0-9]*\) bytes, \([0-9]*\) uploaded, \([0-9.]*\) s/\1 \2 \3/p' "$work/err")
read -r inc_total inc_up inc_s < <(sed -n 's/.*checkpoint 2: \([0-9]*\) bytes, \([0-9]*\) uploaded, \([0-9.]*\) s/\1 \2 \3/p' "$work/err")
awk -v k="$keys" -v ft="$full_total" -v fu="$full_up" -v fs="$full_s" -v it="$inc_total" \
	-v iu="$inc_up" -v is="$inc_s" -v rss="$(cat "$work/rss")" -v s="$start" -v e="$end" 'BEGIN {
	printf "| checkpoint | state bytes | uploaded bytes | seconds |\n|---|---|---|---|\n"
	printf "| full (%d keys) | %d | %d | %.3f |\n", k, ft, fu, fs
	printf "| after 1%% of the keys changed | %d | %d (%.2f%% of the full one) | %.3f |\n", it, iu, 100 * iu / fu, is
	printf "\nevwindow: %.1f s in all, peak RSS %.0f MiB. Target: incremental < 5%% of full: %s\n", e - s, rss / 1024, (iu < 0.05 * fu ? "met" : "MISSED")
}'
