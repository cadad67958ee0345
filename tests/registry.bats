#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# registry.bats: contracts from a schema registry, registry-framed records through the real
# Kafka broker, and what happens when the registry cannot be reached (its copies on disk).
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	need_services
	[ -n "${SCHEMA_REGISTRY_URL:-}" ] || {
		echo "no SCHEMA_REGISTRY_URL in the services' env: tests/services/up starts the registry" >&2
		return 1
	}
	cd "$BATS_TEST_TMPDIR" || return
	REGISTRY=$SCHEMA_REGISTRY_URL
	# A port nothing listens on: the registry is down.
	DOWN=http://127.0.0.1:1/apis/ccompat/v7
	SUBJECT=ev-$BATS_SUITE_TEST_NUMBER-$$-$RANDOM
	private_pid=''
}

teardown() {
	[ -z "$private_pid" ] || kill "$private_pid" 2>/dev/null || true
}

# start_private_registry [-Dname=value...]: a registry of this test's own (the build
# tests/services/up made, on a free port, with the given Quarkus settings; URL in $PRIVATE, pid
# in $private_pid, log in private.log), to stop or configure without disturbing the shared one.
start_private_registry() {
	local jar=${SCHEMA_REGISTRY_JAR:-${EVPIPE_CACHE_DIR:-$HOME/.cache/evpipe}/apicurio-registry-$SCHEMA_REGISTRY_VERSION/app/schema-registry-1-runner.jar}
	local port
	[ -f "$jar" ] || {
		echo "no registry build at '$jar' (tests/services/up builds it)" >&2
		return 1
	}
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	java -Xms64m -Xmx384m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
		-Dquarkus.http.host=127.0.0.1 "-Dquarkus.http.port=$port" "$@" -jar "$jar" \
		> private.log 2>&1 3>&- &
	private_pid=$!
	PRIVATE=http://127.0.0.1:$port/apis/ccompat/v7
	# Up when it answers HTTP at all (200, or 401 when it wants credentials).
	wait_for 90 bash -c "curl -s -o /dev/null -w '%{http_code}' '$PRIVATE/subjects' | grep -q '^[24]'"
}

# register SUBJECT SCHEMA [REFERENCES-JSON]: register a JSON Schema, print its id.
register() {
	local body id auth=()
	[ -z "${REGISTRY_USERPWD:-}" ] || auth=(-u "$REGISTRY_USERPWD")
	body=$(jq -cn --arg s "$2" --argjson r "${3:-[]}" '{schemaType:"JSON",schema:$s,references:$r}')
	id=$(curl -sf "${auth[@]}" -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
		--data-binary "$body" "$REGISTRY/subjects/$1/versions") || return 1
	jq -er .id <<<"$id"
}

barrier() { printf '{"__evpipe":"barrier","id":%d,"ts":%d}\n' "$1" "$(date +%s000)"; }

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

@test "framed records consumed without --meta-field: kin writes each as a rejected record (no NUL on the line), evvalidate dead-letters it as schema_id with the message's bytes" {
	topic=$(new_topic framed-nometa)
	echo '{"ts":1,"kind":"a"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 --schema-id 266 # 0x0000010a
	echo '{"ts":2,"kind":"a"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 --schema-id 41  # 0x00000029
	echo '{"ts":3,"kind":"a"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0
	# (into a file: a shell variable would drop NUL bytes)
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -o beginning --metrics-addr 127.0.0.1:0 > records.ndjson 2> kin.err &
	kin=$!
	# shellcheck disable=SC2016 # expanded by the inner shell, at each try
	wait_for 30 bash -c '[ "$(wc -l < records.ndjson)" -eq 3 ]'
	curl -sf "$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' kin.err)" > metrics
	kill -TERM "$kin"
	wait "$kin"
	grep -q '^evpipe_payloads_rejected_total{tool="kin",job="evpipe",reason="schema_id"} 2$' metrics
	grep -q '^evpipe_payloads_rejected_total{tool="kin",job="evpipe",reason="embedded_newline"} 0$' metrics
	[ "$(wc -l < records.ndjson)" -eq 3 ]
	[ "$(tr -cd '\000' < records.ndjson | wc -c)" -eq 0 ]
	[ "$(jq -c '.__evpipe_rejected | [.rejected, .offset, .schema_id]' records.ndjson | head -2 | tr '\n' ' ')" = \
		'["schema_id",0,266] ["schema_id",1,41] ' ]
	[ "$(sed -n 3p records.ndjson)" = '{"ts":3,"kind":"a"}' ]
	# Whatever the contract (the frame's id cannot be checked without the provenance).
	id=$(register "$SUBJECT" "$V1")
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT" --dlq dlq.ndjson < records.ndjson
	[ "$output" = '{"ts":3,"kind":"a"}' ]
	[ "$(jq -c '[.reason, .source.offset, .source.schema_id, .contract.id]' dlq.ndjson | tr '\n' ' ')" = \
		"[\"schema_id\",0,266,$id] [\"schema_id\",1,41,$id] " ]
	[[ $(jq -r .error.message dlq.ndjson | head -1) == "the message is registry-framed (schema id 266) and was consumed without --meta-field"* ]]
	[[ $(jq -r .error.message dlq.ndjson | tail -1) == "the message is registry-framed (schema id 41) "* ]]
	# The dead letters hold the messages' bytes, frame and all.
	dlqsink replay --file dlq.ndjson > replayed
	printf '\0\0\0\1\n{"ts":1,"kind":"a"}\n\0\0\0\0){"ts":2,"kind":"a"}\n' > expected
	assert_same_file replayed expected
	echo '{"type":"object"}' > any.json
	run -0 --separate-stderr evvalidate --contract any.json --dlq dlq2.ndjson < records.ndjson
	[ "$(jq -r .reason dlq2.ndjson | tr '\n' ' ')" = 'schema_id schema_id ' ]
}

@test "registry down at start, no copy on disk: exit 1 with a clear error" {
	export SCHEMA_REGISTRY_URL=$DOWN
	run -1 --separate-stderr evvalidate --contract registry:events-value@3 --registry-cache cache < /dev/null
	[[ $stderr == *"evvalidate: contract 'registry:events-value@3': registry http://127.0.0.1:1/apis/ccompat/v7 unreachable"* ]]
	[[ $stderr == *"no cached copy of 'events-value' version 3"* ]]
	run -2 --separate-stderr evvalidate --contract registry:events-value@x < /dev/null
	[[ $stderr == *"want registry:SUBJECT[@VERSION|@latest]"* ]]
	# Credentials come from the environment or a file, and never show.
	run -2 --separate-stderr env SCHEMA_REGISTRY_CREDENTIALS_FILE=missing evvalidate --contract registry:e < /dev/null
	[[ $stderr == *"cannot read the registry credentials file 'missing'"* ]]
	echo 'alice-s3cret' > creds
	run -2 --separate-stderr env SCHEMA_REGISTRY_CREDENTIALS_FILE=creds evvalidate --contract registry:e < /dev/null
	[[ $stderr == *"the registry credentials file 'creds' is not user:password"* ]]
	[[ $stderr != *s3cret* ]]
	echo 'alice:s3cret' > creds
	run -1 --separate-stderr env SCHEMA_REGISTRY_CREDENTIALS_FILE=creds evvalidate --contract registry:e < /dev/null
	[[ $stderr == *unreachable* && $stderr != *s3cret* ]]
	run -2 --separate-stderr env -u SCHEMA_REGISTRY_URL evvalidate --contract registry:e < /dev/null
	[[ $stderr == *"contract 'registry:e': SCHEMA_REGISTRY_URL is not set"* ]]
}

@test "registry down at start with a copy on disk: a warning, the copy is the contract, dead letters name it" {
	export SCHEMA_REGISTRY_URL=$DOWN
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

@test "framed records through Kafka, registry down: an id the job cannot resolve is a dead letter schema_id, the job goes on" {
	export SCHEMA_REGISTRY_URL=$DOWN
	cache_copy cache events-value 3 41 "$SCHEMA"
	topic=$(new_topic framed-dl)
	echo '{"ts":1,"event_type":"a"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" --schema-id 41 -p 0
	echo '{"ts":2,"event_type":"b"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" --schema-id 99 -p 0
	echo '{"ts":3,"event_type":"c"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -e -o beginning --meta-field _src > records.ndjson
	[ "$(wc -l < records.ndjson)" -eq 4 ] # and the end of the stream
	run -0 --separate-stderr evvalidate --contract registry:events-value@3 --registry-cache cache \
		--meta-field _src --schema-frame keep --dlq dlq.ndjson < records.ndjson
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
	# A file contract judges framed records by their content alone.
	echo "$SCHEMA" > contract.json
	run -0 --separate-stderr evvalidate --contract contract.json --meta-field _src < records.ndjson
	[ "${#lines[@]}" -eq 4 ]
}

@test "the compatibility gate: a registry failure is exit 1, not a pass" {
	export SCHEMA_REGISTRY_URL=$DOWN
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

V1='{"type":"object","required":["ts"],"properties":{"ts":{"type":"integer"},"kind":{"enum":["a","b"]}}}'
V2='{"type":"object","required":["ts"],"properties":{"ts":{"type":"integer"},"kind":{"enum":["a","b","c"]}}}'

@test "a contract by subject and version from the registry: logged, named in dead letters, references resolved" {
	id1=$(register "$SUBJECT" "$V1")
	id2=$(register "$SUBJECT" "$V2")
	[ "$id1" != "$id2" ]
	printf '%s\n' '{"ts":1,"kind":"a"}' '{"ts":2,"kind":"c"}' > in.ndjson
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT@1" --dlq dlq.ndjson < in.ndjson
	[ "$output" = '{"ts":1,"kind":"a"}' ]
	[[ $stderr == *"contract: subject '$SUBJECT' version 1 (schema id $id1, sha256 "* ]]
	[ "$(jq -c '[.reason, .error.path, .contract.subject, .contract.version, .contract.id]' dlq.ndjson)" = \
		"[\"schema\",\"/kind\",\"$SUBJECT\",1,$id1]" ]
	# The latest version (no version named) accepts both.
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT" < in.ndjson
	[ "${#lines[@]}" -eq 2 ]
	[[ $stderr == *"version 2 (schema id $id2,"* ]]
	run -1 --separate-stderr evvalidate --contract "registry:$SUBJECT@3" < in.ndjson

	# A schema that refers to another registered one by name.
	register "$SUBJECT-addr" '{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}' >/dev/null
	# shellcheck disable=SC2016 # a JSON Schema's $ref, not an expansion
	register "$SUBJECT-user" '{"type":"object","properties":{"home":{"$ref":"addr.json"}}}' \
		"[{\"name\":\"addr.json\",\"subject\":\"$SUBJECT-addr\",\"version\":1}]" >/dev/null
	printf '%s\n' '{"home":{"city":"Oslo"}}' '{"home":{"town":"Oslo"}}' > users.ndjson
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT-user" --dlq dlq2.ndjson < users.ndjson
	[ "$output" = '{"home":{"city":"Oslo"}}' ]
	[ "$(jq -c '[.reason, .error.path, .error.keyword]' dlq2.ndjson)" = '["schema","/home","required"]' ]
}

@test "a new version registered mid-run is taken at the next barrier and recorded in the checkpoint" {
	register "$SUBJECT" "$V1" >/dev/null
	mkfifo in
	evvalidate --contract "registry:$SUBJECT" --contract-refresh 0 --dlq dlq.ndjson \
		--checkpoint-store "file://$PWD/ckpt" --job j --metrics-addr 127.0.0.1:0 < in > out.ndjson 2> err.txt &
	pid=$!
	exec 5> in
	echo '{"ts":1,"kind":"c"}' >&5                     # only v2 accepts it: a dead letter
	wait_for 20 test -s dlq.ndjson
	id2=$(register "$SUBJECT" "$V2")
	echo '{"ts":2,"kind":"c"}' >&5                     # v2 exists, but no barrier yet
	barrier 1 >&5
	echo '{"ts":3,"kind":"c"}' >&5                     # after the barrier: v2 judges it
	wait_for 20 grep -q '"ts":3' out.ndjson
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err.txt)
	curl -sf "$url" > metrics
	grep -q "^evpipe_contract_info{tool=\"evvalidate\",job=\"j\",subject=\"$SUBJECT\",version=\"1\",id=\"[0-9]*\"} 0$" metrics
	grep -q "^evpipe_contract_info{tool=\"evvalidate\",job=\"j\",subject=\"$SUBJECT\",version=\"2\",id=\"$id2\"} 1$" metrics
	grep -q '^evpipe_contract_changes_total{tool="evvalidate",job="j"} 1$' metrics
	exec 5>&-
	wait "$pid"
	[ "$(grep -v __evpipe out.ndjson)" = '{"ts":3,"kind":"c"}' ]
	[ "$(grep -vc __evpipe dlq.ndjson)" -eq 2 ]
	[ "$(grep -v __evpipe dlq.ndjson | jq -c '[.raw, .contract.version]' | tr '\n' ' ')" = \
		'["{\"ts\":1,\"kind\":\"c\"}",1] ["{\"ts\":2,\"kind\":\"c\"}",1] ' ]
	grep -q "contract: subject '$SUBJECT' version 1 -> 2 (schema id $id2, sha256 [0-9a-f]*) from barrier 1" err.txt
	# The part of checkpoint 1: the version that judges the records after it.
	part=ckpt/j/chk-0000000001/evvalidate.json
	[ "$(jq -c '.identity.contract | [.subject, .version, .id]' "$part")" = "[\"$SUBJECT\",2,$id2]" ]

}

# events N PREFIX TYPE: N events of the job's contract, event_id PREFIX-i, of event_type TYPE.
events() {
	local i now
	now=$(date +%s000)
	for ((i = 1; i <= $1; i++)); do
		printf '{"event_id":"%s-%d","event_type":"%s","user_id":"u%d","ts":%d,"value":1}\n' "$2" "$i" "$3" "$i" "$now"
	done
}

@test "the job through Kafka: a version registered mid-run is taken at a barrier, and the records only it accepts stop being dead letters" {
	schema=$(jq -c . "$EVPIPE_ROOT/contracts/event.schema.json")
	register "$SUBJECT" "$schema" >/dev/null
	topic=$(new_topic job-new-version)
	table="evpipe.registry_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	# "refund" is no event_type of version 1.
	events 5 before refund | kin -P -q -b "$KAFKA_BROKERS" -t "$topic" -p 0
	env EVPIPE_CONTRACT="registry:$SUBJECT" EVPIPE_CONTRACT_REFRESH=0 EVPIPE_TOPIC="$topic" \
		EVPIPE_GROUP="g-$topic" EVPIPE_TABLE="$table" EVPIPE_JOB="j-$topic" \
		EVPIPE_CHECKPOINT_STORE="file://$PWD/checkpoints" EVPIPE_CHECKPOINT_INTERVAL=300ms \
		EVPIPE_REGISTRY_CACHE="$PWD/cache" TMPDIR="$PWD" \
		"$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh" 2> job.err &
	job=$!
	# The five are dead letters of version 1; then version 2 accepts "refund".
	wait_for 60 bash -c "[ \"\$(kin -C -b $KAFKA_BROKERS -t $topic.dlq -e -o beginning 2>/dev/null | grep -c before-)\" -eq 5 ]"
	id2=$(register "$SUBJECT" "$(jq -c '.properties.event_type.enum += ["refund"]' <<<"$schema")")
	wait_for 30 grep -q "evvalidate: contract: subject '$SUBJECT' version 1 -> 2 (schema id $id2," job.err
	events 7 after refund | kin -P -q -b "$KAFKA_BROKERS" -t "$topic" -p 0
	# A complete checkpoint past the twelve records: each stage has written everything before it.
	manifest_past() {
		local m
		for m in checkpoints/"j-$topic"/chk-*/_manifest.json; do
			[ -f "$m" ] && [ "$(jq --arg t "$topic" '.offsets[$t]["0"] // 0' "$m")" -ge 12 ] && return 0
		done
		return 1
	}
	wait_for 60 manifest_past
	kill -TERM "$job"
	wait "$job"
	curl -sSf "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $table" >/dev/null
	grep -q "evvalidate: 12 record(s): 7 valid, 5 dead-lettered" job.err
	kin -C -b "$KAFKA_BROKERS" -t "$topic.dlq" -e -o beginning > dlq.ndjson
	[ "$(jq -r '"\(.raw | fromjson | .event_id) \(.contract.version)"' dlq.ndjson | sort | tr '\n' ' ')" = \
		'before-1 1 before-2 1 before-3 1 before-4 1 before-5 1 ' ]
	# Each checkpoint kept names the version that judges the records after its barrier: 2
	# from the barrier of the change on, 1 before it.
	switch=$(sed -n "s/.*version 1 -> 2 .* from barrier \([0-9]*\)$/\1/p" job.err)
	parts=(checkpoints/"j-$topic"/chk-*/evvalidate.json)
	[ "${#parts[@]}" -ge 2 ]
	for part in "${parts[@]}"; do
		n=${part%/*}
		n=$((10#${n##*chk-}))
		[ "$(jq .identity.contract.version "$part")" -eq "$((n >= switch ? 2 : 1))" ]
	done
}

@test "--contract-refresh: the latest version is asked for at most once per interval, at a barrier" {
	register "$SUBJECT" "$V1" >/dev/null
	mkfifo in
	evvalidate --contract "registry:$SUBJECT" --contract-refresh 1h --dlq dlq.ndjson < in > out.ndjson 2> err.txt &
	pid=$!
	exec 5> in
	echo '{"ts":1,"kind":"a"}' >&5
	wait_for 20 grep -q '"ts":1' out.ndjson # the contract is loaded: version 1
	register "$SUBJECT" "$V2" >/dev/null
	barrier 1 >&5 # within the hour of loading version 1: not asked
	echo '{"ts":2,"kind":"c"}' >&5
	barrier 2 >&5
	echo '{"ts":3,"kind":"c"}' >&5
	exec 5>&-
	wait "$pid"
	[ "$(grep -v __evpipe dlq.ndjson | jq -c '[(.raw | fromjson | .ts), .contract.version]' | tr '\n' ' ')" = '[2,1] [3,1] ' ]
	run -1 grep -q -e '-> 2' -e 'cannot ask' err.txt
}

@test "framed records through kin -P --subject and kin -C back: judged by their own schema and the contract; another subject's or an unknown id is a dead letter" {
	id1=$(register "$SUBJECT" "$V1")
	id2=$(register "$SUBJECT" '{"type":"object","required":["ts","kind"],"properties":{"ts":{"type":"integer"},"kind":{"enum":["a","b"]}}}')
	other=$(register "$SUBJECT-other" '{"type":"object","properties":{"x":{"type":"string"}}}')
	topic=$(new_topic framed-live)
	printf '%s\n' '{"ts":1,"kind":"a"}' '{"ts":2}' > latest.ndjson
	run -0 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 --subject "$SUBJECT" < latest.ndjson
	[[ $stderr == *"framing messages with schema id $id2 (subject '$SUBJECT' version 2)"* ]]
	echo '{"ts":3,"kind":"b"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 --schema-id "$id1"
	echo '{"ts":4,"kind":"a"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 --subject "$SUBJECT-other"
	echo '{"ts":5,"kind":"a"}' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 --schema-id 987654
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -e -o beginning --meta-field _src > records.ndjson
	[ "$(jq -c '._src.schema_id' records.ndjson | head -5 | tr '\n' ' ')" = "$id2 $id2 $id1 $other 987654 " ]
	# The job's contract is version 1; version 2 (the producer's) also requires "kind".
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT@1" --meta-field _src --dlq dlq.ndjson < records.ndjson
	[ "$(printf '%s\n' "${lines[@]}" | grep -v __evpipe | jq -c .ts | tr '\n' ' ')" = "1 3 " ]
	# What goes on, byte for byte: by default (--schema-frame strip) each record as it would
	# have been unframed, its provenance without "schema_id"; with keep, the line kin wrote.
	printf '%s\n' "${lines[@]}" | grep -v __evpipe > out.ndjson
	sed -n '1p;3p' records.ndjson | sed "s/,\"schema_id\":[0-9]*}/}/" > unframed.ndjson
	grep -q schema_id records.ndjson
	run -1 grep -q schema_id unframed.ndjson
	assert_same_file out.ndjson unframed.ndjson
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT@1" --meta-field _src --schema-frame keep < records.ndjson
	printf '%s\n' "${lines[@]}" | grep -v __evpipe > out.ndjson
	sed -n '1p;3p' records.ndjson > framed.ndjson
	assert_same_file out.ndjson framed.ndjson
	[ "$(jq -c '[._src.schema_id, .ts]' out.ndjson | tr '\n' ' ')" = "[$id2,1] [$id1,3] " ]
	run -2 --separate-stderr evvalidate --contract "registry:$SUBJECT@1" --schema-frame keep < records.ndjson
	[[ $stderr == *"--schema-frame goes with --meta-field"* ]]
	run -2 --separate-stderr evvalidate --contract "registry:$SUBJECT@1" --meta-field _src --schema-frame drop < records.ndjson
	[[ $stderr == *"invalid --schema-frame 'drop' (strip or keep)"* ]]
	grep -v __evpipe dlq.ndjson > dl.ndjson
	[ "$(jq -c '[.reason, .source.schema_id, .contract.version]' dl.ndjson | tr '\n' ' ')" = \
		"[\"schema\",$id2,2] [\"schema_id\",$other,1] [\"schema_id\",987654,1] " ]
	[ "$(sed -n 1p dl.ndjson | jq -c '[.error.keyword, .raw, .contract.id]')" = "[\"required\",\"{\\\"ts\\\":2}\",$id2]" ]
	[[ $(sed -n 2p dl.ndjson | jq -r .error.message) == *"schema id $other is unknown or not a version of subject '$SUBJECT'"* ]]
	run -1 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" --subject "$SUBJECT-none" < latest.ndjson
	[[ $stderr == *"--subject '$SUBJECT-none': "* ]]
}

@test "the compatibility gate: an incompatible schema is refused (exit 3), a compatible one registered" {
	register "$SUBJECT" '{"type":"object","properties":{"kind":{"type":"string"}}}' >/dev/null
	curl -sf -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
		--data '{"compatibility":"BACKWARD"}' "$REGISTRY/config/$SUBJECT" >/dev/null
	echo '{"type":"object","properties":{"kind":{"type":"string","maxLength":3}}}' > narrower.json
	run -3 --separate-stderr evvalidate --check-compat "registry:$SUBJECT" narrower.json --register
	[[ $stderr == *"'narrower.json' is not compatible with subject '$SUBJECT' (level BACKWARD)"* ]]
	[ "$(curl -sf "$REGISTRY/subjects/$SUBJECT/versions" | jq -c .)" = '[1]' ]
	echo '{"type":"object","properties":{"kind":{"type":["string","null"]}}}' > wider.json
	run -0 --separate-stderr evvalidate --check-compat "registry:$SUBJECT" wider.json
	[ "$(curl -sf "$REGISTRY/subjects/$SUBJECT/versions" | jq -c .)" = '[1]' ]
	run -0 --separate-stderr evvalidate --check-compat "registry:$SUBJECT" wider.json --register
	[[ $stderr == *"registered under subject '$SUBJECT' as schema id "* ]]
	[ "$(curl -sf "$REGISTRY/subjects/$SUBJECT/versions" | jq -c .)" = '[1,2]' ]
	# The make target a team runs in CI (make's own exit status on a failed step is 2).
	run -2 --separate-stderr make -s -C "$EVPIPE_ROOT" contract-check SUBJECT="$SUBJECT" CONTRACT="$PWD/narrower.json" EVVALIDATE="$EVPIPE_BIN/evvalidate"
	[[ $stderr == *"'$PWD/narrower.json' is not compatible with subject '$SUBJECT' (level BACKWARD)"* ]]
	run -0 --separate-stderr make -s -C "$EVPIPE_ROOT" contract-check SUBJECT="$SUBJECT" CONTRACT="$PWD/wider.json" EVVALIDATE="$EVPIPE_BIN/evvalidate"
	[[ $stderr == *"'$PWD/wider.json' is compatible with subject '$SUBJECT'"* ]]
}

@test "registry stopped mid-run: the job goes on with its contract and the ids it knows; at start: the copy on disk, or exit 1 without one" {
	# A registry of this test's own, stopped for real (the shared one serves the other tests).
	start_private_registry
	REGISTRY=$PRIVATE id=$(register "$SUBJECT" "$V1")
	export SCHEMA_REGISTRY_URL=$PRIVATE
	mkfifo in
	evvalidate --contract "registry:$SUBJECT" --contract-refresh 0 --registry-cache cache --meta-field _src \
		--dlq dlq.ndjson < in > out.ndjson 2> err.txt &
	pid=$!
	exec 5> in
	# Version 2, registered after the start: a record framed with its id is accepted (the
	# registry says it is a version of the subject; the answer is kept), judged by it and by
	# version 1, the contract until a barrier.
	REGISTRY=$PRIVATE id2=$(register "$SUBJECT" "$V2")
	echo '{"ts":1,"kind":"a"}' >&5
	echo "{\"_src\":{\"topic\":\"t\",\"partition\":0,\"offset\":8,\"ts\":1,\"schema_id\":$id2},\"ts\":2,\"kind\":\"a\"}" >&5
	wait_for 20 grep -q '"ts":2' out.ndjson
	kill "$private_pid"
	wait "$private_pid" 2>/dev/null || true
	private_pid=''
	run -7 curl -s "$PRIVATE/subjects" # stopped: nothing listens there any more
	barrier 1 >&5                      # version 2 cannot be asked for: version 1 stays
	echo '{"ts":3,"kind":"a"}' >&5
	echo '{"ts":4,"kind":"c"}' >&5
	echo "{\"_src\":{\"topic\":\"t\",\"partition\":0,\"offset\":9,\"ts\":1,\"schema_id\":$id2},\"ts\":5,\"kind\":\"a\"}" >&5
	echo '{"_src":{"topic":"t","partition":0,"offset":10,"ts":1,"schema_id":424242},"ts":6,"kind":"a"}' >&5
	echo '{"_src":{"topic":"t","partition":0,"offset":11,"ts":1,"schema_id":434343},"ts":7,"kind":"a"}' >&5
	exec 5>&-
	wait "$pid" # exit 0: the outage did not stop it
	[ "$(grep -v __evpipe out.ndjson | jq -c .ts | tr '\n' ' ')" = '1 2 3 5 ' ]
	grep -q "cannot ask the registry for the latest version of '$SUBJECT' (keeping version 1)" err.txt
	[ "$(grep -v __evpipe dlq.ndjson | jq -c '[.reason, .contract.version, .source.schema_id]' | tr '\n' ' ')" = \
		'["schema",1,null] ["schema_id",1,424242] ["schema_id",1,434343] ' ]
	# The first unresolvable id asked the registry; the next one, within 5 s, did not wait for it.
	[[ $(grep -v __evpipe dlq.ndjson | sed -n 2p | jq -r .error.message) == *"schema id 424242 cannot be resolved: registry "*unreachable* ]]
	[[ $(grep -v __evpipe dlq.ndjson | sed -n 3p | jq -r .error.message) == *"schema id 434343 cannot be resolved: the registry failed "*" s ago"* ]]
	[ -f "cache/$SUBJECT@1.json" ]

	# Stopped at start: the copy on disk, with a warning; without one, exit 1.
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT" --registry-cache cache <<< '{"ts":5,"kind":"a"}'
	[ "$output" = '{"ts":5,"kind":"a"}' ]
	[[ $stderr == *"the registry is unavailable; using the cached copy of subject '$SUBJECT' version 1 (schema id $id,"* ]]
	run -1 --separate-stderr evvalidate --contract "registry:$SUBJECT" --registry-cache empty-cache <<< '{"ts":5}'
	[[ $stderr == *"unreachable"*"no cached copy of '$SUBJECT' version latest"* ]]
	[ -z "$output" ]
}

@test "the job with EVPIPE_CONTRACT=registry:SUBJECT: dead letters name the contract, its version is in every checkpoint, a restore takes it again" {
	id=$(register "$SUBJECT" "$(jq -c . "$EVPIPE_ROOT/contracts/event.schema.json")")
	topic=$(new_topic job-registry)
	table="evpipe.registry_${BATS_SUITE_TEST_NUMBER}_$$_$RANDOM"
	evgen --count 3000 --seed 5 --rate 50 --invalid-pct 5 2>/dev/null |
		kin -P -q -b "$KAFKA_BROKERS" -t "$topic" --key-field event_type
	env EVPIPE_CONTRACT="registry:$SUBJECT" EVPIPE_TOPIC="$topic" EVPIPE_GROUP="g-$topic" \
		EVPIPE_TABLE="$table" EVPIPE_JOB="j-$topic" EVPIPE_CHECKPOINT_STORE="file://$PWD/checkpoints" \
		EVPIPE_CHECKPOINT_INTERVAL=300ms EVPIPE_REGISTRY_CACHE="$PWD/cache" TMPDIR="$PWD" \
		"$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh" 2> job.err &
	job=$!
	# A complete checkpoint (its manifest) after the records were read: evvalidate's part is in it.
	wait_for 60 bash -c "ls checkpoints/j-$topic/chk-*/_manifest.json >/dev/null 2>&1"
	wait_for 60 bash -c "kin -C -b $KAFKA_BROKERS -t $topic.dlq -e -o beginning 2>/dev/null | grep -q contract"
	sleep 1
	kill -TERM "$job"
	wait "$job"
	grep -q "evvalidate: contract: subject '$SUBJECT' version 1 (schema id $id," job.err
	curl -sSf "$CLICKHOUSE_URL/" --data-binary "DROP TABLE IF EXISTS $table" >/dev/null
	kin -C -b "$KAFKA_BROKERS" -t "$topic.dlq" -e -o beginning > dlq.ndjson
	[ "$(jq -r '.contract | "\(.subject) \(.version) \(.id)"' dlq.ndjson | sort -u)" = "$SUBJECT 1 $id" ]
	manifests=(checkpoints/"j-$topic"/chk-*/_manifest.json)
	manifest=${manifests[0]}
	parts=(checkpoints/"j-$topic"/chk-*/evvalidate.json)
	[ -f "${manifest%/*}/evvalidate.json" ]
	[ "$(jq -c '.identity.contract | [.subject, .version]' "${parts[@]}" | sort -u)" = "[\"$SUBJECT\",1]" ]
	[ -f "cache/$SUBJECT@1.json" ]

	# A new version; evvalidate restored from the job's last checkpoint takes version 1 again.
	register "$SUBJECT" "$(jq -c '.required += ["user_id"]' "$EVPIPE_ROOT/contracts/event.schema.json")" >/dev/null
	ck=(--checkpoint-store "file://$PWD/checkpoints" --job "j-$topic" --stage evvalidate --restore latest)
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT" "${ck[@]}" </dev/null
	[[ $stderr == *"ran on version 1 of subject '$SUBJECT': taking it again"* ]]
	[[ $stderr == *"contract: subject '$SUBJECT' version 1 "* ]]
	# Told otherwise: version 2 is another contract, refused unless the mismatch is allowed.
	run -1 --separate-stderr evvalidate --contract "registry:$SUBJECT@2" "${ck[@]}" </dev/null
	[[ $stderr == *contract* ]]
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT@2" "${ck[@]}" --restore-mismatch allow </dev/null
	[[ $stderr == *"contract: subject '$SUBJECT' version 2 "* ]]
}

@test "credentials from the environment or a file: a registry that asks for them (HTTP basic auth), the password never shown" {
	secret=pw-$RANDOM$RANDOM
	start_private_registry -Dquarkus.http.auth.basic=true -Dquarkus.security.users.embedded.plain-text=true \
		"-Dquarkus.security.users.embedded.users.alice=$secret" \
		'-Dquarkus.http.auth.permission.registry.paths=/apis/*' \
		-Dquarkus.http.auth.permission.registry.policy=authenticated
	REGISTRY=$PRIVATE REGISTRY_USERPWD=alice:$secret id=$(register "$SUBJECT" "$V1")
	export SCHEMA_REGISTRY_URL=$PRIVATE
	printf '%s\n' '{"ts":1,"kind":"a"}' '{"ts":2,"kind":"c"}' > in.ndjson
	# Without credentials, with a wrong password: exit 1 saying so, and a copy on disk is no
	# way round a refusal (only an unreachable registry is an outage).
	cache_copy cache "$SUBJECT" 1 "$id" "$V1"
	run -1 --separate-stderr evvalidate --contract "registry:$SUBJECT@1" --registry-cache cache < in.ndjson
	[[ $stderr == *"registry $PRIVATE answered HTTP 401: it wants credentials (SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD, or SCHEMA_REGISTRY_CREDENTIALS_FILE)"* ]]
	[ -z "$output" ]
	run -1 --separate-stderr env SCHEMA_REGISTRY_USER=alice SCHEMA_REGISTRY_PASSWORD="x$secret" \
		evvalidate --contract "registry:$SUBJECT@1" < in.ndjson
	[[ $stderr == *"answered HTTP 401: user 'alice' was not authenticated (wrong password?)"* ]]
	[[ $stderr != *"$secret"* ]]
	# From the environment: the contract is loaded, the job runs; neither its command line, its
	# log nor its metrics hold the password.
	mkfifo in
	SCHEMA_REGISTRY_USER=alice SCHEMA_REGISTRY_PASSWORD=$secret evvalidate --contract "registry:$SUBJECT" \
		--metrics-addr 127.0.0.1:0 --dlq dlq.ndjson < in > out.ndjson 2> err.txt &
	pid=$!
	exec 5> in
	cat in.ndjson >&5
	wait_for 20 grep -q '"ts":1' out.ndjson
	url=$(sed -n 's/.*serving metrics at \(http[^ ]*\).*/\1/p' err.txt)
	curl -sf "$url" > metrics
	grep -q "^evpipe_contract_info{tool=\"evvalidate\",job=\"evpipe\",subject=\"$SUBJECT\",version=\"1\",id=\"$id\"} 1$" metrics
	tr '\0' ' ' < "/proc/$pid/cmdline" > cmdline
	exec 5>&-
	wait "$pid"
	[ "$(cat out.ndjson)" = '{"ts":1,"kind":"a"}' ]
	[ "$(jq -c '[.reason, .contract.version]' dlq.ndjson)" = '["schema",1]' ]
	grep -q "contract: subject '$SUBJECT' version 1 (schema id $id," err.txt
	[[ $(cat cmdline) == *"evvalidate --contract registry:$SUBJECT"* ]]
	run -1 grep -lF -e "$secret" cmdline err.txt metrics out.ndjson dlq.ndjson
	# From a file (user:password), for evvalidate, the compatibility gate and kin -P --subject.
	printf 'alice:%s\n' "$secret" > creds
	chmod 600 creds
	export SCHEMA_REGISTRY_CREDENTIALS_FILE=$PWD/creds
	run -0 --separate-stderr evvalidate --contract "registry:$SUBJECT@1" < in.ndjson
	[ "$output" = '{"ts":1,"kind":"a"}' ]
	[[ $stderr != *"$secret"* ]]
	echo "$V2" > v2.json
	run -0 --separate-stderr evvalidate --check-compat "registry:$SUBJECT" v2.json --register
	[[ $stderr == *"registered under subject '$SUBJECT' as schema id "* && $stderr != *"$secret"* ]]
	topic=$(new_topic framed-auth)
	run -0 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" --subject "$SUBJECT" < in.ndjson
	[[ $stderr == *"(subject '$SUBJECT' version 2)"* && $stderr != *"$secret"* ]]
	# The registry saw each of them as alice (its access log names the authenticated user).
	[ "$(grep -c 'remote_user="alice" user_agent="evpipe/' private.log)" -ge 4 ]
	# Credentials in the URL would be shown wherever the registry is named: refused.
	run -2 --separate-stderr env SCHEMA_REGISTRY_URL="http://alice:$secret@${PRIVATE#http://}" \
		evvalidate --contract "registry:$SUBJECT" < /dev/null
	[[ $stderr == *"the registry URL holds credentials (user@host)"* && $stderr != *"$secret"* ]]
}

@test "compose: a registry service of the tests' Apicurio version, and the job pointed at it" {
	run -0 --separate-stderr env DOCKER_HOST=unix:///nonexistent/docker.sock \
		docker-compose -f "$EVPIPE_ROOT/compose/docker-compose.yml" config
	echo "$output" > compose.yml
	run -0 --separate-stderr python3 -c '
import sys, yaml
s = yaml.safe_load(open("compose.yml"))["services"]
r, p = s["registry"], s["pipeline"]
print(r["image"], p["environment"]["SCHEMA_REGISTRY_URL"], p["depends_on"]["registry"]["condition"])'
	[ "$output" = "apicurio/apicurio-registry:$SCHEMA_REGISTRY_VERSION http://registry:8080/apis/ccompat/v7 service_healthy" ]
}
