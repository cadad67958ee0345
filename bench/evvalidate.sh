#!/usr/bin/env bash
# bench/evvalidate.sh: evvalidate against jq and Python's jsonschema on the same N records
# (default 1M, about 150 bytes each) of which 5% break the contract, one run each. Prints a
# table of records/s and the ratios (> 1 means evvalidate is faster) to stdout, progress to
# stderr. All three are single-threaded (evvalidate and jq by design, Python under the GIL).
#
# Targets: evvalidate >= 5x jq (the issue), >= 10x jq later.
#
#   bench/evvalidate.sh [N]
# The Python peer lives in a venv under ${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/bench-venv,
# created with pip when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
jsonschema_version=4.26.0
contract=contracts/event.schema.json
evvalidate=build/release/bin/evvalidate

make -s all >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The Python peer's environment.
venv=${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/bench-venv
if ! "$venv/bin/python" -c "import jsonschema, sys; sys.exit(jsonschema.__version__ != '$jsonschema_version')" 2>/dev/null; then
	echo "bench: installing jsonschema $jsonschema_version into $venv" >&2
	python3 -m venv "$venv" >&2
	"$venv/bin/pip" install -q "jsonschema==$jsonschema_version" >&2
fi

# The data: every 20th line breaks the contract, in turn by malformed JSON (truncated),
# a missing required field, a value outside the enum, a negative value and an extra field.
scripts/gen-events "$n" 42 | awk '
	NR % 20 == 0 {
		k = (NR / 20) % 5
		if (k == 0) sub(/}$/, "")
		else if (k == 1) sub(/"user_id":"[^"]*",/, "")
		else if (k == 2) sub(/"event_type":"[a-z_]*"/, "\"event_type\":\"scroll\"")
		else if (k == 3) sub(/"value":/, "\"value\":-1")
		else sub(/}$/, ",\"extra\":1}")
		bad++
	}
	{ print }
	END { print bad + 0 > "/dev/stderr" }' >"$work/events.ndjson" 2>"$work/bad"
bad=$(cat "$work/bad")
bytes=$(wc -c <"$work/events.ndjson")
echo "bench: $n records, $((bytes / n)) bytes each on average, $bad invalid: want $((n - bad)) valid" >&2

# The contract, as jq tests (ts as a date-time string is only matched against its pattern).
jq_filter='fromjson? | select(type == "object"
	and (keys - ["event_id", "event_type", "user_id", "ts", "value", "session_id", "properties"]
		| length == 0)
	and (.event_id | type == "string" and test("^[A-Za-z0-9_-]{1,64}$"))
	and (.event_type | IN("page_view", "click", "add_to_cart", "purchase"))
	and (.user_id | type == "string" and length >= 1 and length <= 64)
	and (.ts | (type == "number" and . == floor and . >= 946684800000 and . < 4102444800000)
		or (type == "string" and test("^20[0-9]{2}-")))
	and ((has("value") | not) or (.value | type == "number" and . >= 0))
	and ((has("session_id") | not) or (.session_id | type == "string"))
	and ((has("properties") | not) or (.properties | type == "object")))'

# The contract compiled once with jsonschema's Draft7Validator; each line parsed and validated.
py_src='
import json, sys
from jsonschema import Draft7Validator, FormatChecker
with open(sys.argv[1]) as f:
    v = Draft7Validator(json.load(f), format_checker=FormatChecker())
out = sys.stdout.buffer
valid = 0
for line in sys.stdin.buffer:
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if v.is_valid(rec):
        out.write(line)
        valid += 1
print(valid, file=sys.stderr)
'

run_evvalidate() {
	"$evvalidate" --contract "$contract" --dlq /dev/null <"$work/events.ndjson"
}
run_jq() {
	jq -cR "$jq_filter" <"$work/events.ndjson"
}

echo "bench: checking that the peers agree on the valid count ..." >&2
ev_valid=$(run_evvalidate | wc -l)
jq_valid=$(run_jq | wc -l)
echo "bench: valid records: evvalidate $ev_valid, jq $jq_valid" >&2
if [ "$ev_valid" -ne "$jq_valid" ] || [ "$ev_valid" -ne $((n - bad)) ]; then
	echo "bench: evvalidate and jq disagree (want $((n - bad)) valid)" >&2
	exit 1
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }

echo "bench: evvalidate ..." >&2
s=$(now)
run_evvalidate >/dev/null
t_ev=$(elapsed "$s")
echo "bench: evvalidate ${t_ev}s" >&2

echo "bench: jq ..." >&2
s=$(now)
run_jq >/dev/null
t_jq=$(elapsed "$s")
echo "bench: jq ${t_jq}s" >&2

echo "bench: python jsonschema $jsonschema_version ..." >&2
s=$(now)
"$venv/bin/python" -c "$py_src" "$contract" <"$work/events.ndjson" >/dev/null 2>"$work/py_valid"
t_py=$(elapsed "$s")
py_valid=$(cat "$work/py_valid")
echo "bench: python ${t_py}s, valid records: $py_valid" >&2
if [ "$py_valid" -ne "$ev_valid" ]; then
	echo "bench: evvalidate and python disagree ($ev_valid and $py_valid valid)" >&2
	exit 1
fi

printf '| workload | evvalidate rec/s | jq rec/s | python rec/s | ratio evvalidate/jq | ratio evvalidate/python |\n'
printf '|---|---|---|---|---|---|\n'
awk -v w="validate $n (5% invalid)" -v e="$t_ev" -v j="$t_jq" -v p="$t_py" -v n="$n" 'BEGIN {
	printf "| %s | %.0f | %.0f | %.0f | %.1f | %.1f |\n", w, n / e, n / j, n / p, j / e, p / e
}'
