# storhaug — see README.md. Every target installs what it needs (scripts/deps.sh).
SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
PREFIX  ?= /usr
DESTDIR ?=
OCF_ROOT ?= $(PREFIX)/lib/ocf
# The version the binary reports and the packages carry (scripts/version.sh:
# X.Y.Z on a release tag vX.Y.Z, else X.Y.Z+git<N>.<hash>[.dirty]).
ifneq ($(origin VERSION),command line)
VERSION := $(shell scripts/version.sh)
endif
ifeq ($(VERSION),)
$(error scripts/version.sh gave no version)
endif
# Every file in a package has the commit's time: a build from a tag gives
# the same bytes again.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
LDFLAGS := -s -w -X github.com/storhaug/storhaug/internal/version.Version=$(VERSION)
BIN     := bin/storhaug
N       ?= 3
NODE    ?= n1
# Fuzz by run count: time-limited fuzzing trips golang/go#75804 on this toolchain.
FUZZTIME ?= 10000x
# urfave_cli_no_docs drops urfave/cli's man-page generator (blackfriday):
# ~1 ms and 200 KB of package init on every agent exec.
BUILDTAGS ?= urfave_cli_no_docs
# Packages: built into PKGDIR from packaging/nfpm.yaml by nfpm, pinned in a
# module of its own (packaging/tools/go.mod) so that storhaug's stays lean.
PKGDIR  ?= bin/pkg
STAGE   := $(PKGDIR)/stage
NFPM    := $(GO) tool -modfile=packaging/tools/go.mod nfpm
MAINTAINER := storhaug maintainers <maintainers@users.noreply.r-seed-00348502.example>

.PHONY: all deps build test unit fuzz vet e2e bench failover-test failover-bench demo install uninstall docs stage deb rpm version lab-up lab-down lab-shell clean

all: build

deps:
	@scripts/deps.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(BUILDTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) .

# The README's test command: unit tests, brief fuzzing, then the end-to-end
# tests on real Pacemaker/Corosync/CTDB/Samba/Ganesha in namespaces (root).
# The lab's end-to-end package runs on its own after the rest, so that its
# timing-sensitive cluster tests do not share the 2 cores with the namespace tests;
# then the kernel-client package (a lab of its own with user-mode-linux guests):
# its mounts, and the faults crash, linkcut, partition and kill-ipaddr3 under
# the kernel clients (make failover-test runs the other faults).
# The packages are built first: test/pkg checks them, and the lab installs
# storhaug from the .deb.
test: deps build vet deb rpm
	STORHAUG_PKGDIR=$(abspath $(PKGDIR)) $(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e /test/e2e -e /test/kclient -e /test/stacks)
	STORHAUG_DEB=$$(ls $(abspath $(PKGDIR))/*.deb) $(GO) test -count=1 -timeout 40m ./test/e2e/
	$(GO) test -count=1 -timeout 30m -run '$(KCLIENT_TESTS)/^($(KCLIENT_FAULTS))$$' ./test/kclient/
	$(MAKE) --no-print-directory fuzz

vet:
	$(GO) vet ./...

# Each fuzz target for FUZZTIME (they must be run one at a time); targets
# are found by name, so that only packages that have them are compiled.
fuzz:
	@set -e; grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //'); do \
	    echo "fuzz $$dir $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; \
	done

# Each benchmark's b.N is its number of rounds: BenchmarkIPaddr 40 rounds of
# every IPaddr2/IPaddr3 action, BenchmarkCTDB 30 rounds of the CTDB monitors,
# BenchmarkCTDBStartStop 3 stop/start cycles, the tickle benchmarks one
# failover or keeper run each.
bench: deps build
	set -o pipefail; { \
	  $(GO) test -count=1 -run '^$$' -bench '^BenchmarkIPaddr$$' -benchtime 40x -timeout 20m ./test/bench/ && \
	  $(GO) test -count=1 -run '^$$' -bench '^BenchmarkCTDB$$' -benchtime 30x -timeout 60m ./test/bench/ && \
	  $(GO) test -count=1 -run '^$$' -bench '^BenchmarkCTDBStartStop$$' -benchtime 3x -timeout 60m ./test/bench/ && \
	  $(GO) test -count=1 -run '^$$' -bench '^BenchmarkTickle' -benchtime 1x -timeout 60m ./test/bench/; \
	} | tee bench.txt

# The kernel-client tests make test runs, and its faults (subtests of
# TestKernelClientFault; crash is TestKernelClientCrash).
KCLIENT_TESTS  := ^(TestKernelClientMounts|TestKernelClientCrash|TestKernelClientFault)$$
KCLIENT_FAULTS := linkcut|partition|kill-ipaddr3

# The other faults under the kernel clients (test/scenario), in the
# kernel-client lab; then a crash in a 2-node and in a 5-node cluster
# (labs of their own, in a go test process of their own).
failover-test: deps build
	$(GO) test -count=1 -timeout 60m -run '^TestKernelClientFault$$/^(kill-ctdbd|kill-smbd|kill-ganesha|move|standby|failback)$$' ./test/kclient/
	$(GO) test -count=1 -timeout 60m -run '^TestKernelClientClusterSize$$' ./test/kclient/

# The failover benchmark: each fault of FAULTS (comma-separated, default
# all) R times under the kernel clients; a table per fault and protocol,
# then, as the last line, the JSON report (also in failover-bench.txt).
FAULTS ?= all
R      ?= 3
# STACKS: storhaug and the anchors of issue 13 (resource-agents, ctdb), one
# after the other in the same lab; TUNABLES=same: every stack with
# storhaug's CTDB tunables (CTDB's shipped ones) and the lab's ganesha lease
# and grace. The timeline of storhaug's first crash goes to
# docs/failover-timeline.svg. NFS=v4: ganesha serves NFSv4 only (NLM off:
# grace ends once the clients have reclaimed) and the client mounts no NFSv3.
STACKS   ?= storhaug
TUNABLES ?=
NFS      ?=
failover-bench: deps build
	@rm -f failover-bench.txt; set -o pipefail; \
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkFailover$$' -benchtime 1x -timeout 600m ./test/kclient/ \
	  -args -faults '$(FAULTS)' -r '$(R)' -stacks '$(STACKS)' -tunables '$(TUNABLES)' -nfs '$(NFS)' \
	  -timeline-svg $(abspath docs/failover-timeline.svg) -bench-out $(abspath failover-bench.txt) 2>&1 | tee failover-bench.log; rc=$$?; \
	if [ -s failover-bench.txt ]; then cat failover-bench.txt; fi; exit $$rc

# The demo's kernel client runs test/workload on its mounts (a static
# binary: the guest runs it from the host's file system).
demo: deps build
	CGO_ENABLED=0 $(GO) build -o bin/workload ./test/workload
	$(GO) run ./test/lab/cmd/lab demo

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/storhaug
	$(DESTDIR)$(PREFIX)/sbin/storhaug install --ocf-root $(DESTDIR)$(OCF_ROOT) --binary $(PREFIX)/sbin/storhaug

uninstall:
	-$(DESTDIR)$(PREFIX)/sbin/storhaug uninstall --ocf-root $(DESTDIR)$(OCF_ROOT) --binary $(PREFIX)/sbin/storhaug
	rm -f $(DESTDIR)$(PREFIX)/sbin/storhaug

docs: build
	$(BIN) docs --dir docs/agents

version:
	@echo $(VERSION)

# What the packages hold besides packaging/: the binary, one link per agent
# (relative, as Debian wants links within /usr), the man pages, the bash
# completion.
stage: build
	rm -rf $(STAGE)
	mkdir -p $(STAGE)/ocf $(STAGE)/man
	cp $(BIN) $(STAGE)/storhaug
	set -e; for n in $$($(BIN) agents); do ln -s ../../../../sbin/storhaug $(STAGE)/ocf/$$n; done
	$(BIN) docs --dir $(STAGE)/docs >/dev/null
	set -e; for f in $(STAGE)/docs/*.7 $(STAGE)/docs/*.8; do gzip -9n <$$f >$(STAGE)/man/$${f##*/}.gz; done
	$(BIN) completion bash >$(STAGE)/storhaug.bash
	VERSION='$(VERSION)' MAINTAINER='$(MAINTAINER)' SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) scripts/changelog.sh | gzip -9n >$(STAGE)/changelog.gz

# make deb / make rpm: PKGDIR/storhaug_<version>_<arch>.deb and
# PKGDIR/storhaug-<version>-1.<arch>.rpm, from packaging/nfpm.yaml.
deb rpm: stage
	rm -f $(PKGDIR)/*.$@
	STAGE=$(STAGE) VERSION='$(VERSION)' MAINTAINER='$(MAINTAINER)' GOARCH=$$($(GO) env GOARCH) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
	  $(NFPM) package --config packaging/nfpm.yaml --packager $@ --target $(PKGDIR)/

lab-up: deps build
	$(GO) run ./test/lab/cmd/lab up -n $(N)

lab-down:
	$(GO) run ./test/lab/cmd/lab down

lab-shell:
	$(GO) run ./test/lab/cmd/lab shell $(NODE)

clean:
	rm -rf bin bench.txt failover-bench.txt failover-bench.log
