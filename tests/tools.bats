#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# tools.bats: what every tool must do: --help, --version, exit 2 on a usage error.
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	TOOLS=$(sed -n 's/^TOOLS := //p' "$EVPIPE_ROOT/Makefile")
	[ -n "$TOOLS" ]
}

@test "every tool answers --help on stdout and exits 0" {
	for t in $TOOLS; do
		run -0 --separate-stderr "$t" --help
		[[ "$output" == *"usage: $t"* ]] || { echo "$t --help: $output"; false; }
		[ -z "$stderr" ]
	done
}

@test "every tool answers --version with the library versions" {
	for t in $TOOLS; do
		run -0 --separate-stderr "$t" --version
		[[ "${lines[0]}" == "$t (evpipe) "* ]]
		[[ "$output" == *librdkafka* ]]
	done
}

@test "every tool rejects an unknown option with exit 2 and a hint" {
	for t in $TOOLS; do
		run -2 --separate-stderr "$t" --no-such-option
		[ -z "$output" ]
		[[ "$stderr" == *"$t: unknown option or missing value: '--no-such-option'"* ]]
		[[ "$stderr" == *"try '$t --help'"* ]]
		run -2 --separate-stderr "$t" -y # a letter no tool takes (kin has kcat's -Z)
		[[ "$stderr" == *"'-y'"* ]]
	done
}

# The local address of the TCP socket listening on port $1, as /proc/net/tcp has it
# (0100007F: 127.0.0.1, 00000000: every interface).
listening_on() {
	awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, 9) == p { print substr($2, 1, 8) }' /proc/net/tcp
}

# Start evwindow with --metrics-addr $1 on an open pipe (fd 7); $port: the port it serves on.
serve_metrics() {
	rm -f in err
	mkfifo in
	evwindow --tumble 1m --metrics-addr "$1" -v < in 2> err 3>&- &
	exec 7> in
	wait_for 20 grep -q 'serving metrics at' err
	port=$(sed -n 's|.*serving metrics at http://[0-9.]*:\([0-9]*\)/metrics.*|\1|p' err)
}

@test "--metrics-addr PORT serves on 127.0.0.1 only; HOST:PORT on the host given" {
	cd "$BATS_TEST_TMPDIR" || return
	for t in $TOOLS; do
		run -0 "$t" --help
		[[ "$output" == *"HOST 127.0.0.1 unless given (0.0.0.0: all)"* ]] || { echo "$t"; false; }
	done
	serve_metrics 0
	grep -q "serving metrics at http://127.0.0.1:$port/metrics" err
	[ "$(listening_on "$port")" = 0100007F ]
	curl -sf "http://127.0.0.1:$port/healthz"
	exec 7>&-
	wait
	serve_metrics 0.0.0.0:0
	grep -q "serving metrics at http://0.0.0.0:$port/metrics" err
	[ "$(listening_on "$port")" = 00000000 ]
	exec 7>&-
	wait
}
