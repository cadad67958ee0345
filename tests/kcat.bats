#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# kcat.bats: kin takes kcat 1.7's options with kcat's letters and meanings. Each shared option
# runs through kcat (Debian's) and kin against the real Kafka broker, and the outputs (or the
# messages produced) are compared byte for byte; where kin differs on purpose (kin --help,
# "kcat's letters"), the difference is checked for what it is.
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	need_services
	command -v kcat >/dev/null || {
		echo "kcat is not installed (scripts/deps test installs it)" >&2
		return 1
	}
	cd "$BATS_TEST_TMPDIR" || return
}

# A topic holding, on partition 0, messages with keys, an empty key, no key, an empty payload,
# null keys and payloads, headers (one of them null) and a JSON payload: produced by kcat.
seed() {
	topic=$(new_topic kcat)
	printf 'k1:v1\nk2:{"a":1}\n:empty-key\nk4:\nnokey\n' |
		kcat -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 -K : -H h1=a -H h2 -H 'h3=x,y'
	printf 'k5:\n:v6\n' | kcat -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 -K : -Z
}

# same OPTION...: kcat and kin consume $topic's partition 0 with OPTION...; the bytes agree.
same() {
	kcat -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -q "$@" > want 2> want.err ||
		{ echo "kcat $*: $(cat want.err)" >&2; return 1; }
	kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -q "$@" > got 2> got.err ||
		{ echo "kin $*: $(cat got.err)" >&2; return 1; }
	cmp -s want got || {
		echo "kin and kcat differ for: $*" >&2
		diff <(od -c want) <(od -c got) | head -20 >&2
		return 1
	}
}

@test "consume: -f with every token, -K, -D, -Z, -O's kin, -J, -c, -o, -e, -u write what kcat writes" {
	seed
	same -e -f '%t|%p|%o|%k|%K|%s|%S|%h|%T\n'
	same -e -f '%R%s'
	same -e -f 'Topic %t [%p] at offset %o: key %k: %s\n'
	same -e -f '%%\t\x41\101\r\n'
	same -e -Z -f '[%k][%s]\n'
	same -e -K '#'
	same -e -K '\t' -Z
	same -e -D '\n--\n'
	same -e -D ''
	same -e -Z
	same -e -J
	same -e -J -D '\n\n'
	same -c 2
	same -e -o 2
	same -e -o -3
	same -e -o s@0 -o e@4102444800000
	same -e -u -c 3
	same -e
	[ "$(wc -l < got)" -eq 7 ]

	# -O: the offset and -K's delimiter before the key (kcat 1.7 takes -O and writes nothing)
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -q -e -K '#' -O -c 2
	[ "$output" = $'0#k1#v1\n1#k2#{"a":1}' ]
	# a token kcat does not know is refused, as kcat refuses it
	run -2 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -e -f '%x'
	[[ "$stderr" == "kin: -f: unknown format token '%x'"* ]]
	run ! kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -f '%x'
}

# produced SET OPTION...: kcat and kin produce the file in.$SET to new topics with OPTION...
# (FILE arguments after --); the messages (partition, offset, key, payload, headers) agree.
produced() {
	local set=$1 a b opts=() files=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1") && shift; done
	[ $# -gt 0 ] && shift && files=("$@")
	a=$(new_topic "kcat-$set") b=$(new_topic "kin-$set")
	kcat -P -b "$KAFKA_BROKERS" -t "$a" -p 0 "${opts[@]}" "${files[@]}" < "in.$set" > tee.kcat ||
		{ echo "kcat -P ${opts[*]} failed" >&2; return 1; }
	kin -P -b "$KAFKA_BROKERS" -t "$b" -p 0 "${opts[@]}" "${files[@]}" < "in.$set" > tee.kin ||
		{ echo "kin -P ${opts[*]} failed" >&2; return 1; }
	kcat -C -b "$KAFKA_BROKERS" -t "$a" -e -q -J | jq -c 'del(.topic, .ts, .broker)' > want
	kcat -C -b "$KAFKA_BROKERS" -t "$b" -e -q -J | jq -c 'del(.topic, .ts, .broker)' > got
	[ -s want ] || { echo "kcat produced nothing for ${opts[*]}" >&2; return 1; }
	assert_same_file want got
}

@test "produce: -K, -Z, -k, -H, -D, -c, -z, -l, FILE arguments make the messages kcat makes" {
	printf 'k1:v1\nk2:\n:v3\nnokey\n\nk:v:w\n' > in.keys
	printf 'a;b;;c;d' > in.delim
	printf 'p1\np2\np3\n' > in.count
	printf 'one\ntwo' > f1
	printf 'three\n' > f2
	: > in.files
	produced keys
	produced keys -K :
	produced keys -K : -Z
	produced keys -K : -k fixed
	produced keys -H h1=a -H h2 -H 'h3=x,y'
	produced delim -D ';'
	produced count -c 2
	[ "$(wc -l < got)" -eq 2 ]
	produced keys -z gzip
	produced files -l -- f1
	produced files -- f1 f2
	[ "$(jq -r .payload got)" = $'one\ntwo\nthree' ]
}

@test "-P -c N stops after N messages, as kcat's (it used to produce every line)" {
	topic=$(new_topic count)
	printf 'p1\np2\np3\n' | kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 -c 1
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -q
	[ "$output" = p1 ]
}

@test "-o stored without -G is a usage error (it used to read nothing and exit 0)" {
	topic=$(new_topic stored)
	printf 'm\n' | kin -P -b "$KAFKA_BROKERS" -t "$topic"
	run -2 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -o stored -e
	[ "$output" = "" ]
	[ "${stderr%%$'\n'*}" = "kin: -o stored needs -G: the offsets stored are a consumer group's" ]
	# with -G it is where the group stands
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -G "g-$topic" "$topic" -o stored -e
	[ "$output" = m ]
}

@test "-Q and -Q -J answer as kcat's; -X list is librdkafka's list; -X dump shows -X and redacts secrets" {
	topic=$(new_topic query)
	awk 'BEGIN { for (i = 0; i < 10; i++)
		printf "{\"partition\":0,\"ts\":%.0f,\"payload\":\"m%d\"}\n", 1700000000000 + i * 1000, i }' |
		kin -P -J -b "$KAFKA_BROKERS" -t "$topic"
	q=(-t "$topic:2:-1" -t "$topic:0:1700000004500" -t "$topic:1:0")
	run -0 kcat -Q -b "$KAFKA_BROKERS" "${q[@]}"
	want=$output
	run -0 --separate-stderr kin -Q -b "$KAFKA_BROKERS" "${q[@]}"
	[ "$output" = "$want" ]
	[ "${lines[0]}" = "$topic [0] offset 5" ] # sorted by partition, as kcat's
	# a partition asked for twice confuses librdkafka's answer: refused
	run -2 --separate-stderr kin -Q -b "$KAFKA_BROKERS" -t "$topic:0:-2" -t "$topic:0:-1"
	[[ "$stderr" == "kin: -Q asks for $topic [0] twice"* ]]
	run -0 kcat -Q -J -b "$KAFKA_BROKERS" "${q[@]}"
	want=$output
	run -0 --separate-stderr kin -Q -J -b "$KAFKA_BROKERS" "${q[@]}"
	[ "$output" = "$want" ] # kin ends the line; $(...) drops the newline
	run -2 --separate-stderr kin -Q -b "$KAFKA_BROKERS" -t "$topic:x:0"
	[[ "$stderr" == "kin: invalid query '$topic:x:0': want TOPIC:PARTITION:TIMESTAMP"* ]]

	kcat -X list > want
	kin -X list > got
	assert_same_file want got
	printf 'sasl.password=hunter2\n' > secret.properties
	run -0 --separate-stderr kin -X client.id=abc -F secret.properties -X dump
	[[ "$output" == "# Global config"$'\n'* ]]
	grep -qx 'client.id = abc' <<<"$output"
	grep -qx 'sasl.password = \[redacted\]' <<<"$output"
	if grep -q hunter2 <<<"$output"; then
		echo "-X dump printed the secret" >&2
		return 1
	fi
	run -0 kcat -X client.id=abc -X dump
	grep -qx 'client.id = abc' <<<"$output"
}

@test "-L and -L -J of a topic as kcat's" {
	seed
	kcat -L -b "$KAFKA_BROKERS" -t "$topic" > want
	kin -L -b "$KAFKA_BROKERS" -t "$topic" > got
	assert_same_file want got
	# the JSON the same, kin's line ended by a newline (kcat's is not)
	kcat -L -J -b "$KAFKA_BROKERS" -t "$topic" > want && echo >> want
	kin -L -J -b "$KAFKA_BROKERS" -t "$topic" > got
	assert_same_file want got
	grep -q "topic \"$topic\" with 3 partitions" <(kin -L -b "$KAFKA_BROKERS" -t "$topic")
}

@test "kin's own ways: -T writes what was produced with its delimiter, -E passes over a message that fails" {
	topic=$(new_topic tee)
	printf 'a;b;c' > in
	run -0 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 0 -D ';' -T < in
	[ "$output" = 'a;b;c;' ]
	# -E: a partition that does not exist fails one message; the others are produced, exit 1
	printf 'x\n' > x
	run -1 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 9 -E -l x
	[[ "$stderr" == *"Unknown partition"* ]]
	run -1 --separate-stderr kin -P -b "$KAFKA_BROKERS" -t "$topic" -p 9 -E x x
	[[ "$stderr" == *"2 file(s) were not produced"* ]]
	run -0 --separate-stderr kin -C -b "$KAFKA_BROKERS" -t "$topic" -p 0 -e -q
	[ "$output" = $'a\nb\nc' ]
}

@test "every option kcat 1.7 lists is kin's, or kin --help says why not" {
	run -0 kin --help
	help=$output
	letters=$(kcat -h 2>&1 | grep -o '^  -[A-Za-z]' | tr -d ' -' | sort -u)
	[ "$(wc -w <<<"$letters")" -ge 30 ]
	for l in $letters; do
		grep -Eq "^  -${l}[ ,]" <<<"$help" || [[ "$help" == *"-$l"* ]] || {
			echo "kcat's -$l is neither a kin option nor named in kin --help" >&2
			return 1
		}
	done
}
