#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# evtop.bats: the live table of a running job's stages, read from their /metrics.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR" || return
	seq 3000 | awk '{ printf "{\"event_id\":\"e%d\",\"event_type\":\"click\",\"user_id\":\"u\",\"ts\":17324%08d}\n", $1, $1 }' > events
}

# Start evwindow serving metrics on an input held open (fd 7); $port: its port.
start_stage() {
	mkfifo hold
	{ cat events; cat hold; } | evwindow --tumble 1s --metrics-addr 127.0.0.1:0 > /dev/null 2> err 3>&- &
	exec 7<> hold
	wait_for 20 grep -q 'serving metrics' err
	port=$(sed -n 's|.*serving metrics at http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' err)
	wait_for 20 bash -c "curl -sf http://127.0.0.1:$port/metrics | grep -q '^evpipe_records_in_total{.*} 3000$'"
}

@test "a table per interval: each stage's rates, watermark lag, blocked time and totals; a stage that does not answer is down" {
	start_stage
	run -0 --separate-stderr evtop --interval 200ms -n 2 "$port" 127.0.0.1:1 "http://127.0.0.1:$port/metrics"
	exec 7>&-
	wait
	[ -z "$stderr" ]
	# two tables of a header and three rows, a blank line between them (not in $lines)
	[ "$(grep -c . <<<"$output")" -eq 8 ] && [ "$(grep -c '^$' <<<"$output")" -eq 1 ]
	[[ ${lines[0]} == "STAGE "*"METRICS "*"IN/s "*"OUT/s "*"DEAD/s "*"LATE/s "*"WM LAG "*"BLOCKED "*"IN "*"OUT" ]]
	[ "${lines[4]}" = "${lines[0]}" ]
	# evwindow, idle: 0 a second, its lag in days (2024's events), its totals
	read -r -a row <<<"${lines[5]}"
	[ "${row[*]}" = "evwindow $port 0 0 - 0 ${row[6]} 0% 3.00k 3" ]
	[[ ${row[6]} =~ ^[0-9]+d$ ]]
	read -r -a row <<<"${lines[7]}"
	[ "${row[0]} ${row[1]}" = "evwindow http://127.0.0.1:$port/metrics" ]
	[[ ${lines[6]} == "?"*"127.0.0.1:1"*"- "*"down: "* ]]
}

@test "addresses are checked: none, or one that is not [HOST:]PORT or a URL, is a usage error" {
	run -2 --separate-stderr evtop
	[[ $stderr == *"evtop: no ADDR: give the --metrics-addr of each stage"* ]]
	run -2 --separate-stderr evtop localhost:http
	[[ $stderr == *"'localhost:http' is not [HOST:]PORT or a URL"* ]]
	run -2 --separate-stderr evtop --interval 0 9100
	[[ $stderr == *"invalid"* ]]
}
