#!/usr/bin/env bash
# bench/kin.sh: kin against kcat on the same broker, in one run: produce and consume
# N records (default 1M) of about 150 bytes. Prints a table of seconds, records/s and the
# ratio kin/kcat (> 1 means kin is faster). Target: ratio >= 1.0 on both.
#   bench/kin.sh [N]        uses the servers of tests/services (started if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
reps=${BENCH_REPS:-3}

make -s all
tests/services/up >&2
# shellcheck disable=SC1091
. tests/services/env
kin=bin/kin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/gen-events "$n" 42 > "$work/events.ndjson"
bytes=$(wc -c < "$work/events.ndjson")
echo "bench: $n records, $((bytes / n)) bytes each on average" >&2

now() { date +%s.%N; }
# Run a command reps times, print the median seconds.
median_time() {
	local t=()
	for _ in $(seq "$reps"); do
		"$@" "$work/topic-$RANDOM$RANDOM"
		t+=("$last")
	done
	printf '%s\n' "${t[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

last=0
produce_kin() { local s; s=$(now); "$kin" -P -q -b "$KAFKA_BROKERS" -t "$(basename "$1")" < "$work/events.ndjson"; last=$(awk -v a="$(now)" -v b="$s" 'BEGIN { print a - b }'); }
produce_kcat() { local s; s=$(now); kcat -P -b "$KAFKA_BROKERS" -t "$(basename "$1")" -X enable.idempotence=true < "$work/events.ndjson"; last=$(awk -v a="$(now)" -v b="$s" 'BEGIN { print a - b }'); }

# Consumers read one topic that both produced the same data to.
src=bench-consume-$RANDOM$RANDOM
"$kin" -P -q -b "$KAFKA_BROKERS" -t "$src" < "$work/events.ndjson"
consume_kin() { local s; s=$(now); "$kin" -C -q -b "$KAFKA_BROKERS" -t "$src" -o beginning -e > "$work/out"; last=$(awk -v a="$(now)" -v b="$s" 'BEGIN { print a - b }'); check_out; }
consume_kcat() { local s; s=$(now); kcat -C -q -b "$KAFKA_BROKERS" -t "$src" -o beginning -e > "$work/out"; last=$(awk -v a="$(now)" -v b="$s" 'BEGIN { print a - b }'); check_out; }
check_out() {
	local got
	got=$(wc -l < "$work/out")
	[ "$got" -eq "$n" ] || { echo "bench: consumed $got records, want $n" >&2; exit 1; }
}

echo "bench: produce (idempotent on both) ..." >&2
pk=$(median_time produce_kin)
pc=$(median_time produce_kcat)
echo "bench: consume ..." >&2
ck=$(median_time consume_kin)
cc=$(median_time consume_kcat)

printf '| workload | kin s | kcat s | kin rec/s | kcat rec/s | ratio kin/kcat |\n'
printf '|---|---|---|---|---|---|\n'
row() { awk -v w="$1" -v a="$2" -v b="$3" -v n="$n" 'BEGIN { printf "| %s | %.2f | %.2f | %.0f | %.0f | %.2f |\n", w, a, b, n / a, n / b, b / a }'; }
row "produce ${n}" "$pk" "$pc"
row "consume ${n}" "$ck" "$cc"
