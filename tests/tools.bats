#!/usr/bin/env bats
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
		run -2 --separate-stderr "$t" -Z
		[[ "$stderr" == *"'-Z'"* ]]
	done
}
