#!/usr/bin/env bats
# registry.bats: contracts from a schema registry, registry-framed records through the real
# Kafka broker, and what happens when the registry cannot be reached (its copies on disk).
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	need_services
	cd "$BATS_TEST_TMPDIR"
	# A port nothing listens on: the registry is down.
	export SCHEMA_REGISTRY_URL=http://127.0.0.1:1/apis/ccompat/v7
}

# cache_copy DIR SUBJECT VERSION ID SCHEMA: the copy on disk evvalidate keeps of a registered
# schema (the format of lib/registry.c: the resolved document's text and its sha256).
cache_copy() {
	mkdir -p "$1"
	local sha
	sha=$(printf '%s' "$5" | sha256sum | cut -d' ' -f1)
	jq -cn --arg s "$2" --argjson v "$3" --argjson id "$4" --arg sha "$sha" --arg schema "$5" \
		'{subject:$s,version:$v,id:$id,sha256:$sha,schema:$schema}' >"$1/$2@$3.json"
}

SCHEMA='{"type":"object","required":["ts","event_type"],"properties":{"ts":{"type":"integer"},"event_type":{"type":"string"}}}'

@test "framed records: kin -P --schema-id writes the frame, kin -C --meta-field moves the id into the provenance" {
	topic=$(new_topic framed)
	printf '%s\n' '{"ts":1,"event_type":"a"}' '{"ts":2,"event_type":"b"}' > in.ndjson
	run -0 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" --schema-id 266 < in.ndjson
	# On the wire: magic byte 0, the id big-endian (0x0000010a), then the JSON.
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e -J -o beginning
	[ "$(jq -j .payload <<<"${lines[0]}" | head -c 5 | od -An -tx1 | tr -d ' ')" = 000000010a ]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e -o beginning --meta-field _src
	[ "${#lines[@]}" -eq 3 ] # and the end of the stream
	[ "${lines[2]}" = '{"__evpipe":"end"}' ]
	[[ $stderr != *newline* ]] # the id 266 holds a newline byte (0x0a): the frame is gone
	for l in "${lines[@]:0:2}"; do
		[ "$(jq -c '._src.schema_id' <<<"$l")" = 266 ]
		[ "$(jq -c 'del(._src)' <<<"$l")" = "$(jq -c . <<<"$(grep -F "$(jq -r .event_type <<<"$l")\"" in.ndjson)")" ]
	done
	# And usage: the options belong to -P, one or the other.
	run -2 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" --schema-id 1
	[[ $stderr == *"--schema-id and --subject are produce options"* ]]
	run -2 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" --schema-id 1 --subject s
}

@test "registry down at start, no copy on disk: exit 1 with a clear error" {
	run -1 --separate-stderr evvalidate --contract registry:events-value@3 --registry-cache cache < /dev/null
	[[ $stderr == *"evvalidate: contract 'registry:events-value@3': registry http://127.0.0.1:1/apis/ccompat/v7 unreachable"* ]]
	[[ $stderr == *"no cached copy of 'events-value' version 3"* ]]
	run -2 --separate-stderr evvalidate --contract registry:events-value@x < /dev/null
	[[ $stderr == *"want registry:SUBJECT[@VERSION|@latest]"* ]]
}

@test "registry down at start with a copy on disk: a warning, the copy is the contract, dead letters name it" {
	cache_copy cache events-value 3 41 "$SCHEMA"
	printf '%s\n' '{"ts":1,"event_type":"a"}' '{"ts":"x","event_type":"a"}' > in.ndjson
	run -0 --separate-stderr evvalidate --contract registry:events-value@3 --registry-cache cache --dlq dlq.ndjson < in.ndjson
	[ "$output" = '{"ts":1,"event_type":"a"}' ]
	[[ $stderr == *"warning"*"the registry is unavailable; using the cached copy of subject 'events-value' version 3 (schema id 41"* ]]
	[ "$(wc -l < dlq.ndjson)" -eq 1 ]
	[ "$(jq -r .reason dlq.ndjson)" = schema ]
	[ "$(jq -c '.contract | [.subject, .version, .id]' dlq.ndjson)" = '["events-value",3,41]' ]
	# A damaged copy is not used.
	sed -i 's/integer/number/' cache/events-value@3.json
	run -1 --separate-stderr evvalidate --contract registry:events-value@3 --registry-cache cache < /dev/null
	[[ $stderr == *"is damaged (its hash does not match)"* ]]
}

@test "framed records through Kafka: an id the job cannot accept is a dead letter schema_id, the job goes on" {
	cache_copy cache events-value 3 41 "$SCHEMA"
	topic=$(new_topic framed-dl)
	echo '{"ts":1,"event_type":"a"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" --schema-id 41 -p 0
	echo '{"ts":2,"event_type":"b"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" --schema-id 99 -p 0
	echo '{"ts":3,"event_type":"c"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -e -o beginning --meta-field _src > records.ndjson
	[ "$(wc -l < records.ndjson)" -eq 4 ] # and the end of the stream
	run -0 --separate-stderr evvalidate --contract registry:events-value@3 --registry-cache cache \
		--meta-field _src --dlq dlq.ndjson < records.ndjson
	[ "${#lines[@]}" -eq 3 ]
	[ "${lines[2]}" = '{"__evpipe":"end"}' ]
	[ "$(jq -c '[._src.schema_id, .ts]' <<<"${lines[0]}")" = '[41,1]' ]
	[ "$(jq -c '[._src.schema_id, .ts]' <<<"${lines[1]}")" = '[null,3]' ]
	[ "$(grep -vc __evpipe dlq.ndjson)" -eq 1 ]
	grep -v __evpipe dlq.ndjson > dl.ndjson && mv dl.ndjson dlq.ndjson
	[ "$(jq -r .reason dlq.ndjson)" = schema_id ]
	[ "$(jq -r .source.schema_id dlq.ndjson)" = 99 ]
	[ "$(jq -r .raw dlq.ndjson)" = '{"ts":2,"event_type":"b"}' ]
	[[ $(jq -r .error.message dlq.ndjson) == "schema id 99 cannot be resolved: registry "*unreachable* ]]
	[ "$(jq -r .contract.version dlq.ndjson)" = 3 ]
}

@test "the compatibility gate: a registry failure is exit 1, not a pass" {
	echo "$SCHEMA" > new.json
	run -1 --separate-stderr evvalidate --check-compat registry:events-value new.json
	[[ $stderr == *"--check-compat 'events-value': registry http://127.0.0.1:1/apis/ccompat/v7 unreachable"* ]]
	run -1 --separate-stderr evvalidate --check-compat registry:events-value new.json --register
	run -2 --separate-stderr evvalidate --check-compat registry:events-value@2 new.json
	run -2 --separate-stderr evvalidate --check-compat registry:events-value
	echo '{"type":"object","requierd":["a"]}' > bad.json
	run -2 --separate-stderr evvalidate --check-compat registry:events-value bad.json
	[[ $stderr == *requierd* ]]
	run -2 --separate-stderr evvalidate --contract c.json --register
}
