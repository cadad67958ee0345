#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# ckstore.bats: the checkpoint store (lib/ckstore, lib/s3) against the real S3 server of
# tests/services (moto, Signature V4 enforced): the store suite of test_ckstore --s3, and single
# operations through test_ckstore --cli checked from the outside with s3cmd.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common

setup() {
	cd "$BATS_TEST_TMPDIR" || return
	need_services
	# The unit-test binary of the same build (make unit-bins) as the tools in $EVPIPE_BIN.
	T="$(dirname "$EVPIPE_BIN")/tests/test_ckstore"
	[ -x "$T" ] || {
		echo "$T is missing: make unit-bins" >&2
		return 1
	}
	PREFIX="test-$BATS_SUITE_TEST_NUMBER-$$-$RANDOM"
	URL="s3://$S3_BUCKET/$PREFIX"
}

teardown() {
	s3c del --recursive --force "s3://$S3_BUCKET/$PREFIX/" >/dev/null 2>&1 || true
}

s3c() {
	s3cmd -c "$S3CMD_CONFIG" --no-progress "$@"
}

# A port nothing listens on.
closed_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_ms() {
	date +%s%3N
}

@test "the store suite passes against S3: put, get, head, list in key order over pages, delete, streaming" {
	run -0 "$T" --s3 "$URL"
	[[ "${lines[-1]}" =~ ^([0-9]+)\ passed,\ 0\ failed$ ]]
	[ "${BASH_REMATCH[1]}" -ge 100 ]
	# It cleaned up after itself.
	run -0 s3c ls --recursive "s3://$S3_BUCKET/$PREFIX/"
	[ -z "$output" ]
}

@test "objects the store puts are in the bucket, byte for byte, for another client" {
	head -c 3145731 /dev/urandom >big.sst
	run -0 "$T" --cli "$URL" put job/shared/000001.sst big.sst
	run -0 "$T" --cli "$URL" put-string "job/chk-1/a b+c=d.json" '{"offsets":[1]}'
	s3c get --force "s3://$S3_BUCKET/$PREFIX/job/shared/000001.sst" got.sst >/dev/null
	assert_same_file big.sst got.sst
	s3c get --force "s3://$S3_BUCKET/$PREFIX/job/chk-1/a b+c=d.json" got.json >/dev/null
	[ "$(cat got.json)" = '{"offsets":[1]}' ]
	run -0 s3c ls --recursive "s3://$S3_BUCKET/$PREFIX/"
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == *" 15  "*"s3://$S3_BUCKET/$PREFIX/job/chk-1/a b+c=d.json" ]]
	[[ "${lines[1]}" == *" 3145731  "*"s3://$S3_BUCKET/$PREFIX/job/shared/000001.sst" ]]
}

@test "objects another client puts are read, listed and deleted by the store" {
	head -c 2097155 /dev/urandom >in.sst
	printf 'manifest\n' >m.json
	s3c put in.sst "s3://$S3_BUCKET/$PREFIX/job/shared/000002.sst" >/dev/null
	s3c put m.json "s3://$S3_BUCKET/$PREFIX/job/chk-2/_manifest.json" >/dev/null
	run -0 "$T" --cli "$URL" get job/shared/000002.sst out.sst
	assert_same_file in.sst out.sst
	run -0 "$T" --cli "$URL" cat job/chk-2/_manifest.json
	[ "$output" = manifest ]
	run -0 "$T" --cli "$URL" head job/shared/000002.sst
	[ "$output" = 2097155 ]
	run -0 "$T" --cli "$URL" ls job/
	[ "${lines[*]}" = "9 job/chk-2/_manifest.json 2097155 job/shared/000002.sst" ]
	run -0 "$T" --cli "$URL" rm job/shared/000002.sst
	run -0 s3c ls --recursive "s3://$S3_BUCKET/$PREFIX/"
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"/job/chk-2/_manifest.json" ]]
	# Absent keys: exit 3, and the destination of a get is left alone.
	run -3 "$T" --cli "$URL" cat job/shared/000002.sst
	run -3 "$T" --cli "$URL" get job/shared/000002.sst out.sst
	assert_same_file in.sst out.sst
	run -0 "$T" --cli "$URL" rm job/shared/000002.sst
}

@test "a wrong secret is a clear 403 at once, and no secret is printed" {
	local wrong="wrong${AWS_SECRET_ACCESS_KEY:5}"
	AWS_SECRET_ACCESS_KEY="$wrong" run -1 --separate-stderr "$T" --cli "$URL" put-string k v
	[[ "$stderr" == *"cannot put '$URL/k': HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match"* ]]
	[[ "$stderr" == *"retries: 0"* ]]
	[[ "$stderr" != *"$wrong"* ]]
	[[ "$stderr" != *"$AWS_SECRET_ACCESS_KEY"* ]]
	[ -z "$output" ]
	AWS_SECRET_ACCESS_KEY="$wrong" run -1 --separate-stderr "$T" --cli "$URL" ls
	[[ "$stderr" == *"HTTP 403 SignatureDoesNotMatch"* ]]
	# Nothing was stored.
	run -0 s3c ls --recursive "s3://$S3_BUCKET/$PREFIX/"
	[ -z "$output" ]
}

@test "credentials from a shared credentials file, in the AWS_PROFILE section" {
	cat >credentials <<EOF
[default]
aws_access_key_id = AKIANOTTHEONE
aws_secret_access_key = not-the-secret

[evpipe-test]
aws_access_key_id = $AWS_ACCESS_KEY_ID
aws_secret_access_key = $AWS_SECRET_ACCESS_KEY
EOF
	run -0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		AWS_SHARED_CREDENTIALS_FILE="$PWD/credentials" AWS_PROFILE=evpipe-test \
		"$T" --cli "$URL" put-string from-file yes
	run -0 s3c get "s3://$S3_BUCKET/$PREFIX/from-file" -
	[ "$output" = yes ]
	# The default section holds a key S3 does not know.
	run -1 --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		AWS_SHARED_CREDENTIALS_FILE="$PWD/credentials" "$T" --cli "$URL" cat from-file
	[[ "$stderr" == *"cannot get '$URL/from-file': HTTP 403 InvalidAccessKeyId"* ]]
	[[ "$stderr" != *not-the-secret* ]]
	# No credentials anywhere: an error that says where they come from, before any request.
	run -1 --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		-u AWS_SHARED_CREDENTIALS_FILE HOME="$PWD" "$T" --cli "$URL" cat from-file
	[[ "$stderr" == *"no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"* ]]
}

@test "a bucket that does not exist fails at once with NoSuchBucket" {
	run -1 --separate-stderr "$T" --cli "s3://no-such-bucket-$$/p" put-string k v
	[[ "$stderr" == *"cannot put 's3://no-such-bucket-$$/p/k': HTTP 404 NoSuchBucket"* ]]
	[[ "$stderr" == *"retries: 0"* ]]
}

@test "an unreachable endpoint is retried with backoff within the budget, then a clear error" {
	local port t0 t1
	port=$(closed_port)
	t0=$(now_ms)
	S3_ENDPOINT="http://127.0.0.1:$port" run -1 --separate-stderr \
		"$T" --cli --retry-ms 1500 "$URL" put-string k v
	t1=$(now_ms)
	[[ "$stderr" == *"cannot put '$URL/k': "*"127.0.0.1 port $port"*"(gave up after "*" attempts in "*" s)"* ]]
	[[ "$stderr" =~ retries:\ ([0-9]+) ]]
	[ "${BASH_REMATCH[1]}" -ge 3 ]
	[ $((t1 - t0)) -ge 700 ]
	[ $((t1 - t0)) -lt 10000 ]
	[[ "$stderr" != *"$AWS_SECRET_ACCESS_KEY"* ]]
	# With no budget: one attempt.
	S3_ENDPOINT="http://127.0.0.1:$port" run -1 --separate-stderr \
		"$T" --cli --retry-ms 0 "$URL" put-string k v
	[[ "$stderr" == *"retries: 0"* ]]
	[[ "$stderr" != *"gave up"* ]]
}
