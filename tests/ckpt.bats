#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# ckpt.bats: ckpt over checkpoints that kin (the coordinator) and evwindow really took from
# Kafka, in a file:// store and on the S3 server of tests/services.
# shellcheck disable=SC2154,SC2030,SC2031 # $stderr, $output and $lines: bats' run, per test
bats_require_minimum_version 1.5.0

# Loaded here rather than in setup() so that the teardown below replaces the helpers' one.
load helpers/common

JOB=j
WINDOW_OPTS="--tumble 10s --key event_type --out-of-orderness 2s --lateness 5s
	--agg count,sum:value,uniq:user_id,hi=max:value,first:user_id"
LATENESS_MS=5000

# One run of `kin -C | evwindow` per store, both reading the same topic while it is filled
# in five batches; after each batch, both wait for a checkpoint that holds it, so that the
# stores have checkpoints at known offsets with windows open in between.
setup_file() {
	# the tests "without servers" need none of this: the others fail in setup without them
	need_services || return 0
	cd "$BATS_FILE_TMPDIR" || return
	"$EVPIPE_ROOT/tests/window_ref.py" --generate 5000 --seed 3 |
		grep -v -e '^[[:space:]]*$' -e '"__evpipe"' > ev
	topic=$(new_topic ckpt)
	export TOPIC=$topic
	export FILE_URL="file://$BATS_FILE_TMPDIR/store"
	export S3_URL="s3://$S3_BUCKET/ckpt-$$-$RANDOM"
	total=$(wc -l < ev)
	batch=$(((total + 4) / 5))
	sed -n "1,${batch}p" ev | kin -P -t "$topic" -p 0
	pids=()
	for k in file s3; do
		url=$FILE_URL
		[ $k = file ] || url=$S3_URL
		mkfifo "pipe.$k"
		# shellcheck disable=SC2086
		(tee "consumed.$k" < "pipe.$k" |
			evwindow $WINDOW_OPTS --checkpoint-store "$url" --job $JOB > "out.$k" \
				2> "evwindow.$k.err") 3>&- &
		pids+=($!)
		kin -C -t "$topic" -o beginning --checkpoint-interval 200ms --checkpoint-store "$url" \
			--checkpoint-expect evwindow --retain 100 --job $JOB > "pipe.$k" \
			2> "kin.$k.err" 3>&- &
		pids+=($!)
		# for teardown_file, should this fail half-way: without kin the rest ends
		echo $! >> kin.pids
	done
	produced=$batch
	for from in $((batch + 1)) $((2 * batch + 1)) $((3 * batch + 1)) $((4 * batch + 1)) end; do
		for url in "$FILE_URL" "$S3_URL"; do
			wait_for 30 at_offset "$url" "$produced"
		done
		[ $from != end ] || break
		sed -n "${from},$((from + batch - 1))p" ev | kin -P -t "$topic" -p 0
		produced=$((produced + $(sed -n "${from},$((from + batch - 1))p" ev | wc -l)))
	done
	# kin stops on SIGTERM; evwindow then fires what is open and exits.
	kill -TERM "${pids[1]}" "${pids[3]}"
	for pid in "${pids[@]}"; do
		wait "$pid"
	done
	rm kin.pids
}

teardown_file() {
	local pid
	while read -r pid; do
		kill "$pid" 2> /dev/null || true
	done 2> /dev/null < "$BATS_FILE_TMPDIR/kin.pids"
	if [ -n "${S3_URL:-}" ]; then
		s3 del --recursive "$S3_URL/" > /dev/null 2>&1 || true
	fi
}

setup() {
	[[ $BATS_TEST_DESCRIPTION == *"without servers"* ]] || need_services
	cd "$BATS_TEST_TMPDIR" || return
}

# What a test left: processes (as the helpers' teardown), and its copy of the S3 store.
teardown() {
	local pids copy
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one pid per word
	[ -z "$pids" ] || kill $pids 2> /dev/null || true
	if read -r copy 2> /dev/null < "$BATS_TEST_TMPDIR/s3.copy"; then
		s3 del --recursive "$copy/" > /dev/null 2>&1 || true
	fi
}

s3() {
	s3cmd -c "$S3CMD_CONFIG" --no-progress "$@"
}

# True when the newest complete checkpoint of url holds offset n of partition 0.
at_offset() {
	local got
	got=$(ckpt --store "$1" --job $JOB show latest -J 2> /dev/null |
		jq '[.offsets[] | select(.partition == 0) | .offset] | .[0] // 0') || return 1
	[ "$got" = "$2" ]
}

url_of() {
	if [ "$1" = file ]; then echo "$FILE_URL"; else echo "$S3_URL"; fi
}

# A copy of a store, for the tests that change it.
copy_store() {
	if [ "$1" = file ]; then
		cp -r "$BATS_FILE_TMPDIR/store" "$BATS_TEST_TMPDIR/store"
		echo "file://$BATS_TEST_TMPDIR/store"
	else
		local to="s3://$S3_BUCKET/ckpt-copy-$$-$RANDOM"
		echo "$to" > "$BATS_TEST_TMPDIR/s3.copy"
		s3 cp --recursive "$S3_URL/" "$to/" > /dev/null
		echo "$to"
	fi
}

# The lines of file $1 up to the barrier of checkpoint $2 (included), or after it.
upto_barrier() {
	awk -v b="{\"__evpipe\":\"barrier\",\"id\":$2," '{ print } index($0, b) == 1 { exit }' "$1"
}
after_barrier() {
	awk -v b="{\"__evpipe\":\"barrier\",\"id\":$2," 'f { print } index($0, b) == 1 { f = 1 }' "$1"
}

# The id of the first checkpoint that holds the second batch but not the fourth.
middle_checkpoint() {
	local id
	for id in $(ckpt --store "$1" --job $JOB ls -J | jq -r '.checkpoints[].id'); do
		if ckpt --store "$1" --job $JOB show "$id" -J | jq -e \
			'[.offsets[] | select(.partition == 0) | .offset][0] // 0 | . >= 2000 and . < 4000' \
			> /dev/null; then
			echo "$id"
			return 0
		fi
	done
	return 1
}

check_ls_show() {
	local url k=$1 n all id dir own shared=0
	url=$(url_of "$k")
	run -0 --separate-stderr ckpt --store "$url" --job $JOB ls -J
	printf '%s\n' "$output" > ls.json
	all=$(jq '.checkpoints | length' ls.json)
	n=$(jq '[.checkpoints[] | select(.state == "complete")] | length' ls.json)
	# one checkpoint at least per batch, every one complete (kin keeps 100) but the one
	# that kin's SIGTERM may have cut short
	[ "$n" -ge 5 ] && [ "$all" -le $((n + 1)) ]
	[ "$(jq '[.checkpoints[].id]' -c ls.json)" = "$(seq 1 "$all" | jq -s -c .)" ]
	[ "$(jq '[.checkpoints[:'"$n"'][].state] | unique' -c ls.json)" = '["complete"]' ]
	[ "$all" -eq "$n" ] || [ "$(jq -r '.checkpoints[-1].state' ls.json)" = "in progress" ]
	jq -e '[.checkpoints[].time] | . == sort and all(. > 1700000000000)' ls.json
	jq -e '[.checkpoints[] | select(.state == "complete")] | all(.[]; .bytes > 0 and .duration_ms >= 0 and .stages == ["evwindow", "kin"])' ls.json
	run -0 --separate-stderr ckpt --store "$url" --job $JOB ls
	[ "${#lines[@]}" -eq $((all + 1)) ]
	[[ "${lines[0]}" == "ID "*"TIME (UTC)"*"BYTES"*"DURATION"*"STATE" ]]
	[[ "${lines[n]}" =~ ^$n\ +20[0-9-]+T[0-9:.]+Z\ +[0-9]+\ +[0-9.]+m?s\ +complete$ ]]

	for id in $(seq 1 "$n"); do
		run -0 --separate-stderr ckpt --store "$url" --job $JOB show "$id" -J
		printf '%s\n' "$output" > show.json
		# the offset is where the barrier went: the records before it
		want=$(upto_barrier "$BATS_FILE_TMPDIR/consumed.$k" "$id" | grep -vc '"__evpipe"' || true)
		[ "$(jq '[.offsets[] | select(.partition == 0) | .offset][0] // 0' show.json)" -eq "$want" ]
		[ "$(jq -r '[.parts[].stage] | join(",")' show.json)" = evwindow,kin ]
		jq -e '.bytes == ([.files[].size] | add // 0) and .uploaded_bytes + .shared_bytes == .bytes' show.json
		jq -e '.stored_bytes > .bytes and .state == "complete" and .completed_at >= .started_at' show.json
		jq -e 'all(.files[]; .stage == "evwindow" and (.key | startswith("j/")))' show.json
		[ "$id" -ne 1 ] || jq -e '.shared_bytes == 0' show.json
		# in the store: its own objects and the shared files it references, as ls says
		dir="j/chk-$(printf %010d "$id")"
		if [ "$k" = file ]; then
			own=$(find "${url#file://}/$dir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
		else
			own=$(s3 ls -r "$url/$dir/" | awk '{ s += $3 } END { print s }')
		fi
		jq -e --argjson own "$own" '.stored_bytes == $own + ([.files[] | select(.shared) | .size] | add // 0)' show.json
		[ "$(jq .stored_bytes show.json)" = "$(jq --argjson id "$id" '.checkpoints[] | select(.id == $id) | .bytes' ls.json)" ]
		shared=$((shared + $(jq .shared_bytes show.json)))
	done
	# later ones share SST files with earlier checkpoints: incremental
	[ "$shared" -gt 0 ]
	run -0 --separate-stderr ckpt --store "$url" --job $JOB show latest
	[[ "${lines[0]}" == "checkpoint $n of job 'j' in $url: complete" ]]
	[[ "$output" == *"$TOPIC "*" 0 "*"$want"* ]]
	[[ "$output" == *"evwindow "*".sst "*" j/shared/evwindow/"* ]]
}

@test "ls and show on file://: every checkpoint, its offsets, parts, files and sizes" {
	check_ls_show file
}

@test "ls and show on s3://" {
	check_ls_show s3
}

check_verify() {
	local k=$1 url key other id
	url=$(url_of "$k")
	run -0 --separate-stderr ckpt --store "$url" --job $JOB verify latest
	[[ "$output" == *"ok: "*" file(s)"*"the manifest matches 2 part(s)" ]]
	run -0 --separate-stderr ckpt --store "$url" --job $JOB verify 2 -J
	jq -e '.ok and .problems == [] and .parts == 2' <<<"$output"

	url=$(copy_store "$k")
	run -0 --separate-stderr ckpt --store "$url" --job $JOB show latest -J
	key=$(jq -r '[.files[] | select(.shared)][0].key' <<<"$output")
	other=$(jq -r '[.files[] | select(.shared)][1].key' <<<"$output")
	[ -n "$key" ] && [ "$key" != null ] && [ "$other" != null ]
	# A shared file changed (same size on file://, other bytes on S3) and another removed.
	if [ "$k" = file ]; then
		printf 'XXXX' | dd of="${url#file://}/$key" bs=1 seek=10 conv=notrunc 2> /dev/null
		rm "${url#file://}/$other"
	else
		echo "not an SST file" > bad
		s3 put bad "$url/$key" > /dev/null
		s3 del "$url/$other" > /dev/null
	fi
	run -1 --separate-stderr ckpt --store "$url" --job $JOB verify latest
	[[ "$output" == *"$key: "* ]]
	[[ "$output" == *"$other: missing from the store"* ]]
	[[ "$output" == *"FAILED: 2 problem(s)"* ]]
	[[ "$stderr" == *"failed verification: 2 problem(s)"* ]]
	run -1 --separate-stderr ckpt --store "$url" --job $JOB verify latest -J
	jq -e --arg k "$key" --arg o "$other" \
		'.ok == false and ([.problems[].key] | sort) == ([$k, $o] | sort)' <<<"$output"
	jq -e --arg o "$other" '.problems[] | select(.key == $o) | .problem == "missing"' <<<"$output"
	if [ "$k" = file ]; then
		jq -e --arg k "$key" '.problems[] | select(.key == $k) | .problem == "checksum"' <<<"$output"
	fi
	# A checkpoint that references neither is still good.
	for id in $(ckpt --store "$url" --job $JOB ls -J | jq -r '.checkpoints[].id'); do
		if ckpt --store "$url" --job $JOB show "$id" -J |
			jq -e --arg k "$key" --arg o "$other" 'all(.files[]; .key != $k and .key != $o)' > /dev/null; then
			run -0 --separate-stderr ckpt --store "$url" --job $JOB verify "$id"
			break
		fi
	done

	# A part object that differs from the manifest's copy, and one that is gone.
	id=$(jq -r '.checkpoints[-2].id' <<<"$(ckpt --store "$url" --job $JOB ls -J)")
	part="j/chk-$(printf %010d "$id")/evwindow.json"
	if [ "$k" = file ]; then
		jq '.at += 1' "${url#file://}/$part" > p && mv p "${url#file://}/$part"
	else
		s3 get "$url/$part" p > /dev/null && jq '.at += 1' p > p2 && s3 put p2 "$url/$part" > /dev/null
	fi
	run -1 --separate-stderr ckpt --store "$url" --job $JOB verify "$id"
	[[ "$output" == *"$part: part 'evwindow' differs from the manifest's copy"* ]]
	if [ "$k" = file ]; then
		rm "${url#file://}/$part"
	else
		s3 del "$url/$part" > /dev/null
	fi
	run -1 --separate-stderr ckpt --store "$url" --job $JOB verify "$id"
	[[ "$output" == *"$part: the manifest lists part 'evwindow' but the store has none"* ]]
}

@test "verify on file://: passes, then names a corrupt and a missing shared file, and bad parts" {
	check_verify file
}

@test "verify on s3://: passes, then names a replaced and a deleted shared file, and bad parts" {
	check_verify s3
}

@test "a flipped digit in a manifest fails verify and every restore, naming the newest intact one; latest-valid takes it" {
	local url dir n m off flipped
	url=$(copy_store file)
	dir=${url#file://}
	n=$(ckpt --store "$url" --job $JOB ls -J | jq '[.checkpoints[] | select(.state == "complete")][-1].id')
	[ "$n" -gt 2 ]
	m="$dir/j/chk-$(printf %010d "$n")/_manifest.json"
	off=$(jq --arg t "$TOPIC" '.offsets[$t]["0"]' "$m")
	flipped=$((off + 100)) # one bit, as 10000 -> 10100 would be
	# the first occurrence: the manifest's own offsets, where kin resumes
	sed -i "0,/\"0\": $off\b/s//\"0\": $flipped/" "$m"
	[ "$(jq --arg t "$TOPIC" '.offsets[$t]["0"]' "$m")" = "$flipped" ]

	run -1 --separate-stderr ckpt --store "$url" --job $JOB verify latest
	[[ "$output" == *"j/chk-$(printf %010d "$n")/_manifest.json: the manifest does not match its checksum"* ]]
	[[ "$stderr" == *"checkpoint $n failed verification"* ]]
	# kin and evwindow refuse it, and name the newest intact one
	want="checkpoint $n of job 'j' failed verification: the manifest does not match its checksum"
	hint="the newest intact one is $((n - 1)) (--restore latest-valid or --restore $((n - 1)) uses it)"
	run -1 --separate-stderr kin -C -t "$TOPIC" -e --checkpoint-interval 1s --checkpoint-store "$url" \
		--checkpoint-expect evwindow --job $JOB --restore latest
	[[ "$stderr" == *"kin: checkpoints: $want"*"; $hint"* ]]
	# shellcheck disable=SC2086
	run -1 --separate-stderr evwindow $WINDOW_OPTS --checkpoint-store "$url" --job $JOB --restore latest < /dev/null
	[[ "$stderr" == *"evwindow: checkpoints: $want"*"; $hint"* ]]
	# shellcheck disable=SC2086
	run -1 --separate-stderr evwindow $WINDOW_OPTS --checkpoint-store "$url" --job $JOB --restore "$n" < /dev/null
	[[ "$stderr" == *"evwindow: checkpoints: $want"* ]]
	# latest-valid skips it with a warning and restores the one before
	# shellcheck disable=SC2086
	run -0 --separate-stderr evwindow $WINDOW_OPTS --checkpoint-store "$url" --job $JOB --restore latest-valid < /dev/null
	[[ "$stderr" == *"evwindow: warning: checkpoint $n failed verification (the manifest does not match its checksum"*"): skipped"* ]]
	[[ "$stderr" == *"evwindow: warning: restoring checkpoint $((n - 1)) of job 'j' from $url, completed "*" ago"* ]]

	# a manifest written before checksums (no format, no checksum) is restored, with a warning
	m="$dir/j/chk-$(printf %010d $((n - 1)))/_manifest.json"
	jq 'del(.format, .checksum)' "$m" > manifest.new && mv manifest.new "$m"
	# shellcheck disable=SC2086
	run -0 --separate-stderr evwindow $WINDOW_OPTS --checkpoint-store "$url" --job $JOB --restore $((n - 1)) < /dev/null
	[[ "$stderr" == *"evwindow: warning: checkpoint $((n - 1)) has no checksum (written by an older evpipe): restoring it unverified"* ]]
	run -0 --separate-stderr ckpt --store "$url" --job $JOB verify $((n - 1))
	[[ "$stderr" == *"checkpoint $((n - 1)) has no checksum"* ]]
	# a checksum whose key lost a bit is no older manifest
	jq '.format = 2 | .checksu = "x"' "$m" > manifest.new && mv manifest.new "$m"
	# shellcheck disable=SC2086
	run -1 --separate-stderr evwindow $WINDOW_OPTS --checkpoint-store "$url" --job $JOB --restore $((n - 1)) < /dev/null
	[[ "$stderr" == *"the manifest has a format but no checksum"* ]]
}

@test "verify reports file names of parts that are not plain file names: '../x', absolute, empty" {
	local url dir part
	url=$(copy_store file)
	dir=${url#file://}
	part="$dir/j/chk-$(printf %010d 2)/evwindow.json"
	[ "$(jq '.files | length' "$part")" -ge 3 ]
	jq '.files[0].name = "../x" | .files[1].name = "/etc/passwd" | .files[2].name = ""' "$part" > p
	mv p "$part"
	run -1 --separate-stderr ckpt --store "$url" --job $JOB verify 2
	[[ "$output" == *"stage 'evwindow': invalid file name '../x' in a part (want a plain file name)"* ]]
	[[ "$output" == *"stage 'evwindow': invalid file name '/etc/passwd' in a part"* ]]
	[[ "$output" == *"stage 'evwindow': invalid file name '' in a part"* ]]
	run -1 --separate-stderr ckpt --store "$url" --job $JOB verify 2 -J
	[ "$(jq '[.problems[] | select(.problem == "invalid")] | length' <<<"$output")" -eq 3 ]
}

# The dump of checkpoint id equals what evwindow says of the same prefix of the stream: the
# windows not fired yet (their end past the watermark) are the rows it writes at the end of
# that prefix, with the same versions (the records folded), the fired ones still within the
# lateness are the last rows it wrote for them, and the watermark is the one the part
# records. The records carry the generator's provenance (topic events, a partition per
# event_type): each partition's windows follow a line naming it.
check_dump() {
	local k=$1 id=$2 url wm
	url=$(url_of "$k")
	run -0 --separate-stderr ckpt --store "$url" --job $JOB dump "$id"
	printf '%s\n' "$output" > dump
	run -0 --separate-stderr ckpt --store "$url" --job $JOB dump "$id" --stage evwindow -J
	[ "$output" = "$(cat dump)" ]
	jq -e -s '.[1].__evpipe == "partition" and all(.[1:][] | select(.__evpipe); .topic == "events" and (.partition | type) == "number")' dump
	tail -n +2 dump | grep -v '"__evpipe"' > windows
	jq -e -s 'length > 0 and all(.[]; .window_start and .window_end and has("event_type"))' windows
	wm=$(head -1 dump | jq .ts)
	# shellcheck disable=SC2016
	jq -R -r --argjson wm "$wm" 'select((fromjson.window_end | strptime("%Y-%m-%d %H:%M:%S") | mktime) * 1000 - 1 > $wm)' windows > open
	# shellcheck disable=SC2016
	jq -R -r --argjson wm "$wm" 'select((fromjson.window_end | strptime("%Y-%m-%d %H:%M:%S") | mktime) * 1000 - 1 <= $wm)' windows > fired

	upto_barrier "$BATS_FILE_TMPDIR/consumed.$k" "$id" > prefix
	echo '{"__evpipe":"end"}' >> prefix
	# with a (scratch) store, as in the run that took the checkpoints: barriers go on in order
	# (without one they wait for the windows before them to be final, ADR 0014)
	# shellcheck disable=SC2086
	evwindow $WINDOW_OPTS --checkpoint-store "file://$PWD/scratch" --job x < prefix > rows 2> /dev/null
	after_barrier rows "$id" | grep -v '^{"__evpipe":"end"}$' | sort > at_end
	upto_barrier rows "$id" | grep -v '"__evpipe"' > before || true
	[ -s open ]
	sort -o open open
	assert_same_file open at_end
	# shellcheck disable=SC2016
	jq -c -S --argjson wm "$wm" --argjson l $LATENESS_MS -s '
		group_by([.window_start, .window_end, .event_type]) | map(max_by(.version))
		| map(select((.window_end | strptime("%Y-%m-%d %H:%M:%S") | mktime) * 1000 - 1 + $l > $wm))
		| sort_by([.window_start, .event_type]) | .[]' before > want_fired
	jq -c -S -s 'sort_by([.window_start, .event_type]) | .[]' fired > got_fired
	assert_same_file got_fired want_fired
	if [ "$k" = file ]; then
		[ "$wm" = "$(jq .watermark "$BATS_FILE_TMPDIR/store/j/chk-$(printf %010d "$id")/evwindow.json")" ]
	fi
}

@test "dump on file://: every checkpoint's windows and watermark, as evwindow has them" {
	cd "$BATS_TEST_TMPDIR" || return
	n=$(ckpt --store "$FILE_URL" --job $JOB ls -J | jq '.checkpoints | length')
	fired=0
	for id in $(seq 1 "$n"); do
		if [ "$(ckpt --store "$FILE_URL" --job $JOB dump "$id" | wc -l)" -gt 1 ]; then
			check_dump file "$id"
			fired=$((fired + $(wc -l < got_fired)))
		fi
	done
	# windows within their lateness were among them
	[ "$fired" -gt 0 ]
}

@test "dump on s3://: the middle and the latest checkpoint" {
	cd "$BATS_TEST_TMPDIR" || return
	check_dump s3 "$(middle_checkpoint "$S3_URL")"
	check_dump s3 "$(ckpt --store "$S3_URL" --job $JOB show latest -J | jq .id)"
}

@test "dump of a hand-computed case without servers: windows, aggregates, keys, watermark" {
	store=$BATS_TEST_TMPDIR/hand
	printf '%s\n' '{"ts":1000,"k":"a","v":1,"u":"x"}' '{"ts":2500,"k":"a","v":2.5,"u":"y"}' \
		'{"ts":4000,"k":"a","v":3,"u":"x"}' '{"ts":12000,"k":"b","v":null,"u":"z"}' \
		'{"ts":25000,"k":"b","v":7,"u":"z"}' \
		'{"__evpipe":"barrier","id":1,"ts":0}' '{"ts":31000,"k":"a","v":1,"u":"x"}' |
		evwindow --tumble 10s --key k --agg count,s=sum:v,uniq:u,last:u --out-of-orderness 10s \
			--checkpoint-store "file://$store" --job h > /dev/null
	run -0 --separate-stderr ckpt --store "file://$store" --job h dump 1
	[[ "$stderr" == *"checkpoint 1 is not complete"* ]]
	[ "${lines[0]}" = '{"__evpipe":"watermark","ts":14999}' ]
	[ "${lines[1]}" = '{"window_start":"1970-01-01 00:00:10","window_end":"1970-01-01 00:00:20","k":"b","count":1,"s":null,"uniq_u":1,"last_u":"z","version":1}' ]
	[ "${lines[2]}" = '{"window_start":"1970-01-01 00:00:20","window_end":"1970-01-01 00:00:30","k":"b","count":1,"s":7,"uniq_u":1,"last_u":"z","version":1}' ]
	[ "${#lines[@]}" -eq 3 ]
	# windows of Kafka partitions: each partition's after a line naming it
	printf '%s\n' '{"_src":{"topic":"t","partition":2,"offset":0},"ts":1000,"k":"a"}' \
		'{"_src":{"topic":"t","partition":0,"offset":0},"ts":1500,"k":"b"}' \
		'{"_src":{"topic":"t","partition":2,"offset":1},"ts":2000,"k":"a"}' \
		'{"__evpipe":"barrier","id":1,"ts":0}' |
		evwindow --tumble 10s --key k --checkpoint-store "file://$store" --job p > /dev/null
	run -0 --separate-stderr ckpt --store "file://$store" --job p dump 1
	[ "${lines[1]}" = '{"__evpipe":"partition","topic":"t","partition":2}' ]
	[ "${lines[2]}" = '{"window_start":"1970-01-01 00:00:00","window_end":"1970-01-01 00:00:10","k":"a","count":2,"version":2}' ]
	[ "${lines[3]}" = '{"__evpipe":"partition","topic":"t","partition":0}' ]
	[ "${lines[4]}" = '{"window_start":"1970-01-01 00:00:00","window_end":"1970-01-01 00:00:10","k":"b","count":1,"version":1}' ]
	[ "${#lines[@]}" -eq 5 ]
	# a stage without state has nothing to dump
	run -1 --separate-stderr ckpt --store "file://$store" --job h dump 1 --stage kin
	[[ "$stderr" == *"no part of stage 'kin'"* ]]
}

@test "dump of sub-second windows: their bounds exact to the millisecond, as evwindow writes them" {
	store=$BATS_TEST_TMPDIR/subsecond
	printf '%s\n' '{"ts":100,"k":"a"}' '{"ts":300,"k":"a"}' '{"ts":350,"k":"a"}' \
		'{"__evpipe":"barrier","id":1,"ts":0}' '{"ts":5000,"k":"a"}' |
		evwindow --tumble 250ms --key k --out-of-orderness 1s \
			--checkpoint-store "file://$store" --job ms > rows
	run -0 --separate-stderr ckpt --store "file://$store" --job ms dump 1
	[ "${lines[1]}" = '{"window_start":"1970-01-01 00:00:00","window_start_msec":0,"window_end":"1970-01-01 00:00:00","window_end_msec":250,"k":"a","count":1,"version":1}' ]
	[ "${lines[2]}" = '{"window_start":"1970-01-01 00:00:00","window_start_msec":250,"window_end":"1970-01-01 00:00:00","window_end_msec":500,"k":"a","count":2,"version":2}' ]
	[ "${#lines[@]}" -eq 3 ]
	# the same bounds and versions as the rows evwindow wrote for them
	[ "$(grep -v __evpipe rows | head -2)" = "$(printf '%s\n' "${lines[1]}" "${lines[2]}")" ]
}

check_restore() {
	local k=$1 url id
	url=$(url_of "$k")
	id=$(middle_checkpoint "$url")
	[ "$id" -gt 1 ]
	after_barrier "$BATS_FILE_TMPDIR/consumed.$k" "$id" > rest
	after_barrier "$BATS_FILE_TMPDIR/out.$k" "$id" > want
	[ -s want ]
	run -0 --separate-stderr ckpt --store "$url" --job $JOB restore "$id" --dir state
	[[ "$output" == "checkpoint $id, stage 'evwindow': "*" files, "*" bytes restored into state" ]]
	# barriers left out: without a store evwindow holds them back (ADR 0014), and with one
	# they would write to it; so are the committed lines that follow them (a stage refuses
	# one whose barrier it has not seen: ADR 0021)
	grep -v '"__evpipe":"\(barrier\|committed\)"' rest > rest.nb
	grep -v '"__evpipe":"\(barrier\|committed\)"' want > want2
	# shellcheck disable=SC2086
	evwindow $WINDOW_OPTS --state-dir state < rest.nb > got
	assert_same_file got want2
	# as evwindow --restore does it
	# shellcheck disable=SC2086
	evwindow $WINDOW_OPTS --checkpoint-store "$url" --job $JOB --restore "$id" < rest.nb > got2 2> /dev/null
	assert_same_file got2 want2

	# an empty directory is fine, a non-empty one is refused and left alone
	mkdir empty
	run -0 --separate-stderr ckpt --store "$url" --job $JOB restore latest --dir empty -J
	jq -e --arg d empty '.dir == $d and .stage == "evwindow" and .files > 0 and (.config | startswith("ts=ts size=10000"))' <<<"$output"
	[ -f empty/CURRENT ]
	mkdir full && echo keep > full/x
	run -1 --separate-stderr ckpt --store "$url" --job $JOB restore latest --dir full
	[[ "$stderr" == *"'full' is not empty"* ]]
	[ "$(ls full)" = x ]
}

@test "restore on file:// + evwindow --state-dir with the rest of the stream = the uninterrupted run" {
	cd "$BATS_TEST_TMPDIR" || return
	check_restore file
}

@test "restore on s3:// + evwindow --state-dir with the rest of the stream = the uninterrupted run" {
	cd "$BATS_TEST_TMPDIR" || return
	check_restore s3
}

check_prune() {
	local k=$1 url n last removed kept
	url=$(copy_store "$k")
	n=$(ckpt --store "$url" --job $JOB ls -J | jq '[.checkpoints[] | select(.state == "complete")] | length')
	last=$(ckpt --store "$url" --job $JOB ls -J | jq '.checkpoints | length')
	# An abandoned checkpoint (no manifest, older than the newest complete one).
	if [ "$k" = file ]; then
		rm "${url#file://}/j/chk-$(printf %010d 2)/_manifest.json"
	else
		s3 del "$url/j/chk-$(printf %010d 2)/_manifest.json" > /dev/null
	fi
	run -0 --separate-stderr ckpt --store "$url" --job $JOB ls
	[[ "${lines[2]}" == "2 "*" abandoned" ]]
	shared() {
		if [ "$k" = file ]; then
			find "${url#file://}/j/shared" -type f | sed "s|^${url#file://}/||" | sort
		else
			s3 ls -r "$url/j/shared/" | awk '{ print $4 }' | sed "s|^$url/||" | sort
		fi
	}
	shared > before
	run -0 --separate-stderr ckpt --store "$url" --job $JOB prune --keep 2 -J
	# the two newest complete ones stay, and one in progress after them
	removed=$(seq 1 $((n - 2)) | jq -s -c .)
	kept=$(seq $((n - 1)) "$last" | jq -s -c .)
	jq -e --argjson r "$removed" --argjson k "$kept" '.removed == $r and .kept == $k and .deleted_keys > 0' <<<"$output"
	run -0 --separate-stderr ckpt --store "$url" --job $JOB ls -J
	[ "$(jq -c '[.checkpoints[].id]' <<<"$output")" = "$kept" ]
	# what stays references only files that are there, and the rest of shared/ is gone
	for id in $((n - 1)) $n; do
		run -0 --separate-stderr ckpt --store "$url" --job $JOB verify "$id"
	done
	shared > after
	for id in $(seq $((n - 1)) "$last"); do
		ckpt --store "$url" --job $JOB show "$id" -J | jq -r '.files[] | select(.shared) | .key'
	done | sort -u > referenced
	assert_same_file after referenced
	[ "$(wc -l < after)" -lt "$(wc -l < before)" ]
	run -0 --separate-stderr ckpt --store "$url" --job $JOB prune --keep 2
	[ "${lines[0]}" = "removed 0 checkpoint(s):" ]
	[ "${lines[2]}" = "deleted 0 key(s)" ]
}

@test "prune on file:// keeps K, deletes the abandoned and every unreferenced shared file only" {
	check_prune file
}

@test "prune on s3:// keeps K, deletes the abandoned and every unreferenced shared file only" {
	check_prune s3
}

check_diff() {
	local k=$1 url a b
	url=$(url_of "$k")
	a=$(middle_checkpoint "$url")
	b=$(ckpt --store "$url" --job $JOB show latest -J | jq .id)
	ckpt --store "$url" --job $JOB show "$a" -J > a.json
	ckpt --store "$url" --job $JOB show "$b" -J > b.json
	run -0 --separate-stderr ckpt --store "$url" --job $JOB diff "$a" latest -J
	printf '%s\n' "$output" > diff.json
	jq -e --slurpfile a a.json --slurpfile b b.json '
		([.shared[], .removed[] | .key] | sort) == ([$a[0].files[].key] | sort)
		and ([.shared[], .added[] | .key] | sort) == ([$b[0].files[].key] | sort)
		and (.added | length) > 0 and (.removed | length) > 0
		and .bytes.delta == $b[0].bytes - $a[0].bytes
		and .stored_bytes.delta == $b[0].stored_bytes - $a[0].stored_bytes
		and .offsets == [{topic: $a[0].offsets[0].topic, partition: 0,
			from: $a[0].offsets[0].offset, to: $b[0].offsets[0].offset,
			advanced: ($b[0].offsets[0].offset - $a[0].offsets[0].offset)}]
		and .offsets[0].advanced > 0' diff.json
	run -0 --separate-stderr ckpt --store "$url" --job $JOB diff "$a" "$b"
	[ "${lines[0]}" = "checkpoint $a -> $b" ]
	[[ "${lines[1]}" == "files: $(jq '.added | length' diff.json) added"*"$(jq '.shared | length' diff.json) shared"* ]]
	[[ "$output" == *"$TOPIC "*" 0 "*" +$(jq '.offsets[0].advanced' diff.json)"* ]]
}

@test "diff on file:// and s3://: files added, removed and shared, offsets advanced, sizes" {
	cd "$BATS_TEST_TMPDIR" || return
	check_diff file
	check_diff s3
}

@test "usage errors exit 2, runtime errors 1; EVPIPE_CHECKPOINT_STORE names the store" {
	unset EVPIPE_CHECKPOINT_STORE
	run -2 --separate-stderr ckpt ls
	[[ "$stderr" == *"no store: give --store URL or set EVPIPE_CHECKPOINT_STORE"* ]]
	run -2 --separate-stderr ckpt --store "$FILE_URL"
	run -2 --separate-stderr ckpt --store "$FILE_URL" frob
	[[ "$stderr" == *"unknown command 'frob'"* ]]
	run -2 --separate-stderr ckpt --store "$FILE_URL" show
	run -2 --separate-stderr ckpt --store "$FILE_URL" show x
	run -2 --separate-stderr ckpt --store "$FILE_URL" show 0
	run -2 --separate-stderr ckpt --store "$FILE_URL" diff 1
	run -2 --separate-stderr ckpt --store "$FILE_URL" ls extra
	run -2 --separate-stderr ckpt --store "$FILE_URL" restore 1
	run -2 --separate-stderr ckpt --store "$FILE_URL" prune
	run -2 --separate-stderr ckpt --store "$FILE_URL" prune --keep 0
	run -2 --separate-stderr ckpt --store "$FILE_URL" ls --keep 3
	run -2 --separate-stderr ckpt --store "$FILE_URL" --job a/b ls
	run -2 --separate-stderr ckpt --store "http://x" ls
	run -1 --separate-stderr ckpt --store "$FILE_URL" --job $JOB show 9999
	[[ "$stderr" == *"no checkpoint 9999 of job 'j'"* ]]
	run -1 --separate-stderr ckpt --store "$FILE_URL" --job nosuch show latest
	[[ "$stderr" == *"no complete checkpoint of job 'nosuch'"* ]]
	export EVPIPE_CHECKPOINT_STORE=$FILE_URL
	run -0 --separate-stderr ckpt --job $JOB -J ls
	jq -e '.checkpoints | length > 0' <<<"$output"
}

@test "ls of a job without checkpoints, or of a store that does not exist, exits 1 and says so" {
	cd "$BATS_TEST_TMPDIR" || return
	run -1 --separate-stderr ckpt --store "$FILE_URL" --job nosuch ls
	[ -z "$output" ]
	[ "$stderr" = "ckpt: no checkpoints of job 'nosuch' in '$FILE_URL' (it has those of: $JOB)" ]
	run -1 --separate-stderr ckpt --store "$S3_URL" --job nosuch ls -J
	[ -z "$output" ]
	[ "$stderr" = "ckpt: no checkpoints of job 'nosuch' in '$S3_URL' (it has those of: $JOB)" ]
	run -1 --separate-stderr ckpt --store "file://$BATS_TEST_TMPDIR/nonexistent" ls
	[ -z "$output" ]
	[ "$stderr" = "ckpt: no checkpoints in 'file://$BATS_TEST_TMPDIR/nonexistent': the store is empty or does not exist" ]
	run -1 --separate-stderr ckpt --store "s3://$S3_BUCKET/nonexistent-$$-$RANDOM" ls -J
	[ -z "$output" ]
	[[ "$stderr" == *"the store is empty or does not exist" ]]
}
