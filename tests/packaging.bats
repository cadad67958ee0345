#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# packaging.bats: what is installed with the tools: man pages in step with --help, shell
# completion offering every option, make install/uninstall, the Debian package (installed into
# a temporary root and run from there), one version number, the image built from the package.
# The completion is run in child shells whose scripts are single-quoted on purpose.
# shellcheck disable=SC2016
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	TOOLS=$(sed -n 's/^TOOLS := //p' "$EVPIPE_ROOT/Makefile")
	[ -n "$TOOLS" ]
	VERSION=$(cat "$EVPIPE_ROOT/VERSION")
	JOB=evpipe-events-to-clickhouse
	cd "$BATS_TEST_TMPDIR" || return
}

# man_missing TOOL PAGE: each option TOOL --help lists that PAGE has no `.It Fl ...` entry for,
# as "PAGE: no entry for OPTION (listed by 'NAME --help')".
man_missing() {
	local opt name
	name=$(basename "$1")
	while read -r opt; do
		grep -Eq "^\.It (.* )?Fl ${opt#-}( |$)" "$2" ||
			echo "${2#"$EVPIPE_ROOT"/}: no entry for $opt (listed by '$name --help'): add '.It Fl ${opt#-} ...'"
	done < <("$EVPIPE_ROOT/scripts/help-options" "$1")
}

# man_extra TOOL PAGE: each option of PAGE's `.It Fl` entries that TOOL --help does not list.
man_extra() {
	local opt name opts
	name=$(basename "$1")
	opts=" $("$EVPIPE_ROOT/scripts/help-options" "$1" | tr '\n' ' ') "
	while read -r opt; do
		[[ $opts == *" $opt "* ]] || echo "${2#"$EVPIPE_ROOT"/}: documents $opt, which '$name --help' does not list"
	done < <(sed -n 's/^\.It \(.* \)\{0,1\}Fl /&/p' "$2" | grep -o 'Fl [^ ]*' | sed 's/^Fl /-/')
}

@test "man: every option of every tool's --help has an entry in its man page, and no other" {
	local t problems=()
	for t in $TOOLS; do
		[ -f "$EVPIPE_ROOT/man/$t.1" ] || problems+=("man/$t.1: missing")
		mapfile -t -O "${#problems[@]}" problems < <(man_missing "$(command -v "$t")" "$EVPIPE_ROOT/man/$t.1")
		mapfile -t -O "${#problems[@]}" problems < <(man_extra "$(command -v "$t")" "$EVPIPE_ROOT/man/$t.1")
	done
	[ "${#problems[@]}" -eq 0 ] || {
		printf '%s\n' "${problems[@]}" >&2
		return 1
	}
	# and the check finds an option a usage text gains, and one a page keeps after its removal
	printf '#!/bin/sh\nprintf "  -q, --quiet  q\\n      --new-thing N  n\\n"\n' >fake
	chmod +x fake
	printf '.It Fl q , Fl -quiet\n.It Fl -old-thing Ar N\n' >fake.1
	run -0 man_missing ./fake fake.1
	[ "$output" = "fake.1: no entry for --new-thing (listed by 'fake --help'): add '.It Fl -new-thing ...'" ]
	run -0 man_extra ./fake fake.1
	[ "$output" = "fake.1: documents --old-thing, which 'fake --help' does not list" ]
}

@test "man: the job's page documents every setting of its --help" {
	local v missing=()
	while read -r v; do
		grep -q "^\.It Ev $v\$" "$EVPIPE_ROOT/man/$JOB.1" || missing+=("$v")
	done < <("$EVPIPE_ROOT/pipelines/events-to-clickhouse.sh" --help | sed -n 's/^  \([A-Z][A-Z0-9_]*\).*/\1/p')
	[ "${#missing[@]}" -eq 0 ] || {
		echo "man/$JOB.1: no '.It Ev' entry for ${missing[*]} (listed by 'events-to-clickhouse.sh --help')" >&2
		return 1
	}
}

@test "man: every page passes mandoc's checks and renders with the sections a page needs" {
	local page sections s
	run -0 mandoc -Tlint -Wwarning "$EVPIPE_ROOT"/man/*
	for page in "$EVPIPE_ROOT"/man/*.[17]; do
		run -0 --separate-stderr man -l -Tutf8 "$page"
		[ -z "$stderr" ] || { echo "$page: $stderr"; false; }
		sections="NAME DESCRIPTION EXAMPLES SEE_ALSO"
		[[ $page == *.7 ]] || sections+=" SYNOPSIS EXIT_STATUS ENVIRONMENT"
		for s in $sections; do
			grep -q "^${s//_/ }\$" <<<"$(col -b <<<"$output")" || { echo "$page: no ${s//_/ }"; false; }
		done
	done
	[ -f "$EVPIPE_ROOT/man/evpipe.7" ]
	[ -f "$EVPIPE_ROOT/man/$JOB.1" ]
}

# Generate the completion of the tools under test into completion/.
gen_completion() {
	local t tools=()
	for t in $TOOLS; do tools+=("$(command -v "$t")"); done
	"$EVPIPE_ROOT/scripts/gen-completion" completion "${tools[@]}"
}

# complete_options NAME: what the bash completion of NAME offers for '-', one per line, sorted.
complete_options() {
	bash -c '. "$1"; COMP_WORDS=("$2" -); COMP_CWORD=1; "_evpipe_$2"; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "completion/bash/$1" "$1" | sort
}

@test "completion: bash loads every tool's completion and offers every option of its --help" {
	local t
	run -0 gen_completion
	for t in $TOOLS; do
		run -0 bash -c '. "$1" && complete -p "$2"' _ "completion/bash/$t" "$t"
		[ "$output" = "complete -o default -F _evpipe_$t $t" ]
		run -0 complete_options "$t"
		[ "$output" = "$("$EVPIPE_ROOT/scripts/help-options" "$t" | sort)" ] || {
			echo "$t: completion offers '$output'"
			false
		}
		[ "${#lines[@]}" -ge 8 ]
	done
	# a prefix narrows them; commands complete as first word, files after them
	run -0 bash -c '. completion/bash/kin; COMP_WORDS=(kin --key); COMP_CWORD=1; _evpipe_kin; echo "${COMPREPLY[*]}"'
	[ "$output" = "--key-delimiter --key --key-field" ]
	run -0 bash -c '. completion/bash/ckpt; COMP_WORDS=(ckpt --job x ""); COMP_CWORD=3; _evpipe_ckpt; echo "${COMPREPLY[*]}"'
	[ "$output" = "ls show verify dump restore prune diff" ]
	run -0 bash -c '. completion/bash/ckpt; COMP_WORDS=(ckpt show ""); COMP_CWORD=2; _evpipe_ckpt; echo "${#COMPREPLY[@]}"'
	[ "$output" = 0 ]
	run -0 bash -c '. completion/bash/dlqsink; COMP_WORDS=(dlqsink r); COMP_CWORD=1; _evpipe_dlqsink; echo "${COMPREPLY[*]}"'
	[ "$output" = replay ]
}

@test "completion: zsh's offers the same options and commands" {
	local t
	run -0 gen_completion
	# compadd and _files stand in for zsh's completion system: what the function would offer
	local stub='compadd() { [[ $1 == -a ]] && print -rl -- ${(P)2}; }; _files() { print -r -- FILES; }'
	for t in $TOOLS; do
		run -0 zsh -n "completion/zsh/_$t"
		[ "$(head -n 1 "completion/zsh/_$t")" = "#compdef $t" ]
		run -0 zsh -fc "$stub; words=($t -); CURRENT=2; PREFIX=-; . completion/zsh/_$t"
		[ "$(sort <<<"$output")" = "$("$EVPIPE_ROOT/scripts/help-options" "$t" | sort)" ]
	done
	run -0 zsh -fc "$stub; words=(ckpt ''); CURRENT=2; PREFIX=; . completion/zsh/_ckpt"
	[ "$output" = "$(printf '%s\n' ls show verify dump restore prune diff FILES)" ]
	run -0 zsh -fc "$stub; words=(ckpt show ''); CURRENT=3; PREFIX=; . completion/zsh/_ckpt"
	[ "$output" = FILES ]
}

# The build directory of the tools under test ($EVPIPE_BIN), relative to the tree, and its SAN.
tools_build() {
	local bin
	bin=$(realpath "$EVPIPE_BIN")
	build=${bin#"$(realpath "$EVPIPE_ROOT")"/}
	build=${build%/bin}
	[ "$build" != "$bin" ] || {
		echo "EVPIPE_BIN '$EVPIPE_BIN' is not a build of this tree" >&2
		return 1
	}
	san=0
	[ "$build" != build/asan ] || san=1
}

@test "install: make install with PREFIX and DESTDIR puts every file in its place; uninstall removes them" {
	local build san
	tools_build
	run -0 make -s -C "$EVPIPE_ROOT" --no-print-directory install SAN="$san" BUILD="$build" \
		PREFIX=/opt/ev DESTDIR="$PWD/dest"
	local p=dest/opt/ev t
	for t in $TOOLS $JOB; do [ -x "$p/bin/$t" ]; done
	for t in $TOOLS; do
		[ -f "$p/share/man/man1/$t.1" ]
		[ -f "$p/share/bash-completion/completions/$t" ]
		[ -f "$p/share/zsh/vendor-completions/_$t" ]
	done
	[ -f "$p/share/man/man1/$JOB.1" ]
	[ -f "$p/share/man/man7/evpipe.7" ]
	cmp "$p/share/evpipe/contracts/event.schema.json" "$EVPIPE_ROOT/contracts/event.schema.json"
	cmp "$p/share/evpipe/pipelines/sql/event_aggregates.sql" "$EVPIPE_ROOT/pipelines/sql/event_aggregates.sql"
	[ -f "$p/share/evpipe/pipelines/env.example" ]
	[ -f "$p/share/doc/evpipe/README.md" ]
	[ -f "$p/share/doc/evpipe/LICENSE" ]
	[ -f "$p/share/doc/evpipe/adr/0002-stream-format.md" ]
	[ -f "$p/share/doc/evpipe/docs/metrics.md" ]
	# nothing outside DESTDIR/PREFIX
	[ "$(ls dest)" = opt ]
	[ "$(ls dest/opt)" = ev ]
	run -0 make -s -C "$EVPIPE_ROOT" --no-print-directory uninstall PREFIX=/opt/ev DESTDIR="$PWD/dest"
	run -0 find dest -type f
	[ -z "$output" ] || { echo "left after uninstall: $output"; false; }
}

@test "deb: make deb builds a package that, unpacked into a temporary root, runs its tools, the demo and the job" {
	local build san root=$PWD/root t
	tools_build
	run -0 --separate-stderr make -s -C "$EVPIPE_ROOT" --no-print-directory deb SAN="$san" BUILD="$build" \
		DEB="$PWD/evpipe.deb" DEB_ROOT="$PWD/stage"
	[ "$(dpkg-deb -f evpipe.deb Package)" = evpipe ]
	[ "$(dpkg-deb -f evpipe.deb Version)" = "$VERSION" ]
	[ "$(dpkg-deb -f evpipe.deb Architecture)" = "$(dpkg --print-architecture)" ]
	# Depends: the package of every library the tools link, found by dpkg-shlibdeps
	local depends
	depends=$(dpkg-deb -f evpipe.deb Depends)
	for t in libc6 librdkafka1 libcurl4 libjansson4 libsimdjson14 librocksdb7.8 libmicrohttpd12 \
		libpcre2-8-0 libexpat1 zlib1g libssl3 libstdc++6; do
		[[ ", $depends," == *", $t "* || ", $depends," == *", $t,"* ]] || { echo "Depends lacks $t: $depends"; false; }
	done
	run -0 dpkg-deb -x evpipe.deb "$root"
	# the files the package owns, all under /usr
	run -0 dpkg-deb -c evpipe.deb
	run -1 grep -v '^\./usr/\|^\./$' <<<"$(awk '{ print $6 }' <<<"$output")"
	[ -f "$root/usr/share/doc/evpipe/copyright" ]
	[ -f "$root/usr/share/man/man1/kin.1.gz" ]
	[ -f "$root/usr/share/man/man7/evpipe.7.gz" ]
	[ -f "$root/usr/share/bash-completion/completions/kin" ]
	run -0 --separate-stderr man -l -Tutf8 "$root/usr/share/man/man1/kin.1.gz"
	[[ $(col -b <<<"$output") == *"consume Kafka topics to NDJSON lines"* ]]

	for t in $TOOLS; do
		run -0 --separate-stderr "$root/usr/bin/$t" --help
		[[ $output == *"usage: $t"* ]]
		run -0 --separate-stderr "$root/usr/bin/$t" --version
		[[ ${lines[0]} == "$t (evpipe) $VERSION" || ${lines[0]} == "$t (evpipe) $VERSION ("* ]]
	done
	run -0 "$root/usr/bin/$JOB" --help
	[[ $output == *EVPIPE_SHARE_DIR* ]]

	# the file-only demo, from the installed tools and files
	run -0 --separate-stderr env EVPIPE_BIN="$root/usr/bin" EVPIPE_DEMO_KAFKA=0 EVPIPE_DEMO_EVENTS=2000 \
		EVPIPE_DEMO_DIR="$PWD/demo" "$root/usr/share/evpipe/pipelines/demo.sh"
	[[ $output == *"accounting: 2000 events in = "*" valid + "*" dead letters;"* ]]
	[ "$(jq -s length demo/rows.ndjson)" -gt 0 ]

	# the job finds its contract, its SQL and the tools next to itself, with no evpipe on PATH:
	# chsink creates the installed table schema (and fails on a closed port, which stops the job)
	run -1 --separate-stderr env -i PATH=/usr/bin:/bin HOME="$PWD" KAFKA_BROKERS=127.0.0.1:1 \
		CLICKHOUSE_URL=http://127.0.0.1:1 EVPIPE_CHECKPOINT_STORE=none "$root/usr/bin/$JOB"
	[[ $stderr == *"--create-table '$root/usr/share/evpipe/pipelines/sql/event_aggregates.sql'"* ]]
	[[ $stderr != *"not found"* ]]
}

@test "version: one number, VERSION, in --version, the package, the image and the compose stack" {
	[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]
	local t
	for t in $TOOLS; do
		run -0 "$t" --version
		[[ ${lines[0]} == "$t (evpipe) $VERSION" || ${lines[0]} == "$t (evpipe) $VERSION (git "*")" ]] ||
			{ echo "$t: ${lines[0]}"; false; }
	done
	# the image gets it from the tree (no version of its own), compose names its image with it
	run -1 grep -n '0\.[0-9]*\.[0-9]' "$EVPIPE_ROOT/Dockerfile"
	run -0 grep -c "image: evpipe:$VERSION\$" "$EVPIPE_ROOT/compose/docker-compose.yml"
	run -1 grep -n 'image: evpipe:' <(grep -v "image: evpipe:$VERSION\$" "$EVPIPE_ROOT/compose/docker-compose.yml")
	grep -q "Apache License" "$EVPIPE_ROOT/LICENSE"
	grep -q "Version 2.0" "$EVPIPE_ROOT/LICENSE"
}

@test "licence: every source file carries the SPDX identifier of LICENSE; a file without it is named" {
	run -0 --separate-stderr "$EVPIPE_ROOT/scripts/spdx" "$EVPIPE_ROOT"
	# a file without it, in a tree of its own
	git init -q tree
	printf '/* a.c */\n' > tree/a.c
	printf '#!/bin/sh\n# SPDX-License-Identifier: Apache-2.0\n' > tree/b
	printf 'not a source\n' > tree/notes.txt
	git -C tree add a.c b notes.txt
	run -1 --separate-stderr "$EVPIPE_ROOT/scripts/spdx" tree
	[ "$stderr" = "spdx: a.c: no 'SPDX-License-Identifier: Apache-2.0' line near its top (scripts/spdx --fix adds it)" ]
	run -0 --separate-stderr "$EVPIPE_ROOT/scripts/spdx" --fix tree
	[ "$(head -n 1 tree/a.c)" = "/* SPDX-License-Identifier: Apache-2.0 */" ]
	run -0 "$EVPIPE_ROOT/scripts/spdx" tree
}

@test "image: the runtime stage installs the package (its Depends are the image's libraries) and no compiler" {
	local df=$EVPIPE_ROOT/Dockerfile stages runtime
	stages=$(grep -c '^FROM ' "$df")
	[ "$stages" -eq 2 ]
	# the build stage makes the package
	sed -n '/^FROM .* AS build$/,/^FROM /p' "$df" | grep -q 'make deb'
	runtime=$(sed -n '/^FROM .* AS build$/,$p' "$df" | sed -n '2,$p' | sed -n '/^FROM /,$p')
	grep -q '^COPY --from=build ' <<<"$runtime"
	# apt-get install in the runtime stage: the package file and nothing else (apt brings
	# exactly its Depends); no scripts/deps, make or compiler there
	run -0 grep -o 'apt-get install [^&]*' <<<"$runtime"
	[ "${#lines[@]}" -eq 1 ]
	[ "$(tr ' ' '\n' <<<"${lines[0]}" | grep -v '^-\|^$\|^\\$\|^apt-get$\|^install$')" = /tmp/evpipe.deb ]
	run -1 grep -E 'scripts/deps|make |gcc|build-essential|-dev\b' <<<"$runtime"
	grep -q '^CMD \["evpipe-events-to-clickhouse"\]' <<<"$runtime"
	# the compose stack runs the installed job
	grep -q "exec $JOB\$" "$EVPIPE_ROOT/compose/docker-compose.yml"
	if command -v hadolint >/dev/null; then
		run -0 hadolint "$df"
	fi
}
