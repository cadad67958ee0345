#!/usr/bin/env bats
# rebalance.bats: assignment changes in a consumer group (docs/design.md, Scaling out; ADR
# 0019): kin announces them in-band, a revoked partition's windows are handed over through
# the checkpoint store without firing, and a rebalance never makes kin read a record twice.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common

setup() {
	cd "$BATS_TEST_TMPDIR" || return
}

# A record of partition $1 of topic t at offset $2 with event time $3 and key $4.
rec() {
	printf '{"_src":{"topic":"t","partition":%d,"offset":%d,"ts":0},"ts":%d,"k":"%s"}\n' "$@"
}

@test "a revoke hands a partition's windows to the store without firing them; the new owner loads them at the same offset and fires them complete" {
	store="file://$BATS_TEST_TMPDIR/store"
	ck=(--checkpoint-store "$store" --job "j-$$-$RANDOM")
	{
		rec 0 0 1000 a
		rec 1 0 1000 b
		rec 0 1 2000 a
		rec 0 2 3000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":3}]}'
		rec 1 1 70000 b
		echo '{"__evpipe":"end"}'
	} > old
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < old
	# partition 1's windows fire, partition 0's are not written by the copy that lost it
	[ "$(printf '%s\n' "$output" | grep -vc __evpipe)" -eq 2 ]
	[[ $output != *'"k":"a"'* ]]
	[[ $stderr == *"t [0]: revoked at offset 3: 1 windows"*"handed over to the checkpoint store"* ]]
	# the revoke line went on, after the rows before it
	[ "${lines[0]}" = '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":3}]}' ]
	ls store/j-*/handover/evwindow/0-t/00000000000000000003

	{
		echo '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":3}]}'
		rec 0 3 4000 a
		rec 0 4 65000 a
		echo '{"__evpipe":"end"}'
	} > new
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < new
	[[ $stderr == *"t [0]: assigned at offset 3: 1 windows"*"loaded from the hand-over"* ]]
	# the first window holds the old owner's three records and the new owner's one
	[ "$(printf '%s\n' "$output" | jq -c 'select(.k == "a" and .window_start == "1970-01-01 00:00:00") | [.count, .version]')" = "[4,4]" ]
	[ "$(printf '%s\n' "$output" | grep -vc __evpipe)" -eq 2 ]

	# an assign at another offset loads nothing: the state there is not where records resume
	{
		echo '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":2}]}'
		echo '{"__evpipe":"end"}'
	} > other
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < other
	[ "${#lines[@]}" -eq 2 ]
	[[ $stderr != *"loaded from the hand-over"* ]]
}

@test "a hand-over that does not match its header or checksum is refused, never loaded" {
	store="file://$BATS_TEST_TMPDIR/store"
	ck=(--checkpoint-store "$store" --job j)
	{
		rec 0 0 1000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":1}]}'
		echo '{"__evpipe":"end"}'
	} > old
	run -0 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < old
	f=store/j/handover/evwindow/0-t/00000000000000000001
	# one byte of the state changed
	python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-1]^=1; open(p,"wb").write(b)' "$f"
	printf '%s\n' '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":1}]}' \
		"$(rec 0 1 2000 a)" '{"__evpipe":"end"}' > new
	run -1 --separate-stderr evwindow --key k --tumble 1m "${ck[@]}" < new
	[[ $stderr == *"hand-over 'j/handover/evwindow/0-t/00000000000000000001' is corrupt: its state does not match its size and SHA-256"* ]]
}

@test "without a checkpoint store a revoked partition keeps its windows, said once" {
	{
		rec 0 0 1000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":1}]}'
		echo '{"__evpipe":"assign","partitions":[{"topic":"t","partition":0,"offset":1}]}'
		rec 0 1 2000 a
		echo '{"__evpipe":"revoke","partitions":[{"topic":"t","partition":0,"offset":2}]}'
	} > in
	run -0 --separate-stderr evwindow --key k --tumble 1m < in
	[ "$(printf '%s\n' "$output" | jq -c 'select(.k) | [.count, .version]')" = "[2,2]" ]
	[ "$(grep -c 'revoked partitions keep their windows here (no --checkpoint-store)' <<< "$stderr")" -eq 1 ]
}
