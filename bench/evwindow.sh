#!/usr/bin/env bash
# bench/evwindow.sh: evwindow's throughput and peak memory, one run each:
#   - N events (default 10M) over 100k keys, 1-minute tumbling windows, 5 aggregates;
#   - the same with every event its own key (N distinct keys: state size).
# Targets (issue): >= 500k events/s per core; peak RSS <= 256 MiB with 10M distinct keys.
#   bench/evwindow.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
make -s all
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gen() { # gen N KEYS: 10k events per second of event time, user ids cycling over KEYS
	awk -v n="$1" -v keys="$2" 'BEGIN {
		srand(11)
		for (i = 0; i < n; i++)
			printf "{\"event_type\":\"click\",\"user_id\":\"u%d\",\"ts\":%.0f,\"value\":%.2f}\n",
				(keys ? i % keys : i), 1732400000000 + int(i / 10), rand() * 100
	}'
}

run() { # run NAME FILE: prints a table row
	local start end rss
	start=$(date +%s.%N)
	/usr/bin/time -f '%M' -o "$work/rss" bin/evwindow --tumble 1m --key user_id \
		--agg count,sum:value,min:value,max:value,avg:value --out-of-orderness 5s \
		< "$2" > /dev/null
	end=$(date +%s.%N)
	rss=$(cat "$work/rss")
	awk -v w="$1" -v n="$n" -v s="$start" -v e="$end" -v r="$rss" \
		'BEGIN { printf "| %s | %d | %.2f | %.0f | %.0f |\n", w, n, e - s, n / (e - s), r / 1024 }'
}

echo "bench: generating $n events twice (100k keys; all distinct)" >&2
gen "$n" 100000 > "$work/keys100k"
gen "$n" 0 > "$work/distinct"
printf '| workload | events | seconds | events/s (1 core) | peak RSS MiB |\n|---|---|---|---|---|\n'
run "100k keys, tumble 1m, 5 aggregates" "$work/keys100k"
run "all keys distinct" "$work/distinct"
