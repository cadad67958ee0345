# SPDX-License-Identifier: Apache-2.0
# evpipe: stream processing from Kafka to ClickHouse as small Unix tools.
#
#   make            build bin/ (optimised)
#   make check      install deps, build with ASan/UBSan, run unit and integration tests
#   make demo       run the default job on generated events
#   make lint       clang-format check, cppcheck, actionlint
#   make bench      benchmarks (bench/)
#   make install    install under $(PREFIX) (DESTDIR too); make uninstall removes it
#   make deb        build/release/evpipe_VERSION_ARCH.deb
#   make compose-check  check compose/, the Prometheus rules and the dashboard (offline)
#   make contract-check SUBJECT=S [CONTRACT=file] [REGISTER=1] [EVVALIDATE=path]
#                   the compatibility gate of a contract change against the schema registry

# One version number, in VERSION: --version, the Debian package and the image. A build from a
# git checkout adds the commit as build information: `kin (evpipe) 0.1.0 (git e6c98ef)`.
VERSION := $(shell cat VERSION)
GIT_REV := $(shell git rev-parse --short=7 HEAD 2>/dev/null)
EVPIPE_VERSION ?= $(VERSION)$(if $(GIT_REV), (git $(GIT_REV)))
PREFIX ?= /usr/local

# SAN=1 builds into build/asan with AddressSanitizer and UBSan.
ifeq ($(SAN),1)
BUILD ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
BUILD ?= build/release
SANFLAGS :=
OPT := -O2
endif

PKGS := rdkafka libcurl jansson rocksdb libmicrohttpd libpcre2-8 zlib libcrypto expat simdjson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC ?= cc
CFLAGS ?= $(OPT) -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -MMD -MP $(SANFLAGS) -Ilib \
	-DEVPIPE_VERSION='"$(EVPIPE_VERSION)"' $(PKG_CFLAGS)
# C++ only where a library needs it: lib/fastjson.cc wraps simdjson behind a C interface.
CXX ?= c++
CXXFLAGS ?= $(OPT) -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -Wshadow -MMD -MP $(SANFLAGS) -Ilib $(PKG_CFLAGS)
LDFLAGS += $(SANFLAGS)
LDLIBS += $(PKG_LIBS) -lstdc++ -lpthread -lm

TOOLS := kin evvalidate evwindow dlqsink chsink evgen ckpt evtop
LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(patsubst %.cc,$(BUILD)/%.o,$(wildcard lib/*.cc))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

BINDIR := $(BUILD)/bin
TOOL_BIN := $(TOOLS:%=$(BINDIR)/%)

ifneq ($(V),1)
Q := @
ifeq ($(SILENT),1)
quiet = @
else
quiet = @printf '  %-6s %s\n' $(1) $(2);
endif
endif

.SECONDARY:

.PHONY: bin all check check-unit check-integration demo lint format bench install clean deps services-up services-down fuzz fuzz-deps compose-check contract-check

all: $(TOOL_BIN) bin

# bin/ always points at the last build, so scripts and tests use one path.
bin: $(TOOL_BIN)
	$(Q)ln -sfn $(BINDIR) bin

$(BUILD)/%.o: %.c
	$(call quiet,CC,$<)mkdir -p $(@D) && $(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cc
	$(call quiet,CXX,$<)mkdir -p $(@D) && $(CXX) $(CXXFLAGS) -c -o $@ $<

$(BUILD)/libevpipe.a: $(LIB_OBJ)
	$(call quiet,AR,$@)rm -f $@ && ar rcs $@ $^

$(BINDIR)/%: $(BUILD)/tools/%.o $(BUILD)/libevpipe.a
	$(call quiet,LD,$@)mkdir -p $(@D) && $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# kin is split by concern: tools/kin.c (options, set-up, main) and tools/kin_*.c.
KIN_OBJ := $(patsubst %.c,$(BUILD)/%.o,tools/kin.c $(wildcard tools/kin_*.c))
$(BINDIR)/kin: $(KIN_OBJ) $(BUILD)/libevpipe.a
	$(call quiet,LD,$@)mkdir -p $(@D) && $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libevpipe.a
	$(call quiet,LD,$@)mkdir -p $(@D) && $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	$(Q)scripts/deps

check: deps
	$(Q)$(MAKE) --no-print-directory SAN=1 all unit-bins
	$(Q)scripts/check

unit-bins: $(UNIT_BIN)

check-unit: unit-bins
	$(Q)tests/run-unit $(UNIT_BIN)

services-up:
	$(Q)tests/services/up

services-down:
	$(Q)tests/services/down

# Through Kafka and ClickHouse when the local servers run (or EVPIPE_DEMO_KAFKA=1), else on files.
demo:
	$(Q)scripts/deps $(if $(filter 1,$(EVPIPE_DEMO_KAFKA)),all,build)
	@printf 'demo: building the release binaries (build/release; bin/ points at them)\n' >&2
	$(Q)$(MAKE) --no-print-directory SILENT=1 all
	$(Q)pipelines/demo.sh

# The gate a team runs before a contract change merges (ADR 0015): exit 0 compatible (and
# registered with REGISTER=1), 3 incompatible, 1 registry failure. $SCHEMA_REGISTRY_URL names
# the registry; EVVALIDATE an evvalidate already built (the tests': never rebuilt with other flags).
SUBJECT ?= events-value
CONTRACT ?= contracts/event.schema.json
EVVALIDATE ?= $(BUILD)/bin/evvalidate
contract-check: $(EVVALIDATE)
	$(Q)$(EVVALIDATE) --check-compat registry:$(SUBJECT) $(CONTRACT) $(if $(filter 1,$(REGISTER)),--register)

lint:
	$(Q)scripts/lint

format:
	$(Q)clang-format -i lib/*.[ch] lib/*.cc tools/*.[ch] tests/unit/*.[ch]

# bench/run builds the tools it measures itself (optimised, into build/bench; bin/ is left alone),
# starts the servers and writes bench/results/latest.{md,json}; BENCH_SCALE=full for 10M events.
bench:
	$(Q)bench/run

# The version the objects were built with, rewritten only when it changes, so that --version
# (lib/tool.c) and the User-Agent (lib/clickhouse.c, lib/s3.c) are never stale.
# (Written when the Makefile is read: every target is .SECONDARY, so a rule would not run.)
VERSION_STAMP := $(BUILD)/version.txt
$(shell mkdir -p $(BUILD) && { echo '$(EVPIPE_VERSION)' | cmp -s - $(VERSION_STAMP) || \
	echo '$(EVPIPE_VERSION)' >$(VERSION_STAMP); })
$(addprefix $(BUILD)/lib/,tool.o clickhouse.o s3.o): $(VERSION_STAMP)

# make install / uninstall: the tools of $(BUILD) (release unless SAN=1; bin/ is not
# re-pointed), the default job as evpipe-events-to-clickhouse, and in FHS places under
# $(DESTDIR)$(PREFIX): the contract, the SQL, env.example and the demo in share/evpipe (the
# job finds them from its own directory, bin/../share/evpipe), man pages, bash and zsh
# completion (generated from each tool's --help: scripts/gen-completion), and the docs.
.PHONY: uninstall completion deb
DATADIR = $(PREFIX)/share/evpipe
MANDIR = $(PREFIX)/share/man
DOCDIR = $(PREFIX)/share/doc/evpipe
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR = $(PREFIX)/share/zsh/vendor-completions
JOB_NAME := evpipe-events-to-clickhouse
COMPLETION := $(BUILD)/completion

completion: $(COMPLETION)/.done

$(COMPLETION)/.done: $(TOOL_BIN) scripts/gen-completion scripts/help-options
	$(call quiet,GEN,$(COMPLETION))rm -rf $(COMPLETION) && scripts/gen-completion $(COMPLETION) $(TOOL_BIN) && touch $@

install: $(TOOL_BIN) completion
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/contracts $(DESTDIR)$(DATADIR)/pipelines/sql \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
		$(DESTDIR)$(DOCDIR)/adr $(DESTDIR)$(DOCDIR)/docs
	install -m 0755 $(TOOL_BIN) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 pipelines/events-to-clickhouse.sh $(DESTDIR)$(PREFIX)/bin/$(JOB_NAME)
	install -m 0644 contracts/*.json $(DESTDIR)$(DATADIR)/contracts/
	install -m 0644 pipelines/sql/*.sql $(DESTDIR)$(DATADIR)/pipelines/sql/
	install -m 0644 pipelines/env.example $(DESTDIR)$(DATADIR)/pipelines/
	install -m 0755 pipelines/demo.sh $(DESTDIR)$(DATADIR)/pipelines/
	install -m 0644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/*.7 $(DESTDIR)$(MANDIR)/man7/
	install -m 0644 $(COMPLETION)/bash/* $(DESTDIR)$(BASHCOMPDIR)/
	install -m 0644 $(COMPLETION)/zsh/* $(DESTDIR)$(ZSHCOMPDIR)/
	install -m 0644 README.md LICENSE $(DESTDIR)$(DOCDIR)/
	install -m 0644 adr/*.md $(DESTDIR)$(DOCDIR)/adr/
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/

# What install wrote (share/evpipe and share/doc/evpipe are evpipe's own: removed whole).
uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(TOOLS) $(JOB_NAME))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/,$(patsubst man/%.1,man1/%.1,$(wildcard man/*.1)) \
		$(patsubst man/%.7,man7/%.7,$(wildcard man/*.7)))
	rm -f $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(TOOLS)) $(addprefix $(DESTDIR)$(ZSHCOMPDIR)/_,$(TOOLS))
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

# make deb: $(BUILD)/evpipe_VERSION_ARCH.deb (the optimised build unless SAN=1, as install),
# from `make install PREFIX=/usr` into a staging root; scripts/mkdeb derives Depends with
# dpkg-shlibdeps. DEB and DEB_ROOT choose other places (the tests package the tools under test).
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null)
DEB ?= $(BUILD)/evpipe_$(VERSION)_$(DEB_ARCH).deb
DEB_ROOT ?= $(BUILD)/deb-root
deb: $(TOOL_BIN) completion
	$(Q)rm -rf $(DEB_ROOT)
	$(Q)$(MAKE) --no-print-directory install PREFIX=/usr DESTDIR=$(abspath $(DEB_ROOT)) >/dev/null
	$(Q)scripts/mkdeb $(DEB_ROOT) $(VERSION) $(DEB)

# The compose stack, the Prometheus configuration and rules, and the dashboard, checked offline
# (no Docker engine): what tests/observability.bats also runs, without the live part.
compose-check:
	$(Q)docker-compose -f compose/docker-compose.yml config -q
	$(Q)promtool check config compose/prometheus/prometheus.yml
	$(Q)promtool check rules compose/prometheus/alerts.yml
	$(Q)promtool test rules compose/prometheus/alerts_test.yml
	$(Q)python3 tests/helpers/obs.py lint grafana/dashboards/evpipe-overview.json docs/metrics.md

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# make fuzz: libFuzzer harnesses of every parser of untrusted bytes (tests/fuzz/README.md).
# Built with clang (apt: clang, libclang-rt-14-dev); the library is compiled into each harness.
# Each runs for FUZZ_SECONDS; new inputs go to build/fuzz/corpus, crashes to tests/fuzz/crashes/.
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -MMD -MP -Ilib $(FUZZ_SAN) \
	-DEVPIPE_VERSION='"$(EVPIPE_VERSION)"' \
	-DEVPIPE_CONTRACT_DEFAULT='"$(CURDIR)/contracts/event.schema.json"' $(PKG_CFLAGS)
# vptr is the one UBSan check whose runtime only a C++ link brings; the harnesses link as C.
FUZZ_CXXFLAGS = -std=c++17 -O1 -g -Wall -Wextra -Werror -MMD -MP -Ilib $(FUZZ_SAN) -fno-sanitize=vptr \
	$(PKG_CFLAGS)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o) $(patsubst %.cc,$(FUZZ_DIR)/%.o,$(wildcard lib/*.cc))
# Each harness tests/fuzz/fuzz_NAME.c runs over build/fuzz/corpus/NAME and tests/fuzz/corpus/NAME.
FUZZ_NAMES := validate schema control ckpt record chrow envelope
FUZZ_BIN := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_RUN = -max_len=4096 -timeout=10 -rss_limit_mb=2048 -max_total_time=$(FUZZ_SECONDS) \
	-dict=tests/fuzz/json.dict -artifact_prefix=tests/fuzz/crashes/ -print_final_stats=1

$(FUZZ_DIR)/lib/%.o: lib/%.c
	$(call quiet,CC,$<)mkdir -p $(@D) && $(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/lib/%.o: lib/%.cc
	$(call quiet,CXX,$<)mkdir -p $(@D) && $(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	$(call quiet,LD,$@)mkdir -p $(@D) && $(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(PKG_LIBS) -lstdc++ -lpthread -lm

fuzz-deps:
	$(Q)scripts/deps fuzz

fuzz: fuzz-deps $(FUZZ_BIN)
	$(Q)mkdir -p tests/fuzz/crashes
	$(Q)set -e; for n in $(FUZZ_NAMES); do mkdir -p $(FUZZ_DIR)/corpus/$$n; \
		$(FUZZ_DIR)/fuzz_$$n $(FUZZ_RUN) $(FUZZ_DIR)/corpus/$$n tests/fuzz/corpus/$$n; done
